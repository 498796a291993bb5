"""D-F2/F3: embedding and output norms with and without BN; sweep of the EL2 coefficient.

Claims (Dauphin & Cubuk 2021, Sec. 4.2-4.3):

* Fig. 2: "a generalization gap emerge[s] later in training ... associated with larger
  growth throughout training in the norm of the final output and feature embedding for
  networks without BatchNorm" -- "BatchNorm prevents explosive growth in the
  representation from cascading to the output".
* Fig. 3: "the accuracy increases with the coefficient of functional or embedding L2. Both
  the output and feature embedding norm reduce as expected."

Records (paired by seed; ``norms`` probe on 256 validation samples, eval mode, after
every epoch; :math:`E\\lVert\\mathrm{Emb}\\rVert^2` = ``embedding_sq``,
:math:`E\\lVert NN(x)\\rVert^2` = ``output_sq``):

* F2: final embedding norm and final output norm, BN < baseline;
* F2: growth from epoch 1 to the last epoch, ``log(final/epoch 1)``, baseline > BN for
  both norms (the callback first runs after epoch 1, so "growth" starts there);
* F3: EL2 coefficients 0 < 0.05 < 0.5: embedding norm and output norm fall, validation
  accuracy rises, at each step of the sweep.

The baseline / BN / EL2 0.5 runs are those of :mod:`validation.d_t3` (same grid, cached);
one extra variant (EL2 0.05) is trained here with the same settings.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from validation import _deep, d_t3
from validation._core import CheckResult, register

CLAIM = "D-F2/F3"
TITLE = "Embedding / output norm growth with and without BN; EL2 coefficient sweep (Figs. 2-3)"
EL2_SMALL = 0.05
EL2_SMALL_LABEL = f"embedding L2 {EL2_SMALL:g}"


@functools.lru_cache(maxsize=4)
def small_el2_grid(size: str, seed: int) -> _deep.Runs:
    """The EL2-coefficient-:data:`EL2_SMALL` runs of ``size`` (cached in the process); the
    other points of the sweep are :func:`validation.d_t3.grid`'s."""
    s = d_t3.SETTINGS[size]
    base = dict(model="mlp", model_options=s["model_options"], batch_size=s["batch_size"],
                epochs=s["epochs"], lr=0.2, momentum=0.9, weight_decay=5e-4,
                schedule="constant")
    return _deep.run_grid(base, {EL2_SMALL_LABEL: dict(
        norm="none", penalties={"embedding-l2": EL2_SMALL})}, _deep.SCALES[size], seed,
        callback_factory="validation.d_t3:probes_callback")


def _growth(runs: _deep.Runs, label: str, key: str) -> np.ndarray:
    """Per seed ``log(value after the last epoch / value after epoch 1)``."""
    out = []
    for s in runs.seeds:
        h = runs.histories[(label, s)]
        try:
            out.append(math.log(float(h[-1][key]) / float(h[0][key])))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            out.append(math.nan)
    return np.array(out)


def _paired_record(quantity, a, b, runs, note=""):
    """``a - b >= 0`` per seed as a bound record."""
    return _deep.bound_check(CLAIM, quantity, np.asarray(a) - np.asarray(b), 0.0, ">=",
                             runs=runs, note=note)


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Sec. 4.2-4.3, Figs. 2-3")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    runs = d_t3.grid(size, seed)
    small = small_el2_grid(size, seed)
    base, bn, el2 = d_t3.BASE, d_t3.BN, d_t3.EL2
    o = _deep.ordering
    comps = [
        o(CLAIM, f"F2: final E|Emb|^2 {bn} < {base}", runs, bn, base, "embedding_sq",
          higher_is_better=False),
        o(CLAIM, f"F2: final E|NN(x)|^2 {bn} < {base}", runs, bn, base, "output_sq",
          higher_is_better=False),
    ]
    for key, name in (("embedding_sq", "E|Emb|^2"), ("output_sq", "E|NN(x)|^2")):
        comps.append(_paired_record(
            f"F2: growth log(last/epoch 1) of {name}: {base} > {bn}",
            _growth(runs, base, key), _growth(runs, bn, key), runs,
            note=f"per-seed growth {base} {np.round(_growth(runs, base, key), 3).tolist()}, "
                 f"{bn} {np.round(_growth(runs, bn, key), 3).tolist()}"))
    # F3 sweep: coefficient 0 (baseline), EL2_SMALL, d_t3.EL2_COEF
    sweep = [(base, runs), (EL2_SMALL_LABEL, small), (el2, runs)]
    for (lo, r_lo), (hi, r_hi) in zip(sweep[:-1], sweep[1:], strict=True):
        for key, name, higher in (("embedding_sq", "E|Emb|^2", False),
                                  ("output_sq", "E|NN(x)|^2", False),
                                  ("val_acc", "val accuracy", True)):
            a, b = r_hi.final(hi, key), r_lo.final(lo, key)
            diff = a - b if higher else b - a
            rel = "rises" if higher else "falls"
            comps.append(_paired_record(f"F3: {name} {rel} from {lo} to {hi}", diff,
                                        np.zeros_like(diff), runs))
    plots = (
        _deep.curve_plot(f"{CLAIM}: E|Emb|^2 on val ({size})", runs, "embedding_sq",
                         "E |Emb(x)|^2"),
        _deep.curve_plot(f"{CLAIM}: E|NN(x)|^2 on val ({size})", runs, "output_sq",
                         "E |NN(x)|^2"),
    )
    allr = {lab: (r, lab) for lab, r in ((base, runs), (bn, runs), (EL2_SMALL_LABEL, small),
                                         (el2, runs))}
    table = "; ".join(
        f"{lab}: E|Emb|^2 {_deep.fmt_pm(r.final(lb, 'embedding_sq'))}, E|NN|^2 "
        f"{_deep.fmt_pm(r.final(lb, 'output_sq'))}, acc {_deep.fmt_pm(r.final(lb, 'val_acc'))}"
        for lab, (r, lb) in allr.items())
    summary = (
        "Prediction (Dauphin & Cubuk Figs. 2-3): without BN the embedding and output norms grow "
        "more during training than with BN; raising the embedding-L2 coefficient lowers both "
        "norms and raises accuracy. Same MLP runs as D-T3 plus EL2 at "
        f"{EL2_SMALL:g}. {runs.describe()}. Final (mean +- stderr): {table}. Growth is measured "
        "from epoch 1 (the probe's first call). Records pass on the sign of the seed-paired "
        "mean; notes give t.")
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
