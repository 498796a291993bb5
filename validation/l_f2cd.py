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

Headline: BN < WN in validation loss (BN is WN plus both batch-statistic noises).

Norm names (``deep.norms``): ``none``, ``wn``, ``bn``, ``wn+bn-mean``, ``wn+bn-var``
(weight norm on every conv/fc before a slot, then the named layer). Same SGD for all: the
shared run of :data:`validation._deep.BASE` (batch 128, lr 0.05, momentum 0.9, weight
decay 5e-4, cosine; He init so that the norm-free arms train -- with torch's default init
they sat on the chance plateau in earlier sessions). quick: BN and WN only, one seed;
cpu: all five arms on the narrowed CNN (4, 4, 8, 8; fc 32), 25 000 training images, 4
epochs; full: the paper's widths (32, 32, 64, 64; fc 512) on all of Fashion-MNIST.

Seeds (cpu) by :func:`~validation._deep.seeds_for_power`: the paper gives no number, only
"much lower"; the smallest effect we call a regularization benefit is 0.02 in val loss,
against the assumed paired spread ``SD_LOSS`` = 0.016: ceil((2 x 0.016 / 0.02)^2) = 3,
raised to 5 so that the mean-only / variance-only orderings (expected smaller) are not
left at the minimum.
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
HEADLINE = ("bn", "wn")
STATEMENT = ("BN's validation loss is much lower than WN's and plain SGD's; the batch mean "
             "and the batch variance each regularize and both are needed")
#: arms per size (quick: the headline pair) and cpu seeds (module docstring)
ARMS = {"tiny": NORMS, "quick": HEADLINE, "cpu": NORMS, "full": NORMS}
N_SEEDS = {"cpu": 5}


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and Fig. 2c,d")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    base = _deep.base(size)
    variants = {LABELS[n]: dict(norm=n) for n in ARMS[size]}
    runs = _deep.run_grid(base, variants, _deep.SCALES[size], seed,
                          n_seeds=N_SEEDS.get(size))
    comps = []
    for better, worse in ORDERINGS:
        b, w = LABELS[better], LABELS[worse]
        if b not in variants or w not in variants:
            continue
        comps.append(_deep.ordering(CLAIM, f"val loss: {b} < {w}", runs, b, w, "val_loss",
                                    higher_is_better=False,
                                    headline=(better, worse) == HEADLINE))
    plots = _deep.training_plots(CLAIM, runs)
    table = _deep.final_table(runs)
    summary = (
        "Prediction (Luo et al. Fig. 2c,d): validation loss BN < WN + mean-only BN, WN + "
        "variance-only BN < WN, and BN < plain SGD -- the batch mean and the batch variance "
        f"each regularize, and both are needed. Same SGD for all (batch {base['batch_size']}, "
        f"lr {base['lr']}, {base['epochs']} epochs). {runs.describe()}. Final epoch (mean +- "
        f"stderr): {table}.")
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
