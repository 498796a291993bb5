r"""Order-parameter dynamics of online SGD for normalized and plain students.

Symbol map: ``gamma`` = :math:`\gamma` (scale of the normalized student, = ``Q``),
``R`` = overlap with the teacher, ``L`` = :math:`|w|/\sqrt N` (length of the raw weight),
``lr`` = :math:`\eta`, ``zeta`` = :math:`\zeta` (gamma decay), time :math:`t = j/N`
(``j`` = SGD step). Integrals :math:`I_{1,2,3}` from :mod:`.integrals`.

Students and loss convention
----------------------------
Per sample :math:`\ell = \tfrac12 (g(t) - g(s))^2 + \tfrac{\zeta}{2}\gamma^2`, teacher
:math:`t = w^{*}\cdot x` with :math:`|w^*|^2 = N`, :math:`x \sim N(0, I/N)`.

* ``"wn-decay"`` / ``"wn"`` -- normalized student
  :math:`s = \gamma \sqrt N\, w\cdot x / |w|` with a decay on gamma (BN read as WN +
  gamma decay, Luo et al. eq. 4; the name of :mod:`perceptron_theory.vocabulary`,
  formerly ``"bn"``, which still works with a :class:`DeprecationWarning`); ``"wn"`` is
  ``"wn-decay"`` at :math:`\zeta = 0`. SGD (Luo et al. eq. 5) updates :math:`w` with rate
  :math:`\eta` and the scalar :math:`\gamma` with rate :math:`\eta/N`, so that all order
  parameters move on the time scale :math:`t = j/N` (as Luo et al. eq. 9 assume). In the
  limit :math:`N \to \infty`:

  .. math::

      \frac{d\gamma}{dt} = \eta\Big(\frac{I_1}{\gamma} - \zeta\gamma\Big), \quad
      \frac{dR}{dt} = \frac{\eta}{L^2}(\gamma I_3 - R I_1)
                      - \frac{\eta^2 \gamma^2 R}{2 L^4} I_2, \quad
      \frac{dL}{dt} = \frac{\eta^2 \gamma^2}{2 L^3} I_2 .

  This is Luo et al. eq. (6) re-derived from eq. (5): :math:`\Delta w \perp w` gives
  :math:`\Delta L^2 = |\Delta w|^2/N`, and :math:`\Delta(w\cdot w^*)/N = (\eta/N)(\gamma/L)
  \delta (t - R s/\gamma)`.
* ``"sgd"`` -- plain student :math:`s = w\cdot x`, :math:`Q^2 = |w|^2/N`; here
  :math:`\gamma \equiv L \equiv Q` and

  .. math::

      \frac{dQ}{dt} = \frac{2\eta I_1 + \eta^2 I_2}{2Q}, \qquad
      \frac{dR}{dt} = \frac{\eta I_3}{Q} - R\,\frac{2\eta I_1 + \eta^2 I_2}{2Q^2}.

Peer options: label noise, L2 decay, another teacher
----------------------------------------------------
As the public teacher-student codes (Goldt's pyscm; Saad & Solla 1995; Biehl &
Schwarze 1995) offer them:

* ``teacher`` -- the teacher's activation :math:`g^*` may differ from the student's
  (every pair of linear, ReLU, erf; closed forms in :mod:`.integrals`, *Mixed pairs*):
  :math:`I_{1,2,3}` and :math:`\epsilon` take :math:`g^*(t)` in place of :math:`g(t)`.
* ``noise`` -- labels :math:`y = g^*(t) + \sqrt S\,\xi`, :math:`\xi \sim N(0, 1)`: the
  noise averages out of the :math:`O(\eta)` terms and adds :math:`S\,K`,
  :math:`K = E[g'(s)^2]` (:func:`.integrals.noise_factor`), to :math:`I_2` -- for every
  method, since :math:`I_2 = E[\delta^2]` is the only place :math:`\delta^2` enters.
  ``eps`` stays the noise-free generalization error (the test loss is ``eps + S``).
* ``weight_decay`` (``"sgd"`` only) -- per-sample loss
  :math:`\tfrac12 (y - g(s))^2 + \tfrac{\lambda}{2N}|w|^2` (:math:`= \ldots +
  \tfrac\lambda2 Q^2`, the plain student's analogue of the gamma decay), so
  :math:`w' = (1 - \eta\lambda/N)\,w + \eta\,\delta\,x`, the convention of
  :func:`perceptron_theory.simulate.online.run`. Then
  :math:`\Delta Q^2 = (2\eta\delta s + \eta^2\delta^2 - 2\eta\lambda Q^2)/N + O(N^{-2})`
  and :math:`\Delta(w\cdot w^*/N) = (\eta\delta t - \eta\lambda QR)/N`, so

  .. math::

      \frac{dQ}{dt} = \frac{2\eta I_1 + \eta^2 (I_2 + S K)}{2Q} - \eta\lambda Q, \qquad
      \frac{dR}{dt} = \frac{\eta I_3}{Q} - R\,\frac{2\eta I_1 + \eta^2 (I_2 + S K)}{2Q^2}

  (the decay rescales :math:`w` and cancels from :math:`dR/dt`). At the defaults
  (``teacher=None``, ``noise=0``, ``weight_decay=0``) every expression is the one above.

Fixed points and learning-rate limits (L-T1)
--------------------------------------------
In the small-:math:`\eta` limit (Luo et al. Prop. 1) the normalized student has the
fixed point :math:`(\gamma_0, 1, L_0)`, :math:`L_0` arbitrary, with :math:`\gamma_0` the root
of :math:`I_1(\gamma, 1) = \zeta\gamma^2`: :math:`\gamma_0 = 1/(2\zeta + 1)` for ReLU,
:math:`1/(\zeta + 1)` for the linear student. Linearizing :math:`dR/dt` at that point
(Luo et al. Prop. 2) gives
:math:`\lambda_R = \frac{\eta\gamma_0}{2L_0^2}\,\partial_R I_2\,(\eta_{\max} - \eta_{\rm eff})` with

.. math::

    \eta_{\max} = \frac{\gamma_0 \partial_R I_3 - \partial_R I_1 - \zeta\gamma_0^2}
                       {\gamma_0\, \partial_R I_2 / 2}, \qquad
    \eta_{\rm eff} = \frac{\eta \gamma_0}{L_0^2},

which reduces to WN's :math:`\partial_R(I_3 - I_1)/(\partial_R I_2/2)`,
:math:`\eta_{\rm eff} = \eta/L_0^2` at :math:`\zeta = 0`; for ReLU
:math:`\eta_{\max}^{bn} = 2(1 + 2\zeta)` and for the linear student :math:`2(1 + \zeta)`.
Our copy of the paper prints
:math:`(\partial_R(\gamma_0 I_3 - I_1) - \zeta\gamma_0)/(\partial_R I_2/2)`
(:func:`eta_max_paper`): that expression is inconsistent with the paper's own
:math:`\lambda_R` and gives :math:`\gamma_0 + 1/\gamma_0 < 2 + 2\zeta` for ReLU, violating
Prop. 4, which our derived form satisfies (:math:`2 + 4\zeta \ge 2 + 2\zeta`).

Two approximations of Prop. 2 are avoidable and :func:`lr_limits` removes them
numerically (``eta_max_exact``): for BN :math:`I_2(\gamma_0, 1) = E[g'(\gamma_0 t)^2
(g(t) - g(\gamma_0 t))^2] > 0`, so :math:`R = 1` is not an exact fixed point at finite
:math:`\eta` and :math:`L` grows as :math:`L^4 \approx L_0^4 + 2\eta^2\gamma_0^2 I_2 t`
(BN anneals its own effective rate); and the :math:`(\gamma, R)` Jacobian is not
triangular. Keeping both, the fixed point of :math:`(\gamma, R)` at fixed :math:`L`
(quasi-static; :func:`quasi_static_branch`) is an *imperfect* transcritical
bifurcation: for WN (:math:`\zeta = 0`) R = 1 loses stability exactly at
:math:`\eta_{\rm eff} = \eta_{\max}`, while for BN the stable branch slides continuously
from :math:`1 - R^* \approx \eta_{\rm eff}\gamma_0 I_2(\gamma_0, 1)/(2D)`, with
:math:`D = -\partial_R(\gamma I_3 - R I_1)` at :math:`(\gamma_0, 1)` (:math:`\gamma_0` for
ReLU, :math:`2\gamma_0` for the linear student), to :math:`R^*` well below 1 and
never loses stability, so BN has no sharp maximum rate in the exact limit: its
:math:`\eta_{\max}` marks the crossover (``LRLimits.R_star_at_eta_max``).

Plain SGD: the fixed point is :math:`(Q, R) = (1, 1)` for every :math:`\eta`, and its
:math:`2\times2` Jacobian gives the exact :math:`\eta_{\max}^{sgd}`; Luo et al. (after
Yoshida et al. 2017) use the WN expression with :math:`L = 1`.
With label noise, L2 decay or another teacher the fixed point leaves :math:`(1, 1)`:
:math:`(Q_0, 1)` at small :math:`\eta` with :math:`I_1(Q_0, 1) = \lambda Q_0^2`, then
:math:`R^* < 1` (:func:`sgd_branch`, numerical continuation), the plain student's version
of BN's imperfect bifurcation; :func:`lr_limits` gives the first-order
:math:`\eta_{\max}` there and the rate where the followed fixed point loses stability.
Often (noise) it runs off to large :math:`Q` before any eigenvalue crosses 0 -- for the
linear student :math:`dQ^2/dt \ge 4 S > 0` at :math:`\eta = 2` -- and the exact value
is then reported as not converged (NaN), not guessed. The normalized students'
fixed points and limits with noise or another teacher are not implemented
(ValueError); their ODEs are.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import check_array, check_choice, check_int, check_real
from perceptron_theory._io import PlainDict
from perceptron_theory.theory import integrals as _int
from perceptron_theory.theory._codegen import lambdified
from perceptron_theory.theory.integrals import sp  # sympy, imported on first use

__all__ = [
    "METHODS",
    "Trajectory",
    "FixedPoint",
    "LRLimits",
    "rhs",
    "integrate",
    "gamma0_closed_form",
    "fixed_point",
    "jacobian",
    "symbolic_system",
    "eta_max_paper",
    "lr_limits",
    "Branch",
    "quasi_static_branch",
    "SGDBranch",
    "sgd_branch",
]

#: The models of this module (:func:`perceptron_theory.vocabulary.methods`).
METHODS = _vocab.methods("dynamics")

#: Largest learning rate and gamma decay accepted. Beyond them the system is so stiff
#: that the solver stalls (zeta = 1e308 never finished) or the fixed point underflows
#: (gamma0 = 1/(2 zeta + 1) = 0), and they are far outside any stable regime
#: (eta_max ~ 2 + 4 zeta).
LR_MAX = ZETA_MAX = 1e6
#: Longest integration time accepted, in units of N steps: every trajectory has reached
#: its fixed point or diverged long before (the slowest rates are ~ lr zeta).
T_MAX = 1e9
#: Right-hand-side evaluations after which :func:`integrate` gives up (~7 s): a safety
#: net under the ranges above, whose slowest corners (lr = 1e6, zeta = 1e-6,
#: t_max = 1e9) need ~3e5.
MAX_EVALUATIONS = 500_000
#: Most output times of a trajectory.
MAX_POINTS = 10**6
#: Range of the raw weight length L0 at the fixed point in :func:`lr_limits` (the
#: effective rate per lr is gamma0 / L0^2, which must stay finite and non-zero).
L_RANGE = (1e-6, 1e6)

# ---------------------------------------------------------------------- symbolic system
@functools.cache
def _symbols():
    """The ODE's sympy symbols ``(gamma, R, L, eta, zeta)``, the integrals as undefined
    functions, and placeholders for their values and partial derivatives (built on first
    use: a warm process evaluates the cached right-hand side without sympy)."""
    g, R, L, eta, zeta, lam, S = sp.symbols("gamma R L eta zeta lam S", real=True)
    names = ("I1", "I2", "I3", "K")  # K = E[g'(s)^2], the noise factor of I2
    Isym = {k: sp.Function(k) for k in names}
    vals = {k: sp.Symbol(f"v_{k}") for k in names}
    dvals = {(k, w): sp.Symbol(f"v_{k}_{w}") for k in names for w in ("Q", "R")}
    return (g, R, L, eta, zeta, lam, S), Isym, vals, dvals


def _check_method(method: str, zeta: float) -> tuple[str, float]:
    """``(method, zeta)`` checked; a deprecated method name is mapped (with a warning)."""
    method = check_choice("method", _vocab.resolve_method("dynamics", method, 4), METHODS)
    zeta = check_real("zeta", zeta, lo=0.0, hi=ZETA_MAX)
    if method in ("wn", "sgd") and zeta != 0.0:
        raise ValueError(f"zeta must be 0 for method {method!r} (gamma decay is wn-decay's), "
                         f"got {zeta!r}")
    return method, zeta


def symbolic_system(method: str) -> tuple[tuple[sp.Symbol, ...], sp.Matrix, sp.Matrix]:
    """Return ``(state, f, J)``: the ODE right-hand side and its Jacobian in sympy.

    ``f`` and ``J`` contain the integrals as undefined functions ``I1(gamma, R)`` etc.
    (and their derivatives), so the same expressions serve every activation.
    """
    return _symbolic_system(_check_method(method, 0.0)[0])


@functools.cache
def _symbolic_system(method: str) -> tuple[tuple[sp.Symbol, ...], sp.Matrix, sp.Matrix]:
    (_g, _R, _L, _eta, _zeta, _lam, _S), _Isym, _, _ = _symbols()
    I1, I3, K = (_Isym[k](_g, _R) for k in ("I1", "I3", "K"))
    I2 = _Isym["I2"](_g, _R) + _S * K  # label noise adds S E[g'(s)^2]
    if method == "sgd":
        state = (_g, _R)  # gamma plays Q
        # the L2 decay lam/(2N)|w|^2 shrinks w: -eta lam Q in dQ/dt, nothing in dR/dt
        dq = (2 * _eta * I1 + _eta**2 * I2) / (2 * _g) - _eta * _lam * _g
        dr = _eta * I3 / _g - _R * (2 * _eta * I1 + _eta**2 * I2) / (2 * _g**2)
        f = sp.Matrix([dq, dr])
    else:
        state = (_g, _R, _L)
        f = sp.Matrix([
            _eta * (I1 / _g - _zeta * _g),
            _eta * (_g * I3 - _R * I1) / _L**2 - _eta**2 * _g**2 * _R * I2 / (2 * _L**4),
            _eta**2 * _g**2 * I2 / (2 * _L**3),
        ])
    return state, f, f.jacobian(sp.Matrix(state))


def _substitute(expr):
    (_g, _R, *_), _Isym, _vals, _dvals = _symbols()
    rep = {}
    for k, F in _Isym.items():
        rep[sp.Derivative(F(_g, _R), _g)] = _dvals[(k, "Q")]
        rep[sp.Derivative(F(_g, _R), _R)] = _dvals[(k, "R")]
    expr = expr.subs(rep)
    return expr.subs({F(_g, _R): _vals[k] for k, F in _Isym.items()})


def _args():
    state, _, vals, dvals = _symbols()
    return (*state, *vals.values(), *dvals.values())


@functools.cache
def _compiled_system(method: str):
    def derive(which):
        _, f, J = _symbolic_system(method)
        return sp.lambdify(_args(), _substitute(f if which == "f" else J), modules="numpy",
                           cse=True)

    return tuple(lambdified(f"dynamics:{method}:{w}", lambda w=w: derive(w), ("dynamics.py",))
                 for w in ("f", "J"))


def _integral_args(activation: str, gamma: float, R: float, with_derivatives: bool,
                   teacher: str | None = None):
    """Values (and partial derivatives) of I1, I2, I3 and K = E[g'(s)^2] at (gamma, R),
    in the order of :func:`_args`."""
    R = min(max(R, -1.0), 1.0)
    vals = list(_int.scalar_kernel(activation, with_derivatives, teacher)(gamma, R))
    k = float(_int._noise_factor(activation, gamma))
    if not with_derivatives:
        return vals + [k] + [0.0] * 8
    dk = float(_int._noise_factor(activation, gamma, derivative=True))
    return vals[:3] + [k] + vals[3:] + [dk, 0.0]


#: Largest label-noise variance S accepted (the teacher's output has variance <= 1).
NOISE_MAX = 1e6


def _check_extras(method: str, activation: str, teacher, noise, weight_decay):
    """``(teacher, noise, weight_decay)`` checked: the peer-parity options."""
    teacher = _int._check_teacher(activation, teacher)
    noise = check_real("noise", noise, lo=0.0, hi=NOISE_MAX)
    weight_decay = check_real("weight_decay", weight_decay, lo=0.0, hi=ZETA_MAX)
    if method != "sgd" and weight_decay != 0.0:
        raise ValueError(f"weight_decay must be 0 for method {method!r} (an L2 decay on w is "
                         f"the plain student's; the normalized students decay gamma: zeta), "
                         f"got {weight_decay!r}")
    return teacher, noise, weight_decay


def rhs(method: str, activation: str, lr: float, zeta: float = 0.0, *,
        teacher: str | None = None, noise: float = 0.0, weight_decay: float = 0.0):
    """Return ``f(t, y)`` for :func:`scipy.integrate.solve_ivp`.

    ``y = (gamma, R, L)`` for ``"wn-decay"``/``"wn"``, ``y = (Q, R)`` for ``"sgd"``.
    ``teacher``, ``noise`` (S), ``weight_decay`` (lambda, ``"sgd"`` only): module
    docstring, *Peer options*.
    """
    method, zeta = _check_method(method, zeta)
    check_choice("activation", activation, _int.ACTIVATIONS)
    teacher, noise, weight_decay = _check_extras(method, activation, teacher, noise,
                                                 weight_decay)
    lr = check_real("lr", lr, lo=0.0, lo_open=True)
    f_num, _ = _compiled_system(method)

    def f(t, y):
        g = max(float(y[0]), 1e-12)
        R = min(max(float(y[1]), -1.0), 1.0)
        L = float(y[2]) if len(y) > 2 else 1.0
        args = _integral_args(activation, g, R, False, teacher)
        return np.asarray(f_num(g, R, L, lr, zeta, weight_decay, noise, *args),
                          dtype=float).ravel()

    return f


def jacobian(method: str, activation: str, lr: float, zeta: float, point, *,
             teacher: str | None = None, noise: float = 0.0,
             weight_decay: float = 0.0) -> np.ndarray:
    """Jacobian of :func:`rhs` at ``point`` (``(gamma, R, L)`` or ``(Q, R)``), from sympy."""
    method, zeta = _check_method(method, zeta)
    teacher, noise, weight_decay = _check_extras(method, activation, teacher, noise,
                                                 weight_decay)
    lr = check_real("lr", lr, lo=0.0, lo_open=True)
    g = check_real("gamma", point[0], lo=0.0, lo_open=True)
    R = check_real("R", point[1], lo=-1.0, hi=1.0)
    L = check_real("L", point[2], lo=0.0, lo_open=True) if len(point) > 2 else 1.0
    _, J_num = _compiled_system(method)
    args = _integral_args(activation, g, R, True, teacher)
    return np.asarray(J_num(g, R, L, lr, zeta, weight_decay, noise, *args), dtype=float)


# ---------------------------------------------------------------------- trajectories
@dataclass(frozen=True)
class Trajectory(PlainDict):
    """An integrated ODE trajectory; ``eps`` is the generalization error along it.

    ``status`` and ``message`` are :func:`scipy.integrate.solve_ivp`'s, except that
    ``status = -1`` also marks a trajectory whose gamma (Q for SGD) left ``(0, inf)``:
    ``eps`` is undefined (NaN; ``null`` in JSON) from there on, and ``message`` says when.
    """

    method: str
    activation: str
    lr: float
    zeta: float
    t: np.ndarray
    gamma: np.ndarray
    R: np.ndarray
    L: np.ndarray
    eps: np.ndarray
    diverged: bool
    t_diverged: float | None
    status: int
    message: str
    teacher: str | None = None
    noise: float = 0.0
    weight_decay: float = 0.0


def integrate(method: str, activation: str, *, lr: float, zeta: float = 0.0,
              teacher: str | None = None, noise: float = 0.0, weight_decay: float = 0.0,
              gamma_init: float | None = None,
              R_init: float = _vocab.INITIAL_CONDITIONS["R_init"],
              L_init: float = _vocab.INITIAL_CONDITIONS["L_init"],
              t_max: float = 50.0, n_points: int = 201, rtol: float = 1e-8,
              atol: float = 1e-10, blowup: float = 1e6, freeze_L: bool = False) -> Trajectory:
    """Integrate the order-parameter ODEs with :func:`scipy.integrate.solve_ivp` (LSODA).

    Parameters
    ----------
    method : {"wn-decay", "wn", "sgd"}
        Student and update rule (module docstring; ``"bn"``: deprecated name of
        ``"wn-decay"``).
    activation : {"linear", "relu", "erf"}
        The student's activation (and the teacher's unless ``teacher`` is given).
    lr : float
        Learning rate :math:`\\eta > 0`.
    zeta : float
        Gamma decay (``"wn-decay"`` only).
    teacher : {"linear", "relu", "erf"}, optional
        The teacher's activation :math:`g^*` (default: the student's); any pair.
    noise : float
        Label-noise variance :math:`S \\ge 0` (:math:`y = g^*(t) + \\sqrt S\\,\\xi`);
        ``eps`` stays the noise-free generalization error (add ``S`` for the test loss).
    weight_decay : float
        L2 decay :math:`\\lambda \\ge 0` of the plain student (``"sgd"`` only), per sample
        :math:`\\tfrac{\\lambda}{2N}|w|^2` (module docstring).
    gamma_init, R_init, L_init : float
        Initial condition, by default :data:`perceptron_theory.vocabulary.INITIAL_CONDITIONS`
        (gamma = 1, R = 0, L = 1), the same as :func:`perceptron_theory.simulate.online.run`.
        For ``"sgd"`` the plain student's scale :math:`Q = |w|/\\sqrt N` is ``L_init``, as in
        the simulation; ``gamma_init`` there is ignored (given and different from
        ``L_init`` it is still read as ``Q(0)``, the old convention, with a
        :class:`DeprecationWarning`).
        ``L_init`` lies in :data:`L_RANGE`.
    t_max : float
        Final time, in units of N SGD steps.
    n_points : int
        Number of output times on ``[0, t_max]``.
    rtol, atol : float
        Solver tolerances.
    blowup : float
        A trajectory whose ``gamma`` or ``L`` exceeds this is reported ``diverged``.
    freeze_L : bool
        Hold ``L`` at ``L_init`` (the quasi-static system of :func:`quasi_static_branch`).
    """
    method, zeta = _check_method(method, zeta)
    check_choice("activation", activation, _int.ACTIVATIONS)
    teacher, noise, weight_decay = _check_extras(method, activation, teacher, noise,
                                                 weight_decay)
    lr = check_real("lr", lr, lo=0.0, hi=LR_MAX, lo_open=True)
    blowup = check_real("blowup", blowup, lo=0.0, lo_open=True)
    r0 = check_real("R_init", R_init, lo=-1.0, hi=1.0)
    l0 = check_real("L_init", L_init, L_RANGE[0], min(L_RANGE[1], blowup))
    if gamma_init is None:
        gamma_init = l0 if method == "sgd" else _vocab.INITIAL_CONDITIONS["gamma_init"]
    g0 = check_real("gamma_init", gamma_init, lo=0.0, hi=blowup, lo_open=True, hi_open=True)
    if method == "sgd" and g0 != l0:
        warnings.warn("gamma_init as Q(0) of 'sgd' is deprecated: the plain student's scale "
                      "is L_init (|w|/sqrt N), as in simulate; pass L_init", DeprecationWarning,
                      stacklevel=2)
    t_max = check_real("t_max", t_max, lo=0.0, hi=T_MAX, lo_open=True)
    n_points = check_int("n_points", n_points, lo=2, hi=MAX_POINTS)
    rtol = check_real("rtol", rtol, lo=0.0, hi=1.0, lo_open=True)
    atol = check_real("atol", atol, lo=0.0, lo_open=True)
    f_counted = rhs(method, activation, lr, zeta, teacher=teacher, noise=noise,
                    weight_decay=weight_decay)
    n_eval = [0]

    def f_full(t, y):
        n_eval[0] += 1
        if n_eval[0] > MAX_EVALUATIONS:
            raise _TooStiff(t)
        return f_counted(t, y)
    if freeze_L and method != "sgd":
        def f(t, y):
            out = f_full(t, y)
            out[2] = 0.0
            return out
    else:
        f = f_full
    y0 = [g0, r0] if method == "sgd" else [g0, r0, l0]

    def blow(t, y):
        return blowup - max(abs(y[0]), abs(y[-1]))

    blow.terminal = True
    t_eval = np.linspace(0.0, t_max, n_points)
    from scipy import integrate as _integrate  # ~0.5 s: only when integrating

    try:
        with np.errstate(all="ignore"):
            sol = _integrate.solve_ivp(f, (0.0, t_max), y0, method="LSODA", t_eval=t_eval,
                                       rtol=rtol, atol=atol, events=blow)
    except _TooStiff as exc:
        raise ValueError(f"the ODE solver gave up after {MAX_EVALUATIONS} evaluations at "
                         f"t={exc.args[0]:.4g} of t_max={t_max:g}: the system is too stiff "
                         f"at lr={lr:g}, zeta={zeta:g}; lower lr, zeta or t_max") from None
    y = sol.y
    finite = np.all(np.isfinite(y), axis=0)
    diverged = bool(sol.status == 1 or not np.all(finite) or sol.status < 0 and not np.all(finite))
    t_div = float(sol.t_events[0][0]) if sol.t_events and len(sol.t_events[0]) else None
    if diverged and t_div is None and not np.all(finite):
        t_div = float(sol.t[np.argmin(finite)])
    g = y[0]
    R = np.clip(y[1], -1.0, 1.0)
    L = y[0] if method == "sgd" else y[2]
    ok = finite & (g > 0)
    eps = np.full(g.shape, np.nan)
    if np.any(ok):
        eps[ok] = _int.eps_gen(activation, g[ok], R[ok], teacher=teacher)
    status, message = int(sol.status), str(sol.message)
    if not diverged and not np.all(ok):
        status = -1
        message = (f"{'Q' if method == 'sgd' else 'gamma'} left (0, inf) at "
                   f"t={float(sol.t[np.argmin(ok)]):.4g}: eps is undefined from there")
    return Trajectory(method, activation, lr, zeta, sol.t, g, R, L, eps, diverged, t_div,
                      status, message, teacher, noise, weight_decay)


class _TooStiff(Exception):
    """Raised inside the solver when :data:`MAX_EVALUATIONS` is exceeded."""


# ---------------------------------------------------------------------- fixed points
def gamma0_closed_form(activation: str, zeta: float) -> float | None:
    """Closed-form :math:`\\gamma_0` of Prop. 1.

    ReLU: :math:`1/(2\\zeta+1)`; linear: :math:`1/(\\zeta+1)`.

    Returns ``None`` for ``"erf"``, which has no closed form (use :func:`fixed_point`).
    """
    check_choice("activation", activation, _int.ACTIVATIONS)
    zeta = check_real("zeta", zeta, lo=0.0, hi=ZETA_MAX)
    return {"relu": 1.0 / (2.0 * zeta + 1.0), "linear": 1.0 / (zeta + 1.0)}.get(activation)


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``(gamma, R, L)``; for ``"sgd"`` ``gamma`` is ``Q`` and ``L = Q``."""

    method: str
    activation: str
    zeta: float
    lr: float | None
    gamma: float
    R: float
    L: float
    source: str
    converged: bool
    residual: float
    teacher: str | None = None
    noise: float = 0.0
    weight_decay: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _gamma0_root(activation: str, zeta: float, teacher: str | None = None) -> float:
    """Root of :math:`I_1(\\gamma, 1) = \\zeta\\gamma^2` (the small-lr fixed point)."""

    def h(g):
        return _int.evaluate("I1", activation, g, 1.0, teacher=teacher).item() / g - zeta * g

    from scipy import optimize as _optimize  # ~0.4 s: only where a root is needed

    hi = 1.0
    while h(hi) > 0:
        hi *= 2.0
        if hi > L_RANGE[1]:
            raise ValueError(f"no small-lr fixed point: I1(Q, 1)/Q - {zeta:g} Q stays positive "
                             f"up to Q = {L_RANGE[1]:g} ({activation} student)")
    return float(_optimize.brentq(h, 1e-9, hi, xtol=1e-15))


