r"""A deep run: its configuration, what the configuration builds, and its folder.

:class:`TrainConfig` describes a run (validated when built). This module is the one
place where a configuration turns into objects, used by the training loop
(:func:`~perceptron_theory.deep.train.train`), the probes and the validation:

=====================  ======================================================================
:func:`run_dataset`    the data: ``make_dataset`` with the config's data set, folder, subsets,
                       validation fraction, seed, amplitude and SNR
:func:`build_model`    the network: ``make_model`` with the config's model, normalizer and
                       options, sized by the data (channels, image size, classes)
:func:`make_penalties` the additive penalties ``[(name, penalty), ...]``
:func:`make_optimizer` SGD with momentum over the parameter groups of
                       ``penalties.param_groups`` (weight, norm and scalar decay), at
                       :attr:`TrainConfig.effective_lr`
:func:`learning_rate`  the rate of every step: linear batch-size scaling, schedule, warm-up
:func:`load_run`       model (weights from the checkpoint), data, config and epoch of a run
                       folder written by ``train``
=====================  ======================================================================

A run folder holds ``config.json`` (:meth:`TrainConfig.to_dict`), ``log.jsonl``,
``checkpoint.pt`` (read by :func:`load_checkpoint`, ``weights_only=True``) and
``result.json``; ``train``'s module docstring describes each. The seeds a run draws
from (initialization, batch order, augmentation, population statistics) are the
training loop's and live there.

Examples
--------
>>> cfg = TrainConfig(model="mlp", dataset="synthetic", batch_size=256, lr=0.1, epochs=2,
...                   schedule="constant", penalties={"embedding-l2": 1e-3})
>>> cfg.effective_lr, learning_rate(cfg, step=7, steps_per_epoch=10)
(0.2, 0.2)
>>> [name for name, _ in make_penalties(cfg)]
['embedding-l2']
>>> TrainConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_int, check_real
from .data import DATASETS, DataBundle, make_dataset
from .models import MODELS, make_model, model_options
from .norms import NORMS
from .penalties import PENALTIES, make_penalty, param_groups

__all__ = ["BASE_BATCH", "CHECKPOINT_FILE", "CONFIG_FILE", "DEVICES", "LOG_FILE",
           "RESULT_FILE", "SCHEDULES", "TrainConfig", "build_model", "load_checkpoint",
           "learning_rate", "load_run", "make_optimizer", "make_penalties", "run_dataset"]

BASE_BATCH = 128
SCHEDULES = ("constant", "step", "cosine", "luo")
DEVICES = ("auto", "cpu", "cuda")
CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, RESULT_FILE = (
    "config.json", "log.jsonl", "checkpoint.pt", "result.json")
CHECKPOINT_FORMAT = 1


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
        Learning-rate schedule (:func:`learning_rate`).
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



# ------------------------------------------------------------------ config -> objects
def _config(config) -> TrainConfig:
    if isinstance(config, Mapping):
        return TrainConfig.from_dict(dict(config))
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig or its dict, got "
                         f"{type(config).__name__}")
    return config


def run_dataset(config, device="cpu") -> DataBundle:
    """The data of a run: ``make_dataset`` with the config's data set, folder, subsets,
    validation fraction, seed, amplitude and SNR (what ``train.train`` uses).

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
    config = _config(config)
    return make_dataset(config.dataset, data_dir=config.data_dir,
                        val_fraction=config.val_fraction, subset=config.subset,
                        test_subset=config.test_subset, seed=config.seed, device=device,
                        amplitude=config.amplitude, snr=config.snr)


def build_model(config, bundle: DataBundle, device) -> nn.Module:
    """The run's network on ``device``, sized by ``bundle``; initialized from the global
    torch RNG (``train`` seeds it first).

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config.
    bundle : DataBundle
        Its data (classes, input channels, image size).
    device : str or torch.device
        Where the model goes.

    Returns
    -------
    Net
    """
    config = _config(config)
    return make_model(config.model, norm=config.norm, num_classes=bundle.num_classes,
                      in_channels=bundle.in_channels, image_size=bundle.image_size,
                      norm_options=config.norm_options or None,
                      **config.model_options).to(device)


def make_penalties(config) -> list:
    """``[(name, penalty), ...]``: ``penalties.make_penalty`` of each of the config's
    penalties with its coefficient and options.

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config.

    Returns
    -------
    list of (str, callable)
    """
    config = _config(config)
    return [(name, make_penalty(name, coef, **config.penalty_options.get(name, {})))
            for name, coef in config.penalties]


def make_optimizer(config, model: nn.Module) -> torch.optim.SGD:
    """SGD with the config's momentum at ``effective_lr`` over ``param_groups(model)``
    (weight decay, ``norm_decay`` on the norm layers' gamma and beta, ``scalar_decay``).

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config.
    model : torch.nn.Module
        The network.

    Returns
    -------
    torch.optim.SGD
    """
    config = _config(config)
    return torch.optim.SGD(
        param_groups(model, weight_decay=config.weight_decay, norm_decay=config.norm_decay,
                     scalar_decay=config.scalar_decay),
        lr=config.effective_lr, momentum=config.momentum)


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    r"""The learning rate of global step ``step`` (0-based).

    ``lr`` is the rate at the base batch size 128; the rate used is scaled linearly with
    the batch size (Goyal et al. 2017, "Accurate, large minibatch SGD"), as Luo et al.
    (2019, Sec. 5) do when they vary the batch size:

    .. math::

        \eta_0 = \mathrm{lr} \cdot M / 128, \qquad
        \eta_t = \eta_0 \, f(t) \, \min\!\left(1, \frac{t + 1}{T_w}\right)

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

    Parameters
    ----------
    config : TrainConfig
        The run (``lr``, ``batch_size``, ``epochs``, ``schedule`` and its options).
    step : int
        Global step (>= 0).
    steps_per_epoch : int
        SGD steps per epoch (>= 1).

    Returns
    -------
    float
    """
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


# ------------------------------------------------------------------------ run folders
def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by ``train.train``, loaded with ``weights_only=True``; a
    missing, truncated or foreign file gives one line (:mod:`._runfolder`)."""
    from . import _runfolder

    return _runfolder.load(Path(path), map_location, CHECKPOINT_FORMAT)


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
    model = build_model(config, bundle, device)
    ckpt = load_checkpoint(ckpt_path, map_location=device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, bundle, config, int(ckpt["epoch"])
