"""The ``propagation`` probe: how two noisy copies of a minibatch decorrelate through the
layers, in the representations and the weight gradients (R-F1, R-F3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_int, check_real
from ..data import derive_seed
from ._common import _data, _device, _plain, _positions, _raw_weight, _weight_layers, probe_copy


def _capture(net: nn.Module, positions, x: torch.Tensor, y: torch.Tensor, params):
    """Representations at ``positions`` (+ embedding, logits) and weight gradients."""
    reps: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _a, out: reps.append(out.detach()))
               for _, m in positions]
    try:
        emb = net.features(x)
        logits = net.classifier(emb)
    finally:
        for h in handles:
            h.remove()
    reps += [emb.detach(), logits.detach()]
    grads = torch.autograd.grad(F.cross_entropy(logits, y), params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    return reps, grads


def _cosine_rows(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double().flatten(1), b.double().flatten(1),
                                     dim=1, eps=1e-30).mean())


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float | None:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else None


def propagation_probe(model: nn.Module, data, *, noise: float = 0.1, n: int = 128,
                      split: str = "train", mode: str = "train", seed: int = 0) -> dict:
    r"""Correlation of two noisy copies of one minibatch through the layers (R-F1, R-F3).

    Rao & Sohl-Dickstein (2020, Sec. 4): for a minibatch :math:`x` (``n`` samples) and
    :math:`x^a = x + \epsilon_1`, :math:`x^b = x + \epsilon_2`, :math:`\epsilon \sim
    \mathcal N(0, \texttt{noise}^2)` i.i.d. per input entry, at every position :math:`l`
    (the output of every norm slot, then the embedding, then the logits):

    .. math::

        \texttt{rep\_corr}_l = \frac1n\sum_{i=1}^n
        \frac{\langle r_l(x^a)_i, r_l(x^b)_i\rangle}
             {\lVert r_l(x^a)_i\rVert\,\lVert r_l(x^b)_i\rVert},

    the cosine similarity of each sample's flattened representation, averaged
    (``rep_pearson``: the Pearson correlation of the two whole flattened minibatch
    representations). For the weight (or WN direction) of every conv/linear
    :math:`\theta_l` and the batch-mean cross entropy :math:`L`:
    ``grad_corr``:math:`_l = \cos(\nabla_{\theta_l} L(x^a), \nabla_{\theta_l} L(x^b))`,
    ``grad_norm``:math:`_l = \lVert\nabla_{\theta_l} L(x)\rVert` on the clean batch, and
    ``grad_ratio`` :math:`= \lVert\nabla_{\theta_1}L\rVert / \lVert\nabla_{\theta_L}L\rVert`
    (first over last layer, the classifier; Rao Fig. 3d). With ``mode="train"`` BN
    normalizes each copy by its own batch statistics, which couples the samples: the
    point of the measurement. ``noise = 0`` gives correlation 1 everywhere.

    Parameters
    ----------
    model : torch.nn.Module
        A ``deep.models`` net.
    data : DataBundle or (x, y)
        Source of the minibatch (and its labels for the gradients).
    noise : float
        Standard deviation of :math:`\epsilon` (>= 0), in units of the standardized
        inputs.
    n : int
        Minibatch size.
    split : {"train", "val", "test"}
        Split of a DataBundle.
    mode : {"train", "eval"}
        Normalization mode.
    seed : int
        Seed of the minibatch and the noise.

    Returns
    -------
    dict
        ``layers, rep_corr, rep_pearson, weight_layers, grad_corr, grad_norm,
        grad_ratio, noise, n, mode``.
    """
    noise = check_real("noise", noise, 0.0)
    n = check_int("n", n, 2)
    seed = check_int("seed", seed, 0)
    net = probe_copy(model, mode)
    x, y = _data(data, split, n, seed, _device(model))
    g = torch.Generator(device=x.device).manual_seed(derive_seed(seed, 2))
    xa = x + noise * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    xb = x + noise * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    positions = _positions(net)
    wl = _weight_layers(net)
    params = [_raw_weight(m) for _, m in wl]
    ra, ga = _capture(net, positions, xa, y, params)
    rb, gb = _capture(net, positions, xb, y, params)
    _, g0 = _capture(net, positions, x, y, params)
    gnorm = [float(t.double().norm()) for t in g0]
    ratio = gnorm[0] / gnorm[-1] if gnorm and gnorm[-1] > 0 else None
    return _plain({
        "layers": [nm for nm, _ in positions] + ["embedding", "logits"],
        "rep_corr": [_cosine_rows(a, b) for a, b in zip(ra, rb, strict=True)],
        "rep_pearson": [_pearson(a, b) for a, b in zip(ra, rb, strict=True)],
        "weight_layers": [nm for nm, _ in wl],
        "grad_corr": [_cosine_rows(a.reshape(1, -1), b.reshape(1, -1))
                      for a, b in zip(ga, gb, strict=True)],
        "grad_norm": gnorm, "grad_ratio": ratio, "noise": noise, "n": int(len(y)),
        "mode": mode,
    })
