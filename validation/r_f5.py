"""R-F5: test accuracy vs train and test batch size, batch vs accumulated statistics (Fig. 5).

Claim (Rao & Sohl-Dickstein 2020, Sec. 8 and Fig. 5, WRN on CIFAR-10, the learning rate
kept constant across batch sizes): "Without accumulated statistics (i.e Batch-Train),
Batch Norm's performance is highly dependent on batch size"; "the performance of Batch Norm
... change[s] with the batch size if the population mean and variance are not aggregated
for use at test-time. Even for large test-time batch sizes, Batch Norm without aggregated
means and variances produces significantly worse test accuracy"; "accumulated statistics
at test time seem to be crucial to Batch Norm's better performance". Table 3 gives the one
number: Batch 95.953 vs Batch-Train 95.512 (0.44 pp; ImageNet ResNet-50 1.51 pp).

Measurement: BN nets trained with the shared CNN run (:func:`validation._deep.base`) at
training batch sizes ``M``; after the last epoch the ``test-batch-size`` probe
(:func:`perceptron_theory.deep.probes.eval_batch_size_probe`, a training callback) cuts
the shuffled validation split (5000 images) into batches of exactly ``B`` and evaluates
with each batch's own statistics (Batch-Train evaluation: the same trained net) for
``B`` in ``TEST_BATCH_SIZES``, and once with the running statistics.

Headline (fixed before any run): at the shared run's training batch (128), **accuracy
with accumulated statistics exceeds accuracy with the statistics of a small test batch
(B = 8)** -- per seed ``acc_running - acc_batch(8) > 0``. Secondary rows: the same at
``M`` = 32; ``acc_running - acc_batch(512) > 0`` at each ``M`` ("even for large test-time
batch sizes"); ``acc_batch(512) - acc_batch(8) > 0`` (the dependence on the test batch
size). One exact record per run: the probe's running-statistics accuracy equals the
training loop's final validation accuracy (the same net on the same images; the
headline compares the run's reported accuracy), to two images.

Arms: quick: ``M`` = 128, one seed (one run: the callback makes it a run of its own in
the store). cpu: ``M`` = 128 x 9 seeds and ``M`` = 32 x 3 seeds (constant learning rate,
as the paper). full: ``M`` in (32, 128, 512) on all of Fashion-MNIST, five seeds (GPU).

Seeds (cpu), :func:`~validation._deep.seeds_for_power`: the paper's only number is
Table 3's Batch-Train gap, 0.44 pp at a large test batch; a small test batch can only
make batch statistics noisier, so we take 0.44 pp as the least effect at B = 8. With the
between-net spread ``SD_ACC`` = 0.65 pp (an upper bound: both accuracies here come from
one net on the same images): ceil((2 x 0.0065 / 0.0044)^2) = 9 seeds at ``M`` = 128;
``M`` = 32 (a secondary row) gets the minimum 3. Cost: 9 base runs + 3 runs at batch 32
(about 1.4 base runs each: four times the steps; 54 s against 40 s for batch 128 in a
pilot, probe included) -- about 13 base-run equivalents.

Floor: Fashion-MNIST val accuracy 0.85 (running statistics, the run's reported accuracy)
for every arm (:data:`validation._deep.FLOORS`): the claim is about trained nets.
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.plotting import Plot, series
from validation import _deep
from validation._core import CheckResult, compare, register

CLAIM = "R-F5"
TITLE = "BN's test accuracy vs test and train batch size, batch vs accumulated statistics"
STATEMENT = ("Evaluated with the statistics of its test batch instead of accumulated ones, "
             "a BN net's accuracy depends on the batch size and is worse, most at small "
             "test batches; accumulated statistics remove the dependence (Fig. 5)")
#: test batch sizes of the probe; the headline's small one; the "large" one per size
TEST_BATCH_SIZES = (2, 8, 32, 128, 512)
B_SMALL = 8
B_LARGE = {"tiny": 32, "quick": 512, "cpu": 512, "full": 512}
#: training batch sizes per size: the first is the headline's (the shared run's batch)
TRAIN_BATCH = {"tiny": (40, 20), "quick": (128,), "cpu": (128, 32), "full": (128, 32, 512)}
#: seeds per training batch size at cpu (module docstring); elsewhere the scale's
N_SEEDS = {"cpu": {128: 9, 32: 3}}
#: images by which the probe's running-statistics accuracy may differ from the run's
#: (float reassociation in differently composed batches may flip an argmax tie)
ACC_IMAGES_ATOL = 2


def test_batch_callback(config: dict) -> list:
    """Callback factory: the ``test-batch-size`` probe on the validation split after the
    last epoch, flattened to ``tb_acc_running``, ``tb_acc_batch_<B>``, ``tb_n_val``."""
    from perceptron_theory.deep.probes import eval_batch_size_probe
    from perceptron_theory.deep.runs import run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        if epoch != config["epochs"]:
            return None
        out = eval_batch_size_probe(model, bundle, batch_sizes=TEST_BATCH_SIZES, split="val",
                                    seed=0)
        res = {"tb_acc_running": out["acc_running_stats"], "tb_n_val": out["n"]}
        for b, acc in zip(out["batch_sizes"], out["acc_batch_stats"], strict=True):
            res[f"tb_acc_batch_{b}"] = acc
        return res

    return [cb]


def label(m: int) -> str:
    return f"BN, train batch {m}"


def grids(size: str, seed: int) -> list[_deep.Runs]:
    """One grid per training batch size (seeds of :data:`N_SEEDS` or the scale's)."""
    scale = _deep.SCALES[size]
    out = []
    for m in TRAIN_BATCH[size]:
        out.append(_deep.run_grid(_deep.base(size), {label(m): dict(norm="bn", batch_size=m)},
                                  scale, seed, n_seeds=N_SEEDS.get(size, {}).get(m),
                                  callback_factory="validation.r_f5:test_batch_callback"))
    return out


def _acc(runs: _deep.Runs, b: int | str) -> np.ndarray:
    key = "tb_acc_running" if b == "running" else f"tb_acc_batch_{b}"
    return runs.final(runs.labels[0], key)


@register(CLAIM, TITLE, paper="Rao & Sohl-Dickstein 2020, Sec. 8 and Fig. 5")
def check(quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
    size = _deep.resolve_size(quick, size)
    gs = grids(size, seed)
    big = B_LARGE[size]
    comps, rows, plot_series = [], [], []
    for i, runs in enumerate(gs):
        lab = runs.labels[0]
        run_acc = _acc(runs, "running")
        small, large = _acc(runs, B_SMALL), _acc(runs, big)
        comps.append(_deep.sign_record(
            CLAIM, f"{lab}: acc(accumulated stats) - acc(batch stats, test batch {B_SMALL}) > 0",
            run_acc - small, f"accumulated {_deep.fmt_pm(run_acc)}, batch statistics at test "
            f"batch {B_SMALL} {_deep.fmt_pm(small)}; seeds {list(runs.seeds)}; size {size}. "
            "Fig. 5: without accumulated statistics BN depends on the batch size",
            runs=runs, headline=i == 0))
        comps.append(_deep.sign_record(
            CLAIM, f"{lab}: acc(accumulated stats) - acc(batch stats, test batch {big}) > 0",
            run_acc - large, f"accumulated {_deep.fmt_pm(run_acc)}, batch statistics at test "
            f"batch {big} {_deep.fmt_pm(large)}; size {size}. Sec. 8: 'even for large "
            "test-time batch sizes' worse; Table 3: Batch - Batch-Train 0.44 pp", runs=runs))
        comps.append(_deep.sign_record(
            CLAIM, f"{lab}: acc(batch stats, test batch {big}) - acc(test batch {B_SMALL}) > 0",
            large - small, f"size {size}. Fig. 5: batch-statistics accuracy depends on the "
            "test batch size", runs=runs))
        val = runs.final(lab, "val_acc")
        n_val = runs.final(lab, "tb_n_val")
        dev = np.abs(run_acc - val)
        worst = int(np.nanargmax(dev)) if np.isfinite(dev).any() else 0
        atol = ACC_IMAGES_ATOL / float(np.nanmax(n_val)) if np.isfinite(n_val).any() else 0.0
        comps.append(compare(
            CLAIM, f"{lab}: probe's accumulated-statistics accuracy = the run's val accuracy",
            val[worst], run_acc[worst], atol=atol,
            note=f"the same net on the same validation images in eval mode, batched "
                 f"differently; worst of seeds {list(runs.seeds)}; atol {ACC_IMAGES_ATOL} "
                 f"images of {int(np.nanmax(n_val)) if np.isfinite(n_val).any() else 0}"))
        xs, ys = [], []
        for b in TEST_BATCH_SIZES:
            v = _acc(runs, b)
            if np.isfinite(v).all():
                xs.append(b)
                ys.append(float(v.mean()))
            rows.append(f"{lab}, B = {b}: {_deep.fmt_pm(v)}")
        rows.append(f"{lab}, accumulated: {_deep.fmt_pm(run_acc)}")
        if xs:
            plot_series.append(series(f"{lab}: batch statistics", xs, ys))
            plot_series.append(series(f"{lab}: accumulated statistics", xs,
                                      [float(np.nanmean(run_acc))] * len(xs),
                                      style="dashed"))
    plots = (Plot(f"R-F5: val accuracy vs test batch size ({size})", "test batch size B",
                  "val accuracy", tuple(plot_series), xscale="log"),)
    first = gs[0]
    b = _deep.base(size)
    summary = (
        "Prediction (Rao & Sohl-Dickstein Fig. 5, Sec. 8): evaluated with its test batch's "
        "own statistics (Batch-Train), a BN net's accuracy depends on the test batch size "
        "and stays below the accuracy with accumulated (running) statistics, even at large "
        f"test batches. Headline: accumulated - batch statistics at test batch {B_SMALL} > 0 "
        f"at training batch {TRAIN_BATCH[size][0]}. {b['model']} {b['model_options']}, lr "
        f"{b['lr']} {b['schedule']} at every training batch size, {b['epochs']} epochs. "
        + " ".join(f"{g.describe()}." for g in gs)
        + " Val accuracy (mean +- stderr): " + "; ".join(rows) + "."
        + "".join(f" {g.arm_table()}." for g in gs[1:])
        + _deep.summary_tail(first))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary, statement=STATEMENT,
                       dataset=first.dataset, size=size)

