r"""Order-parameter ODEs of online SGD for soft committee machines (K student, M teacher units).

Symbol map: ``hidden`` = :math:`K` student hidden units, ``teachers`` = :math:`M` teacher
units, ``lr`` = :math:`\eta`, ``zeta`` = :math:`\zeta` (gamma decay), ``noise`` = :math:`S`
(label-noise variance), ``Q`` = :math:`Q_{kl} = w_k\cdot w_l/N`, ``R`` =
:math:`R_{kn} = w_k\cdot w^*_n/N`, ``T`` = :math:`T_{nm} = w^*_n\cdot w^*_m/N`,
``v``, ``v_star`` the (fixed) second-layer weights, time :math:`t = j/N` (``j`` = SGD
step). Integrals :math:`I_2, I_3, I_4, J_2` from :mod:`.committee_integrals`.

Model (Biehl & Schwarze 1995, J. Phys. A 28, 643; Saad & Solla 1995, Phys. Rev. E 52,
4225), inputs :math:`x \sim N(0, I/N)` as everywhere in this package:

.. math::

    \hat y = \sum_{k=1}^K v_k\, g(s_k), \qquad
    y = \sum_{n=1}^M v^*_n\, g^*(\nu_n) + \sqrt S\,\xi, \qquad
    \nu_n = w^*_n\cdot x, \qquad
    \ell = \tfrac12 (y - \hat y)^2 + \tfrac\zeta2 \sum_k \gamma_k^2 ,

with the student's pre-activations :math:`s_k` given by the method:

* ``"sgd"`` -- the plain soft committee machine, :math:`s_k = \lambda_k = w_k\cdot x`,
  SGD :math:`w_k \leftarrow w_k + \eta\, v_k g'(s_k)\,\delta\, x`,
  :math:`\delta = y - \hat y`. With :math:`v = v^* = 1` this is Saad & Solla's machine.
* ``"wn-decay"`` -- every hidden unit weight-normalized with its own scale and gamma
  decay (BN read as population normalization + gamma decay, Luo et al. 2019 eq. 4, per
  unit): :math:`s_k = \gamma_k \lambda_k / L_k`, :math:`L_k^2 = Q_{kk}`; SGD moves
  :math:`w_k` with rate :math:`\eta` along :math:`x_\perp` (the gradient through
  :math:`|w_k|`), and :math:`\gamma_k` with rate :math:`\eta/N`, as the single unit of
  :mod:`.dynamics` (``"wn"`` is ``zeta = 0``).

In the limit :math:`N\to\infty` with :math:`a_k = \gamma_k/L_k` (``"sgd"``:
:math:`a_k = 1` and the projections below are absent),
:math:`A_{kn} = E[g'(s_k)\,\nu_n\,\delta]`, :math:`B_{kl} = E[g'(s_k)\,\lambda_l\,\delta]`,
:math:`D_{kl} = E[g'(s_k) g'(s_l)\,\delta^2]`:

.. math::

    \frac{dR_{kn}}{dt} &= \eta a_k v_k\Big(A_{kn} - \frac{R_{kn}}{L_k^2} B_{kk}\Big), \\
    \frac{dQ_{kl}}{dt} &= \eta a_k v_k\Big(B_{kl} - \frac{Q_{kl}}{L_k^2} B_{kk}\Big)
        + \eta a_l v_l\Big(B_{lk} - \frac{Q_{kl}}{L_l^2} B_{ll}\Big)
        + \eta^2 a_k a_l v_k v_l D_{kl}, \\
    \frac{d\gamma_k}{dt} &= \eta\Big(\frac{v_k B_{kk}}{L_k} - \zeta\gamma_k\Big),

where, with :math:`c = (-v, v^*)` over the fields :math:`f = (s, \nu)` and their
activations :math:`(g, g^*)`,

.. math::

    A_{kn} = \sum_b c_b I_3(s_k, \nu_n, f_b), \quad
    B_{kl} = \sum_b c_b I_3(s_k, \lambda_l, f_b), \quad
    D_{kl} = \sum_{b,b'} c_b c_{b'} I_4(s_k, s_l, f_b, f_{b'}) + S\, J_2(s_k, s_l),

:math:`I_3(a, b, c) = E[g'(a)\, b\, g(c)]`, :math:`I_4(a, b, c, d) = E[g'(a)g'(b)g(c)g(d)]`,
:math:`J_2(a, b) = E[g'(a)g'(b)]` over the Gaussian fields of covariance
:math:`\mathrm{cov}(s_k, s_l) = a_k a_l Q_{kl}`, :math:`\mathrm{cov}(s_k, \nu_n) = a_k R_{kn}`,
:math:`\mathrm{cov}(\nu_n, \nu_m) = T_{nm}`, :math:`\mathrm{cov}(\lambda_k, \cdot)` the
same without :math:`a_k`. The ``"sgd"`` equations are Saad & Solla's eqs. (5)-(6) (with
their :math:`\eta/N` step written as our :math:`\eta` on :math:`x \sim N(0, I/N)`); the
``"wn-decay"`` ones are derived here the same way as Luo et al.'s eq. (6) for one unit:
:math:`\Delta w_k = \eta a_k v_k g'(s_k)\delta\,(x - \lambda_k w_k/(N L_k^2))` gives
:math:`\Delta R_{kn}`, :math:`\Delta Q_{kl}` to order :math:`1/N`
(:math:`|x_\perp|^2 = 1 + O(1/N)`). For :math:`K = M = 1` both reduce exactly to
:mod:`.dynamics` (a test checks it), whose length is :math:`L = \sqrt Q` and whose
overlap is the normalized :math:`R/(L\sqrt T)`.

A trained second layer (``train_second_layer``; Goldt et al. 2019, NeurIPS, with the
second-layer rate equal to the first's) moves at the scalars' rate :math:`\eta/N`, so
that :math:`dv_k/dt = \eta\,E[g(s_k)\,\delta] = \eta(\sum_n v^*_n I_2(s_k, \nu_n)
- \sum_j v_j I_2(s_k, s_j))`, and ``v`` joins the state.

Generalization error (unhalved, without label noise, the convention of :mod:`.integrals`):
:math:`\epsilon = E[(\sum_n v^*_n g^*(\nu_n) - \sum_k v_k g(s_k))^2]
= \sum_{b,b'} c_b c_{b'} I_2(f_b, f_{b'})`.

Plateaus: for erf and :math:`K = M` from a small, nearly symmetric start, the dynamics
are trapped near the symmetric fixed point where every student unit has the same overlap
with every teacher unit, and leave it on a time scale that grows like
:math:`\log N` of the initial asymmetry (Saad & Solla 1995, Biehl et al. 1996).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from perceptron_theory._checks import check_array, check_choice, check_int, check_real
from perceptron_theory._io import PlainDict
from perceptron_theory.theory import committee_integrals as _ci

__all__ = ["METHODS", "ACTIVATIONS", "CommitteeTrajectory", "Spec", "spec", "rhs",
           "integrate", "generalization_error", "order_parameters_single"]

METHODS = ("sgd", "wn-decay", "wn")
ACTIVATIONS = ("erf", "relu", "linear")
#: limits of :func:`integrate`'s arguments (the same spirit as :mod:`.dynamics`)
MAX_UNITS = 16
LR_MAX = 1e3
T_MAX = 1e6
MAX_POINTS = 100_000
MAX_EVALUATIONS = 2_000_000


@dataclass(frozen=True)
class Spec:
    """One committee machine: method, activations, sizes, second layers, teacher overlaps.

    Built (and checked) by :func:`spec`. ``T`` shape=(M, M), ``v`` shape=(K,),
    ``v_star`` shape=(M,).
    """

    method: str
    activation: str
    teacher: str
    K: int
    M: int
    T: np.ndarray
    v: np.ndarray
    v_star: np.ndarray
    second_layer: bool = False

    @property
    def normalized(self) -> bool:
        return self.method != "sgd"

    @property
    def n_state(self) -> int:
        """Length of the ODE state: Q (upper triangle), R, gamma when normalized, and v when
        the second layer is trained."""
        K, M = self.K, self.M
        return (K * (K + 1) // 2 + K * M + (K if self.normalized else 0)
                + (K if self.second_layer else 0))


def spec(method: str, activation: str, hidden: int, teachers: int, *, teacher: str | None = None,
         T=None, v=None, v_star=None, train_second_layer: bool = False) -> Spec:
    """Check and pack the machine of :func:`integrate` (arguments as there)."""
    method = check_choice("method", method, METHODS)
    activation = check_choice("activation", activation, ACTIVATIONS)
    teacher = activation if teacher is None else check_choice("teacher", teacher, ACTIVATIONS)
    K = check_int("hidden", hidden, 1, MAX_UNITS)
    M = check_int("teachers", teachers, 1, MAX_UNITS)
    T = np.eye(M) if T is None else check_array("T", T, shape=(M, M))
    if not np.allclose(T, T.T, atol=1e-12) or np.linalg.eigvalsh(T).min() <= 0:
        raise ValueError(f"T must be a symmetric positive-definite {M}x{M} matrix; got "
                         f"eigenvalues {np.linalg.eigvalsh((T + T.T) / 2)}")
    v = np.ones(K) if v is None else check_array("v", v, shape=(K,))
    v_star = np.ones(M) if v_star is None else check_array("v_star", v_star, shape=(M,))
    return Spec(method, activation, teacher, K, M, np.array(T, float), np.array(v, float),
                np.array(v_star, float), bool(train_second_layer))


# ------------------------------------------------------------------------------- state
@functools.cache
def _tri(K: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(K)


def pack(sp: Spec, Q, R, gamma=None, v=None) -> np.ndarray:
    """The ODE state vector of ``(Q, R, gamma, v)`` (Q symmetric, shape=(K, K); ``v`` only
    when the second layer is trained, default ``sp.v``)."""
    iu = _tri(sp.K)
    parts = [np.asarray(Q, float)[iu], np.asarray(R, float).ravel()]
    if sp.normalized:
        parts.append(np.asarray(gamma, float))
    if sp.second_layer:
        parts.append(np.asarray(sp.v if v is None else v, float))
    return np.concatenate(parts)


def unpack(sp: Spec, y: np.ndarray):
    """``(Q, R, gamma)`` of state vectors ``y`` (shape=(..., n_state)); gamma None for sgd."""
    K, M = sp.K, sp.M
    y = np.asarray(y, float)
    nq = K * (K + 1) // 2
    iu = _tri(K)
    Q = np.zeros((*y.shape[:-1], K, K))
    Q[..., iu[0], iu[1]] = y[..., :nq]
    Q[..., iu[1], iu[0]] = y[..., :nq]
    R = y[..., nq:nq + K * M].reshape(*y.shape[:-1], K, M)
    gamma = y[..., nq + K * M:nq + K * M + K] if sp.normalized else None
    return Q, R, gamma


def second_layer(sp: Spec, y: np.ndarray) -> np.ndarray:
    """The student's second layer ``v`` at states ``y`` (..., K): the state's last K entries
    when trained, else ``sp.v``."""
    y = np.asarray(y, float)
    if sp.second_layer:
        return y[..., -sp.K:]
    return np.broadcast_to(sp.v, (*y.shape[:-1], sp.K))


# --------------------------------------------------------------------------- integrals
@dataclass(frozen=True)
class _Index:
    """Index tuples into the covariance of the fields ``(s_1..s_K, nu_1..nu_M, lambda_1..K)``
    for every integral the right-hand side needs (built once per machine)."""

    i3_s: np.ndarray  # (K, M+K, K, 3): (s_k, X, s_j), X in (nu, lambda)
    i3_t: np.ndarray  # (K, M+K, M, 3): (s_k, X, nu_m)
    i4_ss: np.ndarray  # (K, K, K, K, 4)
    i4_st: np.ndarray  # (K, K, K, M, 4)
    i4_tt: np.ndarray  # (K, K, M, M, 4)
    j2: np.ndarray  # (K, K, 2)
    e_ss: np.ndarray  # (K, K, 2) for eps
    e_st: np.ndarray  # (K, M, 2)
    e_tt: np.ndarray  # (M, M, 2)


def _grid(*ranges) -> np.ndarray:
    return np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1)


def _index(K: int, M: int) -> _Index:
    s = np.arange(K)
    t = K + np.arange(M)
    x = np.concatenate([t, K + M + np.arange(K)])  # nu then lambda
    return _Index(_grid(s, x, s), _grid(s, x, t), _grid(s, s, s, s), _grid(s, s, s, t),
                  _grid(s, s, t, t), _grid(s, s), _grid(s, s), _grid(s, t), _grid(t, t))


def _sub(C: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Covariances of the tuples ``idx`` (shape=(..., d)): shape=(..., d, d)."""
    return C[idx[..., :, None], idx[..., None, :]]