def _has_extras(activation: str, teacher: str, noise: float, weight_decay: float) -> bool:
    return teacher != activation or noise != 0.0 or weight_decay != 0.0


@dataclass(frozen=True)
class SGDBranch(PlainDict):
    """Fixed points of plain SGD with label noise, L2 decay or another teacher, along a
    grid of learning rates ``lr`` (continuation from the small-lr point ``(Q0, 1)``).

    ``max_real_eig``: largest real part of the ``(Q, R)`` Jacobian's eigenvalues there
    (NaN where the root did not converge: past a fold, or R hit +-1).
    """

    activation: str
    teacher: str
    noise: float
    weight_decay: float
    Q0: float
    lr: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    max_real_eig: np.ndarray
    converged: np.ndarray


def sgd_branch(activation: str, lr, *, teacher: str | None = None, noise: float = 0.0,
               weight_decay: float = 0.0) -> SGDBranch:
    r"""Follow the fixed point of the plain student (``"sgd"``) in the learning rate.

    Label noise, an L2 decay or a teacher other than the student moves the fixed point
    off :math:`(Q, R) = (1, 1)`: at small :math:`\eta` it is :math:`(Q_0, 1)` with
    :math:`I_1(Q_0, 1) = \lambda Q_0^2` (as gamma decay for the normalized student), and
    at :math:`R = 1` the drift :math:`dR/dt = -\eta^2 I_2(Q, 1)/(2Q^2) < 0` pushes
    :math:`R^*` below 1 once :math:`I_2(Q_0, 1) > 0` (noise: :math:`S K(Q_0)`; decay:
    :math:`Q_0 \ne 1`; another teacher: the residual of the best student). Roots of the
    right-hand side in :math:`(Q, \phi)`, :math:`R = \cos\phi`, by
    :func:`scipy.optimize.root` from the previous grid point (step halved on failure).
    """
    check_choice("activation", activation, _int.ACTIVATIONS)
    teacher, noise, weight_decay = _check_extras("sgd", activation, teacher, noise,
                                                 weight_decay)
    grid = check_array("lr", lr, lo=0.0, hi=LR_MAX, lo_open=True, min_size=1)
    if np.any(np.diff(grid) <= 0):
        raise ValueError("lr must be strictly increasing")
    q0 = _gamma0_root(activation, weight_decay, teacher)
    kw = dict(teacher=teacher, noise=noise, weight_decay=weight_decay)
    from scipy import optimize as _optimize  # ~0.4 s: only where a root is needed

    def solve(eta, start):
        f = rhs("sgd", activation, eta, **kw)

        def F(p):
            out = f(0.0, [p[0], np.cos(p[1])])
            return [out[0] / eta, out[1] / eta]

        sol = _optimize.root(F, start, method="hybr", options={"xtol": 1e-13})
        ok = bool(sol.x[0] > 0 and np.max(np.abs(F(sol.x))) < 1e-9)
        return np.array([sol.x[0], abs(sol.x[1])]), ok

    rows = []
    for target, x, ok in _continuation(solve, grid, np.array([q0, 1e-2])):
        m = (_max_real_eig(jacobian("sgd", activation, target, 0.0, (x[0], np.cos(x[1])),
                                    **kw)) if ok else np.nan)
        rows.append((x[0], np.cos(x[1]), m, ok))
    Q, R, m, ok = (np.array(c) for c in zip(*rows, strict=True))
    return SGDBranch(activation, teacher, noise, weight_decay, q0, grid, Q, R, m,
                     ok.astype(bool))


