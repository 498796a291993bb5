"""Benchmark the numba simulation engine against baselines measured in the same run.

Usage::

    PYTHONPATH=. python benchmarks/simulate.py            # full (includes L-F1a at N=4096)
    PYTHONPATH=. python benchmarks/simulate.py --quick    # < 1 min
    PYTHONPATH=. python benchmarks/simulate.py --offline  # section e only (~10 min)
    PYTHONPATH=. python benchmarks/simulate.py --committee  # section f only (~1 min)

a. **Online step rate** of one update rule (weight normalization + gamma decay, ReLU
   student and teacher, M = 1: Luo et al. eq. 5) at N = 1000 and 4096, in steps/s per
   run:
   - *numpy loop*: a straightforward per-sample loop (numpy's default_rng, one sample at
     a time) -- the baseline;
   - *torch CPU*: the same update vectorized over 64 independent runs (a (64, N) tensor
     per step, one thread), steps/s per run;
   - *numba vector*: :func:`online.run` with ``engine="vector"`` (N-vectors, one thread);
   - *input floor*: generating the N Gaussian inputs of each step alone with the same
     generator (:func:`_rng.fill_normal`), and with numba's ``np.random`` for reference;
   - *numba reduced*: the exact rotation-reduced chain (``engine="reduced"``), which
     needs no inputs at all.
b. **Parallel speed-up** of ``prange`` over seeds: 1 thread vs all threads, same seeds.
c. **Compile time**: first call in a fresh process with an empty numba cache, and the
   second process (cache hit).
d. **L-F1a at N = 4096**: wall time of one cell (alpha = 3) of the BN (M = 32) simulation
   of the Fig. 1a validation at the paper's size, and the whole full-size run extrapolated
   by work (alpha N^2 epochs).
e. **Offline runner against the memory floor** (BN, linear, N = 4096, M = 32, as L-F1a):
   ``offline.run`` per seed and epoch (the difference of runs of ``1`` and ``1 + E``
   epochs, so data generation and read-outs cancel; median of three such pairs) against
   streaming the same array once (:func:`._offline_kernels.stream_sum`, eight rows at a
   time: the fastest plain read measured), float64 and float32 storage, alpha = 0.5, 1.5,
   3, on 1 and 2 threads (two seeds; two arrays for the floor). The floor's own speed-up
   is printed too: where one core already takes the memory bandwidth the machine has,
   no runner can gain from a second thread more than its own ratio to the floor. On a
   machine other processes share, wall-clock ratios and speed-ups measure the neighbours
   as much as the code; the CPU-time columns are steadier (the load average is printed
   before and after). The replaced runner (``offline._reference``) is timed beside it
   (full mode). From these numbers: the BN simulation of L-F1a at the paper's scale,
   estimated (not run).
f. **Committee machines** (:mod:`.committee`, erf, online, one thread, N = 1000, B = 1):
   time per sample of ``simulate.committee.run`` (``sgd`` and ``bn`` at B = 16) for
   K = M = 1, 2, 4, against the floor of the same run: generating the sample's N inputs
   (:func:`_rng.fill_normal`) plus the (K + M) dot products and K updates of length N that
   any engine must do (a plain numba loop), and K = M = 1 against the single-unit engine
   (``online.run("sgd", engine="vector")``, same work). The ODE: time per right-hand side
   of :func:`perceptron_theory.theory.committee.rhs` (erf and ReLU, K = M = 2, 4), and
   one plateau trajectory (erf, K = M = 2, t = 300).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import fmt_t, table  # noqa: E402

LR, ZETA, GAMMA0 = 0.5, 0.25, 1.0 / 1.5


def numpy_loop(N: int, n_steps: int, seed: int = 0) -> float:
    """Seconds per step of the per-sample numpy implementation of the update."""
    rng = np.random.default_rng(seed)
    ws = rng.standard_normal(N)
    ws *= math.sqrt(N) / np.linalg.norm(ws)
    w = rng.standard_normal(N)
    g = GAMMA0
    t0 = time.perf_counter()
    for _ in range(n_steps):
        x = rng.standard_normal(N) / math.sqrt(N)
        nw = np.linalg.norm(w)
        u = w / nw
        ux = u @ x
        hhat = math.sqrt(N) * ux
        s = g * hhat
        t = ws @ x
        delta = (max(t, 0.0) - max(s, 0.0)) * (s > 0)
        L = nw / math.sqrt(N)
        w += LR * delta * (g / L) * (x - ux * u)
        g += LR / N * (delta * hhat - ZETA * g)
    return (time.perf_counter() - t0) / n_steps


def torch_vectorized(N: int, n_steps: int, K: int = 64) -> float:
    """Seconds per step *per run* of the update vectorized over K runs in torch (CPU)."""
    import torch

    torch.set_num_threads(1)  # the same single core as the numba rows
    gen = torch.Generator().manual_seed(0)
    ws = torch.randn(K, N, generator=gen, dtype=torch.float64)
    ws *= math.sqrt(N) / ws.norm(dim=1, keepdim=True)
    w = torch.randn(K, N, generator=gen, dtype=torch.float64)
    g = torch.full((K,), GAMMA0, dtype=torch.float64)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        x = torch.randn(K, N, generator=gen, dtype=torch.float64) / math.sqrt(N)
        nw = w.norm(dim=1)
        u = w / nw[:, None]
        ux = (u * x).sum(1)
        hhat = math.sqrt(N) * ux
        s = g * hhat
        t = (ws * x).sum(1)
        delta = (t.clamp(min=0) - s.clamp(min=0)) * (s > 0)
        L = nw / math.sqrt(N)
        w += (LR * delta * g / L)[:, None] * (x - ux[:, None] * u)
        g += LR / N * (delta * hhat - ZETA * g)
    return (time.perf_counter() - t0) / (n_steps * K)


def numba_run(N: int, t_max: float, engine: str, seeds: int = 1) -> float:
    """Seconds per step per run of ``online.run`` (after a warm-up call)."""
    from perceptron_theory.simulate import online

    kw = dict(N=N, lr=LR, zeta=ZETA, gamma_init=GAMMA0, R_init=0.5, n_points=2, engine=engine,
              seeds=seeds)
    online.run("wn-decay", "relu", t_max=0.01, **kw)
    t0 = time.perf_counter()
    online.run("wn-decay", "relu", t_max=t_max, **kw)
    return (time.perf_counter() - t0) / (round(t_max * N) * seeds)


def input_floor(N: int, n_steps: int) -> tuple[float, float]:
    """Seconds per step to generate N Gaussians: our ziggurat, numba's np.random."""
    from numba import njit

    from perceptron_theory.simulate._rng import fill_normal, seed_state

    @njit
    def ours(s, x, n):
        acc = 0.0
        for _ in range(n):
            fill_normal(s, x, 1.0)
            acc += x[0]
        return acc

    @njit
    def theirs(x, n):
        acc = 0.0
        for _ in range(n):
            for i in range(x.shape[0]):
                x[i] = np.random.standard_normal()
            acc += x[0]
        return acc

    x = np.empty(N)
    s = seed_state(0, 0)
    ours(s, x, 2)
    theirs(x, 2)
    t0 = time.perf_counter()
    ours(s, x, n_steps)
    t1 = time.perf_counter()
    theirs(x, n_steps)
    t2 = time.perf_counter()
    return (t1 - t0) / n_steps, (t2 - t1) / n_steps