def _covariance(sp: Spec, Q, R, gamma) -> np.ndarray:
    """Covariance of ``(s, nu, lambda)`` (shape=(2K+M, 2K+M))."""
    K, M = sp.K, sp.M
    a = gamma / np.sqrt(np.diag(Q)) if sp.normalized else np.ones(K)
    C = np.empty((2 * K + M, 2 * K + M))
    s, t, lam = slice(0, K), slice(K, K + M), slice(K + M, 2 * K + M)
    C[s, s] = a[:, None] * a[None, :] * Q
    C[s, t] = a[:, None] * R
    C[s, lam] = a[:, None] * Q
    C[t, t] = sp.T
    C[t, lam] = R.T
    C[lam, lam] = Q
    C[t, s] = C[s, t].T
    C[lam, s] = C[s, lam].T
    C[lam, t] = C[t, lam].T
    return C


def _moments(sp: Spec, ix: _Index, C: np.ndarray, noise: float, v: np.ndarray):
    """``A`` (K, M), ``B`` (K, K), ``D`` (K, K) of the module docstring at covariance ``C``
    and second layer ``v``."""
    g, gs = sp.activation, sp.teacher
    M = sp.M
    cs, ct = -v, sp.v_star
    # C is PSD by construction (a Gram matrix of the ODE state): skip the integrals' check
    i3 = (_ci.I3(_sub(C, ix.i3_s), g, g, check=False) @ cs
          + _ci.I3(_sub(C, ix.i3_t), g, gs, check=False) @ ct)
    A, B = i3[:, :M], i3[:, M:]
    D = (_ci.I4(_sub(C, ix.i4_ss), g, g, g, g, check=False) @ cs @ cs
         + 2 * _ci.I4(_sub(C, ix.i4_st), g, g, g, gs, check=False) @ ct @ cs
         + _ci.I4(_sub(C, ix.i4_tt), g, g, gs, gs, check=False) @ ct @ ct)
    if noise:
        D = D + noise * _ci.J2(_sub(C, ix.j2), g, g, check=False)
    return A, B, D