def fixed_point(method: str, activation: str, zeta: float = 0.0, *, lr: float | None = None,
                L: float = 1.0, teacher: str | None = None, noise: float = 0.0,
                weight_decay: float = 0.0) -> FixedPoint:
    """Fixed point of the dynamics.

    With ``lr=None``: the small-learning-rate fixed point of Luo et al. Prop. 1,
    :math:`(\\gamma_0, 1, L)` (closed form where one exists, else a scalar root).
    With ``lr`` given (``"wn-decay"``/``"wn"``): the quasi-static fixed point of
    :math:`(\\gamma, R)` at fixed ``L`` with the :math:`\\eta^2` terms kept, followed from
    small rates by continuation (:func:`quasi_static_branch`, roots in
    :math:`R = \\cos\\phi`). ``"sgd"``: :math:`(1, 1)` exactly.

    ``"sgd"`` with ``noise``, ``weight_decay`` or another ``teacher``: with ``lr=None``
    :math:`(Q_0, 1)`, :math:`I_1(Q_0, 1) = \\lambda Q_0^2`; with ``lr`` the root followed by
    continuation (:func:`sgd_branch`), :math:`R^* < 1`. The normalized students'
    fixed points with noise or another teacher are not implemented (ValueError).
    """
    method, zeta = _check_method(method, zeta)
    check_choice("activation", activation, _int.ACTIVATIONS)
    teacher, noise, weight_decay = _check_extras(method, activation, teacher, noise,
                                                 weight_decay)
    L = check_real("L", L, *L_RANGE)
    if lr is not None:
        lr = check_real("lr", lr, lo=0.0, hi=LR_MAX, lo_open=True)
    extras = _has_extras(activation, teacher, noise, weight_decay)
    if method != "sgd" and extras:
        raise ValueError(f"fixed_point of {method!r} with label noise or a teacher other than "
                         f"the student is not implemented (only 'sgd'); got teacher="
                         f"{teacher!r}, noise={noise!r}")
    if method == "sgd" and extras:
        tag = (teacher, noise, weight_decay)
        if lr is None:
            q0 = _gamma0_root(activation, weight_decay, teacher)
            res = abs(_int.evaluate("I1", activation, q0, 1.0, teacher=teacher).item() / q0
                      - weight_decay * q0)
            return FixedPoint(method, activation, zeta, None, q0, 1.0, q0, "root", True, res,
                              *tag)
        br = sgd_branch(activation, np.linspace(lr / 20, lr, 20), teacher=teacher,
                        noise=noise, weight_decay=weight_decay)
        q, R = float(br.Q[-1]), float(br.R[-1])
        out = rhs(method, activation, lr, teacher=teacher, noise=noise,
                  weight_decay=weight_decay)(0.0, [q, R])
        resid = float(np.max(np.abs(out)) / lr)
        ok = bool(br.converged[-1] and resid < 1e-9)
        return FixedPoint(method, activation, zeta, lr, q, R, q, "root", ok, resid, *tag)
    if method == "sgd":
        return FixedPoint(method, activation, zeta, lr, 1.0, 1.0, 1.0, "exact", True, 0.0)
    closed = gamma0_closed_form(activation, zeta)
    g0 = closed if closed is not None else _gamma0_root(activation, zeta)
    src = "closed-form" if closed is not None else "root"
    if lr is None:
        res = abs(_int.I1(activation, g0, 1.0).item() / g0 - zeta * g0)
        return FixedPoint(method, activation, zeta, None, g0, 1.0, L, src, True, res)
    eta_eff = lr * g0 / L**2
    br = quasi_static_branch(activation, zeta, np.linspace(eta_eff / 20, eta_eff, 20), L)
    g, R = float(br.gamma[-1]), float(br.R[-1])
    out = rhs(method, activation, lr, zeta)(0.0, [g, R, L])
    resid = float(max(abs(out[0]), abs(out[1]) * L**2) / lr)
    ok = bool(br.converged[-1] and resid < 1e-9)
    return FixedPoint(method, activation, zeta, lr, g, R, L, "root", ok, resid)