def best(f, *args, repeat=3):
    return min(f(*args) for _ in range(repeat))


def section_a(quick: bool) -> None:
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(1)
    rows = []
    try:
        for N in (1000, 4096):
            n_np = 2000 if quick else 10000
            t_np = best(numpy_loop, N, n_np)
            t_torch = best(torch_vectorized, N, 100 if quick else 400)
            t_vec = best(numba_run, N, 5.0 if quick else 20.0, "vector")
            t_floor, t_floor_np = input_floor(N, 5000 if quick else 20000)
            t_red = best(numba_run, N, 1000.0 if quick else 4000.0, "reduced")
            for name, t in (("numpy loop (baseline)", t_np), ("torch CPU, 64 runs", t_torch),
                            ("numba vector", t_vec), ("numba reduced (exact)", t_red),
                            ("input floor, our ziggurat", t_floor),
                            ("input floor, numba np.random", t_floor_np)):
                rows.append((N, name, f"{1 / t:,.0f}", fmt_t(t), f"{t_np / t:.1f}x",
                             f"{t / t_floor:.2f}"))
    finally:
        numba.set_num_threads(old)
    table("a. online steps/s per run (1 thread; WN + gamma decay, ReLU, M = 1)",
          ("N", "implementation", "steps/s", "per step", "vs numpy", "/ floor"), rows)