def generalization_error(sp: Spec, Q, R, gamma=None, v=None) -> np.ndarray:
    """:math:`\\epsilon` (unhalved, no label noise) at order parameters ``Q`` (..., K, K),
    ``R`` (..., K, M), when normalized ``gamma`` (..., K), and second layer ``v`` (..., K;
    default ``sp.v``)."""
    Q, R = np.asarray(Q, float), np.asarray(R, float)
    lead = Q.shape[:-2]
    v = np.broadcast_to(sp.v if v is None else np.asarray(v, float), (*lead, sp.K))
    out = np.empty(lead)
    ix = _index(sp.K, sp.M)
    for i in np.ndindex(*lead):
        C = _covariance(sp, Q[i], R[i], None if gamma is None else np.asarray(gamma)[i])
        g, gs = sp.activation, sp.teacher
        cs, ct = -v[i], sp.v_star
        # PSD by construction (up to the solver's rounding near |R| = L): no check
        out[i] = (cs @ _ci.I2(_sub(C, ix.e_ss), g, g, check=False) @ cs
                  + 2 * cs @ _ci.I2(_sub(C, ix.e_st), g, gs, check=False) @ ct
                  + ct @ _ci.I2(_sub(C, ix.e_tt), gs, gs, check=False) @ ct)
    return out