# ---------------------------------------------------------------------- lr limits
def _dR(activation, quantity, g):
    return _int.evaluate(quantity, activation, g, 1.0, derivative="R").item()


def eta_max_paper(activation: str, zeta: float) -> float:
    """Luo et al. Table 1 / App. C.5 for BN as printed in our copy (kept for comparison).

    :math:`(\\partial_R(\\gamma_0 I_3 - I_1) - \\zeta\\gamma_0) / (\\partial_R I_2 / 2)` at
    :math:`(\\gamma_0, 1)`. Inconsistent with the paper's own :math:`\\lambda_R`
    (Prop. 2); see the module docstring.
    """
    zeta = check_real("zeta", zeta, lo=0.0, hi=ZETA_MAX)
    g0 = fixed_point("wn-decay", activation, zeta).gamma
    num = g0 * _dR(activation, "I3", g0) - _dR(activation, "I1", g0) - zeta * g0
    return float(num / (_dR(activation, "I2", g0) / 2.0))


@dataclass(frozen=True)
class LRLimits:
    """Fixed point, maximum and effective learning rates for one method (Table 1).

    ``eta_max`` is in units of the effective rate: the fixed point is stable iff
    ``eta_eff < eta_max`` with ``eta_eff = eta_eff_per_lr * lr``. ``lr_critical`` is the
    raw learning rate at which that happens (``eta_max / eta_eff_per_lr``).
    ``eta_max_exact`` removes the approximations of Prop. 2 (module docstring): the
    exact stability boundary of R = 1 for WN and SGD, ``inf`` for BN, whose exact
    (quasi-static) fixed point never loses stability but slides to ``R* < 1``;
    ``R_star_at_eta_max`` is that R* at ``eta_eff = eta_max``.
    ``lambda_gamma_per_lr`` is the eigenvalue along gamma divided by ``lr``.
    ``exact_status`` says what ``eta_max_exact`` is: ``"found"``, ``"never"`` (``inf``:
    the fixed point never loses stability), ``"not computed"`` (``exact=False``; NaN) or
    ``"not converged"`` (the quasi-static branch could not be followed; NaN). JSON has
    no ``inf`` or NaN: they are written ``null``, and ``exact_status`` tells them apart.
    """

    method: str
    activation: str
    zeta: float
    L0: float
    gamma0: float
    R0: float
    eta_max: float
    eta_eff_per_lr: float
    lr_critical: float
    eta_max_exact: float
    R_star_at_eta_max: float
    eta_max_paper: float | None
    lambda_gamma_per_lr: float | None
    eta_eff_formula: str
    exact_status: str = "not computed"
    teacher: str | None = None
    noise: float = 0.0
    weight_decay: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _exact_status(value: float, exact: bool) -> str:
    if not exact:
        return "not computed"
    if np.isnan(value):
        return "not converged"
    return "never" if np.isinf(value) else "found"


