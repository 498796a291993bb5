"""Shared base of the normalizers: channel bookkeeping, affine, small reductions."""

from __future__ import annotations

import torch
from torch import nn

from perceptron_theory._checks import check_int, check_real

EPS = 1e-5
MOMENTUM = 0.1

class _Norm(nn.Module):
    """Shared bookkeeping: channel count, axes, per-channel affine ``weight``/``bias``.

    ``dim=2``: input ``(B, C, H, W)``, batch axes ``(0, 2, 3)``, layer axes
    ``(1, 2, 3)``; ``dim=1``: input ``(B, C)``, batch axes ``(0,)``, layer axes ``(1,)``.
    """

    def __init__(self, num_channels: int, dim: int = 2, eps: float = EPS, *,
                 weight: bool = True, bias: bool = True):
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, 1)
        self.dim = check_int("dim", dim, 1, 2)
        self.eps = check_real("eps", eps, 0.0, lo_open=True)
        self.weight = nn.Parameter(torch.ones(num_channels)) if weight else None
        self.bias = nn.Parameter(torch.zeros(num_channels)) if bias else None
        self._ndim = 2 * self.dim
        self._batch_axes = (0,) if self.dim == 1 else (0, 2, 3)
        self._layer_axes = (1,) if self.dim == 1 else (1, 2, 3)
        self._cshape = (1, num_channels) if self.dim == 1 else (1, num_channels, 1, 1)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != self._ndim or x.shape[1] != self.num_channels:
            want = "(B, C)" if self.dim == 1 else "(B, C, H, W)"
            raise ValueError(f"{type(self).__name__}(dim={self.dim}) expects input {want} "
                             f"with C = {self.num_channels}, got shape {tuple(x.shape)}")

    def _per_channel_count(self, x: torch.Tensor) -> int:
        return x.numel() // self.num_channels

    def _need_two(self, n: int) -> None:
        if n < 2:
            raise ValueError(f"{type(self).__name__} needs more than one value per channel "
                             f"for its batch statistics in training, got {n}")

    def _x3(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S)`` view of the input, ``S = H W`` (1 for dense)."""
        return x.reshape(x.shape[0], self.num_channels, -1)

    def _c(self, t: torch.Tensor) -> torch.Tensor:
        """Per-channel ``(C,)`` tensor as a broadcastable ``(1, C[, 1, 1])`` view."""
        return t.view(self._cshape)

    def _affine(self, xhat: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        r"""Return :math:`\gamma\, \mathrm{scale}\, \hat x + \beta` in one fused op."""
        s = scale
        if self.weight is not None:
            s = self._c(self.weight) if s is None else s * self._c(self.weight)
        if self.bias is None:
            return xhat if s is None else xhat * s
        b = self._c(self.bias)
        return xhat + b if s is None else torch.addcmul(b, xhat, s)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, dim={self.dim}, eps={self.eps:g}"


def _check_momentum(momentum) -> float:
    return check_real("momentum", momentum, 0.0, 1.0)


def _unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    return var * (n / (n - 1))


def _sq_norm(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Sum of squares over ``dims`` (one fused pass; ``torch.var`` is ~20x slower on CPU)."""
    return torch.linalg.vector_norm(t, dim=dims).square()


def _sq_norm_rows(t: torch.Tensor, outer: int) -> torch.Tensor:
    """Sum of squares over the last axis and axis ``outer``, last axis first.

    Reducing the contiguous last axis (``S = H W``) first and then the small ``outer``
    one is ~3x faster on CPU than one strided reduction over both.
    """
    if t.shape[-1] == 1:
        return _sq_norm(t.squeeze(-1), (outer,))
    return _sq_norm(t, (-1,)).sum(outer)
