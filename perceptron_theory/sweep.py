"""Parameter sweeps of the command line's computations, through the executor and the store.

A sweep is a TOML file::

    command = "simulate"          # curve, dynamics, lr-limits, simulate, max-lr, ...
    seeds = 2                     # optional: a count (0..n-1) or a list (commands with --seed)

    [fixed]                       # options given to every cell (the command's long names)
    method = "bn"
    activation = "erf"
    online = true                 # a flag
    N = 500
    t-max = 2

    [grid]                        # the product of these lists / ranges
    lr = [0.5, 1.0, 1.5]
    batch-size = [8, 16, 32]
    zeta = "0:1:5"                # A:B:N, like --zeta-range: N points from A to B

    [plot]                        # optional: one panel, y against x, a line per cell
    x = "t"
    y = "R"

Every cell (one point of the grid, one seed) is a unit of
:mod:`perceptron_theory.executor`: the command run in-process with ``--json``, keyed by
its options, the package version and the source fingerprint in the run store, so a rerun
is served from the store and an interrupted sweep resumes without recomputing. Every
cell's options are parsed by the command's own parser before any cell runs, so a bad
value is refused before any work.

The output is one *long* table: a row per cell and per point of the command's own axis
(the times of ``simulate``/``dynamics``, the loads of ``curve``, the rows of
``lr-limits``), with the grid parameters, the seed, the axis and every scalar or
per-point output as columns -- ``table.csv``, and ``table.parquet`` when pyarrow is
installed.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Spec", "load_spec", "cells", "run_command", "run_sweep", "flatten",
           "COMMANDS"]

#: commands a sweep can run (those with ``--json`` that compute without files)
COMMANDS = ("integrals", "dynamics", "lr-limits", "bn-decay", "curve", "simulate", "max-lr")
#: options a sweep never sets (output, presentation, and the command's own run store:
#: a cell is kept in the sweep's store, so it runs its command with ``--no-cache``)
_RESERVED = {"json", "plot", "help", "verbose", "cache-dir", "no-cache", "rerun"}
#: per-point axes, in the order they are looked for in a command's output
_AXES = ("t", "epochs", "epoch", "alpha", "zeta", "lr", "Q")


@dataclass(frozen=True)
class Spec:
    """A parsed sweep: the command, its fixed options, the grid, seeds and plot."""

    command: str
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    seeds: tuple = ()
    plot: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        n = math.prod(len(v) for v in self.grid.values()) if self.grid else 1
        return n * max(1, len(self.seeds))


def _values(name: str, value) -> list:
    """A grid entry: a list, or ``"A:B:N"`` (N points from A to B)."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"grid.{name} must not be empty")
        return value
    if isinstance(value, str) and value.count(":") == 2:
        a, b, n = value.split(":")
        try:
            a, b, n = float(a), float(b), int(n)
        except ValueError:
            raise ValueError(f"grid.{name} must be a list or 'A:B:N'; got {value!r}") from None
        if n < 1 or not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"grid.{name} range needs finite A, B and N >= 1; got {value!r}")
        return [float(x) for x in np.linspace(a, b, n)]
    raise ValueError(f"grid.{name} must be a list or a range 'A:B:N'; got {value!r}")


