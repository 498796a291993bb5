r"""The saddle-point solver: root finding, continuation and the result objects.

Notation, derivation and numerics: :mod:`perceptron_theory.theory.replica`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from perceptron_theory._checks import check_array, check_choice, check_real
from perceptron_theory._io import to_plain_dict
from perceptron_theory.theory.integrals import eps_gen
from perceptron_theory.theory.replica.expectations import (
    STUDENTS,
    TEACHERS,
    _prox,
    _teacher_moments,
)
from perceptron_theory.theory.replica.free_energy import (
    _free_energy_finite,
    _free_energy_zero_T,
    _residual_finite,
    _residual_zero_T,
)

__all__ = ["ReplicaSolution", "ReplicaCurve", "solve", "learning_curve"]


@dataclass(frozen=True)
class ReplicaSolution:
    """Saddle point of the replica-symmetric free energy at one load ``alpha``.

    ``x`` is :math:`\\beta(Q - q)` (``inf`` in the interpolating phase, where
    ``zeta_x`` holds the limit :math:`\\kappa = \\lim \\zeta x`); at finite ``beta``,
    ``q`` is the replica overlap and ``x`` :math:`=\\beta(Q-q)`. ``eps`` is the unhalved
    test error without label noise; ``train_energy`` the (thermal) mean of
    :math:`\\frac12(y - g(s))^2` per pattern; ``free_energy`` :math:`f` per input
    dimension (at :math:`\\beta=\\infty`, the minimal energy :math:`E/N`). ``phase`` is
    ``"interpolating"`` (:math:`\\zeta\\to0^+`, min-norm element of a degenerate set of
    minimizers), ``"unique"`` (finite ``x``), ``"recovered"`` (noiseless teacher recovered
    exactly, :math:`Q = T^2 = 1`) or ``"thermal"`` (finite ``beta``).
    """

    alpha: float
    student: str
    teacher: str
    noise: float
    zeta: float
    beta: float
    Q: float
    T: float
    x: float
    q: float
    gamma: float
    R: float
    eps: float
    train_energy: float
    free_energy: float
    active_fraction: float
    zeta_x: float
    phase: str
    converged: bool
    method: str
    iterations: int
    residual: float
    message: str
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain dict for JSON (non-finite numbers become ``None``)."""
        d = to_plain_dict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}


@dataclass(frozen=True)
class ReplicaCurve:
    """Solutions along a grid of loads; arrays index like ``alphas``."""

    alphas: np.ndarray
    solutions: tuple
    continuation: bool
    seconds: float
    eps: np.ndarray = field(init=False)
    gamma: np.ndarray = field(init=False)
    R: np.ndarray = field(init=False)
    converged: np.ndarray = field(init=False)

    def __post_init__(self):
        for name in ("eps", "gamma", "R", "converged"):
            vals = [getattr(s, name) for s in self.solutions]
            object.__setattr__(self, name, np.asarray(vals, dtype=bool if name == "converged"
                                                      else float))

    def to_dict(self) -> dict:
        return {"alphas": self.alphas.tolist(), "continuation": self.continuation,
                "seconds": self.seconds, "solutions": [s.to_dict() for s in self.solutions]}


def _check_args(alpha, student, teacher, noise, zeta, beta):
    alpha = check_real("alpha", alpha, 0.0, None, lo_open=True)
    student = check_choice("student", student, STUDENTS)
    teacher = check_choice("teacher", teacher, TEACHERS)
    noise = check_real("noise", noise, 0.0, None)
    zeta = check_real("zeta", zeta, 0.0, None)
    if beta is None:
        beta = math.inf
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a real number in (0, inf], got {beta!r}") from None
    if not (b > 0) or math.isnan(b):
        raise ValueError(f"beta must be in (0, inf], got {beta!r}")
    if math.isfinite(b) and student == "relu" and teacher != "linear":
        raise ValueError(f"teacher must be 'linear' for a ReLU student at finite beta "
                         f"(got teacher={teacher!r}, beta={beta!r}); use beta=inf")
    if math.isfinite(b) and zeta == 0.0 and not (student == "linear" and alpha > 1.0):
        raise ValueError(
            f"zeta must be > 0 when beta is finite (got zeta=0, beta={beta!r}): without decay "
            "the Gibbs measure exp(-beta E) is not normalizable"
            + (" for alpha <= 1" if student == "linear" else " for a ReLU student"))
    return alpha, student, teacher, noise, zeta, b


