r"""Replica-symmetric theory of a perceptron student trained on a noisy teacher.

This is the saddle point of Luo et al. (2019), App. D.2, eq. (19), written for a
student with an explicit decay on its length ("WN + gamma decay"), solved numerically
where no closed form exists -- in particular for the ReLU student with gamma decay,
which Luo et al. (Sec. 4.1) leave open.

Conventions (README notation table)
-----------------------------------
* Inputs :math:`x \sim N(0, I/N)`, teacher :math:`w^*` with :math:`|w^*|^2 = N`, teacher
  field :math:`t = w^*\cdot x \sim N(0, 1)`, teacher output
  :math:`y = g^*(t) + \sqrt{S}\,\xi` (``teacher`` = :math:`g^*` in {linear, relu}; linear is
  Luo et al.'s Sec. 4 setting; ``noise`` = :math:`S`).
* Student field :math:`s = w\cdot x`, output :math:`g(s)` (``student`` = :math:`g` in
  {linear, relu}).
* Energy, **sum convention, halved loss**:

  .. math::

      E(w) = \frac12\sum_{p=1}^{P}\bigl(y_p - g(w\cdot x_p)\bigr)^2 + \frac{\zeta}{2}|w|^2 .

  For a normalized student :math:`w = \gamma\sqrt N\,u` (:math:`|u| = 1`) the decay is
  exactly :math:`(\zeta N/2)\gamma^2`: "WN + gamma decay". A per-sample (mean) loss
  :math:`\frac1P\sum_p \frac12(y_p - g)^2 + \frac{\zeta_{\rm ps}}2\gamma^2` (the package's
  ``decay2`` convention; equivalently Luo et al.'s :math:`\ell_{wn} = \frac1P\sum_p(y_p -
  g)^2 + \zeta_{\rm ps}\gamma^2`) has the same minimizer as ``zeta`` :math:`= \alpha\,
  \zeta_{\rm ps}` here
  (:func:`perceptron_theory.theory.generalization.sum_decay_from_per_sample`).
* Gibbs measure :math:`\propto e^{-\beta E(w)}\,dw` (flat measure; the decay is the
  Gaussian prior). :math:`\beta\to\infty` is exhaustive training: the global minimizer.
* Order parameters: :math:`Q = |w|^2/N` (:math:`=\gamma^2`), :math:`T = w\cdot w^*/N`
  (:math:`=\gamma R`), replica overlap :math:`q` (finite :math:`\beta`) and
  :math:`x = \beta(Q - q)` (finite as :math:`\beta\to\infty`).
* Test error :math:`\epsilon = E[(g^*(t) - g(s))^2]` (unhalved, no label noise),
  :func:`perceptron_theory.theory.integrals.eps_gen` at :math:`(\gamma, R)`; linear
  teacher: :math:`1 + \gamma^2 - 2\gamma R` (linear student),
  :math:`1 + \gamma^2/2 - \gamma R` (ReLU student).

Derivation (replica-symmetric)
------------------------------
:math:`-\beta f = \lim_N \frac1N E\ln Z`, :math:`Z = \int dw\,e^{-\beta E(w)}`, by the replica
trick. Given the overlaps, the fields :math:`(t, s^1, \dots, s^n)` of a fresh pattern are
jointly Gaussian; with the replica-symmetric ansatz
:math:`s^a = \omega + \sqrt{Q - q}\,z_a`, :math:`\omega = T t + \sqrt{q - T^2}\,z_0`.
The volume of the weights with the given overlaps is
:math:`\exp\{\frac{nN}2\ln(2\pi e) + \frac N2\ln\det(Q_{ab} - T^2)\}` and
:math:`\ln\det = n\ln(Q-q) + n\frac{q-T^2}{Q-q} + O(n^2)`. Hence

.. math::

    -\beta f = \frac12\ln(2\pi e) + \frac12\Bigl[\ln(Q - q) + \frac{q - T^2}{Q - q}\Bigr]
        - \frac{\beta\zeta}{2}Q
        + \alpha\,E_{t,\xi,z_0}\ln\int Dz\,e^{-\frac\beta2\,(y - g(\omega + \sqrt{Q-q}\,z))^2},

stationary in :math:`(Q, q, T)`. Symbol map to Luo et al. eq. (19), whose prior fixes
the length: their :math:`(q^2, \gamma^2, \gamma R)` are our :math:`(Q, q, T)` -- their
:math:`q` is "the prior value of :math:`\gamma`" (:math:`|w|^2 = Nq^2`), their
:math:`\gamma^2` the overlap of two replicas, and their entropic term
:math:`\frac12\frac{\gamma^2 - \gamma^2R^2}{q^2-\gamma^2} + \frac12\ln(q^2-\gamma^2)` is the
bracket above. With a decay instead of a spherical prior :math:`Q` is free and the
:math:`-\beta\zeta Q/2` term selects it. Their :math:`a = \beta(q^2-\gamma^2)/(1 +
\beta(q^2-\gamma^2))` is our :math:`x/(1+x)`.

*Linear student, finite* :math:`\beta`: the inner integral is Gaussian,
:math:`-\frac1\beta E\ln\int Dz\ldots = \frac{1}{2\beta}\ln(1+\beta\Delta) +
\frac{E(y-\omega)^2}{2(1+\beta\Delta)}`, :math:`\Delta = Q - q`,
:math:`E(y-\omega)^2 = m_2 - 2cT + q` with :math:`m_2 = E y^2`, :math:`c = E[yt]`
(linear teacher: :math:`1+S, 1`; ReLU teacher: :math:`\frac12+S, \frac12`). This is exact
for the Gaussian Gibbs measure of ridge regression (tested against it).

*ReLU student, finite* :math:`\beta`: :math:`\int Dz\,e^{-\beta\ell} = \Phi(-\omega/\sqrt\Delta)
e^{-\beta y^2/2} + (1+\beta\Delta)^{-1/2}e^{-\beta(y-\omega)^2/(2(1+\beta\Delta))}\Phi(k)`,
:math:`k = (\omega + \beta\Delta y)/\sqrt{\Delta(1+\beta\Delta)}`; the outer average is a
tensor quadrature (Gauss-Legendre in :math:`t` split at 0, Gauss-Hermite in
:math:`\xi, z_0`) of this smooth integrand.

*Zero temperature* (:math:`\beta\to\infty`, :math:`q\to Q`, :math:`x = \beta(Q-q)` fixed;
Laplace's method on the inner integral):

.. math::

    f(Q, T, x) = \frac{\zeta Q}2 - \frac{Q - T^2}{2x} + \alpha\,E\,M_x(y, \omega),\qquad
    M_x(y, \omega) = \min_u\Bigl[\frac{(u-\omega)^2}{2x} + \frac12(y - g(u))^2\Bigr],

:math:`\omega = Tt + \sigma z`, :math:`\sigma^2 = Q - T^2` (a Moreau envelope; the same as
Gordon's comparison). Let :math:`u^*` be the minimizer. By the envelope theorem
:math:`\partial_\omega M = (\omega - u^*)/x`, :math:`\partial_x M = -(u^*-\omega)^2/(2x^2)`,
and since :math:`M` is continuous the piecewise regions contribute no boundary terms.
Stationarity (:math:`\partial_Q, \partial_T, \partial_x`) gives

.. math::

    \zeta x = 1 - \alpha A,\quad A = \frac{E[(\omega - u^*)z]}{\sigma};\qquad
    T = \alpha\bigl(E[(u^*-\omega)t] + T A\bigr);\qquad
    \sigma^2 = \alpha\,E[(u^* - \omega)^2].

At the saddle :math:`f = \zeta Q/2 + \alpha\,e_t` with :math:`e_t = E[\frac12(y - g(u^*))^2]`,
the training energy per sample.

*Linear student*: :math:`u^* = (\omega + xy)/(1+x)`; with :math:`\zeta = 0`, :math:`\alpha>1`:
:math:`x = 1/(\alpha-1)`, :math:`T = 1`, :math:`\epsilon = S/(\alpha-1)` (min-norm).

*ReLU student*: branch :math:`u\le0`: :math:`u^* = \min(\omega, 0)`, cost
:math:`y^2/2 + \max(\omega,0)^2/(2x)`; branch :math:`u>0`: :math:`u^* = (\omega+xy)/(1+x)`,
cost :math:`(y-\omega)^2/(2(1+x))`, valid if :math:`\omega + xy > 0`. The positive branch
wins iff :math:`y > h(\omega)`, :math:`h(\omega) = -\omega/x` (:math:`\omega > 0`),
:math:`-\omega/c` (:math:`\omega\le 0`), :math:`c = \sqrt{1+x} - 1`: three wedges of the
:math:`(\omega, y)` plane with apex at 0, on each of which every quantity above is a
quadratic form. For a linear teacher :math:`(\omega, y)` is a centred Gaussian pair and
each wedge integral is exact: :math:`E[v^\top K v\,1_W] = \frac1\pi\int_W
e_\varphi^\top L^\top K L\,e_\varphi\,d\varphi` in whitened polar coordinates
(:math:`v = L\,(a,b)`). For a ReLU teacher :math:`\omega` is integrated analytically
(truncated-normal moments) and :math:`(t, \xi)` by Gauss-Legendre split at the kinks
:math:`t = 0`, :math:`y = 0`.

*The interpolating phase* (:math:`\zeta\to0^+`): the minimizers of the training loss form a
set, :math:`\zeta\to0^+` picks its minimum-norm element, and :math:`x\to\infty` with
:math:`\zeta x\to\kappa = 1 - \alpha A_\infty > 0`. The :math:`T` and :math:`\sigma^2`
equations stay finite with :math:`u^*_\infty` = the projection of :math:`\omega` on
:math:`\arg\min_u\ell(y, g(u))` (linear: :math:`y`; ReLU: :math:`y` if :math:`y > 0`, else
:math:`\min(\omega, 0)`). Linear student: :math:`\alpha < 1`,
:math:`\epsilon = 1 - \alpha + \alpha S/(1-\alpha)`, diverging at :math:`\alpha = 1`. ReLU
student: the minimizers are the polyhedron :math:`\{w\cdot x_p = y_p\ (y_p>0),\
w\cdot x_p\le0\ (y_p\le0)\}` -- not unique -- while :math:`\kappa > 0`, i.e. up to
:math:`\alpha_c(S)` (1.465 at :math:`S = 1/4`; 2 at :math:`S = 0`, where the teacher is
recovered, ``phase="recovered"``). At :math:`\alpha_c` the min-norm interpolator's error
has a finite peak with an infinite left slope (3.45 at :math:`S = 1/4`; it grows quickly
with :math:`S`); beyond it the global minimizer is unique (finite :math:`x`) and
:math:`\epsilon` decreases (1.24 at :math:`\alpha = 2`, 0.61 at 4). There is no divergence
at :math:`\alpha = 2`. The landscape is non-convex (a positive-label pattern can be dead),
with many near-degenerate local minima; the saddle point describes the global minimum
(finite-N basin hopping converges to it, validation L-F1b).

Luo et al.'s eq. (25), :math:`\epsilon = 1 - \alpha/4 + \alpha S/(2(2-\alpha))` (their
eqs. 22-23 at :math:`a = 1`: :math:`Q = \alpha/2 + \alpha S/(2-\alpha)`,
:math:`T = \alpha/2`), is *exactly* this saddle point with the cost of region 0 dropped
(:math:`\max(\omega,0)^2/(2x)`, the price of holding :math:`w\cdot x_p\le0` on the
negative-label patterns; their Prop. 5 replaces that integral by its maximum). It equals
:math:`(1 + \epsilon^{\rm lin}_{\min}(\alpha/2))/2`, the min-norm *linear* fit of the
positive-label half alone. Finite-N min-norm interpolators (a convex QP) agree with the
full saddle point and reject eq. (25) (e.g. :math:`S = 0`, :math:`\alpha = 1`: 0.698 vs
0.75; validation check L-F1b; eq. 25 is
:func:`perceptron_theory.theory.generalization.relu_exhaustive`).

*With gamma decay* (:math:`\zeta > 0`, open in Luo et al. Sec. 4.1) the peak is gone:
at :math:`S = 1/4`, :math:`\zeta = 1/32` leaves a shoulder near :math:`\alpha_c`
(:math:`\epsilon` = 0.811, 0.785, 0.765, 0.662 at :math:`\alpha` = 1, 1.5, 2, 3) and
:math:`\zeta = 1/4` a monotone curve (0.798, 0.729, 0.679, 0.616). The optimal decay of the
ReLU student is below :math:`S` and rises towards it with :math:`\alpha` (0.15, 0.20, 0.23
at :math:`\alpha` = 1, 2, 4 for :math:`S = 1/4`), unlike the linear student's
:math:`\zeta^* = S`.

Numerics: the ReLU/linear-teacher expectations are exact (wedges, ~1e-15); a ReLU teacher
uses the quadrature engine (relative accuracy ~1e-8, checked against the wedges); finite
:math:`\beta` with a ReLU student uses composite Gauss-Legendre panels graded towards the
smoothed kinks (~1e-10) and needs a linear teacher. Roots: ``scipy.optimize.root`` (hybr)
in :math:`(T, \ln\sigma^2, \ln x)`, several cold starts, a damped fixed point
(:math:`x` from its scalar equation, then :math:`(T, \sigma^2)`), then continuation in
:math:`\alpha`; a root is accepted only if the residuals are below ``tol`` and the
Jacobian is well conditioned (a singular load, e.g. :math:`\alpha = 1` for the linear
student at :math:`\zeta = 0`, is reported with ``converged=False``). A solve takes about
2 ms (linear teacher, :math:`\beta = \infty`), 0.5 s (ReLU teacher or finite
:math:`\beta`).

Examples
--------
>>> sol = solve(2.0, student="linear", noise=0.25)   # min-norm: S/(alpha - 1)
>>> round(sol.eps, 12)
0.25
>>> sol = solve(0.5, student="linear", noise=0.25)   # interpolating: 1 - a + a S/(1 - a)
>>> round(sol.eps, 12), sol.phase
(0.75, 'interpolating')
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr, ndtr

from perceptron_theory._checks import check_array, check_choice, check_real
from perceptron_theory._io import to_plain_dict
from perceptron_theory.theory.integrals import eps_gen

__all__ = [
    "STUDENTS",
    "TEACHERS",
    "ProxMoments",
    "ReplicaSolution",
    "ReplicaCurve",
    "solve",
    "learning_curve",
    "free_energy",
    "stationarity",
    "prox_moments",
]

STUDENTS = ("linear", "relu")
TEACHERS = ("linear", "relu")

_SQRT2PI = math.sqrt(2.0 * math.pi)
_LN_2PIE = math.log(2.0 * math.pi * math.e)
_CUT = 12.0  # quadrature range in standard deviations (tail mass < 1e-32)


# ============================================================================ helpers
def _teacher_moments(teacher: str, noise: float) -> tuple[float, float]:
    """:math:`m_2 = E[y^2]` and :math:`c = E[y t]` of the teacher output."""
    if teacher == "linear":
        return 1.0 + noise, 1.0
    return 0.5 + noise, 0.5


def _tn_moments(lo, hi):
    """Moments :math:`E[u^k 1\\{lo<u<hi\\}]`, k = 0, 1, 2, of a standard normal ``u``."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    hi = np.maximum(hi, lo)
    pl = np.exp(-0.5 * np.minimum(lo * lo, 1e300)) / _SQRT2PI
    ph = np.exp(-0.5 * np.minimum(hi * hi, 1e300)) / _SQRT2PI
    m0 = np.where(lo > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))
    m1 = pl - ph
    with np.errstate(invalid="ignore"):
        lpl = np.where(np.isfinite(lo), lo * pl, 0.0)
        hph = np.where(np.isfinite(hi), hi * ph, 0.0)
    m2 = m0 + lpl - hph
    return m0, m1, m2