def rhs(sp: Spec, lr: float, zeta: float = 0.0, noise: float = 0.0):
    """``f(t, y)`` of the ODE system for :func:`scipy.integrate.solve_ivp` (state :func:`pack`)."""
    ix = _index(sp.K, sp.M)
    iu = _tri(sp.K)

    def f(t, y):
        Q, R, gamma = unpack(sp, y)
        v = second_layer(sp, y)
        C = _covariance(sp, Q, R, gamma)
        A, B, D = _moments(sp, ix, C, noise, v)
        dv = []
        if sp.second_layer:  # dv_k/dt = lr E[g(s_k) delta]
            g, gs = sp.activation, sp.teacher
            dv = [lr * (_ci.I2(_sub(C, ix.e_st), g, gs, check=False) @ sp.v_star
                        - _ci.I2(_sub(C, ix.e_ss), g, g, check=False) @ v)]
        if sp.normalized:
            L2 = np.diag(Q)
            a = gamma / np.sqrt(L2)
            av = a * v
            Bd = np.diag(B)
            dR = lr * av[:, None] * (A - R * (Bd / L2)[:, None])
            P = av[:, None] * (B - Q * (Bd / L2)[:, None])
            dQ = lr * (P + P.T) + lr ** 2 * np.outer(av, av) * D
            dg = lr * (v * Bd / np.sqrt(L2) - zeta * gamma)
            return np.concatenate([dQ[iu], dR.ravel(), dg, *dv])
        dR = lr * v[:, None] * A
        P = v[:, None] * B
        dQ = lr * (P + P.T) + lr ** 2 * np.outer(v, v) * D
        return np.concatenate([dQ[iu], dR.ravel(), *dv])

    return f


