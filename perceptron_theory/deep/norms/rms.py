"""The layer-RMS family (Rao & Sohl-Dickstein 2020, Sec. 3): PreLayerNorm, RegNorm,
PreRegNorm, and the pre-centering hook of the op before them."""

from __future__ import annotations

import torch
from torch import nn

from perceptron_theory.deep.norms._base import (
    EPS,
    _Norm,
)
from perceptron_theory.deep.norms._kernels import (
    _center_ref,
    _CenterFn,
    _rms_ref,
    _RMSFn,
    _run,
)

__all__ = ["PreLayerNorm", "RegNorm", "PreRegNorm"]


_CENTERED_CALLS = [0]  # forward calls of ops carrying the pre-centering hook (a guard)


def _center_input_hook(module: nn.Module, args: tuple):
    """Forward pre-hook: replace the op's input by :math:`x - \\mu^i(x)` (per sample)."""
    _CENTERED_CALLS[0] += 1
    return (_run(_CenterFn, _center_ref, args[0]), *args[1:])


class _RMSLayerNorm(_Norm):
    r"""Divide by the per-sample RMS over :math:`(C, H, W)`, then per-channel affine.

    .. math::

        \bar z = \frac{z}{\sqrt{\frac{1}{N_l}\sum_{c,s} z_{ncs}^2 + \epsilon}}, \qquad
        y = \gamma \bar z + \beta .

    Rao & Sohl-Dickstein write :math:`\sigma^i(\cdot)` and App. B spells it out as
    :math:`\sqrt{(1/N_l)\sum_j (z_j)^2}`, the root mean square (no mean subtracted).
    """

    requires_pre_centering = False
    regularized = False

    def __init__(self, num_channels: int, dim: int = 2, eps: float = EPS,
                 check_centering: bool = True):
        super().__init__(num_channels, dim, eps)
        if not isinstance(check_centering, bool):
            raise ValueError(f"check_centering must be True or False, got {check_centering!r}")
        self.check_centering = check_centering and self.requires_pre_centering
        self._calls_at_init = _CENTERED_CALLS[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.check_centering:
            if _CENTERED_CALLS[0] == self._calls_at_init:
                raise RuntimeError(
                    f"{type(self).__name__} subtracts the layer mean *before* the preceding "
                    "conv/linear op: call perceptron_theory.deep.norms.apply_pre_centering(op) "
                    "(or prepare_op(op, name)) on that op, or build the layer with "
                    "check_centering=False if the input is centered by other means")
            self.check_centering = False
        y, inv = _run(_RMSFn, _rms_ref, self._x3(x), self.weight, self.bias, self.eps)
        self._record(x, inv)
        return y.view(x.shape)

    def _record(self, x: torch.Tensor, inv: torch.Tensor) -> None:
        pass


class PreLayerNorm(_RMSLayerNorm):
    r"""PreLayerNorm (Rao & Sohl-Dickstein 2020, Sec. 3.1 and Table 1).

    The layer mean of the *input* :math:`x^{l-1}` of the affine op is removed before
    the op, and the op's output is divided by its layer RMS before the nonlinearity:

    .. math::

        z = W \circ \big(x^{l-1} - \mu^i(x^{l-1})\big), \qquad
        y = \gamma\, \frac{z}{\sqrt{\frac{1}{N_l}\sum_{c,s} z_{ncs}^2 + \epsilon}} + \beta,

    :math:`\mu^i(x)` the mean of each sample over all its features :math:`(C, H, W)`.

    Placement: two halves in two places. This module is the *post-op* half and sits
    where any norm sits (after the conv/linear). The *pre-op* half is a forward
    pre-hook on the op, installed by :func:`apply_pre_centering` (or
    :func:`prepare_op`, which also applies weight norm for ``wn+`` names); models call
    it when :func:`uses_pre_centering` is true, as they call :func:`apply_weight_norm`
    when :func:`uses_weight_norm` is. The mean subtraction cannot be moved after the
    op: :math:`W\circ(x - \mu 1) = W\circ x - \mu\, (W\circ 1)`, and both :math:`\mu(x)`
    and :math:`W\circ 1` (which varies near zero-padded borders) need the op's input
    and weights. The op's bias, if any, is added after the centering, as in the
    equation. As a guard, the first forward call raises ``RuntimeError`` if no
    pre-centered op has run since the layer was built (``check_centering=False``
    disables it).

    The divisor is the RMS of :math:`z` (Table 1 writes :math:`\sigma^i(\cdot)` without a
    mean for PreLayerNorm and RegNorm; App. B defines it as the RMS). Same behaviour in
    training and evaluation.

    Parameters
    ----------
    num_channels : int
        :math:`C` (channels of the op's output).
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    check_centering : bool
        Raise at the first call if the preceding op was not pre-centered.
    """

    requires_pre_centering = True


class RegNorm(_RMSLayerNorm):
    r"""RegNorm: layer RMS normalization plus a batch-mean regularizer (Rao et al. Sec. 3.2).

    .. math::

        \bar z = \frac{z}{\sqrt{\frac{1}{N_l}\sum_{c,s} z_{ncs}^2 + \epsilon}}, \qquad
        y = \gamma \bar z + \beta,

    and the loss gets :math:`\lambda \sum_l r^l` with (eq. 3, App. B; :math:`a, b` two
    independent uniform draws from the batch, :math:`i` over :math:`(H, W, C)`)

    .. math::

        r(\bar z) = \mathbb{E}_{a,b}\Big[\sum_i \big((\bar z_i^a + \bar z_i^b)^2 - 2\big)\Big]
                  = 2 \sum_i \big(\mathbb{E}_a \bar z_i^a\big)^2
                    + 2 N_l\big(\mathbb{E}_a \tfrac{1}{N_l}\textstyle\sum_i (\bar z_i^a)^2 - 1\big),

    whose second term is :math:`-2N_l\,\mathbb{E}_a[\epsilon/(\mathrm{rms}_a^2+\epsilon)]
    \approx 0`, so :math:`r \approx 2\sum_i \bar m_i^2` is minimal exactly at zero batch
    mean of every unit (App. B states the minimizer; its last lines drop the square
    of the mean, :math:`\mathbb{E}_{a,b}[\bar z^a_i\bar z^b_i] = (\mathbb{E}_a\bar z^a_i)^2`).

    After every forward call the module holds, for the penalty (``deep.penalties``):

    * ``last_batch_mean`` -- :math:`\bar m_i = \mathbb{E}_a \bar z^a_i`, shape
      ``(C, H, W)`` (``(C,)`` for ``dim=1``): per *unit*, not per channel, since the
      paper's :math:`i` runs over :math:`(H, W, C)`; attached to the autograd graph;
    * ``last_mean_square`` -- :math:`\mathbb{E}_a \frac{1}{N_l}\sum_i (\bar z^a_i)^2`
      (a scalar, with graph);
    * :meth:`regularizer` -- :math:`r` from the two, exactly as above.

    The statistic is of :math:`\bar z`, before :math:`\gamma, \beta`, as the paper says
    ("computed after the inputs are normalized").

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    check_centering : bool
        Only used by :class:`PreRegNorm`.
    """

    regularized = True

    def __init__(self, num_channels: int, dim: int = 2, eps: float = EPS,
                 check_centering: bool = True):
        super().__init__(num_channels, dim, eps, check_centering)
        self.last_batch_mean: torch.Tensor | None = None
        self.last_mean_square: torch.Tensor | None = None

    def _record(self, x: torch.Tensor, inv: torch.Tensor) -> None:
        B = x.shape[0]
        # batch mean of zbar = x * inv per unit, as one (1, B) @ (B, C*H*W) product
        self.last_batch_mean = (inv.view(1, B) @ x.reshape(B, -1)).view(x.shape[1:]) / B
        # mean square of zbar per sample: ms / (ms + eps) = 1 - eps * inv^2
        self.last_mean_square = 1.0 - self.eps * inv.square().mean()

    def regularizer(self) -> torch.Tensor:
        r"""Rao et al.'s :math:`r(\bar z)` (eq. 3) for the latest forward call."""
        if self.last_batch_mean is None:
            raise RuntimeError(f"{type(self).__name__}.regularizer() needs a forward call first")
        n_units = self.last_batch_mean.numel()
        return (2.0 * self.last_batch_mean.square().sum()
                + 2.0 * n_units * (self.last_mean_square - 1.0))


class PreRegNorm(RegNorm):
    r"""PreRegNorm: RegNorm with the layer mean removed before the affine op (Rao Table 3).

    Forward as :class:`PreLayerNorm` (the op's input is centered by
    :func:`apply_pre_centering`), regularizer as :class:`RegNorm`.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    check_centering : bool
        Raise at the first call if the preceding op was not pre-centered.
    """

    requires_pre_centering = True