_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gl_nodes(n: int):
    if n not in _GL_CACHE:
        _GL_CACHE[n] = np.polynomial.legendre.leggauss(n)
    return _GL_CACHE[n]


def _interval_nodes(a, b, n: int):
    """Gauss-Legendre nodes/weights on [a, b] (a, b broadcast arrays); last axis = nodes."""
    u, w = _gl_nodes(n)
    a = np.asarray(a, dtype=float)[..., None]
    b = np.asarray(b, dtype=float)[..., None]
    half = 0.5 * (b - a)
    return a + half * (u + 1.0), half * w


#: Breakpoints of the composite Gauss-Legendre rules: a fixed grid on [-_CUT, _CUT],
#: refined at the kinks and graded geometrically around the smoothed steps of the prox
#: regions (width ~ sigma/(c sqrt S) or sigma/(x sqrt S), sharp when x is large).
_FIXED = np.linspace(-_CUT, _CUT, 9)
_GRADE = np.r_[0.0, 2.0 ** np.arange(0, 7), -(2.0 ** np.arange(0, 7))]
_GRADE_T = np.r_[0.0, 4.0 ** -np.arange(0, 9), -(4.0 ** -np.arange(0, 9))]


def _panel_nodes(points, n):
    """Composite Gauss-Legendre on [-_CUT, _CUT] with extra breakpoints ``points``.

    ``points`` has shape (rows, k); returns nodes and weights of shape (rows, panels * n).
    """
    points = np.atleast_2d(np.asarray(points, dtype=float))
    rows = points.shape[0]
    pts = np.concatenate([np.broadcast_to(_FIXED, (rows, _FIXED.size)), points], axis=1)
    pts = np.sort(np.clip(np.nan_to_num(pts, nan=0.0), -_CUT, _CUT), axis=1)
    xn, wn = _interval_nodes(pts[:, :-1], pts[:, 1:], n)  # (rows, panels, n)
    return xn.reshape(rows, -1), wn.reshape(rows, -1)


