"""L-F2ef: BN at one layer, gamma^2 and validation loss against the batch size (Fig. 2e,f).

Claim (Luo et al. 2019, Sec. 5 "Batch size" and Fig. 2e,f): BN's regularization strength
:math:`\\zeta` falls as the batch size :math:`M` grows (the noise of :math:`\\mu_B,
\\sigma_B` shrinks like :math:`1/M`), so with BN at a single layer the learned scale
:math:`\\gamma^2` of that layer *grows with M* (weaker decay on :math:`\\gamma`) and the
validation loss grows with it (worse generalization at large batch).

Records (paired by seed, per-run :math:`\\overline{\\gamma^2}` of the one BN layer from
the ``norms`` probe after the last epoch): for consecutive batch sizes :math:`M_1 < M_2`,
:math:`\\gamma^2(M_2) > \\gamma^2(M_1)`; and val loss at the largest M > at the smallest.

Setup: Annamalai's one-hidden-layer MLP (``mlp``, BN after the single hidden layer: BN "at
one layer"), 64 units at quick scale; SGD momentum 0.9, lr 0.1 at batch 128 scaled
linearly with M (the package's convention, as Luo et al. do), weight decay 5e-4 (which
also decays gamma), the same number of epochs for every M. Quick: M in (8, 32, 128), 10
epochs on a 4000-image Fashion-MNIST training split (pool 6000, a third held out), three
seeds; full: M in (32, 128, 512, 2048) on all of Fashion-MNIST, 30 epochs.

Design history. The first quick setup (800 training images, 4 epochs) gave M = 128 only
24 SGD steps in all: gamma could barely leave its initial 1, and the measured order was
the reverse of the claim (gamma^2 falling with M), a statement about training length,
not about BN's noise. The quick pool was enlarged to 6000 and the epochs to 10 (M = 128:
310 steps); the records and their pass rule did not change. At this size M = 8 reaches a
gamma^2 plateau while M = 32 and 128 are still rising at the last epoch, which the note
shows through the per-epoch curve.
"""

from __future__ import annotations

import functools

import numpy as np

from validation import _deep
from validation._core import CheckResult, register

CLAIM = "L-F2ef"
TITLE = "BN at one layer: gamma^2 and validation loss grow with the batch size (Fig. 2e,f)"
SETTINGS = {
    "tiny": dict(hidden=8, batch_sizes=(8, 32), epochs=2),
    "quick": dict(hidden=64, batch_sizes=(8, 32, 128), epochs=10, pool=6000),
    "full": dict(hidden=300, batch_sizes=(32, 128, 512, 2048), epochs=30),
}


def label(m: int) -> str:
    return f"M={m}"


@functools.lru_cache(maxsize=4)
def grid(size: str, seed: int) -> _deep.Runs:
    """One run per batch size of ``SETTINGS[size]`` and seed (cached in the process; shared
    with :mod:`paper_figures.l_f2ef`)."""
    s = SETTINGS[size]
    base = dict(model="mlp", norm="bn", model_options={"hidden": s["hidden"], "layers": 1},
                epochs=s["epochs"], lr=0.1, momentum=0.9, weight_decay=5e-4,
                schedule="constant")
    if "pool" in s:
        base["subset"] = s["pool"]
    variants = {label(m): dict(batch_size=m) for m in s["batch_sizes"]}
    return _deep.run_grid(base, variants, _deep.SCALES[size], seed,
                          callback_factory="validation.d_t3:probes_callback")


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and Fig. 2e,f")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    runs = grid(size, seed)
    ms = s["batch_sizes"]
    comps = [_deep.ordering(CLAIM, f"gamma^2: {label(hi)} > {label(lo)}", runs, label(hi),
                            label(lo), "gamma_sq_mean", higher_is_better=True)
             for lo, hi in zip(ms[:-1], ms[1:], strict=True)]
    comps.append(_deep.ordering(CLAIM, f"val loss: {label(ms[-1])} > {label(ms[0])}", runs,
                                label(ms[0]), label(ms[-1]), "val_loss",
                                higher_is_better=False))
    plots = (_deep.curve_plot(f"{CLAIM}: gamma^2 of the BN layer ({size})", runs,
                              "gamma_sq_mean", "mean gamma^2"),
             *_deep.training_plots(CLAIM, runs)[:2])
    table = "; ".join(
        f"{lab}: gamma^2 {_deep.fmt_pm(runs.final(lab, 'gamma_sq_mean'))}, val loss "
        f"{_deep.fmt_pm(runs.final(lab, 'val_loss'))}, train loss "
        f"{_deep.fmt_pm(runs.final(lab, 'train_loss'))}" for lab in runs.labels)
    summary = (
        "Prediction (Luo et al. Fig. 2e,f): with BN at one layer, gamma^2 of that layer and the "
        "validation loss grow with the batch size M (zeta ~ 1/M). MLP with one BN hidden layer "
        f"of {s['hidden']} units, lr 0.1 at batch 128 scaled with M, {s['epochs']} epochs for "
        f"every M. {runs.describe()}"
        + (f" (pool {s['pool']} for this check)" if "pool" in s else "")
        + f". Final (mean +- stderr): {table}. gamma^2 over the last three epochs (seed "
        "means; a plateau or still rising): "
        + "; ".join(f"{lab}: {np.round(runs.curve(lab, 'gamma_sq_mean')[1][-3:], 4).tolist()}"
                    for lab in runs.labels) + "."
        + _deep.summary_tail(runs))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
