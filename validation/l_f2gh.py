"""L-F2gh: dropout after BN / after WN at a large batch (Luo et al. Fig. 2g,h, App. B.3).

Claim (Luo et al. 2019, Sec. 5 "BN and WN trained with dropout" and App. B.3; ResNet-18 on
CIFAR-10 at M = 1024): large-batch BN loses its regularization; "if a dropout layer with
ratio 0.1 is added after each residual block layer for M = 1024 ... the validation loss is
suppressed and accuracy increased by a great margin"; "WN can also be regularized by
dropout. We apply dropout after each WN layer with ratio 0.2 ... The accuracy increases
from 0.90 to 0.93, even close to the results of BN. Nevertheless, additional
regularization on WN still cannot make WN on par with the performance BN."

Records (final epoch, paired by seed): dropout lowers the val loss and raises the val
accuracy of large-batch BN (p = 0.1) and of WN (p = 0.2); WN + dropout stays below BN +
dropout in val accuracy (our reading of "the performance BN": BN at the same batch with its
dropout). Dropout sits after every norm slot (``dropout_placement="after-norm"``; for WN the
slot holds no layer, so the dropout follows the weight-normalized op, as in the paper).

Quick: the narrowed 4conv+2fc CNN (4, 4, 8, 8; fc 32) on an 800-image Fashion-MNIST split
with SGD batch 200 (a quarter of the training split); full: ResNet-18 at batch 1024 on all
of Fashion-MNIST. All variants use ``LR`` = 0.05 at batch 128, scaled linearly (0.078 at
200): at 0.1 (0.156) every WN run diverged. The norm-free WN CNN barely trains at the quick
scale (see L-F2cd); the notes flag it.
"""

from __future__ import annotations

from validation import _deep
from validation._core import CheckResult, register

CLAIM = "L-F2gh"
TITLE = "Dropout after BN (0.1) and after WN (0.2) at a large batch (Fig. 2g,h)"
P_BN, P_WN = 0.1, 0.2
LR = 0.05
SETTINGS = {
    "tiny": dict(model="cnn", model_options=_deep.CNN_OPTIONS["tiny"], batch_size=60,
                 epochs=2),
    "quick": dict(model="cnn", model_options=_deep.CNN_OPTIONS["quick"], batch_size=200,
                  epochs=6),
    "full": dict(model="resnet18", model_options={}, batch_size=1024, epochs=30),
}


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5, App. B.3, Fig. 2g,h")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    M = s["batch_size"]
    base = dict(model=s["model"], batch_size=M, epochs=s["epochs"], lr=LR, momentum=0.9,
                weight_decay=5e-4, schedule="luo")
    drop = {"dropout_placement": "after-norm"}
    bn, bnd = f"BN M={M}", f"BN M={M} + dropout {P_BN:g}"
    wn, wnd = f"WN M={M}", f"WN M={M} + dropout {P_WN:g}"
    variants = {
        bn: dict(norm="bn", model_options=dict(s["model_options"])),
        bnd: dict(norm="bn", model_options={**s["model_options"], "dropout": P_BN, **drop}),
        wn: dict(norm="wn", model_options=dict(s["model_options"])),
        wnd: dict(norm="wn", model_options={**s["model_options"], "dropout": P_WN, **drop}),
    }
    runs = _deep.run_grid(base, variants, _deep.SCALES[size], seed)
    o = _deep.ordering
    comps = [
        o(CLAIM, f"val loss: {bnd} < {bn}", runs, bnd, bn, "val_loss", higher_is_better=False,
          note="Luo: 'the validation loss is suppressed'"),
        o(CLAIM, f"val accuracy: {bnd} > {bn}", runs, bnd, bn, "val_acc",
          higher_is_better=True, note="Luo: 'accuracy increased by a great margin'"),
        o(CLAIM, f"val loss: {wnd} < {wn}", runs, wnd, wn, "val_loss", higher_is_better=False,
          note="Luo: 'WN can also be regularized by dropout'"),
        o(CLAIM, f"val accuracy: {wnd} > {wn}", runs, wnd, wn, "val_acc",
          higher_is_better=True, note="Luo: accuracy 0.90 -> 0.93"),
        o(CLAIM, f"val accuracy: {bnd} > {wnd}", runs, bnd, wnd, "val_acc",
          higher_is_better=True,
          note="Luo: 'still cannot make WN on par with the performance BN' (read as BN with "
               "its dropout at the same batch)"),
    ]
    plots = _deep.training_plots(CLAIM, runs)
    table = _deep.final_table(runs)
    summary = (
        f"Prediction (Luo et al. Fig. 2g,h): at a large batch, dropout after every norm slot "
        f"(p = {P_BN:g} for BN, {P_WN:g} for WN) lowers the validation loss and raises the "
        f"accuracy, and WN + dropout stays below BN. {s['model']} at batch {M} (lr {LR:g} x "
        f"{M}/128), {s['epochs']} epochs. {runs.describe()}. Final epoch (mean +- stderr): "
        f"{table}." + _deep.summary_tail(runs))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
