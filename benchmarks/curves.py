"""Benchmark the learning-curve closed forms of ``theory.generalization``.

Usage::

    PYTHONPATH=. python benchmarks/curves.py            # full run (< 1 min on 2 cores)
    PYTHONPATH=. python benchmarks/curves.py --quick    # reduced sizes (< 15 s)

Every section measures its own baseline in the same run and prints ratios, so the
numbers travel between machines better than the absolute times do.

a. Closed forms on ``10^5`` alphas (``U(0.01, 1.99)`` for ReLU, ``U(0.01, 3)`` otherwise,
   seeded; noise ``S = 0.25``, ridge ``zeta = 1/64``): the vectorized public functions
   (:func:`min_norm_linear`, :func:`ridge_linear`, :func:`relu_exhaustive`, and
   :func:`learning_curve` for ridge), the same public functions called per scalar alpha in a
   Python loop (timed on fewer points, per point), and -- the baseline -- a hand-written
   ``math`` formula per scalar in a Python loop (the naive Krogh-Hertz form for ridge). The
   table gives time per point and the speed-up over the baseline; the last column is the
   largest relative difference between vectorized and baseline values.
b. :func:`optimal_ridge` (one ``minimize_scalar`` per alpha), per alpha.
c. ``bench_replica()`` -- hook for the replica solver (filled in by its owner): times
   ``replica.learning_curve`` per alpha with and without continuation when the module exists.

Times are ``time.perf_counter`` wall-clock seconds: "best" is the minimum over the repeats.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_t, table  # noqa: E402

# sizes: (full, quick)
N_VECTOR = (10**5, 10**5)
N_SCALAR = (3 * 10**3, 500)  # points for the per-scalar public-function loop
N_BASELINE = (10**5, 2 * 10**4)  # points for the hand-written math loop
N_OPT = (200, 30)
REPEATS = (7, 3)
SEED = 0
S = 0.25
ZETA = 1.0 / 64.0


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ------------------------------------------------------------------- scalar baselines
def min_norm_scalar(a: float) -> float:
    if a == 1.0:
        return math.inf
    return 1 - a + a * S / (1 - a) if a < 1 else S / (a - 1)


def ridge_scalar(a: float, z: float = ZETA) -> float:
    """Naive Krogh-Hertz: G from the printed formula, G' by its derivative, no stabilizing."""
    sa = math.sqrt(a)
    D = math.sqrt((z + (1 + sa) ** 2) * (z + (1 - sa) ** 2))
    G = (1 - a - z + D) / (2 * z)
    dD = (z + 1 + a) / D
    Gp = (dD - 1) / (2 * z) - (D - (a - 1 + z)) / (2 * z * z)
    return S * (G + z * Gp) - z * z * Gp


def relu_scalar(a: float) -> float:
    return 1 - a / 4 + a * S / (2 * (2 - a))