def _max_real_eig(J: np.ndarray) -> float:
    return float(np.max(np.linalg.eigvals(J).real))


@dataclass(frozen=True)
class Branch(PlainDict):
    """Quasi-static fixed points of ``(gamma, R)`` at fixed ``L`` along a grid of ``eta_eff``.

    Followed by continuation (each root starts from the previous one);
    ``max_real_eig`` is the largest real part of the ``(gamma, R)`` Jacobian's
    eigenvalues there (negative = linearly stable; NaN where the root did not converge
    even after refining the continuation step).
    """

    activation: str
    zeta: float
    L0: float
    eta_eff: np.ndarray
    gamma: np.ndarray
    R: np.ndarray
    max_real_eig: np.ndarray
    converged: np.ndarray


def quasi_static_branch(activation: str, zeta: float, eta_eff, L0: float = 1.0) -> Branch:
    """Follow the fixed point of the normalized student with the :math:`\\eta^2` terms kept.

    ``eta_eff`` (increasing, > 0) is in the units of :class:`LRLimits`
    (:math:`\\eta\\gamma_0/L_0^2`). For :math:`\\zeta > 0` the branch starts next to
    :math:`(\\gamma_0, 1)` and slides continuously to :math:`R^* < 1`; for
    :math:`\\zeta = 0` (WN) it stays on :math:`R = 1`, which loses stability at
    :math:`\\eta_{\\max}` (a transcritical bifurcation).
    """
    zeta = check_real("zeta", zeta, lo=0.0, hi=ZETA_MAX)
    check_choice("activation", activation, _int.ACTIVATIONS)
    L0 = check_real("L0", L0, *L_RANGE)
    grid = check_array("eta_eff", eta_eff, lo=0.0, lo_open=True, min_size=1)
    if np.any(np.diff(grid) <= 0):
        raise ValueError("eta_eff must be strictly increasing")
    from scipy import optimize as _optimize  # ~0.4 s: only where a root is needed

    method = "wn-decay" if zeta > 0 else "wn"
    g0 = fixed_point(method, activation, zeta).gamma
    x = np.array([g0, 0.0 if zeta == 0 else 1e-3])

    def solve(ee, start):
        lr = ee * L0**2 / g0
        f = rhs(method, activation, lr, zeta)

        def F(p):
            out = f(0.0, [p[0], np.cos(p[1]), L0])
            return [out[0] / lr, out[1] * L0**2 / lr]

        sol = _optimize.root(F, start, method="hybr", options={"xtol": 1e-13})
        # convergence is judged by the residual: WN's R = 1 is a double root in phi,
        # where hybr reports failure at an exact root
        ok = bool(np.max(np.abs(F(sol.x))) < 1e-9 and sol.x[0] > 0)
        return sol.x, ok

    rows = []
    for target, x_t, ok in _continuation(solve, grid, x):
        lr = target * L0**2 / g0
        J = jacobian(method, activation, lr, zeta, (x_t[0], np.cos(x_t[1]), L0))[:2, :2]
        rows.append((x_t[0], np.cos(x_t[1]), _max_real_eig(J) if ok else np.nan, ok))
    g, R, m, ok = (np.array(c) for c in zip(*rows, strict=True))
    return Branch(activation, zeta, L0, grid, g, R, m, ok.astype(bool))


