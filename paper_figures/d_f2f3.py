r"""Figs. 2 and 3 of Dauphin & Cubuk (2021): embedding and output norms, with and without BN.

Symbol map: :math:`E\lVert\mathrm{Emb}\rVert^2` = ``embedding_sq`` = the mean over
validation samples of the squared norm of the embedding (input of the classifier),
:math:`E\lVert NN\rVert^2` = ``output_sq`` = that of the logits, both from the ``norms``
probe (:func:`perceptron_theory.deep.probes.norms_probe`, eval mode, 1000 validation
samples) after every epoch; ``val_acc`` = validation accuracy; :math:`\lambda` = the
embedding-L2 coefficient (penalty :math:`\lambda\, E\lVert\mathrm{Emb}\rVert^2` added to
the loss; ``embedding-l2`` of :mod:`perceptron_theory.deep.penalties`).

Setup: the D-T3 / D-F2F3 runs, cached per process and shared with those checks:
:func:`validation.d_t3.grid` (baseline = no norm, BN, no norm + EL2 at
:data:`validation.d_t3.EL2_COEF`) and :func:`validation.d_f2f3.small_el2_grid` (EL2 at
:data:`validation.d_f2f3.EL2_SMALL`) -- the arms of :mod:`validation._dauphin` (the
shared CNN run below full, WRN-16-4 at full) on the Fashion-MNIST subset of
:mod:`validation._deep`, seeds of the size's scale. The paper's Fig. 2 is a ResNet on
CIFAR-10 / ImageNet over a full schedule, its Fig. 3 ImageNet.

Figures:

1. ``d_f2f3.png`` -- top row, Fig. 2 (baseline vs BN, against the epoch, seed mean +-
   standard error): (a) validation accuracy, (b) :math:`E\lVert\mathrm{Emb}\rVert^2`,
   (c) :math:`E\lVert NN\rVert^2` (log scales); bottom row, Fig. 3 (after the last
   epoch, against :math:`\lambda \in \{0, 0.05, 0.5\}`, drawn evenly spaced; :math:`\lambda
   = 0` is the baseline): (d) accuracy, (e), (f) the two norms -- per seed, mean +-
   standard error, and BN's mean as a dashed reference.
2. ``d_f2f3.json`` -- ``data``: per variant and seed the per-epoch histories
   (``train_loss``, ``val_loss``, ``val_acc``, ``embedding_sq``, ``output_sq``);
   ``panels``: the plots.

Run ``PYTHONPATH=. python -m paper_figures.d_f2f3 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import (
    CHECK_SIZES,
    band,
    draw,
    histories,
    mean_se,
    run_cli,
)
from paper_figures.d_t3 import EPOCH_KEYS
from perceptron_theory import plotting
from validation import d_f2f3, d_t3

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the checks' default
#: Fig. 3's sweep: (coefficient lambda, label of the run)
SWEEP = ((0.0, d_t3.BASE), (d_f2f3.EL2_SMALL, d_f2f3.EL2_SMALL_LABEL),
         (d_t3.EL2_COEF, d_t3.EL2))
FIG2 = (d_t3.BASE, d_t3.BN)
OFFSET = 0.12  # sideways shift of the per-seed points
SIZES = CHECK_SIZES  # figure size -> size of the validation check


# ------------------------------------------------------------------------------ compute
def figure_data(check_size: str) -> dict:
    runs, small = d_t3.grid(check_size, SEED), d_f2f3.small_el2_grid(check_size, SEED)
    by_label = {**{lab: runs for lab in runs.labels}, **{lab: small for lab in small.labels}}
    return {
        "settings": d_t3.SETTINGS[check_size], "dataset": runs.dataset,
        "seeds": list(runs.seeds), "labels": list(by_label),
        "sweep": [{"coef": c, "label": lab} for c, lab in SWEEP],
        "epochs": {lab: histories(r, lab, EPOCH_KEYS) for lab, r in by_label.items()},
    }


# ------------------------------------------------------------------------------- panels
def _per_seed(d: dict, label: str, key: str) -> list[list]:
    """Per-epoch values per seed, padded with None to the longest run (a diverged run
    stops early)."""
    rows = [v[key] for v in d["epochs"][label].values()]
    n = max(map(len, rows))
    return [r + [None] * (n - len(r)) for r in rows]


def _final(d: dict, label: str, key: str) -> list:
    """Last-epoch value per seed (None for a diverged run)."""
    return [None if v["diverged"] or not v[key] else v[key][-1]
            for v in d["epochs"][label].values()]


def panels(d: dict, size: str) -> list[plotting.Plot]:
    top = []
    for key, title, ylabel, ys in (("val_acc", "(a) validation accuracy", "accuracy", "linear"),
                                         ("embedding_sq", r"(b) $E|Emb|^2$", r"$E|Emb|^2$", "log"),
                                         ("output_sq", r"(c) $E|NN|^2$", r"$E|NN|^2$", "log")):
        ser = []
        for lab in FIG2:
            rows = _per_seed(d, lab, key)
            ser.append(band(lab, np.arange(1, len(rows[0]) + 1), rows))
        top.append(plotting.Plot(f"Fig. 2 {title} ({size})", "epoch", ylabel,
                                       tuple(s for s in ser if s is not None), yscale=ys))
    x = np.arange(len(SWEEP), dtype=float)
    xl = r"EL2 coefficient $\lambda$ = " + " | ".join(f"{c:g}" for c, _ in SWEEP)
    bottom = []
    for key, title, ylabel, ys in (("val_acc", "(d) accuracy", "val accuracy", "linear"),
                                         ("embedding_sq", r"(e) $E|Emb|^2$", r"$E|Emb|^2$", "log"),
                                         ("output_sq", r"(f) $E|NN|^2$", r"$E|NN|^2$", "log")):
        cols = [_final(d, lab, key) for _, lab in SWEEP]
        rows = [list(r) for r in zip(*cols, strict=True)]
        xs = [i + OFFSET for i, c in enumerate(cols) for v in c if v is not None]
        ys_ = [v for c in cols for v in c if v is not None]
        ser = [plotting.series("per seed", xs, ys_, style="points") if xs else None,
               band("mean +- SE", x, rows)]
        bn_mean, _ = mean_se([[v] for v in _final(d, d_t3.BN, key)])
        if np.isfinite(bn_mean[0]):
            ser.append(plotting.series("BN (mean)", x, np.full(x.size, bn_mean[0]),
                                             style="dashed"))
        bottom.append(plotting.Plot(f"Fig. 3 {title}, after the last epoch", xl, ylabel,
                                          tuple(s for s in ser if s is not None), yscale=ys))
    return top + bottom


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) the D-T3 / D-F2F3 runs, draw ``d_f2f3.png``, write ``d_f2f3.json``.

    ``size``: The settings and seeds of :mod:`validation.d_t3` at that size: ``"tiny"`` (one
    epoch of a 2/2/4/4-channel CNN, seconds), ``"quick"``, ``"full"`` (all of
    Fashion-MNIST, WRN-16-4, five seeds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("d_f2f3", out_dir, size, figure_data, panels, ncols=3,
                constants={"sweep": SWEEP, "fig2": FIG2, "seed": SEED, "offset": OFFSET})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
