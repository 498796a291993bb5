"""Benchmark the command line's latency against ``perceptron-theory --version``.

Usage::

    PYTHONPATH=. python benchmarks/cli.py [--repeats 3]

Each command runs as a fresh process (``python -m perceptron_theory.cli ...``), best of
the repeats, with a cache folder (``XDG_CACHE_HOME``: the code cache and the run store)
that is empty for the *cold* column and filled by the cold call for the *warm* one;
``--version`` (the interpreter, numpy and the parser) is the floor, measured in the same
run. ``lr-limits`` and ``dynamics`` keep their results in the run store (their solvers
need scipy.optimize / scipy.integrate, whose import alone costs more than the floor), so
their warm call reads the result back; the *computed* column is a warm call that
computes anyway (``--no-cache``: code cache filled, store not used), the cost of new
arguments. Target (issue 15): warm ``integrals``, ``lr-limits``, ``curve``,
``dynamics`` under 2x the floor.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import table  # noqa: E402

COMMANDS = {
    "--version": ["--version"],
    "integrals": ["integrals", "--activation", "erf", "--Q", "1", "--R", "0.5"],
    "lr-limits": ["lr-limits", "--method", "bn", "--activation", "erf", "--zeta", "0.1"],
    "curve": ["curve", "--student", "linear", "--method", "ridge", "--alpha", "1",
              "--zeta", "0.1"],
    "dynamics": ["dynamics", "--method", "wn", "--activation", "relu", "--lr", "0.5",
                 "--t-max", "5"],
}
#: commands whose results the run store keeps (they take ``--no-cache``)
STORED = ("lr-limits", "dynamics")


def _time(argv, env) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "perceptron_theory.cli", *argv], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rows = []
    floor = None
    for name, argv in COMMANDS.items():
        cold, warm, computed = [], [], []
        for _ in range(a.repeats):
            with tempfile.TemporaryDirectory() as d:
                env = {**os.environ, "XDG_CACHE_HOME": d}
                cold.append(_time(argv, env))
                warm.append(_time(argv, env))
                if name in STORED:
                    computed.append(_time([*argv, "--no-cache"], env))
        c, w = min(cold), min(warm)
        floor = floor or w
        comp = min(computed) if computed else None
        rows.append((name, f"{c:.2f} s", f"{w:.2f} s",
                     f"{comp:.2f} s" if comp else "= warm", f"{c / floor:.2f}",
                     f"{w / floor:.2f}", f"{comp / floor:.2f}" if comp else f"{w / floor:.2f}"))
    table("command-line latency (fresh process; best of repeats)",
          ("command", "cold", "warm", "computed", "cold / --version", "warm / --version",
           "computed / --version"), rows)


if __name__ == "__main__":
    main()
