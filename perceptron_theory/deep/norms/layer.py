"""Per-sample normalizers: layer, group and instance norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perceptron_theory._checks import check_int
from perceptron_theory.deep.norms._base import (
    EPS,
    _Norm,
)

__all__ = ["GroupNorm", "LayerNorm", "InstanceNorm"]


class GroupNorm(_Norm):
    r"""Group normalization (Wu & He 2018) with per-channel :math:`\gamma, \beta`.

    Channels are split into ``groups`` :math:`G` contiguous groups; each sample's group
    :math:`g` is normalized over its channels and :math:`(H, W)`:

    .. math::

        y_{ncs} = \gamma_c \frac{z_{ncs} - \mu_{ng}}{\sqrt{\sigma_{ng}^2 + \epsilon}} + \beta_c .

    ``groups`` is clipped to the largest divisor of :math:`C` that does not exceed it
    (32 with :math:`C = 48` gives 24). :class:`LayerNorm` is :math:`G = 1`. For
    ``dim=1`` with :math:`G = C` (:math:`C \le 32` by default) each group holds one
    value and the output is :math:`\beta`, as for :class:`InstanceNorm`: pass a smaller
    ``groups`` for narrow dense layers.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    groups : int
        Requested number of groups (>= 1).
    eps : float
        :math:`\epsilon`.
    """

    def __init__(self, num_channels: int, dim: int = 2, groups: int = 32, eps: float = EPS):
        super().__init__(num_channels, dim, eps)
        groups = check_int("groups", groups, 1)
        self.groups = max(g for g in range(1, min(groups, num_channels) + 1)
                          if num_channels % g == 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.dim == 2:
            return F.group_norm(x, self.groups, self.weight, self.bias, self.eps)
        # dense: layer_norm within each group is ~2x faster than group_norm on (B, C)
        B, G = x.shape[0], self.groups
        if G == 1:
            return F.layer_norm(x, (self.num_channels,), self.weight, self.bias, self.eps)
        xhat = F.layer_norm(x.view(B, G, -1), (self.num_channels // G,), None, None, self.eps)
        return self._affine(xhat.view(x.shape))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", groups={self.groups}"


class LayerNorm(GroupNorm):
    r"""Layer normalization over :math:`(C, H, W)` with per-channel affine (Ba et al. 2016).

    As in Rao & Sohl-Dickstein Table 1 (mean and std axes :math:`(H, W, C)`):

    .. math::

        y = \gamma\, \frac{z - \mu^i}{\sqrt{(\sigma^i)^2 + \epsilon}} + \beta,

    :math:`\gamma, \beta` per channel (not per unit). It is :class:`GroupNorm` with one
    group.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    """

    def __init__(self, num_channels: int, dim: int = 2, eps: float = EPS):
        super().__init__(num_channels, dim, 1, eps)


class InstanceNorm(_Norm):
    r"""Instance normalization with affine (Ulyanov et al. 2016); no running statistics.

    .. math::

        y_{ncs} = \gamma_c \frac{z_{ncs} - \mu_{nc}}{\sqrt{\sigma_{nc}^2 + \epsilon}} + \beta_c,
        \qquad \mu_{nc}, \sigma^2_{nc} \text{ over } (H, W),

    the same in training and evaluation (torch's ``InstanceNorm2d(affine=True)``
    default). For ``dim=1`` every (sample, channel) holds one value, so
    :math:`z - \mu = 0` and :math:`y = \beta`: the layer is degenerate (kept so that
    every registry name exists in both dims).

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.dim == 1:
            return self._affine(x - x)
        return F.group_norm(x, self.num_channels, self.weight, self.bias, self.eps)