def _continuation(solve, grid, x):
    """Adaptive continuation of a root along ``grid``, from ``grid[0] / 2``: step from the
    last converged point to each target, halving the step on failure (at most 12 times).
    ``solve(parameter, start) -> (root, ok)``; yields ``(target, root, reached)``."""
    prev = float(grid[0]) / 2
    for ee in grid:
        target, step, ok = float(ee), float(ee) - prev, False
        for _ in range(12):
            y, ok = solve(min(prev + step, target), x)
            if ok:
                x, prev = y, min(prev + step, target)
                if prev >= target:
                    break
            else:
                step /= 2.0
        yield target, x, ok and prev >= target


def _eta_max_exact(method: str, activation: str, zeta: float, g0: float, L0: float) -> float:
    """Where the exact fixed point loses linear stability (``inf`` if it never does).

    WN and SGD: their fixed point (R = 1) is exact at every rate; the crossing of the
    largest eigenvalue is found with :func:`scipy.optimize.brentq`. BN: the
    quasi-static branch is scanned up to ten times the first-order ``eta_max``.
    """
    if method == "sgd":
        def m(lr):
            return _max_real_eig(jacobian("sgd", activation, lr, 0.0, (1.0, 1.0)))
        scale = 1.0
    elif method == "wn" or zeta == 0.0:
        def m(lr):
            return _max_real_eig(jacobian("wn", activation, lr, 0.0, (g0, 1.0, L0))[:2, :2])
        scale = g0 / L0**2
    else:
        first = lr_limits("wn-decay", activation, zeta, L0, exact=False).eta_max
        br = quasi_static_branch(activation, zeta, np.linspace(first / 50, 10 * first, 200), L0)
        if not np.all(br.converged):
            return float("nan")  # cannot tell; reported as NaN rather than guessed
        bad = np.flatnonzero(br.max_real_eig >= 0)
        return float("inf") if bad.size == 0 else float(br.eta_eff[bad[0]])
    from scipy import optimize as _optimize  # ~0.4 s: only where a root is needed

    hi = 1.0
    while m(hi) < 0:
        hi *= 2.0
        if hi > 1e4:
            return float("inf")
    return float(_optimize.brentq(m, 1e-6, hi, xtol=1e-13)) * scale


