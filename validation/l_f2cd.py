"""L-F2cd: plain SGD vs WN vs BN vs WN + mean-only BN vs WN + variance-only BN (Fig. 2c,d).

Claim (Luo et al. 2019, Sec. 5, "Comparisons of Regularization"; the 4conv+2fc CNN of
Salimans & Kingma on CIFAR-10, Fig. 2c,d plot train and validation loss): "the
generalization error of BN is much lower than WN and vanilla SGD"; "improvements from the
mean-only and the variance-only BN over WN verify ... that noises from mu_B and sigma_B have
different regularization strengths. Both of them are essential to produce good result."
Read as orderings of the validation loss:

* BN < vanilla SGD and BN < WN;
* WN + mean-only BN < WN and WN + variance-only BN < WN (each noise source helps);
* BN < WN + mean-only BN and BN < WN + variance-only BN ("both are essential": neither
  alone reaches BN).

Norm names (``deep.norms``): ``none``, ``wn``, ``bn``, ``wn+bn-mean``, ``wn+bn-var``
(weight norm on every conv/fc before a slot, then the named layer). Same SGD for all:
batch 128, lr 0.1, momentum 0.9, weight decay 5e-4, Luo's per-step decay. Quick: the CNN
narrowed to (4, 4, 8, 8; fc 32) on an 800-image Fashion-MNIST split; full: the paper's
widths (32, 32, 64, 64; fc 512) on all of Fashion-MNIST.

At the quick scale the norm-free nets (SGD, WN) hardly leave the chance plateau: with
torch's default init (variance 1/(3 fan_in)) the signal shrinks about sqrt(6)x per
conv-ReLU layer, so the logits start ~100x smaller than with He init, and WN has no
data-dependent init here (Salimans & Kingma's). Records against them then measure
trainability; the notes flag it (``_deep.trained``).
"""

from __future__ import annotations

from validation import _deep
from validation._core import CheckResult, register

CLAIM = "L-F2cd"
TITLE = "SGD vs WN vs BN vs WN + mean-only / variance-only BN: validation loss (Fig. 2c,d)"
NORMS = ("none", "wn", "bn", "wn+bn-mean", "wn+bn-var")
LABELS = {"none": "SGD", "wn": "WN", "bn": "BN", "wn+bn-mean": "WN+mean-only BN",
          "wn+bn-var": "WN+var-only BN"}
#: (better, worse) pairs in val loss, as the paper's text orders them
ORDERINGS = (("bn", "none"), ("bn", "wn"), ("wn+bn-mean", "wn"), ("wn+bn-var", "wn"),
             ("bn", "wn+bn-mean"), ("bn", "wn+bn-var"))
SETTINGS = {
    "tiny": dict(model_options=_deep.CNN_OPTIONS["tiny"], batch_size=40, epochs=2),
    "quick": dict(model_options=_deep.CNN_OPTIONS["quick"], batch_size=128, epochs=5),
    "full": dict(model_options=_deep.CNN_OPTIONS["full"], batch_size=128, epochs=40),
}


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and Fig. 2c,d")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    base = dict(model="cnn", model_options=s["model_options"], batch_size=s["batch_size"],
                epochs=s["epochs"], lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="luo")
    variants = {LABELS[n]: dict(norm=n) for n in NORMS}
    runs = _deep.run_grid(base, variants, _deep.SCALES[size], seed)
    comps = []
    for better, worse in ORDERINGS:
        b, w = LABELS[better], LABELS[worse]
        comps.append(_deep.ordering(CLAIM, f"val loss: {b} < {w}", runs, b, w, "val_loss",
                                    higher_is_better=False))
    plots = _deep.training_plots(CLAIM, runs)
    table = _deep.final_table(runs)
    summary = (
        "Prediction (Luo et al. Fig. 2c,d): validation loss BN < WN + mean-only BN, WN + "
        "variance-only BN < WN, and BN < plain SGD -- the batch mean and the batch variance "
        f"each regularize, and both are needed. Same SGD for all (batch {s['batch_size']}, lr "
        f"0.1, {s['epochs']} epochs). {runs.describe()}. Final epoch (mean +- stderr): "
        f"{table}." + _deep.summary_tail(runs))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
