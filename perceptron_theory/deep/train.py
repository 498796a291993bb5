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

(:class:`TrainConfig` and what it builds -- data, model, penalties, optimizer -- live
in :mod:`~perceptron_theory.deep.runs`; ``TrainConfig`` and ``load_checkpoint`` are
re-exported here.)

Every SGD step of the package runs here. Measurements hook in through ``callbacks``
(after each epoch) and ``step_callbacks`` (before the first step and after every
step); ``train(config)`` without ``out_dir`` writes nothing and leaves the global RNG
states as it found them, and then may start from a given ``model`` and ``data`` and
stop after ``max_steps`` steps. The probes that train (``probes.probe_over_training``,
``probes.finetune_probe``) are such runs.

Randomness. The initialization draws from the global torch RNG seeded with
``derive_seed(seed, 100)``. Every epoch draws a fresh permutation of the training
split from a generator seeded by ``(seed, 300, epoch)`` (the last incomplete batch is
dropped, BN needs full batches), augmentation from one seeded by ``(seed, 400, epoch,
rank)`` and the samples of the population statistics from ``(seed, 200, epoch)``;
dropout and anything else use the global RNGs, whose states the checkpoint stores. So
an epoch's randomness does not depend on how the run got there, which is what makes
resuming exact.

Learning rate: :func:`~perceptron_theory.deep.runs.learning_rate` (re-exported here).

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
import io
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_output_dir
from .._io import _jsonable, atomic_write_bytes, atomic_write_json, atomic_write_text
from . import _runfolder
from .data import DataBundle, augment, derive_seed, iterate_minibatches
from .norms import PopulationNorm, refresh_population_stats
from .penalties import forward_with_record
from .runs import (
    BASE_BATCH,
    CHECKPOINT_FILE,
    CHECKPOINT_FORMAT,
    CONFIG_FILE,
    LOG_FILE,
    RESULT_FILE,
    SCHEDULES,
    TrainConfig,
    build_model,
    learning_rate,
    load_checkpoint,
    make_optimizer,
    make_penalties,
    run_dataset,
)

__all__ = ["BASE_BATCH", "CHECK_EVERY", "SCHEDULES", "TrainConfig", "TrainResult", "evaluate",
           "learning_rate", "load_checkpoint", "torch_threads", "train"]

log = logging.getLogger(__name__)

