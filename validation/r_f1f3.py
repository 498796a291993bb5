"""R-F1 and R-F3: propagation of two similar minibatches through a deep ReLU net.

Claims (Rao & Sohl-Dickstein 2020, Sec. 4, Figs. 1 and 3; 20-layer ReLU FC net):

* R-F1 (at initialization): with BN, the representations of two noisy copies of one
  minibatch *decorrelate with depth* -- each copy is normalized by its own batch
  statistics, which couples the samples -- while a per-sample normalizer (LN) keeps them
  correlated.
* R-F3 (early training): BN's gradients explode towards the input at initialization, so
  the ratio of first- to last-layer gradient norms is far larger for BN than for LN, and
  training brings it down.

Headlines (fixed before any run): R-F1, the embedding correlation of the two copies is
higher with LN than with BN; R-F3, the log first/last-layer gradient-norm ratio averaged
over the recorded steps is higher with BN than with LN (Fig. 3d: "Batch Norm ... induce[s]
the most gradient explosion in the first phase of early training while Layer ... cause[s]
lower"). Secondary rows: BN's correlation falls from the first layer to the embedding
(R-F1); the ratio at step 0, BN's ratio falling over the recorded steps (App. A: "a phase
where gradient explosion quickly reduces in the early stages") and the first-layer
gradient correlation, LN above BN (Fig. 3c: "Batch Norm ... has the least correlated
gradients ... while Layer Norm has the most"), for R-F3.

Measurement: :func:`perceptron_theory.deep.probes.propagation_probe` (``noise`` 0.1,
``mode="train"``: batch statistics) on a He-initialized ``deep-fc`` net; R-F3 through
:func:`~perceptron_theory.deep.probes.propagation_over_training`. Seeds are model
initializations (and minibatch draws); each record is a per-seed paired difference, a
finding with the verdict rule of :func:`validation._core.verdict_of`.

No floor: R-F1 is a claim about initialization and R-F3 about the first SGD steps, before
any net is trained; the validation accuracy along the way is reported, not held to 0.85.

Sizes: tiny (structure only); quick: depth 10, width 64, minibatch 64, 40 SGD steps
(batch 32, lr 0.1 at 128, momentum 0.9) on the Fashion-MNIST data of the size, one seed
(seconds); cpu: the same with five seeds (the scale's: the paper gives its effects only
as figures; five seeds reach t >= 2 for any effect larger than 0.9 of its per-seed
spread, 2/sqrt(5); well under one base-run equivalent in all); full: depth 20, width
512, minibatch 128, 2000 steps (the paper's net and length), five seeds.
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, finding, register

NORMS = ("bn", "ln")
NOISE = 0.1
SETTINGS = {
    "tiny": dict(depth=3, width=8, n=16, steps=4, every=2, batch_size=16),
    "quick": dict(depth=10, width=64, n=64, steps=40, every=20, batch_size=32),
    "cpu": dict(depth=10, width=64, n=64, steps=40, every=20, batch_size=32),
    "full": dict(depth=20, width=512, n=128, steps=2000, every=100, batch_size=128),
}


def config(size: str, norm: str, seed: int):
    """The TrainConfig of one run of ``size`` (deep-fc, He init, ``norm``, ``seed``)."""
    from perceptron_theory.deep.train import TrainConfig

    s, scale = SETTINGS[size], _deep.SCALES[size]
    return TrainConfig(model="deep-fc", norm=norm,
                       model_options={"depth": s["depth"], "width": s["width"]},
                       batch_size=s["batch_size"], lr=0.1, momentum=0.9, schedule="constant",
                       device=_deep.torch_device(scale), seed=seed,
                       **_deep.dataset_args(scale))


def _over_training(size: str, seed: int) -> dict:
    """``{norm: [record per seed]}`` of propagation_over_training."""
    from perceptron_theory.deep.probes import propagation_over_training

    s, scale = SETTINGS[size], _deep.SCALES[size]
    device = _deep.torch_device(scale)
    out = {}
    with _deep.torch_threads(1 if device == "cpu" else None):
        for norm in NORMS:
            out[norm] = [propagation_over_training(
                config(size, norm, sd), s["steps"], s["every"], noise=NOISE, n=s["n"],
                seed=sd, device=device) for sd in scale.seeds(seed)]
    return out


_CACHE: dict = {}


def data(size: str, seed: int) -> dict:
    """``{norm: [propagation_over_training record per seed]}`` of ``size``, cached in the
    process (shared by R-F1, R-F3 and their figures)."""
    key = (size, seed)
    if key not in _CACHE:
        _CACHE[key] = _over_training(size, seed)
    return _CACHE[key]


def _context(size: str) -> dict:
    """Data set and size of the records (no run_grid here)."""
    return {"dataset": _deep.dataset_args(_deep.SCALES[size])["dataset"], "size": size}


STATEMENTS = {
    "R-F1": ("At initialization Batch Norm decorrelates the representations of two similar "
             "minibatches with depth, while Layer Norm keeps them highly correlated (Fig. 1)"),
    "R-F3": ("In early training Batch Norm induces more gradient explosion (first- to "
             "last-layer gradient-norm ratio) than Layer Norm, and the explosion falls quickly "
             "in the first steps (Fig. 3, App. A)"),
}
NO_FLOOR = {"R-F1": "no floor: a claim about initialization (no training)",
            "R-F3": "no floor: a claim about the first SGD steps, before any net is trained"}


@register("R-F1", "BN decorrelates two similar minibatches with depth, LN does not (Fig. 1)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 4 and Fig. 1")
def check_f1(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    ctx = _context(size)
    d = data(size, seed)
    seeds = list(_deep.SCALES[size].seeds(seed))
    init = {nm: [r["propagation"][0] for r in d[nm]] for nm in NORMS}
    emb = {nm: np.array([p["rep_corr"][-2] for p in init[nm]]) for nm in NORMS}
    first = np.array([p["rep_corr"][0] for p in init["bn"]])
    comps = [
        finding("R-F1", "rep. correlation at the embedding: LN - BN > 0", emb["ln"] - emb["bn"],
                headline=True, note=f"LN {_deep.fmt_pm(emb['ln'])}, BN "
                f"{_deep.fmt_pm(emb['bn'])}; seeds {seeds}. Fig. 1a: BN's correlation falls "
                "with depth, LN's stays high", **ctx),
        finding("R-F1", "BN: rep. correlation first layer - embedding > 0", first - emb["bn"],
                note=f"first layer {_deep.fmt_pm(first)}, embedding {_deep.fmt_pm(emb['bn'])}; "
                f"seeds {seeds}. Decorrelation with depth", **ctx),
    ]
    plots = (Plot(f"R-F1: cosine of two noisy copies vs depth at init ({size})", "position",
                  "rep_corr", tuple(series(nm.upper(), np.arange(len(init[nm][0]["rep_corr"])),
                                           np.mean([p["rep_corr"] for p in init[nm]], 0))
                                    for nm in NORMS)),)
    s = SETTINGS[size]
    summary = (
        "Prediction (Rao & Sohl-Dickstein Fig. 1): at initialization BN decorrelates the "
        "representations of two similar minibatches with depth, LN keeps them correlated. "
        "Headline: embedding correlation LN > BN. "
        f"deep-fc depth {s['depth']} width {s['width']}, He init, minibatch {s['n']}, input "
        f"noise {NOISE}, batch statistics; {ctx['dataset']}, size {size}, seeds {seeds}. "
        f"Embedding correlation: BN {_deep.fmt_pm(emb['bn'])}, LN {_deep.fmt_pm(emb['ln'])}; "
        f"BN first layer {_deep.fmt_pm(first)}. {NO_FLOOR['R-F1']}.")
    return CheckResult("R-F1", "BN decorrelates similar minibatches with depth (Fig. 1)",
                       tuple(comps), plots, summary, statement=STATEMENTS["R-F1"], **ctx)


@register("R-F3", "Early training: first/last-layer gradient ratio, BN vs LN (Fig. 3)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 4 and Fig. 3")
def check_f3(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    ctx = _context(size)
    d = data(size, seed)
    seeds = list(_deep.SCALES[size].seeds(seed))
    ratio = {nm: np.array([[p["grad_ratio"] for p in r["propagation"]] for r in d[nm]], float)
             for nm in NORMS}
    gcorr = {nm: np.array([[p["grad_corr"][0] for p in r["propagation"]] for r in d[nm]],
                          float) for nm in NORMS}
    steps = np.array(d["bn"][0]["step"])
    last = int(steps[-1])
    log_r = {nm: np.log(ratio[nm]) for nm in NORMS}
    pm = _deep.fmt_pm
    comps = [
        finding("R-F3", f"log grad ratio (first/last layer) over steps 0..{last}: BN - LN > 0",
                log_r["bn"].mean(1) - log_r["ln"].mean(1), headline=True,
                note=f"mean over the records at steps {steps.tolist()}; ratio BN "
                f"{pm(ratio['bn'].mean(1))}, LN {pm(ratio['ln'].mean(1))}; seeds {seeds}. "
                "Fig. 3d: BN induces the most gradient explosion early in training", **ctx),
        finding("R-F3", "log grad ratio (first/last layer) at step 0: BN - LN > 0",
                log_r["bn"][:, 0] - log_r["ln"][:, 0],
                note=f"BN {pm(ratio['bn'][:, 0])}, LN {pm(ratio['ln'][:, 0])}. Fig. 2b / 3d: "
                "BN's gradients explode towards the input at init", **ctx),
        finding("R-F3", f"BN: log grad ratio step 0 - step {last} > 0",
                log_r["bn"][:, 0] - log_r["bn"][:, -1],
                note=f"step 0 {pm(ratio['bn'][:, 0])}, step {last} {pm(ratio['bn'][:, -1])}. "
                "App. A: the explosion quickly reduces in the early stages", **ctx),
        finding("R-F3", f"first-layer gradient correlation over steps 0..{last}: LN - BN > 0",
                gcorr["ln"].mean(1) - gcorr["bn"].mean(1),
                note=f"LN {pm(gcorr['ln'].mean(1))}, BN {pm(gcorr['bn'].mean(1))}. Fig. 3c: "
                "BN has the least correlated gradients, LN the most", **ctx),
    ]
    plots = (Plot(f"R-F3: first/last-layer gradient-norm ratio ({size})", "SGD step",
                  "grad ratio", tuple(series(nm.upper(), steps, ratio[nm].mean(0))
                                      for nm in NORMS)),
             Plot(f"R-F3: val accuracy ({size})", "SGD step", "accuracy",
                  tuple(series(nm.upper(), steps,
                               np.mean([r["val_acc"] for r in d[nm]], 0)) for nm in NORMS)))
    s = SETTINGS[size]
    acc = {nm: np.array([r["val_acc"][-1] for r in d[nm]], float) for nm in NORMS}
    summary = (
        "Prediction (Rao & Sohl-Dickstein Fig. 3): the first-to-last-layer gradient-norm ratio "
        "of a BN net starts far above LN's and falls during early training. Headline: log "
        f"ratio averaged over steps 0..{last}, BN > LN. deep-fc depth {s['depth']} width "
        f"{s['width']}, {s['steps']} SGD steps (batch {s['batch_size']}, lr 0.1 at 128, "
        f"momentum 0.9); {ctx['dataset']}, size {size}, seeds {seeds}. Ratio at step 0: BN "
        f"{pm(ratio['bn'][:, 0])}, LN {pm(ratio['ln'][:, 0])}; at step {last}: BN "
        f"{pm(ratio['bn'][:, -1])}, LN {pm(ratio['ln'][:, -1])}. Val accuracy at step {last} "
        f"(1000 images): BN {pm(acc['bn'])}, LN {pm(acc['ln'])}; {NO_FLOOR['R-F3']}.")
    return CheckResult("R-F3", "Early training: gradient ratio BN vs LN (Fig. 3)",
                       tuple(comps), plots, summary, statement=STATEMENTS["R-F3"], **ctx)
