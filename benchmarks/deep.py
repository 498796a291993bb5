r"""Benchmark training throughput of the deep models, against baselines measured in the same run.

Usage::

    PYTHONPATH=. python benchmarks/deep.py              # CPU (+ CUDA when available)
    PYTHONPATH=. python benchmarks/deep.py --quick      # fewer rounds
    PYTHONPATH=. python benchmarks/deep.py --threads 1  # one torch thread (stable on a loaded box)
    PYTHONPATH=. python benchmarks/deep.py --quick --sections options,pn,trained  # issue 17

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
d. **CPU options** of ``TrainConfig`` (issue 17), on the small CNN (channels 4, 4, 8, 8,
   hidden 32, valid padding; full: also the default CNN) at batch 128 on 28 x 28 x 1:
   the plain step (float32, contiguous, 1 thread) against channels-last, bfloat16
   autocast, ``torch.compile`` (its compilation timed apart) and 2 threads, each in
   every round in a shuffled order; speedup = median over rounds of t(plain) / t(option)
   in the same round.
e. **PN refresh**: the small CNN with ``norm="pn"`` (5 PN layers), ``pn_samples``
   images in batches of 1000: one sweep per PN layer (``passes=5``, what ``train`` did)
   against the exact one-sweep refresh (``passes=None``) and a single plain sweep
   (``passes=1``, inexact: the cost floor); plus the largest relative difference of the
   statistics of the two exact schemes.
f. **Trained run**: ``train`` on all of Fashion-MNIST (54k training, 6k validation
   images) with the small CNN and default options (1 thread) for ``TRAIN_EPOCHS``
   epochs; wall time and validation accuracy (the target is >= 89%).
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
SMALL_CNN = {"channels": (4, 4, 8, 8), "hidden": 32, "padding": "valid"}
# CPU options: (rounds, steps per round) at each size; models timed
OPTION_ROUNDS = {False: (5, 4), True: (3, 3)}
OPTION_MODELS = {False: (("small cnn", SMALL_CNN), ("default cnn", {})),
                 True: (("small cnn", SMALL_CNN),)}
PN_SAMPLES = {False: 10_000, True: 2_000}
PN_ROUNDS = {False: 3, True: 2}
TRAIN_EPOCHS = 2  # 1 epoch reaches ~88% validation accuracy, 2 reach ~90%
SECTIONS = ("models", "norms", "options", "pn", "trained")
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


def _median_speedups(fns: dict, base: str, rounds: int, inner: int) -> tuple[dict, dict]:
    """Median step time of each ``fns`` entry and median per-round t(base) / t(entry)."""
    rng = random.Random(SEED)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for k in order:
            times[k].append(_time(fns[k], inner, lambda: None)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    speed = {k: statistics.median(b / a for a, b in zip(times[k], times[base], strict=True))
             for k in fns}
    return med, speed


def bench_options(quick: bool) -> None:
    """Section d: the CPU options of TrainConfig against the plain step, same rounds."""
    import torch
    import torch.nn.functional as F

    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.train import torch_threads

    rounds, inner = OPTION_ROUNDS[quick]
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(BATCH, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    rows = []
    for tag, options in OPTION_MODELS[quick]:
        def stepper(channels_last=False, amp=False, compile=False, threads=1,
                    options=options):
            torch.manual_seed(SEED)
            model = make_model("cnn", norm="bn", in_channels=1, image_size=28, **options)
            xb = x
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                xb = x.contiguous(memory_format=torch.channels_last)
            fwd = torch.compile(model) if compile else model
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step():
                with torch_threads(threads), torch.autocast("cpu", dtype=torch.bfloat16,
                                                            enabled=amp):
                    loss = F.cross_entropy(fwd(xb).float(), y)
                with torch_threads(threads):
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

            return step

        fns = {"plain (fp32, 1 thread)": stepper(),
               "channels_last": stepper(channels_last=True),
               "bf16 autocast": stepper(amp=True),
               "torch.compile": stepper(compile=True),
               "2 threads": stepper(threads=2)}
        t0 = time.perf_counter()
        fns["torch.compile"]()  # compiles forward and backward
        compile_s = time.perf_counter() - t0
        for fn in fns.values():
            fn()
        med, speed = _median_speedups(fns, "plain (fp32, 1 thread)", rounds, inner)
        for k in fns:
            note = f"compiled in {compile_s:.1f} s" if k == "torch.compile" else ""
            rows.append((tag, k, fmt_t(med[k]), f"{speed[k]:.2f}", note))
    table(f"CPU options of TrainConfig: training step at batch {BATCH}, 28x28x1, {rounds} "
          f"rounds x {inner} steps (speedup = median t(plain)/t(option) per round; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})",
          ("model", "variant", "wall/step", "speedup vs plain", ""), rows)
    from perceptron_theory.deep.train import _cpu_has_bf16

    print(f"native bfloat16 on this CPU (AVX512-BF16 / AMX): {_cpu_has_bf16()}")
    bench_bookkeeping(quick)


def bench_bookkeeping(quick: bool) -> None:
    """The per-step bookkeeping of train() beside an MLP step: a finiteness check and the
    epoch sums at every step (before issue 17) against the window checked every
    CHECK_EVERY steps (now). Timed alone (same loss and logits every step), as a share of
    the plain step, since whole steps differ by less than the machine's noise."""
    import torch
    import torch.nn.functional as F

    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.train import CHECK_EVERY, _Dist, _Window, torch_threads

    rounds, inner = (5 if quick else 11), 4 * CHECK_EVERY
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(BATCH, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    torch.manual_seed(SEED)
    model = make_model("mlp", norm="bn", in_channels=1, image_size=28)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    logits = model(x).float()
    ce = F.cross_entropy(logits, y)
    state = {"sums": torch.zeros(3, dtype=torch.float64), "window": _Window(), "step": 0}

    def plain():
        loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def before():
        if not float(torch.isfinite(ce.detach()).to(torch.float64).reshape(1)):
            raise FloatingPointError
        with torch.no_grad():
            state["sums"] += torch.stack([ce.detach().double() * len(y),
                                          (logits.argmax(1) == y).sum().double(),
                                          torch.tensor(float(len(y)), dtype=torch.float64)])

    def now():
        state["step"] += 1
        state["window"].add(ce, ce, [], logits, y)
        if len(state["window"]) == CHECK_EVERY:
            state["sums"], _ = state["window"].flush(state["sums"], state["step"], _Dist())

    with torch_threads(1):
        fns = {"plain step": plain, "check + sums every step (before)": before,
               f"window checked every {CHECK_EVERY} (now)": now}
        for fn in fns.values():
            fn()
        med, _ = _median_speedups(fns, "plain step", rounds, inner)
    base = med["plain step"]
    table(f"train() bookkeeping per step beside an mlp (fc 300) step at batch {BATCH}, "
          f"1 thread, {rounds} rounds x {inner} steps", ("", "wall/step", "share of the step"),
          [(k, fmt_t(v), "-" if k == "plain step" else f"{v / base:.1%}")
           for k, v in med.items()])


def bench_pn_refresh(quick: bool) -> None:
    """Section e: the PN refresh, one sweep per layer against the exact one-sweep scheme."""
    import copy

    import torch

    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.norms import PopulationNorm, refresh_population_stats

    n = PN_SAMPLES[quick]
    torch.manual_seed(SEED)
    model = make_model("cnn", norm="pn", in_channels=1, image_size=28, **SMALL_CNN)
    layers = sum(isinstance(m, PopulationNorm) for m in model.modules())
    gen = torch.Generator().manual_seed(SEED)
    batches = list((torch.randn(n, 1, 28, 28, generator=gen) * 1.5 + 0.3).split(1000))
    refresh_population_stats(model, batches[:1], passes=1)  # past the bootstrap
    variants = {f"old: passes={layers} (one sweep per PN layer)": layers,
                "new: passes=None (exact, one sweep)": None,
                "passes=1 (one plain sweep, inexact)": 1}
    times = {k: [] for k in variants}
    stats = {}
    with torch.no_grad():
        for _ in range(PN_ROUNDS[quick]):
            for k, passes in variants.items():
                m = copy.deepcopy(model)
                t0 = time.perf_counter()
                refresh_population_stats(m, batches, passes=passes)
                times[k].append(time.perf_counter() - t0)
                stats[k] = [torch.cat([l.population_mean, l.population_var])
                            for l in m.modules() if isinstance(l, PopulationNorm)]
    old, new = list(variants)[:2]
    diff = max(float(((a - b).abs() / b.abs().clamp_min(1e-12)).max())
               for a, b in zip(stats[new], stats[old], strict=True))
    rows = [(k, fmt_t(statistics.median(v)),
             f"{statistics.median(o / t for o, t in zip(times[old], v, strict=True)):.2f}")
            for k, v in times.items()]
    table(f"PN refresh: small cnn, {layers} PN layers, {n} samples in batches of 1000, "
          f"{PN_ROUNDS[quick]} rounds ({torch.get_num_threads()} threads)",
          ("scheme", "wall", "speedup vs old"), rows)
    print(f"largest relative difference of the statistics, new vs old: {diff:.2e}")


def bench_trained(quick: bool) -> None:
    """Section f: time of a run of the small CNN to >= 89% validation accuracy."""
    import logging
    import tempfile

    from perceptron_theory.deep.data import FASHION_MNIST_DIR
    from perceptron_theory.deep.train import TrainConfig, train

    if not FASHION_MNIST_DIR.is_dir():
        print(f"\ntrained run: skipped, no Fashion-MNIST in {FASHION_MNIST_DIR}")
        return
    logging.getLogger("perceptron_theory.deep").setLevel(logging.ERROR)
    variants = [("default options, 1 thread", {})]
    if not quick:
        variants.append(("compile=True (changes numerics)", {"compile": True}))
    rows = []
    for label, over in variants:
        cfg = TrainConfig(model="cnn", norm="bn", model_options=SMALL_CNN,
                          dataset="fashion-mnist", epochs=TRAIN_EPOCHS, device="cpu",
                          threads=1, **over)
        with tempfile.TemporaryDirectory(prefix="bench-deep-") as d:
            t0 = time.perf_counter()
            res = train(cfg, d, progress=False)
            wall = time.perf_counter() - t0
        h = res.history
        rows.append((label, f"{wall:.1f} s", " + ".join(f"{e['time']:.1f}" for e in h),
                     " / ".join(f"{e['val_acc']:.4f}" for e in h), f"{h[-1]['test_acc']:.4f}",
                     "yes" if h[-1]["val_acc"] >= 0.89 else "no"))
    table(f"trained run: small cnn (4,4,8,8; fc 32; valid) on all of Fashion-MNIST, "
          f"{TRAIN_EPOCHS} epochs, batch 128, lr 0.1 cosine (train() wall incl. data load)",
          ("variant", "wall", "epoch times (s)", "val acc per epoch", "test acc",
           ">= 89%"), rows)


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
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)")
    args = parser.parse_args(argv)
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        parser.error(f"--sections: unknown {bad}; valid: {', '.join(SECTIONS)}")
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
    for device in devices if "models" in sections else ():
        rounds, inner = ROUNDS[device][args.quick]
        rows = []
        for name, ch, size in CASES:
            rows += bench_model(name, ch, size, device, rounds, inner)
        dname = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        table(f"{device} ({dname}): training step, {rounds} rounds x {inner} steps "
              f"(median; ratios per round)", header, rows)
    if "models" in sections:
        print("\nratio vs none: median over rounds of time / the norm='none' model's time in "
              "the same round;\n'BatchNorm2d ... all N layers' = BN fwd+bwd alone at each BN "
              "input shape of the model, summed.")
        print(f"models: total wall time {time.perf_counter() - t0:.1f} s")
    for name, fn in (("options", bench_options), ("pn", bench_pn_refresh),
                     ("trained", bench_trained)):
        if name in sections:
            t1 = time.perf_counter()
            fn(args.quick)
            print(f"{name}: wall time {time.perf_counter() - t1:.1f} s")
    if not args.skip_norms and "norms" in sections:
        import deep_norms

        print("\n" + "=" * 78)
        norm_argv = (["--quick"] if args.quick else []) + ["--device", args.device]
        if args.threads:
            norm_argv += ["--threads", str(args.threads)]
        deep_norms.main(norm_argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