def _phi(x):
    return np.exp(-0.5 * x * x) / _SQRT2PI


# ===================================================================== zero temperature
@dataclass(frozen=True)
class ProxMoments:
    """Gaussian averages of the proximal map at zero temperature.

    ``M`` :math:`= E M_x`, ``D2`` :math:`= E(u^*-\\omega)^2`, ``Dt`` :math:`= E[(u^*-\\omega)t]`,
    ``A`` :math:`= E[(\\omega-u^*)z]/\\sigma`, ``train`` :math:`= E\\,\\frac12(y-g(u^*))^2`,
    ``active`` :math:`= P(g'(u^*) > 0)`.
    """

    M: float
    D2: float
    Dt: float
    A: float
    train: float
    active: float

    def to_dict(self) -> dict:
        return to_plain_dict(self)


def _moments_linear(m2, c, Q, T, x) -> ProxMoments:
    e = m2 - 2.0 * c * T + Q  # E (y - omega)^2
    if math.isinf(x):
        return ProxMoments(0.0, e, c - T, 1.0, 0.0, 1.0)
    k = x / (1.0 + x)
    return ProxMoments(e / (2.0 * (1.0 + x)), k * k * e, k * (c - T), k,
                       e / (2.0 * (1.0 + x) ** 2), 1.0)


