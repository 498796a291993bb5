r"""The linear student's equivalent gamma decay, in both noise models (claim L-C3).

Independence model (Luo et al. App. C.3; :func:`linear_decay_parts`,
:func:`equivalent_decay_linear`) and real batches (:func:`real_batch_shrinkage`,
:func:`equivalent_decay_real_batch`, :func:`linear_excess_loss`), collected by
:func:`decay_report` for ``perceptron-theory bn-decay``. Notation and conventions:
:mod:`.batchnorm`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from perceptron_theory._checks import check_choice, check_real
from perceptron_theory.theory.batchnorm.noise import (
    _check_batch_size,
    batch_stats_prior,
    batch_std_moment,
    batch_std_variance_coefficients,
    chi_dof,
    gaussian_batch_stats,
    inverse_std_moment,
)
from perceptron_theory.theory.conventions import DECAY_CONVENTIONS, PER_SAMPLE_CONVENTIONS

__all__ = [
    "LinearDecay", "linear_decay_parts", "equivalent_decay_linear", "real_batch_shrinkage",
    "equivalent_decay_real_batch", "LinearExcess", "linear_excess_loss", "decay_report",
]


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
    convention = check_choice("convention", convention, PER_SAMPLE_CONVENTIONS)
    f = DECAY_CONVENTIONS[convention].theorem1_factor
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
    convention = check_choice("convention", convention, PER_SAMPLE_CONVENTIONS)
    if exact:
        z = 0.5 * (1.0 / real_batch_shrinkage(M, centered=centered) - 1.0)
    else:
        z = (3.0 if centered else 1.0) / (8.0 * M)
    return DECAY_CONVENTIONS[convention].theorem1_factor * z


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
    for conv in PER_SAMPLE_CONVENTIONS:
        lim = linear_decay_parts(M, convention=conv, exact=False, centered=centered)
        exact = maybe(lambda conv=conv: linear_decay_parts(M, convention=conv,
                                                           centered=centered), 2)
        for part in ("sigma_part", "mu_part", "total"):
            d[f"zeta_independent_{part}_{conv}_large_M"] = getattr(lim, part)
            d[f"zeta_independent_{part}_{conv}_exact"] = (None if exact is None
                                                          else getattr(exact, part))
    d["real_batch_shrinkage_c_M"] = real_batch_shrinkage(M, centered=centered)
    for conv in PER_SAMPLE_CONVENTIONS:
        d[f"zeta_real_batch_gradient_matched_{conv}"] = equivalent_decay_real_batch(
            M, convention=conv, centered=centered)
    return d