def _sgd_lr_limits(activation: str, teacher: str, noise: float, weight_decay: float,
                   exact: bool) -> LRLimits:
    r""":func:`lr_limits` of plain SGD with label noise, L2 decay or another teacher.

    First order (Prop. 2's form, at the small-lr fixed point :math:`(Q_0, 1)`,
    :math:`I_1 = \lambda Q_0^2`): :math:`\partial_R\dot R = \eta\,n - \eta^2 d` with
    :math:`n = \partial_R I_3/Q_0 - \partial_R I_1/Q_0^2 - \lambda` and
    :math:`d = (I_2 + S K + \partial_R I_2)/(2Q_0^2)`, so
    :math:`\eta_{\max} = n/d` (at the defaults :math:`Q_0 = 1`, :math:`I_2 = 0`: the
    plain-SGD formula). Exact: the fixed point followed by :func:`sgd_branch` on 200
    rates up to :math:`10\,\eta_{\max}`; ``eta_max_exact`` is where its largest
    eigenvalue crosses 0 (linear interpolation between grid points), ``inf`` if it never
    does on that range, NaN (``"not converged"``) if the branch is lost first.
    """
    kw = dict(teacher=None if teacher == activation else teacher)
    q0 = _gamma0_root(activation, weight_decay, kw["teacher"])

    def ev(q, derivative=None):
        return _int.evaluate(q, activation, q0, 1.0, derivative=derivative, **kw).item()

    n = ev("I3", "R") / q0 - ev("I1", "R") / q0**2 - weight_decay
    k = float(_int._noise_factor(activation, q0))
    d = (ev("I2") + noise * k + ev("I2", "R")) / (2 * q0**2)
    # lambda_R = eta n - eta^2 d < 0 at small eta needs n < 0; it turns positive at n / d
    # if d < 0 and never (in this approximation) if d >= 0
    eta_max = 0.0 if n >= 0 else (n / d if d < 0 else float("inf"))
    ex, r_star = float("nan"), float("nan")
    extra = dict(teacher=teacher, noise=noise, weight_decay=weight_decay)
    if exact:
        scale = (eta_max if 0 < eta_max < np.inf
                 else lr_limits("sgd", activation, exact=False).eta_max)
        grid = np.linspace(scale / 50, 10 * scale, 200)
        br = sgd_branch(activation, grid, **extra)
        if 0 < eta_max < np.inf:
            r_at = sgd_branch(activation, np.linspace(eta_max / 40, eta_max, 40), **extra)
            r_star = float(r_at.R[-1]) if r_at.converged[-1] else float("nan")
        m = np.where(br.converged, br.max_real_eig, np.nan)
        bad = np.flatnonzero(~(m < 0))  # unstable or not converged
        if bad.size == 0:
            ex = float("inf")
        elif bad[0] > 0 and np.isfinite(m[bad[0]]):
            i = bad[0]
            ex = float(grid[i - 1] + (grid[i] - grid[i - 1]) * (-m[i - 1]) / (m[i] - m[i - 1]))
    return LRLimits("sgd", activation, 0.0, 1.0, q0, 1.0, float(eta_max), 1.0,
                    float(eta_max), ex, r_star, None, None, "eta", _exact_status(ex, exact),
                    **extra)


