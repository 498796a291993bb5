r"""Benchmark training throughput of the deep models, against baselines measured in the same run.

Usage::

    PYTHONPATH=. python benchmarks/deep.py              # CPU (+ CUDA when available)
    PYTHONPATH=. python benchmarks/deep.py --quick      # fewer rounds
    PYTHONPATH=. python benchmarks/deep.py --threads 1  # one torch thread (stable on a loaded box)

a. **Training step** (forward + cross entropy + backward + SGD-momentum step) at batch 128
   of :func:`perceptron_theory.deep.models.make_model`:

   - ``cnn`` (Luo et al.'s 4conv+2fc, widths 32/32/64/64, fc 512) on 28 x 28 x 1
     (Fashion-MNIST) and 32 x 32 x 3 (CIFAR-10) inputs;
   - ``resnet18`` (CIFAR stem) on 32 x 32 x 3,

   each with ``norm="bn"`` and, as the baseline, the same model with ``norm="none"``
   (conv biases instead of BN). Every *round* times both, in a shuffled order, over
   ``INNER`` steps after ``WARMUP`` untimed ones; the reported ratio is the median over
   rounds of t(bn)/t(none) in the same round, so load from other jobs mostly cancels.
   Images/s = 128 / median step time. On CPU the process CPU time is reported too.
b. **Reference**: ``torch.nn.BatchNorm2d`` forward + backward alone on the largest BN input
   of each model (``(128, 64, H, W)`` for the CNN, ``(128, 64, 32, 32)`` for ResNet-18),
   and the sum over all BN layers of the model of that layer's fwd + bwd at its own input
   shape ("BN layers alone"): the part of the step BN itself costs, to set beside
   t(bn) - t(none).
c. **Normalizers**: the per-layer timing table of ``benchmarks/deep_norms.py`` (every
   normalizer of ``deep.norms`` against ``BatchNorm2d``/``1d``), by calling its ``main``.
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

BATCH = 128
CASES = (("cnn", 1, 28), ("cnn", 3, 32), ("resnet18", 3, 32))
# (rounds, inner steps) per device and size: CPU steps of ResNet-18 take seconds
ROUNDS = {"cpu": {False: (5, 2), True: (3, 1)}, "cuda": {False: (15, 10), True: (5, 5)}}
WARMUP = 1
SEED = 0


def _sync(device: str):
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _bn_shapes(model, x) -> list[tuple]:
    """Input shapes of every BatchNorm2d of ``model`` on ``x`` (forward hooks)."""
    import torch

    shapes, hooks = [], []
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(
                lambda _m, a: shapes.append(tuple(a[0].shape))))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


def _step_fn(model, x, y):
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _bn_fn(shape, device: str):
    import torch

    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_(True)
    g = torch.randn(shape, generator=gen).to(device)
    bn = torch.nn.BatchNorm2d(shape[1]).to(device)

    def step():
        (bn(x) * g).sum().backward()
        x.grad = None

    return step


def _time(fn, inner: int, sync) -> tuple[float, float]:
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - t0) / inner, (time.process_time() - c0) / inner


def bench_model(name: str, channels: int, size: int, device: str, rounds: int, inner: int):
    """Time one model with BN and without; return the table rows and BN reference rows."""
    import torch

    from perceptron_theory.deep.models import make_model

    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(BATCH, channels, size, size, generator=gen).to(device)
    y = torch.randint(0, 10, (BATCH,), generator=gen).to(device)
    sync = _sync(device)
    fns = {}
    shapes = []
    for norm in ("bn", "none"):
        torch.manual_seed(SEED)
        model = make_model(name, norm=norm, in_channels=channels, image_size=size).to(device)
        if norm == "bn":
            shapes = _bn_shapes(model, x)
        fns[norm] = _step_fn(model, x, y)
    largest = max(shapes, key=lambda s: s[1] * s[2] * s[3])
    fns["BatchNorm2d largest"] = _bn_fn(largest, device)
    layer_fns = [_bn_fn(s, device) for s in shapes]
    fns["BN layers alone"] = lambda: [f() for f in layer_fns]
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    rng = random.Random(SEED)
    times = {k: ([], []) for k in fns}
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for k in order:
            w, c = _time(fns[k], inner, sync)
            times[k][0].append(w)
            times[k][1].append(c)
    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in times.items()}
    ratio = {k: statistics.median(a / b for a, b in zip(times[k][0], times["none"][0],
                                                          strict=True)) for k in fns}
    ratio_cpu = {k: statistics.median(a / max(b, 1e-12) for a, b in
                                      zip(times[k][1], times["none"][1], strict=True))
                 for k in fns}
    on_cpu = device == "cpu"
    tag = f"{name} {size}x{size}x{channels}"
    rows = []
    for k, label in (("none", "norm=none (baseline)"), ("bn", "norm=bn"),
                     ("BN layers alone", f"BatchNorm2d fwd+bwd, all {len(shapes)} layers"),
                     ("BatchNorm2d largest", f"BatchNorm2d fwd+bwd {largest}")):
        w, c = med[k]
        ips = f"{BATCH / w:.0f}" if k in ("none", "bn") else "-"
        rows.append((tag, label, fmt_t(w), ips, f"{ratio[k]:.2f}",
                     fmt_t(c) if on_cpu else "-", f"{ratio_cpu[k]:.2f}" if on_cpu else "-"))
    return rows


def main(argv=None) -> int:
    """Time the models on CPU (and CUDA when available), then the normalizer table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"),
                        help="cpu, cuda, or all (cpu, then cuda if available; default)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-norms", action="store_true",
                        help="do not run the per-normalizer table of deep_norms.py")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"]}[args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA not available: skipping it")
        devices.remove("cuda")
    t0 = time.perf_counter()
    print(f"perceptron_theory.deep models benchmark ({'quick' if args.quick else 'full'}) -- "
          f"Python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"{platform.machine()}; batch {BATCH}, SGD momentum step")
    header = ("model", "variant", "wall/step", "images/s", "ratio vs none", "cpu/step",
              "ratio (cpu)")
    for device in devices:
        rounds, inner = ROUNDS[device][args.quick]
        rows = []
        for name, ch, size in CASES:
            rows += bench_model(name, ch, size, device, rounds, inner)
        dname = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        table(f"{device} ({dname}): training step, {rounds} rounds x {inner} steps "
              f"(median; ratios per round)", header, rows)
    print("\nratio vs none: median over rounds of time / the norm='none' model's time in the "
          "same round;\n'BatchNorm2d ... all N layers' = BN fwd+bwd alone at each BN input "
          "shape of the model, summed.")
    print(f"models: total wall time {time.perf_counter() - t0:.1f} s")
    if not args.skip_norms:
        import deep_norms

        print("\n" + "=" * 78)
        norm_argv = (["--quick"] if args.quick else []) + ["--device", args.device]
        if args.threads:
            norm_argv += ["--threads", str(args.threads)]
        deep_norms.main(norm_argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
