"""The ``perceptron-theory`` command.

Every sub-command validates its arguments before any work; bad input prints one
line on stderr and exits with status 2. ``--json`` prints machine-readable output on
stdout; ``--plot FILE.png`` draws a picture where one fits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

import numpy as np

from perceptron_theory import _cli_committee as _committee
from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import check_cli_args
from perceptron_theory.deep import names as _deep_names
from perceptron_theory.vocabulary import ACTIVATIONS, INITIAL_CONDITIONS

__all__ = ["main", "build_parser"]

#: Most points of an ``A:B:N`` sweep (a larger grid is refused before it is built).
RANGE_MAX_POINTS = 10**6


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def _dump(obj) -> str:
    """Strict JSON: a quantity that could not be computed (NaN, inf) is ``null``."""
    from perceptron_theory._io import _jsonable, plain

    return json.dumps(plain(obj, finite_only=True), indent=2, allow_nan=False,
                      default=_jsonable)


def _fmt_table(rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    out = []
    for k, v in rows:
        if isinstance(v, float):
            v = f"{v:.10g}"
        out.append(f"{k:<{width}}  {v}")
    return "\n".join(out)


# --------------------------------------------------------------------------- run store
#: Options that do not change what a stored command computes (output, the store itself).
_NOT_IN_KEY = frozenset({"command", "func", "json", "plot", "verbose", "cache_dir",
                         "no_cache", "rerun"})


def _stored(a, compute):
    """``compute()`` (a JSON-able result of the options ``a``), read from the run store
    when held there.

    For the commands whose solvers need scipy.optimize or scipy.integrate: importing
    those costs ~0.4-0.5 s per process, more than the rest of a call, so a repeated call
    reads its result back instead (kind ``"cli"`` of :mod:`perceptron_theory.store`).
    The key is every option that is not output (:data:`_NOT_IN_KEY`), the numpy and
    scipy versions, the package version and its source fingerprint, so any edit
    computes again. Warnings the computation raised (a deprecated method name) are kept
    with the result and raised again, so a stored call warns as the computing call did.
    ``--no-cache`` computes without reading or writing; ``--rerun`` computes and
    overwrites; a store that cannot be written only costs the saving.
    """
    if a.no_cache:
        return compute()
    import importlib.metadata

    from perceptron_theory.store import Store, unit_key

    config = {k: v for k, v in sorted(vars(a).items()) if k not in _NOT_IN_KEY}
    config["versions"] = {m: importlib.metadata.version(m) for m in ("numpy", "scipy")}
    function = f"perceptron_theory.cli:{a.command}"
    store = Store(a.cache_dir or _default_cache_dir())
    key = unit_key(function, config, code=True)
    hit = None if a.rerun else store.get("cli", key)
    if hit is not None:
        _warn_again(hit["warnings"])
        return hit["result"]
    with warnings.catch_warnings(record=True) as caught:
        result = compute()
    kept = [{"category": f"{w.category.__module__}:{w.category.__qualname__}",
             "message": str(w.message), "filename": w.filename, "lineno": w.lineno}
            for w in caught]
    _warn_again(kept)
    try:
        store.put("cli", key, {"result": result, "warnings": kept}, function=function,
                  config=config)
    except OSError as exc:
        logging.getLogger(__name__).info("run store not written: %s", exc)
    return result


def _warn_again(kept: list[dict]) -> None:
    """Raise recorded warnings again, from where they were raised (the filters apply)."""
    from perceptron_theory.executor import resolve

    by_file = {getattr(m, "__file__", None): name for name, m in list(sys.modules.items())}
    for w in kept:
        try:
            category = resolve(w["category"])
        except (ImportError, AttributeError, ValueError):
            category = UserWarning
        if not (isinstance(category, type) and issubclass(category, Warning)):
            category = UserWarning
        warnings.warn_explicit(w["message"], category, w["filename"], w["lineno"],
                               module=by_file.get(w["filename"]))


# --------------------------------------------------------------------------- commands
def _cmd_integrals(a) -> int:
    from perceptron_theory.theory import integrals as I

    res = I.integrals(a.activation, a.Q, a.R)
    d = {"activation": a.activation, "Q": a.Q, "R": a.R}
    for q in I.QUANTITIES:
        d[q] = float(getattr(res, q))
        for w in ("Q", "R"):
            d[f"d{q}/d{w}"] = float(I.evaluate(q, a.activation, a.Q, a.R, derivative=w))
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        Rs = np.linspace(-1, 1, 201)
        save(Plot(f"integrals, {a.activation}, Q={a.Q}", "R", "value",
                  tuple(series(q, Rs, I.evaluate(q, a.activation, a.Q, Rs)) for q in I.QUANTITIES)),
             a.plot)
    print(_dump(d) if a.json else _fmt_table(list(d.items())))
    return 0


def _cmd_dynamics(a) -> int:
    if _committee.wanted(a):
        return _committee.dynamics(a)
    from perceptron_theory.theory import dynamics as D

    def compute():
        return D.integrate(a.method, a.activation, lr=a.lr, zeta=a.zeta, teacher=a.teacher,
                           noise=a.noise, weight_decay=a.weight_decay,
                           gamma_init=a.gamma_init, R_init=a.R_init, L_init=a.L_init,
                           t_max=a.t_max, n_points=a.n_points,
                           freeze_L=a.freeze_L).to_dict()

    d = _stored(a, compute)
    tr = D.Trajectory(**{k: np.asarray(v, dtype=float) if isinstance(v, list) else v
                         for k, v in d.items()})
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        save([Plot(f"{a.method}/{a.activation}, lr={a.lr}, zeta={a.zeta}", "t = steps / N",
                   "order parameter", (series("gamma", tr.t, tr.gamma), series("R", tr.t, tr.R),
                                       series("L", tr.t, tr.L))),
              Plot("generalization error", "t = steps / N", "eps", (series("eps", tr.t, tr.eps),))],
             a.plot)
    if a.json:
        print(_dump(tr.to_dict()))
    else:
        print(f"# {a.method}/{a.activation} teacher={tr.teacher} lr={a.lr} zeta={a.zeta} "
              f"S={a.noise} weight_decay={a.weight_decay} diverged={tr.diverged}"
              + (f" at t={tr.t_diverged:.4g}" if tr.t_diverged is not None else "")
              + (f"; {tr.message}" if tr.status < 0 else ""))
        print(f"{'t':>10} {'gamma':>12} {'R':>12} {'L':>12} {'eps':>12}")
        step = max(1, len(tr.t) // 20)
        rows = sorted(set(range(0, len(tr.t), step)) | {len(tr.t) - 1})
        for i in rows:
            print(f"{tr.t[i]:10.4g} {tr.gamma[i]:12.6g} {tr.R[i]:12.6g} {tr.L[i]:12.6g} "
                  f"{tr.eps[i]:12.6g}")
    return 0


def _cmd_lr_limits(a) -> int:
    from perceptron_theory._checks import check_array, check_work
    from perceptron_theory.theory import dynamics as D

    zetas = [a.zeta] if a.zeta_range is None else list(np.linspace(*a.zeta_range))
    check_array("zeta", zetas, 0.0, D.ZETA_MAX)  # every point, before the first one runs
    check_work(f"lr-limits over {len(zetas)} zetas", len(zetas) * (1e8 if a.fast else 2e9))

    def compute():
        return [D.lr_limits(a.method, a.activation, z, L0=a.L0, exact=not a.fast,
                            teacher=a.teacher, noise=a.noise,
                            weight_decay=a.weight_decay).to_dict() for z in zetas]

    res = [D.LRLimits(**d) for d in _stored(a, compute)]
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        zs = [r.zeta for r in res]
        save(Plot(f"eta_max, {a.method}/{a.activation}", "zeta", "eta_max",
                  (series("eta_max (Table 1, derived)", zs, [r.eta_max for r in res]),
                   series("lr_critical", zs, [r.lr_critical for r in res], style="dashed"))),
             a.plot)
    if a.json:
        print(_dump([r.to_dict() for r in res] if a.zeta_range else res[0].to_dict()))
    else:
        for r in res:
            print(_fmt_table(list(r.to_dict().items())))
            print()
    return 0


def _cmd_bn_decay(a) -> int:
    from perceptron_theory.theory import batchnorm as B

    d = B.decay_report(a.batch_size, sigma_P=a.sigma_P, rho=a.rho, centered=not a.uncentered)
    if a.json:
        print(_dump(d))
    else:
        print(_fmt_table(list(d.items())))
    return 0


def _cmd_curve(a) -> int:
    from perceptron_theory.theory import generalization as G

    if (a.alpha is None) == (a.alpha_range is None):
        raise ValueError("give exactly one of --alpha A or --alpha-range a:b:n")
    alphas = [a.alpha] if a.alpha is not None else list(np.linspace(*a.alpha_range))
    beta = float("inf") if a.beta is None else a.beta
    curve = G.learning_curve(a.student, a.method, alphas, noise=a.noise, zeta=a.zeta,
                             batch_size=a.batch_size, beta=beta)
    d = curve.to_dict()
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        save(Plot(f"{a.student} student, {a.method}, S={a.noise}", "alpha = P/N",
                  "generalization error", (series(a.method, d["alpha"], d["eps"]),)), a.plot)
    if a.json:
        print(_dump(d))
    else:
        if d.get("note"):
            print(f"# {d['note']}")
        print(f"{'alpha':>10} {'eps':>14}")
        for x, e, ok in zip(d["alpha"], d["eps"], d["converged"], strict=True):
            print(f"{x:10.4g} {e:14.8g}" + ("" if ok else "  (not converged)"))
    return 0


def _cmd_simulate(a) -> int:
    if _committee.wanted(a):
        return _committee.simulate(a)
    from perceptron_theory.simulate import offline, online

    common = dict(zeta=a.zeta, batch_size=a.batch_size, noise=a.noise,
                  weight_decay=a.weight_decay, seeds=a.seeds,
                  seed=a.seed, R_init=a.R_init, L_init=a.L_init, gamma_init=a.gamma_init,
                  ghost_size=a.ghost_size)
    teacher = a.teacher or (a.activation if a.online else "linear")
    if a.online:
        if a.t_max is None:
            raise ValueError("--online needs --t-max (time in samples / N)")
        res = online.run(a.method, a.activation, N=a.N, lr=a.lr, t_max=a.t_max,
                         teacher=teacher, n_points=a.n_points, engine=a.engine,
                         freeze_L=a.freeze_L, **common)
        x, xname = res.t, "t"
    else:
        if a.alpha is None or a.epochs is None:
            raise ValueError("offline runs need --alpha and --epochs (or use --online --t-max)")
        res = offline.run(a.method, a.activation, N=a.N, alpha=a.alpha, epochs=a.epochs,
                          lr=a.lr, lr_final=a.lr_final, teacher=teacher,
                          n_points=a.n_points, dtype=a.dtype, **common)
        x, xname = res.epochs, "epoch"
    fields = ("gamma", "R", "L", "Q", "eps") + (() if a.online else ("train_loss",))
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        plots = []
        for f in fields:
            m, se = res.mean(f) if (~res.diverged).sum() > 0 else (x * np.nan, x * np.nan)
            plots.append(Plot(f"{a.method}/{a.activation} N={a.N}: {f}", xname, f, (
                series("mean", x, m), series("mean + 2 SE", x, m + 2 * se, style="dashed"),
                series("mean - 2 SE", x, m - 2 * se, style="dashed"))))
        save(plots, a.plot)
    if a.json:
        print(_dump(res.to_dict()))
        return 0
    n_div = int(res.diverged.sum())
    first = np.nanmin(res.t_diverged if a.online else res.epoch_diverged) if n_div else None
    print(f"# {a.method}/{a.activation} teacher={teacher} N={a.N} M={a.batch_size} lr={a.lr} "
          f"zeta={a.zeta} S={a.noise}: {res.diverged.size} seeds, {n_div} diverged"
          + (f" (first at {xname} {first:.4g})" if n_div else ""))
    if n_div == res.diverged.size:
        return 0
    print(f"{xname:>10} " + " ".join(f"{f:>12} {'SE':>9}" for f in fields))
    means = {f: res.mean(f) for f in fields}
    step = max(1, len(x) // 20)
    for i in sorted(set(range(0, len(x), step)) | {len(x) - 1}):
        print(f"{x[i]:10.4g} " + " ".join(f"{means[f][0][i]:12.6g} {means[f][1][i]:9.2g}"
                                          for f in fields))
    return 0


def _cmd_max_lr(a) -> int:
    from perceptron_theory.simulate.max_lr import empirical_max_lr

    res = empirical_max_lr(a.method, a.activation, N=a.N, zeta=a.zeta, batch_size=a.batch_size,
                           tol=a.tol, t_max=a.t_max, R_init=a.R_init, gamma_init=a.gamma_init,
                           L_init=a.L_init, seeds=a.seeds, seed=a.seed, lr_start=a.lr_start,
                           rel_tol=a.rel_tol, engine=a.engine, freeze_L=not a.free_L,
                           ghost_size=a.ghost_size)
    if a.json:
        print(_dump(res.to_dict()))
        return 0
    print(_fmt_table([("method", res.method), ("activation", res.activation), ("N", res.N),
                      ("batch_size", res.batch_size), ("zeta", res.zeta), ("tol", res.tol),
                      ("t_max", res.t_max), ("lr_max", res.lr_max),
                      ("bracket", f"[{res.lr_pass:.6g}, {res.lr_fail:.6g}]"),
                      ("eta_eff", res.eta_eff), ("runs", len(res.evaluations))]
                     + ([] if res.converged else [("converged", f"False: {res.message}")])))
    return 0


def _kv_options(items, name: str) -> dict:
    """``["k=v", ...]`` -> dict, values parsed as JSON where possible (numbers, true, lists)."""
    out = {}
    for item in items or ():
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError(f"{name} entries must read KEY=VALUE, got {item!r}")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _cmd_train(a) -> int:
    import os

    # Idle OpenMP threads sleep instead of spinning: with another process on the cores,
    # spinning made 2-thread steps ~3x slower than 1 thread (benchmarks/deep.py, issue
    # 17); numerics do not depend on it. Effective when torch is not loaded yet.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from perceptron_theory.deep.train import TrainConfig, train
    except ImportError as exc:  # torch missing
        raise ValueError(f"the deep arm needs torch ({exc}); install with "
                         "python3 -m pip install -e '.[deep]'") from None
    cfg = TrainConfig(
        model=a.model, norm=a.norm, norm_options=_kv_options(a.norm_option, "--norm-option"),
        model_options=_kv_options(a.model_option, "--model-option"),
        penalties=tuple(a.penalty or ()), dataset=a.dataset, data_dir=a.data_dir,
        subset=a.subset, batch_size=a.batch_size, epochs=a.epochs, lr=a.lr,
        weight_decay=a.weight_decay, norm_decay=a.norm_decay, schedule=a.schedule,
        augment=a.augment, amplitude=a.amplitude, snr=a.snr, seed=a.seed, device=a.device,
        amp=a.amp, channels_last=a.channels_last, compile=a.compile, threads=a.threads,
        deterministic=a.deterministic)
    res = train(cfg, a.out, resume=a.resume, progress=True if a.progress else None)
    if a.json:
        print(_dump(res.final))
    else:
        print(_fmt_table([(k, v) for k, v in res.final.items()
                          if isinstance(v, (int, float, str, bool))]))
        print(f"# outputs in {res.out_dir} (config.json, log.jsonl, checkpoint.pt)")
    return 0


def _cmd_probe(a) -> int:
    try:
        from perceptron_theory.deep.probes import PROBES, run_probe
    except ImportError as exc:  # torch missing
        raise ValueError(f"the deep arm needs torch ({exc}); install with "
                         "python3 -m pip install -e '.[deep]'") from None
    from perceptron_theory._checks import check_choice, check_keywords

    check_choice("probe", a.probe, PROBES)
    options = check_keywords("--option", PROBES[a.probe], _kv_options(a.option, "--option"),
                             skip=("model", "data", "bundle"))
    res = run_probe(a.checkpoint, a.probe, options=options, device=a.device)
    if a.plot:
        _probe_plot(a.probe, res["result"], a.plot)
    if a.json:
        print(_dump(res))
    else:
        flat = [(k, v) for k, v in res["result"].items() if isinstance(v, (int, float, str))]
        print(f"# probe {a.probe} on {res['run_dir']} (epoch {res['epoch']})")
        print(_fmt_table(flat) if flat else _dump(res["result"]))
    return 0


def _probe_plot(probe: str, result: dict, path) -> None:
    """A picture of a probe's output.

    Lists of numbers become curves, against ``step`` when the probe records one (a
    ``control_<key>`` series joins ``<key>``'s panel); a list of per-layer lists (e.g.
    ``weight_norm``) becomes one curve per layer, relative to its first value, labelled
    from ``weight_layers``; an SLQ density is drawn on its grid; a probe with none of
    these gets its scalars as points.
    """
    from perceptron_theory.plotting import Plot, save, series

    def numbers(val):
        return isinstance(val, list) and val and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in val)

    steps = result.get("step") if numbers(result.get("step")) else None
    plots = []
    for key, val in result.items():
        if key == "step" or key.startswith("control_"):
            continue
        ctrl = result.get(f"control_{key}")
        x_of = (lambda v: np.asarray(steps, float)) if steps is not None else (
            lambda v: np.arange(len(v)))
        xlabel = "step" if steps is not None else "index"
        if numbers(val):
            ser = [series(key, x_of(val), np.asarray(val, float))]
            if numbers(ctrl):
                ser.append(series(f"control_{key}", x_of(ctrl), np.asarray(ctrl, float)))
            if steps is None or len(val) == len(steps):
                plots.append(Plot(f"{probe}: {key}", xlabel, key, tuple(ser)))
        elif (steps is not None and isinstance(val, list) and len(val) == len(steps)
              and all(numbers(row) for row in val)):
            names = result.get("weight_layers") or []
            ser = []
            for pre, rows in (("", val), ("control ", ctrl)):
                if not (isinstance(rows, list) and len(rows) == len(steps)):
                    continue
                arr = np.asarray(rows, float)
                for j in range(arr.shape[1]):
                    nm = names[j] if j < len(names) else str(j)
                    ser.append(series(f"{pre}{nm}", steps, arr[:, j] / arr[0, j]))
            plots.append(Plot(f"{probe}: {key} / its first value", "step", "relative",
                              tuple(ser)))
        elif isinstance(val, dict) and {"grid", "density"} <= set(val):
            plots.append(Plot(f"{probe}: eigenvalue density", "eigenvalue", "density",
                              (series("SLQ", val["grid"], val["density"]),)))
    if not plots:
        nums = [(k, v) for k, v in result.items() if isinstance(v, (int, float))]
        plots.append(Plot(f"{probe}", "quantity", "value",
                          (series("value", np.arange(len(nums)), [v for _, v in nums],
                                  style="points"),)))
    save(plots, path)


def _default_cache_dir() -> str:
    """The run store's default folder: ``$XDG_CACHE_HOME/perceptron_theory`` (or
    ``~/.cache/perceptron_theory``)."""
    from perceptron_theory.store import default_root

    return str(default_root())


def _cmd_reproduce(a) -> int:
    from validation.report import run

    size = a.size or ("full" if a.full else "cpu" if a.cpu else "quick")
    cache = None if a.no_cache else (a.cache_dir or _default_cache_dir())
    with _executor(a):
        report = run(a.out, seed=a.seed, claims=a.claim or None, size=size,
                     allow_synthetic=a.allow_synthetic, cache_dir=cache, rerun=a.rerun)
    ok = report.strict_ok if a.strict else report.ok
    counts = ", ".join(f"{v} {k}" for k, v in sorted(report.verdict_counts().items()))
    summary = {"out": str(report.out_dir), "ok": ok, "size": size,
               "n_comparisons": report.n_comparisons, "n_failed": report.n_failed,
               "verdicts": report.verdict_counts(), "elapsed_s": round(report.elapsed, 2)}
    if a.json:
        print(_dump(summary))
    else:
        print(f"{len(report.results)} claims ({counts}), {report.n_comparisons} records, "
              f"{report.n_failed} exact records failed, {report.elapsed:.1f} s -> "
              f"{report.out_dir}/report.md")
        for r in report.results:
            print(f"  {r.claim:10s} {r.verdict:12s} ({len(r.comparisons)} records)")
            for c in r.comparisons:
                if not c.ok:
                    print(f"      FAIL {c.quantity}: predicted {c.predicted:.6g}, measured "
                          f"{c.measured:.6g}, tolerance {c.tolerance:.3g}  {c.note}")
    return 0 if ok else 1


def _cmd_sweep(a) -> int:
    from perceptron_theory import sweep
    from perceptron_theory.store import Store

    spec = sweep.load_spec(a.spec)
    store = None if a.no_cache else Store(a.cache_dir or _default_cache_dir())
    progress = a.progress or sys.stderr.isatty()
    with _executor(a) as ex:
        info = sweep.run_sweep(spec, a.out, store=store, rerun=a.rerun, progress=progress,
                               executor=ex if a.executor or a.scheduler else None)
    if a.json:
        print(_dump(info))
    else:
        print(f"{info['cells']} cells ({info['stored']} from the store, {info['ran']} run), "
              f"{info['rows']} rows, {info['seconds']:.1f} s -> " + ", ".join(info["files"]))
    return 0


def _cmd_figure(a) -> int:
    import importlib

    from paper_figures import FIGURES, _common
    from perceptron_theory.store import Store

    names = list(FIGURES) if a.name == "all" else [a.name]
    if a.name != "all" and a.name not in FIGURES:
        raise ValueError(f"figure must be one of {', '.join(FIGURES)} or all; got {a.name!r}")
    for name in names:  # every figure's size, before the first one is drawn
        sizes = getattr(importlib.import_module(FIGURES[name]), "SIZES", None)
        if sizes is not None and a.size not in sizes:
            raise ValueError(f"--size must be one of {', '.join(sizes)} for figure {name}; "
                             f"got {a.size!r}")
    store = None if a.no_cache else Store(a.cache_dir or _default_cache_dir())
    written = []
    with _executor(a), _common.options(store=store, rerun=a.rerun):
        for name in names:
            written += importlib.import_module(FIGURES[name]).main(a.out, size=a.size)
    if a.json:
        print(_dump({"files": [str(p) for p in written]}))
    else:
        for path in written:
            print(path)
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="perceptron-theory", description=(
        "Theory, simulation and checks of why batch normalization regularizes."))
    p.add_argument("--version", action="version", version=_version())
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, plot=True):
        sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if plot:
            sp.add_argument("--plot", metavar="FILE.png", help="also draw a PNG")

    s = sub.add_parser("integrals", help="I1, I2, I3, eps_gen at (Q, R) and their derivatives")
    s.add_argument("--activation", choices=ACTIVATIONS, required=True)
    s.add_argument("--Q", type=float, required=True, help="student pre-activation std (> 0)")
    s.add_argument("--R", type=float, required=True, help="student-teacher correlation [-1, 1]")
    common(s)
    s.set_defaults(func=_cmd_integrals)

    s = sub.add_parser("dynamics", help="integrate the order-parameter ODEs (trajectory)")
    s.add_argument("--method", choices=_vocab.method_choices("dynamics"), required=True,
                   help=_method_help("dynamics"))
    s.add_argument("--activation", choices=ACTIVATIONS, required=True)
    s.add_argument("--lr", type=float, required=True, help="learning rate eta (> 0)")
    s.add_argument("--zeta", type=float, default=0.0, help="gamma decay (wn-decay only; >= 0)")
    _peer_args(s)
    s.add_argument("--t-max", type=float, default=50.0, help="final time in units of N steps")
    s.add_argument("--n-points", type=int, default=201)
    _init_args(s)
    s.add_argument("--freeze-L", action="store_true", help="hold L fixed (quasi-static system)")
    _committee.add_args(s)
    common(s)
    _store_args(s)
    s.set_defaults(func=_cmd_dynamics)

    s = sub.add_parser("lr-limits", help="fixed point, eta_max and eta_eff (Luo et al. Table 1)")
    s.add_argument("--method", choices=_vocab.method_choices("dynamics"), required=True,
                   help=_method_help("dynamics"))
    s.add_argument("--activation", choices=ACTIVATIONS, required=True)
    s.add_argument("--zeta", type=float, default=0.0)
    s.add_argument("--zeta-range", type=_range, metavar="A:B:N", help="sweep zeta (wn-decay)")
    s.add_argument("--L0", type=float, default=1.0, help="raw weight length at the fixed point")
    _peer_args(s, what="sgd only when set")
    s.add_argument("--fast", action="store_true", help="skip the exact (eta^2) analysis")
    common(s)
    _store_args(s)
    s.set_defaults(func=_cmd_lr_limits)

    s = sub.add_parser("bn-decay", help="batch-statistic moments and BN's equivalent gamma decay")
    s.add_argument("--batch-size", type=int, required=True, help="M (>= 2)")
    s.add_argument("--sigma-P", type=float, default=1.0, help="population std of h")
    s.add_argument("--rho", type=float, default=0.0, help="excess kurtosis of h")
    s.add_argument("--uncentered", action="store_true",
                   help="variance-only BN (known mean 0): chi^2 with M degrees of freedom")
    common(s, plot=False)
    s.set_defaults(func=_cmd_bn_decay)

    s = sub.add_parser("curve", help="generalization error vs load alpha (Luo et al. Sec. 4)")
    s.add_argument("--student", choices=_curve_students(), required=True)
    s.add_argument("--method", choices=_vocab.method_choices("curve"), required=True,
                   help=_method_help("curve"))
    s.add_argument("--alpha", type=float, help="one load alpha = P/N (> 0)")
    s.add_argument("--alpha-range", type=_range, metavar="A:B:N", help="a grid of loads")
    s.add_argument("--noise", type=float, default=0.0, help="teacher output-noise variance S")
    s.add_argument("--zeta", type=float, default=0.0,
                   help="decay on |w|^2 in the sum convention 1/2 sum (y - g)^2 + zeta/2 |w|^2")
    s.add_argument("--batch-size", type=int,
                   help="M: wn-decay at BN's equivalent decay (instead of --zeta)")
    s.add_argument("--beta", type=float, help="inverse temperature (default: infinity)")
    common(s)
    s.set_defaults(func=_cmd_curve)

    s = sub.add_parser("simulate", help="finite-N SGD simulation (numba): order parameters")
    _sim_args(s)
    s.add_argument("--online", action="store_true", help="fresh samples every step")
    s.add_argument("--t-max", type=float, help="online: final time in samples / N")
    s.add_argument("--alpha", type=float, help="offline: load P/N of the training set")
    s.add_argument("--epochs", type=int, help="offline: number of epochs")
    s.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="offline: storage of the training inputs (sums in float64)")
    s.add_argument("--lr", type=float, required=True, help="per-sample learning rate (> 0)")
    s.add_argument("--lr-final", type=float, help="offline: rate at the last step (geometric)")
    s.add_argument("--n-points", type=int, default=11, help="number of recorded times")
    s.add_argument("--noise", type=float, default=0.0, help="label-noise variance S")
    s.add_argument("--weight-decay", type=float, default=0.0,
                   help="L2 decay lambda of the plain student (sgd): lambda/(2N) |w|^2 per sample")
    s.add_argument("--freeze-L", action="store_true", help="online: hold |w| fixed")
    _committee.add_args(s, simulate=True)
    common(s)
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("max-lr", help="empirical maximum stable learning rate (bisection)")
    _sim_args(s, R_init=0.95)
    s.add_argument("--tol", type=float, default=0.05, help="pass: median R(t_max) > 1 - tol")
    s.add_argument("--t-max", type=float, default=50.0)
    s.add_argument("--lr-start", type=float, default=1.0)
    s.add_argument("--rel-tol", type=float, default=0.01)
    s.add_argument("--free-L", action="store_true",
                   help="let |w| grow (default: frozen, so eta_eff is fixed)")
    common(s, plot=False)
    s.set_defaults(func=_cmd_max_lr)

    s = sub.add_parser("train", help="train a CNN with a normalizer and penalties (torch)")
    s.add_argument("--model", default="cnn", choices=_deep_names.MODELS)
    s.add_argument("--norm", default="bn", choices=_deep_names.NORMS, metavar="NORM",
                   help="normalizer: " + ", ".join(_deep_names.NORMS))
    s.add_argument("--penalty", action="append", metavar="NAME=COEF",
                   help="additive penalty, repeatable (e.g. gamma-decay=1e-4); NAME: "
                        + ", ".join(_deep_names.PENALTIES))
    s.add_argument("--norm-option", action="append", metavar="KEY=VALUE")
    s.add_argument("--model-option", action="append", metavar="KEY=VALUE")
    s.add_argument("--dataset", default="auto", choices=_deep_names.DATASETS)
    s.add_argument("--data-dir", help="folder of the data set's files")
    s.add_argument("--subset", type=int, help="use this many training samples")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--lr", type=float, default=0.1, help="rate at batch 128 (scaled linearly)")
    s.add_argument("--weight-decay", type=float, default=5e-4)
    s.add_argument("--norm-decay", type=float, help="decay of gamma/beta (default: weight decay)")
    s.add_argument("--schedule", default="cosine", choices=_deep_names.SCHEDULES)
    s.add_argument("--augment", action="store_true")
    s.add_argument("--amplitude", type=float, default=1.0)
    s.add_argument("--snr", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    s.add_argument("--amp", action="store_true",
                   help="bf16 autocast, CUDA or CPU (faster; changes numerics)")
    s.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format, CUDA or CPU (faster; changes numerics)")
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (compiles first; changes numerics)")
    s.add_argument("--threads", type=int,
                   help="torch CPU threads for the run (default: torch's, one per core; "
                        "with other processes busy, 1 is fastest; changes numerics)")
    s.add_argument("--deterministic", action="store_true")
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--resume", action="store_true", help="continue from the run folder")
    s.add_argument("--progress", action="store_true", help="progress bar (default: on a tty)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("probe", help="measure a trained run: norms, dropout, Hessian ...")
    s.add_argument("--checkpoint", required=True, metavar="RUN_DIR",
                   help="a folder written by `train` (config.json + checkpoint.pt)")
    s.add_argument("--probe", required=True, choices=_deep_names.PROBES)
    s.add_argument("--option", action="append", metavar="KEY=VALUE", help="probe option")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    common(s)
    s.set_defaults(func=_cmd_probe)

    s = sub.add_parser("reproduce", help="run every registered check and write the report",
                       description="Exit status: 1 when an exact check fails or a check "
                       "raises; deep-network verdicts never change it (--strict: anything "
                       "but pass/confirmed exits 1).")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="<= 10 minutes on 2 CPU cores, a smoke test of the verdicts (default)")
    g.add_argument("--cpu", action="store_true",
                   help="the verdict-bearing deep size: ~3 hours on 2 CPU cores, resumable")
    g.add_argument("--full", action="store_true", help="paper scale (a GPU)")
    g.add_argument("--size", choices=_reproduce_sizes(),
                   help="any size by name (tiny: seconds, structure only)")
    s.add_argument("--out", default="reproduce_out", help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--claim", action="append", help="run only this claim id (repeatable)")
    s.add_argument("--allow-synthetic", action="store_true",
                   help="train deep checks on the synthetic teacher when Fashion-MNIST is "
                        "missing (default: report them skipped)")
    s.add_argument("--strict", action="store_true",
                   help="exit 1 unless every claim is pass or confirmed")
    _store_args(s)
    _executor_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_reproduce)

    s = sub.add_parser("sweep", help="a grid over the options of curve, dynamics, lr-limits, "
                       "simulate ... (TOML spec) -> one table",
                       description="Runs every cell of SPEC.toml through the executor and "
                       "the run store (a rerun is served from the store; an interrupted "
                       "sweep resumes) and writes table.csv (and table.parquet with "
                       "pyarrow). See perceptron_theory.sweep for the spec's format.")
    s.add_argument("spec", metavar="SPEC.toml", help="the sweep's spec")
    s.add_argument("--out", required=True, help="output folder")
    _store_args(s)
    _executor_args(s)
    s.add_argument("--progress", action="store_true", help="progress bar (default: on a tty)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_sweep)

    from paper_figures import FIGURES

    s = sub.add_parser("figure", help="redraw a paper figure (PNG + JSON of its data)",
                       description="Figures: " + ", ".join(FIGURES) + ".")
    s.add_argument("name", choices=(*FIGURES, "all"), metavar="NAME",
                   help="a figure name or 'all': " + ", ".join(FIGURES))
    s.add_argument("--size", default="full",
                   help="full (default), tiny (seconds) or, for deep-network figures, quick")
    s.add_argument("--out", default="paper_figures_out", help="output folder")
    _store_args(s)
    _executor_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_figure)
    return p


def _store_args(s) -> None:
    s.add_argument("--cache-dir", help="the run store (default: the user cache folder, "
                                       "$XDG_CACHE_HOME or ~/.cache, /perceptron_theory)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the store")
    s.add_argument("--rerun", action="store_true", help="recompute units held in the store")


def _executor_args(s) -> None:
    from perceptron_theory.executor import EXECUTORS

    s.add_argument("--executor", choices=EXECUTORS,
                   help="where units run: local (a process pool, default), serial (this "
                        "process) or dask (--scheduler ADDRESS, or a LocalCluster)")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:8786); with --executor dask")
    s.add_argument("--workers", type=int, help="local / LocalCluster worker processes")


def _executor(a):
    """The executor the options ask for (a context manager; a null context for the
    default, which lets each caller size its own local pool)."""
    import contextlib

    from perceptron_theory import executor

    if a.workers is not None and not 1 <= a.workers <= 1024:
        raise ValueError(f"--workers must be in [1, 1024], got {a.workers}")
    if a.scheduler and a.executor not in (None, "dask"):
        raise ValueError("--scheduler needs --executor dask")
    kind = "dask" if a.scheduler else a.executor
    if kind is None:
        return contextlib.nullcontext()
    return executor.use(kind, workers=a.workers, scheduler=a.scheduler)


def _method_help(layer: str) -> str:
    """The layer's models with their summaries, and the deprecated names still accepted."""
    text = "; ".join(f"{m}: {_vocab.MODELS[m].summary}" for m in _vocab.methods(layer))
    old = ", ".join(f"{o} (= {n})" for o, n in _vocab.DEPRECATED[layer].items())
    return text + (f"; deprecated: {old}" if old else "")


