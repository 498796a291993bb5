"""D-T1/T2: no-BN baseline, + BN, + standardization, + functional L2, + embedding L2.

Claim (Dauphin & Cubuk 2021, Tables 1-2 and Sec. 4.3; WRN-28-10 on CIFAR-10, ResNet-50 on
ImageNet; accuracy %):

=====================================  ==============  ============
method                                 CIFAR-10 (T1)   ImageNet (T2)
=====================================  ==============  ============
baseline (no BN, Fixup)                94.9            73.1
+ BatchNorm                            96.1            75.7
+ standardizing loss                   95.0 (1e-7)     74.7 (1e-5)
+ functional L2                        95.5 (1.0)      76.0 (0.4)
+ embedding L2                         95.5 (0.5)      76.0 (1)
=====================================  ==============  ============

"Embedding and functional L2 ... recover a large part of BatchNorm's generalization boost"
(half of it on CIFAR-10, all of it on ImageNet), better than the standardization loss, by
keeping the norm of the feature embedding small (Sec. 3.1, 4.4).

Headline: val accuracy, no BN + embedding L2 > no BN (paired by seed). Secondary: BN and
FL2 beat the baseline; EL2 and FL2 beat the standardization loss; EL2 recovers at least
half of BN's gain (``acc(EL2) - (acc(BN) + acc(no BN))/2 >= 0``, Table 1's ratio being
0.5); mechanism: :math:`E\\lVert\\mathrm{Emb}\\rVert^2` (1000 validation samples after
the last epoch, log scale) of EL2 and of BN below the baseline's.

Arms (:mod:`validation._dauphin`), coefficients of Table 1 (standardization 1e-7, FL2
1.0, EL2 0.5). Below full they are built on the shared CNN run of
:func:`validation._deep.base`: WRN-28-10 and ResNet-50 are beyond two CPU cores, and no
residual net fits the budget (pilots in :mod:`validation._dauphin`: Fixup WRN-10s at
0.80-0.82 val accuracy after the base SGD, under the 0.85 floor, at 1.2-2 base runs each),
so the baseline is the He-initialized CNN without BN, not a Fixup net (Fixup needs
residual branches). At full: WRN-16-4 with Fixup in the no-BN arms, the paper's family.
quick: no BN and EL2, one seed (2 base runs, shared with D-T3 / D-F2/F3 / D-single);
cpu: all five arms, 3 seeds (15 base runs; no BN, BN and EL2 are shared with D-T3, so 6
new). Floor: every arm at Fashion-MNIST val accuracy >= 0.85.

Seeds (cpu) by :func:`~validation._deep.seeds_for_power`: EL2 cuts the baseline's error
by 0.6/5.1 = 12% (T1) and 2.9/26.9 = 11% (T2); at our error of about 0.12 (assumed
before any run) 11% is 0.013 in accuracy, against the paired spread ``SD_ACC`` = 0.0065:
ceil((2 x 0.0065 / 0.013)^2) = 1, so the minimum 3.
"""

from __future__ import annotations

import numpy as np

from validation import _dauphin, _deep
from validation._core import CheckResult, register

CLAIM = "D-T1/T2"
TITLE = "No-BN baseline vs + BN, + standardization, + functional L2, + embedding L2 (Tables 1-2)"
STATEMENT = ("Without BatchNorm, embedding L2 and functional L2 on the final layer recover a "
             "large part of BatchNorm's accuracy gain over the (Fixup) baseline, more than the "
             "standardization loss")
COEF = {"standardization": _dauphin.STD_COEF, "functional-l2": _dauphin.FL2_COEF,
        "embedding-l2": _dauphin.EL2_COEF}  # Table 1
BASE, BN, STD, FL2, EL2 = (_dauphin.NO_BN, _dauphin.BN, _dauphin.STD, _dauphin.FL2,
                           _dauphin.EL2)
ALL = (BASE, BN, STD, FL2, EL2)
ARMS = {"tiny": ALL, "quick": (BASE, EL2), "cpu": ALL, "full": ALL}
N_SEEDS = {"cpu": 3}


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Tables 1-2, Sec. 3-4")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    runs = _dauphin.grid(ARMS[size], size, seed, n_seeds=N_SEEDS.get(size))
    has = set(runs.labels)
    o = _deep.ordering
    comps = [o(CLAIM, f"val accuracy: {EL2} > {BASE}", runs, EL2, BASE, "val_acc",
               higher_is_better=True, headline=True, note="T1: 95.5 vs 94.9; T2: 76.0 vs 73.1")]
    for better, worse, note in ((BN, BASE, "T1: 96.1 vs 94.9; T2: 75.7 vs 73.1"),
                                (FL2, BASE, "T1: 95.5 vs 94.9; T2: 76.0 vs 73.1"),
                                (EL2, STD, "T1: 95.5 vs 95.0; T2: 76.0 vs 74.7"),
                                (FL2, STD, "T1: 95.5 vs 95.0; T2: 76.0 vs 74.7")):
        if {better, worse} <= has:
            comps.append(o(CLAIM, f"val accuracy: {better} > {worse}", runs, better, worse,
                           "val_acc", higher_is_better=True, note=note))
    if {BN, EL2} <= has:
        acc = {lab: runs.final(lab, "val_acc") for lab in (BASE, BN, EL2)}
        comps.append(_deep.bound_check(
            CLAIM, "EL2 recovers >= half of BN's gain: acc(EL2) - (acc(BN) + acc(no BN))/2",
            acc[EL2] - 0.5 * (acc[BN] + acc[BASE]), 0.0, ">=", runs=runs, arms=(BASE, BN, EL2),
            note="T1: (95.5 - 94.9)/(96.1 - 94.9) = 0.5; T2: 2.9/2.6 = 1.1"))
    for lab, note in ((EL2, "mechanism (Sec. 3.1): EL2 keeps the embedding small"),
                      (BN, "Sec. 2.1/4.4: BN (with weight decay) already reduces it")):
        if lab in has:
            comps.append(o(CLAIM, f"E|Emb|^2 on val: {lab} < {BASE}", runs, lab, BASE,
                           "embedding_sq", higher_is_better=False, transform=np.log,
                           note=f"log scale; {note}"))
    plots = _deep.training_plots(CLAIM, runs)
    table = "; ".join(
        f"{lab}: acc {_deep.fmt_pm(runs.final(lab, 'val_acc'))}, val loss "
        f"{_deep.fmt_pm(runs.final(lab, 'val_loss'))}, E|Emb|^2 "
        f"{_deep.fmt_pm(runs.final(lab, 'embedding_sq'))}" for lab in runs.labels)
    summary = (
        "Prediction (Dauphin & Cubuk Tables 1-2): without BN (Fixup-initialized in the paper), "
        "the final-layer penalties (embedding L2, functional L2) recover much of BN's accuracy "
        "gain, the standardization loss does not, and EL2 works by keeping the embedding norm "
        f"small. Arms on {_dauphin.describe_family(size)}; coefficients {COEF}. "
        f"{runs.describe()}. Final epoch (mean +- stderr): {table}.")
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
