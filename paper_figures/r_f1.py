r"""Fig. 1 of Rao & Sohl-Dickstein (2020): two similar minibatches through a deep ReLU net.

Symbol map: a minibatch :math:`x` of ``n`` samples and two noisy copies
:math:`x^{a,b} = x + \epsilon_{1,2}`, :math:`\epsilon \sim \mathcal N(0, \texttt{NOISE}^2)`
per input entry; :math:`r_l` = the representation at position :math:`l` (the output of the
:math:`l`-th norm slot, :math:`l = 1..D` for depth :math:`D`, then the embedding at
:math:`D + 1` and the logits at :math:`D + 2`); ``rep_corr``:math:`_l` = the mean over
samples of :math:`\cos(r_l(x^a)_i, r_l(x^b)_i)`; ``grad_corr``:math:`_k` =
:math:`\cos(\nabla_{\theta_k}L(x^a), \nabla_{\theta_k}L(x^b))` for the weight
:math:`\theta_k` of linear layer :math:`k = 1..D+1` (:math:`D + 1` = the classifier),
:math:`L` the batch-mean cross entropy; ``grad_norm``:math:`_k = \lVert\nabla_{\theta_k}
L(x)\rVert`. All from :func:`perceptron_theory.deep.probes.propagation_probe` with
``mode="train"`` (batch statistics: BN normalizes each copy by its own statistics).

Setup: He-initialized ``deep-fc`` (``[fc-N-ReLU] x D``, fc), at initialization, with the
depth, width and minibatch size of :data:`validation.r_f1f3.SETTINGS` (tiny: D = 3;
quick: D = 10, width 64; full: D = 20, width 512, as the paper) on the data of
:mod:`validation._deep` (Fashion-MNIST subset; the paper uses MNIST), noise
:data:`validation.r_f1f3.NOISE`, over the seeds of that scale (one model and minibatch
per seed). The records are the step-0 records of
:func:`~perceptron_theory.deep.probes.propagation_over_training` with zero steps, so BN's
and LN's equal those the R-F1 check reads. Normalizers (:data:`NORMS`, registry names
of :data:`perceptron_theory.deep.norms.NORMS`): none, BN, LN and the batch-free or mixed
ones of the paper (BMLV, LMBV, PreLayerNorm, RegNorm).

Figures:

1. ``r_f1.png`` -- (a) ``rep_corr`` against position (paper Fig. 1a: BN, BMLV and
   PreLayerNorm decorrelate with depth, LN and no norm stay correlated); (b)
   ``grad_corr`` against weight layer (Fig. 1b); (c) ``grad_norm`` against weight layer
   (log scale; gradient explosion towards the input). Points are seed means with their
   standard errors, shifted sideways by ``JITTER`` per normalizer so the bars do not hide
   each other.
2. ``r_f1.json`` -- ``data``: per normalizer and seed the raw probe lists (``rep_corr``,
   ``rep_pearson``, ``grad_corr``, ``grad_norm``, ``grad_ratio``); ``panels``: the plots.

RegNorm's batch-mean penalty acts only in training, so at initialization it is its layer
(RMS normalization per sample). :func:`clean`, :func:`mean_se` and :func:`band` serve
the other deep-network figure scripts too.

Run ``PYTHONPATH=. python -m paper_figures.r_f1 [--out-dir DIR] [--size tiny|quick|full]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures._common import CHECK_SIZES, band, draw, run_cli
from perceptron_theory import plotting
from validation import _deep, r_f1f3

# ----------------------------------------------------------------------------- constants
#: normalizers, by their names in perceptron_theory.deep.norms.NORMS
NORMS = ("none", "bn", "ln", "bmlv", "lmbv", "pre-ln", "regnorm")
SEED = 0  # first seed; the scale of the size gives the rest
JITTER = 0.06  # sideways shift between normalizers in the plots (positions)
SIZES = CHECK_SIZES  # figure size -> size of the validation check
KEYS = ("rep_corr", "rep_pearson", "grad_corr", "grad_norm")


# ------------------------------------------------------------------------------ compute
def records(check_size: str, norms=NORMS, seed: int = SEED) -> dict:
    """Propagation records at initialization, ``{norm: [probe dict per seed]}``.

    Each is the step-0 record of :func:`propagation_over_training` on
    :func:`validation.r_f1f3.config` (zero SGD steps), with the check's noise and
    minibatch size and ``mode="train"``.
    """
    from perceptron_theory.deep.probes import propagation_over_training

    s, scale = r_f1f3.SETTINGS[check_size], _deep.SCALES[check_size]
    out = {}
    device = _deep.torch_device(scale)
    with _deep.torch_threads(1 if device == "cpu" else None):
        for norm in norms:
            out[norm] = [propagation_over_training(
                r_f1f3.config(check_size, norm, sd), 0, 1, noise=r_f1f3.NOISE, n=s["n"],
                seed=sd, mode="train", device=device)["propagation"][0]
                for sd in scale.seeds(seed)]
    return out


def figure_data(check_size: str) -> dict:
    """Raw per-seed probe lists per normalizer, with the layer names and settings."""
    rec = records(check_size)
    first = rec[NORMS[0]][0]
    s = r_f1f3.SETTINGS[check_size]
    return {
        "depth": s["depth"], "width": s["width"], "n": s["n"], "noise": r_f1f3.NOISE,
        "seeds": list(_deep.SCALES[check_size].seeds(SEED)),
        "dataset": _deep.dataset_args(_deep.SCALES[check_size])["dataset"],
        "layers": first["layers"], "weight_layers": first["weight_layers"],
        "norms": {nm: {**{k: [r[k] for r in rs] for k in KEYS},
                       "grad_ratio": [r["grad_ratio"] for r in rs]}
                  for nm, rs in rec.items()},
    }


# ------------------------------------------------------------------------------- panels
def panels(d: dict, size: str) -> list[plotting.Plot]:
    D = d["depth"]
    pos = np.arange(1, len(d["layers"]) + 1)
    wl = np.arange(1, len(d["weight_layers"]) + 1)
    specs = (("rep_corr", pos,
              f"(a) representations at init, D = {D}, width {d['width']}, n = {d['n']} "
              f"({size})",
              f"position (1..{D} = norm slots, {D + 1} = embedding, {D + 2} = logits)",
              "cosine of the two copies", "linear"),
             ("grad_corr", wl, "(b) weight gradients at init",
              f"linear layer (1..{D} hidden, {D + 1} = classifier)",
              "cosine of the two copies' gradients", "linear"),
             ("grad_norm", wl, "(c) gradient norm, clean minibatch",
              f"linear layer (1..{D} hidden, {D + 1} = classifier)",
              r"$||\nabla_\theta L||$", "log"))
    out = []
    for key, x, t, xl, yl, ys in specs:
        ser = [band(nm, x + (i - (len(NORMS) - 1) / 2) * JITTER, d["norms"][nm][key])
               for i, nm in enumerate(NORMS)]
        out.append(plotting.Plot(t, xl, yl, tuple(s for s in ser if s is not None),
                                 yscale=ys))
    return out


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Probe every normalizer at initialization, draw ``r_f1.png``, write ``r_f1.json``.

    ``size``: The settings and seeds of :mod:`validation.r_f1f3` at that size: ``"tiny"``
    (depth 3, a second), ``"quick"`` (depth 10, seconds), ``"full"`` (depth 20, width 512,
    five seeds). Arguments and outputs: :func:`paper_figures._common.draw`.
    """
    return draw("r_f1", out_dir, size, figure_data, panels, ncols=3,
                constants={"norms": NORMS, "seed": SEED, "jitter": JITTER, "mode": "train",
                           "settings": r_f1f3.SETTINGS.get(SIZES.get(size, {}).get(
                               "check_size"))})


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
