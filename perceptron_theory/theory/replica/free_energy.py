r"""The replica-symmetric free energy, its gradient and the stationarity residuals.

Notation and derivation: :mod:`perceptron_theory.theory.replica`.
"""

from __future__ import annotations

import math

import numpy as np

from perceptron_theory._checks import check_real
from perceptron_theory.theory.replica.expectations import (
    _LN_2PIE,
    ProxMoments,
    _check_point,
    _finite_terms,
    _FiniteTerms,
    _prox,
    prox_moments,
)

__all__ = ["stationarity", "free_energy"]


def _free_energy_zero_T(alpha, zeta, Q, T, x, mom: ProxMoments) -> float:
    if math.isinf(x):
        return 0.5 * zeta * Q + alpha * mom.M
    return 0.5 * zeta * Q - (Q - T * T) / (2.0 * x) + alpha * mom.M

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