def _eps(student, teacher, Q, T):
    gamma = math.sqrt(Q)
    R = T / gamma
    return float(eps_gen(student, gamma, min(max(R, -1.0), 1.0), teacher=teacher))

def _default_init(alpha, student, teacher, noise, zeta):
    """A starting point: the linear student's closed-form-like guess."""
    m2, c = _teacher_moments(teacher, noise)
    scale = 1.0 if student == "linear" else 0.5
    T = scale * c * min(alpha, 1.0) / (1.0 + zeta)
    s2 = 0.25 * min(alpha, 1.0) * m2 + 1e-3
    x = 1.0 / (abs(alpha * scale - 1.0) + zeta + 0.1)
    return np.array([T, math.log(s2), math.log(x)])


def _fixed_point_zero_T(v0, alpha, student, teacher, noise, zeta, interp, tol, max_iter=200,
                        damping=0.5):
    """Damped fixed-point iteration: x from its scalar equation, then (T, sigma^2)."""
    T, s2 = float(v0[0]), math.exp(float(v0[1]))
    x = math.inf if interp else math.exp(float(v0[2]))
    for it in range(1, max_iter + 1):
        Q = s2 + T * T
        if not interp:
            def g(lx, Q=Q, T=T):
                return zeta * math.exp(lx) + alpha * _prox(
                    student, teacher, noise, Q, T, math.exp(lx)).A - 1.0
            lo, hi = -30.0, 30.0
            glo, ghi = g(lo), g(hi)
            if glo > 0 or ghi < 0:
                return None, it, "fixed point: no root of the x equation in [e^-30, e^30]"
            x = math.exp(optimize.brentq(g, lo, hi, xtol=1e-14))
        mom = _prox(student, teacher, noise, Q, T, x)
        T_new = alpha * (mom.Dt + T * mom.A)
        s2_new = alpha * mom.D2
        if not (math.isfinite(T_new) and math.isfinite(s2_new)) or s2_new <= 0:
            return None, it, "fixed point: non-finite iterate"
        dT, ds = T_new - T, s2_new - s2
        T += damping * dT
        s2 += damping * ds
        if abs(dT) + abs(ds) / max(s2, 1.0) < tol:
            v = [T, math.log(s2)] + ([] if interp else [math.log(x)])
            return np.array(v), it, "fixed point converged"
    return None, max_iter, "fixed point: no convergence"


def _root_zero_T(v0, args, interp, tol):
    f = lambda v: _residual_zero_T(v, *args, interp)[0]  # noqa: E731
    n = 2 if interp else 3
    v0 = np.asarray(v0, dtype=float)[:n]
    try:
        with np.errstate(all="ignore"):
            sol = optimize.root(f, v0, method="hybr", tol=tol * 1e-2,
                                options={"maxfev": 400, "xtol": tol * 1e-2})
    except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError) as err:
        return None, 0, f"hybr raised {type(err).__name__}: {err}"
    res = f(sol.x)
    ok = bool(np.all(np.isfinite(res)) and np.max(np.abs(res)) < max(tol, 1e-12) * 1e2)
    return (sol.x if ok else None), int(sol.nfev), sol.message


def _try_branch(v0, args, interp, tol, use_fixed_point):
    """One branch (interpolating or finite x): hybr, or fixed point then hybr polish.

    Whatever the path, the result is accepted only if its residuals are below the
    tolerance (:func:`_root_zero_T`'s test).
    """
    if not use_fixed_point:
        v, nfev, msg = _root_zero_T(v0, args, interp, tol)
        return v, nfev, "hybr", msg
    v, it, msg = _fixed_point_zero_T(v0, *args, interp, tol)
    if v is None:
        return None, it, "fixed-point", msg
    v2, nfev, msg2 = _root_zero_T(v, args, interp, tol)
    if v2 is None:
        return None, it + nfev, "fixed-point", f"{msg}, but hybr polish failed: {msg2}"
    return v2, it + nfev, "fixed-point", msg