def _relu_wedges(x):
    """Angles (in the (omega, y) plane) and linear maps of the three ReLU prox regions.

    Returns ``theta`` (4,) region boundaries and ``a``, ``b`` (3, 2): in region k,
    :math:`u^* - \\omega = a_k\\cdot(\\omega, y)` and :math:`y - g(u^*) = b_k\\cdot(\\omega, y)`.
    Regions: 0 = dead, :math:`\\omega > 0` (u* = 0); 1 = active; 2 = dead, u* = omega.
    """
    if math.isinf(x):
        th1, th2 = 0.0, math.pi
        aB, bB = (-1.0, 1.0), (0.0, 0.0)
    else:
        c = x / (math.sqrt(1.0 + x) + 1.0)  # sqrt(1+x) - 1 without cancellation
        th1 = -math.atan2(1.0, x)
        th2 = math.pi - math.atan2(1.0, c)
        aB = (-x / (1.0 + x), x / (1.0 + x))
        bB = (-1.0 / (1.0 + x), 1.0 / (1.0 + x))
    theta = np.array([-0.5 * math.pi, th1, th2, 1.5 * math.pi])
    a = np.array([(-1.0, 0.0), aB, (0.0, 0.0)])
    b = np.array([(0.0, 1.0), bB, (0.0, 1.0)])
    return theta, a, b