# ----------------------------------------------------------------------------- sections
def section_closed_forms(gen, quick: bool) -> None:
    k = 1 if quick else 0
    rng = np.random.default_rng(SEED)
    a_lin = rng.uniform(0.01, 3.0, N_VECTOR[k])
    a_relu = rng.uniform(0.01, 1.99, N_VECTOR[k])
    cases = {
        "min-norm": (a_lin, lambda a: gen.min_norm_linear(a, S).eps, min_norm_scalar),
        "ridge": (a_lin, lambda a: gen.ridge_linear(a, ZETA, S).eps, ridge_scalar),
        "ridge via learning_curve": (a_lin, lambda a: gen.learning_curve(
            "linear", "wn-decay", a, noise=S, zeta=ZETA).eps, ridge_scalar),
        "relu eq. 25": (a_relu, lambda a: gen.relu_exhaustive(a, S).eps, relu_scalar),
    }
    rows = []
    for name, (a, vec, scalar) in cases.items():
        vec(a[:10])  # warm-up
        t_vec = best_time(lambda a=a, vec=vec: vec(a), REPEATS[k]) / a.size
        sub = a[:N_SCALAR[k]]
        t_pub = best_time(lambda sub=sub, vec=vec: [vec(float(x)) for x in sub], 1) / sub.size
        base = a[:N_BASELINE[k]]
        t_base = best_time(lambda base=base, scalar=scalar: [scalar(float(x)) for x in base],
                           REPEATS[k]) / base.size
        v = vec(base)
        b = np.array([scalar(float(x)) for x in base])
        ok = np.isfinite(b) & np.isfinite(v)
        err = float(np.max(np.abs(v[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300)))
        rows.append((name, fmt_t(t_vec), fmt_t(t_pub), fmt_t(t_base),
                     f"{t_base / t_vec:.3g}x", f"{t_base / t_pub:.3g}x", f"{err:.1e}"))
    table(f"a. closed forms, time per point ({N_VECTOR[k]:.0e} alphas vectorized)",
          ("curve", "vectorized", "public fn per scalar", "math loop (baseline)",
           "vectorized speed-up", "per-scalar speed-up", "max rel diff"), rows)


def section_optimum(gen, quick: bool) -> None:
    k = 1 if quick else 0
    a = np.linspace(0.05, 3.0, N_OPT[k])
    t = best_time(lambda: gen.optimal_ridge(a, S), 1) / a.size
    base = best_time(lambda: gen.ridge_linear(a, S, S), REPEATS[k]) / a.size
    dev = float(np.max(np.abs(gen.optimal_ridge(a, S).zeta - S)))
    table("b. optimal_ridge (bounded Brent per alpha)",
          ("quantity", "value"),
          [("time per alpha", fmt_t(t)),
           ("ratio to ridge_linear at zeta = S (vectorized, per point)", f"{t / base:.3g}x"),
           ("max |zeta* - S|", f"{dev:.1e}")])


def bench_replica(quick: bool = True) -> None:
    """HOOK for the replica solver's owner: time ``replica.learning_curve`` per alpha.

    Times a ReLU curve (S = 0.25, zeta = 1/64) on a few alphas with and without
    continuation (when ``learning_curve`` takes a ``continuation`` argument), against
    :func:`relu_exhaustive` per point as the baseline. Prints "replica solver not available"
    when the module or its ``learning_curve`` is missing.
    """
    try:
        from perceptron_theory.theory import replica
    except ImportError:
        print("\nc. replica solver not available")
        return
    if not hasattr(replica, "learning_curve"):
        print("\nc. replica solver not available")
        return
    from perceptron_theory.theory import generalization as gen

    a = np.linspace(0.2, 1.8, 5 if quick else 17)
    has_cont = "continuation" in inspect.signature(replica.learning_curve).parameters
    rows = []
    base = best_time(lambda: [gen.relu_exhaustive(float(x), S) for x in a], 3) / a.size
    for cont in ((True, False) if has_cont else (None,)):
        kw = {} if cont is None else {"continuation": cont}
        t = best_time(lambda kw=kw: replica.learning_curve(a, student="relu", noise=S,
                                                           zeta=ZETA, beta=math.inf, **kw),
                      1) / a.size
        rows.append((f"continuation={cont}" if cont is not None else "default",
                     fmt_t(t), f"{t / base:.3g}x"))
    table("c. replica.learning_curve (ReLU, S = 0.25, zeta = 1/64), per alpha",
          ("variant", "time per alpha", "ratio to eq. 25 per scalar"), rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (< 15 s)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    t_imp0 = time.perf_counter()
    from perceptron_theory.theory import generalization as gen

    t_imp = time.perf_counter() - t_imp0
    print(f"perceptron_theory curves benchmark ({'quick' if args.quick else 'full'}) -- "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    print(f"import perceptron_theory.theory.generalization: {fmt_t(t_imp)}")
    section_closed_forms(gen, args.quick)
    section_optimum(gen, args.quick)
    bench_replica(args.quick)
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
