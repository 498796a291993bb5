"""L-F4: fine-tune a BN-trained net with plain SGD from the folded weights (Fig. 4, App. B.2).

Claim (Luo et al. 2019, Sec. 5 "Regularization and parameter norm" and App. B.2, Fig. 4;
CIFAR-10): a net trained with BN to a local minimum is frozen, its weights folded into a
plain net, :math:`w^{sgd} = \\gamma w^{bn}/\\sigma` (running :math:`\\sigma`), and
fine-tuned with vanilla SGD at learning rate :math:`10^{-3}`. "As :math:`\\mu_B` and
:math:`\\sigma_B` are removed ... the training loss decreases while the validation loss
increases" and "the magnitudes of kernel parameters :math:`w^{sgd}` at different layers
... all increase after freezing BN, due to the release of regularization".

Measurement: :func:`perceptron_theory.deep.probes.finetune_probe` after the last training
epoch (callback), with ``control=True``: the BN net itself is trained alongside on the
same minibatches with the same optimizer, so "what releasing BN does" is separated from
"what further training does". Records, per seed (paired):

* the fold is exact: max relative deviation of the folded net's eval logits from the BN
  net's <= 1e-5 (float32);
* paper: every layer's :math:`\\lVert W_l\\rVert_F` grows (per seed the smallest
  :math:`\\Delta\\log\\lVert W_l\\rVert` over layers > 0); train loss falls; val loss
  rises;
* beyond the paper (the control): the val-loss rise and the train-loss fall are larger
  after folding than when BN is kept; and the paper's reading of the norm growth as the
  release of BN's regularization, i.e. the mean over layers of
  :math:`\\Delta\\log\\lVert W_l\\rVert` exceeds that of BN's effective weights
  :math:`\\gamma W_l/\\sigma` continued with BN.

Setup: Luo's 4conv+2fc CNN (``cnn``, BN after every conv/linear), SGD momentum 0.9, lr 0.1
at batch 128 scaled to the batch size, cosine schedule, weight decay 5e-4; then
fine-tuning at lr 1e-3 without momentum or weight decay, the same batch size. Quick: the
narrow CNN of ``_deep.CNN_OPTIONS['quick']`` on the 800-image Fashion-MNIST split, 10
epochs, 1000 fine-tuning steps, three seeds; full: the paper's CNN on all of
Fashion-MNIST, 30 epochs, 10 000 steps, five seeds.
"""

from __future__ import annotations

import functools

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, register

CLAIM = "L-F4"
TITLE = "Fine-tuning from BN with plain SGD: weight norms grow, train loss falls, val loss rises"
LABEL = "BN, then folded"
FT_LR = 1e-3  # App. B.2
FOLD_RTOL = 1e-5  # float32 logits of two algebraically equal nets
SETTINGS = {
    "tiny": dict(cnn="tiny", batch_size=16, epochs=1, steps=6, every=3, n_eval=None),
    "quick": dict(cnn="quick", batch_size=32, epochs=10, steps=1000, every=100, n_eval=None),
    "full": dict(cnn="full", batch_size=128, epochs=30, steps=10_000, every=500,
                 n_eval=5000),
}


def _size_of(config: dict) -> str:
    return next(k for k, s in SETTINGS.items()
                if config["epochs"] == s["epochs"] and config["batch_size"] == s["batch_size"])


def finetune_callback(config: dict) -> list:
    """Callback factory: :func:`finetune_probe` (with the BN control) after the last epoch,
    on the run's own data (log key ``finetune``)."""
    from perceptron_theory.deep.probes import finetune_probe, run_dataset

    s = SETTINGS[_size_of(config)]
    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        if epoch != config["epochs"]:
            return None
        return {"finetune": finetune_probe(
            model, bundle, lr=FT_LR, steps=s["steps"], every=s["every"],
            batch_size=config["batch_size"], n_eval=s["n_eval"], control=True,
            seed=config["seed"])}

    return [cb]


