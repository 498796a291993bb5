"""R-F4 and R-F6: Hessian spectra of a deep net without skips, at init and through training.

Claims (Rao & Sohl-Dickstein 2020, Sec. 6, Figs. 4 and 6; 26-layer WideResNet without skip
connections, ReLU, cross entropy on 512 CIFAR-10 samples, "the same learning rate for all
techniques"):

* R-F4 (density 50 steps into training): "Batch Norm suppresses its outliers ...; Layer
  Norm has a small spectrum, with many outliers"; "PreLayerNorm behaves similarly to Batch
  Norm". Outliers are measured by :math:`\\lambda_1/\\lambda_K`, :math:`K = 10` (Ghorbani
  et al. 2019).
* R-F6a: "All techniques including no normalization are able to suppress outlying
  eigenvalues, except for Layer Norm" (:math:`\\lambda_1/\\lambda_K` through training).
* R-F6b: "At initialization ... Batch Norm must allow the lowest learning rate" (largest
  :math:`\\lambda_1`), and "the maximum eigenvalue quickly decreases".

Measurement: :func:`perceptron_theory.deep.probes.probe_over_training` with the ``hessian``
probe (top-10 eigenvalues by ARPACK on double-backward Hessian-vector products, batch
statistics as in training, and the SLQ density) on ``n`` seeded training samples every
``every`` SGD steps. Records, paired by seed, on :math:`\\log(\\lambda_1/\\lambda_{10})`
and :math:`\\log\\lambda_1`:

* R-F4: at step 50, LN's ratio > BN's; PreLN's ratio < LN's;
* R-F6a: averaged over the records after initialization, LN's ratio > BN's, and > the
  norm-free net's;
* R-F6b: at initialization BN's :math:`\\lambda_1` > LN's and > PreLN's; BN's
  :math:`\\lambda_1` at step 50 < at initialization.

Headline (fixed before any run): **50 steps into training LN's Hessian keeps outliers
that BN suppresses** -- per seed ``log(l1/l10)`` at step 50, LN - BN > 0 (Fig. 4 and 6a).
The other records are secondary rows.

Setup. The deep no-skip ReLU net affordable on two CPU cores is the He-initialized
``deep-fc`` of R-F1/F3 (depth 10, width 64: 89k parameters); SGD momentum 0.9, lr 0.1 at
batch 128 (batch 32), the same for every normalizer (as the paper), on the Fashion-MNIST
data of the size, Hessian on n = 512 training samples (the paper's count). One Hessian
probe (ARPACK top-10 and a 40-step SLQ density) takes ~4 s on one core.

* tiny: structure only;
* quick: the headline's arms BN and LN, records at steps 0 and 50, one seed: 4 probes,
  ~30 s;
* cpu: BN, LN, PreLN and no norm, 100 steps with records every 25, five seeds (the
  scale's: the paper gives its effects only as figures; five seeds reach t >= 2 for any
  effect larger than 0.9 of its per-seed spread): 100 probes, ~8 process-minutes (~11
  base-run equivalents);
* full: Rao's net itself, ``wrn`` depth 28 (26 weight layers), k = 1, ``skip=False``,
  batch 128, 200 steps, every 25, on all of Fashion-MNIST (CIFAR-10 when supplied), five
  seeds (GPU).

No floor: the claim is about the Hessian at initialization and in the first 50-100 SGD
steps, before any net is trained; the validation accuracy at the last record is
reported.
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, finding, register

NORMS = ("bn", "ln", "pre-ln", "none")
#: normalizers per size (quick: the headline's two)
ARMS = {"tiny": NORMS, "quick": ("bn", "ln"), "cpu": NORMS, "full": NORMS}
CLAIM = "R-F4/F6"
STATEMENT = ("50 steps into training Layer Norm's Hessian keeps large outlying eigenvalues "
             "(large l1/l10) that Batch Norm, PreLayerNorm and even no normalization suppress; "
             "at initialization Batch Norm has the largest l1, which then falls quickly "
             "(Figs. 4, 6)")
NO_FLOOR = ("no floor: a claim about the Hessian at initialization and in the first SGD "
            "steps, before any net is trained")
NAMES = {"bn": "BN", "ln": "LN", "pre-ln": "PreLN", "none": "no norm"}
K = 10  # Rao: the number of classes
STEP_F4 = 50  # Fig. 4: "50 steps into training"
SETTINGS = {
    "tiny": dict(model="deep-fc", options={"depth": 3, "width": 8}, batch_size=16, steps=4,
                 every=2, n=32, slq_steps=10, step_f4=2),
    "quick": dict(model="deep-fc", options={"depth": 10, "width": 64}, batch_size=32,
                  steps=STEP_F4, every=STEP_F4, n=512, slq_steps=40, step_f4=STEP_F4),
    "cpu": dict(model="deep-fc", options={"depth": 10, "width": 64}, batch_size=32,
                steps=100, every=25, n=512, slq_steps=40, step_f4=STEP_F4),
    "full": dict(model="wrn", options={"depth": 28, "k": 1, "skip": False}, batch_size=128,
                 steps=200, every=25, n=512, slq_steps=80, step_f4=STEP_F4),
}


def _config(size: str, norm: str, seed: int):
    from perceptron_theory.deep.train import TrainConfig

    s, scale = SETTINGS[size], _deep.SCALES[size]
    return TrainConfig(model=s["model"], norm=norm, model_options=s["options"],
                       batch_size=s["batch_size"], lr=0.1, momentum=0.9, schedule="constant",
                       device=_deep.torch_device(scale), seed=seed,
                       **_deep.dataset_args(scale))


_CACHE: dict = {}


def spectrum(config: dict, steps: int, every: int, opts: dict) -> dict:
    """One ``probe_over_training`` record with the ``hessian`` probe (a unit of the
    executor: ``config`` a :class:`TrainConfig` dict)."""
    from perceptron_theory.deep.probes import probe_over_training
    from perceptron_theory.deep.train import TrainConfig

    cfg = TrainConfig.from_dict(config)
    return probe_over_training(cfg, steps, every, {"hessian": opts}, device=cfg.device)


def spectra(size: str, seed: int, norms=None) -> dict:
    """``{norm: [probe_over_training record per seed]}`` with the ``hessian`` probe, for
    ``norms`` (default :data:`ARMS` of ``size``): one unit per (norm, seed) on the
    executor (the local pool of the size's workers), kept in the deep run store when
    one is set and cached per (size, seed, norm) in the process, so the check and the
    figure share runs."""
    import json

    from perceptron_theory import executor
    from perceptron_theory.store import Store

    s, scale = SETTINGS[size], _deep.SCALES[size]
    opts = {"n": s["n"], "k": K, "mode": "train", "density": True,
            "slq_steps": s["slq_steps"], "seed": 0}
    todo = [n for n in norms or ARMS[size] if (size, seed, n) not in _CACHE]
    seeds = scale.seeds(seed)
    units, keys = [], []
    tag = "validation.r_f4f6:spectrum " + json.dumps(
        {"steps": s["steps"], "every": s["every"], "opts": opts}, sort_keys=True)
    for norm in todo:
        for sd in seeds:
            cfg = _config(size, norm, sd).to_dict()
            units.append(executor.Unit("validation.r_f4f6:spectrum",
                                       {"config": cfg, "steps": s["steps"],
                                        "every": s["every"], "opts": opts}, kind="deep",
                                       key=_deep._store_key(cfg, tag), code=False))
            keys.append(norm)
    if units:
        cache = _deep._OPTIONS["cache_dir"]
        one_device = _deep.torch_device(scale) == "cpu"
        n = min(scale.workers, len(units)) if one_device else 1
        out = executor.run_units(units, store=Store(cache) if cache else None,
                                 rerun=_deep._OPTIONS["rerun"],
                                 executor=executor.current(n, 1 if one_device else None))
        for norm in todo:
            _CACHE[(size, seed, norm)] = [r for k, r in zip(keys, out, strict=True)
                                          if k == norm]
    return {norm: _CACHE[(size, seed, norm)] for norm in norms or ARMS[size]}


def _log_series(recs: list[dict], key: str) -> np.ndarray:
    """``log`` of ``key`` of the Hessian probe, shape (seed, record)."""
    return np.log(np.array([[h[key] if h[key] is not None else np.nan for h in r["hessian"]]
                            for r in recs], float))


@register(CLAIM, "Hessian outliers: LN keeps them, BN suppresses them (Figs. 4, 6)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 6, Figs. 4 and 6")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    d = spectra(size, seed)
    norms = tuple(d)
    ctx = {"dataset": _deep.dataset_args(_deep.SCALES[size])["dataset"], "size": size}
    seeds = list(_deep.SCALES[size].seeds(seed))
    steps = np.array(d["bn"][0]["step"])
    i50 = int(np.searchsorted(steps, s["step_f4"]))
    ratio = {nm: _log_series(d[nm], "lambda_ratio") for nm in norms}
    lam1 = {nm: _log_series(d[nm], "lambda_1") for nm in norms}
    at = int(steps[i50])
    later = f"steps {steps[1]}..{steps[-1]}" if len(steps) > 2 else f"step {steps[-1]}"
    pm = _deep.fmt_pm

    def rec(quantity, diffs, note, headline=False):
        return finding(CLAIM, quantity, diffs, headline=headline,
                       note=f"{note}; seeds {seeds}, size {size}", **ctx)

    comps = [rec(f"log(l1/l{K}) at step {at}: LN - BN > 0",
                 ratio["ln"][:, i50] - ratio["bn"][:, i50],
                 f"l1/l{K}: LN {pm(np.exp(ratio['ln'][:, i50]))}, BN "
                 f"{pm(np.exp(ratio['bn'][:, i50]))}. Fig. 4: LN keeps outliers, BN not",
                 headline=True)]
    if "pre-ln" in norms:
        comps.append(rec(f"log(l1/l{K}) at step {at}: LN - PreLN > 0",
                         ratio["ln"][:, i50] - ratio["pre-ln"][:, i50],
                         "Fig. 4: PreLN conditions the Hessian like BN"))
    comps.append(rec(f"log(l1/l{K}) averaged over {later}: LN - BN > 0",
                     ratio["ln"][:, 1:].mean(1) - ratio["bn"][:, 1:].mean(1), "Fig. 6a"))
    if "none" in norms:
        comps.append(rec(f"log(l1/l{K}) averaged over {later}: LN - no norm > 0",
                         ratio["ln"][:, 1:].mean(1) - ratio["none"][:, 1:].mean(1),
                         "Fig. 6a: even no normalization suppresses outliers, LN does not"))
    comps.append(rec("log l1 at init: BN - LN > 0", lam1["bn"][:, 0] - lam1["ln"][:, 0],
                     "Fig. 6b: BN needs the lowest learning rate at init"))
    if "pre-ln" in norms:
        comps.append(rec("log l1 at init: BN - PreLN > 0",
                         lam1["bn"][:, 0] - lam1["pre-ln"][:, 0], "Fig. 6b"))
    comps.append(rec(f"BN: log l1 at init - at step {at} > 0",
                     lam1["bn"][:, 0] - lam1["bn"][:, i50], "Fig. 6b: BN's l1 quickly decreases"))

    def dens(norm, i):
        dd = [r["hessian"][i]["density"] for r in d[norm]]
        grid = np.asarray(dd[0]["grid"], float)
        return grid, np.mean([np.interp(grid, np.asarray(x["grid"], float),
                                        np.asarray(x["density"], float)) for x in dd], 0)

    plots = (
        Plot(f"R-F6a: log(l1/l{K}) through training ({size})", "SGD step", "log ratio",
             tuple(series(NAMES[nm], steps, np.nanmean(ratio[nm], 0)) for nm in norms)),
        Plot(f"R-F6b: log l1 through training ({size})", "SGD step", "log lambda_1",
             tuple(series(NAMES[nm], steps, np.nanmean(lam1[nm], 0)) for nm in norms)),
        *(Plot(f"R-F4: SLQ eigenvalue density at step {steps[i]} ({size}, seed mean)",
               "eigenvalue", "density",
               tuple(series(NAMES[nm], *dens(nm, i)) for nm in norms), yscale="log")
          for i in (0, i50)),
    )

    def row(nm):
        r = np.exp(ratio[nm])
        l1 = np.exp(lam1[nm])
        acc = np.array([x["val_acc"][-1] for x in d[nm]], float)
        return (f"{NAMES[nm]}: l1 {pm(l1[:, 0])} -> {pm(l1[:, i50])}, l1/l{K} {pm(r[:, 0])} -> "
                f"{pm(r[:, i50])}, val acc at step {steps[-1]} {pm(acc)}")

    summary = (
        "Prediction (Rao & Sohl-Dickstein Figs. 4, 6): 50 steps into training LN's Hessian "
        "keeps large outlying eigenvalues (large l1/l10) while BN, PreLN and even the "
        "norm-free net suppress them; at init BN has the largest l1, which then falls fast. "
        f"Headline: log(l1/l{K}) at step {at}, LN > BN. "
        f"{s['model']} {s['options']}, He init, {s['steps']} SGD steps (batch "
        f"{s['batch_size']}, lr 0.1 at 128, momentum 0.9, the same for every norm), Hessian of "
        f"the cross entropy on n = {s['n']} training samples with batch statistics, records at "
        f"steps {steps.tolist()}; {ctx['dataset']}, seeds {seeds}. "
        f"Init -> step {at} (mean +- stderr): " + "; ".join(row(nm) for nm in norms)
        + f". {NO_FLOOR}.")
    return CheckResult(CLAIM, "Hessian outliers: LN keeps them, BN suppresses them",
                       tuple(comps), plots, summary, statement=STATEMENT, **ctx)
