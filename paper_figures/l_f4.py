r"""Fig. 4 of Luo et al. (2019): fine-tuning a BN-trained net with plain SGD.

Symbol map: :math:`w^{sgd} = \gamma w^{bn}/\sigma` = the weights of the folded plain net
(:func:`perceptron_theory.deep.probes.fold_batchnorm`, exact at eval), ``weight_norm`` =
:math:`\lVert W_l\rVert_F` of every conv / linear layer :math:`l` of the folded net while
plain SGD (lr :math:`10^{-3}`, no momentum, no weight decay) fine-tunes it;
``control_weight_norm`` = the same for BN's *effective* weights :math:`\gamma W_l/\sigma`
of the BN net continued with BN on the same minibatches (our control, not in the paper);
``train_loss`` / ``val_loss`` = mean cross entropy in eval mode. The paper: the weight
norms grow, the training loss falls and the validation loss rises, "due to the release
of regularization".

Setup: the runs of :func:`validation.l_f4.grid` (cached per process: the figure and the
L-F4 check share them): Luo's CNN trained with BN, then
:func:`~perceptron_theory.deep.probes.finetune_probe` with ``control=True`` after the
last epoch.

Figures:

1. ``l_f4.png`` -- (a-d) :math:`\lVert W_l\rVert/\lVert W_l(0)\rVert` against the
   fine-tuning step for four layers (first conv, last conv, hidden linear, classifier),
   folded SGD vs BN continued (seed mean +- SE; the paper's Fig. 4a-d); (e) training
   loss and (f) validation loss, folded SGD vs BN continued (Fig. 4e,f).
2. ``l_f4.json`` -- ``data``: per seed the whole fine-tuning record; ``panels``.

Run ``PYTHONPATH=. python -m paper_figures.l_f4 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, run_cli
from perceptron_theory import plotting
from validation import l_f4

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the check's default
SIZES = CHECK_SIZES  # figure size -> size of the validation check
ARMS = (("", "folded, plain SGD"), ("control_", "BN continued"))


# ------------------------------------------------------------------------------ compute
def figure_data(check_size: str) -> dict:
    runs = l_f4.grid(check_size, SEED)
    recs = l_f4.records(runs)
    if all(r is None for r in recs):
        raise RuntimeError("every BN run diverged; nothing was fine-tuned")
    return {"settings": l_f4.SETTINGS[check_size], "dataset": runs.dataset,
            "seeds": [s for s, r in zip(runs.seeds, recs, strict=True) if r is not None],
            "finetune": [r for r in recs if r is not None]}


# ------------------------------------------------------------------------------- panels
def _layers(names: list[str]) -> list[int]:
    """Indices of four layers as in Fig. 4a-d: first, a middle and the last conv-ish
    layers and the classifier (fewer when the net has fewer)."""
    n = len(names)
    pick = sorted({0, max(n - 3, 0), max(n - 2, 0), n - 1})
    return pick[-4:]


def panels(d: dict, size: str) -> list[plotting.Plot]:
    fts = d["finetune"]
    steps = np.asarray(fts[0]["step"], float)
    names = fts[0]["weight_layers"]
    letters = "abcd"
    out = []
    for k, j in enumerate(_layers(names)):
        ser = []
        for pre, lab in ARMS:
            rows = [[w[j] / ft[f"{pre}weight_norm"][0][j] for w in ft[f"{pre}weight_norm"]]
                    for ft in fts]
            ser.append(band(lab, steps, rows, style="line"))
        out.append(plotting.Plot(f"({letters[k]}) {names[j]}: |W|/|W(0)| ({size})",
                                       "fine-tuning step", "relative norm",
                                       tuple(s for s in ser if s is not None)))
    for key, letter, what in (("train_loss", "e", "training"), ("val_loss", "f", "validation")):
        ser = [band(lab, steps, [ft[f"{pre}{key}"] for ft in fts], style="line")
               for pre, lab in ARMS]
        out.append(plotting.Plot(f"({letter}) {what} loss while fine-tuning", "fine-tuning step",
                                       "cross entropy", tuple(s for s in ser if s is not None)))
    return out


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) L-F4's runs, draw ``l_f4.png`` and write ``l_f4.json``.

    ``size``: The settings and seeds of :mod:`validation.l_f4` at that size (``"tiny"``:
    seconds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("l_f4", out_dir, size, figure_data, panels, ncols=3,
                constants={"seed": SEED, "finetune_lr": l_f4.FT_LR})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
