r"""The exact expected BN loss: Monte Carlo, Gauss quadrature and leading order (L-eq3).

Both noise models (*real* batches and Luo et al.'s *independent* noise):
:func:`expected_bn_loss` (Monte Carlo over batch draws),
:func:`gaussian_batch_loss` (quadrature for a Gaussian population) and
:func:`real_batch_leading_excess` (the 1/M expansion in real batches).
Notation and conventions: :mod:`.batchnorm`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special as _sp
from scipy import stats as _stats

from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.theory.batchnorm.losses import (
    LOSSES,
    _check_hy,
    _standardize,
    softplus_partition,
)
from perceptron_theory.theory.batchnorm.noise import _check_batch_size

__all__ = [
    "MonteCarloLoss", "expected_bn_loss", "RealBatchLeading", "real_batch_leading_excess",
    "gaussian_batch_loss",
]


@dataclass(frozen=True)
class MonteCarloLoss:
    """Monte Carlo estimate of the expected BN loss over batch draws."""

    mean: float
    stderr: float
    n_draws: int
    mode: str
    batch_size: int
    centered: bool

    def to_dict(self) -> dict:
        return asdict(self)


def expected_bn_loss(h, y, gamma: float, beta: float = 0.0, batch_size: int = 32,
                     loss: str = "mse", *, n_draws: int = 64, seed: int = 0,
                     mode: str = "real", centered: bool = True,
                     max_chunk_elements: int = 2_000_000) -> MonteCarloLoss:
    r"""Monte Carlo of the exact BN loss :math:`\frac1P\sum_j E\,\ell(\tilde h_{BN,j}, y_j)`.

    .. math::

        \tilde h_{BN,j} = \gamma\frac{h_j - \mu_B}{\sigma_B} + \beta, \qquad
        \sigma_B^2 = \frac1M\sum_{i\in B}(h_i - \mu_B)^2 .

    ``mode="real"``: each draw is a uniformly random partition of the data into
    :math:`\lfloor P/M\rfloor` batches of size M (the :math:`P \bmod M` left-over samples of
    that draw are skipped, which keeps the estimate unbiased); the statistics come from
    the batch holding the sample. ``mode="independent"`` (Luo et al. Thm. 1 model): per
    sample and draw, :math:`\mu_B = \mu_P + \sigma_P\xi/\sqrt M`,
    :math:`\sigma_B = \sigma_P\sqrt{\chi^2_\nu/M}` independent of the sample (the exact
    Gaussian-h distributions, whatever h's shape). ``centered=False``: :math:`\mu_P`
    replaces :math:`\mu_B` and :math:`\nu = M`. :math:`\mu_P, \sigma_P` are the data's
    mean and (ddof 0) std. Each draw yields one average loss; ``mean`` and ``stderr``
    (std/sqrt(n_draws)) are over draws, conditional on the data. Vectorized over
    draws in chunks of ``max_chunk_elements``.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    gamma : float
        BN scale.
    beta : float
        BN shift.
    batch_size : int
        :math:`2 \le M \le P`.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    n_draws : int
        Number of batch draws (>= 2).
    seed : int
        Seed of ``numpy.random.default_rng``.
    mode : {"real", "independent"}
        Batch-noise model.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).
    max_chunk_elements : int
        Memory knob: draws per chunk times P stays below it.

    Returns
    -------
    MonteCarloLoss
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    P = h.size
    M = check_int("batch_size", batch_size, 2, P)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    n_draws = check_int("n_draws", n_draws, 2)
    seed = check_int("seed", seed, 0)
    mode = check_choice("mode", mode, ("real", "independent"))
    chunk_max = check_int("max_chunk_elements", max_chunk_elements, 1)
    rng = np.random.default_rng(seed)
    _, mu_P, sd_p = _standardize(h)
    nu = M - 1 if centered else M
    per_draw = np.empty(n_draws)
    chunk = max(1, min(n_draws, chunk_max // P))
    nb = P // M
    for start in range(0, n_draws, chunk):
        c = min(chunk, n_draws - start)
        if mode == "real":
            perm = rng.permuted(np.tile(np.arange(P), (c, 1)), axis=1)[:, : nb * M]
            hb = h[perm].reshape(c, nb, M)  # shape=(c, nb, M)
            yb = y[perm].reshape(c, nb, M)
            mu = hb.mean(axis=-1, keepdims=True) if centered else mu_P
            sd = np.sqrt(np.mean((hb - mu) ** 2, axis=-1, keepdims=True))
            ht = gamma * (hb - mu) / sd + beta
            per_draw[start:start + c] = L.value(ht, yb).reshape(c, -1).mean(axis=1)
        else:
            sd = sd_p * np.sqrt(rng.chisquare(nu, size=(c, P)) / M)  # shape=(c, P)
            mu = mu_P + (sd_p / math.sqrt(M)) * rng.standard_normal((c, P)) if centered else mu_P
            ht = gamma * (h[None, :] - mu) / sd + beta
            per_draw[start:start + c] = L.value(ht, y[None, :]).mean(axis=1)
    return MonteCarloLoss(float(per_draw.mean()), float(per_draw.std(ddof=1) / math.sqrt(n_draws)),
                          n_draws, mode, M, bool(centered))


@dataclass(frozen=True)
class RealBatchLeading:
    """Leading-order (1/M) excess loss of real-batch BN over PN, split into its terms."""

    first_order: float
    second_order: float
    total: float
    batch_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def real_batch_leading_excess(h, y, gamma: float, beta: float = 0.0, batch_size: int = 32,
                              loss: str = "mse", *, rho: float | None = None,
                              skewness: float | None = None) -> RealBatchLeading:
    r"""Leading-order :math:`E[\ell_{BN}] - \ell_{PN}` when the sample is in its own batch.

    With :math:`n_j = (h_j-\mu_B)/\sigma_B = \hat h_j + D_j`, expanding
    :math:`\sigma_B` around :math:`\sigma_P` with the sample's own share of
    :math:`\mu_B, \sigma_B^2` kept (derived here; h i.i.d. with skewness :math:`s`,
    excess kurtosis :math:`\rho`):

    .. math::

        E[D_j \mid \hat h_j] = \frac{1}{M}\Big[\hat h_j\Big(\frac{3(\rho+2)}{8}
            - \frac{\hat h_j^2}{2}\Big) + \frac{s}{2}\Big] + O(M^{-2}), \qquad
        E[D_j^2 \mid \hat h_j] = \frac{1}{M}\Big[\frac{(\rho+2)\hat h_j^2}{4} + 1
            + s\hat h_j\Big] + O(M^{-2}),

    so that

    .. math::

        E[\ell_{BN}] - \ell_{PN} = \gamma\,\overline{(A'(\tilde h) - y)\,E[D|\hat h]}
            + \frac{\gamma^2}{2}\,\overline{A''(\tilde h)\,E[D^2|\hat h]} + O(M^{-2}).

    The second term is Theorem 1's :math:`\zeta(h)\gamma^2` (plus a skewness term the
    independence model lacks). The first term does **not** vanish at a PN-stationary
    gamma: there :math:`\overline{(A'-y)\hat h} = 0` and it reduces to
    :math:`-\frac{\gamma}{2M}\overline{(A'(\tilde h)-y)\hat h^3}` (for symmetric h),
    which is zero for the linear student with a linear target, and in expectation for a
    well-specified GLM, but not for a misspecified one (e.g. ReLU targets fitted by the
    softplus GLM). Consistency: for ``mse`` with :math:`y = a\hat h + e` the total is
    :math:`\gamma a (\rho+6)/(8M)`, the expansion of :math:`\gamma a(1 - E\sigma_B/\sigma_P)`
    (:func:`linear_excess_loss`). Centered BN only.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    gamma : float
        BN scale.
    beta : float
        BN shift.
    batch_size : int
        :math:`M \ge 2`.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    rho : float, optional
        Excess kurtosis of h (estimated from h when omitted).
    skewness : float, optional
        Skewness of h (estimated from h when omitted).

    Returns
    -------
    RealBatchLeading
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    M = _check_batch_size(batch_size)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    hhat, _, _ = _standardize(h)
    if rho is None:
        rho = float(_stats.kurtosis(h, fisher=True, bias=True))
    rho = check_real("rho", rho, -2.0)
    s = float(_stats.skew(h, bias=True)) if skewness is None else check_real("skewness", skewness)
    ht = gamma * hhat + beta
    d1 = (hhat * (3.0 * (rho + 2.0) / 8.0 - 0.5 * hhat**2) + 0.5 * s) / M
    d2 = ((rho + 2.0) * hhat**2 / 4.0 + 1.0 + s * hhat) / M
    first = float(gamma * np.mean((L.mean(ht) - y) * d1))
    second = float(0.5 * gamma**2 * np.mean(L.curvature(ht) * d2))
    return RealBatchLeading(first, second, first + second, M)


def _chi2_nodes(k: int, n_nodes: int, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E f(Q), Q ~ chi^2_k (k = 0: point mass at 0).

    ``inverse=True`` builds the rule on the weight t^(k/2-2) e^-t (k > 2) and moves one
    factor t into the integrand, so that f ~ 1/Q (as for n^2 = (x-delta)^2 M/Q) is
    integrated exactly instead of as a near-singularity.
    """
    if k == 0:
        return np.zeros(1), np.ones(1)
    if k <= 100:                                # generalized Gauss-Laguerre, exact weight
        if inverse and k > 2:
            t, w = _sp.roots_genlaguerre(n_nodes, k / 2.0 - 2.0)
            return 2.0 * t, w * t / math.exp(_sp.gammaln(k / 2.0))
        t, w = _sp.roots_genlaguerre(n_nodes, k / 2.0 - 1.0)
        return 2.0 * t, w / math.exp(_sp.gammaln(k / 2.0))
    z, wz = _sp.roots_hermitenorm(n_nodes)      # Gauss-Hermite after Wilson-Hilferty
    a = 2.0 / (9.0 * k)
    base = 1.0 - a + z * math.sqrt(a)           # > 0 for k > 100 at these nodes
    q = k * base**3
    dq = 3.0 * k * base**2 * math.sqrt(a)
    logratio = _stats.chi2.logpdf(q, k) + np.log(dq) - _stats.norm.logpdf(z)
    return q, wz / math.sqrt(2.0 * math.pi) * np.exp(logratio)


def _normal_nodes(var: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = _sp.roots_hermitenorm(n_nodes)
    return z * math.sqrt(var), w / math.sqrt(2.0 * math.pi)


def _batch_normalized(x: np.ndarray, M: int, mode: str, centered: bool, n_nodes: int):
    """n = (h - mu_B)/sigma_B in standardized units at the points x: shape (len(x), nodes)."""
    x = x[:, None]
    if mode == "real":
        q, wq = _chi2_nodes(M - 2 if centered else M - 1, n_nodes)
        if not centered:                            # n = x / sqrt((x^2 + Q')/M)
            return x / np.sqrt((x * x + q[None, :]) / M), wq
        m, wm = _normal_nodes(1.0 / (M - 1), n_nodes)   # batch-mates' mean m'
        mm, qq = (a.ravel()[None, :] for a in np.meshgrid(m, q, indexing="ij"))
        d = x - mm
        n = ((M - 1) / M) * d / np.sqrt((qq + (M - 1) / M * d * d) / M)
        return n, np.outer(wm, wq).ravel()
    q, wq = _chi2_nodes(M - 1 if centered else M, n_nodes, inverse=True)   # sigma_B^2 = Q/M
    if not centered:
        return x / np.sqrt(q[None, :] / M), wq
    m, wm = _normal_nodes(1.0 / M, n_nodes)                    # mu_B - mu_P
    mm, qq = (a.ravel()[None, :] for a in np.meshgrid(m, q, indexing="ij"))
    return (x - mm) / np.sqrt(qq / M), np.outer(wm, wq).ravel()


def gaussian_batch_loss(h, y, gamma: float, beta: float = 0.0, batch_size: int = 32,
                        loss: str = "mse", *, mode: str = "real", centered: bool = True,
                        n_nodes: int = 48, n_grid: int = 193) -> float:
    r"""Exact expected BN loss for a Gaussian population, by Gauss quadrature.

    Deterministic counterpart of :func:`expected_bn_loss` (same ``mode`` s), with the
    population :math:`N(\mu_P, \sigma_P^2)` of which the data are a sample (mean and std
    of ``h``). In standardized units, with :math:`x = \hat h_j`:

    * ``mode="real"``: the sample's :math:`M-1` batch-mates are fresh draws; they enter
      through their mean :math:`m' \sim N(0, 1/(M-1))` and scatter
      :math:`Q' = \sum_{i\ne j}(\hat h_i - m')^2 \sim \chi^2_{M-2}`, independent; with
      :math:`d = x - m'`,

      .. math::

          n_j = \frac{h_j - \mu_B}{\sigma_B}
              = \frac{\frac{M-1}{M} d}{\sqrt{\big(Q' + \frac{M-1}{M} d^2\big)/M}}

      (known mean: :math:`n_j = x/\sqrt{(x^2 + Q')/M}`, :math:`Q' \sim \chi^2_{M-1}`);
    * ``mode="independent"`` (Luo et al. Thm. 1 model): :math:`n_j = (x - \delta)
      /\sqrt{Q/M}` with :math:`\delta \sim N(0, 1/M)`, :math:`Q \sim \chi^2_{M-1}`
      independent of the sample (known mean: :math:`\delta = 0`, :math:`\chi^2_M`).

    .. math::

        E[\ell_{BN}] = \frac1P\sum_j E\,\ell(\gamma n_j + \beta, y_j).

    Gauss-Hermite nodes for the normal variable, generalized Gauss-Laguerre (Gauss-Hermite
    after the Wilson-Hilferty map for more than 100 degrees of freedom) for the
    chi-square one. The conditional expectations :math:`E[n|x], E[n^2|x]` (``mse``) or
    :math:`E[A(\gamma n+\beta)|x], E[n|x]` (GLM) are computed on ``n_grid`` points
    spanning the data and interpolated (cubic spline); the loss is linear in y, so y
    enters exactly. Accuracy (tests): relative ~1e-4 at :math:`M \ge 8`; ``real`` converges
    slowly for :math:`M \le 4` (near-discontinuity of n at small :math:`Q'`), and
    ``independent`` needs :math:`\nu > 2` for a finite ``mse`` loss. Derived here.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values (their mean and std define the population).
    y : array_like, shape (P,)
        Targets.
    gamma : float
        BN scale.
    beta : float
        BN shift.
    batch_size : int
        :math:`M \ge 3` (``real``) or :math:`M \ge 4` (``independent``, centered).
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    mode : {"real", "independent"}
        Batch-noise model.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).
    n_nodes : int
        Gauss nodes per dimension (>= 8).
    n_grid : int
        Interpolation points in :math:`\hat h` (>= 16).

    Returns
    -------
    float
    """
    from scipy.interpolate import CubicSpline

    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    mode = check_choice("mode", mode, ("real", "independent"))
    M = _check_batch_size(batch_size, 3 if (mode == "real" or not centered) else 4)
    loss = check_choice("loss", loss, LOSSES)
    n_nodes = check_int("n_nodes", n_nodes, 8)
    n_grid = check_int("n_grid", n_grid, 16)
    hhat, _, _ = _standardize(h)
    lo, hi = float(hhat.min()), float(hhat.max())
    # Chebyshev-Lobatto points cluster at the ends, where the data are sparse
    xg = lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, n_grid)))
    n, w = _batch_normalized(xg, M, mode, bool(centered), n_nodes)   # shape=(n_grid, nodes)
    e1 = CubicSpline(xg, n @ w)(hhat)
    if loss == "mse":
        e2 = CubicSpline(xg, (n * n) @ w)(hhat)
        vals = 0.5 * ((y - beta) ** 2 - 2.0 * (y - beta) * gamma * e1 + gamma**2 * e2)
    else:
        ea = CubicSpline(xg, softplus_partition(gamma * n + beta) @ w)(hhat)
        vals = ea - y * (gamma * e1 + beta)
    return float(np.mean(vals))
