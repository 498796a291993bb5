r"""Batch normalization as population normalization plus noise: closed forms.

Symbol map (README notation table): ``batch_size`` = :math:`M`; ``h`` = pre-BN value
:math:`h = w^T x` with population mean ``mu_P`` = :math:`\mu_P`, standard deviation
``sigma_P`` = :math:`\sigma_P` and *excess* kurtosis ``rho`` = :math:`\rho`
(:math:`\rho = 0` for Gaussian h); batch statistics :math:`\mu_B`, :math:`\sigma_B`;
``gamma``, ``beta`` = BN scale and shift; ``zeta`` = :math:`\zeta`, the decay on gamma;
:math:`\hat h = (h - \mu_P)/\sigma_P`; :math:`\tilde h = \gamma\hat h + \beta` (PN) and
:math:`\tilde h_{BN} = \gamma (h - \mu_B)/\sigma_B + \beta` (BN).

BN uses the *biased* batch variance :math:`\sigma_B^2 = \frac1M\sum_j (h_j - \mu_B)^2`
(``centered=True``). ``centered=False`` is variance-only BN: the known mean
:math:`\mu_P` is subtracted and :math:`\sigma_B^2 = \frac1M \sum_j (h_j - \mu_P)^2`; it has
no :math:`\mu_B` noise.

Loss conventions (the 1/(4M) vs 1/(2M) trap)
--------------------------------------------
* ``"theorem1"``: halved loss :math:`+\ \zeta\gamma^2` (Luo et al. Thm. 1, eq. 3; for a
  GLM the NLL :math:`A(\tilde h) - y\tilde h` plus :math:`\zeta\gamma^2`). Linear student,
  independence model, large M: sigma part :math:`1/(4M)`, mean part :math:`1/(2M)`,
  total :math:`3/(4M)`.
* ``"decay2"``: halved loss :math:`+\ \frac{\zeta}{2}\gamma^2` = unhalved loss
  :math:`+\ \zeta\gamma^2` (Luo et al. eq. 5 ODEs, Sec. 4, Fig. 1a; :mod:`.dynamics`).
  Values are twice ``theorem1``'s: sigma part :math:`1/(2M)` (the paper's Fig. 1a value),
  total :math:`3/(2M)`.

Two models of the batch noise
-----------------------------
* *independent* (Luo et al. Thm. 1): :math:`\mu_B, \sigma_B` are noise independent of the
  sample, drawn from their distributions. Averaging the loss over that noise gives
  PN + :math:`\zeta(h)\gamma^2` (:func:`zeta_theorem1`) + a first-order term :math:`R_f`
  that vanishes at a PN-stationary :math:`\gamma`, + :math:`O(M^{-2})` terms that are
  large at small M (heavy tail of :math:`1/\sigma_B^2`; about a factor 2 at M = 8).
* *real*: the sample is inside its own batch. For the linear student and Gaussian h
  this is solvable exactly (:func:`linear_excess_loss`): the identities
  :math:`\sum_j ((h_j-\mu_B)/\sigma_B)^2 = M` and
  :math:`\sum_j (h_j-\mu_P)(h_j-\mu_B) = M\sigma_B^2` give
  :math:`E[\ell_{BN}] = \ell_{PN} + \gamma a (1 - c_M)` with
  :math:`c_M = E[\sigma_B/\sigma_P]` (:func:`real_batch_shrinkage`). The penalty is
  *linear* in gamma: its value at :math:`\gamma = a` agrees with Theorem 1 to
  leading order, its gamma-gradient is half of Theorem 1's :math:`2\zeta\gamma`
  (:func:`equivalent_decay_real_batch`). For a GLM loss a first-order term
  :math:`-\frac{\gamma}{2M}\overline{(A'-y)\hat h^3}` survives at the PN-stationary
  point (:func:`real_batch_leading_excess`): Theorem 1 then fails at leading order
  (about -25% for a ReLU teacher fitted with the softplus GLM).

Both models are computed exactly for a Gaussian population by quadrature
(:func:`gaussian_batch_loss`) and by Monte Carlo over batch draws
(:func:`expected_bn_loss`).

Annamalai & Thakur (BN as rate tuning)
--------------------------------------
:func:`bn_weight`, :func:`effective_rate`, :func:`bn_constrained_solution`,
:func:`noise_regularization_factor`, :func:`noise_penalty` (their eqs. 2-19, with the
corrections stated in each docstring).

Examples
--------
>>> from perceptron_theory.theory import batchnorm as bn
>>> round(bn.inverse_std_moment(32, 2), 6)   # M/(M-3)
1.103448
>>> round(1024 * bn.equivalent_decay_linear(1024, exact=False), 3)   # M * 3/(4M)
0.75
>>> round(bn.noise_regularization_factor(1.0, 1.0, 1.0), 3)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special as _sp
from scipy import stats as _stats

from perceptron_theory._checks import check_array, check_choice, check_int, check_real

__all__ = [
    # batch-statistic noise (L-prior)
    "chi_dof", "BatchStatsPrior", "batch_stats_prior", "batch_variance_variance",
    "batch_std_variance_coefficients", "GaussianBatchStats", "gaussian_batch_stats",
    "batch_std_moment", "inverse_std_moment",
    # linear student (L-C3)
    "DECAY_CONVENTIONS", "LinearDecay", "linear_decay_parts", "equivalent_decay_linear",
    "real_batch_shrinkage", "equivalent_decay_real_batch", "LinearExcess", "linear_excess_loss",
    "decay_report",
    # Theorem 1 and losses (L-eq3)
    "BNLoss", "LOSSES", "softplus_partition", "ZetaTheorem1", "zeta_theorem1", "pn_loss",
    "pn_stationary_gamma", "pn_stationary_point", "pn_loss_plus_decay", "MonteCarloLoss",
    "expected_bn_loss",
    "RealBatchLeading", "real_batch_leading_excess", "gaussian_batch_loss",
    # Annamalai & Thakur (A-eq11, A-eq19)
    "bn_weight", "effective_rate", "ConstrainedBNSolution", "bn_constrained_solution",
    "noise_regularization_factor", "noise_penalty",
]

#: Factor that turns a ``theorem1``-convention decay into the named convention.
DECAY_CONVENTIONS = {"theorem1": 1.0, "decay2": 2.0}


def _check_batch_size(batch_size, lo: int = 2) -> int:
    return check_int("batch_size", batch_size, lo)


# ======================================================================= batch noise
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


# ======================================================================= linear student
@dataclass(frozen=True)
class LinearDecay:
    """Equivalent gamma decay of the linear student, split into its two sources."""

    batch_size: int
    convention: str
    centered: bool
    exact: bool
    sigma_part: float
    mu_part: float
    total: float

    def to_dict(self) -> dict:
        return asdict(self)


def linear_decay_parts(batch_size: int, *, convention: str = "theorem1", exact: bool = True,
                       centered: bool = True) -> LinearDecay:
    r"""Equivalent gamma decay of the linear student, independence model (Luo et al. C.3).

    Per sample (halved loss, identity output, Gaussian h)
    :math:`\ell = \frac12 (y - \gamma (h-\mu_B)/\sigma_B)^2`, with
    :math:`\mu_B, \sigma_B` independent of the sample. With :math:`z = h - \mu_P`,
    :math:`\delta = \mu_B - \mu_P`, :math:`c_1 = \sigma_P E[1/\sigma_B]`,
    :math:`c_2 = \sigma_P^2 E[1/\sigma_B^2]` and :math:`E\hat h^2 = 1`:

    .. math::

        E[\ell_{BN}] - \ell_{PN} = R_f + R_q, \quad
        R_f = (c_1 - 1)\gamma(\gamma - E[y\hat h]), \quad
        R_q = \frac{\gamma^2}{2}\Big[(c_2 - 2c_1 + 1) + \frac{c_2}{M}\Big].

    :math:`R_f` vanishes at the PN-stationary :math:`\gamma = E[y\hat h]`;
    :math:`\zeta = R_q/\gamma^2` (``theorem1`` convention: halved loss
    :math:`+\ \zeta\gamma^2`):

    .. math::

        \zeta_\sigma = \frac{c_2 - 2c_1 + 1}{2} = \frac{1}{4M} + \frac{71}{32M^2} + \dots,
        \qquad \zeta_\mu = \frac{c_2}{2M} = \frac{1}{2M} + \frac{3}{2M^2} + \dots .

    Totals: :math:`3/(4M)` (``theorem1``), :math:`3/(2M)` (``decay2``: halved loss
    :math:`+\ \frac{\zeta}{2}\gamma^2` = unhalved loss :math:`+\ \zeta\gamma^2`); the
    sigma part alone is :math:`1/(4M)` resp. :math:`1/(2M)`, Luo et al.'s Fig. 1a value.
    ``centered=False`` (variance-only BN, :math:`\nu = M`): no mean part,
    :math:`\zeta_\sigma = 1/(4M) + 39/(32M^2) + \dots`.

    Source: Luo et al. 2019, App. C.3; our copy's exact expression is illegible (OCR);
    re-derived here, agrees with its limits 3/(4M), 1/(4M) (no bias) and the factor 2 for
    the unhalved loss. Exact forms need :math:`\nu > 2` (:math:`E[1/\sigma_B^2]`).
    Real batches behave differently: see :func:`linear_excess_loss`.

    Parameters
    ----------
    batch_size : int
        :math:`M`; ``exact=True`` needs :math:`M \ge 4` (centered) or 3 (known mean).
    convention : {"theorem1", "decay2"}
        Loss convention (module docstring table).
    exact : bool
        Exact Gamma-function value (``True``) or the large-M limit.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    LinearDecay
    """
    M = _check_batch_size(batch_size)
    convention = check_choice("convention", convention, DECAY_CONVENTIONS)
    f = DECAY_CONVENTIONS[convention]
    if exact:
        c1 = inverse_std_moment(M, 1.0, centered=centered)
        c2 = inverse_std_moment(M, 2.0, centered=centered)
        sig = 0.5 * (c2 - 2.0 * c1 + 1.0)
        mu = 0.5 * c2 / M if centered else 0.0
    else:
        sig = 1.0 / (4.0 * M)
        mu = 1.0 / (2.0 * M) if centered else 0.0
    return LinearDecay(M, convention, bool(centered), bool(exact), f * sig, f * mu,
                       f * (sig + mu))


def equivalent_decay_linear(batch_size: int, *, convention: str = "theorem1",
                            include_mean: bool | None = None, exact: bool = True,
                            centered: bool = True) -> float:
    r"""Equivalent gamma decay :math:`\zeta` of the linear student (independence model).

    :math:`\zeta = \zeta_\sigma + \zeta_\mu` of :func:`linear_decay_parts`;
    large M: :math:`3/(4M)` (``theorem1``), :math:`3/(2M)` (``decay2``), and without the
    mean part :math:`1/(4M)` resp. :math:`1/(2M)`.

    Parameters
    ----------
    batch_size : int
        :math:`M`.
    convention : {"theorem1", "decay2"}
        ``theorem1``: halved loss + zeta gamma^2; ``decay2``: unhalved loss + zeta gamma^2.
    include_mean : bool or None
        Include the :math:`\mu_B` part. Default: ``centered``. ``True`` with
        ``centered=False`` is an error (variance-only BN has no mean noise).
    exact : bool
        Exact Gamma-function value or the large-M limit.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    float
    """
    if include_mean is None:
        include_mean = bool(centered)
    if include_mean and not centered:
        raise ValueError("include_mean must be False when centered=False (variance-only BN "
                         "has no mu_B noise); got include_mean=True")
    p = linear_decay_parts(batch_size, convention=convention, exact=exact, centered=centered)
    return p.total if include_mean else p.sigma_part


def real_batch_shrinkage(batch_size: int, *, centered: bool = True) -> float:
    r"""Shrinkage :math:`c_M = E[\sigma_B/\sigma_P]` of the target under real-batch BN.

    For Gaussian h,

    .. math::

        c_M = \sqrt{\frac{2}{M}}\frac{\Gamma(\frac{\nu+1}{2})}{\Gamma(\frac{\nu}{2})}
            = 1 - \frac{3}{4M} - \frac{7}{32M^2} - \dots \ (\nu = M-1), \qquad
            1 - \frac{1}{4M} + \frac{1}{32M^2} + \dots \ (\nu = M).

    Meaning (derived here, not in Luo et al.): for the linear student with the sample in
    its own batch, :math:`E[\hat h_j (h_j-\mu_B)/\sigma_B] = c_M` exactly, because
    :math:`\sum_j (h_j-\mu_P)(h_j-\mu_B) = M\sigma_B^2`; see :func:`linear_excess_loss`.

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    float
    """
    return batch_std_moment(batch_size, 1.0, centered=centered)


def equivalent_decay_real_batch(batch_size: int, *, convention: str = "theorem1",
                                exact: bool = True, centered: bool = True) -> float:
    r"""Gradient-matched equivalent decay of real-batch BN for the linear student.

    Real BN's expected loss :math:`\ell_{PN} + \gamma a (1 - c_M)` (halved loss,
    :func:`linear_excess_loss`) is stationary at :math:`\gamma^* = a c_M`; PN plus
    :math:`\zeta\gamma^2` is stationary at :math:`a/(1 + 2\zeta)`. Matching the
    gamma-gradients (same fixed point, Luo et al. Prop. 1's :math:`\gamma_0`):

    .. math::

        \zeta_{\rm grad} = \frac{1}{2}\Big(\frac{1}{c_M} - 1\Big)
            = \frac{3}{8M} + \frac{25}{64M^2} + \dots \quad (\texttt{theorem1}),

    i.e. :math:`3/(4M)` in ``decay2`` (the convention of :mod:`.dynamics`, where
    :math:`\gamma_0 = 1/(1+\zeta)` for the linear student). Half of Theorem 1's
    :math:`3/(4M)`: the real penalty's value at :math:`\gamma = a` matches
    :math:`\zeta\gamma^2` but its gradient :math:`a(1-c_M) \approx 3a/(4M)` is half of
    :math:`2\zeta\gamma = 3a/(2M)`. Variance-only BN: :math:`1/(8M)` (``theorem1``).

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    convention : {"theorem1", "decay2"}
        Loss convention (module docstring).
    exact : bool
        Exact Gamma-function value, or the large-M limit :math:`3/(8M)`
        (:math:`1/(8M)` variance-only).
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    float
    """
    M = _check_batch_size(batch_size)
    convention = check_choice("convention", convention, DECAY_CONVENTIONS)
    if exact:
        z = 0.5 * (1.0 / real_batch_shrinkage(M, centered=centered) - 1.0)
    else:
        z = (3.0 if centered else 1.0) / (8.0 * M)
    return DECAY_CONVENTIONS[convention] * z


@dataclass(frozen=True)
class LinearExcess:
    """Exact expected BN loss minus PN loss of the linear student, and its gamma-gradient."""

    batch_size: int
    mode: str
    centered: bool
    gamma: float
    gain: float
    value: float
    grad_gamma: float

    def to_dict(self) -> dict:
        return asdict(self)


def linear_excess_loss(batch_size: int, gamma: float, gain: float, *, mode: str = "real",
                       centered: bool = True) -> LinearExcess:
    r"""Exact :math:`E[\ell_{BN}] - \ell_{PN}` for the linear student, Gaussian h.

    Halved loss :math:`\ell = \frac12(y - \gamma n)^2`, :math:`n = (h-\mu_B)/\sigma_B`
    (BN) or :math:`\hat h` (PN), target :math:`y = a\hat h + e` with ``gain`` :math:`a`
    and noise :math:`e` independent of h (any y jointly Gaussian with h).

    ``mode="real"`` (the sample is in its batch; derived here). Two identities hold in
    every batch: :math:`\sum_j n_j^2 = M` and
    :math:`\sum_j (h_j-\mu_P)(h_j-\mu_B) = M\sigma_B^2`; by exchangeability
    :math:`E[n_j^2] = 1` (any distribution) and :math:`E[\hat h_j n_j] = E[\sigma_B/\sigma_P]
    = c_M`, so

    .. math::

        E[\ell_{BN}] - \ell_{PN} = \gamma a (1 - c_M), \qquad
        \partial_\gamma = a (1 - c_M) \approx \frac{3a}{4M}.

    Linear in gamma: at :math:`\gamma = a` the value :math:`a^2(1-c_M) \approx 3a^2/(4M)`
    equals Theorem 1's :math:`\zeta\gamma^2` to leading order, the gradient is half of
    Theorem 1's :math:`2\zeta\gamma \approx 3a/(2M)`.

    ``mode="independent"`` (Luo et al. Thm. 1 model; :func:`linear_decay_parts`):

    .. math::

        E[\ell_{BN}] - \ell_{PN} = (c_1-1)\gamma(\gamma - a)
            + \frac{\gamma^2}{2}\Big[(c_2 - 2c_1 + 1) + \frac{c_2}{M}\Big].

    Parameters
    ----------
    batch_size : int
        :math:`M` (``independent`` needs :math:`\nu > 2`).
    gamma : float
        BN scale :math:`\gamma`.
    gain : float
        :math:`a = E[y\hat h]`, the PN-stationary gamma.
    mode : {"real", "independent"}
        Batch-noise model (module docstring).
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    LinearExcess
    """
    M = _check_batch_size(batch_size)
    gamma = check_real("gamma", gamma)
    a = check_real("gain", gain)
    mode = check_choice("mode", mode, ("real", "independent"))
    if mode == "real":
        s = 1.0 - real_batch_shrinkage(M, centered=centered)
        val, grad = gamma * a * s, a * s
    else:
        c1 = inverse_std_moment(M, 1.0, centered=centered)
        c2 = inverse_std_moment(M, 2.0, centered=centered)
        q = (c2 - 2.0 * c1 + 1.0) + (c2 / M if centered else 0.0)
        val = (c1 - 1.0) * gamma * (gamma - a) + 0.5 * gamma**2 * q
        grad = (c1 - 1.0) * (2.0 * gamma - a) + gamma * q
    return LinearExcess(M, mode, bool(centered), gamma, a, float(val), float(grad))


def decay_report(batch_size: int, *, sigma_P: float = 1.0, rho: float = 0.0,
                 centered: bool = True) -> dict:
    r"""Batch-statistic moments and BN's equivalent gamma decay at one M, as a flat dict.

    Collects (for ``perceptron-theory bn-decay``): the normal prior of Luo et al. Sec. 2
    (:func:`batch_stats_prior`, uses ``rho``); the exact Gaussian-h moments
    (:func:`gaussian_batch_stats`, :func:`inverse_std_moment`); the linear student's decay
    in the independence model in both conventions (:func:`linear_decay_parts`, exact and
    large M) and the real-batch shrinkage and gradient-matched decay
    (:func:`real_batch_shrinkage`, :func:`equivalent_decay_real_batch`). Moments that are
    infinite at this M (:math:`E[1/\sigma_B^k]` needs :math:`\nu > k`) are ``None``.
    ``prior_var_sigma_B_next_order_kappa6_0`` is the :math:`c_1\sigma_P^2/M^2` correction of
    :func:`batch_std_variance_coefficients` with zero sixth cumulant and skewness.

    Parameters
    ----------
    batch_size : int
        :math:`M \ge 2`.
    sigma_P : float
        Population standard deviation of h, :math:`> 0`.
    rho : float
        Excess kurtosis of h (prior only; exact moments are for Gaussian h).
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    dict
        JSON-ready; keys name the quantity and its convention.
    """
    M = _check_batch_size(batch_size)
    # the moments hold sigma_P^4 and (2 + rho)^2: these ranges keep them finite
    sigma_P = check_real("sigma_P", sigma_P, 1e-50, 1e50)
    rho = check_real("rho", rho, -2.0, 1e6)
    nu = chi_dof(M, centered)
    prior = batch_stats_prior(M, sigma_P=sigma_P, rho=rho, centered=centered)
    ex = gaussian_batch_stats(M, sigma_P=sigma_P, centered=centered)
    c0, c1 = batch_std_variance_coefficients(rho=rho, centered=centered)

    def maybe(f, need):
        return f() if nu > need else None

    d = {"batch_size": M, "centered": bool(centered), "sigma_P": sigma_P, "rho": rho,
         "dof": nu,
         "prior_var_mu_B": prior.var_mu_b, "prior_var_sigma_B": prior.var_sigma_b,
         "prior_var_sigma_B_next_order_kappa6_0": c1 * sigma_P**2 / M**2,
         "gaussian_E_sigma_B": ex.mean_sigma_b, "gaussian_var_sigma_B": ex.var_sigma_b,
         "gaussian_E_inv_sigma_B": maybe(
             lambda: inverse_std_moment(M, 1, centered=centered) / sigma_P, 1),
         "gaussian_E_inv_sigma_B2": maybe(
             lambda: inverse_std_moment(M, 2, centered=centered) / sigma_P**2, 2)}
    for conv in DECAY_CONVENTIONS:
        lim = linear_decay_parts(M, convention=conv, exact=False, centered=centered)
        exact = maybe(lambda conv=conv: linear_decay_parts(M, convention=conv,
                                                           centered=centered), 2)
        for part in ("sigma_part", "mu_part", "total"):
            d[f"zeta_independent_{part}_{conv}_large_M"] = getattr(lim, part)
            d[f"zeta_independent_{part}_{conv}_exact"] = (None if exact is None
                                                          else getattr(exact, part))
    d["real_batch_shrinkage_c_M"] = real_batch_shrinkage(M, centered=centered)
    for conv in DECAY_CONVENTIONS:
        d[f"zeta_real_batch_gradient_matched_{conv}"] = equivalent_decay_real_batch(
            M, convention=conv, centered=centered)
    return d


# ======================================================================= losses
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


# ======================================================================= Theorem 1
@dataclass(frozen=True)
class ZetaTheorem1:
    """Luo et al.'s adaptive decay factor and its ingredients."""

    zeta: float
    sigma_part: float
    mu_part: float
    rho: float
    fisher: float
    mean_curvature: float
    batch_size: int
    convention: str
    fisher_estimate: str

    def to_dict(self) -> dict:
        return asdict(self)


def zeta_theorem1(h, batch_size: int, curvature, *, rho: float | None = None,
                  dloss_dgamma=None, centered: bool = True, convention: str = "theorem1",
                  moments: str = "leading") -> ZetaTheorem1:
    r"""Adaptive gamma-decay factor :math:`\zeta(h)` of Luo et al. Theorem 1 (eq. 3).

    .. math::

        \zeta(h) = \frac{\rho + 2}{8M}\, I(\gamma) + \frac{1}{2M}\,\overline{A''}, \qquad
        I(\gamma) = \frac1P\sum_j A''(\tilde h_j)\,\hat h_j^2, \qquad
        \overline{A''} = \frac1P \sum_j A''(\tilde h_j),

    with :math:`\hat h_j = (h_j - \bar h)/\mathrm{sd}(h)` and the curvature
    :math:`A''(\tilde h_j)` of the per-sample loss in the post-BN pre-activation
    (1 for ``mse``; :math:`\mathrm{sigmoid}(\tilde h)` for ``glm-softplus``, the paper's
    ReLU case where :math:`\overline{A''}` is the mean sigmoid). From the second-order
    Taylor term :math:`R_q = \frac12\overline{A'' E(\tilde h_{BN}-\tilde h)^2}` with
    :math:`\mathrm{Var}\,\sigma_B \approx \sigma_P^2(\rho+2)/(4M)` and
    :math:`E(\mu_B-\mu_P)^2/\sigma_B^2 \approx 1/M`, dropping :math:`O(M^{-2})`.
    The first-order term :math:`R_f` is omitted (it vanishes at a PN-stationary gamma).

    Source: Luo et al. 2019, eq. 3 and App. C.1-C.2 (convention: loss
    :math:`A(\tilde h) - y\tilde h`, i.e. the *halved* squared error for ``mse``, plus
    :math:`\zeta\gamma^2`; ``convention="decay2"`` doubles it). The paper's text defines
    :math:`I(\gamma) = \frac1P\sum_j (\partial\ell_j/\partial\gamma)^2` (outer product);
    its proof uses the Hessian form :math:`A''\hat h^2` above. The two agree in
    expectation only at the true model (:math:`E[(A'-y)^2|h] = A''`); pass
    ``dloss_dgamma`` to use the outer-product estimate. ``centered=False``
    (variance-only BN): mean part 0, sigma part unchanged at this order.

    ``moments="gaussian-exact"`` keeps the whole second-order term of the independence
    model with the exact Gaussian-h moments :math:`c_1 = \sigma_P E[1/\sigma_B]`,
    :math:`c_2 = \sigma_P^2 E[1/\sigma_B^2]` (:func:`inverse_std_moment`) instead of
    their 1/M expansions:

    .. math::

        \zeta = \frac{c_2 - 2c_1 + 1}{2}\, I(\gamma) + \frac{c_2}{2M}\,\overline{A''},

    exactly :math:`R_q/\gamma^2` for Gaussian h (``rho`` is then not used and reported
    as 0). Its excess over the leading form is the :math:`O(M^{-2})` term Theorem 1
    drops: :math:`(71/32)\,I/M^2 + (3/2)\,\overline{A''}/M^2 + \dots`, large at small
    M (at M = 8 the exact value is about twice the leading one).

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values :math:`h_j = w^T x_j`.
    batch_size : int
        :math:`M \ge 2`.
    curvature : array_like, shape (P,) or scalar
        :math:`A''(\tilde h_j) \ge 0`.
    rho : float, optional
        Excess kurtosis of h; estimated by ``scipy.stats.kurtosis`` (Fisher, biased)
        when omitted.
    dloss_dgamma : array_like, shape (P,), optional
        Per-sample :math:`\partial\ell_j/\partial\gamma`; if given,
        :math:`I(\gamma) = \overline{(\partial\ell/\partial\gamma)^2}`.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).
    convention : {"theorem1", "decay2"}
        Loss convention (module docstring).
    moments : {"leading", "gaussian-exact"}
        1/M-expanded noise moments (Theorem 1) or exact Gaussian-h moments.

    Returns
    -------
    ZetaTheorem1
    """
    h = check_array("h", h, min_size=2)
    if h.ndim != 1:
        raise ValueError(f"h must be one-dimensional, got shape {h.shape}")
    M = _check_batch_size(batch_size)
    curv = check_array("curvature", curvature, 0.0)
    if curv.ndim == 0:
        curv = np.full_like(h, float(curv))
    if curv.shape != h.shape:
        raise ValueError(f"curvature must be a scalar or have the shape of h {h.shape}, "
                         f"got {curv.shape}")
    convention = check_choice("convention", convention, DECAY_CONVENTIONS)
    moments = check_choice("moments", moments, ("leading", "gaussian-exact"))
    if moments == "gaussian-exact":
        nu = M - 1 if centered else M
        if nu <= 2:
            raise ValueError(f"batch_size must be >= {4 if centered else 3} for "
                             f"moments='gaussian-exact' (E[1/sigma_B^2] finite); got {M}")
    hhat, _, _ = _standardize(h)
    if moments == "gaussian-exact":
        rho = 0.0
    elif rho is None:
        rho = float(_stats.kurtosis(h, fisher=True, bias=True))
    rho = check_real("rho", rho, -2.0)
    if dloss_dgamma is None:
        fisher, est = float(np.mean(curv * hhat**2)), "hessian"
    else:
        g = check_array("dloss_dgamma", dloss_dgamma)
        if g.shape != h.shape:
            raise ValueError(f"dloss_dgamma must have the shape of h {h.shape}, got {g.shape}")
        fisher, est = float(np.mean(g**2)), "outer"
    f = DECAY_CONVENTIONS[convention]
    mean_curv = float(curv.mean())
    if moments == "leading":
        sig = f * (rho + 2.0) / (8.0 * M) * fisher
        mu = f * mean_curv / (2.0 * M) if centered else 0.0
    else:
        c1 = inverse_std_moment(M, 1.0, centered=centered)
        c2 = inverse_std_moment(M, 2.0, centered=centered)
        sig = f * 0.5 * (c2 - 2.0 * c1 + 1.0) * fisher
        mu = f * 0.5 * c2 / M * mean_curv if centered else 0.0
    return ZetaTheorem1(sig + mu, sig, mu, rho, fisher, mean_curv, M, convention, est)


def pn_loss(h, y, gamma: float, beta: float = 0.0, loss: str = "mse") -> float:
    r"""Population-normalized loss :math:`\frac1P\sum_j \ell(\gamma\hat h_j + \beta, y_j)`.

    :math:`\hat h = (h - \mu_P)/\sigma_P` with :math:`\mu_P, \sigma_P` the mean and
    (ddof 0) standard deviation of the ``h`` passed: the data are the population.

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
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.

    Returns
    -------
    float
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    hhat, _, _ = _standardize(h)
    return float(np.mean(L.value(gamma * hhat + beta, y)))


def pn_stationary_gamma(h, y, beta: float = 0.0, loss: str = "mse") -> float:
    r"""Gamma where the PN loss is stationary, :math:`\overline{(A'(\tilde h) - y)\hat h} = 0`.

    For ``mse`` this is :math:`\overline{y\hat h}` (closed form); otherwise a bracketed
    root (the PN loss is convex in gamma, :math:`A'' > 0`). At this gamma the first-order
    term :math:`R_f` of Theorem 1 vanishes.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    beta : float
        BN shift (held fixed).
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.

    Returns
    -------
    float
    """
    from scipy.optimize import brentq

    h, y = _check_hy(h, y)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    hhat, _, _ = _standardize(h)
    if loss == "mse":
        return float(np.mean((y - beta) * hhat) / np.mean(hhat**2))

    def grad(g):
        return float(np.mean((L.mean(g * hhat + beta) - y) * hhat))

    lo, hi = -1.0, 1.0
    for _ in range(60):
        if grad(lo) < 0 < grad(hi):
            break
        lo, hi = 2 * lo, 2 * hi
    else:  # pragma: no cover - separable data
        raise ValueError("the PN loss has no stationary gamma (data separable in gamma)")
    return float(brentq(grad, lo, hi, xtol=1e-14, rtol=1e-14))


def pn_stationary_point(h, y, loss: str = "mse", *, tol: float = 1e-12,
                        max_iter: int = 200) -> tuple[float, float]:
    r"""Joint PN-stationary :math:`(\gamma, \beta)`.

    Solves :math:`\overline{(A'(\tilde h) - y)\hat h} = \overline{A'(\tilde h) - y} = 0`.

    The PN loss is convex in :math:`(\gamma, \beta)` (:math:`A'' > 0`); solved by damped
    Newton steps with Hessian :math:`\overline{A''\,[\hat h^2, \hat h; \hat h, 1]}`
    (closed form :math:`(\overline{y\hat h}, \bar y)` for ``mse``). At this point both
    first-order terms of the independence model vanish; in real batches the term
    :math:`-\frac{\gamma}{2M}\overline{(A'-y)\hat h^3}` survives
    (:func:`real_batch_leading_excess`).

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    tol : float
        Tolerance on the gradient norm.
    max_iter : int
        Newton iterations.

    Returns
    -------
    tuple of float
        :math:`(\gamma, \beta)`.
    """
    h, y = _check_hy(h, y)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    tol = check_real("tol", tol, 0.0, lo_open=True)
    max_iter = check_int("max_iter", max_iter, 1)
    hhat, _, _ = _standardize(h)
    if loss == "mse":
        return float(np.mean(y * hhat)), float(np.mean(y))

    def obj(p):
        return float(np.mean(L.value(p[0] * hhat + p[1], y)))

    p = np.array([0.0, 0.0])
    f = obj(p)
    for _ in range(max_iter):
        ht = p[0] * hhat + p[1]
        r, c = L.mean(ht) - y, L.curvature(ht)
        g = np.array([np.mean(r * hhat), np.mean(r)])
        if np.sqrt(g @ g) < tol:
            break
        H = np.array([[np.mean(c * hhat**2), np.mean(c * hhat)], [np.mean(c * hhat), np.mean(c)]])
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-8:
            fn = obj(p - t * step)
            if fn <= f:
                break
            t *= 0.5
        p, f = p - t * step, fn
    else:
        raise ValueError(f"no PN-stationary point found in max_iter={max_iter} Newton steps "
                         "(data separable?)")
    return float(p[0]), float(p[1])


def pn_loss_plus_decay(h, y, gamma: float, beta: float = 0.0, batch_size: int = 32,
                       loss: str = "mse", *, rho: float | None = None,
                       centered: bool = True) -> float:
    r"""Luo et al.'s deterministic surrogate of BN: PN loss :math:`+\ \zeta(h)\gamma^2`.

    .. math::

        \frac1P\sum_j E_{\mu_B,\sigma_B}\,\ell(\tilde h_{BN,j}) \simeq
        \frac1P\sum_j \ell(\tilde h_j) + \zeta(h)\gamma^2,

    :math:`\zeta(h)` from :func:`zeta_theorem1` with the curvature
    :math:`A''(\gamma\hat h + \beta)` of ``loss`` (``theorem1`` convention). Source:
    Luo et al. 2019, eq. 3 / Theorem 1; valid up to :math:`O(M^{-2})` and up to the
    first-order term :math:`R_f`, which vanishes at :func:`pn_stationary_gamma`.

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
        Excess kurtosis of h (estimated when omitted).
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    float
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    M = _check_batch_size(batch_size)
    hhat, _, _ = _standardize(h)
    z = zeta_theorem1(h, M, L.curvature(gamma * hhat + beta), rho=rho, centered=centered)
    return pn_loss(h, y, gamma, beta, loss) + z.zeta * gamma**2


# ======================================================================= Monte Carlo
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


# ======================================================================= Annamalai & Thakur
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
