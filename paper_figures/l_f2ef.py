r"""Fig. 2e,f of Luo et al. (2019): BN at one layer, gamma^2 and validation loss vs batch size.

Symbol map: :math:`M` = ``batch_size`` (the training batch size), :math:`\gamma^2` =
``gamma_sq_mean`` = the mean over channels of :math:`\gamma_c^2` of the single BN layer
(``norms`` probe of :func:`validation.d_t3.probes_callback`, after every epoch),
``val_loss`` / ``train_loss`` = mean cross entropy on the validation / training split
after an epoch. The paper's reading: BN's regularization strength on :math:`\gamma` is
:math:`\zeta \propto 1/M`, so :math:`\gamma^2` and the validation loss grow with
:math:`M`.

Setup: the runs of :func:`validation.l_f2ef.grid` (cached per process: the figure and the
L-F2ef check share them), one per batch size of ``validation.l_f2ef.SETTINGS[size]
["batch_sizes"]`` and seed of the size's scale; the script reads whatever those settings
and runs hold (model, epochs and batch sizes are the check's).

Figures:

1. ``l_f2ef.png`` -- (e) final :math:`\gamma^2` against :math:`M` (log scale), per seed
   and mean +- standard error (paper Fig. 2e); (f) final validation loss against
   :math:`M`, per seed and mean +- standard error, with the mean training loss dashed
   (Fig. 2f); (g), (h) :math:`\gamma^2` and validation loss against the epoch, one
   series per :math:`M` (mean +- standard error).
2. ``l_f2ef.json`` -- ``data``: ``batch_sizes``, per batch size and seed the final values
   and the per-epoch histories; ``panels``: the plots.

Run ``PYTHONPATH=. python -m paper_figures.l_f2ef [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, histories, run_cli
from perceptron_theory import plotting
from validation import l_f2ef

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the check's default
FINAL_KEYS = ("gamma_sq_mean", "val_loss", "train_loss", "val_acc")
EPOCH_KEYS = ("gamma_sq_mean", "val_loss", "train_loss", "val_acc")
JITTER = 1.06  # multiplicative sideways shift of the per-seed points (log x axis)
SIZES = CHECK_SIZES  # figure size -> size of the validation check


# ------------------------------------------------------------------------------ compute
def figure_data(check_size: str) -> dict:
    runs = l_f2ef.grid(check_size, SEED)
    ms = [int(m) for m in l_f2ef.SETTINGS[check_size]["batch_sizes"]]
    labels = {m: l_f2ef.label(m) for m in ms}
    return {
        "settings": l_f2ef.SETTINGS[check_size], "dataset": runs.dataset,
        "seeds": list(runs.seeds), "batch_sizes": ms,
        "final": {str(m): {k: runs.final(lab, k).tolist() for k in FINAL_KEYS}
                  for m, lab in labels.items()},
        "epochs": {str(m): histories(runs, lab, EPOCH_KEYS) for m, lab in labels.items()},
    }


# ------------------------------------------------------------------------------- panels
def _vs_m(d: dict, key: str):
    """Per-seed points and the mean +- SE band of a final value against M."""
    ms = d["batch_sizes"]
    cols = [d["final"][str(m)][key] for m in ms]
    xs = [m * JITTER for m, c in zip(ms, cols, strict=True) for v in c if v is not None]
    ys = [v for c in cols for v in c if v is not None]
    rows = [list(r) for r in zip(*cols, strict=True)]
    return (plotting.series("per seed", xs, ys, style="points") if xs else None,
            band("mean +- SE", ms, rows))


def _per_epoch(d: dict, m: int, key: str) -> list[list]:
    rows = [v[key] for v in d["epochs"][str(m)].values()]
    n = max(map(len, rows))
    return [r + [None] * (n - len(r)) for r in rows]


def panels(d: dict, size: str) -> list[plotting.Plot]:
    ms = d["batch_sizes"]
    s = d["settings"]
    what = f"BN at one layer, {s.get('epochs', '?')} epochs ({size})"
    pts, mean = _vs_m(d, "gamma_sq_mean")
    pe = plotting.Plot(rf"(e) final $\gamma^2$ vs batch size, {what}", "batch size M",
                             r"mean $\gamma^2$", tuple(x for x in (pts, mean) if x is not None),
                             xscale="log")
    pts, mean = _vs_m(d, "val_loss")
    _, train = _vs_m(d, "train_loss")
    if train is not None:
        train = plotting.series("train loss (mean)", train.x, train.y, style="dashed")
    pf = plotting.Plot("(f) final validation loss vs batch size", "batch size M", "loss",
                             tuple(x for x in (pts, mean, train) if x is not None), xscale="log")
    curves = []
    for key, title, ylabel in (("gamma_sq_mean", r"(g) $\gamma^2$ during training",
                                      r"mean $\gamma^2$"),
                                     ("val_loss", "(h) validation loss during training", "loss")):
        ser = []
        for m in ms:
            rows = _per_epoch(d, m, key)
            ser.append(band(f"M = {m}", np.arange(1, len(rows[0]) + 1), rows))
        curves.append(plotting.Plot(title, "epoch", ylabel,
                                          tuple(x for x in ser if x is not None)))
    return [pe, pf, *curves]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) L-F2ef's runs, draw ``l_f2ef.png`` and write ``l_f2ef.json``.

    ``size``: The settings and seeds of :mod:`validation.l_f2ef` at that size (``"tiny"``:
    seconds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("l_f2ef", out_dir, size, figure_data, panels, ncols=2,
                constants={"seed": SEED, "jitter": JITTER})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
