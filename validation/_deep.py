"""Shared machinery of the deep-network checks: sizes, data, runs over seeds, verdicts.

A deep check trains a few :class:`~perceptron_theory.deep.train.TrainConfig` variants
(``{label: overrides}``) over the same seeds and compares final metrics *paired by seed*:
runs with the same seed share the data subset, the validation split and the batch order,
so the per-seed difference of two variants removes most of the data noise. A claim "A
beats B" becomes a :func:`~validation._core.finding`: the per-seed oriented differences
``d_s`` (positive when the claim holds) and a verdict fixed before any run --
``confirmed`` at paired ``t = mean/stderr >= 2``, ``contradicted`` at ``t <= -2``,
``unresolved`` in between -- or ``invalid`` when an arm it compares did not train.

Training floors
---------------
Every arm of a record must be *trained*: its seed-mean final validation accuracy at or
above the floor of its data set (:data:`FLOORS`; Fashion-MNIST 0.85, stated before any
run). An arm under its floor makes its records ``invalid (not trained)``, never a
verdict. Checks whose claim is about initialization or the first steps of training pass
``floor=None`` to :func:`run_grid` and say why.

Sizes (:data:`SCALES`)
----------------------
``tiny``
    Seconds per check, for the test suite: structure only, no floor, outcomes meaningless.
``quick``
    ``perceptron-theory reproduce --quick`` (<= 10 minutes for everything on two CPU
    cores): real data, nets trained over their floor, fewer arms and two seeds -- a smoke
    test of the verdicts, most of which stay ``unresolved`` at this size.
``cpu``
    The verdict-bearing size (about three hours for all deep checks on two cores,
    resumable through the run store): the seeds of each check come from a power
    calculation (:func:`seeds_for_power`) so that the paper's own effect size would reach
    ``|t| >= 2``.
``full``
    The papers' scale as far as one GPU allows (``device="auto"``), all of Fashion-MNIST.

Data
----
Fashion-MNIST (``apt-get install dataset-fashion-mnist``, files in
:data:`~perceptron_theory.deep.data.FASHION_MNIST_DIR`). Without it a deep check raises
:class:`DataMissing` and ``reproduce`` reports it *skipped*, with the install command;
the synthetic teacher is used only with :func:`options` ``allow_synthetic=True``
(``reproduce --allow-synthetic``), and every record names its data set.

Run store
---------
With :func:`options` ``cache_dir`` set, every run of :func:`run_grid` is stored as
``cache_dir/deep/<key>.json`` (key: SHA-256 of the complete configuration, the callback
and the package version) as soon as it finishes, written atomically with a checksum; a
stored run is read back instead of trained, a corrupt or partial entry is retrained.
An interrupted campaign therefore loses at most the runs in flight.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation._core import T_VERDICT, CheckResult, Comparison, finding

__all__ = ["SIZES", "SCALES", "CNN_OPTIONS", "BASE", "base", "FLOORS", "Scale",
           "DataMissing", "options", "resolve_size", "get_scale", "torch_device",
           "torch_threads", "dataset_args", "seeds_for_power", "SD_ACC", "SD_LOSS", "Runs",
           "run_grid", "paired", "sign_record", "ordering", "bound_check", "curve_plot",
           "training_plots", "fmt_pm", "summary_tail", "final_table", "trained"]

SIZES = ("tiny", "quick", "cpu", "full")
#: validation-accuracy floor of a trained arm, per data set (stated before any run)
FLOORS = {"fashion-mnist": 0.85, "cifar10": 0.60, "synthetic": 0.30}
#: training / test images kept in the uncompressed Fashion-MNIST copy (all of it)
CACHE_TRAIN, CACHE_TEST = 60_000, 10_000
INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"


class DataMissing(RuntimeError):
    """The data set of a deep check is not installed (and synthetic data were not allowed)."""


_OPTIONS = {"allow_synthetic": False, "cache_dir": None, "rerun": False}


@contextlib.contextmanager
def options(*, allow_synthetic: bool | None = None, cache_dir=None, rerun: bool | None = None):
    """Set the deep checks' options for a block: ``allow_synthetic`` (use the synthetic
    teacher when Fashion-MNIST is missing), ``cache_dir`` (the run store; None: no store)
    and ``rerun`` (train again and overwrite stored runs)."""
    prev = dict(_OPTIONS)
    if allow_synthetic is not None:
        _OPTIONS["allow_synthetic"] = bool(allow_synthetic)
    if cache_dir is not None:
        _OPTIONS["cache_dir"] = str(cache_dir)
    if rerun is not None:
        _OPTIONS["rerun"] = bool(rerun)
    try:
        yield
    finally:
        _OPTIONS.clear()
        _OPTIONS.update(prev)


@dataclass(frozen=True)
class Scale:
    """Data sizes, seeds and execution of one size.

    ``pool`` is the Fashion-MNIST training-pool subset (train + validation; ``None``: all
    60 000), ``val_fraction`` of it is held out for validation; ``test_subset`` test
    images are evaluated (unused by the checks, kept small). ``workers`` > 1 spreads the
    runs over spawned processes with ``threads`` torch threads each. ``floor``: whether
    arms are held to :data:`FLOORS` (not at ``tiny``). ``n_seeds`` is the default; a check
    may set its own from a power calculation.
    """

    name: str
    n_seeds: int
    pool: int | None
    val_fraction: float
    test_subset: int | None
    workers: int
    threads: int | None
    device: str
    floor: bool = True

    def seeds(self, seed: int, n: int | None = None) -> tuple[int, ...]:
        """The training seeds of a check called with ``seed``: ``seed, seed + 1, ...``."""
        return tuple(range(seed, seed + (n or self.n_seeds)))


SCALES = {
    "tiny": Scale("tiny", 2, 160, 0.25, 20, workers=1, threads=1, device="cpu", floor=False),
    "quick": Scale("quick", 1, 30_000, 1 / 6, 100, workers=2, threads=1, device="cpu"),
    "cpu": Scale("cpu", 5, 30_000, 1 / 6, 100, workers=2, threads=1, device="cpu"),
    "full": Scale("full", 5, None, 1 / 12, None, workers=1, threads=None, device="auto"),
}


#: Luo et al.'s 4conv+2fc CNN per size (``model_options`` of ``models.CNN``)
CNN_OPTIONS = {
    "tiny": {"channels": (2, 2, 4, 4), "hidden": 8, "padding": "valid"},
    "quick": {"channels": (4, 4, 8, 8), "hidden": 32, "padding": "valid"},
    "cpu": {"channels": (4, 4, 8, 8), "hidden": 32, "padding": "valid"},
    "quick-wide": {"channels": (8, 8, 16, 16), "hidden": 64, "padding": "valid"},
    "full": {},
}


#: The shared CNN run of each size (Luo's 4conv+2fc, narrowed below full; He init so that
#: norm-free arms train). quick and cpu use the same configuration, so quick's runs (seed
#: 0) are a subset of cpu's and the run store trains each once. Training length chosen
#: before any claim was measured, from a floor pilot (1 seed, lr 0.05, 25 000 training
#: images): after 3 epochs BN-family arms were at 0.856-0.877 but no norm 0.843 and WN
#: 0.837, so 4 epochs. ~45 s per run on one core.
BASE = {
    "tiny": dict(model="cnn", model_options={**CNN_OPTIONS["tiny"], "init": "he"},
                 batch_size=40, epochs=1, lr=0.05, momentum=0.9, weight_decay=5e-4,
                 schedule="cosine"),
    "quick": dict(model="cnn", model_options={**CNN_OPTIONS["quick"], "init": "he"},
                  batch_size=128, epochs=4, lr=0.05, momentum=0.9, weight_decay=5e-4,
                  schedule="cosine"),
    "full": dict(model="cnn", model_options={"init": "he"}, batch_size=128, epochs=40,
                 lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine"),
}
BASE["cpu"] = BASE["quick"]


def base(size: str, **overrides) -> dict:
    """A copy of :data:`BASE` for ``size`` with ``overrides`` applied."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE[size].items()}
    out.update(overrides)
    return out


