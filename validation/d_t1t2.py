"""D-T1/T2: no-BN + Fixup baseline, + BN, + standardization, + functional L2, + embedding L2.

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

Records (final val accuracy, paired by seed): BN, EL2 and FL2 each beat the Fixup baseline;
EL2 and FL2 beat the standardization loss; EL2 recovers at least half of BN's gain
(``acc(EL2) - (acc(BN) + acc(Fixup))/2 >= 0``, Table 1's ratio being 0.5). Mechanism, from a
callback on the validation set after the last epoch: the embedding norm
:math:`E\\lVert\\mathrm{Emb}(x)\\rVert^2/H` of EL2 and of BN is below the baseline's.

Coefficients are Table 1's (standardization 1e-7, FL2 1.0, EL2 0.5). Quick: a pre-activation
WRN-10 (one block per stage, widths 4/8/16) on an 800-image Fashion-MNIST split, cosine
schedule, batch 32 with lr 0.4 at batch 128 (0.1 actual; at lr 0.1 the Fixup baseline stays
at chance within the quick budget: train loss 2.05 after 150 steps, 1.40 at 0.4), no
augmentation; full: WRN-16-4 on all of Fashion-MNIST with flips and crops, lr 0.1, batch
128 (the paper's WRN-28-10 for 200 epochs is beyond one GPU's session).
"""

from __future__ import annotations

from validation import _deep
from validation._core import CheckResult, register

CLAIM = "D-T1/T2"
TITLE = "Fixup baseline vs + BN, + standardization, + functional L2, + embedding L2 (Tables 1-2)"
COEF = {"standardization": 1e-7, "functional-l2": 1.0, "embedding-l2": 0.5}  # Table 1
SETTINGS = {
    "tiny": dict(model_options={"depth": 10, "width": 1, "base_width": 2}, batch_size=40,
                 epochs=2, augment=False, lr=0.1),
    "quick": dict(model_options={"depth": 10, "width": 1, "base_width": 4}, batch_size=32,
                  epochs=4, augment=False, lr=0.4),
    "full": dict(model_options={"depth": 16, "width": 4}, batch_size=128, epochs=30,
                 augment=True, lr=0.1),
}
BASE, BN, STD, FL2, EL2 = ("Fixup (no BN)", "+ BN", "+ standardization", "+ functional L2",
                           "+ embedding L2")


def embedding_probe(config: dict) -> list:
    """Callback: after the last epoch, E||Emb(x)||^2 / H on the validation split (eval mode)."""
    import torch

    from perceptron_theory.deep.probes import run_dataset

    bundle = run_dataset(config)

    def probe(model, epoch, metrics):
        if epoch != config["epochs"]:
            return None
        model.eval()
        dev = next(model.parameters()).device
        total, count = 0.0, 0
        with torch.no_grad():
            for xb in bundle.val_x.split(config["eval_batch_size"]):
                e = model.features(xb.to(dev)).float()
                total += float(e.square().mean(1).sum())
                count += len(e)
        return {"embedding_sq_norm": total / max(count, 1)}

    return [probe]


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Tables 1-2, Sec. 3-4")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    fixup = {**s["model_options"], "fixup": True}
    base = dict(model="wrn", batch_size=s["batch_size"], epochs=s["epochs"], lr=s["lr"],
                momentum=0.9, weight_decay=5e-4, schedule="cosine", augment=s["augment"])
    variants = {
        BASE: dict(norm="none", model_options=fixup),
        BN: dict(norm="bn", model_options=dict(s["model_options"])),
        STD: dict(norm="none", model_options=fixup,
                  penalties={"standardization": COEF["standardization"]}),
        FL2: dict(norm="none", model_options=fixup,
                  penalties={"functional-l2": COEF["functional-l2"]}),
        EL2: dict(norm="none", model_options=fixup,
                  penalties={"embedding-l2": COEF["embedding-l2"]}),
    }
    runs = _deep.run_grid(base, variants, _deep.SCALES[size], seed,
                          callback_factory="validation.d_t1t2:embedding_probe")
    o = _deep.ordering
    comps = [
        o(CLAIM, f"val accuracy: {BN} > {BASE}", runs, BN, BASE, "val_acc",
          higher_is_better=True, note="T1: 96.1 vs 94.9; T2: 75.7 vs 73.1"),
        o(CLAIM, f"val accuracy: {EL2} > {BASE}", runs, EL2, BASE, "val_acc",
          higher_is_better=True, note="T1: 95.5 vs 94.9; T2: 76.0 vs 73.1"),
        o(CLAIM, f"val accuracy: {FL2} > {BASE}", runs, FL2, BASE, "val_acc",
          higher_is_better=True, note="T1: 95.5 vs 94.9; T2: 76.0 vs 73.1"),
        o(CLAIM, f"val accuracy: {EL2} > {STD}", runs, EL2, STD, "val_acc",
          higher_is_better=True, note="T1: 95.5 vs 95.0; T2: 76.0 vs 74.7"),
        o(CLAIM, f"val accuracy: {FL2} > {STD}", runs, FL2, STD, "val_acc",
          higher_is_better=True, note="T1: 95.5 vs 95.0; T2: 76.0 vs 74.7"),
    ]
    acc = {lab: runs.final(lab, "val_acc") for lab in runs.labels}
    half = acc[EL2] - 0.5 * (acc[BN] + acc[BASE])
    comps.append(_deep.bound_check(
        CLAIM, "EL2 recovers >= half of BN's gain: acc(EL2) - (acc(BN) + acc(Fixup))/2", half,
        0.0, ">=", runs=runs,
        note="T1: (95.5 - 94.9)/(96.1 - 94.9) = 0.5; T2: 2.9/2.6 = 1.1"))
    comps += [
        o(CLAIM, f"embedding norm E|Emb|^2/H: {EL2} < {BASE}", runs, EL2, BASE,
          "embedding_sq_norm", higher_is_better=False,
          note="mechanism (Sec. 3.1): EL2 keeps the embedding small; measured on the val split"),
        o(CLAIM, f"embedding norm E|Emb|^2/H: {BN} < {BASE}", runs, BN, BASE,
          "embedding_sq_norm", higher_is_better=False,
          note="Sec. 2.1/4.4: BN (with weight decay) already reduces the embedding norm"),
    ]
    plots = _deep.training_plots(CLAIM, runs)
    table = "; ".join(
        f"{lab}: acc {_deep.fmt_pm(acc[lab])}, val loss "
        f"{_deep.fmt_pm(runs.final(lab, 'val_loss'))}, E|Emb|^2/H "
        f"{_deep.fmt_pm(runs.final(lab, 'embedding_sq_norm'))}" for lab in runs.labels)
    summary = (
        "Prediction (Dauphin & Cubuk Tables 1-2): without BN but with Fixup, the final-layer "
        "penalties (embedding L2, functional L2) recover much of BN's accuracy gain, the "
        "standardization loss does not, and EL2 works by keeping the embedding norm small. "
        f"WRN {s['model_options']}, batch {s['batch_size']}, lr {s['lr']:g} (at 128) cosine, "
        f"{s['epochs']} epochs, coefficients {COEF}. {runs.describe()}. Final epoch (mean +- "
        f"stderr): {table}." + _deep.summary_tail(runs))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