#: Splits evaluated after every epoch by default.
EVAL_SPLITS = ("val", "test")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    ``final`` is the last epoch's log line (empty when no epoch ran); ``history`` all
    of them; ``diverged`` is True when a non-finite loss stopped the run, in which case
    ``final`` holds ``diverged_epoch`` and ``diverged_step``; ``out_dir`` is None for a
    run without files.
    """

    final: dict
    history: tuple
    out_dir: str | None
    epochs_done: int
    diverged: bool = False

    def to_dict(self) -> dict:
        return {"final": self.final, "history": list(self.history), "out_dir": self.out_dir,
                "epochs_done": self.epochs_done, "diverged": self.diverged}


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


def train(config: TrainConfig, out_dir=None, *, resume: bool = False, progress=None,
          callbacks: Sequence[Callable] = (), step_callbacks: Sequence[Callable] = (),
          eval_splits: Sequence[str] = EVAL_SPLITS, model: nn.Module | None = None,
          data: DataBundle | None = None, device=None,
          max_steps: int | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` with SGD; checkpoint and log each epoch.

    Objective per batch: mean cross-entropy of the logits plus each penalty's value
    (coefficients already applied by ``make_penalty``). Weight decay enters through the
    optimizer's parameter groups (``penalties.param_groups``). The model is evaluated
    in eval mode on the validation and test splits after every epoch; ``train_loss``
    and ``train_acc`` are running means over the epoch's training batches (train mode,
    augmented inputs, cross-entropy only).

    Without ``out_dir`` nothing is written (no folder, log, checkpoint or result), the
    run stays in this process (no ``DistributedDataParallel``), and the global Python,
    numpy, torch and CUDA RNG states are restored when it ends: a probe can train a net
    (``probes.probe_over_training``, ``probes.finetune_probe``) without side effects,
    even from inside another run's callback. Only this mode takes ``model``, ``data``,
    ``device`` and ``max_steps``, because a run folder must be rebuildable from its
    ``config.json`` (:func:`~perceptron_theory.deep.runs.load_run`).

    Parameters
    ----------
    config : TrainConfig
        The run.
    out_dir : str or Path, optional
        Output folder (created). Without ``resume`` it must not hold a checkpoint. It is
        locked while the run lasts (``.lock`` names the holder; a second writer gets a
        ValueError, a killed holder's lock is taken over) and temporary files of killed
        writes are removed (:mod:`._runfolder`). None: write nothing (see above).
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (or start afresh when there is none).
        The configuration must equal the saved one (``config.json`` and the one stored
        in the checkpoint) except for ``epochs``, which may not drop below those done.
    progress : bool, optional
        tqdm progress bar over epochs; default: when stderr is a terminal.
    callbacks : sequence of callables
        ``cb(model, epoch, metrics) -> dict | None`` after each epoch's evaluation; a
        returned dict is merged into the epoch's log line (values must be JSON-able).
    step_callbacks : sequence of callables
        ``cb(model, step, info)`` once before the first step of the call (``step`` = the
        steps done so far, 0 for a new run; ``info["batch_loss"]`` None) and after every
        SGD step (``step`` counts it). ``info``: ``epoch``, ``lr`` (the step's rate; the
        next step's before the first), ``batch_loss`` (the batch's cross entropy, a
        0-dim tensor, penalties excluded). The return value is ignored; the model is
        put back in training mode afterwards. Used for measurements at step resolution.
    eval_splits : sequence of {"val", "test"}
        Splits evaluated after every epoch (``()``: none, e.g. when a callback measures
        what it needs).
    model : torch.nn.Module, optional
        Train this net, in place, instead of building ``config``'s (``config.model``,
        ``norm`` and their options are then unused, and so is the initialization
        seed). Needs ``out_dir=None``.
    data : DataBundle, optional
        Train on this data instead of ``run_dataset(config)``; on the training device.
        Needs ``out_dir=None``.
    device : str or torch.device, optional
        Where to train: by default the device of ``model`` when given, else
        ``config.device``. Needs ``out_dir=None``.
    max_steps : int, optional
        Stop after this many SGD steps (the last epoch may be partial), however many
        epochs that takes; ``config.epochs`` still sets the learning-rate schedule's
        length. Needs ``out_dir=None``.

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
    callbacks, step_callbacks = tuple(callbacks), tuple(step_callbacks)
    for cb in callbacks + step_callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables, got {cb!r}")
    if isinstance(eval_splits, str):
        eval_splits = (eval_splits,)
    eval_splits = tuple(eval_splits)
    for split in eval_splits:
        if split not in EVAL_SPLITS:
            raise ValueError(f"eval_splits entries must be one of {', '.join(EVAL_SPLITS)}, "
                             f"got {split!r}")
    if out_dir is None:
        if resume:
            raise ValueError("resume needs out_dir (the folder of the run to continue)")
        return _train_without_files(config, progress, callbacks, step_callbacks, eval_splits,
                                    model, data, device, max_steps)
    given = [k for k, v in (("model", model), ("data", data), ("device", device),
                            ("max_steps", max_steps)) if v is not None]
    if given:
        raise ValueError(f"{given[0]} needs out_dir=None: a run folder must be rebuildable "
                         f"from its config.json")
    out_dir = check_output_dir("out_dir", out_dir)
    # one writer per folder; stale temporary files of killed writes are removed
    with _runfolder.RunLock(out_dir, enabled=_runfolder.rank_is_main()):
        return _train_in_folder(config, out_dir, resume, progress, callbacks,
                                step_callbacks, eval_splits)


def _train_in_folder(config, out_dir, resume, progress, callbacks, step_callbacks,
                     eval_splits) -> TrainResult:
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
    _warn_slow_amp(config, device)
    run = _Run(config, device, dist_ctx, out_dir=out_dir, resume=resume, progress=progress,
               callbacks=callbacks, step_callbacks=step_callbacks, eval_splits=eval_splits)
    try:
        with _determinism(config.deterministic, device.type == "cuda"), \
                torch_threads(config.threads):
            return _train(run)
    finally:
        if dist_ctx.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train_without_files(config, progress, callbacks, step_callbacks, eval_splits, model,
                         data, device, max_steps) -> TrainResult:
    """:func:`train` with ``out_dir=None``: checks, then one process, RNG states kept."""
    if model is not None and not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if data is not None and not isinstance(data, DataBundle):
        raise ValueError(f"data must be a DataBundle, got {type(data).__name__}")
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, lo=0)
    if device is not None:
        device = torch.device(device)
    elif model is not None and next(model.parameters(), None) is not None:
        device = next(model.parameters()).device
    else:
        device = _resolve_device(config.device, 0)
    _warn_slow_amp(config, device)
    run = _Run(config, device, _Dist(), progress=progress, callbacks=callbacks,
               step_callbacks=step_callbacks, eval_splits=eval_splits, model=model,
               bundle=data, max_steps=max_steps)
    state = _rng_state()
    try:
        with _determinism(config.deterministic, device.type == "cuda"), \
                torch_threads(config.threads):
            return _train(run)
    finally:
        _set_rng_state(state)


def _warn_slow_amp(config: TrainConfig, device: torch.device) -> None:
    if config.amp and device.type == "cpu" and not _cpu_has_bf16():
        log.warning("amp: this CPU has no native bfloat16 (AVX512-BF16 / AMX); autocast "
                    "emulates it and is usually several times slower than float32")


@dataclass
class _Run:
    """What one call of :func:`train` runs: the config and the caller's choices."""

    config: TrainConfig
    device: torch.device
    dist_ctx: _Dist
    out_dir: Path | None = None
    resume: bool = False
    progress: bool | None = None
    callbacks: tuple = ()
    step_callbacks: tuple = ()
    eval_splits: tuple = EVAL_SPLITS
    model: nn.Module | None = None
    bundle: DataBundle | None = None
    max_steps: int | None = None