def _moments_relu_wedge(noise, Q, T, x) -> ProxMoments:
    """Exact wedge integrals: ReLU student, linear teacher, (omega, y) centred Gaussian."""
    m2 = 1.0 + noise
    sig2 = Q - T * T
    sig = math.sqrt(sig2)
    # Cholesky of Cov(omega, y) = [[Q, T], [T, m2]]
    l11 = math.sqrt(Q)
    l21 = T / l11
    l22 = math.sqrt(max(m2 - l21 * l21, 0.0))
    L = np.array([[l11, 0.0], [l21, l22]])
    det = Q * m2 - T * T
    # E[t | v] = kt . v, E[z | v] = kz . v, v = (omega, y)
    kt = np.array([m2 * T - T, Q - T * T]) / det
    kz = np.array([m2 * sig, -T * sig]) / det
    theta, a, b = _relu_wedges(x)
    # whitened angles of the boundary rays: L^{-1} (cos th, sin th)
    ct, st = np.cos(theta), np.sin(theta)
    w1 = ct / l11
    w2 = (st - l21 * w1) / l22
    phi = np.arctan2(w2, w1)
    span = np.mod(np.diff(phi), 2.0 * math.pi)
    p1 = phi[:-1]
    p2 = p1 + span
    s2 = np.sin(2 * p2) - np.sin(2 * p1)
    cc = span / 2 + s2 / 4
    ss = span / 2 - s2 / 4
    cs = (np.cos(2 * p1) - np.cos(2 * p2)) / 4

    def E(K):  # K: (3, 2, 2) -> sum over regions of E[v^T K v 1_region]
        Kt = np.einsum("ji,rjk,kl->ril", L, K, L)
        return float(np.sum(Kt[:, 0, 0] * cc + Kt[:, 1, 1] * ss
                            + (Kt[:, 0, 1] + Kt[:, 1, 0]) * cs) / math.pi)

    aa = np.einsum("ri,rj->rij", a, a)
    bb = np.einsum("ri,rj->rij", b, b)
    D2 = E(aa)
    Dt = E(np.einsum("ri,j->rij", a, kt))
    Dz = E(np.einsum("ri,j->rij", a, kz))
    train = 0.5 * E(bb)
    M = train + (0.0 if math.isinf(x) else D2 / (2.0 * x))
    active = float(span[1] / (2.0 * math.pi))
    return ProxMoments(M, D2, Dt, -Dz / sig, train, active)


_QUAD_N = 8  # Gauss-Legendre nodes per panel (ReLU teacher)


def _moments_relu_quad(teacher, noise, Q, T, x, n=_QUAD_N) -> ProxMoments:
    """ReLU student, any teacher: analytic in omega, composite Gauss-Legendre in (t, xi).

    After the analytic omega integral the integrand is smooth except at t = 0 (ReLU
    teacher) and y = 0 (where the prox regions switch; a step as x -> inf), so both
    variables are split there and integrated on panels graded towards the kink.
    """
    sig = math.sqrt(Q - T * T)
    if math.isinf(x):
        c_, x_ = math.inf, math.inf
    else:
        c_, x_ = x / (math.sqrt(1.0 + x) + 1.0), x
    tt, wt = _panel_nodes(_GRADE_T[None, :], n if noise > 0 else 3 * n)
    tt, wt = tt.ravel(), wt.ravel() * _phi(tt.ravel())
    gt = tt if teacher == "linear" else np.maximum(tt, 0.0)
    if noise > 0:
        sn = math.sqrt(noise)
        # kink y = 0, and the smoothed step at y = h(T t) of width sigma/(slope sqrt S)
        om0 = T * tt
        with np.errstate(divide="ignore", invalid="ignore"):
            y_s = np.where(om0 > 0, -om0 / x_, -om0 / c_)
            width = sig / (np.where(om0 > 0, x_, c_) * sn)
        y_s = np.nan_to_num(y_s, nan=0.0, posinf=0.0, neginf=0.0)
        width = np.minimum(np.nan_to_num(width, nan=1.0), 1.0)
        # geometric grading around the kink from the finest step width sigma/(x sqrt S)
        fine = min(sig / (x_ * sn), 1.0) if math.isfinite(x_) else 1.0
        k = np.arange(0, int(math.ceil(math.log2(1.0 / fine))) + 1) if fine < 1 else np.zeros(1)
        geo = np.r_[0.0, fine * 2.0**k, -fine * 2.0**k]
        pts = np.concatenate([(-gt / sn)[:, None] + geo,
                              ((y_s - gt) / sn)[:, None] + width[:, None] * _GRADE], axis=1)
        xi, wx = _panel_nodes(pts, n)
        wx = wx * _phi(xi)
        t = tt[:, None] * np.ones_like(xi)
        y = gt[:, None] + sn * xi
        w = wt[:, None] * wx
    else:
        t, y, w = tt, gt, wt
    mu = T * t
    if math.isinf(x):
        wc = np.where(y > 0, -np.inf, np.inf)
        aB = (-1.0, 1.0)
        bB = (0.0, 0.0)
    else:
        c = x / (math.sqrt(1.0 + x) + 1.0)
        wc = np.where(y >= 0, -c * y, -x * y)
        aB = (-x / (1.0 + x), x / (1.0 + x))
        bB = (-1.0 / (1.0 + x), 1.0 / (1.0 + x))
    zero = np.zeros_like(y)
    lo0 = np.minimum(0.0, wc)
    regions = (  # (lo, hi, a_omega, a_y, b_omega, b_y)
        (np.full_like(y, -np.inf), lo0, 0.0, 0.0, 0.0, 1.0),
        (zero, np.maximum(wc, 0.0), -1.0, 0.0, 0.0, 1.0),
        (wc, np.full_like(y, np.inf), aB[0], aB[1], bB[0], bB[1]),
    )
    acc = dict(D2=0.0, Dt=0.0, Dz=0.0, train=0.0, active=0.0)
    for k, (lo, hi, aw, ay, bw, by) in enumerate(regions):
        m0, m1, m2 = _tn_moments((lo - mu) / sig, (hi - mu) / sig)
        d0, d1 = aw * mu + ay * y, aw * sig  # u* - omega = d0 + d1 u
        r0, r1 = bw * mu + by * y, bw * sig
        acc["D2"] += np.sum(w * (d0 * d0 * m0 + 2 * d0 * d1 * m1 + d1 * d1 * m2))
        acc["Dt"] += np.sum(w * t * (d0 * m0 + d1 * m1))
        acc["Dz"] += np.sum(w * (d0 * m1 + d1 * m2))
        acc["train"] += 0.5 * np.sum(w * (r0 * r0 * m0 + 2 * r0 * r1 * m1 + r1 * r1 * m2))
        if k == 2:
            acc["active"] = float(np.sum(w * m0))
    D2, train = float(acc["D2"]), float(acc["train"])
    M = train + (0.0 if math.isinf(x) else D2 / (2.0 * x))
    return ProxMoments(M, D2, float(acc["Dt"]), -float(acc["Dz"]) / sig, train, acc["active"])


