"""Helpers shared by the probes: the private model copy, data selection, layer lookup,
JSON-ready output and the RNG guard.

:func:`probe_copy` is public (``probes.probe_copy``); the rest is private to the
``probes`` package.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import types
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..._checks import check_choice, check_int
from ..data import DataBundle
from ..models import NormSlot
from ..penalties import is_norm_layer

MODES = ("train", "eval")


def probe_copy(model: nn.Module, mode: str = "eval", dtype: torch.dtype | None = None
               ) -> nn.Module:
    r"""A private copy of ``model`` in normalization ``mode``, dropout off, stats frozen.

    Parameters
    ----------
    model : torch.nn.Module
        Any model (left untouched).
    mode : {"train", "eval"}
        ``"train"``: batch statistics (``model.train()``); ``"eval"``: running
        statistics. In both, every ``nn.Dropout`` is off and no running statistic is
        ever updated: torch BN layers get ``track_running_stats=False`` (in training
        mode they then use batch statistics without touching the buffers, in eval mode
        they still use the buffers), every other layer with a float ``momentum`` gets
        ``momentum = 0`` (its exponential averages stay put). Weight-normalized layers
        compute :math:`g\,v/\lVert v\rVert` from plain ops (:func:`_weight_norm_plain`):
        torch's fused kernel has a wrong second derivative.
    dtype : torch.dtype, optional
        Cast parameters and buffers (e.g. ``torch.float64`` for exact curvature).

    Returns
    -------
    torch.nn.Module
    """
    mode = check_choice("mode", mode, MODES)
    m = copy.deepcopy(model)
    if dtype is not None:
        m = m.to(dtype)
    m.train(mode == "train")
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.track_running_stats = False
        elif isinstance(getattr(mod, "momentum", None), float):
            mod.momentum = 0.0
        if isinstance(mod, nn.Dropout):
            mod.eval()
        if type(mod).__name__ == "_WeightNorm" and hasattr(mod, "dim"):
            mod.forward = types.MethodType(_weight_norm_plain, mod)
    return m


def _weight_norm_plain(self, weight_g: torch.Tensor, weight_v: torch.Tensor) -> torch.Tensor:
    r"""Weight norm :math:`W = g\, v/\lVert v\rVert` from plain ops (``_WeightNorm.forward``).

    Same value and gradient as torch's fused ``torch._weight_norm``, whose *second*
    derivative is wrong in torch 2.13 (its double backward gives an asymmetric Hessian,
    errors of order one); plain ops differentiate twice exactly and support forward mode.
    The norm runs over every axis but ``self.dim`` (all axes for ``dim = -1``).
    """
    dim = self.dim if self.dim is not None else -1
    axes = tuple(range(weight_v.dim())) if dim == -1 else tuple(
        a for a in range(weight_v.dim()) if a != dim % weight_v.dim())
    return weight_v * (weight_g / torch.linalg.vector_norm(weight_v, dim=axes, keepdim=True))


def _split(data, split: str):
    """``(x, y)`` of ``split`` from a DataBundle, or ``data`` itself when it is a pair."""
    if hasattr(data, "split"):
        return data.split(split)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise ValueError(f"data must be a DataBundle or a pair (x, y), got {type(data).__name__}")


def _subset(x, y, n: int | None, seed: int):
    """The first ``n`` samples of a seeded permutation (all, in order, when ``n`` is None)."""
    if n is None or n >= len(y):
        return x, y
    n = check_int("n", n, 1)
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    idx = idx.to(y.device)
    return x.index_select(0, idx), y.index_select(0, idx)


def _data(data, split: str, n: int | None, seed: int, device, dtype=None):
    x, y = _split(data, split)
    x, y = _subset(x, y, n, seed)
    if len(y) == 0:
        raise ValueError(f"split {split!r} of data is empty")
    x = x.to(device)
    return (x if dtype is None else x.to(dtype)), y.to(device)


def _bundle(data, device) -> DataBundle:
    """``data`` as a DataBundle on ``device``: a pair ``(x, y)`` becomes every split."""
    if isinstance(data, DataBundle):
        moved = {f"{s}_{t}": getattr(data, f"{s}_{t}").to(device)
                 for s in ("train", "val", "test") for t in "xy"}
        return dataclasses.replace(data, **moved)
    x, y = _split(data, "train")
    x, y = x.to(device), y.to(device)
    return DataBundle("pair", x, y, x, y, x, y, mean=(), std=(),
                      num_classes=int(y.max()) + 1 if len(y) else 0)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every conv / linear module (classifier included), in module order."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]


def _raw_weight(module: nn.Module) -> torch.Tensor:
    """The trained tensor behind ``module.weight`` (WN's direction ``v`` if parametrized)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original1
    return module.weight


def _norm_named(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if is_norm_layer(m)]


def _positions(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Where representations are read: every NormSlot (else every norm layer)."""
    slots = [(n, m) for n, m in model.named_modules() if isinstance(m, NormSlot)]
    return slots or _norm_named(model)


def _float(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _plain(obj):
    """Nested numbers / arrays / tensors as JSON-ready Python (non-finite -> None)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().double().numpy()
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(obj)
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict())
    return obj


@contextlib.contextmanager
def _rng_guard(device: torch.device | None = None):
    """Restore the global torch RNG states (CPU, and CUDA when used) afterwards."""
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _trace_pairs(model: nn.Module, x: torch.Tensor) -> dict[str, str]:
    """``{norm layer name: name of the conv/linear whose output it normalizes}``.

    Found from the data flow of one forward pass: a norm layer is paired with an op when
    its input *is* the op's output tensor (conv -> slot in every post-activation net;
    pre-activation WRN slots and norms after a sum have no single op and stay unpaired).
    """
    last: dict = {}
    pairs: dict[str, str] = {}
    handles = []
    for name, op in _weight_layers(model):
        def after(_m, _a, out, name=name):
            last["op"] = (name, out)
        handles.append(op.register_forward_hook(after))
    for name, layer in _norm_named(model):
        def before(_m, args, name=name):
            prev = last.get("op")
            if prev is not None and args[0] is prev[1]:
                pairs[name] = prev[0]
        handles.append(layer.register_forward_pre_hook(before))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return pairs


def _channel_sigma(layer: nn.Module, h: torch.Tensor | None):
    """Per-channel :math:`\\sigma_c` of a BN-type layer and its source, or (None, None).

    Running statistics when the layer keeps them (``sqrt(running_var + eps)``, or
    ``running_std``); batch statistics of its recorded input ``h`` for a torch BN
    without running statistics (``bn-train``); None for other normalizers.
    """
    eps = float(getattr(layer, "eps", 1e-5))
    rv = getattr(layer, "running_var", None)
    if isinstance(rv, torch.Tensor):
        return torch.sqrt(rv.double() + eps), "running"
    rs = getattr(layer, "running_std", None)
    if isinstance(rs, torch.Tensor):
        return rs.double(), "running"
    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and h is not None:
        hc = h.transpose(0, 1).reshape(h.shape[1], -1).double()
        return torch.sqrt(hc.var(1, correction=0) + eps), "batch"
    return None, None


def _sq_per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.double().flatten(1).square().sum(1)