def lr_limits(method: str, activation: str, zeta: float = 0.0, L0: float = 1.0,
              exact: bool = True, *, teacher: str | None = None, noise: float = 0.0,
              weight_decay: float = 0.0) -> LRLimits:
    """Fixed point, :math:`\\eta_{\\max}`, :math:`\\eta_{\\rm eff}` (Luo et al. Table 1, derived).

    Parameters
    ----------
    method : {"wn-decay", "wn", "sgd"}
        Student (``"bn"``: deprecated name of ``"wn-decay"``).
    activation : {"linear", "relu", "erf"}
        Shared activation.
    zeta : float
        Gamma decay (``"wn-decay"``; 0 otherwise).
    L0 : float
        Length of the raw weight at the fixed point (normalized students; the fixed
        point is neutral in ``L``).
    exact : bool
        Also compute ``eta_max_exact`` and ``R_star_at_eta_max`` (slower).
    teacher, noise, weight_decay
        Plain SGD (``"sgd"``) only: another teacher activation, label-noise variance S,
        L2 decay lambda (module docstring, *Peer options*; :func:`_sgd_lr_limits`).
        ``gamma0`` is then :math:`Q_0` and ``R0`` the small-lr R = 1.
    """
    method, zeta = _check_method(method, zeta)
    check_choice("activation", activation, _int.ACTIVATIONS)
    teacher, noise, weight_decay = _check_extras(method, activation, teacher, noise,
                                                 weight_decay)
    L0 = check_real("L0", L0, *L_RANGE)
    if _has_extras(activation, teacher, noise, weight_decay):
        if method != "sgd":
            raise ValueError(f"lr_limits of {method!r} with label noise or a teacher other "
                             f"than the student is not implemented (only 'sgd'); got "
                             f"teacher={teacher!r}, noise={noise!r}")
        return _sgd_lr_limits(activation, teacher, noise, weight_decay, exact)
    if method == "sgd":
        num = _dR(activation, "I3", 1.0) - _dR(activation, "I1", 1.0)
        eta_max = num / (_dR(activation, "I2", 1.0) / 2.0)
        ex = _eta_max_exact("sgd", activation, 0.0, 1.0, 1.0) if exact else float("nan")
        return LRLimits(method, activation, 0.0, 1.0, 1.0, 1.0, float(eta_max), 1.0,
                        float(eta_max), ex, 1.0 if exact else float("nan"), None, None, "eta",
                        _exact_status(ex, exact))
    g0 = fixed_point(method, activation, zeta).gamma
    num = g0 * _dR(activation, "I3", g0) - _dR(activation, "I1", g0) - zeta * g0**2
    eta_max = num / (g0 * _dR(activation, "I2", g0) / 2.0)
    per_lr = g0 / L0**2
    dI1dQ = _int.evaluate("I1", activation, g0, 1.0, derivative="Q").item()
    lam_g = dI1dQ / g0 - _int.I1(activation, g0, 1.0).item() / g0**2 - zeta
    ex, r_star = float("nan"), float("nan")
    if exact:
        ex = _eta_max_exact(method, activation, zeta, g0, L0)
        if method == "wn":
            r_star = 1.0
        else:
            br = quasi_static_branch(activation, zeta, np.linspace(eta_max / 40, eta_max, 40),
                                     L0)
            r_star = float(br.R[-1]) if br.converged[-1] else float("nan")
    paper = eta_max_paper(activation, zeta) if method == "wn-decay" else None
    return LRLimits(method, activation, zeta, L0, g0, 1.0, float(eta_max), per_lr,
                    float(eta_max / per_lr), ex, r_star, paper, float(lam_g),
                    "eta * gamma0 / L0^2" if method == "wn-decay" else "eta / L0^2",
                    _exact_status(ex, exact))
