r"""Per-sample losses :math:`\ell(\tilde h, y) = A(\tilde h) - y\tilde h` of the BN theory.

The registry :data:`LOSSES` (keyed by the names the functions' ``loss`` argument
accepts) and the shared input checks of the data-driven functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special as _sp

from perceptron_theory._checks import check_array

__all__ = ["softplus_partition", "BNLoss", "LOSSES"]


def softplus_partition(h) -> np.ndarray:
    r"""Log-partition with :math:`A' = \mathrm{softplus}`: :math:`A(h) = -\mathrm{Li}_2(-e^h)`.

    .. math::

        A(h) = -\mathrm{Li}_2(-e^h) =
        \begin{cases} -\mathrm{spence}(1 + e^{h}) & h \le 0 \\
        \frac{\pi^2}{6} + \frac{h^2}{2} + \mathrm{spence}(1 + e^{-h}) & h > 0 \end{cases}

    (``scipy.special.spence(z)`` :math:`= \mathrm{Li}_2(1-z)`; the second branch is the
    inversion formula :math:`\mathrm{Li}_2(-x) + \mathrm{Li}_2(-1/x) = -\pi^2/6 - \ln^2 x/2`,
    stable for large h). :math:`A'(h) = \log(1+e^h)`, :math:`A'' = \mathrm{sigmoid}`.
    Source: Luo et al. 2019, App. C.2 (softplus as the smooth ReLU).

    Parameters
    ----------
    h : array_like
        Post-BN pre-activation :math:`\tilde h`.

    Returns
    -------
    numpy.ndarray
    """
    h = check_array("h", h)
    out = np.empty_like(h)
    neg = h <= 0
    out[neg] = -_sp.spence(1.0 + np.exp(h[neg]))
    hp = h[~neg]
    out[~neg] = np.pi**2 / 6.0 + 0.5 * hp * hp + _sp.spence(1.0 + np.exp(-hp))
    return out


@dataclass(frozen=True)
class BNLoss:
    r"""A per-sample loss :math:`\ell(\tilde h, y) = A(\tilde h) - y\tilde h` (+ const).

    ``mean`` is :math:`A'` (the prediction), ``curvature`` :math:`A''`,
    ``third_bound`` :math:`\sup|A'''|` (for Taylor remainders).
    """

    name: str
    value: Callable
    mean: Callable
    curvature: Callable
    third_bound: float
    description: str


def _mse_value(ht, y):
    return 0.5 * (y - ht) ** 2


def _softplus(x):
    return np.logaddexp(0.0, x)


def _glm_value(ht, y):
    return softplus_partition(ht) - y * ht


#: Loss registry, keyed by the names the CLI accepts.
LOSSES: dict[str, BNLoss] = {
    "mse": BNLoss("mse", _mse_value, lambda h: np.asarray(h, float),
                  lambda h: np.ones_like(np.asarray(h, float)), 0.0,
                  "halved squared error, identity output: (y - h)^2 / 2 (A(h) = h^2/2)"),
    "glm-softplus": BNLoss("glm-softplus", _glm_value, _softplus, _sp.expit, 0.25,
                           "GLM negative log-likelihood A(h) - y h with A' = softplus "
                           "(Luo et al. App. C.2, smooth ReLU); A'' = sigmoid"),
}


def _standardize(h: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, sd = float(h.mean()), float(h.std())
    if not sd > 0:
        raise ValueError("h must not be constant (population std sigma_P = 0)")
    return (h - mu) / sd, mu, sd


def _check_hy(h, y):
    h = check_array("h", h, min_size=2)
    if h.ndim != 1:
        raise ValueError(f"h must be one-dimensional, got shape {h.shape}")
    y = check_array("y", y)
    if y.shape != h.shape:
        raise ValueError(f"y must have the shape of h {h.shape}, got {y.shape}")
    return h, y