def _solve_zero_T(alpha, student, teacher, noise, zeta, init, tol):
    """Returns (v, x, moments, phase, method, nfev, zeta_x, message); v is None on failure."""
    args = (alpha, student, teacher, noise, zeta)
    v0 = _default_init(*args) if init is None else np.asarray(init, dtype=float)
    if v0.size == 2:
        v0 = np.r_[v0, _default_init(*args)[2]]
    # cold starts: the default and one with a small sigma^2 (nearly noiseless problems)
    starts = [v0]
    if init is None:
        m2, c = _teacher_moments(teacher, noise)
        near = np.array([c * min(alpha / (2.0 if student == "relu" else 1.0), 1.0),
                         v0[1] - 6.0, v0[2]])
        starts += [v0 - np.array([0.0, 6.0, 0.0]), near]
    branches = []
    for st in starts:
        if zeta == 0.0:
            # the interpolating branch (x = inf) first: when it exists (kappa >= 0) its
            # zero-loss minimizers are the global ones
            fin = st.copy()
            if init is None or np.size(init) == 2 or st[2] > math.log(1e6):
                fin[2] = math.log(10.0)
            branches += [("interp", st), ("finite", fin)]
        else:
            branches.append(("finite", st))
    notes, nfev_total = [], 0
    for use_fp in (False, True):
        for name, start in branches:
            interp = name == "interp"
            v, nfev, method, msg = _try_branch(start, args, interp, tol, use_fp)
            nfev_total += nfev
            if v is None:
                notes.append(f"{name}/{method}: {msg}")
                continue
            _, mom = _residual_zero_T(v, *args, interp)
            if interp:
                kappa = 1.0 - alpha * mom.A
                if kappa < 0.0:
                    notes.append(f"{name}/{method}: kappa = {kappa:.3g} < 0 (not a solution)")
                    continue
                return v, math.inf, mom, "interpolating", method, nfev_total, kappa, notes
            x = math.exp(v[2])
            return v, x, mom, "unique", method, nfev_total, zeta * x, notes
    return None, None, None, None, "hybr+fixed-point", nfev_total, math.nan, notes

def _solve_finite(alpha, student, teacher, noise, zeta, beta, init, tol):
    args = (alpha, student, teacher, noise, zeta, beta)
    if init is None:
        z = _solve_zero_T(alpha, student, teacher, noise, zeta, None, tol)
        if z[0] is not None and math.isfinite(z[1]):
            v = z[0]
            v0 = np.array([v[0], v[1], v[2] - math.log(beta)])
        else:
            d = _default_init(alpha, student, teacher, noise, zeta)
            v0 = np.array([d[0], d[1], d[2] - math.log(beta)])
    else:
        v0 = np.asarray(init, dtype=float)
    f = lambda v: _residual_finite(v, *args)[0]  # noqa: E731
    try:
        with np.errstate(all="ignore"):
            sol = optimize.root(f, v0, method="hybr", tol=tol * 1e-2,
                                options={"maxfev": 400, "xtol": tol * 1e-2})
    except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError) as err:
        return None, None, 0, f"hybr raised {type(err).__name__}: {err}"
    res, ft = _residual_finite(sol.x, *args)
    ok = bool(np.all(np.isfinite(res)) and np.max(np.abs(res)) < max(tol, 1e-12) * 1e2)
    return (sol.x if ok else None), ft, int(sol.nfev), sol.message


def _as_vector(v, x):
    """(T, ln sigma^2, ln x) from a zero-temperature solution vector."""
    lx = math.log(x) if math.isfinite(x) else math.log(1e3)
    return np.array([v[0], v[1], lx])


def _homotopy_zero_T(alpha, student, teacher, noise, zeta, tol, steps=24, max_halvings=8):
    """Fallback: continuation in alpha from a small load, where the cold start is easy.

    Geometric steps; a failed step is halved up to ``max_halvings`` times.
    """
    a_cur = min(0.1, 0.5 * alpha)
    ratio = (alpha / a_cur) ** (1.0 / steps)
    out = _solve_zero_T(a_cur, student, teacher, noise, zeta, None, tol)
    nfev = out[5]
    if out[0] is None:
        return (None, None, None, None, "alpha-homotopy", nfev, math.nan,
                [f"alpha-homotopy: no start at alpha = {a_cur:.3g}"])
    r = ratio
    halvings = 0
    while a_cur < alpha:
        a_next = min(alpha, a_cur * r)
        trial = _solve_zero_T(a_next, student, teacher, noise, zeta,
                              _as_vector(out[0], out[1]), tol)
        nfev += trial[5]
        if trial[0] is None:
            halvings += 1
            if halvings > max_halvings:
                return (None, None, None, None, "alpha-homotopy", nfev, math.nan,
                        [f"alpha-homotopy stalled at alpha = {a_cur:.4g}"])
            r = math.sqrt(r)
            continue
        out, a_cur = trial, a_next
    v, x, mom, phase, _, _, zx, notes = out
    return v, x, mom, phase, "alpha-homotopy", nfev, zx, ["cold start failed"] + notes


