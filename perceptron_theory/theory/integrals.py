r"""Gaussian expectations of the teacher-student perceptron, derived with sympy.

Symbol map (README notation table):

* ``Q`` -- standard deviation of the student pre-activation, :math:`s \sim N(0, Q^2)`;
  for a normalized student :math:`Q = \gamma`.
* ``R`` -- correlation between student and teacher pre-activations, :math:`R = \mathrm{corr}(s, t)`.
* the teacher pre-activation is :math:`t \sim N(0, 1)` (teacher norm :math:`|w^*|^2 = N`,
  input :math:`x \sim N(0, I/N)`).
* ``g`` -- the activation shared by teacher and student (``"linear"``, ``"relu"``, ``"erf"``).

With :math:`\delta = g'(s)\,(g(t) - g(s))` (minus the derivative of the halved loss
:math:`\tfrac12 (g(t) - g(s))^2` with respect to :math:`s`):

.. math::

    I_1 = E[\delta s], \qquad I_2 = E[\delta^2], \qquad I_3 = E[\delta t], \qquad
    \epsilon(Q, R) = E[(g(t) - g(s))^2].

Label noise :math:`y = g^*(t) + \sqrt S\,\xi` leaves :math:`I_1, I_3` and
:math:`\epsilon` (defined without the noise) unchanged and adds :math:`S\,E[g'(s)^2]` to
:math:`I_2` (:func:`noise_factor`).

Luo et al. (2019) write :math:`I_2 = E[\delta^2 x^T x]`; in the thermodynamic limit
:math:`x^T x \to 1`. The generalization error :math:`\epsilon` is the *unhalved* squared
error, so that :math:`\epsilon_{\rm lin} = 1 + \gamma^2 - 2\gamma R` (Luo et al. App. D).

Derivations
-----------
``linear`` and ``relu`` are derived here symbolically: with :math:`s = Q u`,
:math:`t = R u + \sqrt{1-R^2} z` and polar coordinates :math:`(u, z) = r(\cos\theta, \sin\theta)`,
every integrand is a homogeneous quadratic in :math:`(u, t)` on each of the four
sign-wedges of :math:`(u, t)`; the radial integral is :math:`\int_0^\infty r^3 e^{-r^2/2} dr = 2`
and the angular one is a trigonometric polynomial that sympy integrates exactly, with
:math:`\phi = \arccos R` fixing the wedge boundaries.

For ReLU this gives (with :math:`\arccos R = \pi/2 - \arcsin R`)

.. math::

    I_2^{\rm relu} = \frac{Q^2}{2}
        + \frac{\pi + 2R\sqrt{1-R^2} + 2\arcsin R}{4\pi}
        - \frac{Q\,(\pi R + 2\sqrt{1-R^2} + 2R\arcsin R)}{2\pi}.

Luo et al. eq. (15) is garbled in our copy (its second term reads
:math:`(\pi R + \dots)/4\pi`); the form above is derived and checked against Monte Carlo.
Eqs. (13)-(14) for :math:`I_1, I_3` agree with the derivation.

``erf`` uses :math:`g(x) = \mathrm{erf}(x/\sqrt2)` (Saad & Solla 1995 convention). Its
integrals are not derivable by sympy; they are written from the classic closed forms
(Saad & Solla 1995, eqs. for :math:`I_2, I_3, I_4`) and checked against Gauss-Hermite
quadrature and Monte Carlo in the tests.

Mixed pairs
-----------
A teacher activation :math:`g^*` different from the student's :math:`g` (``teacher=``) is
supported for every pair. Linear/ReLU pairs come out of the polar derivation above. With
an erf partner, write :math:`I_1 = E[g'(s)s\,g^*(t)] - E[g'(s)s\,g(s)]` etc.: the
student-only moments are the same-activation ones, and the cross moments are derived by
hand (checked against Monte Carlo in the tests):

* *linear student, erf teacher* (Stein's lemma, :math:`E[g^{*\prime}(t)] = 1/\sqrt\pi`,
  :math:`E[g^*(t)^2] = 1/3`):

  .. math::

      I_1 = \frac{QR}{\sqrt\pi} - Q^2, \quad I_3 = \frac1{\sqrt\pi} - QR, \quad
      I_2 = \epsilon = \frac13 - \frac{2QR}{\sqrt\pi} + Q^2 ;

* *erf student, linear teacher*: with :math:`t \mid s \sim N(Rs/Q, 1-R^2)` and the
  Gaussian tilt :math:`E[e^{-as^2}f(s)] = E_{N(0, Q^2/(1+2aQ^2))}[f]/\sqrt{1+2aQ^2}`,

  .. math::

      E[g'(s)\,s\,t] = \sqrt{\tfrac2\pi}\frac{QR}{(1+Q^2)^{3/2}}, \quad
      E[g'(s)\,t^2] = \sqrt{\tfrac2\pi}\Big(\frac{R^2}{(1+Q^2)^{3/2}}
          + \frac{1-R^2}{(1+Q^2)^{1/2}}\Big), \quad
      E[g(s)\,t] = \sqrt{\tfrac2\pi}\frac{QR}{\sqrt{1+Q^2}},

      E[g'(s)^2 t^2] = \frac2\pi\Big(\frac{R^2}{(1+2Q^2)^{3/2}}
          + \frac{1-R^2}{(1+2Q^2)^{1/2}}\Big), \quad
      E[g'(s)^2 g(s)\,t] = \Big(\frac2\pi\Big)^{3/2}
          \frac{QR}{(1+2Q^2)\sqrt{1+3Q^2}} ;

* *ReLU with erf* (either way round), by parity: :math:`(s, t) \to (-s, -t)` leaves the
  Gaussian invariant, erf is odd, and :math:`\mathrm{relu}(x) = (x + |x|)/2`,
  :math:`\theta(x) = (1 + \mathrm{sign}\,x)/2`; the :math:`|x|` and sign parts of every
  cross moment are odd and vanish, so each cross moment (and :math:`E[\mathrm{relu}(t)^2]
  = \tfrac12 E[t^2]`) is half the linear partner's. ReLU student, erf teacher:
  :math:`I_1 = \tfrac12(QR/\sqrt\pi - Q^2)`, :math:`I_3 = \tfrac12(1/\sqrt\pi - QR)`,
  :math:`I_2 = \tfrac12(\tfrac13 - 2QR/\sqrt\pi + Q^2)`,
  :math:`\epsilon = \tfrac13 - QR/\sqrt\pi + Q^2/2`.

All functions broadcast over array arguments. Derivatives with respect to ``Q`` and
``R`` are symbolic (:func:`sympy.diff`), cleared of removable singularities at
:math:`R = \pm 1`, and lambdified once per (activation, quantity, variable).

Examples
--------
>>> from perceptron_theory.theory import integrals
>>> float(integrals.eps_gen("linear", 1.0, 1.0))
0.0
>>> round(float(integrals.I1("relu", 0.5, 1.0)), 6)  # Q/2 - Q^2/2 at R = 1
0.125
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from perceptron_theory._checks import check_array, check_choice
from perceptron_theory._io import PlainDict
from perceptron_theory.theory._codegen import lambdified
from perceptron_theory.vocabulary import ACTIVATIONS  # the one activation list

__all__ = [
    "ACTIVATIONS",
    "QUANTITIES",
    "Integrals",
    "symbolic",
    "evaluate",
    "I1",
    "I2",
    "I3",
    "eps_gen",
    "integrals",
    "activation_function",
    "scalar_kernel",
    "noise_factor",
]

QUANTITIES = ("I1", "I2", "I3", "eps")


class _LazySympy:
    """``sp``: sympy, imported on first use (evaluating a cached form needs no sympy)."""

    def __getattr__(self, name):
        import sympy

        return getattr(sympy, name)


sp = _LazySympy()


@functools.cache
def _symbols():
    """``Q, R`` and the derivation's helpers ``S`` (stands for sqrt(1 - R^2) while
    clearing singularities), ``theta``, ``phi``."""
    Q = sp.Symbol("Q", positive=True)
    R = sp.Symbol("R", real=True)
    return Q, R, sp.Symbol("S", nonnegative=True), *sp.symbols("theta phi", real=True)


def __getattr__(name):  # the public symbols ``integrals.Q``, ``integrals.R``
    if name in ("Q", "R"):
        return _symbols()[("Q", "R").index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def activation_function(activation: str):
    """Return ``(g, g')`` as numpy ufunc-like callables (used by Monte Carlo checks)."""
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "linear":
        return (lambda x: np.asarray(x, dtype=float)), (lambda x: np.ones_like(x, dtype=float))
    if activation == "relu":
        return (lambda x: np.maximum(x, 0.0)), (lambda x: (np.asarray(x) > 0).astype(float))
    from scipy.special import erf

    return (lambda x: erf(np.asarray(x) / np.sqrt(2.0))), (
        lambda x: np.sqrt(2.0 / np.pi) * np.exp(-np.asarray(x) ** 2 / 2.0)
    )


# --------------------------------------------------------------------------- derivation
def _derive_piecewise_linear(slopes: tuple[float, float],
                             teacher_slopes: tuple[float, float] | None = None
                             ) -> dict[str, sp.Expr]:
    """Derive I1, I2, I3, eps for g(x) = slope_+ x (x > 0), slope_- x (x < 0).

    ``(1, 1)`` is the identity, ``(1, 0)`` is ReLU. ``teacher_slopes`` gives the
    teacher's activation (default: the student's). Valid for ``Q > 0``.
    """
    Q, R, _S, _theta, _phi = _symbols()
    pos, neg = slopes
    tpos, tneg = teacher_slopes if teacher_slopes is not None else slopes
    u, t = sp.cos(_theta), sp.cos(_theta - _phi)
    hp = sp.pi / 2
    # theta-wedges for phi = arccos(R) in [0, pi]; keys are (u > 0, t > 0)
    wedges = {
        (True, True): (_phi - hp, hp),
        (False, True): (hp, _phi + hp),
        (False, False): (_phi + hp, 3 * hp),
        (True, False): (-hp, _phi - hp),
    }
    integrands = {
        "I1": lambda gs, gt, dg: dg * (gt - gs) * Q * u,
        "I2": lambda gs, gt, dg: dg**2 * (gt - gs) ** 2,
        "I3": lambda gs, gt, dg: dg * (gt - gs) * t,
        "eps": lambda gs, gt, dg: (gt - gs) ** 2,
    }
    out = {}
    for name, f in integrands.items():
        total = 0
        for (u_pos, t_pos), (a, b) in wedges.items():
            su = pos if u_pos else neg
            st = tpos if t_pos else tneg
            expr = sp.expand(sp.expand_trig(f(su * Q * u, st * t, su)))
            total += sp.integrate(expr, (_theta, a, b))
        # E[.] = (1 / 2 pi) * (int r^3 e^{-r^2/2} dr = 2) * angular integral
        total = (total / sp.pi).subs(_phi, sp.acos(R))
        out[name] = sp.simplify(total)
    return out


def _erf_moments():
    """``(J2, J3, J4)``: the Saad & Solla (1995) expectations for g(x) = erf(x / sqrt 2)
    over the pre-activations ``"s"`` (variance Q^2) and ``"t"`` (variance 1, covariance
    Q R with s), as sympy expressions of ``Q, R``."""
    Q, R, _S, _theta, _phi = _symbols()
    pi = sp.pi
    cov = {("s", "s"): Q**2, ("t", "t"): sp.Integer(1), ("s", "t"): Q * R}

    def c(a, b):
        return cov[tuple(sorted((a, b)))]

    def J2(a, b):  # E[g(a) g(b)]
        return 2 / pi * sp.asin(c(a, b) / sp.sqrt((1 + c(a, a)) * (1 + c(b, b))))

    def J3(a, b, cc):  # E[g'(a) b g(c)]
        lam3 = sp.expand((1 + c(a, a)) * (1 + c(cc, cc)) - c(a, cc) ** 2)
        num = c(b, cc) * (1 + c(a, a)) - c(a, b) * c(a, cc)
        return 2 / pi / sp.sqrt(lam3) * num / (1 + c(a, a))

    def J4(a, b, cc, d):  # E[g'(a) g'(b) g(c) g(d)]
        lam4 = sp.expand((1 + c(a, a)) * (1 + c(b, b)) - c(a, b) ** 2)
        lam0 = (lam4 * c(cc, d) - c(b, cc) * c(b, d) * (1 + c(a, a))
                - c(a, cc) * c(a, d) * (1 + c(b, b))
                + c(a, b) * c(a, cc) * c(b, d) + c(a, b) * c(a, d) * c(b, cc))
        lam1 = (lam4 * (1 + c(cc, cc)) - c(b, cc) ** 2 * (1 + c(a, a))
                - c(a, cc) ** 2 * (1 + c(b, b)) + 2 * c(a, b) * c(a, cc) * c(b, cc))
        lam2 = (lam4 * (1 + c(d, d)) - c(b, d) ** 2 * (1 + c(a, a))
                - c(a, d) ** 2 * (1 + c(b, b)) + 2 * c(a, b) * c(a, d) * c(b, d))
        # expanded polynomials: the O(Q^4) terms cancel exactly, not in floating point
        lam0, lam1, lam2 = (sp.factor(sp.expand(x)) for x in (lam0, lam1, lam2))
        return 4 / pi**2 / sp.sqrt(lam4) * sp.asin(lam0 / sp.sqrt(lam1 * lam2))

    return J2, J3, J4


def _derive_erf() -> dict[str, sp.Expr]:
    """Closed forms for g(x) = erf(x / sqrt 2) from the Saad & Solla (1995) integrals."""
    J2, J3, J4 = _erf_moments()
    return {
        "I1": J3("s", "s", "t") - J3("s", "s", "s"),
        "I2": J4("s", "s", "t", "t") - 2 * J4("s", "s", "t", "s") + J4("s", "s", "s", "s"),
        "I3": J3("s", "t", "t") - J3("s", "t", "s"),
        "eps": J2("t", "t") - 2 * J2("s", "t") + J2("s", "s"),
    }


def _derive_erf_student(teacher: str) -> dict[str, sp.Expr]:
    r"""erf student, linear or ReLU teacher (module docstring, *Mixed pairs*).

    The cross moments with a linear teacher follow from :math:`t \mid s \sim
    N(Rs/Q, 1 - R^2)` and the Gaussian tilt :math:`E[e^{-a s^2} f(s)] =
    E_{s \sim N(0, Q^2/(1 + 2aQ^2))}[f(s)] / \sqrt{1 + 2aQ^2}`; a ReLU teacher halves
    every one of them (parity). The student's own moments are Saad & Solla's.
    """
    Q, R = _symbols()[:2]
    J2, J3, J4 = _erf_moments()
    pi = sp.pi
    c = sp.sqrt(2 / pi)
    h = sp.Integer(1) if teacher == "linear" else sp.Rational(1, 2)
    a1 = c * Q * R / (1 + Q**2) ** sp.Rational(3, 2)                       # E[g'(s) s t]
    a3 = c * (R**2 / (1 + Q**2) ** sp.Rational(3, 2)
              + (1 - R**2) / sp.sqrt(1 + Q**2))                            # E[g'(s) t^2]
    ae = c * Q * R / sp.sqrt(1 + Q**2)                                     # E[g(s) t]
    a2a = 2 / pi * (R**2 / (1 + 2 * Q**2) ** sp.Rational(3, 2)
                    + (1 - R**2) / sp.sqrt(1 + 2 * Q**2))                 # E[g'(s)^2 t^2]
    a2b = c**3 * Q * R / ((1 + 2 * Q**2) * sp.sqrt(1 + 3 * Q**2))        # E[g'(s)^2 g(s) t]
    return {
        "I1": h * a1 - J3("s", "s", "s"),
        "I2": h * a2a - 2 * h * a2b + J4("s", "s", "s", "s"),
        "I3": h * a3 - J3("s", "t", "s"),
        "eps": h - 2 * h * ae + J2("s", "s"),
    }


def _derive_erf_teacher(student: str) -> dict[str, sp.Expr]:
    """Linear or ReLU student, erf teacher (module docstring, *Mixed pairs*): Stein's
    lemma gives the linear student's forms, and a ReLU student halves them (parity)."""
    Q, R = _symbols()[:2]
    rpi = sp.sqrt(sp.pi)
    h = sp.Integer(1) if student == "linear" else sp.Rational(1, 2)
    return {
        "I1": h * (Q * R / rpi - Q**2),
        "I2": h * (sp.Rational(1, 3) - 2 * Q * R / rpi + Q**2),
        "I3": h * (1 / rpi - Q * R),
        "eps": sp.Rational(1, 3) - 2 * h * Q * R / rpi + h * Q**2,
    }


_SLOPES = {"linear": (1, 1), "relu": (1, 0)}


def _check_teacher(activation: str, teacher: str | None) -> str:
    check_choice("activation", activation, ACTIVATIONS)
    return activation if teacher is None else check_choice("teacher", teacher, ACTIVATIONS)


@functools.cache
def symbolic(activation: str, teacher: str | None = None) -> dict[str, sp.Expr]:
    """Return the sympy expressions ``{"I1", "I2", "I3", "eps"}`` in symbols ``Q``, ``R``.

    Parameters
    ----------
    activation : str
        The student's activation, one of :data:`ACTIVATIONS`.
    teacher : str, optional
        The teacher's activation (default: the student's); every pair of
        :data:`ACTIVATIONS` (module docstring, *Mixed pairs*), e.g. the ReLU student of a
        linear teacher (Luo et al. App. D: eps = 1 + Q^2/2 - Q R).
    """
    teacher = _check_teacher(activation, teacher)
    if activation == "erf":
        return dict(_derive_erf() if teacher == "erf" else _derive_erf_student(teacher))
    if teacher == "erf":
        return dict(_derive_erf_teacher(activation))
    return dict(_derive_piecewise_linear(_SLOPES[activation], _SLOPES[teacher]))


def _clear_sqrt_singularity(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``(1 - R^2) / sqrt(1 - R^2)`` as ``sqrt(1 - R^2)`` so R = +-1 evaluates."""
    Q, R, _S, _theta, _phi = _symbols()
    if not expr.has(sp.sqrt(1 - R**2)):
        return expr
    e = sp.together(expr.subs(sp.sqrt(1 - R**2), _S))
    num, den = sp.fraction(e)
    num = sp.expand(sp.expand(num).subs(R**2, 1 - _S**2))
    den = sp.expand(sp.expand(den).subs(R**2, 1 - _S**2))
    return sp.simplify(sp.cancel(num / den).subs(_S, sp.sqrt(1 - R**2)))


@functools.cache
def symbolic_derivative(activation: str, quantity: str, wrt: str,
                        teacher: str | None = None) -> sp.Expr:
    """Symbolic partial derivative of a quantity with respect to ``"Q"`` or ``"R"``."""
    Q, R, _S, _theta, _phi = _symbols()
    check_choice("quantity", quantity, QUANTITIES)
    check_choice("wrt", wrt, ("Q", "R"))
    expr = sp.diff(symbolic(activation, teacher)[quantity], Q if wrt == "Q" else R)
    if activation != "erf":  # erf's forms are already regular at R = +-1
        expr = _clear_sqrt_singularity(expr)
    return expr


_SOURCES = ("integrals.py",)


@functools.cache
def _compiled(activation: str, quantity: str, wrt: str | None, teacher: str | None = None):
    def derive():
        Q, R = _symbols()[:2]
        expr = (symbolic(activation, teacher)[quantity] if wrt is None
                else symbolic_derivative(activation, quantity, wrt, teacher))
        return sp.lambdify((Q, R), expr, modules="numpy", cse=True)

    return lambdified(f"integrals:{activation}:{teacher}:{quantity}:{wrt}", derive, _SOURCES)


@functools.cache
def scalar_kernel(activation: str, derivatives: bool = False, teacher: str | None = None):
    """Unchecked ``f(Q, R) -> tuple`` of floats for inner loops (ODE right-hand sides).

    Returns ``(I1, I2, I3)`` or, with ``derivatives``, ``(I1, I2, I3, dI1/dQ, dI1/dR,
    dI2/dQ, dI2/dR, dI3/dQ, dI3/dR)``, compiled into one function with ``math``
    (no argument checks, no arrays: the caller guarantees ``Q > 0`` and ``|R| <= 1``).
    ``teacher``: the teacher's activation (default, or equal to ``activation``: the
    student's, the same compiled function as before teachers could differ).
    """
    teacher = _check_teacher(activation, teacher)
    teacher = None if teacher == activation else teacher
    return _scalar_kernel(activation, bool(derivatives), teacher)


@functools.cache
def _scalar_kernel(activation: str, derivatives: bool, teacher: str | None):
    def derive():
        Q, R = _symbols()[:2]
        exprs = [symbolic(activation, teacher)[k] for k in ("I1", "I2", "I3")]
        if derivatives:
            exprs += [symbolic_derivative(activation, k, w, teacher)
                      for k in ("I1", "I2", "I3") for w in ("Q", "R")]
        return sp.lambdify((Q, R), tuple(exprs), modules="math", cse=True)

    tag = f"integrals:scalar:{activation}:{derivatives}"
    return lambdified(tag if teacher is None else f"{tag}:{teacher}", derive, _SOURCES)


def noise_factor(activation: str, Q, derivative: bool = False) -> np.ndarray:
    r""":math:`K(Q) = E[g'(s)^2]`, :math:`s \sim N(0, Q^2)`: the factor of the label-noise
    variance :math:`S` in :math:`I_2` (:math:`I_2 \to I_2 + S K`), or :math:`dK/dQ`.

    .. math::

        K_{\rm lin} = 1, \qquad K_{\rm relu} = \tfrac12, \qquad
        K_{\rm erf} = \frac{2}{\pi\sqrt{1 + 2Q^2}}

    (erf: :math:`g'(s)^2 = \tfrac2\pi e^{-s^2}`; Saad & Solla 1995, the
    :math:`\sigma^2` term of their :math:`\eta^2` contribution).

    >>> round(float(noise_factor("erf", 1.0)), 6)  # 2 / (pi sqrt 3)
    0.367553
    """
    check_choice("activation", activation, ACTIVATIONS)
    Qa = check_array("Q", Q, lo=0.0, hi=Q_MAX, lo_open=True)
    return _noise_factor(activation, Qa, derivative)


def _noise_factor(activation: str, Q, derivative: bool = False):
    """:func:`noise_factor` without checks; float in, float out (ODE inner loops)."""
    if activation == "erf":
        d = 1.0 + 2.0 * Q * Q
        return -4.0 * Q / (np.pi * d**1.5) if derivative else 2.0 / (np.pi * np.sqrt(d))
    if derivative:
        return 0.0 * Q
    return 1.0 + 0.0 * Q if activation == "linear" else 0.5 + 0.0 * Q


#: Largest Q accepted: the derivatives hold up to Q^6 (erf's overflow beyond ~1e100).
Q_MAX = 1e50


def _prepare(activation, Q_, R_):
    check_choice("activation", activation, ACTIVATIONS)
    Qa = check_array("Q", Q_, lo=0.0, hi=Q_MAX, lo_open=True)
    Ra = check_array("R", R_, lo=-1.0, hi=1.0)
    return np.broadcast_arrays(Qa, Ra)


def evaluate(quantity: str, activation: str, Q, R, derivative: str | None = None,
             teacher: str | None = None) -> np.ndarray:
    """Evaluate ``quantity`` (or its partial derivative) on broadcast arrays ``Q``, ``R``.

    Parameters
    ----------
    quantity : str
        ``"I1"``, ``"I2"``, ``"I3"`` or ``"eps"``.
    activation : str
        ``"linear"``, ``"relu"`` or ``"erf"``.
    Q : array_like
        Student pre-activation standard deviation, ``0 < Q <= Q_MAX`` (1e50).
    R : array_like
        Student-teacher correlation, ``-1 <= R <= 1``.
    derivative : {None, "Q", "R"}
        Return the partial derivative with respect to this variable.
    teacher : str, optional
        The teacher's activation (default: the student's); see :func:`symbolic`.
    """
    check_choice("quantity", quantity, QUANTITIES)
    teacher = _check_teacher(activation, teacher)
    teacher = None if teacher == activation else teacher
    if derivative is not None:
        check_choice("derivative", derivative, ("Q", "R"))
    Qa, Ra = _prepare(activation, Q, R)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _compiled(activation, quantity, derivative, teacher)(Qa, Ra)
    return np.broadcast_to(np.asarray(out, dtype=float), Qa.shape).copy()


def I1(activation: str, Q, R) -> np.ndarray:
    """:math:`I_1 = E[\\delta s]` (Luo et al. eq. 13 for ReLU)."""
    return evaluate("I1", activation, Q, R)


def I2(activation: str, Q, R) -> np.ndarray:
    """:math:`I_2 = E[\\delta^2]` (Luo et al. eq. 15, corrected; see module docstring)."""
    return evaluate("I2", activation, Q, R)


def I3(activation: str, Q, R) -> np.ndarray:
    """:math:`I_3 = E[\\delta t]` (Luo et al. eq. 14 for ReLU)."""
    return evaluate("I3", activation, Q, R)


def eps_gen(activation: str, gamma, R, teacher: str | None = None) -> np.ndarray:
    """Generalization error :math:`\\epsilon(\\gamma, R) = E[(g^*(t) - g(\\gamma u))^2]`.

    Unhalved squared error of a normalized student of scale ``gamma`` (= ``Q``) and
    overlap ``R``; the teacher's activation :math:`g^*` is ``teacher`` (default: the
    student's). Linear: :math:`1 + \\gamma^2 - 2\\gamma R`; ReLU student of a linear
    teacher: :math:`1 + \\gamma^2/2 - \\gamma R` (Luo et al. App. D, L-D).
    Noise-free teacher; a teacher with output noise of variance ``S`` adds ``S``.

    >>> round(float(eps_gen("relu", 0.5, 1.0, teacher="linear")), 6)  # 1 + 1/8 - 1/2
    0.625
    """
    return evaluate("eps", activation, gamma, R, teacher=teacher)


@dataclass(frozen=True)
class Integrals(PlainDict):
    """The four expectations at one or more ``(Q, R)`` points."""

    activation: str
    Q: np.ndarray
    R: np.ndarray
    I1: np.ndarray
    I2: np.ndarray
    I3: np.ndarray
    eps: np.ndarray


def integrals(activation: str, Q, R) -> Integrals:
    """All of :math:`I_1, I_2, I_3, \\epsilon` at broadcast ``(Q, R)``."""
    Qa, Ra = _prepare(activation, Q, R)
    vals = {q: evaluate(q, activation, Qa, Ra) for q in QUANTITIES}
    return Integrals(activation, Qa, Ra, **vals)
