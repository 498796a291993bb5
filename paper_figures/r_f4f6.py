r"""Figs. 4 and 6 of Rao & Sohl-Dickstein (2020): Hessian spectra per normalizer.

Symbol map: :math:`\lambda_1 \ge \dots \ge \lambda_K` = the top :math:`K = 10` eigenvalues
of the Hessian of the batch-mean cross entropy on :math:`n` training samples (batch
statistics, as in training), from ARPACK on Hessian-vector products
(:func:`perceptron_theory.deep.probes.hessian_probe`); :math:`\lambda_1/\lambda_K` = the
outlier ratio of Ghorbani et al. (2019); the density = stochastic Lanczos quadrature
with Gaussian broadening (:func:`~perceptron_theory.deep.probes.slq_density`). The
paper: 50 steps into training LN keeps outlying eigenvalues and BN, PreLN (and even no
normalization) suppress them; BN's :math:`\lambda_1` is the largest at initialization
and falls quickly.

Setup: the runs of :func:`validation.r_f4f6.spectra` (cached per process: the figure and
the R-F4/F6 check share them): the check's net trained with the same learning rate for
every normalizer, probed every ``every`` steps.

Figures:

1. ``r_f4f6.png`` -- (Fig. 4) SLQ density at initialization and at step 50 (seed mean,
   log density), one curve per normalizer; (Fig. 6a) :math:`\lambda_1/\lambda_{10}` and
   (Fig. 6b) :math:`\lambda_1` against the SGD step (seed mean +- SE, log scale).
2. ``r_f4f6.json`` -- ``data``: per normalizer and seed, the steps, validation accuracy,
   top eigenvalues and densities; ``panels``.

Run ``PYTHONPATH=. python -m paper_figures.r_f4f6 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, run_cli
from perceptron_theory import plotting
from validation import r_f4f6

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the check's default
DENSITY_FLOOR = 1e-7  # densities below this fraction of the peak are not drawn
SIZES = CHECK_SIZES  # figure size -> size of the validation check


# ------------------------------------------------------------------------------ compute
def _per_seed(rec: dict) -> dict:
    hs = rec["hessian"]
    return {"step": rec["step"], "val_acc": rec["val_acc"],
            "eigenvalues": [h["eigenvalues"] for h in hs],
            "lambda_1": [h["lambda_1"] for h in hs],
            "lambda_ratio": [h["lambda_ratio"] for h in hs],
            "density": [{k: h["density"][k] for k in ("grid", "density")} for h in hs]}


def figure_data(check_size: str) -> dict:
    spectra = r_f4f6.spectra(check_size, SEED, r_f4f6.NORMS)
    return {"settings": r_f4f6.SETTINGS[check_size], "norms": list(r_f4f6.NORMS), "k": r_f4f6.K,
            "runs": {nm: [_per_seed(r) for r in recs] for nm, recs in spectra.items()}}


# ------------------------------------------------------------------------------- panels
def _density(runs: list[dict], i: int):
    grid = np.asarray(runs[0]["density"][i]["grid"], float)
    ys = [np.interp(grid, np.asarray(r["density"][i]["grid"], float),
                    np.asarray(r["density"][i]["density"], float)) for r in runs]
    return grid, np.mean(ys, 0)


def panels(d: dict, size: str) -> list[plotting.Plot]:
    norms = d["norms"]
    steps = np.asarray(d["runs"][norms[0]][0]["step"], float)
    i50 = int(np.searchsorted(steps, d["settings"]["step_f4"]))
    out = []
    for i, what in ((0, "initialization"), (i50, f"step {int(steps[i50])}")):
        ser = []
        for nm in norms:
            g, y = _density(d["runs"][nm], i)
            ok = y > DENSITY_FLOOR * y.max()  # Gaussian-broadening tails: not data
            ser.append(plotting.series(r_f4f6.NAMES[nm], g[ok], y[ok]))
        out.append(plotting.Plot(f"(Fig. 4) Hessian eigenvalue density at {what} ({size})",
                                       "eigenvalue", "density", tuple(ser), yscale="log"))
    for key, title, ylabel in (("lambda_ratio", f"(Fig. 6a) l1 / l{d['k']}", "ratio"),
                                     ("lambda_1", "(Fig. 6b) largest eigenvalue l1", "lambda_1")):
        ser = [band(r_f4f6.NAMES[nm], steps, [r[key] for r in d["runs"][nm]], style="line")
               for nm in norms]
        out.append(plotting.Plot(f"{title} through training", "SGD step", ylabel,
                                       tuple(s for s in ser if s is not None), yscale="log"))
    return out


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) R-F4/F6's runs, draw ``r_f4f6.png`` and write ``r_f4f6.json``.

    ``size``: The settings and seeds of :mod:`validation.r_f4f6` at that size (``"tiny"``:
    seconds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("r_f4f6", out_dir, size, figure_data, panels, ncols=2,
                constants={"seed": SEED, "density_floor": DENSITY_FLOOR})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
