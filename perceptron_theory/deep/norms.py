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

from __future__ import annotations

import contextlib
import threading
import types
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from perceptron_theory._checks import check_choice, check_int, check_real

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

EPS = 1e-5
MOMENTUM = 0.1


# ============================================================================ base class
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


# ========================================================================== fused kernels
# Layers whose statistics mix axes (BMLV, LMBV), have no native kernel (variance-only
# BN, layer-RMS norm) get a torch.autograd.Function working on the (B, C, S) view, S =
# H*W (1 for dense): forward in ~2 passes, backward from the closed-form gradient below
# in ~3 passes. Under create_graph=True (Hessian-vector products) the backward instead
# differentiates a plain-autograd reference of the same formula, so higher derivatives
# stay exact. Notation: G_nc = sum_s g, H_nc = sum_s g x (g the output gradient).
def _gh(g: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if g.shape[2] == 1:  # dense: no reduction (a sum over a size-1 axis copies)
        return g[:, :, 0], (g * x)[:, :, 0]
    return g.sum(2), (g * x).sum(2)


def _reference_backward(ctx, ref, grads):
    """Gradients of ``ref(*inputs)`` by autograd, with graph (double backward)."""
    inputs = ctx.saved_tensors
    need = [i for i, t in enumerate(inputs) if ctx.needs_input_grad[i]]
    with torch.enable_grad():
        outs = ref(*inputs, *ctx.args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        pairs = [(o, g) for o, g in zip(outs, grads, strict=False)
                 if g is not None and o.requires_grad]
        got = torch.autograd.grad([o for o, _ in pairs], [inputs[i] for i in need],
                                  [g for _, g in pairs], create_graph=True, allow_unused=True)
    out = [None] * (len(inputs) + len(ctx.args))
    for i, gi in zip(need, got, strict=True):
        out[i] = gi if gi is not None else torch.zeros_like(inputs[i])
    return tuple(out)


_FUSED = [True]


def _fused_ok() -> bool:
    """Use the fused Functions: enabled, and no functorch transform or forward-mode AD.

    ``torch.func`` transforms (``vmap``, ``jvp``, ``hessian``...) and forward-mode AD
    need Functions with ``setup_context``/``jvp``; the plain-autograd references
    support them, at the speed of unfused code.
    """
    if not _FUSED[0]:
        return False
    try:
        return not (torch._C._are_functorch_transforms_active()
                    or torch.autograd.forward_ad._current_level >= 0)
    except AttributeError:  # pragma: no cover - private APIs moved
        return False


def _run(fn, ref, *args):
    return fn.apply(*args) if _fused_ok() else ref(*args)


@contextlib.contextmanager
def fused_kernels(enabled: bool = True):
    """Context manager: switch the hand-written fused kernels on or off.

    Off, every layer computes with plain autograd ops (the ``*_ref`` formulas): same
    values, slower. Meant for checking the kernels and for debugging.

    Parameters
    ----------
    enabled : bool
        Use the fused kernels inside the block.
    """
    old = _FUSED[0]
    _FUSED[0] = bool(enabled)
    try:
        yield
    finally:
        _FUSED[0] = old


def _rms_ref(x, w, b, eps):
    inv = torch.rsqrt(x.square().mean((1, 2)) + eps)
    return torch.addcmul(b.view(1, -1, 1), x, w.view(1, -1, 1) * inv.view(-1, 1, 1)), inv


class _RMSFn(torch.autograd.Function):
    r""":math:`y = \gamma_c x\, s_n + \beta_c`, :math:`s_n = (\overline{x^2}_n + \epsilon)^{-1/2}`.

    Outputs ``(y, s)``. :math:`\partial L/\partial x = \gamma_c s_n g - k_n x`,
    :math:`k_n = s_n^3 (\sum_c \gamma_c H_{nc} + \partial L/\partial s_n)/N_l`.
    """

    @staticmethod
    def forward(ctx, x, w, b, eps):
        B, C, S = x.shape
        inv = torch.rsqrt(_sq_norm(x, (1, 2)) / (C * S) + eps)
        P = w.view(1, C, 1) * inv.view(B, 1, 1)
        ctx.save_for_backward(x, w, b)
        ctx.args, ctx.inv, ctx.P = (eps,), inv, P
        return torch.addcmul(b.view(1, C, 1), x, P), inv

    @staticmethod
    def backward(ctx, gy, ginv):
        if torch.is_grad_enabled():
            return _reference_backward(ctx, _rms_ref, (gy, ginv))
        x, w, _ = ctx.saved_tensors
        B, C, S = x.shape
        inv, P = ctx.inv, ctx.P
        G, H = _gh(gy, x)
        k = inv.pow(3) * (H @ w + ginv) / (C * S)
        dx = torch.addcmul(gy * P, x, k.view(B, 1, 1), value=-1.0)
        return dx, inv @ H, G.sum(0), None


def _ghost_ref(x, w, b, eps, m):
    B, C, S = x.shape
    xv = x.reshape(B // m, m, C, S)
    mean = xv.mean((1, 3), keepdim=True)
    var = (xv - mean).square().mean((1, 3), keepdim=True)
    y = torch.addcmul(b.view(1, 1, C, 1), (xv - mean) * torch.rsqrt(var + eps),
                      w.view(1, 1, C, 1))
    return y.reshape(B, C, S), mean.detach().reshape(-1, C), var.detach().reshape(-1, C)


class _GhostFn(torch.autograd.Function):
    r"""Ghost BN on ``(B, C, S)`` with ``B = k m``: BN of each chunk ``(m, C, S)``.

    Outputs ``(y, mean, var)`` per (chunk, channel), ``(k, C)``, biased. Per chunk, with
    :math:`P = \gamma s`, :math:`n = mS`: :math:`\partial L/\partial x = P g - K x +
    (K\mu - P G/n)`, :math:`K = P s^2 (H - \mu G)/n` (BN's gradient, written out).
    """

    @staticmethod
    def forward(ctx, x, w, b, eps, m):
        B, C, S = x.shape
        k = B // m
        xv = x.view(k, m, C, S)
        mean = xv.mean((1, 3))
        var = _sq_norm_rows(xv - mean.view(k, 1, C, 1), 1) / (m * S)
        s = torch.rsqrt(var + eps)
        P = w.view(1, C) * s
        Q = torch.addcmul(b.view(1, C), mean, P, value=-1.0)
        ctx.save_for_backward(x, w, b)
        ctx.args, ctx.stats = (eps, m), (mean, s, P)
        ctx.mark_non_differentiable(mean, var)
        y = torch.addcmul(Q.view(k, 1, C, 1), xv, P.view(k, 1, C, 1))
        return y.view(B, C, S), mean, var

    @staticmethod
    def backward(ctx, gy, _gm, _gv):
        if torch.is_grad_enabled():
            return _reference_backward(ctx, _ghost_ref, (gy,))
        x, w, _ = ctx.saved_tensors
        B, C, S = x.shape
        m = ctx.args[1]
        k, n = B // m, m * S
        mean, s, P = ctx.stats
        xv, gv = x.view(k, m, C, S), gy.reshape(k, m, C, S)
        G, H = gv.sum((1, 3)), (gv * xv).sum((1, 3))
        Hc = torch.addcmul(H, mean, G, value=-1.0)  # sum g (x - mu) per (chunk, channel)
        K = P * s.square() * Hc / n
        const = K * mean - P * G / n
        dx = torch.addcmul(const.view(k, 1, C, 1), xv, K.view(k, 1, C, 1), value=-1.0)
        dx.addcmul_(gv, P.view(k, 1, C, 1))
        return dx.view(B, C, S), (s * Hc).sum(0), G.sum(0), None, None


def _center_ref(x):
    return x - x.mean(tuple(range(1, x.dim())), keepdim=True)


class _CenterFn(torch.autograd.Function):
    r""":math:`x - \mu^i(x)` per sample; backward :math:`g - \mu^i(g)` (linear, so exact)."""

    @staticmethod
    def forward(ctx, x):
        dims = tuple(range(1, x.dim()))
        ctx.dims = dims
        return x - x.mean(dims, keepdim=True)

    @staticmethod
    def backward(ctx, g):
        return g - g.mean(ctx.dims, keepdim=True)


def _var_only_ref(x, w, b, eps, centered):
    mean = x.mean((0, 2)) if centered else x.new_zeros(x.shape[1])
    var = (x - mean.view(1, -1, 1)).square().mean((0, 2))
    y = torch.addcmul(b.view(1, -1, 1), x, (w * torch.rsqrt(var + eps)).view(1, -1, 1))
    return y, mean.detach(), var.detach()


class _VarOnlyFn(torch.autograd.Function):
    r""":math:`y = \gamma_c x\, s_c + \beta_c`, :math:`s_c = (v_c + \epsilon)^{-1/2}`.

    :math:`v_c` the batch variance about :math:`\mu_c` (``centered``) or about 0. Outputs
    ``(y, mean, var)`` (biased). :math:`\partial L/\partial x = \gamma_c s_c g -
    k_c (x - \mu_c)`, :math:`k_c = \gamma_c s_c^3 \sum_{n,s} g x / n`.
    """

    @staticmethod
    def forward(ctx, x, w, b, eps, centered):
        B, C, S = x.shape
        n = B * S
        mean = x.mean((0, 2)) if centered else x.new_zeros(C)
        var = _sq_norm_rows(x - mean.view(1, C, 1) if centered else x, 0) / n
        s = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, w, b)
        ctx.args, ctx.mean, ctx.s = (eps, centered), mean, s
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(b.view(1, C, 1), x, (w * s).view(1, C, 1)), mean, var

    @staticmethod
    def backward(ctx, gy, _gm, _gv):
        if torch.is_grad_enabled():
            return _reference_backward(ctx, _var_only_ref, (gy,))
        x, w, _ = ctx.saved_tensors
        B, C, S = x.shape
        mean, s = ctx.mean, ctx.s
        G, H = _gh(gy, x)
        Hc = H.sum(0)
        k = w * s.pow(3) * Hc / (B * S)
        dx = torch.addcmul((k * mean).view(1, C, 1), x, k.view(1, C, 1), value=-1.0)
        dx.addcmul_(gy, (w * s).view(1, C, 1))
        return dx, s * Hc, G.sum(0), None, None


def _bmlv_ref(x, w, b, eps):
    mean_b = x.mean((0, 2), keepdim=True)
    var_i = (x - x.mean((1, 2), keepdim=True)).square().mean((1, 2), keepdim=True)
    y = torch.addcmul(b.view(1, -1, 1), x - mean_b, w.view(1, -1, 1) * torch.rsqrt(var_i + eps))
    return y, mean_b.detach().flatten()


class _BMLVFn(torch.autograd.Function):
    r"""BMLV: :math:`y = \gamma_c (x - \mu^B_c) s_n + \beta_c`, :math:`s_n = 1/\sigma^i_n`.

    Outputs ``(y, mu_B)``. With :math:`P_{nc} = \gamma_c s_n`:
    :math:`\partial L/\partial x = P g - A_c - k_n (x - \mu^i_n)`,
    :math:`A_c = \sum_n P_{nc} G_{nc} / (BS)`,
    :math:`k_n = s_n^3 \sum_c \gamma_c (H_{nc} - \mu^B_c G_{nc}) / N_l`.
    """

    @staticmethod
    def forward(ctx, x, w, b, eps):
        B, C, S = x.shape
        mean_b = x.mean((0, 2))
        mean_i = x.mean((1, 2))
        s = torch.rsqrt(_sq_norm(x - mean_i.view(B, 1, 1), (1, 2)) / (C * S) + eps)
        P = w.view(1, C) * s.view(B, 1)
        Q = torch.addcmul(b.view(1, C), P, mean_b.view(1, C), value=-1.0)
        ctx.save_for_backward(x, w, b)
        ctx.args, ctx.stats = (eps,), (mean_b, mean_i, s, P)
        ctx.mark_non_differentiable(mean_b)
        return torch.addcmul(Q.unsqueeze(2), x, P.unsqueeze(2)), mean_b

    @staticmethod
    def backward(ctx, gy, _gm):
        if torch.is_grad_enabled():
            return _reference_backward(ctx, _bmlv_ref, (gy,))
        x, w, _ = ctx.saved_tensors
        B, C, S = x.shape
        mean_b, mean_i, s, P = ctx.stats
        G, H = _gh(gy, x)
        sG = s @ G  # sum_n s_n G_nc
        k = s.pow(3) * (H @ w - G @ (w * mean_b)) / (C * S)  # sum_c w_c (H - mu_B G)
        A = w * sG / (B * S)
        const = (k * mean_i).view(B, 1, 1) - A.view(1, C, 1)
        dx = torch.addcmul(const, x, k.view(B, 1, 1), value=-1.0)
        dx.addcmul_(gy, P.unsqueeze(2))
        return dx, s @ H - mean_b * sG, G.sum(0), None


def _lmbv_ref(x, w, b, eps):
    var_b = (x - x.mean((0, 2), keepdim=True)).square().mean((0, 2), keepdim=True)
    y = torch.addcmul(b.view(1, -1, 1), x - x.mean((1, 2), keepdim=True),
                      w.view(1, -1, 1) * torch.rsqrt(var_b + eps))
    return y, var_b.detach().flatten()


class _LMBVFn(torch.autograd.Function):
    r"""LMBV: :math:`y = \gamma_c (x - \mu^i_n) s_c + \beta_c`, :math:`s_c = 1/\sigma^B_c`.

    Outputs ``(y, var_B)`` (biased). With :math:`P_c = \gamma_c s_c`:
    :math:`\partial L/\partial x = P g - R_n - k_c (x - \mu^B_c)`,
    :math:`R_n = \sum_c P_c G_{nc} / N_l`,
    :math:`k_c = \gamma_c s_c^3 \sum_n (H_{nc} - \mu^i_n G_{nc}) / (BS)`.
    """

    @staticmethod
    def forward(ctx, x, w, b, eps):
        B, C, S = x.shape
        mean_b = x.mean((0, 2))
        mean_i = x.mean((1, 2))
        var = _sq_norm_rows(x - mean_b.view(1, C, 1), 0) / (B * S)
        s = torch.rsqrt(var + eps)
        P = w * s
        Q = torch.addcmul(b.view(1, C), mean_i.view(B, 1), P.view(1, C), value=-1.0)
        ctx.save_for_backward(x, w, b)
        ctx.args, ctx.stats = (eps,), (mean_b, mean_i, s, P)
        ctx.mark_non_differentiable(var)
        return torch.addcmul(Q.unsqueeze(2), x, P.view(1, C, 1)), var

    @staticmethod
    def backward(ctx, gy, _gv):
        if torch.is_grad_enabled():
            return _reference_backward(ctx, _lmbv_ref, (gy,))
        x, w, _ = ctx.saved_tensors
        B, C, S = x.shape
        mean_b, mean_i, s, P = ctx.stats
        G, H = _gh(gy, x)
        Hc = H.sum(0) - mean_i @ G  # sum_{n,s} g (x - mu_i)
        k = w * s.pow(3) * Hc / (B * S)
        R = G @ P / (C * S)
        const = (k * mean_b).view(1, C, 1) - R.view(B, 1, 1)
        dx = torch.addcmul(const, x, k.view(1, C, 1), value=-1.0)
        dx.addcmul_(gy, P.view(1, C, 1))
        return dx, s * Hc, G.sum(0), None


# =============================================================================== ghost BN
class GhostBatchNorm(_Norm):
    r"""Ghost batch normalization (Hoffer, Hubara & Soudry 2017, "Train longer...", Alg. 1).

    The batch of :math:`B` samples is cut into :math:`k = \lfloor B/m \rfloor` consecutive
    chunks :math:`G_j` of ``virtual_batch_size`` :math:`m` samples (the
    :math:`B \bmod m` leftover samples join the last chunk; :math:`B \le m` is one chunk,
    i.e. plain BN), each normalized by its own statistics over :math:`(N, H, W)`:

    .. math::

        \hat z_{ncs} = \frac{z_{ncs} - \mu^{G_j}_c}{\sqrt{(\sigma^{G_j}_c)^2 + \epsilon}},
        \quad n \in G_j, \qquad y = \gamma \hat z + \beta .

Running statistics take one step per forward call with the *average over chunks*
    of the chunk mean and of the unbiased chunk variance,
    :math:`r_\mu \leftarrow (1-m_o) r_\mu + m_o \frac1k\sum_j \mu^{G_j}` (and likewise
    for the variance; what ``F.instance_norm`` does with running stats); with
    :math:`m \ge B` the layer is exactly ``BatchNorm`` (running stats included). All
    chunks are normalized at once on a ``(k, m, C, HW)`` view (no loop), except when
    :math:`B` is not a multiple of :math:`m`.
    Evaluation uses the running statistics, like BN.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    virtual_batch_size : int
        Chunk size :math:`m \ge 2`.
    eps : float
        :math:`\epsilon`.
    momentum : float
        :math:`m_o` of the running averages.
    """

    def __init__(self, num_channels: int, dim: int = 2, virtual_batch_size: int = 32,
                 eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        self.virtual_batch_size = check_int("virtual_batch_size", virtual_batch_size, 2)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        B, C, m = x.shape[0], self.num_channels, self.virtual_batch_size
        if B <= m:
            self._need_two(self._per_channel_count(x))
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                True, self.momentum, self.eps)
        if B % m == 0:
            n = m * (x.numel() // (B * C))
            self._need_two(n)
            y, mean, var = _run(_GhostFn, _ghost_ref, self._x3(x), self.weight, self.bias,
                                 self.eps, m)
            with torch.no_grad():
                self.running_mean.lerp_(mean.mean(0), self.momentum)
                self.running_var.lerp_(_unbiased(var, n).mean(0), self.momentum)
            return y.view(x.shape)
        return self._ragged(x)

    def _ragged(self, x: torch.Tensor) -> torch.Tensor:
        """Rare path (``B`` not a multiple of ``m``): chunks of ``m``, the rest in the last."""
        m = self.virtual_batch_size
        k = x.shape[0] // m
        sizes = [m] * (k - 1) + [x.shape[0] - m * (k - 1)]
        outs, means, variances = [], [], []
        for chunk in torch.split(x, sizes):
            n = self._per_channel_count(chunk)
            self._need_two(n)
            mean = chunk.mean(self._batch_axes, keepdim=True)
            var = (chunk - mean).square().mean(self._batch_axes, keepdim=True)
            outs.append((chunk - mean) * torch.rsqrt(var + self.eps))
            means.append(mean.detach().flatten())
            variances.append(_unbiased(var.detach().flatten(), n))
        with torch.no_grad():
            self.running_mean.lerp_(torch.stack(means).mean(0), self.momentum)
            self.running_var.lerp_(torch.stack(variances).mean(0), self.momentum)
        return self._affine(torch.cat(outs))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", virtual_batch_size={self.virtual_batch_size}, "
                f"momentum={self.momentum:g}")


# ======================================================================== batch renorm
class BatchRenorm(_Norm):
    r"""Batch renormalization (Ioffe 2017, "Batch Renormalization", Algorithm 1).

    With the batch statistics :math:`\mu_B`, :math:`\sigma_B = \sqrt{(\sigma^B)^2+\epsilon}`
    and running :math:`\mu, \sigma` (buffers ``running_mean``, ``running_std``):

    .. math::

        r = \mathrm{sg}\Big[\mathrm{clip}_{[1/r_{\max},\, r_{\max}]}
            \frac{\sigma_B}{\sigma}\Big], \quad
        d = \mathrm{sg}\Big[\mathrm{clip}_{[-d_{\max},\, d_{\max}]}
            \frac{\mu_B - \mu}{\sigma}\Big], \quad
        y = \gamma\Big(\frac{z - \mu_B}{\sigma_B}\, r + d\Big) + \beta,

    :math:`\mathrm{sg}` = stop-gradient (``r`` and ``d`` are treated as constants, as in
    the paper), then :math:`\mu \leftarrow \mu + m(\mu_B - \mu)`,
    :math:`\sigma \leftarrow \sigma + m(\sigma_B - \sigma)` (the paper averages the
    *standard deviation*, with :math:`\epsilon` inside, initialized to 1). Evaluation:
    :math:`y = \gamma (z - \mu)/\sigma + \beta`. With :math:`r_{\max} = 1, d_{\max} = 0`
    it is BN; the paper ramps from there to :math:`r_{\max} = 3, d_{\max} = 5` (the
    defaults here) -- a schedule is set by assigning the ``r_max`` / ``d_max``
    attributes during training.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    r_max : float
        :math:`r_{\max} \ge 1`.
    d_max : float
        :math:`d_{\max} \ge 0`.
    eps : float
        :math:`\epsilon`.
    momentum : float
        :math:`m` (the paper's :math:`\alpha`).
    """

    def __init__(self, num_channels: int, dim: int = 2, r_max: float = 3.0,
                 d_max: float = 5.0, eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        self.r_max = check_real("r_max", r_max, 1.0)
        self.d_max = check_real("d_max", d_max, 0.0)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_std", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            inv = 1.0 / self._c(self.running_std)
            return self._affine(x - self._c(self.running_mean), inv)
        self._need_two(self._per_channel_count(x))
        with torch.no_grad():
            x3 = self._x3(x)
            mean = x3.mean((0, 2))
            std = torch.sqrt(_sq_norm_rows(x3 - mean.view(1, -1, 1), 0) / x3[:, 0].numel()
                             + self.eps)
            r = (std / self.running_std).clamp_(1.0 / self.r_max, self.r_max)
            d = ((mean - self.running_mean) / self.running_std).clamp_(-self.d_max, self.d_max)
        # gamma (r xhat + d) + beta = BN with weight gamma r and bias beta + gamma d
        w = r if self.weight is None else self.weight * r
        b = d if self.weight is None else self.weight * d
        b = b if self.bias is None else b + self.bias
        y = F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_std.lerp_(std, self.momentum)
        return y

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", r_max={self.r_max:g}, d_max={self.d_max:g}, "
                f"momentum={self.momentum:g}")


# ================================================================ population normalization
class PopulationNorm(_Norm):
    r"""Population normalization, PN (Luo et al. 2019, eq. 3 and Sec. 5, "PN + gamma decay").

    .. math::

        y = \gamma\, \frac{z - \mu^P}{\sqrt{(\sigma^P)^2 + \epsilon}} + \beta,

    with :math:`\mu^P_c, (\sigma^P_c)^2` (buffers ``population_mean``,
    ``population_var``) the mean and *biased* (population) variance over
    :math:`(N, H, W)` of this layer's input over a whole data set, computed by
    :func:`refresh_population_stats` (Luo et al. use 10k training samples). The output
    never depends on the other samples of the batch, in training or evaluation: PN is
    BN without the batch noise, which Luo et al. replace by an explicit gamma decay
    (``deep.penalties``).

    Before the first refresh the statistics are :math:`\mu^P = 0`,
    :math:`(\sigma^P)^2 = 1` (an affine layer, still batch-independent) -- refresh once
    before training and then periodically. The buffer ``num_refreshes`` counts
    refreshes (saved in the ``state_dict``). During the *first* sweep of the first
    refresh only, the layer normalizes with the statistics of each batch (as
    ``bn-train``), so that downstream layers see nearly normalized inputs from the
    start instead of the 0/1 placeholder.

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
        super().__init__(num_channels, dim, eps)
        self.register_buffer("population_mean", torch.zeros(num_channels))
        self.register_buffer("population_var", torch.ones(num_channels))
        self.register_buffer("num_refreshes", torch.zeros((), dtype=torch.long))
        self._acc: list | None = None  # [count, mean (C,), M2 (C,)] in float64 while collecting
        self._bootstrap = False  # first sweep ever: normalize by batch statistics
        self._sweep: _LockStepSweep | None = None  # set during an exact one-sweep refresh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self._sweep is not None:
            self._sweep.arrive(self, x)  # returns once every batch is in: exact statistics
        elif self._acc is not None:
            self._collect(x)
            if self._bootstrap and self._per_channel_count(x) > 1:
                return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.population_mean, self.population_var, self.weight,
                            self.bias, False, 0.0, self.eps)

    # --- collection (driven by refresh_population_stats) ---------------------------
    def _begin_collect(self) -> None:
        self._acc = [0, None, None]
        self._bootstrap = int(self.num_refreshes) == 0

    @torch.no_grad()
    def _collect(self, x: torch.Tensor) -> None:
        """Merge this batch into the running (count, mean, M2) -- Chan et al.'s update."""
        xd = self._x3(x.detach()).to(torch.float64)
        n_b = xd.shape[0] * xd.shape[2]
        mean_b = xd.mean((0, 2))
        m2_b = _sq_norm_rows(xd - mean_b.view(1, -1, 1), 0)
        n_a, mean_a, m2_a = self._acc
        if n_a == 0:
            self._acc = [n_b, mean_b, m2_b]
            return
        n = n_a + n_b
        delta = mean_b - mean_a
        self._acc = [n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)]

    @torch.no_grad()
    def _end_collect(self) -> bool:
        n, mean, m2 = self._acc
        self._acc, self._bootstrap = None, False
        if n == 0:
            return False
        self.population_mean.copy_(mean)
        self.population_var.copy_(m2 / n)
        self.num_refreshes += 1
        return True


class _NotLockStep(RuntimeError):
    """The batches did not meet the PN layers in one common order (one sweep cannot be exact)."""


class _Aborted(Exception):
    """Raised in the other batches' threads when one of them failed."""


class _LockStepSweep:
    r"""One forward pass per batch, each in its own thread, in lock step at the PN layers.

    Exactly one thread runs at a time; the turn goes round 0, 1, ..., K - 1, 0, ... .
    A thread gives up its turn when its forward reaches a :class:`PopulationNorm` (after
    merging its input into the layer's accumulator) or ends. When the last batch reaches
    a layer, the layer's statistics are final -- every batch's input is in -- and are
    written to its buffers; then every thread continues through that layer with them.
    So each layer normalizes with the exact statistics of its inputs, the inputs computed
    with the exact statistics of every PN layer upstream: what ``passes = number of PN
    layers`` sweeps reach, at the cost of one sweep. The merge order (batch 0, 1, ...)
    is the sweeps' order, so the float64 accumulators see the same sums.

    Memory: while a layer waits for the last batch, every batch's live tensors (the
    layer's input, and skip connections) are held at once, i.e. about ``samples x``
    the largest PN input per sample (plus open skips), in the model's dtype.
    """

    def __init__(self, n_batches: int):
        self.n = n_batches
        self.go = [threading.Event() for _ in range(n_batches)]  # go[i]: batch i's turn
        self.error: BaseException | None = None
        self.round: object = None  # the layer (or "end") the current round is at
        self.final: set = set()  # ids of layers whose statistics this sweep finalized
        self.local = threading.local()

    def _pass_turn(self, i: int, wait: bool = True) -> None:
        self.go[i].clear()  # before waking the next: with one batch, the next is i itself
        self.go[(i + 1) % self.n].set()
        if wait:
            self._wait(i)

    def _wait(self, i: int) -> None:
        self.go[i].wait()
        if self.error is not None:
            raise _Aborted

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        for go in self.go:
            go.set()

    def _enter_round(self, i: int, where: object) -> None:
        if i == 0:
            self.round = where
        elif self.round is not where:
            raise _NotLockStep("the batches reached the PN layers in different orders")

    def arrive(self, layer: PopulationNorm, x: torch.Tensor) -> None:
        """Batch ``i``'s input at ``layer``: merge it; wait until the statistics are final."""
        i = self.local.index
        if id(layer) in self.final:
            first = self.local.first_input.get(id(layer))
            if first is not None and first[0]() is x and first[1] == x._version:
                return  # the very same input again (a recomputed pre-activation): counted
            raise _NotLockStep("a PN layer was called twice in one forward pass")
        self.local.first_input[id(layer)] = (weakref.ref(x), x._version)
        self._enter_round(i, layer)
        if i == 0:
            layer._begin_collect()
        layer._collect(x)
        if i == self.n - 1:
            layer._end_collect()
            self.final.add(id(layer))
        self._pass_turn(i)

    def run(self, model: nn.Module, inputs: list) -> None:
        """Run ``model`` on every input in lock step; re-raise the first failure."""
        def work(i: int, x: torch.Tensor) -> None:
            self.local.index, self.local.first_input = i, {}
            try:
                self._wait(i)
                with torch.no_grad():  # grad mode is per thread
                    model(x)
                self._enter_round(i, "end")
                self._pass_turn(i, wait=False)
            except _Aborted:
                pass
            except BaseException as exc:  # handed to the caller below
                self._fail(exc)

        threads = [threading.Thread(target=work, args=(i, x), daemon=True,
                                    name=f"pn-refresh-{i}") for i, x in enumerate(inputs)]
        self.go[0].set()
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException as exc:  # e.g. KeyboardInterrupt: release the workers
            self._fail(exc)
            raise
        if self.error is not None:
            raise self.error


def refresh_population_stats(model: nn.Module, batches, *, passes: int | None = 2) -> None:
    r"""Recompute :math:`\mu^P, (\sigma^P)^2` of every :class:`PopulationNorm` in ``model``.

    Runs every batch of ``batches`` through ``model`` under ``torch.no_grad()`` with
    the whole model in ``eval()`` mode (dropout off, BN layers on running stats; each
    module's ``training`` flag is restored afterwards). Each PN layer accumulates, in
    float64 with Chan et al.'s pairwise update, the exact mean and biased variance per
    channel of its input over all samples and positions, and replaces its statistics
    with them.

    Layers later in the net see inputs normalized by earlier PN layers, so a sweep
    that updates every layer at its end is not exact. ``passes=k`` does ``k`` such
    sweeps, each using the statistics of the previous one: after sweep :math:`k` the
    first :math:`k` PN layers along every path (in call order) hold the exact
    population statistics of the data *given the exact statistics upstream*; the
    default 2 is exact for the first two and close for the rest when the previous
    statistics were recent (periodic refreshes during training). On a layer's very
    first refresh, its first sweep normalizes by batch statistics (see
    :class:`PopulationNorm`), so the default is close from the start too (exact, in one
    sweep, when ``batches`` is a single batch).

    ``passes=None`` makes every layer exact in **one** sweep: the batches run in lock
    step (one thread each, one at a time, see :class:`_LockStepSweep`), and each PN
    layer's statistics are finalized once all batches have reached it, before any batch
    goes on. The result equals that of one sweep per PN layer (``passes=`` their number,
    the previous meaning of ``None``) up to float rounding, at the memory cost of holding
    every batch's activations at the widest PN input at once (about
    ``samples x C x H x W`` values). Should the batches not meet the PN layers in one
    common order (a layer called twice per forward, data-dependent control flow), it
    falls back to one sweep per PN layer. ``num_refreshes`` counts one per refresh here
    and one per sweep otherwise.

    Parameters
    ----------
    model : torch.nn.Module
        Model containing :class:`PopulationNorm` layers (a no-op when it has none).
    batches : iterable
        Input batches: tensors, or tuples/lists whose first entry is the input (as a
        ``DataLoader`` yields). Moved to the model's device. A one-shot iterator is
        materialized into a list so that it can be swept ``passes`` times.
    passes : int or None
        Number of sweeps (>= 1), or ``None`` for exact statistics in one sweep.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), make_norm("pn", 4, dim=1), nn.ReLU(),
    ...                     nn.Linear(4, 2), make_norm("pn", 2, dim=1))
    >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> refresh_population_stats(net, x.split(25), passes=None)
    >>> h = net[3](net[2](net[1](net[0](x))))   # the second layer's input, exact stats upstream
    >>> torch.allclose(net[4].population_var, h.var(0, correction=0), rtol=1e-5)
    True
    """
    layers = [m for m in model.modules() if isinstance(m, PopulationNorm)]
    if not layers:
        return
    if passes is not None:
        passes = check_int("passes", passes, 1)
    if iter(batches) is batches:
        batches = list(batches)
    try:
        device = next(t for t in (*model.parameters(), *model.buffers())).device
    except StopIteration:  # pragma: no cover - a PN layer always has buffers
        device = torch.device("cpu")
    inputs = [(b[0] if isinstance(b, (tuple, list)) else b).to(device) for b in batches]
    if not inputs:
        raise ValueError("batches must hold at least one batch, got none")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        if passes is None:
            sweep = _LockStepSweep(len(inputs))
            saved = [{k: b.clone() for k, b in layer.named_buffers()} for layer in layers]
            for layer in layers:
                layer._sweep = sweep
            try:
                sweep.run(model, inputs)
                return
            except _NotLockStep:  # start the per-layer sweeps from the same state
                passes = len(layers)
                with torch.no_grad():
                    for layer, state in zip(layers, saved, strict=True):
                        for k, b in layer.named_buffers():
                            b.copy_(state[k])
            finally:
                for layer in layers:
                    layer._sweep, layer._acc, layer._bootstrap = None, None, False
        with torch.no_grad():
            for _ in range(passes):
                for layer in layers:
                    layer._begin_collect()
                for x in inputs:
                    model(x)
                for layer in layers:
                    layer._end_collect()
    finally:
        for layer in layers:
            layer._acc, layer._bootstrap, layer._sweep = None, False, None
        for m, mode in modes:
            m.training = mode


# ======================================================================== mean / var only
class MeanOnlyBatchNorm(_Norm):
    r"""Mean-only batch normalization (Salimans & Kingma 2016, Sec. 3; Luo et al. Sec. 5).

    .. math::

        y = z - \mu^B + \beta \quad\text{(training)}, \qquad
        y = z - \mu_{\rm run} + \beta \quad\text{(evaluation)},

    no division and no :math:`\gamma` (the scale comes from the weight-normalized op:
    Luo et al.'s "WN + mean-only BN", ``wn+bn-mean``, isolates the :math:`\mu_B`
    noise). The module has ``bias`` and ``weight = None``.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    momentum : float
        Of the running mean ``running_mean``.
    """

    def __init__(self, num_channels: int, dim: int = 2, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, EPS, weight=False)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return x + (self._c(self.bias) - self._c(self.running_mean))
        mean = x.mean(self._batch_axes, keepdim=True)
        with torch.no_grad():
            self.running_mean.lerp_(mean.flatten(), self.momentum)
        return x + (self._c(self.bias) - mean)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, dim={self.dim}, momentum={self.momentum:g}"


class VarianceOnlyBatchNorm(_Norm):
    r"""Variance-only batch normalization (Luo et al. 2019, Sec. 5, "WN + variance-only BN").

    .. math::

        y = \gamma\, \frac{z}{\sqrt{s^2 + \epsilon}} + \beta, \qquad
        s^2 = (\sigma^B)^2 = \frac{1}{BHW}\sum_{n,s}(z - \mu^B)^2
        \quad (\texttt{centered=True}),

    and at evaluation :math:`s^2` = the running unbiased batch variance. The mean is
    *not* subtracted. Luo et al. give no formula; they build it to carry BN's
    :math:`\sigma_B` noise without the :math:`\mu_B` noise (mean-only BN carries the
    other half), and their :math:`\sigma_B` (eq. 2, prior
    :math:`\sigma_B \sim N(\sigma_P, (\rho+2)/(4M))`) is the batch standard deviation
    about the batch mean -- so that is the default. ``centered=False`` uses the second
    moment about zero, :math:`s^2 = \frac{1}{BHW}\sum z^2` (running average of that
    moment at evaluation): this is ``theory.batchnorm``'s variance-only BN
    (``centered=False``, known mean) when the population mean is 0, but its scale then
    also carries :math:`\mu_B^2` noise.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    centered : bool
        Batch variance about the batch mean (default) or second moment about zero.
    eps : float
        :math:`\epsilon`.
    momentum : float
        Of the running statistic ``running_var``.
    """

    def __init__(self, num_channels: int, dim: int = 2, centered: bool = True,
                 eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        if not isinstance(centered, bool):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = centered
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_var", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return self._affine(x, self._c(torch.rsqrt(self.running_var + self.eps)))
        n = self._per_channel_count(x)
        if self.centered:
            self._need_two(n)
        y, _, var = _run(_VarOnlyFn, _var_only_ref, self._x3(x), self.weight, self.bias,
                         self.eps, self.centered)
        with torch.no_grad():
            self.running_var.lerp_(_unbiased(var, n) if self.centered else var, self.momentum)
        return y.view(x.shape)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", centered={self.centered}, momentum={self.momentum:g}"


# ================================================================== layer / group / instance
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


# ============================================================================ BMLV / LMBV
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


# ============================================================ PreLayerNorm / RegNorm family
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


# =============================================================================== registry
def _identity(num_channels: int, dim: int) -> nn.Module:
    return nn.Identity()


def _bn(num_channels: int, dim: int, eps: float = EPS, momentum: float = MOMENTUM):
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(num_channels, eps=check_real("eps", eps, 0.0, lo_open=True),
               momentum=_check_momentum(momentum))


def _bn_train(num_channels: int, dim: int, eps: float = EPS):
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(num_channels, eps=check_real("eps", eps, 0.0, lo_open=True),
               track_running_stats=False)


@dataclass(frozen=True)
class NormSpec:
    """One registry entry: how to build a normalizer and what it does.

    Attributes
    ----------
    name : str
        CLI name.
    factory : callable
        ``factory(num_channels, dim, **options) -> nn.Module`` (the layer part).
    summary : str
        One line: what the layer computes.
    source : str
        Paper and section.
    options : mapping
        Accepted options and their defaults.
    layer : str
        Name of the layer part (``split_norm(name)[1]``).
    weight_norm : bool
        The preceding conv/linear gets :func:`apply_weight_norm`.
    pre_centering : bool
        The preceding conv/linear gets :func:`apply_pre_centering`.
    batch_train : bool
        In training, a sample's output depends on the other samples of its batch.
    batch_eval : bool
        Same, in evaluation.
    regularized : bool
        The layer exposes a penalty (``regularizer()``, ``last_batch_mean``).
    """

    name: str
    factory: Callable[..., nn.Module] = field(repr=False)
    summary: str
    source: str
    options: Mapping[str, object] = field(default_factory=dict)
    layer: str = ""
    weight_norm: bool = False
    pre_centering: bool = False
    batch_train: bool = False
    batch_eval: bool = False
    regularized: bool = False

    def __post_init__(self):
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))
        if not self.layer:
            object.__setattr__(self, "layer", self.name)

    def to_dict(self) -> dict:
        """Plain-dict view for JSON (without the factory)."""
        return {"name": self.name, "summary": self.summary, "source": self.source,
                "options": dict(self.options), "layer": self.layer,
                "weight_norm": self.weight_norm, "pre_centering": self.pre_centering,
                "batch_train": self.batch_train, "batch_eval": self.batch_eval,
                "regularized": self.regularized}