#: Per-seed spread of a paired difference of final validation accuracy / loss between two
#: arms, assumed for power calculations before any run: the validation split holds 5000
#: images, so one accuracy near 0.88 has a binomial error sqrt(0.88 * 0.12 / 5000) = 0.0046
#: and a difference of two arms about sqrt(2) times that, 0.0065; per-image cross entropy
#: has a spread of about 0.8 at these accuracies, so a mean loss 0.011 and a difference
#: 0.016. Seed-to-seed training noise is partly shared by paired runs (same data order).
SD_ACC, SD_LOSS = 0.0065, 0.016


def seeds_for_power(effect: float, sd: float, *, lo: int = 3, hi: int = 10) -> int:
    """Seeds ``n`` at which a paired effect ``effect`` with per-seed spread ``sd`` has an
    expected ``t = effect sqrt(n) / sd >= T_VERDICT``: ``ceil((T sd / effect)^2)``, clipped
    to ``[lo, hi]``. ``effect`` is the paper's (converted to our metric), ``sd`` the spread
    of paired differences measured on pilot runs that did not look at the direction."""
    if not (effect > 0 and sd > 0):
        raise ValueError(f"effect and sd must be > 0, got {effect!r}, {sd!r}")
    return int(min(hi, max(lo, math.ceil((T_VERDICT * sd / effect) ** 2))))


