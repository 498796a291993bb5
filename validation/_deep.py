"""Shared machinery of the deep-network checks: scales, runs over seeds, paired statistics.

A deep check trains a few :class:`~perceptron_theory.deep.train.TrainConfig` variants
(``{label: overrides}``) over the same seeds and compares final metrics *paired by seed*:
runs with the same seed share the data subset, the validation split and the batch order,
so the per-seed difference of two variants removes most of the data noise. For an
ordering claim "A beats B" the record holds the mean over seeds of the oriented paired
difference ``d_s`` (positive when the claim holds), its standard error
``std(d_s, ddof=1)/sqrt(n)``, and passes when ``mean(d) >= 0`` (:data:`N_SIGMA` = 0: the
sign of the mean must agree; fixed before any run was looked at). The note states
``t = mean/stderr`` and whether the ordering is *resolved* (``t >= 2``) or only not
contradicted -- at the CPU-quick scale most accuracy orderings are not resolved.

Sizes (:data:`SCALES`)
----------------------
``tiny``
    Seconds per check, for the test suite: structure only, outcomes meaningless.
``quick``
    ``perceptron-theory reproduce --quick``: minutes on two CPU cores for all deep
    checks together. A Fashion-MNIST subset (train + val pool of a few thousand images
    from the first :data:`CACHE_TRAIN` training images, read from an uncompressed copy
    that :func:`dataset_args` writes once per process), narrow nets, few epochs, three
    seeds, runs spread over two worker processes with one torch thread each (intra-op
    threads collapse on a loaded 2-core machine: 2 threads ran 30x slower than 1 when
    measured).
``full``
    The papers' scale as far as one GPU allows (``device="auto"``), full training set,
    five seeds. Not run in CI.

If Fashion-MNIST is missing, every size falls back to the synthetic teacher of
:func:`perceptron_theory.deep.data.synthetic_teacher` (16 x 16 inputs) and the notes
say so.
"""

from __future__ import annotations

import atexit
import contextlib
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
from validation._core import Comparison, expect

__all__ = ["SIZES", "SCALES", "CNN_OPTIONS", "Scale", "N_SIGMA", "RESOLVED_T", "resolve_size",
           "get_scale", "torch_device", "torch_threads", "dataset_args", "trained",
           "plateau_note", "PLATEAU", "Runs", "run_grid", "paired", "sign_record", "ordering",
           "bound_check", "curve_plot", "training_plots", "fmt_pm", "summary_tail",
           "final_table"]

SIZES = ("tiny", "quick", "full")
#: ordering records pass when the mean oriented difference is >= -N_SIGMA * stderr
N_SIGMA = 0.0
#: |t| at which an ordering is called resolved in the notes
RESOLVED_T = 2.0
#: training / test images kept in the uncompressed Fashion-MNIST copy of tiny and quick
CACHE_TRAIN, CACHE_TEST = 12_000, 2_000


@dataclass(frozen=True)
class Scale:
    """Data sizes, seeds and execution of one size.

    ``pool`` is the Fashion-MNIST training-pool subset (train + validation; ``None``: all
    60 000), ``val_fraction`` of it is held out for validation; ``test_subset`` test
    images are evaluated (unused by the checks, kept small). ``workers`` > 1 spreads the
    runs over spawned processes with ``threads`` torch threads each.
    """

    name: str
    n_seeds: int
    pool: int | None
    val_fraction: float
    test_subset: int | None
    workers: int
    threads: int | None
    device: str

    def seeds(self, seed: int) -> tuple[int, ...]:
        """The training seeds of a check called with ``seed``: ``seed, seed + 1, ...``."""
        return tuple(range(seed, seed + self.n_seeds))


SCALES = {
    "tiny": Scale("tiny", 2, 160, 0.25, 20, workers=1, threads=1, device="cpu"),
    "quick": Scale("quick", 3, 1200, 1 / 3, 50, workers=2, threads=1, device="cpu"),
    "full": Scale("full", 5, None, 1 / 12, None, workers=1, threads=None, device="auto"),
}