_MAX_COND = 1e9  # largest accepted condition number of the stationarity Jacobian
_MAX_COND_ERR = 1e-4  # largest accepted (condition number x residual)
_MAX_Q = 1e10  # larger order parameters signal a divergence of the learning curve


def _well_posed(fun, v, res, Q):
    """Accept a root only if it is well conditioned and finite-sized.

    The error of the root is about ``cond(J) * max(|res|, 1e-15)``; at a singular load
    (alpha = 1 for the linear student at zeta = 0, where the learning curve diverges) the
    Jacobian is singular and a 'root' is meaningless.
    """
    if not Q < _MAX_Q:
        return False, f"order parameters diverge (Q = {Q:.3g}): a divergence of the curve"
    n = v.size
    J = np.empty((n, n))
    for j in range(n):
        h = 1e-6 * max(1.0, abs(v[j]))
        e = np.zeros(n)
        e[j] = h
        try:
            J[:, j] = (fun(v + e) - fun(v - e)) / (2 * h)
        except (ZeroDivisionError, OverflowError, FloatingPointError, ValueError) as err:
            return False, f"saddle point at the edge of the domain ({type(err).__name__})"
    with np.errstate(all="ignore"):
        cond = float(np.linalg.cond(J)) if np.all(np.isfinite(J)) else math.inf
    err = cond * max(float(np.max(np.abs(res))), 1e-15)
    if not (err < _MAX_COND_ERR and cond < _MAX_COND):
        return False, (f"ill-conditioned saddle point (Jacobian condition number {cond:.3g}): "
                       "a singular load where the learning curve diverges or the order "
                       "parameters are undetermined")
    return True, "converged"


def _recovered(alpha, student, teacher, noise, zeta):
    """x of the noiseless boundary solution w = w* (Q = T^2 = 1), or None.

    With S = 0 and zeta -> 0+ a student that can represent the teacher recovers it exactly
    once its zero-loss constraints pin w: alpha >= 1 (linear), alpha >= 2 (ReLU: the
    positive-output half of the patterns are equalities). There sigma^2 = Q - T^2 = 0, and
    the sigma -> 0 limit of the T equation, T = alpha(E[(u*-omega) t] + T A) with
    A -> E[d(omega - u*)/d omega] = P(active) x/(1+x), gives x = 1/(alpha - 1) (linear) and
    x = 2/(alpha - 2) (ReLU); the log-variables of the root finder cannot reach sigma = 0.
    """
    if noise != 0.0 or zeta != 0.0:
        return None
    if student == "linear" and teacher == "linear" and alpha >= 1.0:
        return math.inf if alpha == 1.0 else 1.0 / (alpha - 1.0)
    if student == "relu" and alpha >= 2.0:
        return math.inf if alpha == 2.0 else 2.0 / (alpha - 2.0)
    return None