def _init_args(s, R_init=INITIAL_CONDITIONS["R_init"]) -> None:
    """--gamma-init, --R-init, --L-init with the defaults of vocabulary.INITIAL_CONDITIONS."""
    s.add_argument("--gamma-init", type=float, default=INITIAL_CONDITIONS["gamma_init"])
    s.add_argument("--R-init", type=float, default=R_init)
    s.add_argument("--L-init", type=float, default=INITIAL_CONDITIONS["L_init"],
                   help="|w|/sqrt(N); for sgd the output scale Q")


def _curve_students() -> tuple:
    from perceptron_theory.theory.generalization import STUDENTS

    return STUDENTS


def _reproduce_sizes() -> tuple:
    from validation._deep import SIZES

    return SIZES


def _peer_args(s, what: str = "") -> None:
    """--teacher, --noise, --weight-decay of the order-parameter ODEs."""
    extra = f"; {what}" if what else ""
    s.add_argument("--teacher", choices=ACTIVATIONS,
                   help=f"teacher activation (default: the student's){extra}")
    s.add_argument("--noise", type=float, default=0.0,
                   help=f"label-noise variance S >= 0{extra}")
    s.add_argument("--weight-decay", type=float, default=0.0,
                   help="L2 decay lambda >= 0 of the plain student (sgd only): "
                        "lambda/(2N) |w|^2 per sample")


