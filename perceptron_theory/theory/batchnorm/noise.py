r"""Batch statistics as noise: distribution of :math:`\mu_B, \sigma_B` (claim L-prior).

Luo et al.'s normal priors (:func:`batch_stats_prior`), exact moments of the biased
batch variance for any distribution (:func:`batch_variance_variance`,
:func:`batch_std_variance_coefficients`) and exact Gamma-function moments of
:math:`\sigma_B^k` for Gaussian h (:func:`batch_std_moment`, :func:`inverse_std_moment`,
:func:`gaussian_batch_stats`). Notation and conventions: :mod:`.batchnorm`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special as _sp

from perceptron_theory._checks import check_int, check_real

__all__ = [
    "chi_dof", "BatchStatsPrior", "batch_stats_prior", "batch_variance_variance",
    "batch_std_variance_coefficients", "batch_std_moment", "inverse_std_moment",
    "GaussianBatchStats", "gaussian_batch_stats",
]


def _check_batch_size(batch_size, lo: int = 2) -> int:
    return check_int("batch_size", batch_size, lo)


def chi_dof(batch_size: int, centered: bool = True) -> int:
    r"""Degrees of freedom :math:`\nu`: :math:`M\sigma_B^2/\sigma_P^2 \sim \chi^2_\nu` (Gaussian h).

    Parameters
    ----------
    batch_size : int
        Batch size :math:`M \ge 2`.
    centered : bool
        ``True``: batch mean subtracted, :math:`\nu = M - 1`; ``False``: known mean
        subtracted (variance-only BN), :math:`\nu = M`.

    Returns
    -------
    int
        :math:`\nu`.
    """
    M = _check_batch_size(batch_size)
    return M - 1 if centered else M


@dataclass(frozen=True)
class BatchStatsPrior:
    """Normal approximation of the batch statistics (Luo et al. Sec. 2)."""

    batch_size: int
    centered: bool
    mu_P: float
    sigma_P: float
    rho: float
    mean_mu_b: float
    var_mu_b: float
    mean_sigma_b: float
    var_sigma_b: float

    def to_dict(self) -> dict:
        return asdict(self)


def batch_stats_prior(batch_size: int, *, mu_P: float = 0.0, sigma_P: float = 1.0,
                      rho: float = 0.0, centered: bool = True) -> BatchStatsPrior:
    r"""Luo et al.'s normal priors of the batch mean and standard deviation.

    .. math::

        \mu_B \sim N\!\Big(\mu_P, \frac{\sigma_P^2}{M}\Big), \qquad
        \sigma_B \sim N\!\Big(\sigma_P, \frac{\sigma_P^2(\rho + 2)}{4M}\Big).

    Source: Luo et al. 2019, Sec. 2 ("Prior of mu_B, sigma_B"); corrected: the paper
    prints :math:`\mathrm{Var}(\sigma_B) = (\rho+2)/(4M)`, silently taking
    :math:`\sigma_P = 1`; the dimensionally right variance carries :math:`\sigma_P^2`
    (delta method on :math:`\mathrm{Var}(\sigma_B^2) = \sigma_P^4(\rho+2)/M + O(M^{-2})`).
    Both are leading order in 1/M; the mean :math:`E\sigma_B = \sigma_P + O(1/M)` and the
    variance has an :math:`O(\sigma_P^2/M^2)` correction
    (:func:`batch_std_variance_coefficients`). With ``centered=False`` the known mean is
    used: :math:`\mu_B \equiv \mu_P` (``var_mu_b = 0``).

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    mu_P : float
        Population mean :math:`\mu_P`.
    sigma_P : float
        Population standard deviation :math:`\sigma_P > 0`.
    rho : float
        Excess kurtosis :math:`\rho \ge -2` of h (0 for Gaussian, 3 Laplace, -1.2 uniform).
    centered : bool
        Batch mean subtracted (standard BN) or known mean (variance-only BN).

    Returns
    -------
    BatchStatsPrior
    """
    M = _check_batch_size(batch_size)
    mu_P = check_real("mu_P", mu_P)
    sigma_P = check_real("sigma_P", sigma_P, 0.0, lo_open=True)
    rho = check_real("rho", rho, -2.0)
    var_mu = sigma_P**2 / M if centered else 0.0
    return BatchStatsPrior(M, bool(centered), mu_P, sigma_P, rho, mu_P, var_mu, sigma_P,
                           sigma_P**2 * (rho + 2.0) / (4.0 * M))


def batch_variance_variance(batch_size: int, *, sigma_P: float = 1.0, rho: float = 0.0,
                            centered: bool = True) -> float:
    r"""Exact variance of the biased batch variance :math:`\sigma_B^2`, any distribution.

    .. math::

        \mathrm{Var}(\sigma_B^2) = \Big(\frac{M-1}{M}\Big)^2 \sigma_P^4
            \Big(\frac{2}{M-1} + \frac{\rho}{M}\Big) \ \ (\text{centered}), \qquad
        \frac{\sigma_P^4(\rho + 2)}{M} \ \ (\text{known mean}).

    Source: the classical variance of the unbiased sample variance,
    :math:`\sigma^4(2/(M-1) + \rho/M)`, rescaled by :math:`((M-1)/M)^2`; it is the exact
    statement behind Luo et al.'s prior of :math:`\sigma_B`. Needs a finite fourth moment.

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    sigma_P : float
        :math:`\sigma_P > 0`.
    rho : float
        Excess kurtosis :math:`\rho \ge -2`.
    centered : bool
        Batch mean (``True``) or known mean (``False``) subtracted.

    Returns
    -------
    float
    """
    M = _check_batch_size(batch_size)
    sigma_P = check_real("sigma_P", sigma_P, 0.0, lo_open=True)
    rho = check_real("rho", rho, -2.0)
    if centered:
        return ((M - 1) / M) ** 2 * sigma_P**4 * (2.0 / (M - 1) + rho / M)
    return sigma_P**4 * (rho + 2.0) / M


def batch_std_variance_coefficients(*, rho: float = 0.0, kappa6: float = 0.0,
                                    skewness: float = 0.0,
                                    centered: bool = True) -> tuple[float, float]:
    r"""Coefficients of :math:`M\,\mathrm{Var}(\sigma_B)/\sigma_P^2 = c_0 + c_1/M + O(M^{-2})`.

    :math:`c_0 = (\rho+2)/4` is Luo et al.'s prior. :math:`c_1` follows from expanding
    :math:`\sigma_B = \sigma_P\sqrt{1+\epsilon}` to third order in
    :math:`\epsilon = \sigma_B^2/\sigma_P^2 - 1`:

    .. math::

        \frac{\mathrm{Var}(\sigma_B)}{\sigma_P^2} = \frac{V}{4} - \frac{1}{8}
            \mathrm{Cov}(\epsilon, \epsilon^2) + \frac{7}{32} V^2 + O(M^{-3}),

    with :math:`V = \mathrm{Var}\,\epsilon` (exact, :func:`batch_variance_variance`),
    :math:`\mathrm{Cov}(\epsilon,\epsilon^2) = \kappa_3(\epsilon) + 2 E[\epsilon] V` and
    the third cumulant of the sample variance
    :math:`\kappa_3(\epsilon) = (\kappa_6' + 12\rho + 4 s^2 + 8)/M^2` (centered;
    Kendall & Stuart's :math:`\kappa(2,2,2)`), :math:`E[(\hat h^2 - 1)^3]/M^2 =
    (\kappa_6' + 12\rho + 10 s^2 + 8)/M^2` (known mean). Result:

    .. math::

        c_1^{\rm centered} = -\frac{1+\rho}{2} - \frac{\kappa_6' + 12\rho + 4s^2 + 8}{8}
            + \frac{2+\rho}{4} + \frac{7(2+\rho)^2}{32}, \qquad
        c_1^{\rm known\ mean} = -\frac{\kappa_6' + 12\rho + 10 s^2 + 8}{8}
            + \frac{7(2+\rho)^2}{32}.

    Gaussian h: :math:`c_1 = -1/8` (both), matching the exact chi result. Derived here;
    not in the paper. The expansion is asymptotic: use it where :math:`|c_1|/M \ll c_0`.

    Parameters
    ----------
    rho : float
        Standardized fourth cumulant (excess kurtosis) :math:`\rho \ge -2`.
    kappa6 : float
        Standardized sixth cumulant :math:`\kappa_6' = \kappa_6/\sigma_P^6` (0 Gaussian,
        30 Laplace, 48/7 uniform).
    skewness : float
        Standardized third cumulant :math:`s`.
    centered : bool
        Batch mean (``True``) or known mean (``False``) subtracted.

    Returns
    -------
    tuple of float
        :math:`(c_0, c_1)`.
    """
    rho = check_real("rho", rho, -2.0)
    kappa6 = check_real("kappa6", kappa6)
    s = check_real("skewness", skewness)
    c0 = (rho + 2.0) / 4.0
    if centered:
        c1 = (-(1.0 + rho) / 2.0 - (kappa6 + 12.0 * rho + 4.0 * s * s + 8.0) / 8.0
              + (2.0 + rho) / 4.0 + 7.0 * (2.0 + rho) ** 2 / 32.0)
    else:
        c1 = -(kappa6 + 12.0 * rho + 10.0 * s * s + 8.0) / 8.0 + 7.0 * (2.0 + rho) ** 2 / 32.0
    return c0, c1


def batch_std_moment(batch_size: int, k: float, *, centered: bool = True) -> float:
    r"""Exact :math:`E[(\sigma_B/\sigma_P)^k]` for Gaussian h, any real k with :math:`\nu + k > 0`.

    From :math:`M\sigma_B^2/\sigma_P^2 \sim \chi^2_\nu`:

    .. math::

        E\Big[\Big(\frac{\sigma_B}{\sigma_P}\Big)^k\Big]
          = \Big(\frac{2}{M}\Big)^{k/2}
            \frac{\Gamma\big(\frac{\nu+k}{2}\big)}{\Gamma\big(\frac{\nu}{2}\big)},
        \qquad \nu = M - 1 \ (\text{centered}),\ M \ (\text{known mean}).

    Infinite when :math:`\nu + k \le 0` (ValueError naming ``batch_size``). Evaluated with
    :func:`scipy.special.poch` (accurate to ~1e-16 absolute even at :math:`M = 10^{12}`),
    falling back to :func:`scipy.special.gammaln` on overflow.

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    k : float
        Real exponent.
    centered : bool
        Batch mean (``True``) or known mean (``False``) subtracted.

    Returns
    -------
    float
    """
    M = _check_batch_size(batch_size)
    k = check_real("k", k)
    nu = M - 1 if centered else M
    if nu + k <= 0:
        raise ValueError(f"batch_size must be > {1 - k if centered else -k:g} for "
                         f"E[(sigma_B/sigma_P)^{k:g}] to be finite (nu = {nu}, needs nu + k > 0);"
                         f" got {batch_size!r}")
    with np.errstate(over="ignore", under="ignore"):
        r = float(_sp.poch(nu / 2.0, k / 2.0)) * (2.0 / M) ** (k / 2.0)
    if not math.isfinite(r) or r == 0.0:
        r = math.exp(k / 2.0 * math.log(2.0 / M) + _sp.gammaln((nu + k) / 2.0)
                     - _sp.gammaln(nu / 2.0))
    return r


def inverse_std_moment(batch_size: int, k: float = 1.0, *, centered: bool = True) -> float:
    r"""Exact :math:`E[\sigma_P^k/\sigma_B^k]` for Gaussian h (Luo et al. App. C.3).

    .. math::

        E\Big[\frac{\sigma_P^k}{\sigma_B^k}\Big]
          = \Big(\frac{M}{2}\Big)^{k/2}
            \frac{\Gamma\big(\frac{\nu-k}{2}\big)}{\Gamma\big(\frac{\nu}{2}\big)},
        \quad \text{finite iff } \nu > k.

    Source: Luo et al. 2019, App. C.3: :math:`E[1/\sigma_B] = \sqrt{M/2}\,
    \Gamma(\frac{M-2}{2})/(\sigma_P\Gamma(\frac{M-1}{2}))` and
    :math:`E[1/\sigma_B^2] = M/(\sigma_P^2 (M-3))` (centered, :math:`\nu = M-1`); agrees.

    Parameters
    ----------
    batch_size : int
        :math:`M`; must satisfy :math:`\nu > k`.
    k : float
        Exponent, e.g. 1 or 2.
    centered : bool
        Batch mean (``True``, :math:`\nu = M-1`) or known mean (``False``, :math:`\nu = M`).

    Returns
    -------
    float
    """
    k = check_real("k", k)
    return batch_std_moment(batch_size, -k, centered=centered)


@dataclass(frozen=True)
class GaussianBatchStats:
    """Exact distribution summaries of the batch statistics of Gaussian h."""

    batch_size: int
    centered: bool
    dof: int
    mean_mu_b: float
    var_mu_b: float
    mean_sigma_b: float
    var_sigma_b: float
    mean_sigma_b2: float
    var_sigma_b2: float
    independent: bool

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_batch_stats(batch_size: int, *, mu_P: float = 0.0, sigma_P: float = 1.0,
                         centered: bool = True) -> GaussianBatchStats:
    r"""Exact moments of :math:`\mu_B, \sigma_B` for Gaussian h.

    .. math::

        \mu_B \sim N(\mu_P, \sigma_P^2/M), \qquad
        \frac{M\sigma_B^2}{\sigma_P^2} \sim \chi^2_\nu, \qquad \mu_B \perp \sigma_B,

        E\sigma_B = \sigma_P \sqrt{\tfrac{2}{M}}
            \frac{\Gamma(\frac{\nu+1}{2})}{\Gamma(\frac{\nu}{2})}, \qquad
        \mathrm{Var}\,\sigma_B = \sigma_P^2\frac{\nu}{M} - (E\sigma_B)^2 .

    Source: Cochran's theorem; the exact counterpart of Luo et al.'s normal prior
    (:func:`batch_stats_prior`), to which it tends as
    :math:`\mathrm{Var}\,\sigma_B = \sigma_P^2/(2M) - \sigma_P^2/(8M^2) + \dots`.
    ``centered=False``: :math:`\nu = M`, :math:`\mu_B \equiv \mu_P` (not used).

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    mu_P : float
        :math:`\mu_P`.
    sigma_P : float
        :math:`\sigma_P > 0`.
    centered : bool
        Batch mean (``True``) or known mean (``False``) subtracted.

    Returns
    -------
    GaussianBatchStats
    """
    M = _check_batch_size(batch_size)
    mu_P = check_real("mu_P", mu_P)
    sigma_P = check_real("sigma_P", sigma_P, 0.0, lo_open=True)
    nu = chi_dof(M, centered)
    m1 = batch_std_moment(M, 1.0, centered=centered)
    mean_s = sigma_P * m1
    if nu < 100:      # relative error < 2e-11 either side of the switch
        var_s = sigma_P**2 * (nu / M - m1 * m1)
    else:  # nu/M - m1^2 cancels; Stirling series of x - (Gamma(x+1/2)/Gamma(x))^2, x = nu/2
        x = nu / 2.0
        d = (0.25 - 1 / (32 * x) - 1 / (128 * x**2) + 5 / (2048 * x**3) + 23 / (8192 * x**4)
             - 53 / (65536 * x**5))
        var_s = sigma_P**2 * 2.0 / M * d
    return GaussianBatchStats(M, bool(centered), nu, mu_P, sigma_P**2 / M if centered else 0.0,
                              mean_s, var_s, sigma_P**2 * nu / M, 2.0 * nu * sigma_P**4 / M**2,
                              True)