#: Luo et al.'s 4conv+2fc CNN per size (``model_options`` of ``models.CNN``)
CNN_OPTIONS = {
    "tiny": {"channels": (2, 2, 4, 4), "hidden": 8, "padding": "valid"},
    "quick": {"channels": (4, 4, 8, 8), "hidden": 32, "padding": "valid"},
    "quick-wide": {"channels": (8, 8, 16, 16), "hidden": 64, "padding": "valid"},
    "full": {},
}


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
    """Folder of uncompressed, truncated Fashion-MNIST IDX files; None if it is missing.

    Reading the gzipped 60 000 images costs about a second per run; the copy holds the
    first :data:`CACHE_TRAIN` training and :data:`CACHE_TEST` test images (Fashion-MNIST's
    order carries no class structure) and loads in milliseconds.
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
    """TrainConfig data fields of ``scale``: Fashion-MNIST (cached subset) or synthetic."""
    common = dict(val_fraction=scale.val_fraction, test_subset=scale.test_subset)
    if scale.name == "full":
        from perceptron_theory.deep.data import FASHION_MNIST_DIR

        if Path(FASHION_MNIST_DIR).is_dir():
            return dict(dataset="fashion-mnist", subset=scale.pool, **common)
        return dict(dataset="synthetic", subset=scale.pool, **common)
    cache = _fashion_cache()
    if cache is None:
        return dict(dataset="synthetic", subset=scale.pool, **common)
    return dict(dataset="fashion-mnist", data_dir=cache, subset=scale.pool, **common)


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
                f"{self.elapsed:.0f} s")


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


def _resolve(ref: str | None):
    """``"package.module:function"`` -> the function (None -> None)."""
    if not ref:
        return None
    import importlib

    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


def _train_one(config_dict: dict, callback_factory: str | None, threads: int | None):
    """Train one run in a temporary folder; return (history, diverged, seconds)."""
    import logging

    from perceptron_theory.deep.train import TrainConfig, train

    logging.getLogger("perceptron_theory.deep").setLevel(logging.ERROR)
    config = TrainConfig.from_dict(config_dict)
    factory = _resolve(callback_factory)
    callbacks = tuple(factory(config_dict)) if factory else ()
    t0 = time.perf_counter()
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="pt-deep-") as d:
        res = train(config, d, progress=False, callbacks=callbacks)
    return tuple(res.history), bool(res.diverged), time.perf_counter() - t0


def _worker_main() -> None:
    """Worker process: one JSON job per stdin line, one JSON result per line on the
    original stdout (anything the job prints goes to stderr)."""
    import json
    import sys
    import traceback

    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        job = json.loads(line)
        try:
            hist, div, secs = _train_one(job["config"], job["callback_factory"],
                                         job["threads"])
            out = {"ok": True, "history": hist, "diverged": div, "seconds": secs}
        except Exception:  # reported to the parent, which raises
            out = {"ok": False, "error": traceback.format_exc()}
        proto.write(json.dumps(out, default=float) + "\n")
        proto.flush()


class _Workers:
    """Persistent worker interpreters (``python -m validation._deep``), reused across checks.

    Fresh interpreters, so nothing depends on how the caller's main module is guarded
    (unlike multiprocessing's spawn) and no torch thread pool is forked; persistent, so the
    torch import (seconds on a loaded machine) is paid once per process, not per check.
    """

    def __init__(self, n: int, threads: int | None):
        import subprocess
        import sys

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["OMP_NUM_THREADS"] = str(threads or 1)
        self.n, self.threads = n, threads
        self.errs = [tempfile.TemporaryFile("w+") for _ in range(n)]
        self.procs = [subprocess.Popen([sys.executable, "-m", "validation._deep"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=err, text=True, env=env)
                      for err in self.errs]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except Exception:  # a hung worker: end it (it is ours)
                p.kill()
        for e in self.errs:
            e.close()

    def run(self, jobs: list, callback_factory: str | None) -> dict:
        """Run ``jobs`` [(key, config dict)]; each worker takes the next job when free."""
        import json
        import queue
        import threading

        todo: queue.Queue = queue.Queue()
        for job in jobs:
            todo.put(job)
        results, errors = {}, []

        def serve(proc, err):
            while not errors:
                try:
                    key, cfg = todo.get_nowait()
                except queue.Empty:
                    return
                proc.stdin.write(json.dumps({"config": cfg, "threads": self.threads,
                                             "callback_factory": callback_factory}) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    err.seek(0)
                    errors.append(f"worker died on {key}:\n{err.read()[-4000:]}")
                    return
                out = json.loads(line)
                if not out["ok"]:
                    errors.append(f"run {key} raised:\n{out['error']}")
                    return
                results[key] = (tuple(out["history"]), out["diverged"], out["seconds"])

        threads = [threading.Thread(target=serve, args=pe, daemon=True)
                   for pe in zip(self.procs, self.errs, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])
        return results


_POOL: dict[str, _Workers] = {}


def _workers(n: int, threads: int | None) -> _Workers:
    pool = _POOL.get("pool")
    if pool is not None and (pool.n != n or pool.threads != threads or not pool.alive()):
        pool.close()
        pool = None
    if pool is None:
        pool = _POOL["pool"] = _Workers(n, threads)
    return pool


@atexit.register
def _close_pool() -> None:
    pool = _POOL.pop("pool", None)
    if pool is not None:
        pool.close()


def run_grid(base: Mapping, variants: Mapping[str, Mapping], scale: Scale, seed: int = 0, *,
             callback_factory: str | None = None) -> Runs:
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

    Returns
    -------
    Runs
    """
    from perceptron_theory.deep.train import TrainConfig

    data = dataset_args(scale)
    seeds = scale.seeds(seed)
    jobs = []
    for label, over in variants.items():
        for s in seeds:
            cfg = TrainConfig(**{**data, "device": scale.device, **base, **over, "seed": s})
            jobs.append(((label, s), cfg.to_dict()))
    t0 = time.perf_counter()
    n = min(scale.workers, len(jobs), os.cpu_count() or 1)
    if n > 1:
        try:
            results = _workers(n, scale.threads).run(jobs, callback_factory)
        except RuntimeError:
            _close_pool()  # a failed run leaves the protocol mid-stream
            raise
    else:
        results = {key: _train_one(cfg, callback_factory, scale.threads) for key, cfg in jobs}
    elapsed = time.perf_counter() - t0
    return Runs(labels=tuple(variants), seeds=seeds,
                histories={k: r[0] for k, r in results.items()},
                diverged={k: r[1] for k, r in results.items()}, scale=scale,
                dataset=data["dataset"], elapsed=elapsed,
                run_times={k: r[2] for k, r in results.items()})


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



def sign_record(claim: str, quantity: str, diffs, note: str = "") -> Comparison:
    """A record "the per-seed differences ``diffs`` are positive", by ``_deep``'s rule.

    ``diffs`` are already oriented (positive when the claim holds) and paired by seed;
    the record holds their mean and standard error and passes on the sign of the mean
    (:data:`N_SIGMA`); the note gives the per-seed values, ``t`` and the verdict.
    """
    d = np.asarray(diffs, float)
    d = d[np.isfinite(d)]
    m = float(d.mean()) if d.size else math.nan
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
    t = m / se if se > 0 else math.nan
    return expect(claim, quantity, 0.0, m, ">=", stderr=se, n_sigma=N_SIGMA,
                  note=f"per-seed {np.round(d, 4).tolist()}, mean {m:.4g} +- {se:.2g}, "
                       f"t = {t:.2f}: {_verdict(t)}; passes on the sign of the mean. {note}")

#: a run whose final train loss is above 0.9 ln(10) has not left the chance plateau
PLATEAU = 0.9 * math.log(10.0)


def trained(runs: Runs, label: str) -> bool:
    """Whether ``label`` left the chance plateau (seed-mean final train loss < PLATEAU)."""
    v = runs.final(label, "train_loss")
    return bool(np.isfinite(v).all() and v.mean() < PLATEAU)


def plateau_note(runs: Runs) -> str:
    """A sentence naming the variants that stayed on the chance plateau (or '')."""
    stuck = [lab for lab in runs.labels if not trained(runs, lab)]
    if not stuck:
        return ""
    return (f" Did not leave the chance plateau (final train loss >= {PLATEAU:.2f}): "
            f"{', '.join(stuck)} -- orderings involving them measure trainability.")


def summary_tail(runs: Runs) -> str:
    """The closing sentences of a grid check's summary: diverged runs (if any), variants
    left on the chance plateau (:func:`plateau_note`) and the ordering rule."""
    div = [k for k, v in runs.diverged.items() if v]
    return ((f" Diverged runs: {div}." if div else "") + plateau_note(runs)
            + " Orderings pass on the sign of the seed-paired mean difference; notes say "
            "which are resolved (t >= 2).")


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


def _rule() -> str:
    if N_SIGMA == 0:
        return "passes on the sign of the mean (n_sigma 0, fixed in advance)"
    return f"passes within {N_SIGMA:g} stderr of the bound"


def _verdict(t: float) -> str:
    if not math.isfinite(t):
        return "spread undefined"
    if t >= RESOLVED_T:
        return f"resolved (t >= {RESOLVED_T:g})"
    if t <= -RESOLVED_T:
        return f"contradicted (t <= -{RESOLVED_T:g})"
    return "not resolved at this scale"


def ordering(claim: str, quantity: str, runs: Runs, better: str, worse: str, key: str, *,
             higher_is_better: bool, note: str = "", transform=None) -> Comparison:
    """Record "``better`` beats ``worse`` on ``key``" as the sign of a paired mean difference.

    ``measured`` = mean over seeds of the oriented difference (``better - worse`` for a
    higher-is-better metric, ``worse - better`` otherwise), which the claim says is
    ``>= 0``; ``stderr`` its standard error; passes when ``measured >= -N_SIGMA stderr``.
    ``transform`` maps the per-seed final values first (e.g. ``np.log``).
    """
    f = transform or (lambda x: x)
    a, b = f(runs.final(better, key)), f(runs.final(worse, key))
    mean, se, n = paired(a, b) if higher_is_better else paired(b, a)
    missing = int((~np.isfinite(a - b)).sum())
    if missing:  # a diverged run cannot be ranked: the record fails
        mean = math.nan
        note = f"{missing} of {len(a)} seed pairs incomplete (diverged run): not evaluated. {note}"
    stuck = [lab for lab in (better, worse) if not trained(runs, lab)]
    if stuck:
        note = (f"{' and '.join(stuck)} did not leave the initial plateau (mean final train "
                f"loss >= {PLATEAU:.2f} = 0.9 ln 10): the ordering reflects trainability at "
                f"this scale, not regularization. {note}")
    t = mean / se if se and math.isfinite(se) and se > 0 else math.nan
    text = (f"claim: {better} {'>' if higher_is_better else '<'} {worse} in final {key}; "
            f"{better} {fmt_pm(a)}, {worse} {fmt_pm(b)}; paired over seeds "
            f"{list(runs.seeds)} (n={n}), oriented difference {mean:.4g} +- {se:.2g}, "
            f"t = {t:.2f}: {_verdict(t)}; {_rule()}; "
            f"size {runs.scale.name}")
    return expect(claim, quantity, 0.0, mean, ">=", stderr=se if math.isfinite(se) else 0.0,
                  n_sigma=N_SIGMA, note=f"{text}. {note}".strip())


def bound_check(claim: str, quantity: str, values, bound: float, relation: str, *,
                runs: Runs, note: str = "") -> Comparison:
    """``mean(values) relation bound`` with the seed stderr; pass on the point estimate."""
    v = np.asarray(values, float)
    fin = v[np.isfinite(v)]
    mean = float(fin.mean()) if fin.size == v.size else math.nan  # diverged run: fails
    se = float(fin.std(ddof=1) / math.sqrt(fin.size)) if fin.size > 1 else 0.0
    sign = 1.0 if relation == ">=" else -1.0
    t = sign * (mean - bound) / se if se > 0 else math.nan
    text = (f"per-seed values {np.round(v, 4).tolist()} (seeds {list(runs.seeds)}), mean "
            f"{mean:.4g} +- {se:.2g}; bound {bound:g}, t = {t:.2f}: {_verdict(t)}; "
            f"{_rule()}; size {runs.scale.name}")
    return expect(claim, quantity, bound, mean, relation, stderr=se, n_sigma=N_SIGMA,
                  note=f"{text}. {note}".strip())


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


if __name__ == "__main__":  # worker process of run_grid
    _worker_main()