def section_b(quick: bool) -> None:
    import numba

    n = numba.get_num_threads()
    seeds = 8 * n
    res = {}
    for threads in sorted({1, n}):
        numba.set_num_threads(threads)
        res[threads] = best(numba_run, 1000, 5.0 if quick else 20.0, "vector", seeds,
                            repeat=5) * seeds
    numba.set_num_threads(n)
    table(f"b. prange over {seeds} seeds (N = 1000, vector engine)",
          ("threads", "per step (all seeds)", "speed-up"),
          [(k, fmt_t(v), f"{res[1] / v:.2f}x") for k, v in res.items()])


def section_c() -> None:
    code = ("import time; t = time.perf_counter()\n"
            "from perceptron_theory.simulate import online, offline\n"
            "online.run('bn', 'relu', N=20, lr=0.1, t_max=0.5, batch_size=4)\n"
            "online.run('bn', 'relu', N=20, lr=0.1, t_max=0.5, batch_size=4, engine='reduced')\n"
            "offline.run('bn', 'linear', N=20, alpha=1, epochs=1, lr=0.1, batch_size=4)\n"
            "print(time.perf_counter() - t)\n")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        times = [float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(2)]
    table("c. first call (online vector + reduced + offline) in a fresh process",
          ("numba cache", "import + compile + run"),
          [("empty (compiles)", fmt_t(times[0])), ("warm (second process)", fmt_t(times[1]))])


def section_d(quick: bool) -> None:
    """Time one (alpha, N = 4096) cell of the full L-F1a BN simulation and scale by work.

    The full run (``validation.l_f1a.BN_SIZES[False]``) is every alpha at N = 2048 and 4096
    with ``BN_EPOCHS`` epochs; the simulation's cost is proportional to alpha N^2 epochs
    per seed. The simulation (``offline.run``) and the exact finite-N fits that
    ``l_f1a.bn_offline`` adds on the same draws (an SVD per seed, independent of the
    epochs) are timed separately: timing ``bn_offline`` as a whole overstated the
    simulation about 5x.
    """
    from perceptron_theory.simulate import data as sim_data
    from perceptron_theory.simulate import finite_n, offline
    from validation import l_f1a

    cfg = l_f1a.BN_SIZES[False]
    alpha, N = 3.0, 4096
    epochs = 30 if quick else l_f1a.bn_epochs(alpha)
    seeds = np.arange(cfg["seeds"])
    kw = dict(N=N, alpha=alpha, epochs=epochs, batch_size=l_f1a.BATCH, noise=l_f1a.NOISE,
              seeds=seeds, n_points=2, **offline.BN_SCHEDULE)
    offline.run("bn", "linear", **dict(kw, N=64, epochs=1))  # compile outside the clock
    t0 = time.perf_counter()
    offline.run("bn", "linear", **kw)
    t_sim = time.perf_counter() - t0
    P = int(round(alpha * N))
    n_fit = 1 if quick else len(seeds)
    t0 = time.perf_counter()
    for s in seeds[:n_fit]:
        X, y, _ = sim_data.training_set(N, P, noise=l_f1a.NOISE, seed=int(s))
        finite_n.centred_least_squares(X, y)
        finite_n.ridge_fit(X, y, P * l_f1a.ZETA_WN / N)
    t_fit = (time.perf_counter() - t0) / n_fit * len(seeds)
    unit = t_sim / (alpha * N * N * epochs)
    total = sum(a * n * n * l_f1a.bn_epochs(a) for a, Ns in cfg["runs"].items() for n in Ns)
    table(f"d. L-F1a BN simulation at the paper's N = 4096 ({cfg['seeds']} seeds, all threads)",
          ("measured cell", "simulation", "exact fits (all seeds)",
           "full L-F1a BN simulation (extrapolated by alpha N^2 epochs)"),
          [(f"alpha={alpha}, N={N}, {epochs} epochs", fmt_t(t_sim),
            fmt_t(t_fit) + (" (1 seed x 8)" if quick else ""), fmt_t(unit * total))])


