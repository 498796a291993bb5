"""R-F1 and R-F3: propagation of two similar minibatches through a deep ReLU net.

Claims (Rao & Sohl-Dickstein 2020, Sec. 4, Figs. 1 and 3; 20-layer ReLU FC net):

* R-F1 (at initialization): with BN, the representations of two noisy copies of one
  minibatch *decorrelate with depth* -- each copy is normalized by its own batch
  statistics, which couples the samples -- while a per-sample normalizer (LN) keeps them
  correlated. Records: ``rep_corr`` at the embedding, BN < LN; and for BN, embedding
  correlation < first-layer correlation.
* R-F3 (early training): BN's gradients explode towards the input at initialization, so
  the ratio of first- to last-layer gradient norms is far larger for BN than for LN, and
  training brings it down. Records: ``grad_ratio`` at step 0, BN > LN; BN's ratio after
  the recorded steps < at step 0.

Measurement: :func:`perceptron_theory.deep.probes.propagation_probe` (``noise`` 0.1,
``mode="train"``: batch statistics) on a He-initialized ``deep-fc`` net; R-F3 through
:func:`~perceptron_theory.deep.probes.propagation_over_training`. Seeds are model
initializations (and minibatch draws); each record is a per-seed paired difference with
its standard error, passing on the sign of the mean (``_deep``'s rule). Quick: depth 10,
width 64, minibatch 64, three seeds, 40 SGD steps (batch 32, lr 0.1) on the quick
Fashion-MNIST split; full: depth 20, width 512, minibatch 128, 2000 steps.
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, register

NORMS = ("bn", "ln")
NOISE = 0.1
SETTINGS = {
    "tiny": dict(depth=3, width=8, n=16, steps=4, every=2, batch_size=16),
    "quick": dict(depth=10, width=64, n=64, steps=40, every=20, batch_size=32),
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


@register("R-F1", "BN decorrelates two similar minibatches with depth, LN does not (Fig. 1)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 4 and Fig. 1")
def check_f1(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    d = data(size, seed)
    init = {nm: [r["propagation"][0] for r in d[nm]] for nm in NORMS}
    emb = {nm: np.array([p["rep_corr"][-2] for p in init[nm]]) for nm in NORMS}
    first = np.array([p["rep_corr"][0] for p in init["bn"]])
    comps = [
        _deep.sign_record("R-F1", "rep. correlation at the embedding: LN - BN > 0",
                     emb["ln"] - emb["bn"], "Fig. 1: BN's correlation falls with depth"),
        _deep.sign_record("R-F1", "BN: rep. correlation first layer - embedding > 0",
                     first - emb["bn"], "decorrelation with depth"),
    ]
    plots = (Plot(f"R-F1: cosine of two noisy copies vs depth at init ({size})", "position",
                  "rep_corr", tuple(series(nm.upper(), np.arange(len(init[nm][0]["rep_corr"])),
                                           np.mean([p["rep_corr"] for p in init[nm]], 0))
                                    for nm in NORMS)),)
    s = SETTINGS[size]
    summary = (
        "Prediction (Rao & Sohl-Dickstein Fig. 1): at initialization BN decorrelates the "
        "representations of two similar minibatches with depth, LN keeps them correlated. "
        f"deep-fc depth {s['depth']} width {s['width']}, He init, minibatch {s['n']}, input "
        f"noise {NOISE}, batch statistics; seeds {list(_deep.SCALES[size].seeds(seed))}. "
        f"Embedding correlation: BN {_deep.fmt_pm(emb['bn'])}, LN {_deep.fmt_pm(emb['ln'])}; "
        f"BN first layer {_deep.fmt_pm(first)}.")
    return CheckResult("R-F1", "BN decorrelates similar minibatches with depth (Fig. 1)",
                       tuple(comps), plots, summary)


@register("R-F3", "Early training: first/last-layer gradient ratio, BN vs LN (Fig. 3)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 4 and Fig. 3")
def check_f3(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    d = data(size, seed)
    ratio = {nm: np.array([[p["grad_ratio"] for p in r["propagation"]] for r in d[nm]])
             for nm in NORMS}
    steps = np.array(d["bn"][0]["step"])
    lr0 = np.log(ratio["bn"][:, 0]) - np.log(ratio["ln"][:, 0])
    fall = np.log(ratio["bn"][:, 0]) - np.log(ratio["bn"][:, -1])
    comps = [
        _deep.sign_record("R-F3", "log grad ratio (first/last layer) at step 0: BN - LN > 0", lr0,
                     "Fig. 3d: BN's gradients explode towards the input at init"),
        _deep.sign_record("R-F3", f"BN: log grad ratio step 0 - step {int(steps[-1])} > 0", fall,
                     "training tames BN's gradient explosion"),
    ]
    plots = (Plot(f"R-F3: first/last-layer gradient-norm ratio ({size})", "SGD step",
                  "grad ratio", tuple(series(nm.upper(), steps, ratio[nm].mean(0))
                                      for nm in NORMS)),
             Plot(f"R-F3: val accuracy ({size})", "SGD step", "accuracy",
                  tuple(series(nm.upper(), steps,
                               np.mean([r["val_acc"] for r in d[nm]], 0)) for nm in NORMS)))
    s = SETTINGS[size]
    summary = (
        "Prediction (Rao & Sohl-Dickstein Fig. 3): the first-to-last-layer gradient-norm ratio "
        "of a BN net starts far above LN's and falls during early training. deep-fc depth "
        f"{s['depth']} width {s['width']}, {s['steps']} SGD steps (batch {s['batch_size']}, lr "
        f"0.1 at 128, momentum 0.9). Ratio at step 0: BN {_deep.fmt_pm(ratio['bn'][:, 0])}, LN "
        f"{_deep.fmt_pm(ratio['ln'][:, 0])}; at step {int(steps[-1])}: BN "
        f"{_deep.fmt_pm(ratio['bn'][:, -1])}, LN {_deep.fmt_pm(ratio['ln'][:, -1])}.")
    return CheckResult("R-F3", "Early training: gradient ratio BN vs LN (Fig. 3)",
                       tuple(comps), plots, summary)
