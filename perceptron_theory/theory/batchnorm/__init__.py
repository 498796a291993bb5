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

Modules (one concept each; everything is re-exported here)
----------------------------------------------------------
* :mod:`.noise` -- batch statistics as noise: priors and exact moments (L-prior);
* :mod:`.linear` -- the linear student's equivalent decay, both noise models (L-C3);
* :mod:`.losses` -- the per-sample losses :data:`LOSSES`;
* :mod:`.theorem1` -- :math:`\zeta(h)`, PN loss and its stationary points (L-eq3);
* :mod:`.expected_loss` -- the exact expected BN loss: Monte Carlo, quadrature, 1/M
  expansion in real batches (L-eq3);
* :mod:`.annamalai_thakur` -- BN as rate tuning (A-eq11, A-eq19).

Decay conventions come from the one table :data:`DECAY_CONVENTIONS`
(:mod:`perceptron_theory.theory.conventions`); this package's functions accept its
per-sample entries ``"theorem1"`` and ``"decay2"``.

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

from perceptron_theory.theory.batchnorm.annamalai_thakur import (
    ConstrainedBNSolution,
    bn_constrained_solution,
    bn_weight,
    effective_rate,
    noise_penalty,
    noise_regularization_factor,
)
from perceptron_theory.theory.batchnorm.expected_loss import (
    MonteCarloLoss,
    RealBatchLeading,
    _batch_normalized,  # noqa: F401  (tests)
    expected_bn_loss,
    gaussian_batch_loss,
    real_batch_leading_excess,
)
from perceptron_theory.theory.batchnorm.linear import (
    LinearDecay,
    LinearExcess,
    decay_report,
    equivalent_decay_linear,
    equivalent_decay_real_batch,
    linear_decay_parts,
    linear_excess_loss,
    real_batch_shrinkage,
)
from perceptron_theory.theory.batchnorm.losses import LOSSES, BNLoss, softplus_partition
from perceptron_theory.theory.batchnorm.noise import (
    BatchStatsPrior,
    GaussianBatchStats,
    batch_stats_prior,
    batch_std_moment,
    batch_std_variance_coefficients,
    batch_variance_variance,
    chi_dof,
    gaussian_batch_stats,
    inverse_std_moment,
)
from perceptron_theory.theory.batchnorm.theorem1 import (
    ZetaTheorem1,
    pn_loss,
    pn_loss_plus_decay,
    pn_stationary_gamma,
    pn_stationary_point,
    zeta_theorem1,
)
from perceptron_theory.theory.conventions import DECAY_CONVENTIONS

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