# ----------------------------------------------------------------------------- integrate
@dataclass
class CommitteeTrajectory(PlainDict):
    """Solution of :func:`integrate`: ``t`` (n,), ``Q`` (n, K, K), ``R`` (n, K, M),
    ``gamma`` (n, K) or None, ``eps`` (n,); ``diverged`` / ``t_diverged`` when an order
    parameter left ``blowup``; ``status``/``message`` of the solver."""

    method: str
    activation: str
    teacher: str
    lr: float
    zeta: float
    noise: float
    t: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    gamma: np.ndarray | None
    v: np.ndarray | None
    eps: np.ndarray
    diverged: bool
    t_diverged: float | None
    status: int
    message: str


def integrate(method: str, activation: str, *, hidden: int, teachers: int, lr: float,
              Q0, R0, gamma0=None, zeta: float = 0.0, noise: float = 0.0,
              teacher: str | None = None, T=None, v=None, v_star=None,
              train_second_layer: bool = False, t_max: float = 100.0,
              n_points: int = 201, rtol: float = 1e-8, atol: float = 1e-10,
              blowup: float = 1e6) -> CommitteeTrajectory:
    """Integrate the committee-machine ODEs of the module docstring (``solve_ivp``, DOP853).

    Parameters
    ----------
    method : {"sgd", "wn-decay", "wn"}
        Plain soft committee machine, or every hidden unit weight-normalized with gamma
        decay (``"wn"``: ``zeta = 0``).
    activation : {"erf", "relu", "linear"}
        Student activation.
    hidden, teachers : int
        K student and M teacher hidden units (1..16).
    teacher : {"erf", "relu", "linear"}, optional
        Teacher activation (default: the student's).
    lr : float
        :math:`\\eta > 0`.
    Q0, R0 : array_like
        Initial overlaps, shape (K, K) symmetric positive definite and (K, M), such that
        the joint covariance of (student, teacher) weights is positive semi-definite.
        :func:`perceptron_theory.simulate.committee.initial_overlaps` draws the ones of a
        simulation.
    gamma0 : array_like, optional
        Initial scales (K,), normalized methods only (default 1).
    zeta, noise : float
        Gamma decay (normalized methods) and label-noise variance S, >= 0.
    T, v, v_star : array_like, optional
        Teacher overlaps (M, M), default identity; second layers, default ones (``v``: the
        initial one when trained).
    train_second_layer : bool
        Train the student's second layer too, :math:`\\Delta v_k = (\\eta/N) g(s_k)\\delta`
        (the rate of the scalars, so :math:`dv_k/dt = \\eta E[g(s_k)\\delta]`, Goldt et al.
        2019 with :math:`\\eta_v = \\eta`).
    t_max, n_points, rtol, atol, blowup
        Final time (in N steps), output points, solver tolerances, divergence bound on
        :math:`|Q|, |\\gamma|`.
    """
    sp = spec(method, activation, hidden, teachers, teacher=teacher, T=T, v=v, v_star=v_star,
              train_second_layer=train_second_layer)
    lr = check_real("lr", lr, 0.0, LR_MAX, lo_open=True)
    zeta = check_real("zeta", zeta, 0.0)
    if method == "wn" and zeta:
        raise ValueError(f"zeta must be 0 for method 'wn' (use 'wn-decay'); got {zeta}")
    if method == "sgd" and zeta:
        raise ValueError(f"zeta is a decay on gamma: only for 'wn-decay'; got {zeta} for 'sgd'")
    noise = check_real("noise", noise, 0.0)
    t_max = check_real("t_max", t_max, 0.0, T_MAX, lo_open=True)
    n_points = check_int("n_points", n_points, 2, MAX_POINTS)
    rtol = check_real("rtol", rtol, 0.0, 1.0, lo_open=True)
    atol = check_real("atol", atol, 0.0, lo_open=True)
    blowup = check_real("blowup", blowup, 0.0, lo_open=True)
    Q0 = check_array("Q0", Q0, shape=(sp.K, sp.K))
    R0 = check_array("R0", R0, shape=(sp.K, sp.M))
    _check_overlaps(sp, Q0, R0)
    if sp.normalized:
        gamma0 = (np.ones(sp.K) if gamma0 is None
                  else check_array("gamma0", gamma0, shape=(sp.K,)))
    elif gamma0 is not None:
        raise ValueError("gamma0 is only for the normalized methods ('wn-decay', 'wn')")
    f0 = rhs(sp, lr, zeta, noise)
    n_eval = [0]

    def f(t, y):
        n_eval[0] += 1
        if n_eval[0] > MAX_EVALUATIONS:
            raise _TooStiff(t)
        return f0(t, y)

    def blow(t, y):
        return blowup - np.max(np.abs(y))

    blow.terminal = True
    from scipy import integrate as _integrate

    y0 = pack(sp, Q0, R0, gamma0)
    try:
        with np.errstate(all="ignore"):
            sol = _integrate.solve_ivp(f, (0.0, t_max), y0, method="DOP853",
                                       t_eval=np.linspace(0.0, t_max, n_points), rtol=rtol,
                                       atol=atol, events=blow)
    except _TooStiff as exc:
        raise ValueError(f"the ODE solver gave up after {MAX_EVALUATIONS} evaluations at "
                         f"t={exc.args[0]:.4g} of t_max={t_max:g} (lr={lr:g}); lower lr or "
                         f"t_max") from None
    Q, R, gamma = unpack(sp, sol.y.T)
    v_t = second_layer(sp, sol.y.T) if sp.second_layer else None
    finite = np.all(np.isfinite(sol.y), axis=0)
    t_div = float(sol.t_events[0][0]) if sol.t_events and len(sol.t_events[0]) else None
    diverged = bool(sol.status == 1 or not np.all(finite))
    eps = np.full(sol.t.shape, np.nan)
    ok = finite & np.all(np.diagonal(Q, axis1=-2, axis2=-1) > 0, axis=-1)
    if np.any(ok):
        eps[ok] = generalization_error(sp, Q[ok], R[ok], None if gamma is None else gamma[ok],
                                       None if v_t is None else v_t[ok])
    return CommitteeTrajectory(method, activation, sp.teacher, lr, zeta, noise, sol.t, Q, R,
                               gamma, v_t, eps, diverged, t_div, int(sol.status),
                               str(sol.message))


