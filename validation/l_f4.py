r"""L-F4: fine-tune a BN-trained net with plain SGD from the folded weights (Fig. 4, App. B.2).

Claim (Luo et al. 2019, Sec. 5 "Regularization and parameter norm" and App. B.2, Fig. 4;
CIFAR-10): a net trained with BN to a local minimum is frozen, its weights folded into a
plain net, :math:`w^{sgd} = \gamma w^{bn}/\sigma` (running :math:`\sigma`), and
fine-tuned with vanilla SGD at learning rate :math:`10^{-3}`. "As :math:`\mu_B` and
:math:`\sigma_B` are removed ... the training loss decreases while the validation loss
increases" and "the magnitudes of kernel parameters :math:`w^{sgd}` at different layers
... all increase after freezing BN, due to the release of regularization".

Headline: every layer's weight norm grows while the folded net is fine-tuned (per seed,
the smallest :math:`\Delta\log\lVert W_l\rVert` over layers is positive) -- the
section's subject, "impact of BN to the norm of parameters".

Measurement: :func:`perceptron_theory.deep.probes.finetune_probe` after the last training
epoch (callback), with ``control=True``: the BN net itself is trained alongside on the
same minibatches with the same optimizer, so "what releasing BN does" is separated from
"what further training does". Records, per seed (paired):

* exact (pass/fail): the fold is exact -- max relative deviation of the folded net's eval
  logits from the BN net's <= ``FOLD_RTOL`` = 1e-5 (float32; worst seed);
* findings, the paper: every layer's :math:`\lVert W_l\rVert_F` grows (headline);
  the train loss falls; the val loss rises;
* findings beyond the paper (the control): the val-loss rise and the train-loss fall are
  larger after folding than when BN is kept; and the paper's reading of the norm growth
  as the release of BN's regularization, i.e. the mean over layers of
  :math:`\Delta\log\lVert W_l\rVert` exceeds that of BN's effective weights
  :math:`\gamma W_l/\sigma` continued with BN.

Setup: the shared BN run of :data:`validation._deep.BASE` (Luo's 4conv+2fc narrowed to
(4, 4, 8, 8; fc 32), BN in every slot, SGD batch 128, lr 0.05, momentum 0.9, weight decay
5e-4, cosine to 0, 4 epochs on 25 000 Fashion-MNIST images; ResNet-18 is far beyond two
CPU cores, and the paper's Fig. 4 net is this CNN's family anyway); then fine-tuning at
lr 1e-3 without momentum or weight decay, batch 128, ``steps`` steps, losses on
``n_eval`` training / validation images every ``every`` steps. quick/cpu: 400 steps
(about 2.5 epochs of data; with the control the fine-tuning costs about one more base
run), every 80, n_eval 5000. full: the paper's CNN on all of Fashion-MNIST, 40 epochs,
10 000 steps. The training run is the base run's configuration with a callback, so it is
trained again here (the run store keys on the callback).

Seeds (cpu): 5, the scale default -- not from a power calculation: the paper gives no
number for Fig. 4, and the per-seed records are changes within one run whose spread we
cannot assume before a run. Cost: 5 runs of about two base runs each, ~10 base-run
equivalents. Floors: the BN run must train (val acc >= 0.85); the fine-tuning itself has
no floor (it starts from the trained net).
"""

from __future__ import annotations

import functools

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, expect, register

CLAIM = "L-F4"
TITLE = "Fine-tuning from BN with plain SGD: weight norms grow, train loss falls, val loss rises"
STATEMENT = ("fine-tuning a BN-trained net with plain SGD from the folded weights gamma w / "
             "sigma releases BN's regularization: every layer's weight norm grows, the training "
             "loss falls and the validation loss rises")
LABEL = "BN, then folded"
FT_LR = 1e-3  # App. B.2
FOLD_RTOL = 1e-5  # float32 logits of two algebraically equal nets
#: fine-tuning per size (the training run is the base run of the size)
SETTINGS = {
    "tiny": dict(steps=6, every=3, n_eval=None),
    "quick": dict(steps=400, every=80, n_eval=5000),
    "cpu": dict(steps=400, every=80, n_eval=5000),
    "full": dict(steps=10_000, every=500, n_eval=5000),
}
#: callback per size; the name is in the run store's key, so each fine-tuning setting
#: has its own (quick and cpu share theirs)
CALLBACK = {"tiny": "validation.l_f4:finetune_tiny", "quick": "validation.l_f4:finetune_cpu",
            "cpu": "validation.l_f4:finetune_cpu", "full": "validation.l_f4:finetune_full"}


def finetune_callback(config: dict, *, steps: int, every: int, n_eval: int | None) -> list:
    """Callbacks of one run: :func:`finetune_probe` (with the BN control) after the last
    epoch, on the run's own data (log key ``finetune``)."""
    from perceptron_theory.deep.probes import finetune_probe
    from perceptron_theory.deep.runs import run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        if epoch != config["epochs"]:
            return None
        return {"finetune": finetune_probe(
            model, bundle, lr=FT_LR, steps=steps, every=every,
            batch_size=config["batch_size"], n_eval=n_eval, control=True,
            seed=config["seed"])}

    return [cb]


