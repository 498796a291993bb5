"""Benchmark the executors of :mod:`perceptron_theory.executor` and the run store.

Usage::

    PYTHONPATH=. python benchmarks/executor.py            # ~1-2 min on 2 cores
    PYTHONPATH=. python benchmarks/executor.py --quick    # smaller grid

a. Per-unit overhead: 64 trivial units (``_io.plain`` of a float, microseconds of work)
   through each executor, against the direct call of the same function in a loop (the
   floor, measured in the same run). A warm pool is timed (the first, cold batch is
   reported separately: process start and imports).
b. Scaling of a 32-unit simulation grid (online BN erf simulations, one seed each, the
   unit ``simulate`` of a sweep) from 1 to 2 workers: serial executor (1 worker, the
   baseline), local pool of 1 and 2, Dask ``LocalCluster`` of 2 (when installed);
   speed-up = serial time / time.
c. The store: reading the 32 stored results back against computing them.

Times are wall-clock ``time.perf_counter`` seconds, best of the repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_t, table  # noqa: E402

from perceptron_theory import executor as ex  # noqa: E402
from perceptron_theory.store import Store  # noqa: E402


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _grid(n: int, N: int, t_max: float) -> list:
    units = []
    for i in range(n):
        opts = {"method": "bn", "activation": "erf", "online": True, "N": N, "t-max": t_max,
                "n-points": 5, "lr": 0.5 + 0.05 * (i % 8), "batch-size": 8, "seed": i,
                "seeds": 1}
        units.append(ex.Unit("perceptron_theory.sweep:run_command",
                             {"command": "simulate", "options": opts}, kind="sweep"))
    return units


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_triv, repeats = (32, 2) if a.quick else (64, 3)
    N, t_max = (500, 2.0) if a.quick else (2000, 12.0)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    # a. per-unit overhead
    triv = [ex.Unit("perceptron_theory._io:plain", {"obj": float(i)})
            for i in range(n_triv)]
    from perceptron_theory._io import plain

    direct = _best(lambda: [plain(float(i)) for i in range(n_triv)], repeats)
    rows = [("direct call (floor)", fmt_t(direct / n_triv), "-", "1")]
    serial = ex.SerialExecutor()
    t = _best(lambda: serial.map(triv), repeats)
    rows.append(("serial executor", fmt_t(t / n_triv), "-", f"{t / direct:.3g}"))
    makers = [("local pool, 2 workers", lambda: ex.LocalExecutor(2))]
    try:
        import distributed  # noqa: F401

        makers.append(("dask LocalCluster, 2 workers", lambda: ex.DaskExecutor(workers=2)))
    except ImportError:
        print("(dask not installed: its rows are skipped)")
    pools = {}
    for name, make in makers:
        t0 = time.perf_counter()
        pool = pools[name] = make()
        pool.map(triv)
        cold = time.perf_counter() - t0
        t = _best(lambda p=pool: p.map(triv), repeats)
        rows.append((name, fmt_t(t / n_triv), fmt_t(cold), f"{t / direct:.3g}"))
    table(f"a. per-unit overhead, {n_triv} trivial units", ("executor", "per unit",
          "cold start + first batch", "x direct"), rows)

    # b. scaling of a 32-unit simulation grid
    units = _grid(32, N, t_max)
    ex.SerialExecutor().map(units[:2])  # numba compile outside the timings
    t_serial = _best(lambda: ex.SerialExecutor(threads=1).map(units), 1)
    rows = [("serial (baseline)", 1, fmt_t(t_serial), "1")]
    with ex.LocalExecutor(1) as one:
        one.map(units[:1])
        t1 = _best(lambda: one.map(units), 1)
    rows.append(("local pool", 1, fmt_t(t1), f"{t_serial / t1:.2f}"))
    for name, pool in pools.items():
        pool.map(units[:2])  # compile in the workers
        t2 = _best(lambda p=pool: p.map(units), 1)
        rows.append((name.split(",")[0], 2, fmt_t(t2), f"{t_serial / t2:.2f}"))
    table(f"b. 32 online simulations (BN erf, N = {N}, t = {t_max:g}, one seed each)",
          ("executor", "workers", "time", "speed-up"), rows)

    # c. the store
    with tempfile.TemporaryDirectory() as d:
        st = Store(d)
        pool = next(iter(pools.values())) if pools else ex.SerialExecutor()
        t_run = _best(lambda: ex.run_units(units, store=st, executor=pool, rerun=True), 1)
        t_read = _best(lambda: ex.run_units(units, store=st, executor=pool), repeats)
        table("c. run store, the same 32 units", ("path", "time", "ratio"),
              [("computed and stored", fmt_t(t_run), "1"),
               ("read back from the store", fmt_t(t_read), f"{t_read / t_run:.3g}")])
    for pool in pools.values():
        pool.close()


if __name__ == "__main__":
    main()
