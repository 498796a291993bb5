"""One training loop for every deep run: SGD, schedules, checkpoints, exact resume, logs.

A run is described by a :class:`TrainConfig` and executed by :func:`train`, which
writes into ``out_dir``:

``config.json``
    The configuration (atomic write).
``log.jsonl``
    One JSON object per epoch: ``epoch, lr, train_loss, train_acc, val_loss, val_acc,
    test_loss, test_acc, penalty/<name>, time, diverged`` plus whatever the callbacks
    return. ``lr`` is the rate of the epoch's last step; ``train_*`` and ``penalty/*``
    are means over the epoch's batches; ``time`` is seconds of wall clock. Lines are
    appended without ``fsync``: resuming rebuilds the log from the checkpoint.
``checkpoint.pt``
    Model, optimizer, schedule position, the Python / numpy / torch (and CUDA) RNG
    states and the history, written atomically after every epoch. It loads with
    ``torch.load(..., weights_only=True)``; ``train(..., resume=True)`` continues
    from it and reproduces an uninterrupted run bit for bit on the CPU.
``result.json``
    The :class:`TrainResult` when the run ends.

Randomness. Every epoch draws a fresh permutation of the training split from a
generator seeded by ``(seed, epoch)`` (the last incomplete batch is dropped, BN needs
full batches), augmentation from one seeded by ``(seed, epoch, rank)``; dropout and
anything else use the global RNGs, whose states the checkpoint stores. So an epoch's
randomness does not depend on how the run got there, which is what makes resuming
exact.

Learning rate. ``lr`` is the rate at the base batch size 128; the rate used is scaled
linearly with the batch size (Goyal et al. 2017, "Accurate, large minibatch SGD"),
as Luo et al. (2019, Sec. 5) do when they vary the batch size:

.. math::

    \\eta_0 = \\mathrm{lr} \\cdot M / 128, \\qquad
    \\eta_t = \\eta_0 \\, f(t) \\, \\min\\!\\left(1, \\frac{t + 1}{T_w}\\right)

with ``t`` the global step (0-based), ``T_w`` the warm-up steps and ``f`` the
schedule:

* ``constant``: f = 1;
* ``step``: f = 0.1^k after k of the ``lr_milestones`` (fractions of ``epochs``,
  default 1/2 and 3/4, rounded to whole epochs >= 1);
* ``cosine``: f = (1 + cos(pi t / T)) / 2 over the T steps of the run;
* ``luo``: f = (1 - lr_decay)^t, the continuous per-step decay of Luo et al. 2019,
  App. B ("continuously decaying the learning rate by a factor of 1e-4 each step",
  read as multiplying it by 1 - 1e-4 after every step, so that
  eta_t = eta_0 exp(-1e-4 t) to first order; ``lr_decay`` = 1e-4 by default).

Data parallelism. Started by ``torchrun`` with ``WORLD_SIZE > 1``, the model is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` and every global batch
of ``batch_size`` samples is split into ``world_size`` contiguous shards, one per
rank. Gradients are averaged, so SGD sees the same global batch, but batch
normalization normalizes each shard by its own statistics: BN's batch size is
``M = batch_size / world_size`` and its noise (zeta ~ 1/M in Luo et al.) grows with
the number of devices. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_int, check_output_dir, check_real
from .._io import _jsonable, atomic_write_bytes, atomic_write_json, atomic_write_text
from . import _runfolder
from .data import DATASETS, augment, derive_seed, iterate_minibatches, make_dataset
from .models import MODELS, make_model, model_options
from .norms import NORMS, PopulationNorm, refresh_population_stats
from .penalties import PENALTIES, forward_with_record, make_penalty, param_groups

__all__ = ["BASE_BATCH", "CHECK_EVERY", "SCHEDULES", "TrainConfig", "TrainResult", "evaluate",
           "learning_rate", "load_checkpoint", "torch_threads", "train"]

log = logging.getLogger(__name__)

BASE_BATCH = 128
SCHEDULES = ("constant", "step", "cosine", "luo")
DEVICES = ("auto", "cpu", "cuda")
CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, RESULT_FILE = (
    "config.json", "log.jsonl", "checkpoint.pt", "result.json")
_CHECKPOINT_FORMAT = 1


def _parse_penalties(value) -> tuple:
    """``{name: coef}``, ``[(name, coef), ...]`` or ``["name=coef", ...]`` -> pairs."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for item in items:
        if isinstance(item, str):
            name, sep, coef = item.partition("=")
            if not sep:
                raise ValueError(f"penalties entries must read NAME=COEF, got {item!r}")
            item = (name.strip(), coef.strip())
        if not isinstance(item, Sequence) or len(item) != 2 or not isinstance(item[0], str):
            raise ValueError(f"penalties must be (name, coef) pairs, got {item!r}")
        coef = check_real(f"penalties[{item[0]!r}] coefficient", item[1], 0.0)
        out.append((item[0], coef))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"penalties must name each penalty once, got {names}")
    return tuple(out)