_EM = {"eps": EPS, "momentum": MOMENTUM}
_BASE = [
    NormSpec("none", _identity, "no normalization (identity)", "-"),
    NormSpec("bn", _bn, "batch norm; running stats at eval (torch BatchNorm)",
             "Ioffe & Szegedy 2015", _EM, batch_train=True),
    NormSpec("bn-train", _bn_train, "batch norm with batch stats at eval too",
             "Rao & Sohl-Dickstein 2020, 'Batch-Train' (Table 3, Fig. 5)", {"eps": EPS},
             batch_train=True, batch_eval=True),
    NormSpec("ghost-bn", GhostBatchNorm, "BN within chunks of virtual_batch_size samples",
             "Hoffer et al. 2017, Alg. 1", {"virtual_batch_size": 32, **_EM},
             batch_train=True),
    NormSpec("batch-renorm", BatchRenorm, "batch renormalization with r, d corrections",
             "Ioffe 2017, Alg. 1", {"r_max": 3.0, "d_max": 5.0, **_EM}, batch_train=True),
    NormSpec("pn", PopulationNorm, "normalization by population statistics of the data",
             "Luo et al. 2019, eq. 3 and Sec. 5", {"eps": EPS}),
    NormSpec("wn", _identity, "weight norm on the preceding op, no layer",
             "Salimans & Kingma 2016", layer="none", weight_norm=True),
    NormSpec("bn-mean", MeanOnlyBatchNorm, "mean-only BN: z - mu_B + beta",
             "Salimans & Kingma 2016 Sec. 3; Luo et al. 2019 Sec. 5",
             {"momentum": MOMENTUM}, batch_train=True),
    NormSpec("bn-var", VarianceOnlyBatchNorm, "variance-only BN: gamma z / sigma_B + beta",
             "Luo et al. 2019 Sec. 5 (our reading)", {"centered": True, **_EM},
             batch_train=True),
    NormSpec("ln", LayerNorm, "layer norm over (C, H, W), per-channel affine",
             "Ba et al. 2016; Rao & Sohl-Dickstein Table 1", {"eps": EPS}),
    NormSpec("gn", GroupNorm, "group norm", "Wu & He 2018", {"groups": 32, "eps": EPS}),
    NormSpec("in", InstanceNorm, "instance norm with affine", "Ulyanov et al. 2016",
             {"eps": EPS}),
    NormSpec("bmlv", BatchMeanLayerVar, "batch mean, layer std",
             "Rao & Sohl-Dickstein 2020, Table 1", {"track_running_stats": False, **_EM},
             batch_train=True, batch_eval=True),
    NormSpec("lmbv", LayerMeanBatchVar, "layer mean, batch std",
             "Rao & Sohl-Dickstein 2020, Table 1", {"track_running_stats": False, **_EM},
             batch_train=True, batch_eval=True),
    NormSpec("pre-ln", PreLayerNorm, "layer mean removed before the op, layer RMS after",
             "Rao & Sohl-Dickstein 2020, Sec. 3.1, Table 1",
             {"eps": EPS, "check_centering": True}, pre_centering=True),
    NormSpec("regnorm", RegNorm, "layer RMS normalization + batch-mean penalty",
             "Rao & Sohl-Dickstein 2020, Sec. 3.2, App. B", {"eps": EPS}, regularized=True),
    NormSpec("pre-regnorm", PreRegNorm, "pre-ln's layer with regnorm's penalty",
             "Rao & Sohl-Dickstein 2020, Table 3 note", {"eps": EPS, "check_centering": True},
             pre_centering=True, regularized=True),
]