finetune_tiny = functools.partial(finetune_callback, **SETTINGS["tiny"])
finetune_cpu = functools.partial(finetune_callback, **SETTINGS["cpu"])
finetune_full = functools.partial(finetune_callback, **SETTINGS["full"])


@functools.lru_cache(maxsize=4)
def grid(size: str, seed: int) -> _deep.Runs:
    """The BN base runs of ``size`` with their fine-tuning records (``finetune`` in the
    last epoch's log)."""
    return _deep.run_grid(_deep.base(size), {LABEL: {}}, _deep.SCALES[size], seed,
                          callback_factory=CALLBACK[size])


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


def _per_seed(recs: list, f) -> np.ndarray:
    """``f(record)`` per seed, NaN where the run diverged (a finding is then invalid)."""
    return np.array([np.nan if r is None else float(f(r)) for r in recs])


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and App. B.2, Fig. 4")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    s = SETTINGS[size]
    runs = grid(size, seed)
    recs = records(runs)
    fts = [ft for ft in recs if ft is not None]
    if not fts:
        raise RuntimeError(f"{CLAIM}: every BN run diverged; nothing to fine-tune")
    fold = np.array([ft["fold_max_rel_err"] for ft in fts])
    dlog = [_dlog_norms(ft) for ft in fts]
    dlog_c = [_dlog_norms(ft, "control_") for ft in fts]
    d_train = _per_seed(recs, lambda ft: _delta(ft, "train_loss"))
    d_val = _per_seed(recs, lambda ft: _delta(ft, "val_loss"))
    d_train_c = _per_seed(recs, lambda ft: _delta(ft, "control_train_loss"))
    d_val_c = _per_seed(recs, lambda ft: _delta(ft, "control_val_loss"))
    min_dlog = _per_seed(recs, lambda ft: _dlog_norms(ft).min())
    mean_dlog = _per_seed(recs, lambda ft: _dlog_norms(ft).mean())
    mean_dlog_c = _per_seed(recs, lambda ft: _dlog_norms(ft, "control_").mean())
    where = f"seeds {list(runs.seeds)}; size {size}."

    def rec(quantity, diffs, note, headline=False):
        return _deep.sign_record(CLAIM, quantity, diffs, f"{note}; {where}", runs=runs,
                                 headline=headline)

    comps = [
        rec("every layer's |W| grows: min over layers of dlog|W| > 0", min_dlog,
            "Fig. 4a-d: 'All of them increase after freezing BN'", headline=True),
        expect(CLAIM, "fold: max |logits_folded - logits_BN| / max |logits_BN| (worst seed)",
               FOLD_RTOL, float(fold.max()), "<=",
               note=f"w_sgd = gamma w_bn / sigma computes the BN net's eval function; float32 "
                    f"allowance {FOLD_RTOL:g}; per seed {np.round(fold, 9).tolist()}; {where}"),
        rec("train loss falls: -(train loss end - start) > 0", -d_train, "Fig. 4e"),
        rec("val loss rises: val loss end - start > 0", d_val, "Fig. 4f"),
        rec("beyond the paper: val-loss rise, folded SGD - BN continued > 0",
            d_val - d_val_c, "the rise comes from removing BN, not from further training"),
        rec("beyond the paper: train-loss fall, folded SGD - BN continued > 0",
            d_train_c - d_train, "BN's batch noise held the training loss up"),
        rec("norm growth is BN's released regularization: mean dlog|W|, folded SGD - "
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
    b = _deep.base(size)
    start_train = np.array([ft["train_loss"][0] for ft in fts])
    summary = (
        "Prediction (Luo et al. Fig. 4): fine-tuning a BN-trained net with plain SGD (lr 1e-3) "
        "from w_sgd = gamma w_bn / sigma makes every layer's weight norm grow, the training "
        "loss fall and the validation loss rise. Control (ours): the BN net continued on the "
        f"same minibatches with the same optimizer. The base BN run ({b['model']} "
        f"{b['model_options']}, batch {b['batch_size']}, {b['epochs']} epochs, cosine, lr "
        f"{b['lr']:g}), then {s['steps']} steps at lr {FT_LR:g}. {runs.describe()}. Fold error "
        f"{pm(fold)}. Train loss at the fold {pm(start_train)}; change: folded SGD "
        f"{pm(d_train)}, BN continued {pm(d_train_c)}. Val loss change: folded SGD "
        f"{pm(d_val)}, BN continued {pm(d_val_c)}. dlog|W| per layer "
        f"({', '.join(layers)}), folded SGD: "
        f"{np.round(np.mean(dlog, 0), 5).tolist()}; BN effective: "
        f"{np.round(np.mean(dlog_c, 0), 5).tolist()} (seed means).")
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