#: Fields added after the first release, with their defaults: left out of ``to_dict``
#: when at the default so that dicts and run-store keys of existing runs stay valid.
_LATE_FIELDS = {"compile": False, "threads": None}


def _valid_model_options(model: str) -> tuple:
    """Keyword options of ``make_model`` for ``model`` that the config may set."""
    fixed = {"name", "norm", "num_classes", "in_channels", "image_size", "norm_options"}
    common = [p.name for p in inspect.signature(make_model).parameters.values()
              if p.kind is p.KEYWORD_ONLY and p.name not in fixed]
    return (*model_options(model), *common)


def _check_keys(name: str, value: Mapping, valid) -> None:
    unknown = sorted(set(value) - set(valid))
    if unknown:
        raise ValueError(f"{name} has unknown key {unknown[0]!r}; valid keys: "
                         f"{', '.join(valid) or 'none'}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a deep run; validated when built.

    Field names follow the CLI flags (``--model --norm --penalty NAME=COEF --dataset
    --batch-size --epochs --lr --device``).

    Speed options. ``amp``, ``channels_last``, ``compile`` and ``threads`` can make
    training faster and each changes the numbers when set; at their defaults (off, off,
    off, ``None``) a run is bit for bit the one of the loop before they existed. Whether
    they pay depends on the CPU: measure with ``benchmarks/deep.py --sections options``.
    On a 2-core AVX2 EPYC (no native bfloat16), step speedups at batch 128 were:
    channels-last 0.9-1.0x (small cnn) and 1.1x (default cnn), bf16 autocast 0.3-0.45x
    and 0.1x (slower: emulated; ``train`` warns), ``torch.compile`` ~1.1x after ~30 s of
    compilation (small cnn), and 2 threads instead of 1 from 1.2x on an idle machine to
    0.3x with another process busy (torch's default wait policy).

    Parameters
    ----------
    model : str
        Architecture name for ``models.make_model`` (cnn, resnet18, wrn, mlp, deep-fc).
    norm : str
        Normalizer name for the model's norm layers (bn, pn, ln, ... ; see ``norms``).
    norm_options, model_options : dict
        Extra keyword arguments of the normalizer and of ``make_model``.
    penalties : tuple of (str, float)
        Additive penalties and their coefficients (``penalties.make_penalty``);
        a dict ``{name: coef}`` or strings ``"NAME=COEF"`` are accepted too.
    penalty_options : dict
        ``{name: {option: value}}`` passed to ``make_penalty``.
    dataset : {"auto", "fashion-mnist", "cifar10", "synthetic"}
        See :func:`~perceptron_theory.deep.data.make_dataset`.
    data_dir : str, optional
        Folder of the data set's files.
    subset, test_subset : int, optional
        Use this many training-pool / test samples (seeded subsets).
    val_fraction : float
        Held-out fraction of the training pool, in [0, 1).
    batch_size : int
        Global batch size M (>= 2; BN needs two samples).
    epochs : int
        Number of passes over the training split (>= 1).
    lr : float
        Learning rate at batch size 128; the rate used is ``lr * batch_size / 128``.
    momentum : float
        SGD (heavy-ball) momentum, in [0, 1).
    weight_decay : float
        L2 coefficient of the weights (>= 0).
    norm_decay : float, optional
        L2 coefficient of the norm layers' gamma and beta ("gamma decay"); ``None``
        uses ``weight_decay``.
    scalar_decay : float, optional
        L2 coefficient of scalar parameters such as Fixup's biases and multipliers;
        ``None`` means 0 (as the Fixup authors).
    schedule : {"constant", "step", "cosine", "luo"}
        Learning-rate schedule (module docstring).
    lr_decay : float
        Per-step decay of the ``luo`` schedule, in [0, 1) (Luo et al.: 1e-4).
    lr_milestones : tuple of float
        Epoch fractions in (0, 1) at which ``step`` divides the rate by 10.
    warmup_epochs : float
        Linear warm-up length in epochs (>= 0).
    augment : bool
        Random flips and pad-4 crops of training batches.
    amplitude : float
        Scale of the standardized inputs (> 0).
    snr : float, optional
        Signal-to-noise variance ratio of added input noise (> 0).
    seed : int
        Seed of data, initialization, batch order, augmentation and dropout.
    device : {"auto", "cpu", "cuda"}
        ``auto`` takes CUDA when available.
    amp : bool
        bfloat16 autocast of the training and evaluation forward passes, on CUDA and on
        the CPU. *Changes numerics.*
    channels_last : bool
        Channels-last (NHWC) memory format of the model and its image batches, on CUDA
        and on the CPU. *Changes numerics* (other kernels: the last bits differ, and
        training amplifies them).
    compile : bool
        ``torch.compile`` (Inductor) of the training forward (and so its backward); the
        first steps pay the compilation (seconds to a minute on a CPU). Evaluation and
        the PN refresh run the plain model. *Changes numerics* (fused, reordered float
        operations).
    threads : int, optional
        ``torch.set_num_threads(threads)`` for the run, restored afterwards; ``None``
        leaves the process's setting. *Changes numerics* bitwise (kernels split
        reductions by thread count), which is why it is part of the configuration.
        Under load from other processes, 1 thread is fastest (see ``benchmarks/deep.py``).
    deterministic : bool
        ``torch.use_deterministic_algorithms(True)`` for the run.
    pn_refresh_every : int
        Re-estimate the population statistics of ``pn`` layers exactly
        (``norms.refresh_population_stats(..., passes=None)``: one forward sweep over
        ``pn_samples`` for all PN layers together) at the start of epochs 1, 1 + k,
        1 + 2k, ... for k = ``pn_refresh_every``.
    pn_samples : int
        Training samples used for the population statistics (Luo et al.: 10k).
    eval_batch_size : int
        Batch size of evaluation passes.
    """

    model: str = "cnn"
    norm: str = "bn"
    norm_options: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)
    penalties: tuple = ()
    penalty_options: dict = field(default_factory=dict)
    dataset: str = "auto"
    data_dir: str | None = None
    subset: int | None = None
    test_subset: int | None = None
    val_fraction: float = 0.1
    batch_size: int = 128
    epochs: int = 10
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    norm_decay: float | None = None
    scalar_decay: float | None = None
    schedule: str = "cosine"
    lr_decay: float = 1e-4
    lr_milestones: tuple = (0.5, 0.75)
    warmup_epochs: float = 0.0
    augment: bool = False
    amplitude: float = 1.0
    snr: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    threads: int | None = None
    deterministic: bool = False
    pn_refresh_every: int = 1
    pn_samples: int = 10_000
    eval_batch_size: int = 1000

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        check_choice("model", self.model, MODELS)
        check_choice("norm", self.norm, NORMS)
        for name in ("norm_options", "model_options", "penalty_options"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a dict of keyword arguments, got {value!r}")
            put(name, dict(value))
        _check_keys("model_options", self.model_options, _valid_model_options(self.model))
        _check_keys("norm_options", self.norm_options, NORMS[self.norm].options)
        put("penalties", _parse_penalties(self.penalties))
        unknown = set(self.penalty_options) - {n for n, _ in self.penalties}
        if unknown:
            raise ValueError(f"penalty_options names penalties not in penalties: "
                             f"{sorted(unknown)}")
        for name, coef in self.penalties:
            check_choice("penalty name", name, PENALTIES)
            make_penalty(name, coef, **self.penalty_options.get(name, {}))  # checks options
        check_choice("dataset", self.dataset, DATASETS)
        if self.data_dir is not None:
            put("data_dir", str(self.data_dir))
        for name in ("subset", "test_subset"):
            if getattr(self, name) is not None:
                put(name, check_int(name, getattr(self, name), lo=2 if name == "subset" else 1))
        put("val_fraction", check_real("val_fraction", self.val_fraction, 0.0, 1.0,
                                       hi_open=True))
        put("batch_size", check_int("batch_size", self.batch_size, lo=2))
        put("epochs", check_int("epochs", self.epochs, lo=1))
        put("lr", check_real("lr", self.lr, 0.0, lo_open=True))
        put("momentum", check_real("momentum", self.momentum, 0.0, 1.0, hi_open=True))
        put("weight_decay", check_real("weight_decay", self.weight_decay, 0.0))
        for name in ("norm_decay", "scalar_decay"):
            if getattr(self, name) is not None:
                put(name, check_real(name, getattr(self, name), 0.0))
        check_choice("schedule", self.schedule, SCHEDULES)
        put("lr_decay", check_real("lr_decay", self.lr_decay, 0.0, 1.0, hi_open=True))
        try:
            milestones = tuple(float(m) for m in self.lr_milestones)
        except (TypeError, ValueError):
            raise ValueError(f"lr_milestones must be fractions in (0, 1), "
                             f"got {self.lr_milestones!r}") from None
        for m in milestones:
            check_real("lr_milestones entry", m, 0.0, 1.0, lo_open=True, hi_open=True)
        put("lr_milestones", tuple(sorted(milestones)))
        put("warmup_epochs", check_real("warmup_epochs", self.warmup_epochs, 0.0,
                                        float(self.epochs)))
        put("amplitude", check_real("amplitude", self.amplitude, 0.0, lo_open=True))
        if self.snr is not None:
            put("snr", check_real("snr", self.snr, 0.0, lo_open=True))
        put("seed", check_int("seed", self.seed, lo=0))
        check_choice("device", self.device, DEVICES)
        for name in ("augment", "amp", "channels_last", "compile", "deterministic"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
            put(name, bool(getattr(self, name)))
        if self.threads is not None:
            put("threads", check_int("threads", self.threads, lo=1))
        put("pn_refresh_every", check_int("pn_refresh_every", self.pn_refresh_every, lo=1))
        put("pn_samples", check_int("pn_samples", self.pn_samples, lo=2))
        put("eval_batch_size", check_int("eval_batch_size", self.eval_batch_size, lo=1))

    @property
    def effective_lr(self) -> float:
        """``lr * batch_size / 128`` (Goyal et al.'s linear scaling rule)."""
        return self.lr * self.batch_size / BASE_BATCH

    def to_dict(self) -> dict:
        """JSON-able fields. Options added after the first release (``compile``,
        ``threads``) appear only when they differ from their defaults, so a default
        configuration has the same dict (and run-store key) as before."""
        d = asdict(self)
        d["penalties"] = [list(p) for p in self.penalties]
        d["lr_milestones"] = list(self.lr_milestones)
        for name, default in _LATE_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        d = dict(d)
        if "penalties" in d and d["penalties"] is not None and not isinstance(
                d["penalties"], Mapping):
            d["penalties"] = [tuple(p) if isinstance(p, list) else p for p in d["penalties"]]
        return cls(**d)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    ``final`` is the last epoch's log line (empty when no epoch ran); ``history`` all
    of them; ``diverged`` is True when a non-finite loss stopped the run, in which case
    ``final`` holds ``diverged_epoch`` and ``diverged_step``.
    """

    final: dict
    history: tuple
    out_dir: str
    epochs_done: int
    diverged: bool = False

    def to_dict(self) -> dict:
        return {"final": self.final, "history": list(self.history), "out_dir": self.out_dir,
                "epochs_done": self.epochs_done, "diverged": self.diverged}


# ----------------------------------------------------------------------------- schedule


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of global step ``step`` (0-based); see the module docstring."""
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, lo=1)
    step = check_int("step", step, lo=0)
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        f = 1.0
    elif config.schedule == "step":
        epoch = step // steps_per_epoch
        f = 0.1 ** sum(epoch >= max(1, round(m * config.epochs)) for m in config.lr_milestones)
    elif config.schedule == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    else:  # luo
        f = (1.0 - config.lr_decay) ** step
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if warmup > 0 and step < warmup:
        f *= (step + 1) / warmup
    return config.effective_lr * f


# ----------------------------------------------------------------------------- helpers


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _rng_state() -> dict:
    """Python, numpy, torch and CUDA RNG states as types ``weights_only`` loads."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "python": [int(py_state[0]), [int(v) for v in py_state[1]], py_state[2]],
        "numpy": [str(np_state[0]), torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by :func:`train`, loaded with ``weights_only=True``."""
    return _runfolder.load(Path(path), map_location, _CHECKPOINT_FORMAT)


class _Recorder(nn.Module):
    """``forward_with_record`` as a module, so DDP sees the forward pass."""

    def __init__(self, model: nn.Module, record_norm_inputs: bool):
        super().__init__()
        self.model = model
        self.record_norm_inputs = record_norm_inputs

    def forward(self, x):
        return forward_with_record(self.model, x, record_norm_inputs=self.record_norm_inputs)


def _has_population_norm(model: nn.Module) -> bool:
    return any(isinstance(m, PopulationNorm) or getattr(m, "is_population_norm", False)
               for m in model.modules())


def _autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on ``device`` (CUDA or CPU) when ``amp``."""
    if amp:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _cpu_has_bf16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def _memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in channels-last layout when asked and it is an image batch."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after;
    ``None`` changes nothing.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    prev = torch.get_num_threads()
    if n is not None:
        n = check_int("threads", n, lo=1)
        if n != prev:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev:
            torch.set_num_threads(prev)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, *,
             amp: bool = False, channels_last: bool = False):
    """Mean cross-entropy and accuracy of ``model`` in eval mode; ``(None, None)`` if empty.

    The model is left in eval mode; callers switch it back to training.
    """
    if len(y) == 0:
        return None, None
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
    correct = torch.zeros((), dtype=torch.int64, device=y.device)
    for idx in iterate_minibatches(len(y), batch_size):
        idx = idx.to(x.device)
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        xb = _memory_format(xb, channels_last)
        with _autocast(x.device, amp):
            logits = model(xb).float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(1) == yb).sum()
    return float(loss_sum) / len(y), float(correct) / len(y)


@contextlib.contextmanager
def _determinism(enabled: bool, cuda: bool):
    prev = torch.are_deterministic_algorithms_enabled()
    prev_bench = torch.backends.cudnn.benchmark
    if enabled:
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)
        torch.backends.cudnn.benchmark = prev_bench


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created: bool = False

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    def all_min(self, value: int) -> int:
        if self.world_size > 1:
            import torch.distributed as dist

            t = torch.tensor([value], dtype=torch.int64,
                             device="cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            value = int(t)
        return value

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BN running statistics) everywhere, before evaluation."""
        if self.world_size > 1:
            import torch.distributed as dist

            for buf in model.buffers():
                dist.broadcast(buf, 0)


def _init_distributed(device_name: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    ctx = _Dist(rank=int(os.environ.get("RANK", "0")), world_size=world,
                local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        use_cuda = device_name != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        ctx.created = True
    return ctx


def _config_json(config: TrainConfig) -> dict:
    return json.loads(json.dumps(config.to_dict(), default=_jsonable))


def _check_resume_config(out_dir: Path, config: TrainConfig) -> None:
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    with contextlib.suppress(ValueError, TypeError):  # fill in fields added since
        saved = _config_json(TrainConfig.from_dict(saved))
    now = _config_json(config)
    diff = sorted(k for k in set(saved) | set(now)
                  if k != "epochs" and saved.get(k) != now.get(k))
    if diff:
        raise ValueError(f"resume: config differs from {path} in {diff}; only epochs may "
                         "change when resuming")


def _progress_bar(enabled, total, initial):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional for the library
        return None
    return tqdm(total=total, initial=initial, unit="epoch", leave=False)


# ----------------------------------------------------------------------------- train


def train(config: TrainConfig, out_dir, *, resume: bool = False, progress=None,
          callbacks: Sequence[Callable] = ()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` with SGD; checkpoint and log each epoch.

    Objective per batch: mean cross-entropy of the logits plus each penalty's value
    (coefficients already applied by ``make_penalty``). Weight decay enters through the
    optimizer's parameter groups (``penalties.param_groups``). The model is evaluated
    in eval mode on the validation and test splits after every epoch; ``train_loss``
    and ``train_acc`` are running means over the epoch's training batches (train mode,
    augmented inputs, cross-entropy only).

    Parameters
    ----------
    config : TrainConfig
        The run.
    out_dir : str or Path
        Output folder (created). Without ``resume`` it must not hold a checkpoint. It is
        locked while the run lasts (``.lock`` names the holder; a second writer gets a
        ValueError, a killed holder's lock is taken over) and temporary files of killed
        writes are removed (:mod:`._runfolder`).
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (or start afresh when there is none).
        The configuration must equal the saved one (``config.json`` and the one stored
        in the checkpoint) except for ``epochs``, which may not drop below those done.
    progress : bool, optional
        tqdm progress bar over epochs; default: when stderr is a terminal.
    callbacks : sequence of callables
        ``cb(model, epoch, metrics) -> dict | None`` after each epoch's evaluation; a
        returned dict is merged into the epoch's log line (values must be JSON-able).

    Returns
    -------
    TrainResult
        Divergence (a non-finite loss) stops training and is reported as
        ``diverged=True`` with ``diverged_epoch`` and ``diverged_step`` in the last
        log line; the checkpoint then still holds the last finite epoch. The loss is
        checked every :data:`CHECK_EVERY` steps and at the end of every epoch, and the
        report names the first non-finite step with the means of the steps before it,
        as a check at every step would.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables, got {cb!r}")
    out_dir = check_output_dir("out_dir", out_dir)
    # one writer per folder; stale temporary files of killed writes are removed
    with _runfolder.RunLock(out_dir, enabled=_runfolder.rank_is_main()):
        return _train_in_folder(config, out_dir, resume, progress, callbacks)


def _train_in_folder(config, out_dir, resume, progress, callbacks) -> TrainResult:
    ckpt_path = out_dir / CHECKPOINT_FILE
    if resume:
        _check_resume_config(out_dir, config)
        if ckpt_path.is_file():  # the config the weights came from, not only config.json
            _runfolder.check_resume(load_checkpoint(ckpt_path), config, ckpt_path)
    elif ckpt_path.exists():
        raise ValueError(f"out_dir {out_dir} already holds {CHECKPOINT_FILE}; pass "
                         "resume=True to continue it or choose another folder")

    dist_ctx = _init_distributed(config.device)
    device = _resolve_device(config.device, dist_ctx.local_rank)
    if config.batch_size % dist_ctx.world_size:
        raise ValueError(f"batch_size must be a multiple of the world size "
                         f"{dist_ctx.world_size}, got {config.batch_size}")
    if config.amp and device.type == "cpu" and not _cpu_has_bf16():
        log.warning("amp: this CPU has no native bfloat16 (AVX512-BF16 / AMX); autocast "
                    "emulates it and is usually several times slower than float32")

    try:
        with _determinism(config.deterministic, device.type == "cuda"), \
                torch_threads(config.threads):
            return _train(config, out_dir, resume, progress, callbacks, dist_ctx, device,
                          config.amp, config.channels_last)
    finally:
        if dist_ctx.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(config, out_dir, resume, progress, callbacks, dist_ctx, device, use_amp,
           channels_last) -> TrainResult:
    ckpt_path = out_dir / CHECKPOINT_FILE
    is_main = dist_ctx.rank == 0
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    bundle = make_dataset(config.dataset, data_dir=config.data_dir,
                          val_fraction=config.val_fraction, subset=config.subset,
                          test_subset=config.test_subset, seed=config.seed, device=device,
                          amplitude=config.amplitude, snr=config.snr)
    n_train = len(bundle.train_y)
    if config.batch_size > n_train:
        raise ValueError(f"batch_size must be an integer in [2, {n_train}] (the training "
                         f"split of {bundle.name}), got {config.batch_size}")
    steps_per_epoch = n_train // config.batch_size

    torch.manual_seed(derive_seed(config.seed, 100))
    model = make_model(config.model, norm=config.norm, num_classes=bundle.num_classes,
                       in_channels=bundle.in_channels, image_size=bundle.image_size,
                       norm_options=config.norm_options or None,
                       **config.model_options).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    penalties = [(name, make_penalty(name, coef, **config.penalty_options.get(name, {})))
                 for name, coef in config.penalties]
    needs_norm_inputs = any(getattr(p, "needs_norm_inputs", False) for _, p in penalties)
    optimizer = torch.optim.SGD(
        param_groups(model, weight_decay=config.weight_decay, norm_decay=config.norm_decay,
                     scalar_decay=config.scalar_decay),
        lr=config.effective_lr, momentum=config.momentum)
    recorder = _Recorder(model, needs_norm_inputs)
    if dist_ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        recorder = DistributedDataParallel(
            recorder, device_ids=[device.index] if device.type == "cuda" else None)
    has_pn = _has_population_norm(model)
    forward = torch.compile(recorder) if config.compile else recorder

    epoch, step, history = 0, 0, []
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        epoch, step = int(ckpt["epoch"]), int(ckpt["schedule"]["step"])
        history = json.loads(ckpt["history"])
        _set_rng_state(ckpt["rng"])
        log.info("resuming %s at epoch %d", out_dir, epoch)
    elif resume:
        log.info("resume: no %s in %s; starting afresh", CHECKPOINT_FILE, out_dir)

    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / CONFIG_FILE, config.to_dict())
        # The log is rebuilt from the checkpoint, dropping lines of an interrupted epoch;
        # so it needs no fsync (the checkpoint, config and result files get one).
        atomic_write_text(out_dir / LOG_FILE,
                          "".join(json.dumps(h, default=_jsonable) + "\n" for h in history),
                          fsync=False)

    bar = _progress_bar(progress if is_main else False, config.epochs, epoch)
    diverged = False
    try:
        while epoch < config.epochs and not diverged:
            epoch += 1
            t0 = time.perf_counter()
            if has_pn and (epoch - 1) % config.pn_refresh_every == 0:
                g_pn = torch.Generator().manual_seed(derive_seed(config.seed, 200, epoch))
                idx = torch.randperm(n_train, generator=g_pn)[:config.pn_samples].to(device)
                batches = [_memory_format(bundle.train_x.index_select(0, i), channels_last)
                           for i in idx.split(config.eval_batch_size)]
                refresh_population_stats(model, batches, passes=None)  # exact, one sweep
            model.train()
            g_order = torch.Generator().manual_seed(derive_seed(config.seed, 300, epoch))
            g_aug = torch.Generator().manual_seed(
                derive_seed(config.seed, 400, epoch, dist_ctx.rank))
            sums = torch.zeros(3 + len(penalties), dtype=torch.float64, device=device)
            lr = learning_rate(config, step, steps_per_epoch)
            window = _Window()
            for idx in iterate_minibatches(n_train, config.batch_size, generator=g_order,
                                           drop_last=True):
                if dist_ctx.world_size > 1:
                    idx = idx.tensor_split(dist_ctx.world_size)[dist_ctx.rank]
                idx = idx.to(device)
                xb = bundle.train_x.index_select(0, idx)
                yb = bundle.train_y.index_select(0, idx)
                if config.augment:
                    xb = augment(xb, g_aug)
                xb = _memory_format(xb, channels_last)
                lr = learning_rate(config, step, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with _autocast(device, use_amp):
                    record = forward(xb)
                    logits = record.logits.float()
                    ce = F.cross_entropy(logits, yb)
                    pen = [p(model, record, xb).float() for _, p in penalties]
                    loss = ce + sum(pen) if pen else ce
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window.add(loss, ce, pen, logits, yb)
                if len(window) == CHECK_EVERY:
                    sums, bad = window.flush(sums, step, dist_ctx)
                    if bad is not None:
                        diverged, step = True, bad
                        break
            if not diverged and len(window):
                sums, bad = window.flush(sums, step, dist_ctx)
                if bad is not None:
                    diverged, step = True, bad
            if diverged:
                lr = learning_rate(config, step, steps_per_epoch)  # the diverged step's
            sums = dist_ctx.all_sum(sums).cpu().tolist()
            seen = sums[2]
            metrics = {"epoch": epoch, "lr": lr,
                       "train_loss": sums[0] / seen if seen else None,
                       "train_acc": sums[1] / seen if seen else None}
            for (name, _), v in zip(penalties, sums[3:], strict=True):
                metrics[f"penalty/{name}"] = v / seen if seen else None
            if diverged:
                metrics.update(diverged=True, diverged_epoch=epoch, diverged_step=step,
                               time=time.perf_counter() - t0)
                log.warning("non-finite loss at epoch %d, step %d: training stopped",
                            epoch, step)
                history.append(metrics)
                if is_main:
                    _append_line(out_dir / LOG_FILE, metrics)
                break
            dist_ctx.sync_buffers(model)
            for split in ("val", "test"):
                x, y = bundle.split(split)
                loss, acc = evaluate(model, x, y, config.eval_batch_size, amp=use_amp,
                                     channels_last=channels_last)
                metrics[f"{split}_loss"], metrics[f"{split}_acc"] = loss, acc
            for cb in callbacks:
                extra = cb(model, epoch, dict(metrics))
                if extra:
                    metrics.update(extra)
            model.train()
            metrics["time"] = time.perf_counter() - t0
            metrics["diverged"] = False
            history.append(metrics)
            if is_main:
                _save_checkpoint(ckpt_path, model, optimizer, epoch, step, history, config)
                _append_line(out_dir / LOG_FILE, metrics)
                log.info("epoch %d/%d: %s", epoch, config.epochs, _short(metrics))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(_short(metrics), refresh=False)
    finally:
        if bar is not None:
            bar.close()

    result = TrainResult(final=dict(history[-1]) if history else {}, history=tuple(history),
                         out_dir=str(out_dir), epochs_done=epoch - int(diverged),
                         diverged=diverged)
    if is_main:
        atomic_write_json(out_dir / RESULT_FILE, result.to_dict())
    return result


#: Steps between finiteness checks of the training loss (and at every epoch's end).
CHECK_EVERY = 32


class _Window:
    """The steps since the last finiteness check, for :meth:`flush`.

    ``train`` checks the loss every :data:`CHECK_EVERY` steps instead of at every step
    (a check is a device synchronization and a few small ops). The check finds the first
    non-finite loss of the window, so divergence is reported at the same step, with the
    same partial means, as a check at every step would: the steps before it are added
    to the epoch's sums one by one in order (a cumulative sum from the previous sums),
    the steps from it on are dropped. The parameters did take those (non-finite) steps,
    but training stops, no checkpoint is written, and the last one is the last finite
    epoch.
    """

    def __init__(self):
        self.losses, self.ce, self.pen, self.logits, self.labels = [], [], [], [], []

    def __len__(self) -> int:
        return len(self.losses)

    def add(self, loss, ce, pen, logits, labels) -> None:
        self.losses.append(loss.detach())
        self.ce.append(ce.detach())
        self.pen.append([v.detach() for v in pen])
        self.logits.append(logits.detach())
        self.labels.append(labels)

    def flush(self, sums: torch.Tensor, step: int, dist_ctx: _Dist):
        """``(sums + the finite steps' sums, the global step of the first non-finite loss
        on any rank or None)``, ``step`` being the global step after the window; the
        window is emptied."""
        k = len(self.losses)
        finite = torch.isfinite(torch.stack(self.losses))
        good = k if bool(finite.all()) else int(finite.logical_not().nonzero()[0, 0])
        good = dist_ctx.all_min(good)
        if good:
            n_b = torch.tensor([float(len(y)) for y in self.labels[:good]],
                               dtype=torch.float64, device=sums.device)
            correct = (torch.stack(self.logits[:good]).argmax(2)
                       == torch.stack(self.labels[:good])).sum(1).double()
            cols = [torch.stack(self.ce[:good]).double() * n_b, correct, n_b]
            cols += [torch.stack([p[i] for p in self.pen[:good]]).double() * n_b
                     for i in range(len(self.pen[0]))]
            rows = torch.stack(cols, 1)
            # a cumulative sum starting from ``sums`` adds the steps one at a time in order,
            # as ``sums += row`` at every step did (the same float64 roundings)
            sums = torch.cat([sums[None], rows]).cumsum(0)[-1]
        self.__init__()
        return sums, (None if good == k else step - k + good)


def _short(metrics: dict) -> str:
    keys = ("train_loss", "val_acc", "test_acc")
    return " ".join(f"{k}={metrics[k]:.4g}" for k in keys if metrics.get(k) is not None)


def _append_line(path: Path, obj: dict) -> None:
    """Append one log line (no fsync: ``train(resume=True)`` rebuilds the log from the
    checkpoint, which is synced)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, default=_jsonable) + "\n")


def _save_checkpoint(path, model, optimizer, epoch, step, history, config) -> None:
    """``torch.save`` into memory, then an atomic write (temp file + ``os.replace``)."""
    state = {
        "format": _CHECKPOINT_FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": {"step": step, "name": config.schedule},
        "rng": _rng_state(),
        "history": json.dumps(history, default=_jsonable),
        "config": json.dumps(config.to_dict(), default=_jsonable),
        "torch_version": str(torch.__version__),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
