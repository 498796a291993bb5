"""D-T3: accuracy drop under 50% dropout on the embedding at test time (Table 3).

Claim (Dauphin & Cubuk 2021, Sec. 4.4 and Table 3; ResNet-50 on ImageNet, trained without
dropout): "Networks regularized with BatchNorm or embedding L2 are considerably more robust
to Dropout than the baseline" -- accuracy drop 22.8 +- 0.1 (baseline), 11.0 +- 0.3 (BN),
18.5 +- 0.1 (embedding L2) points. The mechanism (their Sec. 3.1): test-time dropout on
the embedding perturbs the logits by an amount that grows with
:math:`\\lVert\\mathrm{Emb}(x)\\rVert`, which BN and EL2 keep small.

Headline: drop(BN) < drop(no BN), paired by seed. ``drop = acc - acc_dropout`` from
:func:`perceptron_theory.deep.probes.dropout_probe` (p = 0.5, 10 masks, all validation
images, eval mode, after the last epoch). Secondary: drop(EL2) < drop(no BN); mechanism:
:math:`E\\lVert\\mathrm{Emb}\\rVert^2` of BN and of EL2 below no BN's (log scale).

Arms (:mod:`validation._dauphin`): no BN, BN, no BN + embedding L2 0.5 (Table 1's
coefficient) on the shared CNN run of :func:`validation._deep.base` (the paper's ResNet-50
is beyond two CPU cores; below full the He-initialized CNN takes the place of the Fixup
baseline -- see :mod:`validation._dauphin`); at full the WRN-16-4 family (no BN = Fixup).
quick: no BN and BN, one seed (2 base runs, shared with D-F2/F3 and D-eq1); cpu: all
three arms, 3 seeds (9 base runs, all shared with D-T1/T2, D-F2/F3, D-eq1, D-single).
Floor: every arm at Fashion-MNIST val accuracy >= 0.85.

Seeds (cpu) by :func:`~validation._deep.seeds_for_power`: Table 3 has BN cut the
baseline's drop by (22.8 - 11.0)/22.8 = 52%; for a baseline drop of at least 5 points
(assumed before any run) that is an effect >= 0.026 in accuracy, against the paired
spread ``SD_ACC`` = 0.0065: ceil((2 x 0.0065 / 0.026)^2) = 1, so the minimum 3. (EL2's cut,
19%, is >= 0.0095 at that drop: ceil((2 x 0.0065 / 0.0095)^2) = 2, also 3.)

``probes_callback`` below is the old MLP callback, kept unchanged for L-F2ef, whose runs
the run store keys on it; the Dauphin arms use :func:`validation._dauphin.probes_callback`.
"""

from __future__ import annotations

import numpy as np

from validation import _dauphin, _deep
from validation._core import CheckResult, register

CLAIM = "D-T3"
TITLE = "Accuracy drop under 50% test-time dropout: no BN vs BN vs embedding L2 (Table 3)"
STATEMENT = ("Networks trained with BatchNorm or embedding L2 lose much less accuracy than "
             "the baseline when 50% dropout is applied to the embedding at test time")
P_DROP, MASKS, EL2_COEF = _dauphin.P_DROP, _dauphin.MASKS, _dauphin.EL2_COEF
N_PROBE = 256  # validation samples of the norms probe of probes_callback (L-F2ef)
BASE, BN, EL2 = _dauphin.NO_BN, _dauphin.BN, _dauphin.EL2
LABELS = (BASE, BN, EL2)
#: arms per size (quick: the headline pair) and cpu seeds (module docstring)
ARMS = {"tiny": LABELS, "quick": (BASE, BN), "cpu": LABELS, "full": LABELS}
N_SEEDS = {"cpu": 3}
#: the shared SGD run per size (the arms' overrides are in validation._dauphin.ARMS)
SETTINGS = {size: _deep.base(size) for size in _deep.SIZES}
#: Table 3's accuracy drops (percentage points)
PAPER_DROP = {BASE: 22.8, BN: 11.0, EL2: 18.5}


def probes_callback(config: dict) -> list:
    """Callback factory of L-F2ef's runs (kept as it was: the run store keys on it): the
    ``norms`` probe after every epoch (keys ``embedding_sq``, ``output_sq``,
    ``gamma_sq_mean``) and the ``dropout`` probe after the last one (``dropout_drop``,
    ``dropout_acc``), both on the validation split."""
    from perceptron_theory.deep.runs import run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        return _dauphin.norms_and_dropout(model, bundle, epoch == config["epochs"], N_PROBE)

    return [cb]


def grid(size: str, seed: int, labels=LABELS) -> _deep.Runs:
    """The runs of ``labels`` (default all three arms) at ``size`` (cpu: 3 seeds), shared
    with the other Dauphin checks (:func:`validation._dauphin.grid`)."""
    return _dauphin.grid(labels, size, seed, n_seeds=N_SEEDS.get(size))


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Sec. 4.4 and Table 3")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    runs = grid(size, seed, ARMS[size])
    o = _deep.ordering
    comps = [o(CLAIM, f"test-time dropout accuracy drop: {BN} < {BASE}", runs, BN, BASE,
               "dropout_drop", higher_is_better=False, headline=True,
               note=f"Table 3: {PAPER_DROP[BN]} vs {PAPER_DROP[BASE]} points")]
    if EL2 in runs.labels:
        comps.append(o(CLAIM, f"test-time dropout accuracy drop: {EL2} < {BASE}", runs, EL2,
                       BASE, "dropout_drop", higher_is_better=False,
                       note=f"Table 3: {PAPER_DROP[EL2]} vs {PAPER_DROP[BASE]} points"))
    for lab in (BN, EL2):
        if lab in runs.labels:
            comps.append(o(CLAIM, f"mechanism: E|Emb|^2 {lab} < {BASE}", runs, lab, BASE,
                           "embedding_sq", higher_is_better=False, transform=np.log,
                           note="log scale; Sec. 3.1: the drop grows with the embedding "
                                "norm"))
    plots = (_deep.curve_plot(f"{CLAIM}: E|Emb|^2 on val ({size})", runs, "embedding_sq",
                              "E |Emb(x)|^2"),
             *_deep.training_plots(CLAIM, runs)[1:])
    table = "; ".join(
        f"{lab}: clean acc {_deep.fmt_pm(runs.final(lab, 'clean_acc'))}, drop "
        f"{_deep.fmt_pm(runs.final(lab, 'dropout_drop'))}, E|Emb|^2 "
        f"{_deep.fmt_pm(runs.final(lab, 'embedding_sq'))}" for lab in runs.labels)
    summary = (
        "Prediction (Dauphin & Cubuk Table 3): nets trained with BN or embedding L2 lose less "
        "accuracy than the baseline when 50% dropout is applied to the embedding at test time "
        f"(22.8 / 11.0 / 18.5 points on ResNet-50). Arms on {_dauphin.describe_family(size)}; "
        f"EL2 coefficient {EL2_COEF:g}; dropout p = {P_DROP:g}, {MASKS} masks on the "
        f"validation split. {runs.describe()}. Final (mean +- stderr): {table}.")
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