def _check_point(student, teacher, noise, Q, T, x=None, q=None):
    """Validate a point of order-parameter space (ValueError naming the parameter)."""
    check_choice("student", student, STUDENTS)
    check_choice("teacher", teacher, TEACHERS)
    check_real("noise", noise, 0.0, None)
    T = check_real("T", T)
    Q = check_real("Q", Q, T * T, None, lo_open=True)
    if x is not None and not (isinstance(x, (int, float)) and math.isinf(x) and x > 0):
        check_real("x", x, 0.0, None, lo_open=True)
    if q is not None:
        check_real("q", q, T * T, Q, lo_open=True, hi_open=True)


def prox_moments(student: str, teacher: str, noise: float, Q: float, T: float, x: float,
                 method: str = "auto") -> ProxMoments:
    """Zero-temperature Gaussian averages of the proximal map :math:`u^*(y, \\omega)`.

    Parameters
    ----------
    student, teacher : {"linear", "relu"}
        Activations :math:`g` and :math:`g^*`.
    noise : float
        Teacher output-noise variance :math:`S \\ge 0`.
    Q, T : float
        Order parameters, :math:`Q > T^2`.
    x : float
        :math:`x = \\beta(Q - q) > 0`; ``inf`` is the interpolating limit.
    method : {"auto", "wedge", "quad"}
        ReLU student: exact wedge formulas (linear teacher only) or the quadrature
        engine; ``auto`` takes the wedge formulas where they apply.
    """
    _check_point(student, teacher, noise, Q, T, x)
    check_choice("method", method, ("auto", "wedge", "quad"))
    return _prox(student, teacher, noise, Q, T, x, method)


def _prox(student, teacher, noise, Q, T, x, method="auto") -> ProxMoments:
    """:func:`prox_moments` without argument checks (the solver's inner loop)."""
    if student == "linear":
        m2, c = _teacher_moments(teacher, noise)
        return _moments_linear(m2, c, Q, T, x)
    if method == "auto":
        method = "wedge" if teacher == "linear" else "quad"
    if method == "wedge":
        if teacher != "linear":
            raise ValueError("method='wedge' needs teacher='linear'")
        return _moments_relu_wedge(noise, Q, T, x)
    return _moments_relu_quad(teacher, noise, Q, T, x)


def _free_energy_zero_T(alpha, zeta, Q, T, x, mom: ProxMoments) -> float:
    if math.isinf(x):
        return 0.5 * zeta * Q + alpha * mom.M
    return 0.5 * zeta * Q - (Q - T * T) / (2.0 * x) + alpha * mom.M


# =================================================================== finite temperature
_FINITE_N = 8  # Gauss-Legendre nodes per panel (finite beta, ReLU student)


