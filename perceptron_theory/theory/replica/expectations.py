r"""Averages over a fresh pattern: the prox moments (zero temperature) and the Gaussian
integrals of the finite-temperature free energy, with their quadrature rules.

Notation, derivation and accuracy: :mod:`perceptron_theory.theory.replica`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

from perceptron_theory._checks import check_choice, check_real
from perceptron_theory._io import to_plain_dict

__all__ = ["STUDENTS", "TEACHERS", "ProxMoments", "prox_moments"]


STUDENTS = ("linear", "relu")
TEACHERS = ("linear", "relu")

_SQRT2PI = math.sqrt(2.0 * math.pi)
_LN_2PIE = math.log(2.0 * math.pi * math.e)
_CUT = 12.0  # quadrature range in standard deviations (tail mass < 1e-32)


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