def _composite(layer: NormSpec) -> NormSpec:
    return NormSpec(f"wn+{layer.name}", layer.factory, f"weight norm + {layer.summary}",
                    f"Luo et al. 2019 Sec. 5 (L-F2cd); {layer.source}", layer.options,
                    layer=layer.name, weight_norm=True, pre_centering=layer.pre_centering,
                    batch_train=layer.batch_train, batch_eval=layer.batch_eval,
                    regularized=layer.regularized)


_by_name = {s.name: s for s in _BASE}
NORMS: dict[str, NormSpec] = {
    **_by_name, **{f"wn+{n}": _composite(_by_name[n]) for n in ("bn", "bn-mean", "bn-var")}}
"""Registry of normalizers keyed by CLI name (see the module table)."""


def norm_names() -> tuple[str, ...]:
    """All registry names, in registry order."""
    return tuple(NORMS)


def _spec(name: str) -> NormSpec:
    return NORMS[check_choice("name", name, NORMS)]


def split_norm(name: str) -> tuple[bool, str]:
    """Split a registry name into (weight norm on the op?, layer name).

    Parameters
    ----------
    name : str
        A registry name.

    Returns
    -------
    tuple of (bool, str)
        ``"wn+bn-mean" -> (True, "bn-mean")``, ``"wn" -> (True, "none")``,
        ``"bn" -> (False, "bn")``.
    """
    s = _spec(name)
    return s.weight_norm, s.layer


