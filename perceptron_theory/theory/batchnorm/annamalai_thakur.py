r"""Annamalai & Thakur: BN as data-dependent regularization-rate tuning (A-eq11, A-eq19).

:func:`bn_weight`, :func:`effective_rate`, :func:`bn_constrained_solution`,
:func:`noise_regularization_factor`, :func:`noise_penalty` (their eqs. 2-19,
with the corrections stated in each docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perceptron_theory._checks import check_array, check_real

__all__ = [
    "bn_weight", "effective_rate", "ConstrainedBNSolution", "bn_constrained_solution",
    "noise_regularization_factor", "noise_penalty",
]


def _check_w_R(w, R) -> tuple[np.ndarray, np.ndarray]:
    w = check_array("w", w, min_size=1)
    if w.ndim != 1:
        raise ValueError(f"w must be a vector of shape (d,), got shape {w.shape}")
    if not np.any(w != 0):
        raise ValueError("w must be nonzero, got the zero vector")
    R = check_array("R", R)
    d = w.size
    if R.shape != (d, d):
        raise ValueError(f"R must be a ({d}, {d}) covariance matrix, got shape {R.shape}")
    if not np.allclose(R, R.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(R).max()))):
        raise ValueError("R must be symmetric")
    try:
        np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise ValueError("R must be positive definite") from None
    return w, R


def effective_rate(w, R) -> float:
    r"""Annamalai & Thakur's BN regularization rate :math:`\alpha_{BN} = \sqrt{w^T R w}`.

    .. math::

        \alpha_{BN} = \big[E\,(w^T x)^2\big]^{1/2} = \sqrt{w^T R w},
        \qquad R = E[x x^T]\ (\text{zero-mean } x).

    Source: Annamalai & Thakur, eqs. 3-8 (and Sec. III.A.1).

    Parameters
    ----------
    w : array_like, shape (d,)
        Non-BN weight vector.
    R : array_like, shape (d, d)
        Input covariance (symmetric positive definite).

    Returns
    -------
    float
    """
    w, R = _check_w_R(w, R)
    return float(math.sqrt(w @ R @ w))


def bn_weight(w, gamma: float, R) -> np.ndarray:
    r"""BN folded into the weights: :math:`w_{bn} = \gamma w/\sqrt{w^T R w}` (zero-mean x, no beta).

    .. math::

        \gamma\frac{x^T w - \mu}{\sigma} = x^T w_{bn}, \qquad
        w_{bn} = \frac{\gamma\, w}{\sqrt{w^T R w}} .

    Scale invariant: :math:`w_{bn}(c\,w) = \mathrm{sign}(c)\, w_{bn}(w)`.
    Source: Annamalai & Thakur, eqs. 2 and 12 (population statistics).

    Parameters
    ----------
    w : array_like, shape (d,)
        Non-BN weight vector.
    gamma : float
        BN scale.
    R : array_like, shape (d, d)
        Input covariance (symmetric positive definite).

    Returns
    -------
    numpy.ndarray, shape (d,)
    """
    w, R = _check_w_R(w, R)
    gamma = check_real("gamma", gamma)
    return gamma * w / math.sqrt(w @ R @ w)


@dataclass(frozen=True)
class ConstrainedBNSolution:
    r"""Solution of :math:`\min_v \sqrt{w^TRw}\,|v|^2` s.t. :math:`v\cdot w = 1`."""

    minimizer: np.ndarray
    multiplier: float
    matching_gamma: float
    objective: float

    def to_dict(self) -> dict:
        return {"minimizer": self.minimizer.tolist(), "multiplier": self.multiplier,
                "matching_gamma": self.matching_gamma, "objective": self.objective}


def bn_constrained_solution(w, R) -> ConstrainedBNSolution:
    r"""Exact solution of Annamalai & Thakur's constrained problem (their eqs. 3-11).

    .. math::

        \min_{v}\ F(v) = \sqrt{w^T R w}\;v^T v \quad \text{s.t.}\quad v^T w = 1 .

    Stationarity of :math:`F - \alpha_b(v^Tw - 1)`: :math:`2\sqrt{w^TRw}\,v = \alpha_b w`,
    and the constraint fixes :math:`\alpha_b`:

    .. math::

        v^* = \frac{w}{|w|^2}, \qquad \alpha_b = \frac{2\sqrt{w^TRw}}{|w|^2}, \qquad
        F(v^*) = \frac{\sqrt{w^TRw}}{|w|^2}.

    Corrected: the paper's eq. 10 drops the factor 2 of :math:`\nabla_v v^Tv = 2v`, and
    its eq. 11 :math:`w_{bn} = \alpha_b w/\sqrt{w^TRw}` "with :math:`\alpha_b = \gamma`"
    ignores that the constraint fixes :math:`\alpha_b`. What is true: the BN weight
    :func:`bn_weight` is *parallel* to :math:`v^*` (both :math:`\propto w`), equal to it
    only for :math:`\gamma = \sqrt{w^TRw}/|w|^2` (``matching_gamma``); the minimizer does
    not depend on R at all (the weight :math:`\sqrt{w^TRw}` is a constant of the
    problem), so R enters only the multiplier. Scale invariance:
    :math:`w_{bn}(cw) = w_{bn}(w)` for :math:`c > 0`.

    Parameters
    ----------
    w : array_like, shape (d,)
        Non-BN weight vector.
    R : array_like, shape (d, d)
        Input covariance (symmetric positive definite).

    Returns
    -------
    ConstrainedBNSolution
    """
    w, R = _check_w_R(w, R)
    a = math.sqrt(w @ R @ w)
    n2 = float(w @ w)
    return ConstrainedBNSolution(w / n2, 2.0 * a / n2, a / n2, a / n2)


def noise_regularization_factor(gamma: float, lam: float, sigma2: float) -> float:
    r"""Annamalai & Thakur's signal-vs-noise factor :math:`\sigma^2\gamma^2/(\lambda + \sigma^2)`.

    For :math:`R = \lambda I` and input noise :math:`\xi \sim N(0, \sigma^2 I)` with BN
    statistics of the noisy input, the noise adds :math:`\sigma^2|w_{bn}|^2 =
    \sigma^2\gamma^2/(\lambda+\sigma^2)` to the unhalved MSE (:func:`noise_penalty`):

    .. math::

        E(y_n^p - y)^2 = E(y^p - y)^2 + \frac{\sigma^2\gamma^2}{\lambda + \sigma^2}.

    Source: Annamalai & Thakur, eq. 19. Corrected limit: for :math:`\sigma^2 \ll \lambda`
    the factor is :math:`\sigma^2\gamma^2/\lambda` (the paper writes
    :math:`\gamma^2/\lambda`); for :math:`\sigma^2 \gg \lambda` it tends to
    :math:`\gamma^2`. With real batch statistics of size M a further
    :math:`2\gamma a(1-c_M)` is added (:func:`linear_excess_loss`, unhalved).

    Parameters
    ----------
    gamma : float
        BN scale.
    lam : float
        Signal variance :math:`\lambda > 0` per input direction.
    sigma2 : float
        Noise variance :math:`\sigma^2 \ge 0`.

    Returns
    -------
    float
    """
    gamma = check_real("gamma", gamma)
    lam = check_real("lam", lam, 0.0, lo_open=True)
    sigma2 = check_real("sigma2", sigma2, 0.0)
    return sigma2 * gamma**2 / (lam + sigma2)


def noise_penalty(w, gamma: float, R, sigma2: float) -> float:
    r"""Input-noise penalty on the BN weight, general covariance (Annamalai & Thakur eq. 18).

    .. math::

        \sigma^2 |w_{bn}|^2 = \frac{\sigma^2\gamma^2\,|w|^2}{w^T(R + \sigma^2 I)\,w}
            = \frac{\sigma^2\gamma^2 \sum_i \tilde w_i^2}{\sum_j (\lambda_j + \sigma^2)
              \tilde w_j^2},

    with :math:`w_{bn}` from the statistics of the noisy input
    (:math:`R_n = R + \sigma^2 I`) and :math:`\tilde w = Q^T w` the coordinates of w in
    R's eigenbasis (the paper's :math:`w_i` must be read as these). Reduces to
    :func:`noise_regularization_factor` for :math:`R = \lambda I`. Unhalved MSE.

    Parameters
    ----------
    w : array_like, shape (d,)
        Non-BN weight vector.
    gamma : float
        BN scale.
    R : array_like, shape (d, d)
        Clean-input covariance (symmetric positive definite).
    sigma2 : float
        Noise variance :math:`\sigma^2 \ge 0`.

    Returns
    -------
    float
    """
    w, R = _check_w_R(w, R)
    gamma = check_real("gamma", gamma)
    sigma2 = check_real("sigma2", sigma2, 0.0)
    n2 = float(w @ w)
    return sigma2 * gamma**2 * n2 / float(w @ R @ w + sigma2 * n2)
