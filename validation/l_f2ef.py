r"""L-F2ef: BN at one layer, gamma^2 and validation loss against the batch size (Fig. 2e,f).

Claim (Luo et al. 2019, Sec. 5 "Batch size" and Fig. 2e,f): BN's regularization strength
:math:`\zeta` falls as the batch size :math:`M` grows (Theorem 1: :math:`\zeta \approx
\frac{\rho+2}{8M} I(\gamma) + \frac{1}{2M}\overline{A''}`), so with BN at a single layer
"the values of :math:`\gamma^2` increase along with the batch size M due to the weaker
regularization for the larger batches. The increase of :math:`\gamma^2` also makes all
validation losses increased".

Headline: the mean :math:`\gamma^2` of the one BN layer after training is larger at the
largest M than at the smallest (per seed, in :math:`\log\gamma^2`).

Setup. The shared CNN of :data:`validation._deep.BASE` (4conv+2fc narrowed to (4, 4, 8,
8; fc 32), SGD batch 128, lr 0.05, momentum 0.9, weight decay 5e-4 -- which also decays
gamma -- cosine, 4 epochs, 25 000 training images; ResNet-18 is far beyond two CPU
cores) with BN at one layer only, the fc layer (``single_bn_at_embedding``: every conv
slot norm-free). The paper varies the SGD batch (lr scaled with it); we vary the
*normalization* batch only: ghost BN (Hoffer et al. 2017) over chunks of M of the same
SGD batch of 128, plain BN for M = 128. Theorem 1's M is the batch the statistics come
from; keeping the SGD batch, learning rate and number of steps fixed removes the two
confounders of the paper's design -- SGD noise, and training length (an earlier session
of this check, with the SGD batch varied on a small split, measured gamma^2 *falling*
with M because the large-M runs had too few steps for gamma to leave its initial 1).
Batch sizes: quick (16, 128), the headline pair; cpu (16, 32, 128); full the paper's
CNN, (16, 32, 64, 128), 40 epochs on all of Fashion-MNIST. One seed at quick.

Theory beside the deep net (finding). Theorem 1 says BN = PN + :math:`\zeta(h)\gamma^2`
with :math:`\zeta \propto 1/M`. On every trained net (callback, after the last epoch) we
measure BN's implicit penalty directly: with the trained weights fixed, the training
loss with the one BN layer normalizing by the statistics of random batches of M
training images, minus the loss with the population statistics of the same images,

.. math::

    R(M) = E_{\text{batches}}\big[\ell_{BN,M}\big] - \ell_{PN},

averaged over 20 random partitions of 10 000 training images into batches, at two
evaluation sizes M = (32, 128) (:data:`EVAL`; the trained weights do not change, so this
costs one forward pass and no training). The theory's number is
:func:`perceptron_theory.theory.batchnorm.zeta_theorem1` on the same activations
(per channel c of the BN layer's input h, curvature :math:`A'' = \mathrm{sigmoid}(\gamma_c
\hat h + \beta_c)` -- Luo's App. C.2/C.4 single-layer ReLU form), summed as
:math:`P(M) = \sum_c \zeta_c(M)\gamma_c^2` (loss convention ``theorem1``: unhalved cross
entropy + :math:`\zeta\gamma^2`, factor 1). Quantity compared: the ratio
:math:`R(32)/R(128)` against :math:`P(32)/P(128)` of Theorem 1 (leading order in 1/M,
which makes it 128/32 = 4 whatever the activations; the exact-Gaussian-moment value,
``moments="gaussian-exact"``, is reported beside it). The absolute :math:`P(M)` rests on
the curvature approximation and is reported, not tested. Rule, fixed before any run: per
seed, :math:`d = \log(1.25) - |\overline{\log(R(32)/R(128)) - \log(P(32)/P(128))}|` (mean
over the arms), i.e. positive when the measured ratio is within a factor 1.25 of
Theorem 1's; ``confirmed`` when consistently inside (t >= 2), ``contradicted`` when
consistently outside; ``invalid`` where R changes sign between the two M (no ratio). The
margin 1.25 holds the O(1/M) corrections the theorem drops at M = 32 (independence model
with exact Gaussian moments: up to +20%; real batches, the sample inside its own batch,
~1%: ``theory.batchnorm.linear_decay_parts``, ``real_batch_shrinkage``). Both the
first-order term :math:`R_f` that Theorem 1 leaves out (zero only at a PN-stationary
gamma; for real batches a :math:`-\frac{\gamma}{2M}\overline{(A'-y)\hat h^3}` survives,
``real_batch_leading_excess``) and the second-order term scale like 1/M, so the ratio
tests the 1/M law whatever their mix. A second finding takes Theorem 1's sign: R(128) > 0
per seed (mean over arms) -- BN's noise costs training loss, the penalty is a penalty.

Seeds (cpu) by :func:`~validation._deep.seeds_for_power`: the paper plots Fig. 2e without
numbers; the smallest increase we call one is 10% in gamma^2 (0.1 in log gamma^2). The
spread of a paired log gamma^2 difference is assumed 0.07 before any run (a mean over 32
channels with a per-channel spread of ~30% has ~5%; sqrt(2) for a difference): ceil((2 x
0.07 / 0.1)^2) = 2, clipped to 3, raised to 5 because that spread is a guess and the
theory finding needs several seeds. Cost: 3 arms x 5 seeds = 15 runs, each at most a base
run (the convs are norm-free) plus ~3 s for the penalty measurement: ~15 base-run
equivalents. The paper figure ``paper_figures/l_f2ef.py`` reads the same runs
(:func:`grid`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, register

CLAIM = "L-F2ef"
TITLE = "BN at one layer: gamma^2 and validation loss grow with the batch size (Fig. 2e,f)"
STATEMENT = ("with BN at one layer, gamma^2 of that layer and the validation loss grow with "
             "the batch size M, because BN's decay on gamma weakens like 1/M (Theorem 1)")
#: normalization batch sizes per size (the SGD batch is the base run's)
SETTINGS = {
    "tiny": dict(batch_sizes=(5, 10, 40), epochs=_deep.BASE["tiny"]["epochs"]),
    "quick": dict(batch_sizes=(16, 128), epochs=_deep.BASE["quick"]["epochs"]),
    "cpu": dict(batch_sizes=(16, 32, 128), epochs=_deep.BASE["cpu"]["epochs"]),
    "full": dict(batch_sizes=(16, 32, 64, 128), epochs=_deep.BASE["full"]["epochs"]),
}
#: cpu seeds (module docstring)
N_SEEDS = {"cpu": 5}
#: evaluation batch sizes, training images and random partitions of the penalty R(M)
EVAL = {"tiny": dict(ms=(4, 16), samples=10_000, permutations=4),
        "cpu": dict(ms=(32, 128), samples=10_000, permutations=20)}
EVAL["quick"] = EVAL["full"] = EVAL["cpu"]
#: agreement margin of the ratio R(32)/R(128) with Theorem 1's (module docstring)
MARGIN = 1.25


def label(m: int) -> str:
    return f"M={m}"


def callback_tiny(config: dict) -> list:
    """Callback factory at tiny size (:func:`callbacks`)."""
    return callbacks(config, **EVAL["tiny"])


def callback_cpu(config: dict) -> list:
    """Callback factory at quick, cpu and full size (:func:`callbacks`)."""
    return callbacks(config, **EVAL["cpu"])


CALLBACK = {"tiny": "validation.l_f2ef:callback_tiny", "quick": "validation.l_f2ef:callback_cpu",
            "cpu": "validation.l_f2ef:callback_cpu", "full": "validation.l_f2ef:callback_cpu"}


def callbacks(config: dict, *, ms, samples: int, permutations: int) -> list:
    """Mean gamma^2 of the one BN layer after every epoch (``gamma_sq_mean``); after the
    last, the measured penalty R(M) and Theorem 1's P(M) (:func:`bn_penalty`)."""
    import torch

    from perceptron_theory.deep.data import derive_seed
    from perceptron_theory.deep.runs import run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        layer = _bn_layer(model)
        out = {"gamma_sq_mean": float(layer.weight.detach().double().square().mean())}
        if epoch == config["epochs"]:
            g = torch.Generator().manual_seed(derive_seed(config["seed"], 902))
            n = min(samples, len(bundle.train_y))
            idx = torch.randperm(len(bundle.train_y), generator=g)[:n]
            out.update(bn_penalty(model, bundle.train_x.index_select(0, idx),
                                  bundle.train_y.index_select(0, idx), ms=ms,
                                  permutations=permutations, generator=g,
                                  batch=config["eval_batch_size"]))
        return out

    return [cb]