def uses_weight_norm(name: str) -> bool:
    """Whether ``name`` reparametrizes the preceding conv/linear with weight norm."""
    return _spec(name).weight_norm


def uses_pre_centering(name: str) -> bool:
    """Whether ``name`` needs :func:`apply_pre_centering` on the preceding conv/linear."""
    return _spec(name).pre_centering


def make_norm(name: str, num_channels: int, *, dim: int = 2, **options) -> nn.Module:
    """Build the layer part of normalizer ``name`` for ``num_channels`` channels.

    Parameters
    ----------
    name : str
        A registry name (:func:`norm_names`); for ``wn+X`` the layer ``X`` is returned
        and the caller applies :func:`apply_weight_norm` to the preceding op.
    num_channels : int
        :math:`C` >= 1.
    dim : int
        2: input ``(B, C, H, W)``; 1: input ``(B, C)``.
    **options
        Options of that normalizer (``NORMS[name].options`` lists them with their
        defaults), e.g. ``virtual_batch_size``, ``groups``, ``r_max``, ``eps``.

    Returns
    -------
    torch.nn.Module
        The layer (``nn.Identity`` for ``none`` and ``wn``).
    """
    spec = _spec(name)
    num_channels = check_int("num_channels", num_channels, 1)
    dim = check_int("dim", dim, 1, 2)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ValueError(f"option {unknown[0]!r} is not accepted by norm {name!r}; "
                         f"valid options: {valid}")
    return spec.factory(num_channels, dim, **{**spec.options, **options})