def _lnZ_relu(beta, y, om, D):
    """ln Z, d/domega, d/dDelta, -d/dbeta of ln Z for the ReLU student (vectorized)."""
    sD = math.sqrt(D)
    bD = beta * D
    a = y - om
    uA = -om / sD
    k = (om + bD * y) / math.sqrt(D * (1.0 + bD))
    lA = log_ndtr(uA) - 0.5 * beta * y * y
    lB = -0.5 * math.log1p(bD) - 0.5 * beta * a * a / (1.0 + bD) + log_ndtr(k)
    lZ = np.logaddexp(lA, lB)
    pA = np.exp(lA - lZ)
    pB = np.exp(lB - lZ)
    RA = np.exp(-0.5 * uA * uA - log_ndtr(uA)) / _SQRT2PI  # phi/Phi
    RB = np.exp(-0.5 * k * k - log_ndtr(k)) / _SQRT2PI
    dk_dom = 1.0 / math.sqrt(D * (1.0 + bD))
    dk_dD = beta * y * dk_dom - 0.5 * (om + bD * y) * (1.0 + 2.0 * bD) * (D * (1.0 + bD)) ** -1.5
    dk_db = D * y * dk_dom - 0.5 * (om + bD * y) * D / (math.sqrt(D) * (1.0 + bD) ** 1.5)
    dA_dom = -RA / sD
    dA_dD = RA * om / (2.0 * D * sD)
    dA_db = -0.5 * y * y
    dB_dom = beta * a / (1.0 + bD) + RB * dk_dom
    dB_dD = -0.5 * beta / (1.0 + bD) + 0.5 * (beta * a / (1.0 + bD)) ** 2 + RB * dk_dD
    dB_db = -0.5 * D / (1.0 + bD) - 0.5 * a * a / (1.0 + bD) ** 2 + RB * dk_db
    return (lZ, pA * dA_dom + pB * dB_dom, pA * dA_dD + pB * dB_dD,
            -(pA * dA_db + pB * dB_db))


@dataclass(frozen=True)
class _FiniteTerms:
    """Energetic averages at finite beta (all per pattern)."""

    lnZ: float  # E ln Z
    d_om_z: float  # E[d_omega lnZ * z0]
    d_om_t: float  # E[d_omega lnZ * t]
    d_D: float  # E[d_Delta lnZ]
    energy: float  # E <l>  (thermal average of the halved loss)


def _finite_terms(student, teacher, noise, beta, Q, q, T) -> _FiniteTerms:
    D = Q - q
    s0 = math.sqrt(q - T * T)
    if student == "linear":
        m2, c = _teacher_moments(teacher, noise)
        e = m2 - 2.0 * c * T + q
        bD = beta * D
        lnZ = -0.5 * math.log1p(bD) - 0.5 * beta * e / (1.0 + bD)
        # d_omega lnZ = beta (y - omega)/(1 + bD); E[(y - omega) z0] = -s0;
        # E[(y - omega) t] = c - T
        d_om_z = -beta * s0 / (1.0 + bD)
        d_om_t = beta * (c - T) / (1.0 + bD)
        d_D = -0.5 * beta / (1.0 + bD) + 0.5 * beta * beta * e / (1.0 + bD) ** 2
        energy = 0.5 * D / (1.0 + bD) + 0.5 * e / (1.0 + bD) ** 2
        return _FiniteTerms(lnZ, d_om_z, d_om_t, d_D, energy)
    if teacher == "linear":
        # (omega, y) is a centred Gaussian pair. omega on composite Gauss-Legendre panels
        # graded towards 0 (the Phi(-omega/sqrt(Delta)) step), y | omega on panels graded
        # towards y = 0 and y = h(omega) (the smoothed switch between the two branches of
        # Z); z0 and t enter through E[z0 | omega, y] and E[t | omega, y] (linear).
        n = _FINITE_N
        m2 = 1.0 + noise
        sq = math.sqrt(q)
        fine = min(math.sqrt(D / q), 1.0)
        k = np.arange(0, int(math.ceil(math.log2(1.0 / fine))) + 1)
        a, wa = _panel_nodes(np.r_[0.0, fine * 2.0**k, -fine * 2.0**k][None, :], n)
        a, wa = a.ravel(), wa.ravel() * _phi(a.ravel())
        om1 = sq * a
        my = T * om1 / q
        sy = math.sqrt(max(m2 - T * T / q, 1e-300))
        x = beta * D
        c = x / (math.sqrt(1.0 + x) + 1.0)
        h = np.where(om1 > 0, -om1 / x, -om1 / c)
        fine = min(1.0 / (beta * sy), 1.0)
        k = np.arange(0, int(math.ceil(math.log2(1.0 / fine))) + 1)
        geo = np.r_[0.0, fine * 2.0**k, -fine * 2.0**k]
        pts = np.concatenate([(-my / sy)[:, None] + geo, ((h - my) / sy)[:, None] + geo], axis=1)
        b, wb = _panel_nodes(pts, n)
        w = (wa[:, None] * wb * _phi(b)).ravel()
        om = np.broadcast_to(om1[:, None], b.shape).ravel()
        y = (my[:, None] + sy * b).ravel()
        det = q * m2 - T * T
        z0 = (m2 * s0 * om - T * s0 * y) / det
        t = ((m2 * T - T) * om + (q - T * T) * y) / det
    else:  # excluded at the door (_check_args)
        raise ValueError("finite beta with a ReLU student needs teacher='linear'")
    lZ, dom, dD, en = _lnZ_relu(beta, y, om, D)
    return _FiniteTerms(float(w @ lZ), float(w @ (dom * z0)), float(w @ (dom * t)),
                        float(w @ dD), float(w @ en))


