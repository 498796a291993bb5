r"""Measurements of trained (or training) networks, behind one registry keyed by CLI name.

A *probe* is a function ``probe(model, data, **options) -> dict`` of plain, JSON-ready
numbers and lists. ``model`` is any :class:`~perceptron_theory.deep.models.Net`
(``model.features(x)`` = the embedding :math:`\mathrm{Emb}(x)`, ``model.classifier``);
``data`` is a :class:`~perceptron_theory.deep.data.DataBundle` or a pair ``(x, y)``
used for every split. Probes never change the model they are given: each works on a
private copy (:func:`probe_copy`), never touches the global random number generators
(every draw comes from a seeded ``torch.Generator``), and uses
``torch.autograd.grad`` (no ``.grad`` is written). So the same function serves at any
checkpoint (:func:`run_probe`) and as a training callback (:func:`as_callback`).

================  ===========================================================  ==========
name              what it measures                                             claims
================  ===========================================================  ==========
norms             per-layer :math:`\gamma^2`, :math:`\beta^2`, weight norms,     L-F4, A-TI,
                  BN's effective norm :math:`|\gamma|\lVert w\rVert/\sigma`,     A-TII,
                  :math:`E\lVert\mathrm{Emb}\rVert^2`, :math:`E\lVert NN\rVert^2`,  D-F2/F3,
                  both sides of Dauphin & Cubuk's eq. 1                         D-eq1
dropout           accuracy under test-time dropout on the embedding, and the   D-T3
                  drop from the clean accuracy
propagation       correlation of representations and of weight gradients      R-F1, R-F3
                  between two noisy copies of one minibatch, layer by layer;
                  first-to-last-layer gradient-norm ratio
hessian           top-k Hessian eigenvalues (Lanczos / ARPACK on               R-F4, R-F6
                  Hessian-vector products), :math:`\lambda_1/\lambda_K`, and
                  the eigenvalue density by stochastic Lanczos quadrature
bn-finetune       fold BN into the preceding conv/linear (exact at eval),       L-F4
                  then fine-tune the plain net with SGD: weight norms and
                  train / val loss along the way
test-batch-size   test accuracy vs test-time batch size with batch statistics  R-F5,
                  ("Batch-Train" evaluation) vs running statistics             L-F2ef
================  ===========================================================  ==========

Outside the registry (they train networks rather than measure one):
:func:`gamma_vs_batch_size` (L-F2ef: :math:`\gamma^2` vs the training batch size) and
:func:`probe_over_training` / :func:`propagation_over_training` (R-F3, R-F6: probes
every few SGD *steps* of a run).

Normalization mode
------------------
Probes that run the network take ``mode``: ``"eval"`` (``model.eval()``: running
statistics, what the test accuracy uses) or ``"train"`` (batch statistics, what the
training loss uses). ``"train"`` never updates running statistics -- :func:`probe_copy`
sets ``track_running_stats=False`` on torch's BN layers of the copy (so their running
buffers are neither read nor written in training mode, and still read in eval mode)
and ``momentum = 0`` on every other layer that keeps running statistics -- and switches
every dropout layer off, so the function measured is deterministic.

Examples
--------
>>> import torch
>>> from perceptron_theory.deep.models import make_model
>>> _ = torch.manual_seed(0)
>>> net = make_model("mlp", norm="bn", in_channels=1, image_size=4, hidden=8)
>>> x, y = torch.randn(32, 1, 4, 4), torch.randint(0, 10, (32,))
>>> out = PROBES["norms"](net, (x, y))
>>> out["norm_layers"], out["gamma_sq"]
(['body.1.norm'], [1.0])
>>> PROBES["dropout"](net, (x, y), p=0.0)["drop"]
0.0
>>> corr = PROBES["propagation"](net, (x, y), noise=0.0)["rep_corr"]
>>> [round(c, 6) for c in corr]
[1.0, 1.0, 1.0]
>>> sorted(PROBES)
['bn-finetune', 'dropout', 'hessian', 'norms', 'propagation', 'test-batch-size']
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import tempfile
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .._checks import check_choice, check_int, check_real
from .data import augment, derive_seed, iterate_minibatches, make_dataset
from .models import NormSlot, make_model
from .norms import PopulationNorm, refresh_population_stats
from .penalties import forward_with_record, is_norm_layer, make_penalty, param_groups
from .train import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    TrainConfig,
    learning_rate,
    load_checkpoint,
    train,
)

__all__ = [
    "PROBES",
    "MODES",
    "HVP_METHODS",
    "probe_copy",
    "norms_probe",
    "dropout_probe",
    "propagation_probe",
    "hessian_probe",
    "finetune_probe",
    "eval_batch_size_probe",
    "HessianOperator",
    "top_eigenvalues",
    "lanczos",
    "SpectralDensity",
    "slq_density",
    "broadened_density",
    "fold_batchnorm",
    "gamma_vs_batch_size",
    "probe_over_training",
    "propagation_over_training",
    "as_callback",
    "load_run",
    "run_dataset",
    "run_probe",
]

MODES = ("train", "eval")
HVP_METHODS = ("double-backward", "forward-over-reverse")
LOSSES = ("cross-entropy", "mse")


# ============================================================================ helpers
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


# ============================================================================ 1. norms
def norms_probe(model: nn.Module, data, *, split: str = "train", n: int | None = 512,
                coef: float = 1.0, seed: int = 0) -> dict:
    r"""Norms of every layer, of the embedding and of the output; Dauphin & Cubuk's eq. 1.

    Symbol map: :math:`\gamma_c, \beta_c` = ``weight``, ``bias`` of a norm layer;
    :math:`w_c` = row :math:`c` of the preceding conv/linear weight (all but the output
    axis flattened; the *effective* weight for weight-normalized layers);
    :math:`\sigma_c = \sqrt{\mathrm{running\_var}_c + \epsilon}`; :math:`\lambda` =
    ``coef``; :math:`h_c` = the layer's input, :math:`\hat h_c` = its batch-standardized
    value; :math:`z = \gamma\hat h + \beta` its output; :math:`S` = spatial positions per
    channel (1 after a linear layer).

    Per norm layer: ``gamma_sq`` :math:`= \overline{\gamma_c^2}` and ``beta_sq`` (means
    over channels) and BN's effective norm (Luo et al. 2019, Sec. 5 and Fig. 4: the
    plain-SGD weight that computes the same function at eval is
    :math:`w^{sgd}_c = \gamma_c w_c / \sigma_c`)

    .. math::

        \texttt{effective\_norm} = \Big(\sum_c \frac{\gamma_c^2 \lVert w_c\rVert^2}
        {\sigma_c^2}\Big)^{1/2} = \lVert W^{sgd}\rVert_F, \qquad
        \texttt{effective\_norm\_mean} = \frac1C\sum_c
        \frac{|\gamma_c|\,\lVert w_c\rVert}{\sigma_c};

    per conv/linear: ``weight_norm`` :math:`= \lVert W\rVert_F`; and, in eval mode,
    ``embedding_sq`` :math:`= E\lVert\mathrm{Emb}(x)\rVert^2` and ``output_sq``
    :math:`= E\lVert NN(x)\rVert^2` (D-F2/F3).

    Dauphin & Cubuk (2021), eq. 1, for :math:`\mathrm{Emb} = \mathrm{Swish}_\rho(\gamma\,
    \mathrm{BN}(\mathrm{PreEmb}) + \beta)`, as printed:

    .. math::

        \lambda\lVert\gamma\rVert^2 + \lambda\lVert\beta\rVert^2 =
        \frac{\lambda}{4} E\lVert\mathrm{Emb}(x)\rVert^2 + O(|\rho|).

    Its derivation (App. A) uses only :math:`\mathrm{Swish}_0(z) = z/2` and, per channel,
    :math:`E\hat h_c = 0`, :math:`E\hat h_c^2 = 1` (exact over the batch that BN
    normalizes, up to :math:`\mathrm{var}/(\mathrm{var}+\epsilon)`), which give
    :math:`E\lVert z\rVert^2/S = \lVert\gamma\rVert^2 + \lVert\beta\rVert^2` and
    :math:`E\lVert\mathrm{Emb}\rVert^2 = (\lVert\gamma\rVert^2+\lVert\beta\rVert^2)/4`
    (App. A's last line). Corrected: then :math:`\lambda(\lVert\gamma\rVert^2 +
    \lVert\beta\rVert^2) = 4\lambda\, E\lVert\mathrm{Emb}\rVert^2`; eq. 1's
    :math:`\lambda/4` contradicts the appendix by a factor of 16 (the proportionality,
    the paper's point, stands). For our ReLU nets the embedding is
    :math:`\mathrm{ReLU}(z)`, and no identity holds in general; for Gaussian
    :math:`\hat h_c` (:math:`\Phi, \phi` the standard normal cdf and pdf):

    .. math::

        E\lVert\mathrm{ReLU}(z)\rVert^2 = \sum_c (\gamma_c^2 + \beta_c^2)\,
        \Phi(\beta_c/|\gamma_c|) + |\gamma_c|\beta_c\,\phi(\beta_c/|\gamma_c|),

    :math:`= \lVert\gamma\rVert^2/2` at :math:`\beta = 0` (any symmetric
    :math:`\hat h`). ``dauphin_eq1`` returns, for the last norm layer with a
    :math:`\gamma` (batch statistics over the probe batch, running ones for ``_eval``):
    ``gamma_beta_sq`` :math:`=\lVert\gamma\rVert^2 + \lVert\beta\rVert^2`;
    ``pre_activation_sq`` :math:`= E\lVert z\rVert^2/S` (measured) and
    ``pre_activation_exact`` :math:`= \sum_c \gamma_c^2 v_c/(v_c+\epsilon) + \beta_c^2`
    (:math:`v_c` the biased batch variance: the identity with BN's :math:`\epsilon`);
    ``embedding_sq`` / ``embedding_sq_eval`` (measured);
    ``relu_gaussian`` (the formula above); ``swish0`` :math:`=
    (\lVert\gamma\rVert^2+\lVert\beta\rVert^2)/4`; the two sides
    ``penalty`` :math:`= \frac{\lambda}{2}(\lVert\gamma\rVert^2+\lVert\beta\rVert^2)` (the
    decay torch's SGD ``weight_decay`` :math:`=\lambda` applies, the package's
    convention), ``paper_lhs`` :math:`= \lambda(\lVert\gamma\rVert^2+\lVert\beta\rVert^2)`
    and ``paper_rhs`` :math:`= \frac{\lambda}{4}E\lVert\mathrm{Emb}\rVert^2`; and
    ``embedding_is_relu_of_norm`` -- whether :math:`\mathrm{Emb} = \mathrm{ReLU}(z)`
    exactly (cnn, mlp, deep-fc, ``single_bn_at_embedding``; not after a residual sum
    or average pooling, where the numbers are only indicative).

    Parameters
    ----------
    model : torch.nn.Module
        A ``deep.models`` net.
    data : DataBundle or (x, y)
        Samples of ``split`` are used.
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (a seeded subset; all when None). Also the batch of the batch
        statistics.
    coef : float
        :math:`\lambda` of the eq. 1 sides (>= 0).
    seed : int
        Seed of the subset.

    Returns
    -------
    dict
        ``norm_layers, gamma_sq, beta_sq, preceding_op, sigma_source, effective_norm,
        effective_norm_mean, weight_layers, weight_norm, embedding_sq, output_sq, n,
        dauphin_eq1`` (None where a quantity does not apply).
    """
    coef = check_real("coef", coef, 0.0)
    seed = check_int("seed", seed, 0)
    device = _device(model)
    x, _ = _data(data, split, n, seed, device)
    ev = probe_copy(model, "eval")
    tr = probe_copy(model, "train")

    # weights and the eval-mode norms of the embedding and the output
    weights = {name: op.weight.detach().double() for name, op in _weight_layers(ev)}
    with torch.no_grad():
        emb = ev.features(x)
        out = ev.classifier(emb)
    embedding_sq_eval = float(_sq_per_sample(emb).mean())
    output_sq = float(_sq_per_sample(out).mean())

    # batch-mode pass: norm-layer inputs and outputs, the embedding
    pairs = _trace_pairs(tr, x)
    ins: dict[str, torch.Tensor] = {}
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name, layer in _norm_named(tr):
        def hook(_m, args, output, name=name):
            ins[name], outs[name] = args[0].detach(), output.detach()
        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            emb_tr = tr.features(x)
    finally:
        for h in handles:
            h.remove()

    names, g2, b2, ops, sources, eff, eff_mean = [], [], [], [], [], [], []
    for name, layer in _norm_named(tr):
        gamma, beta = getattr(layer, "weight", None), getattr(layer, "bias", None)
        gamma = gamma.detach().double() if isinstance(gamma, torch.Tensor) else None
        beta = beta.detach().double() if isinstance(beta, torch.Tensor) else None
        names.append(name)
        g2.append(None if gamma is None else float(gamma.square().mean()))
        b2.append(None if beta is None else float(beta.square().mean()))
        op = pairs.get(name)
        ops.append(op)
        sigma, source = _channel_sigma(layer, ins.get(name))
        if op is None or sigma is None or gamma is None or sigma.numel() != gamma.numel():
            sources.append(None)
            eff.append(None)
            eff_mean.append(None)
            continue
        row = weights[op].flatten(1).norm(dim=1)  # ||w_c||
        scale = gamma.abs() * row / sigma
        sources.append(source)
        eff.append(float(scale.square().sum().sqrt()))
        eff_mean.append(float(scale.mean()))

    dauphin = None
    with_gamma = [(nm, ly) for nm, ly in _norm_named(tr)
                  if isinstance(getattr(ly, "weight", None), torch.Tensor) and nm in outs]
    if with_gamma:
        name, layer = with_gamma[-1]
        gamma = layer.weight.detach().double()
        beta = (layer.bias.detach().double() if isinstance(layer.bias, torch.Tensor)
                else torch.zeros_like(gamma))
        h, z = ins[name].double(), outs[name].double()
        spatial = z[0, 0].numel()
        hc = h.transpose(0, 1).reshape(h.shape[1], -1)
        v = hc.var(1, correction=0)
        eps = float(getattr(layer, "eps", 1e-5))
        gb = float((gamma.square() + beta.square()).sum())
        a = gamma.abs().clamp_min(1e-300)
        t = beta / a
        Phi = 0.5 * torch.erfc(-t / math.sqrt(2.0))
        phi = torch.exp(-0.5 * t.square()) / math.sqrt(2.0 * math.pi)
        relu_gauss = float(((gamma.square() + beta.square()) * Phi + a * beta * phi).sum())
        emb_sq = float(_sq_per_sample(emb_tr).mean())
        direct = bool(z.dim() == 2 and z.shape == emb_tr.shape
                      and torch.allclose(torch.relu(z), emb_tr.double(), rtol=0, atol=0))
        dauphin = {
            "layer": name, "coef": coef, "gamma_beta_sq": gb,
            "pre_activation_sq": float(_sq_per_sample(z).mean()) / spatial,
            "pre_activation_exact": float((gamma.square() * v / (v + eps)
                                           + beta.square()).sum()),
            "embedding_sq": emb_sq, "embedding_sq_eval": embedding_sq_eval,
            "relu_gaussian": relu_gauss, "swish0": gb / 4.0,
            "penalty": 0.5 * coef * gb, "paper_lhs": coef * gb, "paper_rhs": 0.25 * coef * emb_sq,
            "embedding_is_relu_of_norm": direct,
        }

    wl = _weight_layers(ev)
    return _plain({
        "norm_layers": names, "gamma_sq": g2, "beta_sq": b2, "preceding_op": ops,
        "sigma_source": sources, "effective_norm": eff, "effective_norm_mean": eff_mean,
        "weight_layers": [nm for nm, _ in wl],
        "weight_norm": [float(weights[nm].norm()) for nm, _ in wl],
        "embedding_sq": embedding_sq_eval, "output_sq": output_sq, "n": int(len(x)),
        "dauphin_eq1": dauphin,
    })


# ============================================================================ 2. dropout
def dropout_probe(model: nn.Module, data, *, p: float = 0.5, masks: int = 10,
                  split: str = "test", n: int | None = None, mode: str = "eval",
                  batch_size: int = 1000, seed: int = 0) -> dict:
    r"""Accuracy under dropout on the embedding at test time, and the drop (D-T3).

    With :math:`m_{nd} \sim \mathrm{Bernoulli}(1-p)` i.i.d. (inverted dropout, as
    ``nn.Dropout``), the prediction is :math:`\arg\max_k [W (m \odot \mathrm{Emb}(x))
    /(1-p) + b]_k`. ``acc_dropout`` is the accuracy averaged over ``masks`` independent
    masks (seeded); ``drop = acc - acc_dropout`` (Dauphin & Cubuk 2021, Table 3: BN and
    embedding L2 make nets robust to this dropout). ``p = 0`` gives ``drop = 0``
    exactly.

    Parameters
    ----------
    model : torch.nn.Module
        A ``deep.models`` net.
    data : DataBundle or (x, y)
        Evaluation samples.
    p : float
        Dropout probability in [0, 1).
    masks : int
        Number of masks (>= 1).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (seeded subset; all when None).
    mode : {"eval", "train"}
        Normalization mode of the embedding network (see the module docstring).
    batch_size : int
        Chunk size of the embedding pass (the BN batch in ``mode="train"``).
    seed : int
        Seed of the subset and the masks.

    Returns
    -------
    dict
        ``p, masks, n, acc, acc_dropout, acc_dropout_std, acc_dropout_per_mask, drop``.
    """
    p = check_real("p", p, 0.0, 1.0, hi_open=True)
    masks = check_int("masks", masks, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    net = probe_copy(model, mode)
    x, y = _data(data, split, n, seed, _device(model))
    with torch.no_grad():
        emb = torch.cat([net.features(x[i]) for i in iterate_minibatches(len(y), batch_size)])
        acc = float((net.classifier(emb).argmax(1) == y).double().mean())
        g = torch.Generator(device=emb.device).manual_seed(derive_seed(seed, 1))
        per_mask = []
        for _ in range(masks):
            keep = torch.full_like(emb, 1.0 - p)
            mask = torch.bernoulli(keep, generator=g) / (1.0 - p)
            pred = net.classifier(emb * mask).argmax(1)
            per_mask.append(float((pred == y).double().mean()))
    mean = float(np.mean(per_mask))
    return _plain({"p": p, "masks": masks, "n": int(len(y)), "acc": acc,
                   "acc_dropout": mean, "acc_dropout_std": float(np.std(per_mask)),
                   "acc_dropout_per_mask": per_mask, "drop": acc - mean})


# ======================================================================== 3. propagation
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


# ============================================================================ 4. Hessian
class HessianOperator:
    r"""Hessian-vector products :math:`v \mapsto \nabla^2_\theta L(\theta)\, v` of a fixed batch.

    :math:`\theta` = every trainable parameter of ``model`` (flattened in
    ``named_parameters`` order, ``dim`` entries); the loss, on ``n`` samples split into
    consecutive chunks :math:`B_j` of ``batch_size`` (the BN batches in
    ``mode="train"``), is

    .. math::

        L(\theta) = \sum_j \frac{|B_j|}{n}\, \ell_{B_j}(\theta), \qquad
        \ell_B = \frac{1}{|B|}\sum_{i\in B} \mathrm{CE}(NN(x_i), y_i)
        \quad\text{or}\quad \frac{1}{2|B|}\sum_{i\in B}\lVert NN(x_i) - y_i\rVert^2

    (``loss="cross-entropy"`` / ``"mse"``; the mse form has Hessian :math:`X^\top X/n`
    for a linear model with one output). The model is a :func:`probe_copy` in ``mode``
    (``"train"``: batch statistics of each chunk, as the training loss; ``"eval"``:
    running statistics), in ``dtype``.

    ``method``:

    * ``"double-backward"`` (Pearlmutter's trick, reverse-over-reverse): the first
      gradient :math:`g_j = \nabla\ell_{B_j}` is built once with ``create_graph=True``
      and kept; each product is one more backward pass through it,
      :math:`Hv = \sum_j \frac{|B_j|}{n}\nabla_\theta (g_j \cdot v)`. Works for every
      normalizer of ``deep.norms`` (their custom autograd functions differentiate twice)
      and weight norm; memory holds the graph of all ``n`` samples.
    * ``"forward-over-reverse"``: ``torch.func.jvp`` of ``torch.func.grad`` with
      ``functional_call``, recomputed for every product (no stored graph). Fails for
      custom autograd functions without forward-mode rules.

    Both agree with central differences of the gradient for every normalizer (tests).
    Caveats: weight norm is evaluated with plain ops (:func:`probe_copy`; torch's fused
    ``_weight_norm`` has a wrong double backward in torch 2.13); ``batch-renorm``'s
    :math:`r, d` are stop-gradient by design (Ioffe 2017), so its "Hessian" is that of
    the loss with :math:`r, d` frozen at the batch's values, not of the loss itself; and
    ``torch.func.hessian`` (vmapped) is *wrong* for BN with batch statistics in torch
    2.13 (an asymmetric :math:`\partial^2 L/\partial\gamma\,\partial W` block; cf.
    pytorch/pytorch#196699), which is why the products here never use ``vmap``.

    Parameters
    ----------
    model : torch.nn.Module
        Model (left untouched).
    x : torch.Tensor
        Inputs, shape ``(n, ...)``.
    y : torch.Tensor
        Class labels ``(n,)`` (cross entropy) or targets ``(n, K)`` (mse).
    mode : {"train", "eval"}
        Normalization mode.
    batch_size : int, optional
        Chunk size (default: all ``n`` in one chunk). Chunks of one sample are not
        allowed in ``mode="train"``.
    method : {"double-backward", "forward-over-reverse"}
        How products are computed.
    dtype : torch.dtype, optional
        Compute dtype (e.g. ``torch.float64``); the model's by default.
    loss : {"cross-entropy", "mse"}
        Per-sample loss.

    Attributes
    ----------
    dim : int
        Number of parameters.
    n_matvec : int
        Products computed so far.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 mode: str = "train", batch_size: int | None = None,
                 method: str = "double-backward", dtype: torch.dtype | None = None,
                 loss: str = "cross-entropy"):
        self.mode = check_choice("mode", mode, MODES)
        self.method = check_choice("method", method, HVP_METHODS)
        self.loss_name = check_choice("loss", loss, LOSSES)
        n = len(x)
        if n < 1 or len(y) != n:
            raise ValueError(f"x and y must hold the same number (>= 1) of samples, got "
                             f"{len(x)} and {len(y)}")
        bs = n if batch_size is None else check_int("batch_size", batch_size, 1)
        self.model = probe_copy(model, self.mode, dtype)
        self.dtype = next(self.model.parameters()).dtype
        device = _device(self.model)
        x = x.to(device=device, dtype=self.dtype)
        y = y.to(device)
        if self.loss_name == "mse":
            y = y.to(self.dtype)
        self.chunks = [(x[i], y[i]) for i in iterate_minibatches(n, bs)]
        if self.mode == "train" and any(len(c[1]) < 2 for c in self.chunks):
            raise ValueError(f"batch_size must leave chunks of >= 2 samples in mode 'train' "
                             f"(n = {n}, batch_size = {bs})")
        self.n = n
        self.named = [(k, p) for k, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.named]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.dim = int(sum(self.numels))
        self.n_matvec = 0
        self._grads = None
        if self.method == "double-backward":
            self._grads = []
            for xc, yc in self.chunks:
                g = torch.autograd.grad(self._loss(self.model(xc), yc), self.params,
                                        create_graph=True, allow_unused=True)
                self._grads.append((len(yc) / n, g))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross-entropy":
            return F.cross_entropy(out, y)
        return 0.5 * (out - y.reshape(out.shape)).square().sum() / len(y)

    def _split(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(v.split(self.numels), self.shapes, strict=True)]

    def loss(self) -> float:
        """:math:`L(\\theta)` on the batch."""
        with torch.no_grad():
            return float(sum(len(yc) / self.n * self._loss(self.model(xc), yc)
                             for xc, yc in self.chunks))

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`Hv` for a flat ``v`` of ``dim`` entries (returned flat, compute dtype)."""
        v = v.to(device=self.params[0].device, dtype=self.dtype).reshape(-1)
        if v.numel() != self.dim:
            raise ValueError(f"v must have {self.dim} entries, got {v.numel()}")
        vs = self._split(v)
        out = torch.zeros(self.dim, dtype=self.dtype, device=v.device)
        if self.method == "double-backward":
            for w, g in self._grads:
                pairs = [(gi, vi, p) for gi, vi, p in zip(g, vs, self.params, strict=True)
                         if gi is not None and gi.requires_grad]
                if not pairs:
                    continue
                hv = torch.autograd.grad([gi for gi, _, _ in pairs], self.params,
                                         [vi for _, vi, _ in pairs], retain_graph=True,
                                         allow_unused=True)
                out += w * torch.cat([torch.zeros(k, dtype=self.dtype, device=v.device)
                                      if h is None else h.reshape(-1)
                                      for h, k in zip(hv, self.numels, strict=True)])
        else:
            from torch.func import functional_call, grad, jvp

            names = [k for k, _ in self.named]
            primals = {k: p.detach() for k, p in self.named}
            tangents = dict(zip(names, vs, strict=True))
            buffers = dict(self.model.named_buffers())
            for xc, yc in self.chunks:
                def f(ps, xc=xc, yc=yc):
                    return self._loss(functional_call(self.model, (ps, buffers), (xc,)), yc)

                hv = jvp(grad(f), (primals,), (tangents,))[1]
                out += len(yc) / self.n * torch.cat([hv[k].reshape(-1) for k in names])
        self.n_matvec += 1
        return out.detach()

    def dense(self) -> torch.Tensor:
        """The full ``(dim, dim)`` Hessian from ``dim`` products (small models only)."""
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.params[0].device)
        H = torch.stack([self.matvec(e) for e in eye], 1)
        return 0.5 * (H + H.T)

    def linear_operator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` in float64 (ARPACK's side)."""
        from scipy.sparse.linalg import LinearOperator

        def mv(v):
            t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
            return self.matvec(t).double().cpu().numpy()

        return LinearOperator((self.dim, self.dim), matvec=mv, dtype=np.float64)


def top_eigenvalues(op: HessianOperator, k: int = 10, *, tol: float = 1e-3,
                    ncv: int | None = None, seed: int = 0, which: str = "LA") -> np.ndarray:
    r"""The ``k`` largest (algebraic) Hessian eigenvalues, descending.

    ARPACK's implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh``) on
    ``op.linear_operator()`` (float64 vectors), start vector from ``seed``. ``tol`` is
    eigsh's relative accuracy of the Ritz values (0 = machine precision). Models with
    ``dim <= k + 1`` use the dense Hessian.

    Parameters
    ----------
    op : HessianOperator
        The products.
    k : int
        Number of eigenvalues (>= 1).
    tol : float
        Relative tolerance (>= 0).
    ncv : int, optional
        Lanczos basis size (eigsh's default ``max(2k + 1, 20)``).
    seed : int
        Seed of the start vector.
    which : {"LA", "LM"}
        Largest algebraic (default) or largest magnitude.

    Returns
    -------
    numpy.ndarray, shape (k,)
    """
    from scipy.sparse.linalg import eigsh

    k = check_int("k", k, 1)
    tol = check_real("tol", tol, 0.0)
    seed = check_int("seed", seed, 0)
    which = check_choice("which", which, ("LA", "LM"))
    if op.dim <= k + 1:
        w = torch.linalg.eigvalsh(op.dense().double().cpu()).numpy()
        top = w[-k:] if which == "LA" else w[np.argsort(-np.abs(w))[:k]]
        return np.sort(top)[::-1].copy()
    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    ncv = None if ncv is None else check_int("ncv", ncv, k + 2, op.dim)
    if ncv is None:
        ncv = min(op.dim, max(2 * k + 1, 20))
    w = eigsh(op.linear_operator(), k=k, which=which, tol=tol, v0=v0, ncv=ncv,
              return_eigenvectors=False)
    return np.sort(w)[::-1]


def lanczos(matvec: Callable[[np.ndarray], np.ndarray], dim: int, steps: int,
            v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``steps`` Lanczos iterations with full reorthogonalization; the tridiagonal of H.

    From :math:`q_1 = v_0/\lVert v_0\rVert`: :math:`w = Hq_j - \beta_{j-1}q_{j-1}`,
    :math:`\alpha_j = q_j^\top w`, :math:`w \leftarrow w - \alpha_j q_j`, then ``w`` is
    orthogonalized against every previous :math:`q` twice (classical Gram-Schmidt
    repeated: keeps :math:`Q^\top Q = I` to rounding, Ghorbani et al. 2019),
    :math:`\beta_j = \lVert w\rVert`, :math:`q_{j+1} = w/\beta_j`. Stops early at an
    invariant subspace (:math:`\beta_j \le 10^{-10}\max|\alpha|`, then ``len(alpha) <
    steps``). Everything in float64; the basis takes ``steps * dim * 8`` bytes.

    Parameters
    ----------
    matvec : callable
        ``v -> H v`` on float64 vectors of ``dim`` entries.
    dim : int
        Dimension.
    steps : int
        Iterations :math:`m` (>= 1; capped at ``dim``).
    v0 : numpy.ndarray
        Start vector (nonzero).

    Returns
    -------
    alpha : numpy.ndarray, shape (m,)
        Diagonal of :math:`T_m`.
    beta : numpy.ndarray, shape (m - 1,)
        Off-diagonal of :math:`T_m`.
    """
    steps = min(check_int("steps", steps, 1), int(dim))
    q = np.asarray(v0, dtype=np.float64).reshape(-1)
    nrm = np.linalg.norm(q)
    if q.size != dim or not nrm > 0:
        raise ValueError(f"v0 must be a nonzero vector of {dim} entries")
    Q = np.empty((steps, dim))
    Q[0] = q / nrm
    alpha, beta = [], []
    for j in range(steps):
        w = np.asarray(matvec(Q[j]), dtype=np.float64).reshape(-1)
        if j > 0:
            w -= beta[-1] * Q[j - 1]
        a = float(Q[j] @ w)
        alpha.append(a)
        w -= a * Q[j]
        for _ in range(2):
            w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        if j == steps - 1:
            break
        b = float(np.linalg.norm(w))
        if b <= 1e-10 * max(1.0, max(abs(t) for t in alpha)):
            break
        beta.append(b)
        Q[j + 1] = w / b
    return np.array(alpha), np.array(beta[:len(alpha) - 1])


@dataclass(frozen=True)
class SpectralDensity:
    r"""An eigenvalue density estimate: Gauss quadrature nodes/weights and their smoothing.

    Attributes
    ----------
    nodes : numpy.ndarray, shape (V, m)
        Ritz values :math:`\theta^{(l)}_j` of each start vector :math:`l` (NaN-padded
        when a run stopped early).
    weights : numpy.ndarray, shape (V, m)
        :math:`\tau^{(l)}_j = (U^{(l)}_{1j})^2`, summing to 1 per vector.
    grid : numpy.ndarray, shape (G,)
        Evaluation points :math:`t`.
    density : numpy.ndarray, shape (G,)
        :math:`\phi(t)`.
    sigma : float
        Gaussian broadening.
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float

    def moment(self, k: int) -> float:
        r"""SLQ estimate of :math:`\frac1p \mathrm{tr}\, H^k`.

        For :math:`k \le 2m - 1` it equals the Hutchinson estimate
        :math:`\frac1V\sum_l v_l^\top H^k v_l` of the same vectors (Gauss quadrature).
        """
        return float(np.nansum(self.weights * self.nodes ** k, axis=1).mean())

    def integral(self) -> float:
        """:math:`\\int \\phi(t)\\,dt` on the grid (trapezoid; 1 up to the cut tails)."""
        return float(_trapezoid(self.density, self.grid))

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


def broadened_density(eigenvalues: np.ndarray, weights: np.ndarray | None, grid: np.ndarray,
                      sigma: float) -> np.ndarray:
    r"""Gaussian-broadened spectral density :math:`\sum_j w_j\, g_\sigma(t - \lambda_j)`.

    :math:`g_\sigma(t) = e^{-t^2/2\sigma^2}/(\sigma\sqrt{2\pi})`; ``weights`` default to
    :math:`1/p` each (the dense spectrum's density).

    Parameters
    ----------
    eigenvalues : numpy.ndarray
        Positions :math:`\lambda_j` (NaN entries ignored).
    weights : numpy.ndarray, optional
        Same shape; uniform when None.
    grid : numpy.ndarray
        Evaluation points.
    sigma : float
        Width (> 0).

    Returns
    -------
    numpy.ndarray, shape of ``grid``
    """
    sigma = check_real("sigma", sigma, 0.0, lo_open=True)
    lam = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    w = (np.full(lam.shape, 1.0 / lam.size) if weights is None
         else np.asarray(weights, dtype=np.float64).reshape(-1))
    ok = np.isfinite(lam)
    lam, w = lam[ok], w[ok]
    t = np.asarray(grid, dtype=np.float64)
    g = np.exp(-0.5 * ((t[:, None] - lam[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return g @ w


def slq_density(op, *, steps: int = 50, vectors: int = 1, grid_points: int = 256,
                broadening: float = 0.01, seed: int = 0) -> SpectralDensity:
    r"""Eigenvalue density of the Hessian by stochastic Lanczos quadrature.

    Ubaru, Chen & Saad (2017); Ghorbani, Krishnan & Xiao (2019, Sec. 3). For each of
    ``vectors`` Rademacher start vectors :math:`v_l` (:math:`\pm 1/\sqrt p`), ``steps``
    = :math:`m` Lanczos iterations (:func:`lanczos`) give :math:`T_m = U\,
    \mathrm{diag}(\theta)\, U^\top`; then :math:`v_l^\top f(H) v_l \approx \sum_j
    \tau_j f(\theta_j)`, :math:`\tau_j = U_{1j}^2` (Gauss quadrature, exact for
    polynomials of degree :math:`\le 2m-1`), and

    .. math::

        \phi(t) = \frac1V \sum_{l=1}^V \sum_{j=1}^m \tau^{(l)}_j\, g_\sigma(t -
        \theta^{(l)}_j), \qquad \int\phi = 1,

    an unbiased estimate of :math:`\frac1p\sum_i g_\sigma(t - \lambda_i)`. The width
    :math:`\sigma` = ``broadening`` times the spread of the nodes; the grid spans the
    nodes plus :math:`6\sigma` on each side.

    Parameters
    ----------
    op : HessianOperator
        Anything with ``dim`` and ``matvec`` on flat torch tensors.
    steps : int
        Lanczos iterations per vector (>= 1; capped at ``dim``).
    vectors : int
        Number of start vectors (>= 1).
    grid_points : int
        Grid size (>= 2).
    broadening : float
        :math:`\sigma` relative to the spectral spread (> 0).
    seed : int
        Seed of the start vectors.

    Returns
    -------
    SpectralDensity
    """
    steps = check_int("steps", steps, 1)
    vectors = check_int("vectors", vectors, 1)
    grid_points = check_int("grid_points", grid_points, 2)
    broadening = check_real("broadening", broadening, 0.0, lo_open=True)
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)

    def mv(v):
        return op.matvec(torch.from_numpy(v)).double().cpu().numpy()

    m = min(steps, op.dim)
    nodes = np.full((vectors, m), np.nan)
    weights = np.zeros((vectors, m))
    for v in range(vectors):
        v0 = rng.choice([-1.0, 1.0], size=op.dim) / math.sqrt(op.dim)
        alpha, beta = lanczos(mv, op.dim, m, v0)
        theta, U = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
        nodes[v, :len(theta)] = theta
        weights[v, :len(theta)] = U[0] ** 2
    lo, hi = np.nanmin(nodes), np.nanmax(nodes)
    spread = hi - lo if hi > lo else max(abs(hi), 1.0)
    sigma = broadening * spread
    grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, grid_points)
    density = broadened_density(nodes, weights, grid, sigma) / vectors
    return SpectralDensity(nodes, weights, grid, density, float(sigma))


_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def hessian_probe(model: nn.Module, data, *, n: int = 512, split: str = "train",
                  mode: str = "train", k: int = 10, tol: float = 1e-3,
                  batch_size: int | None = None, method: str = "double-backward",
                  dtype: str | None = None, density: bool = True, slq_steps: int = 50,
                  slq_vectors: int = 1, grid_points: int = 256, broadening: float = 0.01,
                  seed: int = 0) -> dict:
    r"""Top Hessian eigenvalues, :math:`\lambda_1/\lambda_K` and the density (R-F4, R-F6).

    The Hessian of the batch-mean cross entropy on ``n`` samples (Rao &
    Sohl-Dickstein: 512 CIFAR-10 samples) with respect to all trainable parameters
    (:class:`HessianOperator`); :math:`\lambda_1 \ge \dots \ge \lambda_K` by
    :func:`top_eigenvalues` with :math:`K` = ``k`` (10, the number of classes: Rao's
    heuristic choice), the outlier ratio :math:`\lambda_1/\lambda_K` (Ghorbani et al.
    2019) and, with ``density``, the SLQ eigenvalue density (:func:`slq_density`).

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    data : DataBundle or (x, y)
        Source of the batch.
    n : int
        Samples of the batch (seeded subset).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    mode : {"train", "eval"}
        BN statistics: of each chunk (as in training) or running.
    k : int
        Number of top eigenvalues :math:`K`.
    tol : float
        eigsh's relative tolerance.
    batch_size : int, optional
        Chunk (BN batch) size; all ``n`` at once by default.
    method : {"double-backward", "forward-over-reverse"}
        Hessian-vector product (:class:`HessianOperator`).
    dtype : {"float32", "float64"}, optional
        Compute dtype (the model's by default).
    density : bool
        Also estimate the density by SLQ.
    slq_steps, slq_vectors, grid_points : int
        SLQ's Lanczos steps, start vectors and grid size.
    broadening : float
        SLQ's relative Gaussian width.
    seed : int
        Seed of the batch, eigsh's start vector and the SLQ vectors.

    Returns
    -------
    dict
        ``eigenvalues, lambda_1, lambda_ratio, k, n, dim, loss, mode, n_matvec`` and
        ``density`` (``grid, density, nodes, weights, sigma``) when asked for.
    """
    check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    if not isinstance(density, bool):
        raise ValueError(f"density must be True or False, got {density!r}")
    dt = None if dtype is None else _DTYPES[check_choice("dtype", dtype, _DTYPES)]
    x, y = _data(data, split, n, seed, _device(model))
    op = HessianOperator(model, x, y, mode=mode, batch_size=batch_size, method=method,
                         dtype=dt)
    eig = top_eigenvalues(op, k, tol=tol, seed=seed)
    out = {"eigenvalues": eig, "lambda_1": float(eig[0]),
           "lambda_ratio": float(eig[0] / eig[-1]) if eig[-1] != 0 else None,
           "k": int(k), "n": int(len(y)), "dim": op.dim, "loss": op.loss(), "mode": mode}
    if density:
        out["density"] = slq_density(op, steps=slq_steps, vectors=slq_vectors,
                                     grid_points=grid_points, broadening=broadening,
                                     seed=seed).to_dict()
    out["n_matvec"] = op.n_matvec
    return _plain(out)


# ======================================================================= 5. BN folding
def _plain_op(op: nn.Module) -> nn.Module:
    """A fresh, unparametrized conv/linear with the configuration of ``op`` and a bias.

    (A deep copy of a weight-normalized module shares its parametrized *class* with the
    original, so ``remove_parametrizations`` on the copy would break the original.)
    """
    kw = {"device": op.weight.device, "dtype": op.weight.dtype}
    if isinstance(op, nn.Linear):  # skip_init: no global-RNG draws for an init we overwrite
        return nn.utils.skip_init(nn.Linear, op.in_features, op.out_features, bias=True, **kw)
    cls = next(c for c in (nn.Conv1d, nn.Conv2d, nn.Conv3d) if isinstance(op, c))
    return nn.utils.skip_init(cls, op.in_channels, op.out_channels, op.kernel_size,
                              stride=op.stride, padding=op.padding, dilation=op.dilation,
                              groups=op.groups, bias=True, padding_mode=op.padding_mode, **kw)


def fold_batchnorm(model: nn.Module, *, example: torch.Tensor) -> nn.Module:
    r"""The plain (``norm="none"``) net computing ``model``'s eval-mode function exactly.

    Luo et al. (2019), Sec. 5 and App. B.2 (:math:`w^{sgd} = \gamma w^{bn}/\sigma`). For a
    conv/linear op :math:`z = W h + b` feeding a BN layer
    :math:`y = \gamma (z - \mu)/\sigma + \beta` with running :math:`\mu`,
    :math:`\sigma = \sqrt{\mathrm{running\_var} + \epsilon}`, per output channel
    :math:`c`:

    .. math::

        W'_c = \frac{\gamma_c}{\sigma_c} W_c, \qquad
        b'_c = \frac{\gamma_c}{\sigma_c}(b_c - \mu_c) + \beta_c,

    and the BN layer becomes the identity. The result is a copy with the same module
    tree as ``make_model(name, norm="none", ...)`` (the convs gain the biases that a
    norm-free slot's op has), in eval mode, weight-norm parametrizations removed.

    Parameters
    ----------
    model : torch.nn.Module
        A net whose every norm layer is torch BN with running statistics and an affine
        part, fed directly by a conv/linear (cnn, mlp, deep-fc, resnet18 with
        ``norm="bn"`` or ``"wn+bn"``; not the pre-activation wrn).
    example : torch.Tensor
        A batch that traces which op feeds which norm layer (:func:`_trace_pairs`).

    Returns
    -------
    torch.nn.Module
    """
    net = probe_copy(model, "eval")
    pairs = _trace_pairs(net, example.to(_device(net)))
    ops = dict(_weight_layers(net))
    for name, layer in _norm_named(net):
        ok = (isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine
              and isinstance(layer.running_var, torch.Tensor))
        if not ok:
            raise ValueError(f"fold_batchnorm needs torch BN layers with running statistics "
                             f"and affine parameters; {name!r} is {type(layer).__name__}")
        if name not in pairs:
            raise ValueError(f"norm layer {name!r} is not fed directly by a conv/linear op; "
                             f"BN cannot be folded (pre-activation nets such as wrn)")
    parent = dict(net.named_modules())
    with torch.no_grad():
        for name, layer in _norm_named(net):
            op_name = pairs[name]
            op = ops[op_name]
            s = layer.weight / torch.sqrt(layer.running_var + layer.eps)
            w = op.weight.detach()
            b = op.bias.detach() if op.bias is not None else torch.zeros_like(s)
            plain_op = _plain_op(op)
            plain_op.weight.copy_(w * s.view(-1, *([1] * (w.dim() - 1))))
            plain_op.bias.copy_((b - layer.running_mean) * s + layer.bias)
            for full, new in ((op_name, plain_op), (name, nn.Identity())):
                owner, _, attr = full.rpartition(".")
                setattr(parent[owner] if owner else net, attr, new)
    return net


def finetune_probe(model: nn.Module, data, *, lr: float = 1e-3, steps: int = 100,
                   every: int = 10, batch_size: int = 128, momentum: float = 0.0,
                   n_eval: int | None = 1000, control: bool = False, seed: int = 0) -> dict:
    r"""Fold BN (:func:`fold_batchnorm`) and fine-tune the plain net with SGD (L-F4).

    Luo et al. (2019), Sec. 5 "Regularization and parameter norm" and App. B.2, Fig. 4:
    from :math:`w^{sgd} = \gamma w^{bn}/\sigma` (same eval function), vanilla SGD at
    learning rate :math:`10^{-3}` releases BN's regularization: the weight norms grow,
    the training loss falls and the validation loss rises. Recorded at steps
    :math:`0, e, 2e, \dots` (:math:`e` = ``every``): :math:`\lVert W_l\rVert_F` of every
    conv/linear and the mean cross entropy / accuracy in eval mode on ``n_eval`` (seeded)
    training and validation samples. Minibatches of ``batch_size`` from a seeded
    permutation per pass; no weight decay; ``momentum`` 0 (plain SGD).

    With ``control`` the original BN net is trained alongside on the very same
    minibatches with the same optimizer (batch statistics in training, running
    statistics updated as in ``train``): what continuing *with* BN does over the same
    steps. Its recorded weight norms are those of its fold, :math:`\lVert\gamma
    W/\sigma\rVert` (BN's effective norm), so the two sets of norms are comparable and
    equal at step 0. Without this control, a rising validation loss could be plain
    overfitting by further training rather than the release of BN's regularization.

    Parameters
    ----------
    model : torch.nn.Module
        A BN net that :func:`fold_batchnorm` accepts.
    data : DataBundle or (x, y)
        ``train`` and ``val`` splits (one pair is used for both).
    lr : float
        Learning rate (> 0).
    steps : int
        SGD steps (>= 0).
    every : int
        Recording interval in steps (>= 1).
    batch_size : int
        Minibatch size (>= 1).
    momentum : float
        SGD momentum in [0, 1).
    n_eval : int, optional
        Samples of each split used for the losses (all when None).
    control : bool
        Also continue the BN net on the same minibatches (``control_*`` keys).
    seed : int
        Seed of the subsets and the batch order.

    Returns
    -------
    dict
        ``fold_max_abs_err, fold_max_rel_err, weight_layers, bn_weight_norm, step,
        weight_norm`` (per record, per layer), ``train_loss, train_acc, val_loss,
        val_acc``; with ``control`` also ``control_weight_norm, control_train_loss,
        control_train_acc, control_val_loss, control_val_acc``.
    """
    lr = check_real("lr", lr, 0.0, lo_open=True)
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    momentum = check_real("momentum", momentum, 0.0, 1.0, hi_open=True)
    if not isinstance(control, bool):
        raise ValueError(f"control must be True or False, got {control!r}")
    seed = check_int("seed", seed, 0)
    device = _device(model)
    xt, yt = _split(data, "train")
    xt, yt = xt.to(device), yt.to(device)
    bs = min(batch_size, len(yt))
    ex, ey = _data(data, "train", n_eval, derive_seed(seed, 3), device)
    vx, vy = _data(data, "val", n_eval, derive_seed(seed, 4), device) \
        if len(_split(data, "val")[1]) else (ex, ey)
    trace = ex[:min(len(ex), 64)]
    ref = probe_copy(model, "eval")
    plain_net = fold_batchnorm(model, example=trace)
    with torch.no_grad():
        a, b = ref(vx), plain_net(vx)
    err = float((a - b).abs().max())
    rel = err / max(float(a.abs().max()), 1e-30)
    bn_norms = [float(_raw_weight(m).detach().double().norm()) for _, m in _weight_layers(ref)]

    # (prefix, net, norms of the plain net it computes at eval)
    nets = [("", plain_net, lambda: plain_net)]
    if control:
        bn_net = copy.deepcopy(model)
        nets.append(("control_", bn_net, lambda: fold_batchnorm(bn_net, example=trace)))
    opts = [torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum) for _, net, _ in nets]
    keys = ("weight_norm", "train_loss", "train_acc", "val_loss", "val_acc")
    rec = {"step": [], **{f"{pre}{k}": [] for pre, _, _ in nets for k in keys}}

    def record(step):
        rec["step"].append(step)
        for pre, net, folded in nets:
            net.eval()
            with torch.no_grad():
                for split, (xx, yy) in (("train", (ex, ey)), ("val", (vx, vy))):
                    logits = torch.cat([net(xx[i]) for i in iterate_minibatches(len(yy), 1000)])
                    rec[f"{pre}{split}_loss"].append(float(F.cross_entropy(logits.float(), yy)))
                    rec[f"{pre}{split}_acc"].append(
                        float((logits.argmax(1) == yy).double().mean()))
                rec[f"{pre}weight_norm"].append(
                    [float(m.weight.detach().double().norm())
                     for _, m in _weight_layers(folded())])

    g = torch.Generator().manual_seed(derive_seed(seed, 5))
    step, batches = 0, iter(())
    with _rng_guard(device):
        record(0)
        while step < steps:
            idx = next(batches, None)
            if idx is None:
                batches = iterate_minibatches(len(yt), bs, generator=g, drop_last=True)
                continue
            idx = idx.to(device)
            xb, yb = xt.index_select(0, idx), yt.index_select(0, idx)
            for (_, net, _), opt in zip(nets, opts, strict=True):
                net.train()
                loss = F.cross_entropy(net(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            step += 1
            if step % every == 0 or step == steps:
                record(step)
    return _plain({"fold_max_abs_err": err, "fold_max_rel_err": rel,
                   "weight_layers": [nm for nm, _ in _weight_layers(plain_net)],
                   "bn_weight_norm": bn_norms, "lr": lr, "batch_size": batch_size, **rec})


# ================================================================= 6. batch-size studies
def eval_batch_size_probe(model: nn.Module, data, *,
                          batch_sizes: Sequence[int] = (2, 8, 32, 128, 512),
                          split: str = "test", n: int | None = None, seed: int = 0) -> dict:
    r"""Test accuracy vs test-time batch size, batch vs running statistics (R-F5, L-F2ef).

    Rao & Sohl-Dickstein (2020), Sec. 7 and Fig. 5: evaluating with the statistics of
    the test batch itself ("Batch-Train"-style evaluation, ``mode="train"`` without
    running-stat updates) makes the accuracy depend on the test batch size :math:`B`;
    running statistics do not. The test samples are shuffled (seeded) and cut into
    ``n // B`` batches of exactly :math:`B` (the rest dropped: ``n_evaluated``).
    Normalizers without batch dependence give the same number at every :math:`B`.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    data : DataBundle or (x, y)
        Evaluation samples.
    batch_sizes : sequence of int
        Test batch sizes (>= 2; sizes above the sample count give None).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (seeded subset; all when None).
    seed : int
        Seed of the subset and the shuffle.

    Returns
    -------
    dict
        ``batch_sizes, acc_batch_stats, loss_batch_stats, n_evaluated, acc_running_stats,
        loss_running_stats, n``.
    """
    if isinstance(batch_sizes, (int, np.integer)):
        batch_sizes = [batch_sizes]
    sizes = [check_int("batch_sizes entry", b, 2) for b in batch_sizes]
    seed = check_int("seed", seed, 0)
    x, y = _data(data, split, n, seed, _device(model))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(seed, 6)))
    x, y = x.index_select(0, order.to(x.device)), y.index_select(0, order.to(y.device))

    def run(net, bsz, drop_last):
        logits, ys = [], []
        with torch.no_grad():
            for idx in iterate_minibatches(len(y), bsz, drop_last=drop_last):
                idx = idx.to(x.device)
                logits.append(net(x.index_select(0, idx)).float())
                ys.append(y.index_select(0, idx))
        if not logits:
            return None, None, 0
        lg, yy = torch.cat(logits), torch.cat(ys)
        return (float((lg.argmax(1) == yy).double().mean()), float(F.cross_entropy(lg, yy)),
                len(yy))

    batch_net = probe_copy(model, "train")
    accs, losses, counts = [], [], []
    for b in sizes:
        acc, loss, cnt = run(batch_net, b, True)
        accs.append(acc)
        losses.append(loss)
        counts.append(cnt)
    acc_r, loss_r, _ = run(probe_copy(model, "eval"), 1000, False)
    return _plain({"batch_sizes": sizes, "acc_batch_stats": accs, "loss_batch_stats": losses,
                   "n_evaluated": counts, "acc_running_stats": acc_r,
                   "loss_running_stats": loss_r, "n": int(len(y))})


# ============================================================================ registry
PROBES: dict[str, Callable[..., dict]] = {
    "norms": norms_probe,
    "dropout": dropout_probe,
    "propagation": propagation_probe,
    "hessian": hessian_probe,
    "bn-finetune": finetune_probe,
    "test-batch-size": eval_batch_size_probe,
}
"""Probes ``fn(model, data, **options) -> dict`` keyed by CLI name (module table)."""


def as_callback(probe: str | Callable[..., dict], data, every: int = 1, *,
                key: str | None = None, **options) -> Callable:
    """A ``train.train`` callback running ``probe`` every ``every`` epochs.

    The returned ``cb(model, epoch, metrics)`` gives ``{key: probe(model, data,
    **options)}`` on epochs divisible by ``every`` (None otherwise), which ``train``
    merges into the epoch's log line. The probe runs on a copy of the model with the
    global RNG states restored afterwards, so a run with the callback trains exactly
    as one without.

    Parameters
    ----------
    probe : str or callable
        A :data:`PROBES` name or a probe function.
    data : DataBundle or (x, y)
        The probe's data (e.g. the run's own ``make_dataset`` bundle).
    every : int
        Epoch interval (>= 1).
    key : str, optional
        Log key; ``"probe/<name>"`` by default.
    **options
        Options of the probe.

    Returns
    -------
    callable
    """
    if isinstance(probe, str):
        name = check_choice("probe", probe, PROBES)
        fn = PROBES[name]
    elif callable(probe):
        fn, name = probe, getattr(probe, "__name__", "probe")
    else:
        raise ValueError(f"probe must be a name in PROBES or a callable, got {probe!r}")
    every = check_int("every", every, 1)
    key = key or f"probe/{name}"

    def callback(model, epoch, metrics):
        if epoch % every:
            return None
        with _rng_guard(_device(model)):
            return {key: fn(model, data, **options)}

    return callback


# ==================================================================== run directories
def run_dataset(config, device="cpu"):
    """The data of a training run: ``make_dataset`` with the config's data set, folder,
    subsets, validation fraction, seed, amplitude and SNR (what ``train.train`` uses).

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config (a dict as ``TrainConfig.to_dict`` writes it is accepted).
    device : str or torch.device
        Where the tensors go.

    Returns
    -------
    DataBundle
    """
    if isinstance(config, Mapping):
        config = TrainConfig.from_dict(dict(config))
    return make_dataset(config.dataset, data_dir=config.data_dir,
                        val_fraction=config.val_fraction, subset=config.subset,
                        test_subset=config.test_subset, seed=config.seed, device=device,
                        amplitude=config.amplitude, snr=config.snr)


def _build(config: TrainConfig, bundle, device) -> nn.Module:
    return make_model(config.model, norm=config.norm, num_classes=bundle.num_classes,
                      in_channels=bundle.in_channels, image_size=bundle.image_size,
                      norm_options=config.norm_options or None,
                      **config.model_options).to(device)


def load_run(run_dir, device="cpu"):
    """The model, data and config of a training run directory written by ``train.train``.

    Parameters
    ----------
    run_dir : str or Path
        Folder with ``config.json`` and ``checkpoint.pt``.
    device : str or torch.device
        Where model and data go.

    Returns
    -------
    model : Net
        Rebuilt from the config, weights from the checkpoint, in eval mode.
    bundle : DataBundle
        ``make_dataset`` with the config's dataset, subsets, seed, amplitude and SNR.
    config : TrainConfig
    epoch : int
        Epochs done at the checkpoint.
    """
    run_dir = Path(run_dir)
    cfg_path, ckpt_path = run_dir / CONFIG_FILE, run_dir / CHECKPOINT_FILE
    for path in (cfg_path, ckpt_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run_dir must be a folder written by "
                                    f"train.train (config.json + checkpoint.pt)")
    config = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
    device = torch.device(device)
    bundle = run_dataset(config, device)
    model = _build(config, bundle, device)
    ckpt = load_checkpoint(ckpt_path, map_location=device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, bundle, config, int(ckpt["epoch"])


def run_probe(run_dir, probe: str, *, options: Mapping | None = None, device="cpu") -> dict:
    """Load a training run and run one probe of :data:`PROBES` on its checkpoint.

    Options the caller leaves out default from the run where that is the natural
    choice: ``norms`` takes ``coef`` = the run's ``norm_decay`` (else
    ``weight_decay``); ``bn-finetune`` takes ``batch_size`` = the run's batch size.

    Parameters
    ----------
    run_dir : str or Path
        Folder written by ``train.train``.
    probe : str
        A :data:`PROBES` name.
    options : mapping, optional
        Keyword options of the probe.
    device : str or torch.device
        Where to compute.

    Returns
    -------
    dict
        ``probe, run_dir, epoch, config, options, result`` (JSON-ready).
    """
    probe = check_choice("probe", probe, PROBES)
    options = dict(options or {})
    model, bundle, config, epoch = load_run(run_dir, device)
    if probe == "norms":
        options.setdefault("coef", config.norm_decay if config.norm_decay is not None
                           else config.weight_decay)
    if probe == "bn-finetune":
        options.setdefault("batch_size", config.batch_size)
    with _rng_guard(torch.device(device)):
        result = PROBES[probe](model, bundle, **options)
    return _plain({"probe": probe, "run_dir": str(run_dir), "epoch": epoch,
                   "config": config.to_dict(), "options": options, "result": result})


# ============================================================== probes that train nets
def gamma_vs_batch_size(base_config: TrainConfig, batch_sizes: Sequence[int], *,
                        layer: int | str | None = None, out_dir=None, device="cpu") -> dict:
    r""":math:`\overline{\gamma^2}` per norm layer after training at each batch size (L-F2ef).

    Luo et al. (2019), Sec. 5 "Batch size" and Fig. 2e,f: :math:`\gamma^2` grows with
    the batch size :math:`M` (the regularization :math:`\zeta \propto 1/M` weakens) and
    so does the validation loss. One ``train.train`` run per :math:`M` (everything else
    from ``base_config``; the learning rate scales with :math:`M` by the package's
    convention, as Luo et al. do). For Luo's "BN at one layer at a time" build
    ``base_config`` with a model that has a single norm layer (e.g.
    ``model_options={"single_bn_at_embedding": True}``).

    Parameters
    ----------
    base_config : TrainConfig
        The run, ``batch_size`` replaced.
    batch_sizes : sequence of int
        :math:`M` values (>= 2).
    layer : int or str, optional
        Report this norm layer only (index into the norm layers, or module name).
    out_dir : str or Path, optional
        Folder for the runs (``batch_<M>`` subfolders); a temporary folder when None.
    device : str
        Where to load the trained models.

    Returns
    -------
    dict
        ``batch_sizes, layers, gamma_sq`` (per batch size: a list over layers, or a
        number with ``layer``), ``train_loss, val_loss, val_acc`` (final epoch).
    """
    if not isinstance(base_config, TrainConfig):
        raise ValueError(f"base_config must be a TrainConfig, got "
                         f"{type(base_config).__name__}")
    sizes = [check_int("batch_sizes entry", b, 2) for b in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes must hold at least one batch size")
    out = {"batch_sizes": sizes, "layers": None, "gamma_sq": [], "train_loss": [],
           "val_loss": [], "val_acc": []}
    with contextlib.ExitStack() as stack:
        root = Path(out_dir) if out_dir is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="gamma_vs_m_")))
        for m in sizes:
            cfg = dataclasses.replace(base_config, batch_size=m)
            res = train(cfg, root / f"batch_{m}", progress=False)
            model, *_ = load_run(root / f"batch_{m}", device)
            named = [(nm, ly) for nm, ly in _norm_named(model)
                     if isinstance(getattr(ly, "weight", None), torch.Tensor)]
            names = [nm for nm, _ in named]
            g2 = [float(ly.weight.detach().double().square().mean()) for _, ly in named]
            if layer is not None:
                if isinstance(layer, str):
                    if layer not in names:
                        raise ValueError(f"layer must be one of {names}, got {layer!r}")
                    i = names.index(layer)
                else:
                    i = check_int("layer", layer, -len(names), len(names) - 1)
                names, g2 = [names[i]], g2[i]
            out["layers"] = names
            out["gamma_sq"].append(g2)
            for key in ("train_loss", "val_loss", "val_acc"):
                out[key].append(res.final.get(key))
    return _plain(out)


def probe_over_training(config: TrainConfig, steps: int, every: int,
                        probes: Mapping[str, Mapping], *, n_eval: int = 1000,
                        device="cpu") -> dict:
    """Train ``config`` for ``steps`` SGD steps, running ``probes`` every ``every`` steps.

    The run is ``train.train``'s at step resolution (R-F3: the first 2000 steps; R-F6:
    :math:`\\lambda_1` through training): same data (``make_dataset``), initialization
    (seed ``derive_seed(seed, 100)``), batch order and augmentation streams, parameter
    groups, learning-rate schedule and penalties, without checkpoints or logs. At steps
    ``0, every, 2 every, ...`` (and ``steps``) it records the validation accuracy (eval
    mode, ``n_eval`` samples) and each probe's output. The global RNG states are
    restored afterwards.

    Parameters
    ----------
    config : TrainConfig
        The run (``epochs`` is ignored: batches continue over epochs).
    steps : int
        SGD steps (>= 0).
    every : int
        Recording interval (>= 1).
    probes : mapping
        ``{name in PROBES: options}``.
    n_eval : int
        Validation samples for the accuracy.
    device : str
        Where to train.

    Returns
    -------
    dict
        ``step, lr, batch_loss, val_acc`` and one list per probe name.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1)
    for name in probes:
        check_choice("probe", name, PROBES)
    device = torch.device(device)
    bundle = run_dataset(config, device)
    n_train = len(bundle.train_y)
    if config.batch_size > n_train:
        raise ValueError(f"batch_size must be <= {n_train} (the training split), got "
                         f"{config.batch_size}")
    spe = n_train // config.batch_size
    rec = {"step": [], "lr": [], "batch_loss": [], "val_acc": [], **{p: [] for p in probes}}
    vx, vy = _data(bundle, "val", n_eval, 7, device) if len(bundle.val_y) else (None, None)
    with _rng_guard(device):
        torch.manual_seed(config.seed)
        torch.manual_seed(derive_seed(config.seed, 100))
        model = _build(config, bundle, device)
        penalties = [make_penalty(nm, c, **config.penalty_options.get(nm, {}))
                     for nm, c in config.penalties]
        needs = any(p.needs_norm_inputs for p in penalties)
        opt = torch.optim.SGD(param_groups(model, weight_decay=config.weight_decay,
                                           norm_decay=config.norm_decay,
                                           scalar_decay=config.scalar_decay),
                              lr=config.effective_lr, momentum=config.momentum)
        has_pn = any(isinstance(m, PopulationNorm) or getattr(m, "is_population_norm", False)
                     for m in model.modules())

        def record(step, lr, batch_loss):
            rec["step"].append(step)
            rec["lr"].append(lr)
            rec["batch_loss"].append(batch_loss)
            acc = None
            if vx is not None:
                with torch.no_grad():
                    acc = float((probe_copy(model, "eval")(vx).argmax(1) == vy).double().mean())
            rec["val_acc"].append(acc)
            for name, opts in probes.items():
                rec[name].append(PROBES[name](model, bundle, **dict(opts)))

        step, epoch, last_loss = 0, 0, None
        record(0, learning_rate(config, 0, spe), None)
        while step < steps:
            epoch += 1
            if has_pn and (epoch - 1) % config.pn_refresh_every == 0:
                g_pn = torch.Generator().manual_seed(derive_seed(config.seed, 200, epoch))
                idx = torch.randperm(n_train, generator=g_pn)[:config.pn_samples].to(device)
                refresh_population_stats(model, [bundle.train_x.index_select(0, i)
                                                 for i in idx.split(config.eval_batch_size)])
            g_order = torch.Generator().manual_seed(derive_seed(config.seed, 300, epoch))
            g_aug = torch.Generator().manual_seed(derive_seed(config.seed, 400, epoch, 0))
            for idx in iterate_minibatches(n_train, config.batch_size, generator=g_order,
                                           drop_last=True):
                if step >= steps:
                    break
                idx = idx.to(device)
                xb = bundle.train_x.index_select(0, idx)
                yb = bundle.train_y.index_select(0, idx)
                if config.augment:
                    xb = augment(xb, g_aug)
                lr = learning_rate(config, step, spe)
                for group in opt.param_groups:
                    group["lr"] = lr
                model.train()
                record_ = forward_with_record(model, xb, record_norm_inputs=needs)
                loss = F.cross_entropy(record_.logits.float(), yb)
                total = loss + sum(p(model, record_, xb) for p in penalties) if penalties \
                    else loss
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                step += 1
                last_loss = float(loss.detach())
                if step % every == 0 or step == steps:
                    record(step, lr, last_loss)
    return _plain(rec)


def propagation_over_training(config: TrainConfig, steps: int, every: int, *,
                              device="cpu", **options) -> dict:
    """:func:`probe_over_training` with the propagation probe only (R-F3).

    Parameters
    ----------
    config : TrainConfig
        The run.
    steps : int
        SGD steps.
    every : int
        Recording interval.
    device : str
        Where to train.
    **options
        Options of :func:`propagation_probe`.

    Returns
    -------
    dict
    """
    return probe_over_training(config, steps, every, {"propagation": options}, device=device)
