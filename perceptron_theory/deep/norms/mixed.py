"""Mixed statistics (Rao & Sohl-Dickstein 2020, Table 1): batch mean with layer std
(BMLV) and layer mean with batch std (LMBV)."""

from __future__ import annotations

import torch

from perceptron_theory.deep.norms._base import (
    EPS,
    MOMENTUM,
    _check_momentum,
    _Norm,
    _unbiased,
)
from perceptron_theory.deep.norms._kernels import (
    _bmlv_ref,
    _BMLVFn,
    _lmbv_ref,
    _LMBVFn,
    _run,
)

__all__ = ["BatchMeanLayerVar", "LayerMeanBatchVar"]


class _MixedNorm(_Norm):
    """Shared init of BMLV / LMBV: optional running statistic (off, as in Rao Fig. 5)."""

    _running: str = ""

    def __init__(self, num_channels: int, dim: int = 2, track_running_stats: bool = False,
                 eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        if not isinstance(track_running_stats, bool):
            raise ValueError(f"track_running_stats must be True or False, "
                             f"got {track_running_stats!r}")
        self.track_running_stats = track_running_stats
        self.momentum = _check_momentum(momentum)
        if track_running_stats:
            init = torch.zeros if self._running == "running_mean" else torch.ones
            self.register_buffer(self._running, init(num_channels))
        else:
            self.register_buffer(self._running, None)

    def _use_batch(self) -> bool:
        return self.training or not self.track_running_stats

    def extra_repr(self) -> str:
        return super().extra_repr() + f", track_running_stats={self.track_running_stats}"


class BatchMeanLayerVar(_MixedNorm):
    r"""BMLV: batch mean, layer variance (Rao & Sohl-Dickstein 2020, Table 1).

    .. math::

        y = \gamma\, \frac{z - \mu^B}{\sqrt{(\sigma^i)^2 + \epsilon}} + \beta,

    :math:`\mu^B` per channel over :math:`(N, H, W)`; :math:`\sigma^i` per sample over
    :math:`(H, W, C)` -- the same :math:`\sigma^i` as LayerNorm's row of the table, i.e.
    the standard deviation of :math:`z` about the *layer* mean :math:`\mu^i`. Rao et al.
    evaluate BMLV without accumulated statistics (Fig. 5 caption), so by default the
    batch mean is used at evaluation too; ``track_running_stats=True`` keeps a
    ``running_mean`` (EMA of :math:`\mu^B`) and uses it at evaluation.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    track_running_stats : bool
        Keep and use at evaluation a running batch mean.
    eps : float
        :math:`\epsilon`.
    momentum : float
        Of the running mean.
    """

    _running = "running_mean"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self._use_batch():
            y, mean = _run(_BMLVFn, _bmlv_ref, self._x3(x), self.weight, self.bias, self.eps)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.running_mean.lerp_(mean, self.momentum)
            return y.view(x.shape)
        axes = self._layer_axes
        var = (x - x.mean(axes, keepdim=True)).square().mean(axes, keepdim=True)
        return self._affine(x - self._c(self.running_mean), torch.rsqrt(var + self.eps))


class LayerMeanBatchVar(_MixedNorm):
    r"""LMBV: layer mean, batch variance (Rao & Sohl-Dickstein 2020, Table 1).

    .. math::

        y = \gamma\, \frac{z - \mu^i}{\sqrt{(\sigma^B)^2 + \epsilon}} + \beta,

    :math:`\mu^i` per sample over :math:`(H, W, C)`; :math:`\sigma^B` per channel over
    :math:`(N, H, W)` -- BatchNorm's :math:`\sigma^B`, about the *batch* mean. Batch
    statistics at evaluation too by default (Rao Fig. 5); ``track_running_stats=True``
    keeps a ``running_var`` (EMA of the unbiased batch variance) for evaluation.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    track_running_stats : bool
        Keep and use at evaluation a running batch variance.
    eps : float
        :math:`\epsilon`.
    momentum : float
        Of the running variance.
    """

    _running = "running_var"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self._use_batch():
            n = self._per_channel_count(x)
            self._need_two(n)
            y, var = _run(_LMBVFn, _lmbv_ref, self._x3(x), self.weight, self.bias, self.eps)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.running_var.lerp_(_unbiased(var, n), self.momentum)
            return y.view(x.shape)
        mean = x.mean(self._layer_axes, keepdim=True)
        return self._affine(x - mean, self._c(torch.rsqrt(self.running_var + self.eps)))