def _free_energy_finite(alpha, zeta, beta, Q, q, T, ft: _FiniteTerms) -> float:
    D = Q - q
    ent = 0.5 * (_LN_2PIE + math.log(D) + (q - T * T) / D)
    return 0.5 * zeta * Q - ent / beta - alpha * ft.lnZ / beta


def _grad_finite(alpha, zeta, beta, Q, q, T, ft: _FiniteTerms) -> np.ndarray:
    """beta * (df/dQ, df/dq, df/dT)."""
    D = Q - q
    s0 = math.sqrt(q - T * T)
    gQ = 0.5 * beta * zeta - 0.5 * (1.0 / D - (q - T * T) / D**2) - alpha * ft.d_D
    gq = -0.5 * (q - T * T) / D**2 - alpha * (-ft.d_D + 0.5 * ft.d_om_z / s0)
    gT = T / D - alpha * (ft.d_om_t - T * ft.d_om_z / s0)
    return np.array([gQ, gq, gT])


# ===================================================================== public API
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


# ---------------------------------------------------------------- zero-T residuals
def _residual_zero_T(v, alpha, student, teacher, noise, zeta, interp):
    """Stationarity residuals in (T, ln sigma^2[, ln x])."""
    T = v[0]
    s2 = math.exp(min(v[1], 700.0))
    Q = s2 + T * T
    x = math.inf if interp else math.exp(min(v[2], 700.0))
    mom = _prox(student, teacher, noise, Q, T, x)
    r_T = T - alpha * (mom.Dt + T * mom.A)
    r_s = v[1] - math.log(max(alpha * mom.D2, 1e-300))
    if interp:
        return np.array([r_T, r_s]), mom
    r_x = zeta * x + alpha * mom.A - 1.0
    return np.array([r_x, r_T, r_s]), mom


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


# --------------------------------------------------------------- finite-T residuals
def _residual_finite(v, alpha, student, teacher, noise, zeta, beta):
    """Delta * beta * grad f in (T, ln(q - T^2), ln Delta)."""
    T = v[0]
    s02 = math.exp(min(v[1], 700.0))
    D = math.exp(min(v[2], 700.0))
    q = s02 + T * T
    Q = q + D
    ft = _finite_terms(student, teacher, noise, beta, Q, q, T)
    return D * _grad_finite(alpha, zeta, beta, Q, q, T, ft), ft


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


def stationarity(alpha, Q, T, x=None, *, q=None, student="relu", teacher="linear", noise=0.25,
                 zeta=0.0, beta=math.inf) -> dict:
    """Free energy and its gradient at a point of order-parameter space.

    At :math:`\\beta=\\infty` returns ``f`` and ``grad`` = :math:`(\\partial_Q f, \\partial_T f,
    \\partial_x f)` from the envelope-theorem formulas of the module docstring; at finite
    :math:`\\beta`, :math:`(\\partial_Q f, \\partial_q f, \\partial_T f)`. Used to check the
    stationarity equations against finite differences of :func:`free_energy`.
    """
    check_real("alpha", alpha, 0.0, None, lo_open=True)
    check_real("zeta", zeta, 0.0, None)
    if math.isinf(beta):
        if x is None:
            raise ValueError("x must be given (in (0, inf]) at beta = inf, got None")
        mom = prox_moments(student, teacher, noise, Q, T, x)
        gQ = 0.5 * zeta - 0.5 / x + 0.5 * alpha * mom.A / x
        gT = T / x - alpha * (mom.Dt + T * mom.A) / x
        gx = 0.5 * (Q - T * T) / x**2 - 0.5 * alpha * mom.D2 / x**2
        return {"f": _free_energy_zero_T(alpha, zeta, Q, T, x, mom),
                "grad": np.array([gQ, gT, gx])}
    check_real("beta", beta, 0.0, None, lo_open=True)
    if q is None:
        raise ValueError("q must be given (in (T^2, Q)) at finite beta, got None")
    _check_point(student, teacher, noise, Q, T, q=q)
    if student == "relu" and teacher != "linear":
        raise ValueError(f"teacher must be 'linear' for a ReLU student at finite beta, "
                         f"got {teacher!r}")
    ft = _finite_terms(student, teacher, noise, beta, Q, q, T)
    return {"f": _free_energy_finite(alpha, zeta, beta, Q, q, T, ft),
            "grad": _grad_finite(alpha, zeta, beta, Q, q, T, ft) / beta}


def free_energy(alpha, Q, T, x=None, *, q=None, student="relu", teacher="linear", noise=0.25,
                zeta=0.0, beta=math.inf) -> float:
    """RS free energy per input dimension, :math:`f(Q, T, x)` or :math:`f(Q, q, T)`.

    Zero temperature: :math:`\\zeta Q/2 - (Q-T^2)/(2x) + \\alpha E M_x` (module docstring);
    finite :math:`\\beta`: :math:`-\\frac1\\beta` times the bracket of the replica formula,
    including the constant :math:`\\frac12\\ln(2\\pi e)`, so that it equals
    :math:`-\\frac1{\\beta N}E\\ln\\int dw\\,e^{-\\beta E(w)}`.
    """
    return stationarity(alpha, Q, T, x, q=q, student=student, teacher=teacher, noise=noise,
                        zeta=zeta, beta=beta)["f"]


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
