r"""Benchmark every normalizer of :mod:`perceptron_theory.deep.norms` against BatchNorm2d.

Usage::

    PYTHONPATH=. python benchmarks/deep_norms.py            # full run (< 1 min on 2 cores)
    PYTHONPATH=. python benchmarks/deep_norms.py --quick    # fewer rounds (~10 s)
    PYTHONPATH=. python benchmarks/deep_norms.py --threads 1   # stable ratios on a busy machine
    PYTHONPATH=. python benchmarks/deep_norms.py --device cuda

One forward + backward (``(y * g).sum().backward()``, a fixed random ``g``) of each
layer in training mode on the same input, by default ``(128, 64, 16, 16)`` float32
(``dim=2``) and ``(128, 512)`` float32 (``dim=1``; baseline ``BatchNorm1d``). Every
*round* times the baseline and every layer in a freshly shuffled order, each over
``INNER`` calls after ``WARMUP`` untimed ones; the ratio of a layer is the median
over rounds of (its time / the baseline's time in the same round), so load from other
jobs on the machine mostly cancels. Two clocks: wall (``time.perf_counter``;
``torch.cuda.synchronize`` on CUDA) and, on CPU, the process's CPU time
(``time.process_time``), which excludes the time the process waits for a core -- with
one torch thread (``--threads 1``) it is the compute time and stays stable on a shared,
loaded machine, where wall-clock ratios swing by 2x. Flags use the CPU-time ratio with
one thread on CPU, the wall ratio otherwise: ``!!`` over 2x, ``!`` over 1.3x.

Rows: each distinct layer of the registry (``wn+X`` builds the same layer as ``X``,
``wn`` the same as ``none``); ``pre-ln`` and ``pre-regnorm`` include the
pre-centering of an input of the same size (their cost in a network: one more pass
over the op's input); ``regnorm+r`` adds Rao's regularizer to the loss. The ``none``
row is the harness itself (the product with ``g``, the sum and their backward).

The dense table measures dispatch more than arithmetic: a ``(128, 512)`` tensor is
256 KB, ``BatchNorm1d`` is one native kernel each way, and the hand-written kernels
(ghost BN, variance-only BN, BMLV, LMBV, the RMS layer) issue ~25 small tensor ops of
~10 us each -- a few hundred microseconds per layer and step, small next to the conv
layers of the same network.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_t, table  # noqa: E402

SHAPE_2D = (128, 64, 16, 16)
SHAPE_1D = (128, 512)
ROUNDS = (15, 5)  # (full, quick)
INNER = (5, 3)
WARMUP = 3
SEED = 0
SLOW, WARN = 2.0, 1.3


def _cases(norms, channels: int, dim: int):
    """``[(row name, module, wrap)]``: ``wrap(x)`` prepares the input (pre-centering)."""
    from torch import nn

    cases = []
    for name in norms.norm_names():
        spec = norms.NORMS[name]
        if spec.layer != name:
            continue
        module = norms.make_norm(name, channels, dim=dim)
        wrap = None
        if spec.pre_centering:
            wrap = norms.apply_pre_centering(nn.Identity())
        cases.append((name, module, wrap, False))
        if spec.regularized:
            cases.append((name + "+r", norms.make_norm(name, channels, dim=dim), wrap, True))
    return cases


def _step(module, wrap, regularize, x, g):
    y = module(wrap(x) if wrap is not None else x)
    loss = (y * g).sum()
    if regularize:
        loss = loss + module.regularizer()
    loss.backward()


def run(shape, dim: int, device: str, rounds: int, inner: int) -> list[tuple]:
    """Time every layer on one input shape; return the table rows."""
    import torch
    from torch import nn

    from perceptron_theory.deep import norms

    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_(True)
    g = torch.randn(shape, generator=gen).to(device)
    C = shape[1]
    base = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(C).to(device)
    cases = [(f"torch BatchNorm{dim}d", base, None, False)]
    cases += [(n, m.to(device), w, r) for n, m, w, r in _cases(norms, C, dim)]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def timed(case) -> tuple[float, float]:
        _, module, wrap, reg = case
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(inner):
            _step(module, wrap, reg, x, g)
        sync()
        return (time.perf_counter() - t0) / inner, (time.process_time() - c0) / inner

    for case in cases:
        for _ in range(WARMUP):
            _step(case[1], case[2], case[3], x, g)
    rng = random.Random(SEED)
    times = {c[0]: ([], []) for c in cases}
    ratios = {c[0]: ([], []) for c in cases}
    for _ in range(rounds):
        order = list(cases)
        rng.shuffle(order)
        t_round = {c[0]: timed(c) for c in order}
        t_base = t_round[cases[0][0]]
        for name, t in t_round.items():
            for k in (0, 1):
                times[name][k].append(t[k])
                ratios[name][k].append(t[k] / max(t_base[k], 1e-12))
        x.grad = None
    on_cpu = device == "cpu"
    by_cpu = on_cpu and torch.get_num_threads() == 1
    rows = []
    for name, module, _, _ in cases:
        r_wall, r_cpu = (statistics.median(ratios[name][k]) for k in (0, 1))
        r = r_cpu if by_cpu else r_wall
        flag = "!!" if r > SLOW else ("!" if r > WARN else "")
        rows.append((name, type(module).__name__, fmt_t(statistics.median(times[name][0])),
                     f"{r_wall:.2f}", fmt_t(statistics.median(times[name][1])) if on_cpu
                     else "-", f"{r_cpu:.2f}" if on_cpu else "-", flag))
    return rows


def main(argv=None) -> int:
    """Time all normalizers on CPU (and CUDA when asked and available); print tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (< 20 s)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"),
                        help="cpu (default), cuda, or all (cpu, then cuda if available)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    i = int(args.quick)
    devices = ["cpu"] if args.device == "cpu" else (
        ["cuda"] if args.device == "cuda" else ["cpu", "cuda"])
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA not available: skipping it")
        devices = [d for d in devices if d != "cuda"] or []
    t0 = time.perf_counter()
    print(f"perceptron_theory.deep.norms benchmark ({'quick' if args.quick else 'full'}) -- "
          f"Python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"{platform.machine()}")
    header = ("layer", "class", "wall", "ratio", "cpu time", "ratio (cpu)", "flag")
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        for shape, dim in ((SHAPE_2D, 2), (SHAPE_1D, 1)):
            rows = run(shape, dim, device, ROUNDS[i], INNER[i])
            table(f"{device} ({name}), input {shape} float32, dim={dim}, "
                  f"{ROUNDS[i]} rounds x {INNER[i]} calls", header, rows)
    print(f"\nratios: median over rounds of time / torch BatchNorm's time in the same round; "
          f"'!!' = over {SLOW:g}x, '!' = over {WARN:g}x")
    print(f"total wall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
