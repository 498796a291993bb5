"""Pieces the figure scripts share: the data document, the command line, seed statistics."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np

from perceptron_theory import plotting
from perceptron_theory._io import atomic_write_json, plain

#: where :func:`units` keeps results: set by :func:`options` (the ``figure`` command)
_OPTIONS = {"store": None, "rerun": False}


@contextlib.contextmanager
def options(*, store=None, rerun: bool = False):
    """Inside the block, :func:`units` reads and writes ``store`` (a
    :class:`~perceptron_theory.store.Store`; None: no store) and ``rerun`` recomputes."""
    prev = dict(_OPTIONS)
    _OPTIONS.update(store=store, rerun=rerun)
    try:
        yield
    finally:
        _OPTIONS.update(prev)


def units(function: str, configs: list[dict]) -> list:
    """``function(**config)`` for each config, as units of
    :mod:`perceptron_theory.executor`: in parallel on the current executor (a local pool
    of ``os.cpu_count()`` workers unless the command line chose another), each result
    read from / kept in the run store of :func:`options`. ``function`` is
    ``"paper_figures.X:name"`` and returns a JSON-able dict."""
    import os

    from perceptron_theory import executor

    us = [executor.Unit(function, c, kind="figure") for c in configs]
    ex = executor.current(min(len(us), os.cpu_count() or 1))
    return executor.run_units(us, executor=ex, store=_OPTIONS["store"],
                              rerun=_OPTIONS["rerun"])


def write_document(path, figure: str, size: str, constants: dict, data: dict,
                   panels: dict) -> Path:
    """Write the plotted data and panel specs of one figure as JSON, atomically."""
    doc = {"figure": figure, "size": size, "constants": constants, "data": data,
           "panels": {k: [p.to_dict() for p in v] for k, v in panels.items()}}
    return Path(atomic_write_json(path, doc))


#: figure size -> size of the validation check whose runs a deep figure reads
CHECK_SIZES = {"tiny": {"check_size": "tiny"}, "quick": {"check_size": "quick"},
               "full": {"check_size": "full"}}


def draw(name: str, out_dir, size: str, figure_data, panels, *, ncols: int,
         constants: dict | None = None, sizes: dict = CHECK_SIZES) -> list[Path]:
    """The ``main`` of a figure script that reads a validation check's runs.

    Checks ``size`` (a key of ``sizes``) before any work, computes
    ``clean(figure_data(check_size))``, draws ``panels(data, size)`` into ``<name>.png``
    and writes ``<name>.json`` (``constants`` plus the size's settings), both atomically;
    returns the two paths.
    """
    if size not in sizes:
        raise ValueError(f"size must be one of {', '.join(sizes)}; got {size!r}")
    cfg = sizes[size]
    out = Path(out_dir)
    data = clean(figure_data(cfg["check_size"]))
    ps = panels(data, size)
    png = plotting.save(ps, out / f"{name}.png", ncols=ncols)
    doc = write_document(out / f"{name}.json", name, size, {**(constants or {}), **cfg},
                         data, {name: ps})
    return [Path(png), Path(doc)]


def run_cli(main, doc: str, sizes) -> None:
    """``python -m paper_figures.X [--out-dir D] [--size S]``: run ``main`` and list files."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out-dir", default="paper_figures_out", help="output folder")
    parser.add_argument("--size", choices=tuple(sizes), default="full",
                        help="'tiny' is a few-second smoke run")
    args = parser.parse_args()
    for p in main(args.out_dir, args.size):
        print(p)


def clean(obj):
    """Nested lists / dicts as plain Python with every non-finite float as None (JSON null):
    the package's one cleaner, :func:`perceptron_theory._io.plain` (``finite_only``)."""
    return plain(obj, finite_only=True)


def mean_se(rows) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its standard error, per column, finite values only.

    ``rows``: one list per seed (None counts as missing). A column with no finite value
    has mean NaN; with one finite value its standard error is 0.
    """
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], float)
    fin = np.isfinite(a)
    n = fin.sum(0)
    mean = np.where(fin, a, 0.0).sum(0) / np.maximum(n, 1)
    var = np.where(fin, a - mean, 0.0) ** 2
    se = np.sqrt(var.sum(0) / np.maximum(n - 1, 1) / np.maximum(n, 1))
    return np.where(n > 0, mean, np.nan), np.where(n > 1, se, 0.0)


def band(label: str, x, rows, style: str = "points") -> plotting.Series | None:
    """Seed mean +- standard error of ``rows`` at ``x``, finite points only (None if none)."""
    m, se = mean_se(rows)
    ok = np.isfinite(m)
    if not ok.any():
        return None
    return plotting.series(label, np.asarray(x, float)[ok], m[ok], yerr=se[ok], style=style)


def histories(runs, label: str, keys) -> dict:
    """``{str(seed): {key: [value per epoch], "diverged": bool}}`` of one variant."""
    return {str(s): {**{k: [h.get(k) for h in runs.histories[(label, s)]] for k in keys},
                     "diverged": bool(runs.diverged[(label, s)])} for s in runs.seeds}
