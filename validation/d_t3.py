"""D-T3: accuracy drop under 50% dropout on the embedding at test time (Table 3).

Claim (Dauphin & Cubuk 2021, Sec. 4.4 and Table 3; ResNet-50 on ImageNet, trained without
dropout): "Networks regularized with BatchNorm or embedding L2 are considerably more robust
to Dropout than the baseline" -- accuracy drop 22.8 +- 0.1 (baseline), 11.0 +- 0.3 (BN),
18.5 +- 0.1 (embedding L2) points. The mechanism (their Sec. 3.1): test-time dropout on
the embedding perturbs the logits by an amount that grows with
:math:`\\lVert\\mathrm{Emb}(x)\\rVert`, which BN and EL2 keep small.

Records (paired by seed; ``drop = acc - acc_dropout`` from
:func:`perceptron_theory.deep.probes.dropout_probe` with ``p = 0.5``, 10 masks, on the
validation split after the last epoch, eval mode):

* drop(BN) < drop(baseline);
* drop(EL2) < drop(baseline);
* mechanism: E||Emb||^2 of BN and of EL2 below the baseline's (``norms`` probe).

Setup. Quick: Annamalai's MLP narrowed to two hidden layers of 64 ReLU units (``mlp``,
``layers=2``), norm ``none`` (baseline) / ``bn`` / ``none`` + embedding L2 (coefficient 0.5,
Dauphin's Table 1), SGD momentum 0.9, lr 0.2 at batch 128 (batch 32, so 0.05 actual),
weight decay 5e-4, 3 epochs on the 800-image Fashion-MNIST split of ``_deep``'s quick
scale, three seeds. Full: 300 hidden units, all of Fashion-MNIST, 20 epochs, five seeds.

The same runs (one grid per size and seed, cached in the process) serve D-F2/F3
(:mod:`validation.d_f2f3`): the callback records the ``norms`` probe after every epoch.
"""

from __future__ import annotations

import functools

from validation import _deep
from validation._core import CheckResult, register

CLAIM = "D-T3"
TITLE = "Accuracy drop under 50% test-time dropout: baseline vs BN vs embedding L2 (Table 3)"
P_DROP = 0.5  # Table 3
MASKS = 10
EL2_COEF = 0.5  # Dauphin's Table 1 (CIFAR-10)
N_PROBE = 256  # validation samples of the norms probe
BASE, BN, EL2 = "baseline (no BN)", "BN", "embedding L2"
SETTINGS = {
    "tiny": dict(model_options={"hidden": 8, "layers": 2}, batch_size=20, epochs=2),
    "quick": dict(model_options={"hidden": 64, "layers": 2}, batch_size=32, epochs=3),
    "full": dict(model_options={"hidden": 300, "layers": 2}, batch_size=128, epochs=20),
}
#: Table 3's accuracy drops (percentage points)
PAPER_DROP = {BASE: 22.8, BN: 11.0, EL2: 18.5}


def probes_callback(config: dict) -> list:
    """Callback factory: the ``norms`` probe after every epoch (keys ``embedding_sq``,
    ``output_sq``, ``gamma_sq_mean``) and the ``dropout`` probe after the last one
    (``dropout_drop``, ``dropout_acc``), both on the validation split."""
    from perceptron_theory.deep.probes import dropout_probe, norms_probe, run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        nb = norms_probe(model, bundle, split="val", n=N_PROBE)
        g2 = [g for g in (nb["gamma_sq"] or []) if g is not None]
        out = {"embedding_sq": nb["embedding_sq"], "output_sq": nb["output_sq"],
               "gamma_sq_mean": sum(g2) / len(g2) if g2 else None}
        if epoch == config["epochs"]:
            dp = dropout_probe(model, bundle, p=P_DROP, masks=MASKS, split="val")
            out.update(dropout_drop=dp["drop"], dropout_acc=dp["acc_dropout"],
                       clean_acc=dp["acc"])
        return out

    return [cb]


@functools.lru_cache(maxsize=4)
def grid(size: str, seed: int) -> _deep.Runs:
    """Baseline / BN / EL2 runs of ``size`` with the probes callback (shared with D-F2/F3)."""
    s = SETTINGS[size]
    base = dict(model="mlp", model_options=s["model_options"], batch_size=s["batch_size"],
                epochs=s["epochs"], lr=0.2, momentum=0.9, weight_decay=5e-4,
                schedule="constant")
    variants = {BASE: dict(norm="none"), BN: dict(norm="bn"),
                EL2: dict(norm="none", penalties={"embedding-l2": EL2_COEF})}
    return _deep.run_grid(base, variants, _deep.SCALES[size], seed,
                          callback_factory="validation.d_t3:probes_callback")


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Sec. 4.4 and Table 3")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    runs = grid(size, seed)
    o = _deep.ordering
    comps = [
        o(CLAIM, f"test-time dropout accuracy drop: {BN} < {BASE}", runs, BN, BASE,
          "dropout_drop", higher_is_better=False,
          note=f"Table 3: {PAPER_DROP[BN]} vs {PAPER_DROP[BASE]} points"),
        o(CLAIM, f"test-time dropout accuracy drop: {EL2} < {BASE}", runs, EL2, BASE,
          "dropout_drop", higher_is_better=False,
          note=f"Table 3: {PAPER_DROP[EL2]} vs {PAPER_DROP[BASE]} points"),
        o(CLAIM, f"mechanism: E|Emb|^2 {BN} < {BASE}", runs, BN, BASE, "embedding_sq",
          higher_is_better=False, note="Sec. 3.1: the drop grows with the embedding norm"),
        o(CLAIM, f"mechanism: E|Emb|^2 {EL2} < {BASE}", runs, EL2, BASE, "embedding_sq",
          higher_is_better=False, note="Sec. 3.1: EL2 penalizes the embedding norm"),
    ]
    plots = (_deep.curve_plot(f"{CLAIM}: E|Emb|^2 on val ({size})", runs, "embedding_sq",
                              "E |Emb(x)|^2"),
             *_deep.training_plots(CLAIM, runs)[1:])
    s = SETTINGS[size]
    table = "; ".join(
        f"{lab}: clean acc {_deep.fmt_pm(runs.final(lab, 'clean_acc'))}, drop "
        f"{_deep.fmt_pm(runs.final(lab, 'dropout_drop'))}, E|Emb|^2 "
        f"{_deep.fmt_pm(runs.final(lab, 'embedding_sq'))}" for lab in runs.labels)
    summary = (
        "Prediction (Dauphin & Cubuk Table 3): nets trained with BN or embedding L2 lose less "
        "accuracy than the baseline when 50% dropout is applied to the embedding at test time "
        f"(22.8 / 11.0 / 18.5 points). MLP {s['model_options']}, batch {s['batch_size']}, "
        f"{s['epochs']} epochs, EL2 coefficient {EL2_COEF}; dropout p = {P_DROP}, {MASKS} "
        f"masks on the validation split. {runs.describe()}. Final (mean +- stderr): {table}."
        + _deep.summary_tail(runs))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