def _sim_args(s, R_init=INITIAL_CONDITIONS["R_init"]) -> None:
    # the numba-free names (simulate.online's tables are checked against them by a test)
    s.add_argument("--method", choices=_vocab.methods("simulate"), required=True,
                   help=_method_help("simulate"))
    s.add_argument("--activation", "--student", choices=ACTIVATIONS, required=True,
                   dest="activation")
    s.add_argument("--teacher", choices=ACTIVATIONS,
                   help="teacher activation (default: student's online, linear offline)")
    s.add_argument("--N", type=int, required=True, help="input dimension (>= 3)")
    s.add_argument("--batch-size", type=int, default=1, help="M (>= 2 with batch statistics)")
    s.add_argument("--ghost-size", type=int, help="virtual batch size (ghost-bn)")
    s.add_argument("--zeta", type=float, default=0.0, help="per-sample decay zeta/2 gamma^2")
    s.add_argument("--seeds", type=int, default=4, help="independent runs")
    s.add_argument("--seed", type=int, default=0, help="first seed")
    _init_args(s, R_init=R_init)
    s.add_argument("--engine", choices=_vocab.ENGINES,
                   default="vector" if R_init == 0.0 else "reduced",
                   help="online engine: N-vectors or the exact reduced chain")


def _range(text: str):
    try:
        a, b, n = text.split(":")
        a, b, n = float(a), float(b), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B:N, got {text!r}") from None
    if not (2 <= n <= RANGE_MAX_POINTS and np.isfinite(a) and np.isfinite(b)):
        raise argparse.ArgumentTypeError(f"expected finite A:B and 2 <= N <= "
                                         f"{RANGE_MAX_POINTS:g}, got {text!r}")
    return a, b, n