def _bn_layer(model):
    """The one norm layer of a ``single_bn_at_embedding`` cnn (fc slot, then ReLU)."""
    from torch import nn

    from perceptron_theory.deep.penalties import norm_layers

    layers = norm_layers(model)
    body = getattr(model, "body", None)
    if len(layers) != 1 or body is None or not isinstance(body[-1], nn.ReLU) or \
            getattr(body[-2], "norm", None) is not layers[0]:
        raise ValueError("expected a cnn with one norm layer at the fc slot, followed by ReLU")
    return layers[0]


def bn_penalty(model, x, y, *, ms, permutations: int, generator, batch: int = 1000) -> dict:
    """BN's implicit penalty R(M) of the one BN layer, measured, and Theorem 1's P(M).

    With the weights fixed, ``h`` = the BN layer's input on ``x`` (eval pass), the loss
    of the net's head ``classifier(relu(gamma (h - mu) / sqrt(var + eps) + beta))`` with
    (mu, var) of each batch of M (``permutations`` random partitions of ``x``) minus the
    loss with the statistics of all of ``x`` (the population). Returns ``pen_M``, ``pen``
    (R(M)), ``pen_se`` (its standard error over batches), ``pen_theory`` and
    ``pen_theory_exact`` (:math:`\\sum_c \\zeta_c(M)\\gamma_c^2` of
    ``theory.batchnorm.zeta_theorem1``, leading order / exact Gaussian moments).
    """
    import torch
    import torch.nn.functional as F

    from perceptron_theory.theory.batchnorm import zeta_theorem1

    layer = _bn_layer(model)
    dev = next(model.parameters()).device
    seen: list = []
    hook = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for xb in x.split(batch):
                model(xb.to(dev))
    finally:
        hook.remove()
        model.train(was)
    h = torch.cat(seen).double().cpu()  # shape=(n, C)
    y = y.cpu()
    gamma = layer.weight.detach().double().cpu()
    beta = layer.bias.detach().double().cpu()
    eps = float(layer.eps)
    w = model.classifier.weight.detach().double().cpu()
    b = model.classifier.bias.detach().double().cpu()

    def loss(ht, yy):
        return F.cross_entropy(F.relu(ht) @ w.T + b, yy, reduction="none")

    n, c = h.shape
    mu, var = h.mean(0), h.var(0, unbiased=False)
    l_pn = loss(gamma * (h - mu) / torch.sqrt(var + eps) + beta, y)
    pen, pen_se = [], []
    with torch.no_grad():
        for m in ms:
            vals = []
            for _ in range(permutations):
                perm = torch.randperm(n, generator=generator)[:(n // m) * m]
                hb = h[perm].view(-1, m, c)
                vb, mb = torch.var_mean(hb, 1, correction=0, keepdim=True)
                ht = (gamma * (hb - mb) / torch.sqrt(vb + eps) + beta).view(-1, c)
                vals.append((loss(ht, y[perm]) - l_pn[perm]).view(-1, m).mean(1))
            v = torch.cat(vals)
            pen.append(float(v.mean()))
            pen_se.append(float(v.std() / math.sqrt(v.numel())))
    hn, gn, bn = h.numpy(), gamma.numpy(), beta.numpy()
    theory = {"leading": [], "gaussian-exact": []}
    for m in ms:
        for moments, out in theory.items():
            total = 0.0
            for j in range(c):
                v = hn[:, j]
                if not v.std() > 0:  # a constant channel: h - mu_B = 0, no noise, no decay
                    continue
                hhat = (v - v.mean()) / v.std()
                curv = 1.0 / (1.0 + np.exp(-(gn[j] * hhat + bn[j])))
                total += zeta_theorem1(v, m, curv, moments=moments).zeta * gn[j] ** 2
            out.append(total)
    return {"pen_M": list(ms), "pen": pen, "pen_se": pen_se, "pen_theory": theory["leading"],
            "pen_theory_exact": theory["gaussian-exact"]}


def variants(size: str) -> dict[str, dict]:
    """``label(M)`` -> overrides of the base run: BN at the fc slot only, ghost BN over
    chunks of M (plain BN where M is the SGD batch)."""
    b = _deep.base(size)
    opts = {**b["model_options"], "single_bn_at_embedding": True}
    out = {}
    for m in SETTINGS[size]["batch_sizes"]:
        if m == b["batch_size"]:
            out[label(m)] = dict(norm="bn", model_options=opts)
        else:
            out[label(m)] = dict(norm="ghost-bn", norm_options={"virtual_batch_size": m},
                                 model_options=opts)
    return out


@functools.lru_cache(maxsize=4)
def grid(size: str, seed: int) -> _deep.Runs:
    """One run per batch size of ``SETTINGS[size]`` and seed (cached in the process; shared
    with :mod:`paper_figures.l_f2ef`)."""
    return _deep.run_grid(_deep.base(size), variants(size), _deep.SCALES[size], seed,
                          n_seeds=N_SEEDS.get(size), callback_factory=CALLBACK[size])


def _last(runs: _deep.Runs, lab: str, s: int) -> dict | None:
    h = runs.histories[(lab, s)]
    return None if runs.diverged[(lab, s)] or not h else h[-1]


def theory_records(runs: _deep.Runs, size: str):
    """Findings beside Theorem 1, and a text: (1) the measured penalty ratio
    R(M_a)/R(M_b) agrees with Theorem 1's within :data:`MARGIN` (per seed, mean over arms of
    the log deviation); (2) BN's penalty R(M_b) is positive (per seed, mean over arms)."""
    ma, mb = EVAL[size]["ms"]
    dev, meas, pred, exact, bad, absolute, pos = [], [], [], [], [], [], []
    for s in runs.seeds:
        logs, rbs = [], []
        for lab in runs.labels:
            last = _last(runs, lab, s)
            if last is None or "pen" not in last:
                continue
            (ra, rb), (pa, pb) = last["pen"], last["pen_theory"]
            ea, eb = last["pen_theory_exact"]
            rbs.append(rb)
            absolute.append(rb / pb)
            if not ra * rb > 0:
                bad.append(f"{lab} seed {s}: R = {ra:.3g}, {rb:.3g}")
                continue
            meas.append(ra / rb)
            pred.append(pa / pb)
            exact.append(ea / eb)
            logs.append(math.log(ra / rb) - math.log(pa / pb))
        dev.append(float(np.mean(logs)) if logs else math.nan)
        pos.append(float(np.mean(rbs)) if rbs else math.nan)
    d = [math.log(MARGIN) - abs(v) for v in dev]
    reason = ("R(M) changes sign or vanishes between the two M: " + "; ".join(bad)) if bad else ""
    where = f"seeds {list(runs.seeds)}; size {runs.scale.name}."
    note = (f"measured R({ma})/R({mb}) per arm and seed {np.round(meas, 3).tolist()}; "
            f"Theorem 1 (leading order) {np.round(pred, 3).tolist()}; with exact Gaussian "
            f"moments {np.round(exact, 3).tolist()}. d = log {MARGIN:g} - |mean log(measured "
            f"/ Theorem 1)| per seed; {where}")
    ratio = _deep.sign_record(
        CLAIM, f"BN penalty R({ma})/R({mb}) on the trained nets within a factor {MARGIN:g} of "
               f"Theorem 1's zeta({ma})/zeta({mb}) (theory.batchnorm.zeta_theorem1)",
        d, note, runs=runs, invalid=reason)
    sign = _deep.sign_record(
        CLAIM, f"BN penalty R({mb}) > 0 on the trained nets (Theorem 1: zeta gamma^2 > 0)",
        pos, f"per seed, the mean over arms of R({mb}) = E[loss with batch statistics] - loss "
             f"with population statistics; Theorem 1's first-order term R_f, left out, "
             f"vanishes only at a PN-stationary gamma; {where}", runs=runs)
    text = (f" Theory beside the nets: measured R({ma})/R({mb}) "
            f"{_deep.fmt_pm(meas)} against Theorem 1's {_deep.fmt_pm(pred)} (exact Gaussian "
            f"moments {_deep.fmt_pm(exact)}); absolute R({mb}) / (sum_c zeta_c gamma_c^2) = "
            f"{_deep.fmt_pm(absolute)} (App. C.4's single-layer curvature; not tested).")
    return (ratio, sign), text


@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 5 and Fig. 2e,f")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    ms = SETTINGS[size]["batch_sizes"]
    runs = grid(size, seed)
    lo, hi = label(ms[0]), label(ms[-1])
    comps = [_deep.ordering(CLAIM, f"log gamma^2: {hi} > {lo}", runs, hi, lo, "gamma_sq_mean",
                            higher_is_better=True, transform=np.log, headline=True,
                            note="Luo Fig. 2e: gamma^2 grows with M")]
    if len(ms) > 2:
        comps += [_deep.ordering(CLAIM, f"log gamma^2: {label(b)} > {label(a)}", runs,
                                 label(b), label(a), "gamma_sq_mean", higher_is_better=True,
                                 transform=np.log, note="consecutive batch sizes")
                  for a, b in zip(ms[:-1], ms[1:], strict=True)]
    comps.append(_deep.ordering(CLAIM, f"val loss: {hi} > {lo}", runs, lo, hi, "val_loss",
                                higher_is_better=False,
                                note="Luo Fig. 2f: 'all validation losses increased'"))
    recs, ttext = theory_records(runs, size)
    comps += recs
    ma, mb = EVAL[size]["ms"]
    pen_series = []
    for lab in runs.labels:
        lasts = [x for x in (_last(runs, lab, s) for s in runs.seeds) if x and "pen" in x]
        if lasts:
            pen_series.append(series(f"{lab}: measured R(M)", [ma, mb],
                                     np.mean([x["pen"] for x in lasts], 0)))
            pen_series.append(series(f"{lab}: Theorem 1 sum zeta gamma^2", [ma, mb],
                                     np.mean([x["pen_theory"] for x in lasts], 0),
                                     style="dashed"))
    plots = (_deep.curve_plot(f"{CLAIM}: gamma^2 of the BN layer ({size})", runs,
                              "gamma_sq_mean", "mean gamma^2"),
             *_deep.training_plots(CLAIM, runs)[:2],
             Plot(f"{CLAIM}: BN's penalty vs evaluation batch ({size})", "evaluation batch M",
                  "loss", tuple(pen_series), xscale="log"))
    table = "; ".join(
        f"{lab}: gamma^2 {_deep.fmt_pm(runs.final(lab, 'gamma_sq_mean'))}, val loss "
        f"{_deep.fmt_pm(runs.final(lab, 'val_loss'))}, train loss "
        f"{_deep.fmt_pm(runs.final(lab, 'train_loss'))}" for lab in runs.labels)
    b = _deep.base(size)
    summary = (
        "Prediction (Luo et al. Fig. 2e,f): with BN at one layer, gamma^2 of that layer and the "
        "validation loss grow with the batch size M (zeta ~ 1/M). The shared CNN with BN at the "
        f"fc layer only; normalization batch M (ghost BN) within SGD batches of "
        f"{b['batch_size']}, lr {b['lr']:g}, {b['epochs']} epochs for every M. "
        f"{runs.describe()}. Final (mean +- stderr): {table}. gamma^2 over the last epochs "
        "(seed means): "
        + "; ".join(f"{lab}: {np.round(runs.curve(lab, 'gamma_sq_mean')[1][-3:], 4).tolist()}"
                    for lab in runs.labels) + "." + ttext)
    return _deep.check_result(CLAIM, TITLE, comps, plots, summary, runs, size, statement=STATEMENT)