def load_spec(source) -> Spec:
    """Parse a sweep spec from a TOML file path (or a dict), checking every name."""
    if isinstance(source, dict):
        doc = source
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        path = Path(source)
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"spec {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"spec {str(path)!r} is not valid TOML: {exc}") from None
    unknown = set(doc) - {"command", "fixed", "grid", "seeds", "plot"}
    if unknown:
        raise ValueError(f"unknown spec keys {sorted(unknown)}; valid: command, fixed, grid, "
                         "seeds, plot")
    command = doc.get("command")
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}; got {command!r}")
    fixed, grid = dict(doc.get("fixed", {})), dict(doc.get("grid", {}))
    both = set(fixed) & set(grid)
    if both:
        raise ValueError(f"options both fixed and swept: {sorted(both)}")
    grid = {k: _values(k, v) for k, v in grid.items()}
    seeds = doc.get("seeds", [])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 10_000:
            raise ValueError(f"seeds must be in [1, 10000] or a list; got {seeds}")
        seeds = tuple(range(seeds))
    elif isinstance(seeds, list) and all(isinstance(s, int) and s >= 0 for s in seeds):
        seeds = tuple(seeds)
    else:
        raise ValueError(f"seeds must be a count or a list of integers >= 0; got {seeds!r}")
    plot = dict(doc.get("plot", {}))
    if plot and not {"x", "y"} <= set(plot):
        raise ValueError("plot needs x and y (column names of the table)")
    spec = Spec(command, fixed, grid, seeds, plot)
    options = _options(command)
    for name in itertools.chain(fixed, grid):
        if name.replace("_", "-") in _RESERVED or name.replace("_", "-") not in options:
            raise ValueError(f"{command} has no option --{name}; valid: "
                             + ", ".join(sorted(o for o in options if o not in _RESERVED)))
    if seeds and not {"seed", "seeds"} <= set(options):
        raise ValueError(f"seeds: {command} takes no --seed")
    if seeds and ({"seed", "seeds"} & (set(fixed) | set(grid))):
        raise ValueError("give seeds at the top level of the spec, not as options")
    return spec


@functools.cache
def _parser(command: str):
    """The command's subparser (built once per process: parsing does not change it)."""
    from perceptron_theory.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices[command]


def _options(command: str) -> set:
    return {s.lstrip("-") for a in _parser(command)._actions for s in a.option_strings
            if s.startswith("--")}


def _int_options(command: str) -> set:
    """Options of ``command`` that take an integer (a range's 4.0 is given as 4)."""
    return {s.lstrip("-") for a in _parser(command)._actions if a.type is int
            for s in a.option_strings if s.startswith("--")}


def _argv(options: dict) -> list:
    argv = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            if v:
                argv.append(flag)
        elif isinstance(v, list):
            for item in v:
                argv += [flag, str(item)]
        else:
            argv += [flag, repr(v) if isinstance(v, float) else str(v)]
    return argv


def cells(spec: Spec) -> list[dict]:
    """The options of every cell: fixed, one grid point, and ``seed``/``seeds``."""
    names = list(spec.grid)
    ints = _int_options(spec.command)
    out = []
    for point in itertools.product(*(spec.grid[n] for n in names)):
        base = {**spec.fixed, **dict(zip(names, point, strict=True))}
        base = {k: int(v) if k.replace("_", "-") in ints and isinstance(v, float)
                and v.is_integer() else v for k, v in base.items()}
        if spec.seeds:
            out += [{**base, "seed": s, "seeds": 1} for s in spec.seeds]
        else:
            out.append(base)
    return out


def _parse(command: str, options: dict):
    """The parsed namespace of one cell; a bad value raises ValueError (one line)."""
    parser = _parser(command)
    own_store = ["--no-cache"] if "no-cache" in _options(command) else []
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(_argv(options) + ["--json"] + own_store)
    except SystemExit:
        msg = err.getvalue().strip().splitlines()
        raise ValueError(f"{command} {' '.join(_argv(options))}: "
                         f"{msg[-1] if msg else 'invalid options'}") from None


def run_command(command: str, options: dict):
    """Run one cell: ``perceptron-theory COMMAND OPTIONS --json`` in this process; return
    its JSON output (what the store keeps)."""
    import json

    args = _parse(command, options)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = args.func(args)
    if rc != 0:
        raise RuntimeError(f"{command} {' '.join(_argv(options))} exited {rc}")
    return json.loads(buf.getvalue())


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, bool, int, float))


