r"""Benchmark the Hessian probes of :mod:`perceptron_theory.deep.probes` on the CNN.

Usage::

    PYTHONPATH=. python benchmarks/probes.py             # n = 512 (13 min on 2 quiet cores)
    PYTHONPATH=. python benchmarks/probes.py --quick     # n = 64, fewer rounds (~1 min)
    PYTHONPATH=. python benchmarks/probes.py --device cuda

Model: ``make_model("cnn", in_channels=1, image_size=28)`` (Luo et al.'s 4conv+2fc,
6.49M parameters) at its seeded initialization, BN with batch statistics
(``mode="train"``, the training loss; ``--mode eval`` for running statistics), on ``n``
Fashion-MNIST training samples (Gaussian inputs when the data set is absent).

1. Cost of one Hessian-vector product relative to one gradient (forward + backward)
   on the same batch. Every *round* times, in a shuffled order: the gradient; a
   double-backward product on a stored first-order graph (what Lanczos pays per
   iteration); a fresh double-backward product (graph build + one product); a
   forward-over-reverse product (``torch.func.jvp`` of ``torch.func.grad``). The ratio is
   the median over rounds of (time / the gradient's time in the same round), on the
   wall clock and, on CPU, on the process's CPU time (stabler on a shared machine).
2. Wall time of the top-10 eigenvalues (``top_eigenvalues``: ARPACK via
   ``scipy.sparse.linalg.eigsh`` on the stored-graph products, relative tolerance
   ``--tol``), with the number of products, :math:`\lambda_1` and
   :math:`\lambda_1/\lambda_{10}`.
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

N = (512, 64)  # samples (full, quick)
ROUNDS = (5, 3)
K = 10
TOL = 1e-3
SEED = 0


def _data(n: int, device: str):
    import torch

    from perceptron_theory.deep.data import make_dataset

    try:
        bundle = make_dataset("fashion-mnist", subset=max(n, 1000), val_fraction=0.0, seed=SEED)
        x, y = bundle.train_x[:n], bundle.train_y[:n]
        source = "Fashion-MNIST"
    except FileNotFoundError:
        g = torch.Generator().manual_seed(SEED)
        x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
        source = "Gaussian inputs, random labels"
    return x.to(device), y.to(device), source


def run_ratios(model, x, y, mode: str, rounds: int, device: str) -> list[tuple]:
    """Rows of the HVP-vs-gradient table."""
    import torch
    import torch.nn.functional as F

    from perceptron_theory.deep.probes import HessianOperator, probe_copy

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    net = probe_copy(model, mode)
    params = [p for p in net.parameters() if p.requires_grad]
    cached = HessianOperator(model, x, y, mode=mode)
    fwd = HessianOperator(model, x, y, mode=mode, method="forward-over-reverse")
    v = torch.randn(cached.dim, generator=torch.Generator().manual_seed(SEED)).to(device)

    def gradient():
        torch.autograd.grad(F.cross_entropy(net(x), y), params)

    def fresh():
        HessianOperator(model, x, y, mode=mode).matvec(v)

    cases = [("gradient (forward + backward)", gradient),
             ("HVP double-backward, stored graph", lambda: cached.matvec(v)),
             ("HVP double-backward, fresh graph", fresh),
             ("HVP forward-over-reverse", lambda: fwd.matvec(v))]
    for _, fn in cases:  # warm-up
        fn()
    times = {name: ([], []) for name, _ in cases}
    rng = random.Random(SEED)
    for _ in range(rounds):
        order = list(cases)
        rng.shuffle(order)
        for name, fn in order:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    base = cases[0][0]
    rows = []
    for name, _ in cases:
        wall, cpu = times[name]
        r_wall = statistics.median(w / b for w, b in zip(wall, times[base][0], strict=True))
        r_cpu = statistics.median(c / b for c, b in zip(cpu, times[base][1], strict=True))
        rows.append((name, fmt_t(statistics.median(wall)), f"{r_wall:.2f}",
                     fmt_t(statistics.median(cpu)) if device == "cpu" else "-",
                     f"{r_cpu:.2f}" if device == "cpu" else "-"))
    return rows


def run_eigs(model, x, y, mode: str, tol: float) -> list[tuple]:
    """Rows of the top-10 eigenvalue table."""
    from perceptron_theory.deep.probes import HessianOperator
    from perceptron_theory.deep.spectral import top_eigenvalues

    t0 = time.perf_counter()
    op = HessianOperator(model, x, y, mode=mode)
    t_build = time.perf_counter() - t0
    eig = top_eigenvalues(op, K, tol=tol, seed=SEED)
    total = time.perf_counter() - t0
    return [("parameters", f"{op.dim:,}"), ("graph build", fmt_t(t_build)),
            ("Hessian-vector products", str(op.n_matvec)),
            ("time per product", fmt_t((total - t_build) / max(op.n_matvec, 1))),
            (f"top-{K} eigenvalues, total", fmt_t(total)),
            ("lambda_1", f"{eig[0]:.5g}"), (f"lambda_1 / lambda_{K}", f"{eig[0] / eig[-1]:.4g}"),
            ("eigenvalues", " ".join(f"{e:.4g}" for e in eig))]


def main(argv=None) -> int:
    """Time the Hessian probes on the CNN; print two tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 64 samples")
    parser.add_argument("--n", type=int, default=0, help="samples (overrides --quick)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--mode", default="train", choices=("train", "eval"))
    parser.add_argument("--tol", type=float, default=TOL, help="eigsh relative tolerance")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    import torch

    from perceptron_theory.deep.models import make_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA not available")
        return 1
    i = int(args.quick)
    n = args.n or N[i]
    t0 = time.perf_counter()
    x, y, source = _data(n, args.device)
    torch.manual_seed(SEED)
    model = make_model("cnn", in_channels=1, image_size=28).to(args.device)
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"perceptron_theory.deep.probes benchmark -- Python {platform.python_version()}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} "
          f"torch threads, device {dev}")
    print(f"cnn(in_channels=1, image_size=28) at init, n = {n} ({source}), BN mode "
          f"{args.mode!r}, float32")
    table(f"Hessian-vector product vs gradient, median of {ROUNDS[i]} rounds",
          ("computation", "wall", "ratio", "cpu time", "ratio (cpu)"),
          run_ratios(model, x, y, args.mode, ROUNDS[i], args.device))
    table(f"top-{K} eigenvalues (eigsh, tol={args.tol:g}, ncv={max(2 * K + 1, 20)})",
          ("quantity", "value"), run_eigs(model, x, y, args.mode, args.tol))
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
