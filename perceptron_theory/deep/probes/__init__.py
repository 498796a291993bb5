r"""Measurements of trained (or training) networks, behind one registry keyed by CLI name.

A *probe* is a function ``probe(model, data, **options) -> dict`` of plain, JSON-ready
numbers and lists. ``model`` is any :class:`~perceptron_theory.deep.models.Net`
(``model.features(x)`` = the embedding :math:`\mathrm{Emb}(x)`, ``model.classifier``);
``data`` is a :class:`~perceptron_theory.deep.data.DataBundle` or a pair ``(x, y)``
used for every split. Probes never change the model they are given: each works on a
private copy (:func:`probe_copy`), never touches the global random number generators
(every draw comes from a seeded ``torch.Generator``), and uses
``torch.autograd.grad`` (no ``.grad`` is written; ``bn-finetune`` trains its copies
with ``train.train``). So the same function serves at any checkpoint
(:func:`run_probe`) and as a training callback (:func:`as_callback`).

:data:`PROBES` maps each name to a :class:`ProbeSpec` (function, summary, claims,
source, options), callable as the function itself:

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

Outside the registry (they train networks rather than measure one, every SGD step by
``train.train``): :func:`gamma_vs_batch_size` (L-F2ef: :math:`\gamma^2` vs the training
batch size) and :func:`probe_over_training` / :func:`propagation_over_training` (R-F3,
R-F6: probes every few SGD *steps* of a run).

Layout: one module per probe (``norms``, ``dropout``, ``propagation``, ``hessian``,
``bn_finetune``, ``eval_batch_size``), the registry (``registry``: :class:`ProbeSpec`,
:data:`PROBES`, :func:`run_probe`, :func:`as_callback`), the probes that train
(``training``) and shared helpers (``_common``: :func:`probe_copy`). The Lanczos / SLQ
eigensolvers live in :mod:`perceptron_theory.deep.spectral`, run loading
(:func:`load_run`, :func:`run_dataset`) in :mod:`perceptron_theory.deep.runs`; both are
re-exported here, as is every name this module had before it became a package.

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
>>> spec = PROBES["dropout"]
>>> spec.summary, spec.claims, spec.options["p"]
('accuracy under test-time dropout on the embedding, and the drop from clean', ('D-T3',), 0.5)
>>> spec(net, (x, y), rate=0.5)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: option 'rate' is not accepted by probe 'dropout'; valid options: p, masks, ...
"""

from __future__ import annotations

from ..runs import load_run, run_dataset
from ..spectral import SpectralDensity, broadened_density, lanczos, slq_density, top_eigenvalues
from ._common import MODES, probe_copy
from .bn_finetune import finetune_probe, fold_batchnorm
from .dropout import dropout_probe
from .eval_batch_size import eval_batch_size_probe
from .hessian import HVP_METHODS, LOSSES, HessianOperator, hessian_probe
from .norms import norms_probe
from .propagation import propagation_probe
from .registry import PROBES, ProbeSpec, as_callback, probe_names, run_probe
from .training import gamma_vs_batch_size, probe_over_training, propagation_over_training

__all__ = [
    "PROBES",
    "ProbeSpec",
    "probe_names",
    "MODES",
    "HVP_METHODS",
    "LOSSES",
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