OFFLINE_ALPHAS = (0.5, 1.5, 3.0)
OFFLINE_N, OFFLINE_M = 4096, 32


def _stream_floor(X, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds per array to stream ``X`` (shape=(k, P, N)) once, k arrays on
    ``threads`` threads (best of 5)."""
    from numba import njit, prange

    from perceptron_theory.simulate._offline_kernels import stream_sum

    @njit(parallel=True)
    def many(X, out):
        for k in prange(X.shape[0]):
            out[k] = stream_sum(X[k])

    out = np.empty(X.shape[0])
    many(X, out)
    best_w = best_c = math.inf
    for _ in range(5):
        w0, c0 = time.perf_counter(), time.process_time()
        many(X, out)
        best_w = min(best_w, time.perf_counter() - w0)
        best_c = min(best_c, time.process_time() - c0)
    return best_w / X.shape[0], best_c / X.shape[0]


def _runner_epoch(alpha: float, dtype: str, epochs: int, seeds: int, repeat: int = 1,
                  reference: bool = False) -> tuple[float, float, float]:
    """(wall, CPU) seconds per seed and epoch of ``offline.run`` (BN, L-F1a's settings),
    and (wall, CPU) seconds per seed of everything else (data, read-outs)."""
    from perceptron_theory.simulate import offline

    kw = dict(N=OFFLINE_N, alpha=alpha, batch_size=OFFLINE_M, noise=0.25, n_points=1,
              seeds=seeds, dtype=dtype, **offline.BN_SCHEDULE)
    kernel = offline._run
    if reference:
        offline._run = offline._reference
    try:
        offline.run("bn", "linear", **dict(kw, N=64, epochs=1))  # compile outside the clock
        diffs, firsts = [], []
        for _ in range(repeat):  # paired runs of 1 and 1 + epochs epochs; median of pairs
            t = []
            for e in (1, 1 + epochs):
                w0, c0 = time.perf_counter(), time.process_time()
                offline.run("bn", "linear", epochs=e, **kw)
                t.append(np.array([time.perf_counter() - w0, time.process_time() - c0]))
            diffs.append(t[1] - t[0])
            firsts.append(t[0])
    finally:
        offline._run = kernel
    wall, cpu = np.median(diffs, axis=0) / (seeds * epochs)
    first = np.median(firsts, axis=0) / seeds
    return wall, cpu, (first[0] - wall, first[1] - cpu)


def section_e(quick: bool) -> dict:
    """Prints the table; returns {(dtype, alpha, threads): (wall, CPU / threads) seconds per
    seed-epoch} and {("setup", dtype, alpha, threads): the same per seed for the rest}."""
    import numba

    n_all = numba.get_num_threads()
    thread_counts = sorted({1, min(2, n_all)})
    seeds, repeat = 2, 1 if quick else 3
    rows, meas = [], {}
    print(f"\n(load average before section e: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)")
    try:
        for dtype in ("float64", "float32"):
            for alpha in OFFLINE_ALPHAS:
                P = int(round(alpha * OFFLINE_N))
                X = np.random.default_rng(0).standard_normal((seeds, P, OFFLINE_N)).astype(dtype)
                epochs = max(3, round((30 if quick else 240) / alpha))
                base = {}
                for th in thread_counts:
                    numba.set_num_threads(th)
                    fw, fc = _stream_floor(X[:th], th)
                    rw, rc, setup = _runner_epoch(alpha, dtype, epochs, seeds, repeat)
                    # (wall, CPU per thread) per seed-epoch and per seed for the data
                    meas[dtype, alpha, th] = (rw, rc / th)
                    meas["setup", dtype, alpha, th] = (setup[0], setup[1] / th)
                    b = base.setdefault("one", (rw, rc, fw, fc))
                    rows.append((dtype, alpha, th, fmt_t(rw), fmt_t(fw), f"{rw / fw:.2f}",
                                 f"{rc / fc:.2f}", f"{b[0] / rw:.2f}x",
                                 f"{th * b[1] / rc:.2f}x", f"{b[2] / fw:.2f}x",
                                 f"{th * b[3] / fc:.2f}x"))
                    if dtype == "float64" and th == 1 and not quick:
                        ow, oc, _ = _runner_epoch(alpha, dtype, max(3, epochs // 2), seeds,
                                                  reference=True)
                        rows.append(("  replaced runner", alpha, th, fmt_t(ow), fmt_t(fw),
                                     f"{ow / fw:.2f}", f"{oc / fc:.2f}", "", "", "", ""))
                del X
    finally:
        numba.set_num_threads(n_all)
    table(f"e. offline runner per seed-epoch vs streaming X once (BN, N = {OFFLINE_N}, "
          f"M = {OFFLINE_M}; targets: ratio <= 1.5 at alpha >= 1 on 1 thread, >= 1.7x from "
          f"2 threads)",
          ("storage", "alpha", "threads", "runner", "floor", "ratio", "ratio (CPU)",
           "speed-up", "(CPU-equiv.)", "floor speed-up", "(CPU-equiv.)"), rows)
    print("  per seed-epoch, wall clock; ratio = runner / floor. CPU-equiv. speed-up = "
          "threads x CPU time per seed-epoch on 1 thread / on this many: the wall speed-up "
          "on an idle machine if the time lost to contention shows as CPU time (stalls on "
          "memory do; waiting for a core other processes hold does not)")
    print(f"(load average after: {os.getloadavg()[0]:.1f})")
    return meas


def fig1a_estimate(meas: dict) -> None:
    """The BN simulation of L-F1a at the paper's scale, from section e's per seed-epoch
    times: each (alpha, N) cell of ``l_f1a.BN_SIZES[False]`` costs seeds x epochs x the
    time measured at the nearest alpha scaled by alpha N^2 (memory-bound; the N = 2048 and
    alpha = 0.2 cells fit the caches better, so this overestimates them), plus the data."""
    from validation import l_f1a

    cfg = l_f1a.BN_SIZES[False]
    rows = []
    for dtype in ("float64", "float32"):
        for th in sorted({k[2] for k in meas if k[0] == dtype}):
            total = np.zeros(2)  # from the wall clock, from CPU time
            for a, Ns in cfg["runs"].items():
                near = min(OFFLINE_ALPHAS, key=lambda b, a=a: abs(b - a))
                for n in Ns:
                    scale = a * n * n / (near * OFFLINE_N ** 2)
                    total += cfg["seeds"] * scale * (
                        l_f1a.bn_epochs(a) * np.array(meas[dtype, near, th])
                        + np.array(meas["setup", dtype, near, th]))
            rows.append((dtype, th, fmt_t(total[0]), fmt_t(total[1])))
    table("   L-F1a BN simulation at the paper's scale (alpha in "
          f"{tuple(cfg['runs'])}, N = 2048 and 4096, {cfg['seeds']} seeds; estimated, "
          "not run)", ("storage", "threads", "at this load (wall)",
                       "idle machine (CPU time / threads)"), rows)


def _committee_floor(K: int, M: int, N: int, n: int) -> float:
    """Seconds per sample of the unavoidable work: N inputs, K + M dots, K axpys."""
    from numba import njit

    from perceptron_theory.simulate._rng import fill_normal, seed_state

    @njit
    def floor(s, x, W, Ws, n):
        acc = 0.0
        for _ in range(n):
            fill_normal(s, x, 0.03)
            for k in range(Ws.shape[0]):
                acc += np.dot(Ws[k], x)
            for k in range(W.shape[0]):
                c = 1e-9 * np.dot(W[k], x)
                W[k] += c * x
                acc += c
        return acc

    rng = np.random.default_rng(0)
    x, W, Ws = np.empty(N), rng.standard_normal((K, N)), rng.standard_normal((M, N))
    s = seed_state(0, 0)
    floor(s, x, W, Ws, 2)
    t0 = time.perf_counter()
    floor(s, x, W, Ws, n)
    return (time.perf_counter() - t0) / n


def section_f(quick: bool) -> None:
    import numba

    from perceptron_theory.simulate import committee as SC
    from perceptron_theory.simulate import online
    from perceptron_theory.theory import committee as CM

    numba.set_num_threads(1)
    N, t_max = 1000, (20.0 if quick else 100.0)
    n = round(t_max * N)
    rows, t_k1 = [], float("nan")
    for K in (1, 2, 4):
        kw = dict(hidden=K, teachers=K, N=N, lr=0.5, init_scale=1.0, n_points=2, n_test=10)
        SC.run("sgd", "erf", t_max=0.01, **kw)
        SC.run("bn", "erf", t_max=0.02, batch_size=16, **kw)
        t0 = time.perf_counter()
        SC.run("sgd", "erf", t_max=t_max, **kw)
        t_sgd = (time.perf_counter() - t0) / n
        t_k1 = t_sgd if K == 1 else t_k1
        t0 = time.perf_counter()
        SC.run("bn", "erf", t_max=t_max, batch_size=16, **kw)
        t_bn = (time.perf_counter() - t0) / n
        fl = min(_committee_floor(K, K, N, n // 4) for _ in range(3))
        rows.append((f"{K}", fmt_t(t_sgd), fmt_t(t_bn), fmt_t(fl), f"{t_sgd / fl:.2f}",
                     f"{t_bn / fl:.2f}"))
    table(f"f. committee simulator, erf, N = {N}, per sample, 1 thread (floor: inputs + "
          f"dots + updates)", ("K = M", "sgd", "bn (B=16)", "floor", "sgd/floor",
                               "bn/floor"), rows)
    kw = dict(N=N, lr=0.5, n_points=2, engine="vector", R_init=0.0)
    online.run("sgd", "erf", t_max=0.01, **kw)
    t0 = time.perf_counter()
    online.run("sgd", "erf", t_max=t_max, **kw)
    t_single = (time.perf_counter() - t0) / n
    print(f"  K = M = 1 against the single-unit engine (online.run sgd, vector): "
          f"{fmt_t(t_single)} per sample; committee / single = {t_k1 / t_single:.2f}")
    rows = []
    for act in ("erf", "relu"):
        for K in (2, 4):
            sp = CM.spec("sgd", act, K, K)
            f = CM.rhs(sp, 0.5)
            rng = np.random.default_rng(1)
            A = rng.standard_normal((2 * K, 2 * K)) * 0.3 + np.eye(2 * K)
            G = A @ A.T / (2 * K)
            y = CM.pack(sp, G[:K, :K], G[:K, K:])
            f(0.0, y)
            reps = 200 if act == "erf" else 20
            t0 = time.perf_counter()
            for _ in range(reps):
                f(0.0, y)
            rows.append((act, f"{K}", fmt_t((time.perf_counter() - t0) / reps)))
    table("   committee ODE: one right-hand side (sgd)", ("activation", "K = M", "time"), rows)
    Q0, R0 = SC.initial_overlaps(2, 2, N=1000, seed=0, scale=1.0)
    t0 = time.perf_counter()
    CM.integrate("sgd", "erf", hidden=2, teachers=2, lr=1.0, Q0=Q0, R0=R0, t_max=300)
    print(f"   plateau trajectory (erf, K = M = 2, t = 300, DOP853 rtol 1e-8): "
          f"{time.perf_counter() - t0:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--offline", action="store_true",
                    help="only section e (offline runner against the memory floor)")
    ap.add_argument("--committee", action="store_true", help="only section f (committees)")
    a = ap.parse_args()
    import numba

    print(f"python {sys.version.split()[0]}, numba {numba.__version__}, "
          f"{numba.get_num_threads()} threads, cpu count {os.cpu_count()}")
    if a.committee:
        section_f(a.quick)
        return
    if not a.offline:
        section_a(a.quick)
        section_b(a.quick)
        section_c()
        section_d(a.quick)
    fig1a_estimate(section_e(a.quick))
    section_f(a.quick)


if __name__ == "__main__":
    main()