def _version() -> str:
    from perceptron_theory import __version__

    return __version__


def _fail(exc: BaseException, code: int = 2) -> int:
    """The message on one line of stderr (whitespace runs joined), exit status ``code``."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    print(f"perceptron-theory: error: {msg}", file=sys.stderr)
    return code


def _interrupted(args) -> int:
    """Ctrl-C: one line and exit status 130 (128 + SIGINT), as shells do."""
    hint = {"train": "; the run folder resumes with the same command and --resume",
            "reproduce": "; results.json and report.md were left as they were"}
    hint = hint.get(args.command, "")
    print(f"perceptron-theory: interrupted{hint}", file=sys.stderr)
    return 130


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # our deprecated names (vocabulary.DEPRECATED) warn on stderr, once per place
    warnings.filterwarnings("default", category=DeprecationWarning, module="perceptron_theory")
    try:
        check_cli_args(parser, args)  # generic checks of every option, before any work
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # bad input, a missing input file
        return _fail(exc)
    except KeyboardInterrupt:
        return _interrupted(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except MemoryError as exc:  # an estimate in the checks was too optimistic
        return _fail(f"out of memory ({exc}); try smaller sizes")
    except Exception as exc:  # a bug: one line, the traceback with -v
        if args.verbose:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with -v for the "
                     "traceback, and please report it)", code=1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