def solve(alpha, *, student="relu", teacher="linear", noise=0.25, zeta=0.0, beta=math.inf,
          init=None, tol=1e-12) -> ReplicaSolution:
    """Solve the replica-symmetric saddle point at load ``alpha``.

    Parameters
    ----------
    alpha : float
        Load :math:`\\alpha = P/N > 0`.
    student, teacher : {"relu", "linear"}
        Student activation :math:`g` and teacher activation :math:`g^*`.
    noise : float
        Teacher output-noise variance :math:`S \\ge 0`.
    zeta : float
        Decay :math:`\\zeta\\ge0` in the sum convention :math:`E = \\frac12\\sum_p(\\ldots)^2 +
        \\frac\\zeta2|w|^2` (``generalization.sum_decay_from_per_sample`` converts a
        per-sample decay).
        ``zeta = 0`` at :math:`\\beta = \\infty` means :math:`\\zeta\\to0^+`: the
        minimum-norm minimizer where the minimizers are degenerate.
    beta : float
        Inverse temperature; ``inf`` (default) is exhaustive training. Finite ``beta``
        needs ``zeta > 0`` (or a linear student at ``alpha > 1``).
    init : array-like, optional
        Starting point ``(T, ln(Q - T^2), ln x)`` at :math:`\\beta=\\infty` (``(T,
        ln sigma^2)`` is accepted for the interpolating phase), ``(T, ln(q - T^2),
        ln(Q - q))`` at finite ``beta``; :func:`learning_curve` passes the previous solution.
    tol : float
        Root-finder tolerance; a root is accepted when the stationarity residuals
        (dimensionless forms of the module docstring equations) are below ``100 * tol``
        (at least 1e-10) and their Jacobian is well conditioned.

    Returns
    -------
    ReplicaSolution
        With ``converged=False`` and a ``message`` when no saddle point was found
        (never a silent wrong answer): the order parameters are then ``nan``.
    """
    alpha, student, teacher, noise, zeta, beta = _check_args(alpha, student, teacher, noise,
                                                             zeta, beta)
    tol = check_real("tol", tol, 0.0, 1e-2, lo_open=True)
    t0 = time.perf_counter()
    nan = math.nan
    base = dict(alpha=alpha, student=student, teacher=teacher, noise=noise, zeta=zeta,
                beta=beta)
    if math.isinf(beta) and _recovered(alpha, student, teacher, noise, zeta) is not None:
        x = _recovered(alpha, student, teacher, noise, zeta)
        train = 0.25 if (student == "relu" and teacher == "linear") else 0.0
        return ReplicaSolution(**base, Q=1.0, T=1.0, x=x, q=1.0, gamma=1.0, R=1.0,
                               eps=_eps(student, teacher, 1.0, 1.0), train_energy=train,
                               free_energy=alpha * train,
                               active_fraction=0.5 if student == "relu" else 1.0, zeta_x=0.0,
                               phase="recovered", converged=True, method="analytic",
                               iterations=0, residual=0.0,
                               message="noiseless teacher recovered exactly: boundary "
                                       "solution Q = T^2 = 1 (see _recovered)",
                               seconds=time.perf_counter() - t0)
    if math.isinf(beta):
        v, x, mom, phase, method, nfev, zx, msg = _solve_zero_T(alpha, student, teacher, noise,
                                                                zeta, init, tol)
        if v is None and init is None:
            v, x, mom, phase, method, n2, zx, msg2 = _homotopy_zero_T(alpha, student, teacher,
                                                                       noise, zeta, tol)
            nfev += n2
            msg = msg + msg2
        if v is None:
            return ReplicaSolution(**base, Q=nan, T=nan, x=nan, q=nan, gamma=nan, R=nan,
                                   eps=nan, train_energy=nan, free_energy=nan,
                                   active_fraction=nan, zeta_x=nan, phase="none",
                                   converged=False, method=method, iterations=nfev,
                                   residual=nan,
                                   message="no saddle point found: " + "; ".join(msg),
                                   seconds=time.perf_counter() - t0)
        T = float(v[0])
        Q = math.exp(v[1]) + T * T
        interp = math.isinf(x)
        fun = lambda u: _residual_zero_T(u, alpha, student, teacher, noise, zeta, interp)[0]  # noqa: E731
        res = fun(v)
        ok, note = _well_posed(fun, v, res, Q)
        f = _free_energy_zero_T(alpha, zeta, Q, T, x, mom)
        return ReplicaSolution(**base, Q=Q, T=T, x=x, q=Q, gamma=math.sqrt(Q),
                               R=T / math.sqrt(Q), eps=_eps(student, teacher, Q, T),
                               train_energy=mom.train, free_energy=f,
                               active_fraction=mom.active, zeta_x=zx, phase=phase,
                               converged=ok, method=method, iterations=nfev,
                               residual=float(np.max(np.abs(res))),
                               message="; ".join([note] + msg),
                               seconds=time.perf_counter() - t0)
    v, ft, nfev, msg = _solve_finite(alpha, student, teacher, noise, zeta, beta, init, tol)
    if v is None:
        return ReplicaSolution(**base, Q=nan, T=nan, x=nan, q=nan, gamma=nan, R=nan, eps=nan,
                               train_energy=nan, free_energy=nan, active_fraction=nan,
                               zeta_x=nan, phase="none", converged=False, method="hybr",
                               iterations=nfev, residual=nan,
                               message=f"no saddle point found: {msg}",
                               seconds=time.perf_counter() - t0)
    T = float(v[0])
    q = math.exp(v[1]) + T * T
    D = math.exp(v[2])
    Q = q + D
    fun = lambda u: _residual_finite(u, alpha, student, teacher, noise, zeta, beta)[0]  # noqa: E731
    res = fun(v)
    ok, note = _well_posed(fun, v, res, Q)
    return ReplicaSolution(**base, Q=Q, T=T, x=beta * D, q=q, gamma=math.sqrt(Q),
                           R=T / math.sqrt(Q), eps=_eps(student, teacher, Q, T),
                           train_energy=ft.energy,
                           free_energy=_free_energy_finite(alpha, zeta, beta, Q, q, T, ft),
                           active_fraction=nan, zeta_x=zeta * beta * D, phase="thermal",
                           converged=ok, method="hybr", iterations=nfev,
                           residual=float(np.max(np.abs(res))), message=f"{note}; {msg}",
                           seconds=time.perf_counter() - t0)


