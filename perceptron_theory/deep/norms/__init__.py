r"""Normalization layers for the deep experiments: one registry keyed by CLI name.

Symbol map. A layer sees :math:`z` of shape ``(B, C, H, W)`` (``dim=2``, after a conv)
or ``(B, C)`` (``dim=1``, after a linear layer; read :math:`H = W = 1`). Indices:
:math:`n` sample, :math:`c` channel, :math:`s` spatial position, :math:`i = (c, s)` a
unit of one sample's layer. Per-channel *batch* statistics over the axes
:math:`(N, H, W)`:

.. math::

    \mu^B_c = \frac{1}{B H W}\sum_{n,s} z_{ncs}, \qquad
    (\sigma^B_c)^2 = \frac{1}{B H W}\sum_{n,s} (z_{ncs} - \mu^B_c)^2 \quad\text{(biased)},

per-sample *layer* statistics over :math:`(C, H, W)` (:math:`N_l = C H W` units):

.. math::

    \mu^i_n = \frac{1}{N_l}\sum_{c,s} z_{ncs}, \qquad
    (\sigma^i_n)^2 = \frac{1}{N_l}\sum_{c,s} (z_{ncs} - \mu^i_n)^2, \qquad
    \mathrm{rms}^i_n = \Big(\frac{1}{N_l}\sum_{c,s} z_{ncs}^2\Big)^{1/2},

and :math:`\mu^P_c, (\sigma^P_c)^2` the *population* statistics (the batch formula over
a whole data set). ``gamma`` = ``weight`` = :math:`\gamma_c`, ``beta`` = ``bias`` =
:math:`\beta_c` (per channel, always under these two names so that parameter-group
code finds them), ``eps`` = :math:`\epsilon = 10^{-5}` inside every square root,
``momentum`` = :math:`m = 0.1` of the running averages
:math:`r \leftarrow (1 - m)\, r + m\, \hat r` (torch's convention; running variances use
the *unbiased* batch variance :math:`\frac{n}{n-1}(\sigma^B)^2`, :math:`n = BHW`, as
torch does). Training and evaluation differ only where the table says so.

============  =================================================  =============================
name          training (then :math:`\gamma\,\cdot + \beta`)      evaluation
============  =================================================  =============================
none          :math:`z` (no layer)                               same
bn            :math:`(z-\mu^B)/\sigma^B`                         running :math:`\mu, \sigma^2`
bn-train      :math:`(z-\mu^B)/\sigma^B`                         batch stats (Batch-Train)
ghost-bn      BN within chunks of ``virtual_batch_size``         running stats
batch-renorm  :math:`r (z-\mu^B)/\sigma^B + d`                   running :math:`\mu, \sigma`
pn            :math:`(z-\mu^P)/\sigma^P`                         same
wn            (weight norm on the preceding op)                  same
bn-mean       :math:`z-\mu^B` (:math:`\beta` only)               running :math:`\mu`
bn-var        :math:`z/\sigma^B`                                 running :math:`\sigma^2`
ln            :math:`(z-\mu^i)/\sigma^i`                         same
gn            LN within groups of channels                       same
in            over :math:`(H, W)` per sample and channel         same
bmlv          :math:`(z-\mu^B)/\sigma^i`                         same (batch mean)
lmbv          :math:`(z-\mu^i)/\sigma^B`                         same (batch std)
pre-ln        :math:`z/\mathrm{rms}^i`, :math:`z=W(x-\mu^i(x))`  same
regnorm       :math:`z/\mathrm{rms}^i`, penalty :math:`r`        same
pre-regnorm   pre-ln's layer, regnorm's penalty                  same
wn+X          ``wn`` on the op, then layer X                     as X
============  =================================================  =============================

with X one of ``bn``, ``bn-mean``, ``bn-var`` (Luo et al.'s L-F2cd variants).

Sources: Ioffe & Szegedy 2015 (BN); Rao & Sohl-Dickstein 2020, Table 1, Sec. 3 and
App. B (Batch-Train, BMLV, LMBV, PreLayerNorm, RegNorm, PreRegNorm); Luo et al. 2019,
Sec. 2 and 5 (PN, WN + mean-only / variance-only BN, experiment L-F2cd); Salimans &
Kingma 2016 (WN, mean-only BN); Hoffer et al. 2017 (ghost BN); Ioffe 2017 (batch
renormalization); Ba et al. 2016 (LN); Wu & He 2018 (GN); Ulyanov et al. 2016 (IN).

Design notes
------------
* Layers whose statistic runs over the batch but that are *not* torch's BN are plain
  :class:`torch.nn.Module` subclasses, never ``_BatchNorm``: ``SyncBatchNorm``
  conversion would otherwise replace them silently by ordinary BN. ``bn`` and
  ``bn-train`` *are* torch's :class:`~torch.nn.BatchNorm1d`/``2d``
  (``bn-train`` with ``track_running_stats=False``).
* Speed: every layer is a native kernel (``F.batch_norm``, ``F.group_norm``,
  ``F.layer_norm``) or a small ``torch.autograd.Function`` with a hand-derived
  backward ("fused kernels": ghost BN, variance-only BN, BMLV, LMBV, the RMS layer of
  PreLayerNorm / RegNorm, pre-centering), vectorized over chunks and samples.
  ``benchmarks/deep_norms.py`` times them against ``BatchNorm2d``. Second derivatives
  (Hessian-vector products for the curvature probes) stay exact: under
  ``create_graph=True`` a kernel's backward differentiates a plain-autograd copy of its
  formula; under ``torch.func`` transforms or forward-mode AD that copy is used
  directly; :func:`fused_kernels` switches the kernels off.
* Modules, by family (everything is re-exported here): :mod:`.batch` (ghost BN, batch
  renorm, mean-only and variance-only BN), :mod:`.population` (PN and
  :func:`refresh_population_stats`), :mod:`.layer` (LN, GN, IN), :mod:`.mixed` (BMLV,
  LMBV), :mod:`.rms` (PreLayerNorm, RegNorm, PreRegNorm), :mod:`.registry` (the table
  above, :func:`make_norm` and friends); :mod:`._base` and :mod:`._kernels` hold the
  shared base class and the fused kernels.
* PreLayerNorm needs the *input* of the preceding affine op; see
  :class:`PreLayerNorm` and :func:`apply_pre_centering`. PN's statistics come from
  :func:`refresh_population_stats`. RegNorm's penalty reads
  :attr:`RegNorm.last_batch_mean` / :meth:`RegNorm.regularizer`.

Examples
--------
>>> from perceptron_theory.deep import norms
>>> norms.split_norm("wn+bn-mean"), norms.split_norm("wn"), norms.split_norm("bn")
((True, 'bn-mean'), (True, 'none'), (False, 'bn'))
>>> norms.uses_weight_norm("wn+bn-var"), norms.uses_pre_centering("pre-ln")
(True, True)
>>> layer = norms.make_norm("ghost-bn", 16, virtual_batch_size=8)
>>> type(layer).__name__, layer.virtual_batch_size
('GhostBatchNorm', 8)
>>> import torch
>>> y = norms.make_norm("bn-mean", 3, dim=1)(torch.tensor([[1., 2., 3.], [3., 6., 9.]]))
>>> y.tolist()   # batch mean subtracted, no scaling
[[-1.0, -2.0, -3.0], [1.0, 2.0, 3.0]]
"""