def apply_weight_norm(module: nn.Module) -> nn.Module:
    r"""Weight-normalize ``module.weight`` per output unit (Salimans & Kingma 2016).

    :math:`W_o = g_o\, v_o / \lVert v_o\rVert` over all but the output dimension
    (``torch.nn.utils.parametrizations.weight_norm(module, name="weight", dim=0)``);
    the parameters become ``module.parametrizations.weight.original0`` (:math:`g`) and
    ``original1`` (:math:`v`).

    Parameters
    ----------
    module : torch.nn.Module
        A conv or linear layer (anything with a ``weight`` parameter).

    Returns
    -------
    torch.nn.Module
        The same module, reparametrized in place.
    """
    if not isinstance(getattr(module, "weight", None), nn.Parameter):
        raise ValueError(f"module must have a 'weight' parameter to weight-normalize, "
                         f"got {type(module).__name__}")
    return nn.utils.parametrizations.weight_norm(module, name="weight", dim=0)


def apply_pre_centering(module: nn.Module) -> nn.Module:
    r"""Make ``module`` see :math:`x - \mu^i(x)`: PreLayerNorm's pre-op half.

    Registers a forward pre-hook that subtracts from the first input each sample's
    mean over all its features (:math:`(C, H, W)` for a conv, the features for a
    linear layer). Idempotent. See :class:`PreLayerNorm`.

    Parameters
    ----------
    module : torch.nn.Module
        The conv or linear op preceding a ``pre-ln`` / ``pre-regnorm`` layer.

    Returns
    -------
    torch.nn.Module
        The same module, with the hook.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not getattr(module, "_pt_pre_centered", False):
        module.register_forward_pre_hook(_center_input_hook)
        module._pt_pre_centered = True
    return module


def prepare_op(module: nn.Module, name: str) -> nn.Module:
    """Apply to the op preceding normalizer ``name`` what the name asks for.

    Weight norm (:func:`apply_weight_norm`) for ``wn`` / ``wn+X``, pre-centering
    (:func:`apply_pre_centering`) for ``pre-ln`` / ``pre-regnorm``; otherwise nothing.

    Parameters
    ----------
    module : torch.nn.Module
        Conv or linear op.
    name : str
        Registry name of the normalizer that follows it.

    Returns
    -------
    torch.nn.Module
        The same module.
    """
    spec = _spec(name)
    if spec.weight_norm:
        module = apply_weight_norm(module)
    if spec.pre_centering:
        module = apply_pre_centering(module)
    return module