def _train(run: _Run) -> TrainResult:
    config, device, dist_ctx, out_dir = run.config, run.device, run.dist_ctx, run.out_dir
    use_amp, channels_last = config.amp, config.channels_last
    writes = dist_ctx.rank == 0 and out_dir is not None
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    bundle = run.bundle if run.bundle is not None else run_dataset(config, device)
    n_train = len(bundle.train_y)
    if config.batch_size > n_train:
        raise ValueError(f"batch_size must be an integer in [2, {n_train}] (the training "
                         f"split of {bundle.name}), got {config.batch_size}")
    steps_per_epoch = n_train // config.batch_size

    torch.manual_seed(derive_seed(config.seed, 100))
    model = run.model if run.model is not None else build_model(config, bundle, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    penalties = make_penalties(config)
    needs_norm_inputs = any(getattr(p, "needs_norm_inputs", False) for _, p in penalties)
    optimizer = make_optimizer(config, model)
    recorder = _Recorder(model, needs_norm_inputs)
    if dist_ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        recorder = DistributedDataParallel(
            recorder, device_ids=[device.index] if device.type == "cuda" else None)
    has_pn = _has_population_norm(model)
    forward = torch.compile(recorder) if config.compile else recorder

    epoch, step, history = 0, 0, []
    ckpt_path = None if out_dir is None else out_dir / CHECKPOINT_FILE
    if run.resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        epoch, step = int(ckpt["epoch"]), int(ckpt["schedule"]["step"])
        history = json.loads(ckpt["history"])
        _set_rng_state(ckpt["rng"])
        log.info("resuming %s at epoch %d", out_dir, epoch)
    elif run.resume:
        log.info("resume: no %s in %s; starting afresh", CHECKPOINT_FILE, out_dir)

    if writes:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / CONFIG_FILE, config.to_dict())
        # The log is rebuilt from the checkpoint, dropping lines of an interrupted epoch;
        # so it needs no fsync (the checkpoint, config and result files get one).
        atomic_write_text(out_dir / LOG_FILE,
                          "".join(json.dumps(h, default=_jsonable) + "\n" for h in history),
                          fsync=False)

    def at_step(batch_loss, lr):
        info = {"epoch": epoch, "lr": lr, "batch_loss": batch_loss}
        for cb in run.step_callbacks:
            cb(model, step, info)
        model.train()

    def more_epochs():
        return step < run.max_steps if run.max_steps is not None else epoch < config.epochs

    if run.step_callbacks:
        at_step(None, learning_rate(config, step, steps_per_epoch))
    bar = _progress_bar(run.progress if dist_ctx.rank == 0 else False,
                        config.epochs if run.max_steps is None else None, epoch)
    diverged = False
    try:
        while more_epochs() and not diverged:
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
                if run.step_callbacks:
                    at_step(ce.detach(), lr)
                if len(window) == CHECK_EVERY:
                    sums, bad = window.flush(sums, step, dist_ctx)
                    if bad is not None:
                        diverged, step = True, bad
                        break
                if run.max_steps is not None and step >= run.max_steps:
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
                if writes:
                    _append_line(out_dir / LOG_FILE, metrics)
                break
            dist_ctx.sync_buffers(model)
            for split in run.eval_splits:
                x, y = bundle.split(split)
                loss, acc = evaluate(model, x, y, config.eval_batch_size, amp=use_amp,
                                     channels_last=channels_last)
                metrics[f"{split}_loss"], metrics[f"{split}_acc"] = loss, acc
            for cb in run.callbacks:
                extra = cb(model, epoch, dict(metrics))
                if extra:
                    metrics.update(extra)
            model.train()
            metrics["time"] = time.perf_counter() - t0
            metrics["diverged"] = False
            history.append(metrics)
            if writes:
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
                         out_dir=None if out_dir is None else str(out_dir),
                         epochs_done=epoch - int(diverged), diverged=diverged)
    if writes:
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
        "format": CHECKPOINT_FORMAT,
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
