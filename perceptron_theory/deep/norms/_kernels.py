"""Fused kernels: ``torch.autograd.Function`` s with hand-derived backward passes.

Used by ghost BN, variance-only BN, BMLV, LMBV, the RMS layer of PreLayerNorm /
RegNorm and pre-centering (design notes of :mod:`perceptron_theory.deep.norms`).
"""

from __future__ import annotations

import contextlib

import torch

from perceptron_theory.deep.norms._base import (
    _sq_norm,
    _sq_norm_rows,
)

__all__ = ["fused_kernels"]


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