def _as_init(sol: ReplicaSolution):
    if not sol.converged or sol.phase == "recovered":
        return None
    if math.isfinite(sol.beta):
        return np.array([sol.T, math.log(sol.q - sol.T**2), math.log(sol.Q - sol.q)])
    lx = math.log(sol.x) if math.isfinite(sol.x) else math.log(1e3)
    return np.array([sol.T, math.log(sol.Q - sol.T**2), lx])


def learning_curve(alphas, *, student="relu", teacher="linear", noise=0.25, zeta=0.0,
                   beta=math.inf, tol=1e-12, continuation=True,
                   max_refine=6) -> ReplicaCurve:
    """Solve :func:`solve` on a grid of loads (continuation in ``alpha`` by default).

    With ``continuation=True`` each solve starts from the previous solution; on failure
    the step is halved up to ``max_refine`` times (intermediate loads are solved and
    discarded), and a cold start is tried last. Points that still fail are returned with
    ``converged=False``. ``alphas`` are solved in the given order.

    Parameters
    ----------
    alphas : array-like
        Loads, each > 0.
    student, teacher, noise, zeta, beta, tol
        As in :func:`solve` (``zeta`` may also be an array of one value per load, e.g. a
        per-sample decay converted by ``generalization.sum_decay_from_per_sample``).
    continuation : bool
        Warm-start from the previous solution.
    max_refine : int
        Step halvings allowed between two grid points.
    """
    a = check_array("alphas", alphas, 0.0, None, lo_open=True, min_size=1).ravel()
    zetas = check_array("zeta", zeta, 0.0, None) * np.ones_like(a)
    for z in np.unique(zetas):
        _check_args(a[0], student, teacher, noise, z, beta)
    for al, z in zip(a, zetas, strict=True):
        _check_args(al, student, teacher, noise, z, beta)
    t0 = time.perf_counter()
    kw = dict(student=student, teacher=teacher, noise=noise, beta=beta, tol=tol)
    sols = []
    prev = None  # (alpha, zeta, solution)
    for al, z in zip(a, zetas, strict=True):
        if not continuation or prev is None:
            s = solve(al, zeta=z, **kw)
            if continuation and not s.converged:
                s = _refine(prev, al, z, kw, max_refine) or s
        else:
            s = solve(al, zeta=z, init=_as_init(prev[2]), **kw)
            if not s.converged:
                s2 = _refine(prev, al, z, kw, max_refine)
                if s2 is not None:
                    s = s2
            if not s.converged:
                cold = solve(al, zeta=z, **kw)
                if cold.converged:
                    s = cold
        sols.append(s)
        if s.converged:
            prev = (al, z, s)
    return ReplicaCurve(a, tuple(sols), bool(continuation), time.perf_counter() - t0)


def _refine(prev, alpha, zeta, kw, max_refine):
    """Walk from ``prev`` to ``(alpha, zeta)`` in halved steps; None if it fails."""
    if prev is None or not prev[2].converged:
        return None
    a0, z0, s0 = prev
    for level in range(1, max_refine + 1):
        n = 2**level
        s = s0
        ok = True
        for k in range(1, n + 1):
            lam = k / n
            s = solve(a0 + lam * (alpha - a0), zeta=z0 + lam * (zeta - z0), init=_as_init(s),
                      **kw)
            if not s.converged:
                ok = False
                break
        if ok:
            return s
    return None