@functools.lru_cache(maxsize=4)
def grid(size: str, seed: int) -> _deep.Runs:
    """The BN runs of ``size`` with their fine-tuning records (``finetune`` in the last
    epoch's log)."""
    s = SETTINGS[size]
    base = dict(model="cnn", norm="bn", model_options=_deep.CNN_OPTIONS[s["cnn"]],
                batch_size=s["batch_size"], epochs=s["epochs"], lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine")
    return _deep.run_grid(base, {LABEL: {}}, _deep.SCALES[size], seed,
                          callback_factory="validation.l_f4:finetune_callback")


def records(runs: _deep.Runs) -> list[dict]:
    """The ``finetune`` probe output of every seed (None where the run diverged)."""
    out = []
    for s in runs.seeds:
        h = runs.histories[(LABEL, s)]
        out.append(None if runs.diverged[(LABEL, s)] or not h else h[-1].get("finetune"))
    return out


def _delta(ft: dict, key: str) -> float:
    return float(ft[key][-1]) - float(ft[key][0])


def _dlog_norms(ft: dict, prefix: str = "") -> np.ndarray:
    w = np.asarray(ft[f"{prefix}weight_norm"], float)
    return np.log(w[-1] / w[0])


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and App. B.2, Fig. 4")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    runs = grid(size, seed)
    fts = [ft for ft in records(runs) if ft is not None]
    if not fts:
        raise RuntimeError(f"{CLAIM}: every BN run diverged; nothing to fine-tune")
    fold = np.array([ft["fold_max_rel_err"] for ft in fts])
    dlog = [_dlog_norms(ft) for ft in fts]
    dlog_c = [_dlog_norms(ft, "control_") for ft in fts]
    d_train = np.array([_delta(ft, "train_loss") for ft in fts])
    d_val = np.array([_delta(ft, "val_loss") for ft in fts])
    d_train_c = np.array([_delta(ft, "control_train_loss") for ft in fts])
    d_val_c = np.array([_delta(ft, "control_val_loss") for ft in fts])
    min_dlog = np.array([d.min() for d in dlog])
    mean_dlog = np.array([d.mean() for d in dlog])
    mean_dlog_c = np.array([d.mean() for d in dlog_c])
    rec = _deep.sign_record
    comps = [
        _deep.bound_check(CLAIM, "fold: max |logits_folded - logits_BN| / max |logits_BN|",
                          fold, FOLD_RTOL, "<=", runs=runs,
                          note="w_sgd = gamma w_bn / sigma computes the BN net's eval function"),
        rec(CLAIM, "every layer's |W| grows: min over layers of dlog|W| > 0", min_dlog,
            "Fig. 4a-d"),
        rec(CLAIM, "train loss falls: -(train loss end - start) > 0", -d_train, "Fig. 4e"),
        rec(CLAIM, "val loss rises: val loss end - start > 0", d_val, "Fig. 4f"),
        rec(CLAIM, "beyond the paper: val-loss rise, folded SGD - BN continued > 0",
            d_val - d_val_c, "the rise comes from removing BN, not from further training"),
        rec(CLAIM, "beyond the paper: train-loss fall, folded SGD - BN continued > 0",
            d_train_c - d_train, "BN's batch noise held the training loss up"),
        rec(CLAIM, "norm growth is BN's released regularization: mean dlog|W|, folded SGD - "
            "BN's effective gamma W/sigma continued > 0", mean_dlog - mean_dlog_c,
            "the paper's reading of Fig. 4a-d; BN's effective norms are free to grow too"),
    ]
    steps = np.asarray(fts[0]["step"], float)
    layers = fts[0]["weight_layers"]

    def mean_curve(key):
        return np.nanmean(np.array([ft[key] for ft in fts], float), axis=0)

    w = np.array([ft["weight_norm"] for ft in fts], float)  # seed, record, layer
    wc = np.array([ft["control_weight_norm"] for ft in fts], float)
    norm_series = []
    for j, nm in enumerate(layers):
        norm_series.append(series(f"{nm} (SGD)", steps, (w[:, :, j] / w[:, :1, j]).mean(0)))
        norm_series.append(series(f"{nm} (BN, effective)", steps,
                                  (wc[:, :, j] / wc[:, :1, j]).mean(0)))
    plots = (
        Plot(f"{CLAIM}: |W_l| / |W_l(0)| while fine-tuning ({size})", "step", "relative norm",
             tuple(norm_series)),
        Plot(f"{CLAIM}: loss while fine-tuning ({size})", "step", "cross entropy",
             (series("train, folded SGD", steps, mean_curve("train_loss")),
              series("val, folded SGD", steps, mean_curve("val_loss")),
              series("train, BN continued", steps, mean_curve("control_train_loss")),
              series("val, BN continued", steps, mean_curve("control_val_loss")))),
    )
    pm = _deep.fmt_pm
    start_train = np.array([ft["train_loss"][0] for ft in fts])
    summary = (
        "Prediction (Luo et al. Fig. 4): fine-tuning a BN-trained net with plain SGD (lr 1e-3) "
        "from w_sgd = gamma w_bn / sigma makes every layer's weight norm grow, the training "
        "loss fall and the validation loss rise. Control (ours): the BN net continued on the "
        f"same minibatches with the same optimizer. cnn {_deep.CNN_OPTIONS[s['cnn']] or 'paper'}, "
        f"batch {s['batch_size']}, {s['epochs']} epochs of BN training (cosine, lr 0.1 at 128), "
        f"then {s['steps']} steps at lr {FT_LR:g}. {runs.describe()}. Fold error "
        f"{pm(fold)}. Train loss at the fold {pm(start_train)}; change: folded SGD "
        f"{pm(d_train)}, BN continued {pm(d_train_c)}. Val loss change: folded SGD "
        f"{pm(d_val)}, BN continued {pm(d_val_c)}. dlog|W| per layer "
        f"({', '.join(layers)}), folded SGD: "
        f"{np.round(np.mean(dlog, 0), 4).tolist()}; BN effective: "
        f"{np.round(np.mean(dlog_c, 0), 4).tolist()} (seed means).")
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)
