r"""Fig. 3 of Rao & Sohl-Dickstein (2020): the first SGD steps of a deep ReLU net.

Symbol map (as :mod:`paper_figures.r_f1`): two noisy copies :math:`x^{a,b} = x +
\epsilon_{1,2}` of one minibatch, ``rep_corr``:math:`_l` the mean cosine of their
representations at position :math:`l` (last position = the logits, the paper's "output
representations"), ``grad_corr``:math:`_k` the cosine of their weight gradients at linear
layer :math:`k` (:math:`k = 1`: the first, input-side layer, the paper's "input
gradients"), ``grad_ratio`` :math:`= \lVert\nabla_{\theta_1}L\rVert /
\lVert\nabla_{\theta_{D+1}}L\rVert` (first over last layer, on the clean minibatch),
``val_acc`` the validation accuracy (eval mode). Probes use batch statistics
(``mode="train"``) and run every ``every`` SGD steps of
:func:`perceptron_theory.deep.probes.propagation_over_training`.

Setup: the runs of :mod:`validation.r_f1f3` (``deep-fc``, He init, depth / width /
steps / batch of its ``SETTINGS``; SGD lr 0.1 at batch 128, momentum 0.9, constant
schedule; Fashion-MNIST subset of :mod:`validation._deep`). BN and LN are
:func:`validation.r_f1f3.data` itself (cached per process: the figure and the R-F3
check share the runs); :data:`EXTRA_NORMS` are trained here with the same settings.
The paper trains a 26-layer WRN without skips on CIFAR-10 for 2000 steps with tuned
learning rates; here every normalizer uses the check's single learning rate.

Figures:

1. ``r_f3.png`` -- against the SGD step, seed mean +- standard error: (a) validation
   accuracy, (b) logit correlation, (c) first-layer gradient correlation, (d)
   ``grad_ratio`` (log scale; > 1: gradients explode towards the input). Points are
   shifted sideways by ``JITTER`` recording intervals per normalizer.
2. ``r_f3.json`` -- ``data``: per normalizer and seed the raw lists per recorded step
   (``val_acc``, ``batch_loss``, ``grad_ratio``, and ``rep_corr`` / ``grad_corr`` at every
   position / layer); ``panels``: the plots.

Run ``PYTHONPATH=. python -m paper_figures.r_f3 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, run_cli
from perceptron_theory import plotting
from validation import _deep, r_f1f3

# ----------------------------------------------------------------------------- constants
SEED = 0  # first seed, as the check's default
#: registry names of deep.norms.NORMS, in the colour order of r_f1
NORMS = ("none", *r_f1f3.NORMS, "pre-ln")
#: trained here; the check's BN and LN runs are reused
EXTRA_NORMS = tuple(nm for nm in NORMS if nm not in r_f1f3.NORMS)
JITTER = 0.06  # sideways shift between normalizers in the plots (in units of `every`)
SIZES = CHECK_SIZES  # figure size -> size of the validation check


# ------------------------------------------------------------------------------ compute
def extra_runs(check_size: str, norms=EXTRA_NORMS, seed: int = SEED) -> dict:
    """``{norm: [propagation_over_training record per seed]}`` with the check's settings."""
    from perceptron_theory.deep.probes import propagation_over_training

    s, scale = r_f1f3.SETTINGS[check_size], _deep.SCALES[check_size]
    device = _deep.torch_device(scale)
    with _deep.torch_threads(1 if device == "cpu" else None):
        return {norm: [propagation_over_training(
            r_f1f3.config(check_size, norm, sd), s["steps"], s["every"], noise=r_f1f3.NOISE,
            n=s["n"], seed=sd, mode="train", device=device) for sd in scale.seeds(seed)]
            for norm in norms}


def _per_seed(rec: dict) -> dict:
    """One run's lists over the recorded steps."""
    prop = rec["propagation"]
    return {"val_acc": rec["val_acc"], "batch_loss": rec["batch_loss"],
            "grad_ratio": [p["grad_ratio"] for p in prop],
            "rep_corr": [p["rep_corr"] for p in prop],
            "grad_corr": [p["grad_corr"] for p in prop]}


def figure_data(check_size: str) -> dict:
    runs = {**r_f1f3.data(check_size, SEED), **extra_runs(check_size)}
    first = runs[NORMS[0]][0]
    s = r_f1f3.SETTINGS[check_size]
    return {
        **{k: s[k] for k in ("depth", "width", "n", "steps", "every", "batch_size")},
        "noise": r_f1f3.NOISE, "seeds": list(_deep.SCALES[check_size].seeds(SEED)),
        "dataset": _deep.dataset_args(_deep.SCALES[check_size])["dataset"],
        "step": first["step"], "layers": first["propagation"][0]["layers"],
        "weight_layers": first["propagation"][0]["weight_layers"],
        "norms": {nm: [_per_seed(r) for r in runs[nm]] for nm in NORMS},
    }


# ------------------------------------------------------------------------------- panels
def panels(d: dict, size: str) -> list[plotting.Plot]:
    step = np.asarray(d["step"], float)
    specs = ((f"(a) val accuracy, deep-fc D = {d['depth']}, width {d['width']} ({size})",
              "accuracy", "linear", lambda r: r["val_acc"]),
             ("(b) logit correlation of two noisy copies", "cosine", "linear",
              lambda r: [c[-1] for c in r["rep_corr"]]),
             ("(c) first-layer gradient correlation", "cosine", "linear",
              lambda r: [c[0] for c in r["grad_corr"]]),
             ("(d) first / last-layer gradient norm", "grad ratio", "log",
              lambda r: r["grad_ratio"]))
    out = []
    for title, ylabel, yscale, get in specs:
        ser = [band(nm, step + (i - (len(NORMS) - 1) / 2) * JITTER * d["every"],
                    [get(r) for r in d["norms"][nm]]) for i, nm in enumerate(NORMS)]
        out.append(plotting.Plot(title, "SGD step", ylabel,
                                 tuple(s for s in ser if s is not None), yscale=yscale))
    return out


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Train (or reuse) the runs, draw ``r_f3.png`` and write ``r_f3.json``.

    ``size``: The settings and seeds of :mod:`validation.r_f1f3` at that size: ``"tiny"`` (4
    steps, a few seconds), ``"quick"`` (40 steps), ``"full"`` (2000 steps, depth 20, width
    512, five seeds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("r_f3", out_dir, size, figure_data, panels, ncols=2,
                constants={"norms": NORMS, "extra_norms": EXTRA_NORMS, "seed": SEED,
                           "mode": "train", "jitter": JITTER,
                           "settings": r_f1f3.SETTINGS.get(SIZES.get(size, {}).get(
                               "check_size"))})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