def flatten(params: dict, output) -> list[dict]:
    """Rows of one cell's output: its scalars on every row, one row per point of its axis
    (and per replica for per-seed arrays)."""
    if isinstance(output, list):  # e.g. lr-limits over a zeta range: a row per entry
        rows = []
        for i, item in enumerate(output):
            for r in flatten(params, item) if isinstance(item, dict) else []:
                rows.append({**r, "index": i} if "index" not in r else r)
        return rows
    if not isinstance(output, dict):
        return [{**params, "value": output}]
    scalars = {k: v for k, v in output.items() if _scalar(v) and k not in params}
    axis = next((k for k in _AXES if isinstance(output.get(k), list) and output[k]
                 and all(_scalar(x) for x in output[k])), None)
    if axis is None:
        return [{**params, **scalars}]
    n = len(output[axis])
    flat, per_replica = {}, {}
    for k, v in output.items():
        if not isinstance(v, list) or k == axis:
            continue
        arr = np.asarray(v, dtype=object)
        if arr.shape == (n,):
            flat[k] = v
        elif arr.ndim == 2 and arr.shape[1] == n:
            per_replica[k] = v
    replicas = max((len(v) for v in per_replica.values()), default=1)
    rows = []
    for r in range(replicas):
        for i in range(n):
            row = {**params, **scalars}
            if per_replica and replicas > 1:
                row["replica"] = r
            row[axis] = output[axis][i]
            row.update({k: v[i] for k, v in flat.items()})
            row.update({k: v[r][i] for k, v in per_replica.items()})
            rows.append(row)
    return rows


def _column(option: str) -> str:
    """Table column of an option (``batch-size`` -> ``batch_size``, as in the outputs)."""
    return option.replace("-", "_")


def _write_table(rows: list[dict], out: Path) -> list[Path]:
    from perceptron_theory._io import atomic_write_bytes, atomic_write_text

    columns: list = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    written = [atomic_write_text(out / "table.csv", buf.getvalue())]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    written.append(atomic_write_bytes(out / "table.parquet", sink.getvalue().to_pybytes()))
    return written


def _plot(spec: Spec, rows: list[dict], out: Path) -> Path:
    from perceptron_theory.plotting import Plot, save, series

    x, y = spec.plot["x"], spec.plot["y"]
    if rows and (x not in rows[0] or y not in rows[0]):
        raise ValueError(f"plot: columns must be among {sorted(rows[0])}; got x={x!r}, y={y!r}")
    groups: dict = {}
    for r in rows:
        label = ", ".join(f"{k}={r[_column(k)]}" for k in spec.grid)
        groups.setdefault(label or spec.command, []).append((r[x], r[y]))
    lines = []
    for label, pts in groups.items():
        xs = sorted({p[0] for p in pts})
        ys = [np.nanmean([float("nan") if p[1] is None else p[1] for p in pts if p[0] == v])
              for v in xs]
        lines.append(series(label, xs, ys))
    return save(Plot(f"{spec.command}: {y} vs {x} (mean over seeds)", x, y, tuple(lines)),
                out / "sweep.png")


def run_sweep(spec: Spec, out_dir, *, store=None, executor=None, rerun: bool = False,
              progress: bool = False) -> dict:
    """Run every cell of ``spec`` (served from ``store`` when held) and write the table.

    Returns ``{"cells", "stored", "ran", "rows", "files", "seconds"}``.
    """
    import time

    from perceptron_theory.executor import Unit, run_units

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file, not a folder")
    opts = cells(spec)
    for o in opts:  # every cell parses before any runs
        _parse(spec.command, o)
    out.mkdir(parents=True, exist_ok=True)
    units = [Unit("perceptron_theory.sweep:run_command",
                  {"command": spec.command, "options": o}, kind="sweep") for o in opts]
    t0 = time.perf_counter()
    results = run_units(units, executor=executor, store=store, rerun=rerun,
                        progress=progress, desc=spec.command)
    stats = dict(run_units.last_stats)
    rows = []
    for o, res in zip(opts, results, strict=True):
        params = {_column(k): v for k, v in o.items() if k in spec.grid or k == "seed"}
        rows += flatten(params, res)
    files = _write_table(rows, out)
    if spec.plot:
        files.append(_plot(spec, rows, out))
    return {"cells": len(units), **stats, "rows": len(rows),
            "files": [str(f) for f in files], "seconds": time.perf_counter() - t0}
