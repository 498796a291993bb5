r"""Table 3 of Dauphin & Cubuk (2021) as a figure: accuracy drop under test-time dropout.

Symbol map: ``acc`` = clean validation accuracy (eval mode), ``acc_dropout`` = the
accuracy with dropout of rate :math:`p` = :data:`validation.d_t3.P_DROP` on the embedding
(:math:`NN(x) = W[\mathrm{Emb}(x)\odot m/(1-p)] + b`, averaged over
:data:`validation.d_t3.MASKS` seeded masks :math:`m`), ``drop`` = ``acc - acc_dropout``
(:func:`perceptron_theory.deep.probes.dropout_probe`); :math:`E\lVert\mathrm{Emb}\rVert^2`
= ``embedding_sq`` (``norms`` probe on 1000 validation samples). Accuracies are plotted in
percent, drops in percentage points (the paper's unit).

Setup: the runs of :func:`validation.d_t3.grid` (cached per process: the figure and the
D-T3 check share them) -- the arms of :mod:`validation._dauphin` trained without
dropout (the shared CNN run below full, WRN-16-4 at full), no BN / BN /
no norm + embedding L2 (coefficient :data:`validation.d_t3.EL2_COEF`), on the
Fashion-MNIST subset of :mod:`validation._deep`, seeds of the size's scale; the probes
run after the last epoch on the validation split. The paper's numbers are ResNet-50 on
ImageNet (:data:`PAPER_DROP_SE`: their +- values), so only the ordering compares.

Figures:

1. ``d_t3.png`` -- (a) accuracy drop per variant: ours per seed, our mean +- standard
   error, and Table 3's; (b) clean accuracy and accuracy under dropout, mean +- standard
   error; (c) :math:`E\lVert\mathrm{Emb}\rVert^2` after the last epoch, the mechanism
   (their Sec. 3.1: the drop grows with the embedding norm), per seed and mean.
2. ``d_t3.json`` -- ``data``: per variant and seed the final probe values and the
   per-epoch histories; ``panels``: the plots.

Run ``PYTHONPATH=. python -m paper_figures.d_t3 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, histories, run_cli
from perceptron_theory import plotting
from validation import d_t3

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the check's default
LABELS = (d_t3.BASE, d_t3.BN, d_t3.EL2)  # x = 0, 1, 2
#: Table 3's +- (percentage points); the means are validation.d_t3.PAPER_DROP
PAPER_DROP_SE = {d_t3.BASE: 0.1, d_t3.BN: 0.3, d_t3.EL2: 0.1}
FINAL_KEYS = ("clean_acc", "dropout_acc", "dropout_drop", "embedding_sq", "output_sq",
              "val_acc", "train_loss")
EPOCH_KEYS = ("train_loss", "val_loss", "val_acc", "embedding_sq", "output_sq")
OFFSET = 0.15  # sideways shift of the per-seed / paper points
SIZES = CHECK_SIZES  # figure size -> size of the validation check


# ------------------------------------------------------------------------------ compute
def figure_data(check_size: str) -> dict:
    runs = d_t3.grid(check_size, SEED)
    return {
        "settings": d_t3.SETTINGS[check_size], "dataset": runs.dataset,
        "seeds": list(runs.seeds), "p_drop": d_t3.P_DROP, "masks": d_t3.MASKS,
        "el2_coef": d_t3.EL2_COEF, "labels": list(LABELS),
        "paper_drop": {lab: [d_t3.PAPER_DROP[lab], PAPER_DROP_SE[lab]] for lab in LABELS},
        "final": {lab: {k: runs.final(lab, k).tolist() for k in FINAL_KEYS}
                  for lab in LABELS},
        "epochs": {lab: histories(runs, lab, EPOCH_KEYS) for lab in LABELS},
    }


# ------------------------------------------------------------------------------- panels
def _col(d: dict, key: str, scale: float = 1.0) -> list[list]:
    """Per seed (rows) x variant (columns) of a final value, times ``scale``."""
    cols = [[None if v is None else scale * v for v in d["final"][lab][key]]
            for lab in LABELS]
    return [list(r) for r in zip(*cols, strict=True)]


def _seed_points(label: str, rows: list[list], dx: float) -> plotting.Series | None:
    xs, ys = [], []
    for r in rows:
        for i, v in enumerate(r):
            if v is not None and np.isfinite(v):
                xs.append(i + dx)
                ys.append(v)
    return plotting.series(label, xs, ys, style="points") if xs else None


def panels(d: dict, size: str) -> list[plotting.Plot]:
    x = np.arange(len(LABELS), dtype=float)
    xl = "  |  ".join(f"{i}: {lab}" for i, lab in enumerate(LABELS))
    drop = _col(d, "dropout_drop", 100.0)
    paper = d["paper_drop"]
    p1 = (_seed_points("ours, per seed", drop, OFFSET),
          band("ours, mean +- SE", x, drop),
          plotting.series("Table 3 (ResNet-50, ImageNet)", x - OFFSET,
                                [paper[lab][0] for lab in LABELS],
                                yerr=[paper[lab][1] for lab in LABELS], style="points"))
    p2 = (band("clean", x, _col(d, "clean_acc", 100.0)),
          band(f"dropout p = {d['p_drop']:g} on Emb", x + OFFSET,
               _col(d, "dropout_acc", 100.0)))
    emb = _col(d, "embedding_sq")
    p3 = (_seed_points("per seed", emb, OFFSET), band("mean +- SE", x, emb))
    spec = ((f"(a) accuracy drop, test-time dropout p = {d['p_drop']:g} ({size})",
             "drop (percentage points)", p1, "linear"),
            ("(b) validation accuracy", "accuracy (%)", p2, "linear"),
            (r"(c) $E|Emb|^2$ after the last epoch (mechanism)", r"$E|Emb|^2$", p3, "log"))
    return [plotting.Plot(t, xl, yl, tuple(s for s in ser if s is not None), yscale=ys)
            for t, yl, ser, ys in spec]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) D-T3's runs, draw ``d_t3.png`` and write ``d_t3.json``.

    ``size``: The settings and seeds of :mod:`validation.d_t3` at that size: ``"tiny"`` (one
    epoch of a 2/2/4/4-channel CNN, seconds), ``"quick"``, ``"full"`` (all of
    Fashion-MNIST, WRN-16-4, five seeds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("d_t3", out_dir, size, figure_data, panels, ncols=3,
                constants={"labels": LABELS, "seed": SEED, "paper_drop": d_t3.PAPER_DROP,
                           "paper_drop_se": PAPER_DROP_SE, "offset": OFFSET})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