def resolve_size(quick: bool, size: str | None) -> str:
    """``size`` if given (one of :data:`SIZES`), else ``"quick"``/``"full"`` from ``quick``."""
    if size is None:
        return "quick" if quick else "full"
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    return size


def get_scale(quick: bool, size: str | None) -> Scale:
    return SCALES[resolve_size(quick, size)]


def torch_device(scale: Scale) -> str:
    """The torch device name of ``scale`` for code that trains outside ``train.train``:
    ``"cpu"``, or ``"cuda"`` where the scale says ``"auto"`` and a GPU is present."""
    if scale.device == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------- data
_CACHE: dict[str, str] = {}


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (magic 0x0000 08 ndim, big-endian sizes)."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def _fashion_cache() -> str | None:
    """Folder of an uncompressed copy of Fashion-MNIST's IDX files; None if it is missing.

    Reading the gzipped 60 000 images costs about a second per run; the uncompressed copy
    (55 MB, made once per process, removed at exit) loads in milliseconds.
    """
    if "dir" in _CACHE:
        return _CACHE["dir"] or None
    from perceptron_theory.deep.data import load_fashion_mnist

    try:
        tr_x, tr_y = load_fashion_mnist(split="train")
        te_x, te_y = load_fashion_mnist(split="test")
    except (FileNotFoundError, ValueError):
        _CACHE["dir"] = ""
        return None
    d = Path(tempfile.mkdtemp(prefix="pt-fmnist-"))
    atexit.register(shutil.rmtree, d, True)
    for stem, arr in (("train-images-idx3-ubyte", tr_x[:CACHE_TRAIN, 0].numpy()),
                      ("train-labels-idx1-ubyte", tr_y[:CACHE_TRAIN].numpy()),
                      ("t10k-images-idx3-ubyte", te_x[:CACHE_TEST, 0].numpy()),
                      ("t10k-labels-idx1-ubyte", te_y[:CACHE_TEST].numpy())):
        _write_idx(d / stem, arr.astype(np.uint8))
    _CACHE["dir"] = str(d)
    return str(d)