from perceptron_theory.deep.norms._base import (
    EPS,  # noqa: F401  (module constants, not in __all__)
    MOMENTUM,  # noqa: F401
)
from perceptron_theory.deep.norms._kernels import (
    fused_kernels,
)
from perceptron_theory.deep.norms.batch import (
    BatchRenorm,
    GhostBatchNorm,
    MeanOnlyBatchNorm,
    VarianceOnlyBatchNorm,
)
from perceptron_theory.deep.norms.layer import (
    GroupNorm,
    InstanceNorm,
    LayerNorm,
)
from perceptron_theory.deep.norms.mixed import (
    BatchMeanLayerVar,
    LayerMeanBatchVar,
)
from perceptron_theory.deep.norms.population import (
    PopulationNorm,
    refresh_population_stats,
)
from perceptron_theory.deep.norms.registry import (
    NORMS,
    NormSpec,
    apply_pre_centering,
    apply_weight_norm,
    make_norm,
    norm_names,
    prepare_op,
    split_norm,
    uses_pre_centering,
    uses_weight_norm,
)
from perceptron_theory.deep.norms.rms import (
    PreLayerNorm,
    PreRegNorm,
    RegNorm,
)

__all__ = [
    "NORMS",
    "NormSpec",
    "make_norm",
    "norm_names",
    "split_norm",
    "uses_weight_norm",
    "uses_pre_centering",
    "apply_weight_norm",
    "apply_pre_centering",
    "prepare_op",
    "refresh_population_stats",
    "fused_kernels",
    "GhostBatchNorm",
    "BatchRenorm",
    "PopulationNorm",
    "MeanOnlyBatchNorm",
    "VarianceOnlyBatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
    "BatchMeanLayerVar",
    "LayerMeanBatchVar",
    "PreLayerNorm",
    "RegNorm",
    "PreRegNorm",
]
