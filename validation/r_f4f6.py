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

Setup. The deep no-skip ReLU net affordable on two CPU cores is the He-initialized
``deep-fc`` of R-F1/F3 (depth 10, width 64: 80k parameters); SGD momentum 0.9, lr 0.1 at
batch 128 (batch 32), Fashion-MNIST quick split, 100 steps with records every 25, n = 512
(the paper's count), three seeds. Full: Rao's net itself, ``wrn`` depth 28 (26 weight
layers), k = 1, ``skip=False``, batch 128, 200 steps, every 25, on all of Fashion-MNIST
(CIFAR-10 when supplied), five seeds (GPU).
"""

from __future__ import annotations

import functools

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, register

NORMS = ("bn", "ln", "pre-ln", "none")
NAMES = {"bn": "BN", "ln": "LN", "pre-ln": "PreLN", "none": "no norm"}
K = 10  # Rao: the number of classes
STEP_F4 = 50  # Fig. 4: "50 steps into training"
SETTINGS = {
    "tiny": dict(model="deep-fc", options={"depth": 3, "width": 8}, batch_size=16, steps=4,
                 every=2, n=32, slq_steps=10, step_f4=2),
    "quick": dict(model="deep-fc", options={"depth": 10, "width": 64}, batch_size=32,
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


@functools.lru_cache(maxsize=4)
def spectra(size: str, seed: int) -> dict:
    """``{norm: [probe_over_training record per seed]}`` with the ``hessian`` probe."""
    from perceptron_theory.deep.probes import probe_over_training

    s, scale = SETTINGS[size], _deep.SCALES[size]
    opts = {"n": s["n"], "k": K, "mode": "train", "density": True,
            "slq_steps": s["slq_steps"], "seed": 0}
    device = _deep.torch_device(scale)
    out = {}
    with _deep.torch_threads(1 if device == "cpu" else None):
        for norm in NORMS:
            out[norm] = [probe_over_training(_config(size, norm, sd), s["steps"], s["every"],
                                             {"hessian": opts}, device=device)
                         for sd in scale.seeds(seed)]
    return out


def _log_series(recs: list[dict], key: str) -> np.ndarray:
    """``log`` of ``key`` of the Hessian probe, shape (seed, record)."""
    return np.log(np.array([[h[key] if h[key] is not None else np.nan for h in r["hessian"]]
                            for r in recs], float))


@register("R-F4/F6", "Hessian outliers: LN keeps them, BN suppresses them (Figs. 4, 6)",
          paper="Rao & Sohl-Dickstein 2020, Sec. 6, Figs. 4 and 6")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    d = spectra(size, seed)
    steps = np.array(d["bn"][0]["step"])
    i50 = int(np.searchsorted(steps, s["step_f4"]))
    ratio = {nm: _log_series(d[nm], "lambda_ratio") for nm in NORMS}
    lam1 = {nm: _log_series(d[nm], "lambda_1") for nm in NORMS}
    rec = _deep.sign_record
    at = steps[i50]
    comps = [
        rec("R-F4/F6", f"log(l1/l{K}) at step {at}: LN - BN > 0",
            ratio["ln"][:, i50] - ratio["bn"][:, i50], "Fig. 4: LN keeps outliers, BN not"),
        rec("R-F4/F6", f"log(l1/l{K}) at step {at}: LN - PreLN > 0",
            ratio["ln"][:, i50] - ratio["pre-ln"][:, i50],
            "Fig. 4: PreLN conditions the Hessian like BN"),
        rec("R-F4/F6", f"log(l1/l{K}) averaged over steps {steps[1]}..{steps[-1]}: LN - BN > 0",
            ratio["ln"][:, 1:].mean(1) - ratio["bn"][:, 1:].mean(1), "Fig. 6a"),
        rec("R-F4/F6", f"log(l1/l{K}) averaged over steps {steps[1]}..{steps[-1]}: "
            "LN - no norm > 0", ratio["ln"][:, 1:].mean(1) - ratio["none"][:, 1:].mean(1),
            "Fig. 6a: even no normalization suppresses outliers, LN does not"),
        rec("R-F4/F6", "log l1 at init: BN - LN > 0", lam1["bn"][:, 0] - lam1["ln"][:, 0],
            "Fig. 6b: BN needs the lowest learning rate at init"),
        rec("R-F4/F6", "log l1 at init: BN - PreLN > 0", lam1["bn"][:, 0] - lam1["pre-ln"][:, 0],
            "Fig. 6b"),
        rec("R-F4/F6", f"BN: log l1 at init - at step {at} > 0",
            lam1["bn"][:, 0] - lam1["bn"][:, i50], "Fig. 6b: BN's l1 quickly decreases"),
    ]

    def dens(norm, i):
        dd = [r["hessian"][i]["density"] for r in d[norm]]
        grid = np.asarray(dd[0]["grid"], float)
        return grid, np.mean([np.interp(grid, np.asarray(x["grid"], float),
                                        np.asarray(x["density"], float)) for x in dd], 0)

    plots = (
        Plot(f"R-F6a: log(l1/l{K}) through training ({size})", "SGD step", "log ratio",
             tuple(series(NAMES[nm], steps, np.nanmean(ratio[nm], 0)) for nm in NORMS)),
        Plot(f"R-F6b: log l1 through training ({size})", "SGD step", "log lambda_1",
             tuple(series(NAMES[nm], steps, np.nanmean(lam1[nm], 0)) for nm in NORMS)),
        *(Plot(f"R-F4: SLQ eigenvalue density at step {steps[i]} ({size}, seed mean)",
               "eigenvalue", "density",
               tuple(series(NAMES[nm], *dens(nm, i)) for nm in NORMS), yscale="log")
          for i in (0, i50)),
    )
    pm = _deep.fmt_pm

    def row(nm):
        r = np.exp(ratio[nm])
        l1 = np.exp(lam1[nm])
        return (f"{NAMES[nm]}: l1 {pm(l1[:, 0])} -> {pm(l1[:, i50])}, l1/l{K} {pm(r[:, 0])} -> "
                f"{pm(r[:, i50])}")

    summary = (
        "Prediction (Rao & Sohl-Dickstein Figs. 4, 6): 50 steps into training LN's Hessian "
        "keeps large outlying eigenvalues (large l1/l10) while BN, PreLN and even the "
        "norm-free net suppress them; at init BN has the largest l1, which then falls fast. "
        f"{s['model']} {s['options']}, He init, {s['steps']} SGD steps (batch "
        f"{s['batch_size']}, lr 0.1 at 128, momentum 0.9, the same for every norm), Hessian of "
        f"the cross entropy on n = {s['n']} training samples with batch statistics, records at "
        f"steps {steps.tolist()}; seeds {list(_deep.SCALES[size].seeds(seed))}. "
        f"Init -> step {at} (mean +- stderr): " + "; ".join(row(nm) for nm in NORMS) + ".")
    return CheckResult("R-F4/F6", "Hessian outliers: LN keeps them, BN suppresses them",
                       tuple(comps), plots, summary)
