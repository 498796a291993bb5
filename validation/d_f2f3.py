"""D-F2/F3: embedding and output norms with and without BN; sweep of the EL2 coefficient.

Claims (Dauphin & Cubuk 2021, Sec. 4.2-4.3):

* Fig. 2: "a generalization gap emerge[s] later in training ... associated with larger
  growth throughout training in the norm of the final output and feature embedding for
  networks without BatchNorm" -- "BatchNorm prevents explosive growth in the
  representation from cascading to the output".
* Fig. 3: "the accuracy increases with the coefficient of functional or embedding L2. Both
  the output and feature embedding norm reduce as expected."

Headline: the growth of the embedding norm during training is larger without BN --
per seed, ``log(E|Emb|^2 after the last epoch / after epoch 1)`` of no BN minus that of
BN, positive when the claim holds (the callback first runs after epoch 1, so "growth"
starts there). ``norms`` probe on 1000 validation samples, eval mode, after every epoch
(:math:`E\\lVert\\mathrm{Emb}\\rVert^2` = ``embedding_sq``, :math:`E\\lVert NN(x)\\rVert^2`
= ``output_sq``).

Secondary: the same growth of the output norm; final embedding and output norms BN < no
BN (log scale); Fig. 3 (cpu, full): EL2 coefficients 0 < 0.05 < 0.5, at each step the
embedding and output norms fall and the validation accuracy rises.

Arms (:mod:`validation._dauphin`): no BN, BN, no BN + EL2 0.05, no BN + EL2 0.5 on the
shared CNN run of :func:`validation._deep.base` (the paper's WRN-28-10 / ResNet-50 are
beyond two CPU cores; no Fixup below full, see :mod:`validation._dauphin`); the WRN-16-4
family at full. quick: no BN and BN, one seed (the same 2 base runs as D-T3's quick);
cpu: all four arms, 3 seeds (12 base runs, of which only the 3 EL2-0.05 runs are not
shared with D-T3). Floor: every arm at Fashion-MNIST val accuracy >= 0.85 (the claim is
about trained nets: the gap "emerges later in training").

Seeds (cpu): Fig. 2 shows the no-BN embedding norm growing by orders of magnitude more
than BN's; even a growth difference of 0.5 in log against an assumed per-seed spread of
0.3 gives ceil((2 x 0.3 / 0.5)^2) = 2 seeds, so the minimum 3 of
:func:`~validation._deep.seeds_for_power`.
"""

from __future__ import annotations

import math

import numpy as np

from validation import _dauphin, _deep
from validation._core import CheckResult, register

CLAIM = "D-F2/F3"
TITLE = "Embedding / output norm growth with and without BN; EL2 coefficient sweep (Figs. 2-3)"
STATEMENT = ("Without BatchNorm the feature-embedding and output norms grow much more during "
             "training; raising the embedding-L2 coefficient lowers both norms and raises "
             "accuracy")
BASE, BN = _dauphin.NO_BN, _dauphin.BN
EL2_SMALL, EL2_SMALL_LABEL = _dauphin.EL2_SMALL, _dauphin.EL2_SMALL_LABEL
EL2 = _dauphin.EL2
SWEEP = (BASE, EL2_SMALL_LABEL, EL2)  # coefficients 0, 0.05, 0.5
ALL = (BASE, BN, EL2_SMALL_LABEL, EL2)
ARMS = {"tiny": ALL, "quick": (BASE, BN), "cpu": ALL, "full": ALL}
N_SEEDS = {"cpu": 3}
NORMS = (("embedding_sq", "E|Emb|^2"), ("output_sq", "E|NN(x)|^2"))


def small_el2_grid(size: str, seed: int) -> _deep.Runs:
    """The EL2-coefficient-:data:`EL2_SMALL` runs of ``size`` (the other points of the
    sweep are :func:`validation.d_t3.grid`'s)."""
    return _dauphin.grid((EL2_SMALL_LABEL,), size, seed, n_seeds=N_SEEDS.get(size))


def growth(runs: _deep.Runs, label: str, key: str) -> np.ndarray:
    """Per seed ``log(value after the last epoch / value after epoch 1)`` (NaN where a
    value is missing or not positive)."""
    out = []
    for s in runs.seeds:
        h = runs.histories[(label, s)]
        try:
            first, last = float(h[0][key]), float(h[-1][key])
            ok = not runs.diverged[(label, s)] and first > 0 and last > 0
            out.append(math.log(last / first) if ok else math.nan)
        except (IndexError, KeyError, TypeError, ValueError):
            out.append(math.nan)
    return np.array(out)


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Sec. 4.2-4.3, Figs. 2-3")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    runs = _dauphin.grid(ARMS[size], size, seed, n_seeds=N_SEEDS.get(size))
    comps = []
    for key, name in NORMS:
        g_base, g_bn = growth(runs, BASE, key), growth(runs, BN, key)
        comps.append(_deep.sign_record(
            CLAIM, f"F2: growth log(last/epoch 1) of {name}: {BASE} > {BN}", g_base - g_bn,
            f"per-seed growth {BASE} {np.round(g_base, 3).tolist()}, {BN} "
            f"{np.round(g_bn, 3).tolist()} (seeds {list(runs.seeds)}); size {size}.",
            runs=runs, arms=(BASE, BN), headline=key == "embedding_sq"))
    for key, name in NORMS:
        comps.append(_deep.ordering(CLAIM, f"F2: final {name} {BN} < {BASE}", runs, BN, BASE,
                                    key, higher_is_better=False, transform=np.log,
                                    note="log scale"))
    if all(lab in runs.labels for lab in SWEEP):
        for lo, hi in zip(SWEEP[:-1], SWEEP[1:], strict=True):
            for key, name, higher in (*((k, n, False) for k, n in NORMS),
                                      ("val_acc", "val accuracy", True)):
                rel = "rises" if higher else "falls"
                comps.append(_deep.ordering(
                    CLAIM, f"F3: {name} {rel} from {lo} to {hi}", runs, hi, lo, key,
                    higher_is_better=higher, transform=None if higher else np.log,
                    note="" if higher else "log scale"))
    plots = (
        _deep.curve_plot(f"{CLAIM}: E|Emb|^2 on val ({size})", runs, "embedding_sq",
                         "E |Emb(x)|^2"),
        _deep.curve_plot(f"{CLAIM}: E|NN(x)|^2 on val ({size})", runs, "output_sq",
                         "E |NN(x)|^2"),
        _deep.curve_plot(f"{CLAIM}: val accuracy ({size})", runs, "val_acc", "accuracy"),
    )
    table = "; ".join(
        f"{lab}: E|Emb|^2 {_deep.fmt_pm(runs.final(lab, 'embedding_sq'))}, E|NN|^2 "
        f"{_deep.fmt_pm(runs.final(lab, 'output_sq'))}, acc "
        f"{_deep.fmt_pm(runs.final(lab, 'val_acc'))}" for lab in runs.labels)
    summary = (
        "Prediction (Dauphin & Cubuk Figs. 2-3): without BN the embedding and output norms "
        "grow more during training than with BN; raising the embedding-L2 coefficient "
        f"lowers both norms and raises accuracy. Arms on {_dauphin.describe_family(size)}. "
        f"{runs.describe()}. Final (mean +- stderr): {table}. Growth is measured from "
        "epoch 1 (the probe's first call).")
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