def dataset_args(scale: Scale) -> dict:
    """TrainConfig data fields of ``scale``: Fashion-MNIST (an uncompressed copy), or the
    synthetic teacher when it is missing and :func:`options` allows it.

    Raises
    ------
    DataMissing
        Fashion-MNIST is not installed and synthetic data were not allowed.
    """
    common = dict(val_fraction=scale.val_fraction, test_subset=scale.test_subset)
    cache = _fashion_cache()
    if cache is not None:
        return dict(dataset="fashion-mnist", data_dir=cache, subset=scale.pool, **common)
    if not _OPTIONS["allow_synthetic"]:
        from perceptron_theory.deep.data import FASHION_MNIST_DIR

        raise DataMissing(f"data set missing: Fashion-MNIST not found in {FASHION_MNIST_DIR}; "
                          f"install it with `{INSTALL}` (or pass --allow-synthetic)")
    pool = scale.pool if scale.pool is None or scale.pool <= 10_000 else 10_000
    return dict(dataset="synthetic", subset=pool, **common)


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Runs:
    """Histories of every (label, seed) run of a grid, with the scale and wall time."""

    labels: tuple
    seeds: tuple
    histories: dict  # (label, seed) -> tuple of epoch dicts
    diverged: dict  # (label, seed) -> bool
    scale: Scale
    dataset: str
    elapsed: float
    run_times: dict = field(default_factory=dict)
    floor: float | None = None
    floor_reason: str = ""
    stored: int = 0

    def accuracy(self, label: str) -> float:
        """Seed-mean final validation accuracy of ``label`` (NaN if a seed is missing)."""
        v = self.final(label, "val_acc")
        return float(v.mean()) if np.isfinite(v).all() else math.nan

    def untrained(self, labels: Sequence[str] | None = None) -> list[str]:
        """Labels among ``labels`` (default all) under the floor (or diverged)."""
        if self.floor is None:
            return []
        return [lab for lab in (labels or self.labels)
                if not self.accuracy(lab) >= self.floor]

    def invalid_reason(self, labels: Sequence[str] | None = None) -> str:
        """``"not trained: ..."`` when an arm among ``labels`` is under its floor, else ''."""
        bad = self.untrained(labels)
        if not bad:
            return ""
        return ("not trained: " + ", ".join(f"{lab} val acc {self.accuracy(lab):.3f}"
                                            for lab in bad)
                + f" < floor {self.floor:g}")

    def arm_table(self) -> str:
        """Each arm's seed-mean final val accuracy beside its floor."""
        floor = (f"floor {self.floor:g} ({self.dataset})" if self.floor is not None
                 else f"no floor: {self.floor_reason or 'tiny size'}")
        arms = ", ".join(f"{lab} {self.accuracy(lab):.3f}" for lab in self.labels)
        return f"Final val accuracy per arm (seed mean): {arms}; {floor}"

    def final(self, label: str, key: str) -> np.ndarray:
        """``key`` of the last epoch of every seed (NaN where missing or diverged)."""
        out = []
        for s in self.seeds:
            h = self.histories[(label, s)]
            v = h[-1].get(key) if h and not self.diverged[(label, s)] else None
            out.append(np.nan if v is None else float(v))
        return np.array(out)

    def curve(self, label: str, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Epochs, seed-mean and seed-stderr of ``key`` over the epochs that every seed
        completed with a finite value (a diverged epoch and what follows are left out)."""
        hs = [self.histories[(label, s)] for s in self.seeds]
        n = 0
        while all(n < len(h) and not h[n].get("diverged") and h[n].get(key) is not None
                  and math.isfinite(float(h[n][key])) for h in hs):
            n += 1
        vals = np.array([[float(h[i][key]) for i in range(n)] for h in hs]).reshape(len(hs), n)
        se = (vals.std(0, ddof=1) / math.sqrt(len(hs)) if len(hs) > 1 and n
              else np.zeros(n))
        return np.arange(1, n + 1), vals.mean(0) if n else np.zeros(0), se

    def describe(self) -> str:
        """One line: size, data, seeds, wall time."""
        return (f"size {self.scale.name}: {self.dataset}, pool {self.scale.pool or 'all'} "
                f"(val fraction {self.scale.val_fraction:.3g}), seeds {list(self.seeds)}, "
                f"{len(self.labels)} variants x {len(self.seeds)} seeds in "
                f"{self.elapsed:.0f} s" + (f" ({self.stored} runs read from the run store)"
                                           if self.stored else ""))


@contextlib.contextmanager
def torch_threads(n: int | None):
    import torch

    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def train_unit(config: dict, callback_factory: str | None = None) -> dict:
    """One training run as a unit of :mod:`perceptron_theory.executor`: train
    ``config`` (a :class:`TrainConfig` dict) in a temporary folder and return
    ``{"history", "diverged", "seconds"}`` (what the run store keeps)."""
    import logging

    from perceptron_theory.deep.train import TrainConfig, train

    logging.getLogger("perceptron_theory.deep").setLevel(logging.ERROR)
    cfg = TrainConfig.from_dict(config)
    from perceptron_theory.executor import resolve

    factory = resolve(callback_factory) if callback_factory else None
    callbacks = tuple(factory(config)) if factory else ()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pt-deep-") as d:
        res = train(cfg, d, progress=False, callbacks=callbacks)
    return {"history": list(res.history), "diverged": bool(res.diverged),
            "seconds": time.perf_counter() - t0}


def _train_unit(config: dict, callback_factory: str | None):
    """The :class:`~perceptron_theory.executor.Unit` of one run, keyed as the store
    has always keyed deep runs (:func:`_store_key`: configuration, callback, version)."""
    from perceptron_theory.executor import Unit

    return Unit("validation._deep:train_unit",
                {"config": config, "callback_factory": callback_factory}, kind="deep",
                key=_store_key(config, callback_factory), code=False)


def run_grid(base: Mapping, variants: Mapping[str, Mapping], scale: Scale, seed: int = 0, *,
             callback_factory: str | None = None, n_seeds: int | None = None,
             floor: str | None = "dataset") -> Runs:
    """Train every variant for every seed of ``scale`` and collect the histories.

    Parameters
    ----------
    base : mapping
        TrainConfig fields shared by all variants (model, epochs, lr ...); the data
        fields of :func:`dataset_args`, ``device`` and ``seed`` are filled in.
    variants : mapping of str to mapping
        ``{label: overrides of base}``, in report order.
    scale : Scale
        Size of the runs.
    seed : int
        First training seed (``scale.seeds(seed)``).
    callback_factory : str, optional
        ``"module:function"`` naming ``factory(config_dict) -> callbacks`` of
        :func:`~perceptron_theory.deep.train.train` (``cb(model, epoch, metrics) ->
        dict``), called where the run trains (possibly a worker process).
    n_seeds : int, optional
        Number of seeds (default ``scale.n_seeds``; a check's power calculation).
    floor : str or None
        ``"dataset"``: arms are held to :data:`FLOORS` of the data set (not at tiny);
        anything else switches the floor off and is the reason the report gives (a claim
        about initialization or the first steps of training).

    Returns
    -------
    Runs
    """
    from perceptron_theory.deep.train import TrainConfig

    data = dataset_args(scale)
    seeds = scale.seeds(seed, n_seeds)
    jobs = []
    for label, over in variants.items():
        for s in seeds:
            cfg = TrainConfig(**{**data, "device": scale.device, **base, **over, "seed": s})
            jobs.append(((label, s), cfg.to_dict()))
    from perceptron_theory import executor
    from perceptron_theory.store import Store

    t0 = time.perf_counter()
    store = Store(_OPTIONS["cache_dir"]) if _OPTIONS["cache_dir"] else None
    units = [_train_unit(cfg, callback_factory) for _, cfg in jobs]
    n = min(scale.workers, len(units), os.cpu_count() or 1)
    out = executor.run_units(units, store=store, rerun=_OPTIONS["rerun"],
                             executor=executor.current(n, scale.threads))
    stored = executor.run_units.last_stats["stored"]
    results = {key: (tuple(r["history"]), bool(r["diverged"]), float(r["seconds"]))
               for (key, _), r in zip(jobs, out, strict=True)}
    elapsed = time.perf_counter() - t0
    if floor == "dataset":
        floor_value = FLOORS.get(data["dataset"]) if scale.floor else None
        reason = "" if scale.floor else "tiny size: structure only"
    else:
        floor_value, reason = None, str(floor or "no floor")
    return Runs(labels=tuple(variants), seeds=seeds,
                histories={k: r[0] for k, r in results.items()},
                diverged={k: r[1] for k, r in results.items()}, scale=scale,
                dataset=data["dataset"], elapsed=elapsed,
                run_times={k: r[2] for k, r in results.items()},
                floor=floor_value, floor_reason=reason, stored=stored)


# ----------------------------------------------------------------------------- run store
def _canonical(config: dict) -> dict:
    """The configuration that defines a run's numbers: without the per-process data folder
    and without fields at their :class:`TrainConfig` default, so that adding a field (with
    a default that keeps the old behaviour) does not orphan stored runs."""
    from dataclasses import MISSING, fields

    from perceptron_theory.deep.train import TrainConfig

    defaults = {}
    for f in fields(TrainConfig):
        if f.default is not MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not MISSING:
            defaults[f.name] = f.default_factory()
    plain = json.loads(json.dumps(config, default=str))
    dflt = json.loads(json.dumps(TrainConfig(**{k: v for k, v in defaults.items()}).to_dict(),
                                 default=str))
    return {k: v for k, v in plain.items() if k != "data_dir" and dflt.get(k, MISSING) != v}


def _store_key(config: dict, callback_factory: str | None) -> str:
    """SHA-256 of the run's configuration (:func:`_canonical`), its callback and the
    package version."""
    from perceptron_theory import __version__

    cfg = _canonical(config)
    text = json.dumps({"config": cfg, "callback": callback_factory, "version": __version__},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------- statistics
def paired(a, b) -> tuple[float, float, int]:
    """Mean and standard error over seeds of ``a - b`` (NaN-free pairs only)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return math.nan, math.nan, 0
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(d.mean()), se, n



def _context(runs: Runs | None) -> dict:
    return {} if runs is None else {"dataset": runs.dataset, "size": runs.scale.name}


def sign_record(claim: str, quantity: str, diffs, note: str = "", *, runs: Runs | None = None,
                arms: Sequence[str] | None = None, headline: bool = False,
                invalid: str = "") -> Comparison:
    """A finding "the per-seed differences ``diffs`` are positive".

    ``diffs`` are already oriented (positive when the claim holds) and paired by seed.
    With ``runs``, the record is ``invalid`` when an arm among ``arms`` (default: all of
    the runs' labels) is under its floor (:meth:`Runs.invalid_reason`).
    """
    reason = invalid or (runs.invalid_reason(arms) if runs is not None else "")
    return finding(claim, quantity, diffs, headline=headline, invalid=reason, note=note,
                   **_context(runs))


def trained(runs: Runs, label: str) -> bool:
    """Whether ``label`` is over its floor (always, where the runs have no floor)."""
    return label not in runs.untrained([label])


def summary_tail(runs: Runs) -> str:
    """The closing sentences of a grid check's summary: diverged runs (if any), each arm's
    accuracy beside its floor, and the verdict rule."""
    div = [k for k, v in runs.diverged.items() if v]
    return ((f" Diverged runs: {div}." if div else "") + f" {runs.arm_table()}."
            + f" Verdicts (fixed before any run): confirmed at seed-paired t >= {T_VERDICT:g}, "
            f"contradicted at t <= -{T_VERDICT:g}, otherwise unresolved; invalid when an arm "
            "is under its floor.")


def check_result(claim: str, title: str, comps, plots, summary: str, runs: Runs, size: str,
                 *, statement: str) -> CheckResult:
    """The result of a grid check: ``summary`` closed by :func:`summary_tail`, with the
    dataset of ``runs``."""
    return CheckResult(claim, title, tuple(comps), plots, summary + summary_tail(runs),
                       statement=statement, dataset=runs.dataset, size=size)


def final_table(runs: Runs, fields: Sequence[tuple[str, str]] = (
        ("train", "train_loss"), ("val", "val_loss"), ("acc", "val_acc"))) -> str:
    """``"label: name mean +- se, ..."`` of the final epoch, one entry per variant."""
    return "; ".join(f"{lab}: " + ", ".join(f"{name} {fmt_pm(runs.final(lab, key))}"
                                              for name, key in fields)
                     for lab in runs.labels)


def fmt_pm(values) -> str:
    """``mean +- stderr (n)`` of an array over seeds."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "nan"
    se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return f"{v.mean():.4g} +- {se:.2g}"


def ordering(claim: str, quantity: str, runs: Runs, better: str, worse: str, key: str, *,
             higher_is_better: bool, note: str = "", transform=None,
             headline: bool = False) -> Comparison:
    """Finding "``better`` beats ``worse`` on ``key``", paired by seed.

    The per-seed oriented differences are ``better - worse`` for a higher-is-better metric
    and ``worse - better`` otherwise (positive when the claim holds); ``transform`` maps
    the per-seed final values first (e.g. ``np.log``). Invalid when either arm is under its
    floor or a seed diverged.
    """
    f = transform or (lambda x: x)
    a, b = f(runs.final(better, key)), f(runs.final(worse, key))
    d = (a - b) if higher_is_better else (b - a)
    text = (f"claim: {better} {'>' if higher_is_better else '<'} {worse} in final {key}; "
            f"{better} {fmt_pm(a)}, {worse} {fmt_pm(b)}; paired over seeds "
            f"{list(runs.seeds)}; size {runs.scale.name}. {note}")
    return sign_record(claim, quantity, d, text.strip(), runs=runs, arms=(better, worse),
                       headline=headline)


def bound_check(claim: str, quantity: str, values, bound: float, relation: str, *,
                runs: Runs, note: str = "", arms: Sequence[str] | None = None,
                headline: bool = False) -> Comparison:
    """Finding "``values relation bound``" per seed: differences ``values - bound``
    (``>=``) or ``bound - values`` (``<=``)."""
    if relation not in (">=", "<="):
        raise ValueError(f"relation must be '>=' or '<=', got {relation!r}")
    v = np.asarray(values, float)
    d = v - bound if relation == ">=" else bound - v
    text = (f"per-seed values {np.round(v, 4).tolist()} (seeds {list(runs.seeds)}), "
            f"bound {relation} {bound:g}; size {runs.scale.name}. {note}")
    return sign_record(claim, quantity, d, text.strip(), runs=runs, arms=arms,
                       headline=headline)


# ----------------------------------------------------------------------------- plots
def curve_plot(title: str, runs: Runs, key: str, ylabel: str,
               labels: Sequence[str] | None = None) -> Plot:
    """Seed-mean curve of ``key`` vs epoch, one line per variant (same order, same colours
    in every panel)."""
    out = []
    for label in labels or runs.labels:
        x, y, _ = runs.curve(label, key)
        out.append(series(label, x, y))
    return Plot(title, "epoch", ylabel, tuple(out))


def training_plots(claim: str, runs: Runs) -> tuple[Plot, ...]:
    """Train loss, validation loss and validation accuracy vs epoch (seed means)."""
    size = runs.scale.name
    return (curve_plot(f"{claim}: train loss ({size})", runs, "train_loss", "loss"),
            curve_plot(f"{claim}: val loss ({size})", runs, "val_loss", "loss"),
            curve_plot(f"{claim}: val accuracy ({size})", runs, "val_acc", "accuracy"))