class _TooStiff(Exception):
    pass


def _check_overlaps(sp: Spec, Q0: np.ndarray, R0: np.ndarray) -> None:
    """Q0 symmetric positive definite and [[Q0, R0], [R0^T, T]] positive semi-definite."""
    if not np.allclose(Q0, Q0.T, atol=1e-12):
        raise ValueError("Q0 must be symmetric")
    if np.linalg.eigvalsh(Q0).min() <= 0:
        raise ValueError(f"Q0 must be positive definite (every student unit needs |w_k| > 0); "
                         f"got eigenvalues {np.linalg.eigvalsh(Q0)}")
    full = np.block([[Q0, R0], [R0.T, sp.T]])
    lo = np.linalg.eigvalsh(full).min()
    if lo < -1e-10 * max(1.0, np.abs(full).max()):
        raise ValueError(f"the overlaps [[Q0, R0], [R0^T, T]] must be positive semi-definite "
                         f"(they are Gram matrices of weights); smallest eigenvalue {lo:.3g}")



def order_parameters_single(Q, R, T: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(L, R_normalized)`` of K = M = 1 overlaps: the variables of :mod:`.dynamics`
    (:math:`L = \\sqrt{Q}`, :math:`R/(L\\sqrt T)`)."""
    L = np.sqrt(np.asarray(Q, float))
    return L, np.asarray(R, float) / (L * np.sqrt(T))


# ------------------------------------------------------------------ learning-rate limits
@dataclass
class CommitteeLRMax(PlainDict):
    """Result of :func:`lr_max`: the rate at which the learned fixed point loses stability.

    ``lr_max`` is the raw rate, ``eta_max = lr_max * gamma0 / L0^2`` the effective rate of
    :mod:`.dynamics` (``lr_max`` itself for ``"sgd"``); ``gamma0`` the fixed point's scale;
    ``residual`` the norm of the O(eta) drift at the fixed point found (0 up to the root
    finder's tolerance); ``spectrum`` the real parts of the eigenvalues of ``A + eta B``
    at ``eta = lr_max`` (one is 0)."""

    method: str
    activation: str
    K: int
    zeta: float
    L0: float
    gamma0: float
    lr_max: float
    eta_max: float
    residual: float
    spectrum: list


def lr_max(method: str, activation: str, hidden: int, *, zeta: float = 0.0,
           L0: float = 1.0, lr_hi: float = 1e3) -> CommitteeLRMax:
    """Largest stable rate of the learned fixed point of a K = M committee (T = I, v = 1).

    The right-hand side is :math:`f = \\eta\\,a(y) + \\eta^2 b(y)` (module docstring; the
    decay is in :math:`a`). The fixed point :math:`y_0` is the root of :math:`a` (Luo et
    al.'s small-rate limit, Prop. 1; for ``"sgd"`` and ``"wn"`` it is exact at every rate:
    each student unit equal to one teacher unit, :math:`\\delta = 0`), with the lengths
    :math:`L_k = L_0` held fixed for the normalized methods (their fixed point is neutral
    in :math:`L`, as in :func:`.dynamics.lr_limits`). Linearizing,
    :math:`J = \\eta(A + \\eta B)` with :math:`A = \\partial a`, :math:`B = \\partial b` at
    :math:`y_0` (central differences); ``lr_max`` is the smallest :math:`\\eta` at which an
    eigenvalue of :math:`A + \\eta B` crosses zero (``inf``: never; 0: unstable at any rate).
    For K = 1 this is :func:`.dynamics.lr_limits`' stability analysis of the full (gamma, R)
    system (a test checks the values).

    Parameters
    ----------
    method : {"sgd", "wn-decay", "wn"}
        As :func:`integrate`.
    activation : {"erf", "relu"}
        Shared by teacher and student (a linear committee is a single linear unit: its
        fixed point is not isolated).
    hidden : int
        K = M.
    zeta : float
        Gamma decay (``"wn-decay"``).
    L0 : float
        Length of the normalized units at the fixed point.
    lr_hi : float
        Largest rate searched.
    """
    from scipy import optimize as _opt

    sp = spec(method, activation, hidden, hidden)
    if activation == "linear":
        raise ValueError("activation must be 'erf' or 'relu' for lr_max: a linear committee "
                         "is one linear unit, so its learned fixed point is not isolated")
    zeta = check_real("zeta", zeta, 0.0)
    if zeta and method != "wn-decay":
        raise ValueError(f"zeta is for 'wn-decay' only; got {zeta} for {method!r}")
    L0 = check_real("L0", L0, 0.0, lo_open=True)
    lr_hi = check_real("lr_hi", lr_hi, 0.0, lo_open=True)
    K = sp.K
    f1, f2 = rhs(sp, 1.0, zeta), rhs(sp, 2.0, zeta)
    iu = _tri(K)
    off = iu[0] != iu[1]
    nq = len(iu[0])

    def to_state(z):
        """Free variables -> ODE state. sgd: the state itself; normalized: (rho_kl (k < l),
        r_kn = R_kn / L0, gamma) with every L_k = L0."""
        if not sp.normalized:
            return z
        q = np.full(nq, L0 * L0)
        q[off] = z[:int(off.sum())] * L0 * L0
        return np.concatenate([q, z[int(off.sum()):int(off.sum()) + K * K] * L0,
                               z[int(off.sum()) + K * K:]])

    def velocity(f, z):
        """d(free variables)/dt with the lengths held at L0 after every step: the growth of
        L_k (the eta^2 term of dQ_kk) shrinks the normalized overlaps, as the
        ``freeze_L`` system of :mod:`.dynamics`."""
        y = to_state(z)
        dy = f(0.0, y)
        if not sp.normalized:
            return dy
        dQ, dR, dg = unpack(sp, dy)
        dl = np.diag(dQ) / (2 * L0)  # dL_k/dt
        Q, R, _ = unpack(sp, y)
        drho = dQ / L0 ** 2 - Q / L0 ** 2 * (dl[:, None] + dl[None, :]) / L0
        dr = dR / L0 - R / L0 * dl[:, None] / L0
        return np.concatenate([drho[iu][off], dr.ravel(), dg])

    def parts(z):
        """``(a(z), b(z))`` from the velocities at rates 1 and 2 (f = eta a + eta^2 b)."""
        v1, v2 = velocity(f1, z), velocity(f2, z)
        return 2.0 * v1 - v2 / 2.0, (v2 - 2.0 * v1) / 2.0

    def a(z):
        return parts(z)[0]

    if sp.normalized:
        z0 = np.concatenate([np.zeros(int(off.sum())), np.eye(K).ravel(),
                             np.full(K, 1.0 / (1.0 + zeta))])
    else:
        z0 = pack(sp, np.eye(K), np.eye(K))
    if sp.normalized and zeta:
        sol = _opt.root(a, z0, method="hybr", options={"xtol": 1e-13})
        z0 = sol.x
    residual = float(np.linalg.norm(a(z0)))

    A, B = np.empty((z0.size, z0.size)), np.empty((z0.size, z0.size))
    for i in range(z0.size):  # central differences of a and b together
        h = 1e-6 * max(1.0, abs(z0[i]))
        zp, zm = z0.copy(), z0.copy()
        zp[i] += h
        zm[i] -= h
        (ap, bp), (am, bm) = parts(zp), parts(zm)
        A[:, i], B[:, i] = (ap - am) / (2 * h), (bp - bm) / (2 * h)

    def growth(eta):
        return float(np.max(np.linalg.eigvals(A + eta * B).real))

    etas = np.geomspace(1e-4, lr_hi, 600)
    g = np.array([growth(e) for e in etas])
    if g[0] > 0:
        lr = 0.0
    elif np.all(g < 0):
        lr = float("inf")
    else:
        i = int(np.argmax(g >= 0))
        lr = float(_opt.brentq(growth, etas[i - 1], etas[i], xtol=1e-14, rtol=1e-13))
    gamma0 = float(np.mean(z0[-K:])) if sp.normalized else 1.0
    eta = lr * gamma0 / L0 ** 2 if sp.normalized else lr
    spec_at = (sorted(np.linalg.eigvals(A + lr * B).real.tolist()) if np.isfinite(lr)
               else [])
    return CommitteeLRMax(method, activation, K, zeta, L0, gamma0, lr, eta, residual, spec_at)
