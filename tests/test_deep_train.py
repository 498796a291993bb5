"""deep.train: config validation, schedules, a tiny run, exact resume, divergence, runs
without files (step callbacks, max_steps, a given model)."""

import json
import math

import pytest

torch = pytest.importorskip("torch")

from perceptron_theory.deep.train import (  # noqa: E402
    BASE_BATCH,
    TrainConfig,
    learning_rate,
    load_checkpoint,
    train,
)

pytestmark = pytest.mark.deep

# A tiny CNN on a small synthetic teacher set: 480 training samples, 15 steps of 32.
TINY = dict(model="cnn", model_options={"channels": [4, 4, 8, 8], "hidden": 16}, norm="bn",
            dataset="synthetic", subset=600, test_subset=100, val_fraction=0.2, batch_size=32,
            epochs=2, lr=0.1, weight_decay=5e-4, schedule="constant", device="cpu", seed=0,
            eval_batch_size=256)


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


class Crash(RuntimeError):
    pass


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("name", ["perceptron_theory.deep.train", "perceptron_theory.deep.runs"])
def test_doctests(name):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(name)).failed == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=1), r"batch_size must be an integer in \[2, inf\), got 1"),
    (dict(epochs=0), r"epochs must be an integer in \[1, inf\)"),
    (dict(lr=0.0), r"lr must be in \(0, inf\)"),
    (dict(lr=float("nan")), "lr must be finite"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    (dict(weight_decay=-1e-4), "weight_decay"),
    (dict(schedule="linear"), "schedule must be one of constant, step, cosine, luo"),
    (dict(dataset="mnist"), "dataset must be one of"),
    (dict(device="tpu"), "device must be one of auto, cpu, cuda"),
    (dict(amp="yes"), "amp must be True or False"),
    (dict(channels_last=1), "channels_last must be True or False"),
    (dict(compile="max-autotune"), "compile must be True or False"),
    (dict(threads=0), r"threads must be an integer in \[1, inf\), got 0"),
    (dict(threads=1.5), "threads must be an integer"),
    (dict(penalties=["l2"]), "NAME=COEF"),
    (dict(penalties={"l2": -1.0}), "coefficient must be in"),
    (dict(penalty_options={"l2": {}}), "penalty_options names penalties not in penalties"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(lr_milestones=(0.5, 1.5)), "lr_milestones"),
    (dict(warmup_epochs=3.0), r"warmup_epochs must be in \[0, 2\]"),
    (dict(pn_samples=1), "pn_samples"),
    (dict(augment="yes"), "augment must be True or False"),
    (dict(model="vgg"), "model must be one of cnn, resnet18"),
    (dict(norm="batchnorm"), "norm must be one of"),
    (dict(model_options={"colour": 1}), "model_options has unknown key 'colour'"),
    (dict(norm_options={"colour": 1}), "norm_options has unknown key 'colour'"),
    (dict(penalties={"l3": 1.0}), "penalty name must be one of"),
    (dict(penalties={"embedding-l2": 1.0}, penalty_options={"embedding-l2": {"p": 3}}),
     "option 'p' is not accepted by penalty 'embedding-l2'"),
])
def test_bad_config_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_config_normalizes_penalties_and_round_trips():
    a = tiny(penalties=["embedding-l2=1e-3", "functional-l2=0.5"])
    b = tiny(penalties={"embedding-l2": 1e-3, "functional-l2": 0.5})
    c = tiny(penalties=[("embedding-l2", "1e-3"), ("functional-l2", 0.5)])
    assert a.penalties == b.penalties == c.penalties == (("embedding-l2", 1e-3),
                                                         ("functional-l2", 0.5))
    d = json.loads(json.dumps(a.to_dict()))
    assert TrainConfig.from_dict(d) == a
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({**d, "colour": 1})
    assert tiny(batch_size=512, lr=0.1).effective_lr == pytest.approx(0.4)


# ----------------------------------------------------------------------------- schedules


def test_learning_rate_schedules():
    spe = 10  # steps per epoch
    cfg = tiny(epochs=4, batch_size=256, lr=0.1, schedule="constant")
    base = 0.1 * 256 / BASE_BATCH  # Goyal et al.'s linear scaling
    assert learning_rate(cfg, 0, spe) == learning_rate(cfg, 39, spe) == pytest.approx(base)

    cfg = tiny(epochs=4, lr=0.1, batch_size=128, schedule="step")
    assert [learning_rate(cfg, e * spe, spe) for e in range(4)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001])

    cfg = tiny(epochs=4, lr=0.1, batch_size=128, schedule="cosine")
    assert learning_rate(cfg, 0, spe) == pytest.approx(0.1)
    assert learning_rate(cfg, 20, spe) == pytest.approx(0.05)
    assert learning_rate(cfg, 39, spe) == pytest.approx(0.05 * (1 + math.cos(math.pi * 39 / 40)))

    cfg = tiny(epochs=4, lr=0.1, batch_size=128, schedule="luo", lr_decay=1e-4)
    assert learning_rate(cfg, 1000, spe) == pytest.approx(0.1 * (1 - 1e-4) ** 1000)

    cfg = tiny(epochs=4, lr=0.1, batch_size=128, warmup_epochs=1.0)
    assert [learning_rate(cfg, s, spe) for s in (0, 4, 9, 10)] == pytest.approx(
        [0.01, 0.05, 0.1, 0.1])


# ----------------------------------------------------------------------------- training


def test_tiny_run_learns_and_writes_outputs(tmp_path):
    seen = []

    def probe(model, epoch, metrics):
        seen.append((epoch, metrics["val_acc"]))
        return {"probe": float(epoch) * 2}

    cfg = tiny(penalties=["embedding-l2=1e-3", "gamma-decay=1e-4"],
               penalty_options={"gamma-decay": {"adaptive": True}})  # needs norm inputs
    result = train(cfg, tmp_path / "run", callbacks=[probe], progress=False)
    assert result.epochs_done == 2 and not result.diverged
    assert [h["epoch"] for h in result.history] == [1, 2]
    first, last = result.history
    assert last["train_loss"] < first["train_loss"]
    assert last["val_loss"] < math.log(10)
    assert [e for e, _ in seen] == [1, 2] and last["probe"] == 4.0

    run = tmp_path / "run"
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == cfg
    lines = [json.loads(s) for s in (run / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for key in ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                "test_acc", "time", "diverged", "penalty/embedding-l2", "penalty/gamma-decay"):
        assert key in lines[0]
    assert lines[0]["penalty/embedding-l2"] > 0 and lines[0]["penalty/gamma-decay"] > 0
    assert lines[1]["lr"] == pytest.approx(0.1 * 32 / 128)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["schedule"]["step"] == 2 * (480 // 32)
    assert json.loads((run / "result.json").read_text())["epochs_done"] == 2
    with pytest.raises(ValueError, match="already holds checkpoint.pt"):
        train(cfg, run)


def test_population_norm_statistics_are_refreshed(tmp_path):
    cfg = tiny(model="mlp", model_options={"hidden": 16}, norm="pn", pn_samples=100,
               pn_refresh_every=2, epochs=3)
    result = train(cfg, tmp_path / "pn")
    assert not result.diverged
    state = load_checkpoint(tmp_path / "pn" / "checkpoint.pt")["model"]
    refreshes = [v for k, v in state.items() if k.endswith("num_refreshes")]
    # Refreshed at the start of epochs 1 and 3, two sweeps each (every sweep counts).
    # one exact sweep per PN layer at each of the 2 refreshes (epochs 1 and 2)
    assert refreshes and all(int(v) == 2 for v in refreshes)


def test_resume_equals_uninterrupted_run(tmp_path):
    # Dropout and augmentation make the run depend on every RNG stream.
    options = {**TINY["model_options"], "dropout": 0.2}
    cfg = tiny(augment=True, schedule="cosine", model_options=options)
    full = train(cfg, tmp_path / "full")

    def crash_in_epoch_2(model, epoch, metrics):
        if epoch == 2:  # after epoch 2's training, before its checkpoint
            raise Crash

    with pytest.raises(Crash):
        train(cfg, tmp_path / "part", callbacks=[crash_in_epoch_2])
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["epoch"] == 1
    resumed = train(cfg, tmp_path / "part", resume=True)
    assert resumed.epochs_done == 2

    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(),
                      strict=True):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    drop_time = lambda h: {k: v for k, v in h.items() if k != "time"}  # noqa: E731
    assert [drop_time(h) for h in full.history] == [drop_time(h) for h in resumed.history]
    log_lines = (tmp_path / "part" / "log.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in log_lines] == [1, 2]

    # Resuming a finished run does nothing; a changed config is refused.
    again = train(cfg, tmp_path / "part", resume=True)
    assert again.epochs_done == 2
    with pytest.raises(ValueError, match=r"config differs .* \['lr'\]"):
        train(tiny(augment=True, schedule="cosine", model_options=options, lr=0.2),
              tmp_path / "part", resume=True)


def test_divergence_is_reported_not_raised(tmp_path):
    result = train(tiny(lr=1e6, epochs=3), tmp_path / "div")
    assert result.diverged and result.final["diverged"] is True
    assert result.final["diverged_epoch"] >= 1 and result.final["diverged_step"] >= 0
    assert result.epochs_done == result.final["diverged_epoch"] - 1
    last = json.loads((tmp_path / "div" / "log.jsonl").read_text().splitlines()[-1])
    assert last["diverged"] is True
    assert json.loads((tmp_path / "div" / "result.json").read_text())["diverged"] is True


# ----------------------------------------------------------------------------- defaults pinned


def _reference_history(cfg: TrainConfig) -> list:
    """The epoch log lines of ``cfg`` by the loop of ``train`` as it stood before the CPU
    options (commit a9e042d): one process, no PN layers, no files, CPU. Kept verbatim so
    that a default ``TrainConfig`` is pinned to produce bit-identical histories."""
    import random

    import numpy as np
    import torch.nn.functional as F

    from perceptron_theory.deep.data import (
        augment,
        derive_seed,
        iterate_minibatches,
        make_dataset,
    )
    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.penalties import (
        forward_with_record,
        make_penalty,
        param_groups,
    )
    from perceptron_theory.deep.train import evaluate

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    bundle = make_dataset(cfg.dataset, data_dir=cfg.data_dir, val_fraction=cfg.val_fraction,
                          subset=cfg.subset, test_subset=cfg.test_subset, seed=cfg.seed,
                          device=torch.device("cpu"), amplitude=cfg.amplitude, snr=cfg.snr)
    n_train = len(bundle.train_y)
    spe = n_train // cfg.batch_size
    torch.manual_seed(derive_seed(cfg.seed, 100))
    model = make_model(cfg.model, norm=cfg.norm, num_classes=bundle.num_classes,
                       in_channels=bundle.in_channels, image_size=bundle.image_size,
                       norm_options=cfg.norm_options or None, **cfg.model_options)
    penalties = [(name, make_penalty(name, coef, **cfg.penalty_options.get(name, {})))
                 for name, coef in cfg.penalties]
    needs = any(getattr(p, "needs_norm_inputs", False) for _, p in penalties)
    opt = torch.optim.SGD(param_groups(model, weight_decay=cfg.weight_decay,
                                       norm_decay=cfg.norm_decay,
                                       scalar_decay=cfg.scalar_decay),
                          lr=cfg.effective_lr, momentum=cfg.momentum)
    history, step = [], 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        g_order = torch.Generator().manual_seed(derive_seed(cfg.seed, 300, epoch))
        g_aug = torch.Generator().manual_seed(derive_seed(cfg.seed, 400, epoch, 0))
        sums = torch.zeros(3 + len(penalties), dtype=torch.float64)
        lr = learning_rate(cfg, step, spe)
        diverged = False
        for idx in iterate_minibatches(n_train, cfg.batch_size, generator=g_order,
                                       drop_last=True):
            xb, yb = bundle.train_x.index_select(0, idx), bundle.train_y.index_select(0, idx)
            if cfg.augment:
                xb = augment(xb, g_aug)
            lr = learning_rate(cfg, step, spe)
            for group in opt.param_groups:
                group["lr"] = lr
            record = forward_with_record(model, xb, record_norm_inputs=needs)
            logits = record.logits.float()
            ce = F.cross_entropy(logits, yb)
            pen = [p(model, record, xb).float() for _, p in penalties]
            loss = ce + sum(pen) if pen else ce
            if not bool(torch.isfinite(loss.detach())):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                n_b = len(yb)
                sums += torch.stack([ce.detach().double() * n_b,
                                     (logits.argmax(1) == yb).sum().double(),
                                     torch.tensor(float(n_b), dtype=torch.float64),
                                     *[v.detach().double() * n_b for v in pen]])
        sums = sums.tolist()
        seen = sums[2]
        m = {"epoch": epoch, "lr": lr, "train_loss": sums[0] / seen if seen else None,
             "train_acc": sums[1] / seen if seen else None}
        for (name, _), v in zip(penalties, sums[3:], strict=True):
            m[f"penalty/{name}"] = v / seen if seen else None
        if diverged:
            m.update(diverged=True, diverged_epoch=epoch, diverged_step=step)
            history.append(m)
            break
        for split in ("val", "test"):
            x, y = bundle.split(split)
            m[f"{split}_loss"], m[f"{split}_acc"] = evaluate(model, x, y, cfg.eval_batch_size)
        model.train()
        m["diverged"] = False
        history.append(m)
    return history


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(augment=True, schedule="cosine", model_options={**TINY["model_options"], "dropout": 0.2},
         penalties=["embedding-l2=1e-3", "gamma-decay=1e-4"],
         penalty_options={"gamma-decay": {"adaptive": True}}),
    dict(model="mlp", model_options={"hidden": 16}, norm="none", batch_size=8, epochs=1),
    dict(lr=1e6, epochs=3),  # diverges: the same step and partial means are reported
])
def test_default_options_reproduce_the_reference_loop_bit_for_bit(tmp_path, kwargs):
    cfg = tiny(**kwargs)
    got = train(cfg, tmp_path / "run", progress=False).history
    drop_time = lambda h: {k: v for k, v in h.items() if k != "time"}  # noqa: E731
    assert [drop_time(h) for h in got] == _reference_history(cfg)


@pytest.mark.parametrize("every", [1, 5, 1000])
def test_divergence_report_does_not_depend_on_the_check_cadence(tmp_path, monkeypatch, every):
    from perceptron_theory.deep import train as train_module

    monkeypatch.setattr(train_module, "CHECK_EVERY", every)
    cfg = tiny(lr=1e6, epochs=3)
    got = train(cfg, tmp_path / "run", progress=False).history
    assert got[-1]["diverged"] is True
    assert [{k: v for k, v in h.items() if k != "time"} for h in got] == \
        _reference_history(cfg)


# ----------------------------------------------------------------------------- speed options

# the keys of TrainConfig().to_dict() before the speed options (run-store keys hash them)
_OLD_KEYS = ("model", "norm", "norm_options", "model_options", "penalties", "penalty_options",
             "dataset", "data_dir", "subset", "test_subset", "val_fraction", "batch_size",
             "epochs", "lr", "momentum", "weight_decay", "norm_decay", "scalar_decay",
             "schedule", "lr_decay", "lr_milestones", "warmup_epochs", "augment", "amplitude",
             "snr", "seed", "device", "amp", "channels_last", "deterministic",
             "pn_refresh_every", "pn_samples", "eval_batch_size")


def test_config_dicts_of_default_options_are_unchanged():
    d = TrainConfig().to_dict()
    assert tuple(d) == _OLD_KEYS
    assert TrainConfig.from_dict(d) == TrainConfig()  # an old dict (no new keys) loads
    fast = tiny(compile=True, threads=2, amp=True, channels_last=True)
    e = json.loads(json.dumps(fast.to_dict()))
    assert e["compile"] is True and e["threads"] == 2
    assert TrainConfig.from_dict(e) == fast


def test_threads_are_applied_and_restored(tmp_path):
    before = torch.get_num_threads()
    want = 2 if before != 2 else 1
    seen = []

    def probe(model, epoch, metrics):
        seen.append(torch.get_num_threads())
        if epoch == 2:
            raise Crash

    with pytest.raises(Crash):
        train(tiny(threads=want), tmp_path / "run", callbacks=[probe], progress=False)
    assert seen == [want, want]
    assert torch.get_num_threads() == before  # restored, also after an exception
    train(tiny(epochs=1), tmp_path / "none", callbacks=[probe], progress=False)
    assert seen[-1] == before  # threads=None leaves the setting alone


@pytest.mark.parametrize("kwargs", [
    dict(amp=True),
    dict(channels_last=True, norm="pn", pn_samples=64),
    dict(amp=True, channels_last=True, model="mlp", model_options={"hidden": 16}),
    # compile: tens of seconds cold (Inductor builds C++ kernels), seconds warm
    dict(compile=True, model="mlp", model_options={"hidden": 16}),
])
def test_cpu_speed_options_train(tmp_path, kwargs):
    cfg = tiny(epochs=1, **kwargs)
    result = train(cfg, tmp_path / "run", progress=False)
    assert not result.diverged and result.epochs_done == 1
    assert math.isfinite(result.final["train_loss"]) and result.final["val_loss"] < 2.5
    assert TrainConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())) \
        == cfg


def test_fsync_only_the_files_that_protect_data(tmp_path, monkeypatch):
    import os

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    train(tiny(epochs=3), tmp_path / "run", progress=False)
    # config.json, checkpoint.pt after each epoch, result.json; not the log lines
    assert len(calls) == 3 + 2


def test_amp_without_native_bf16_warns(tmp_path, monkeypatch, caplog):
    from perceptron_theory.deep import train as train_module

    monkeypatch.setattr(train_module, "_cpu_has_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="perceptron_theory.deep.train"):
        train(tiny(epochs=1, amp=True), tmp_path / "run", progress=False)
    assert "no native bfloat16" in caplog.text


# ----------------------------------------------------------------------------- no files


def _rng_states():
    import random

    import numpy as np

    return random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state()


def test_run_without_files_is_the_same_run_and_leaves_no_trace(tmp_path, monkeypatch):
    """``train(config)`` without ``out_dir``: the same history as the run with files, no
    file written anywhere, step callbacks before the first and after every step, and the
    global RNG states as they were."""
    monkeypatch.chdir(tmp_path)
    cfg = tiny(epochs=1, model_options={**TINY["model_options"], "dropout": 0.2})
    with_files = train(cfg, tmp_path / "run", progress=False)
    before = _rng_states()
    seen = []
    res = train(cfg, progress=False,
                step_callbacks=[lambda m, s, info: seen.append((s, info["batch_loss"] is None,
                                                                m.training))])
    after = _rng_states()
    assert res.out_dir is None and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    drop_time = lambda h: {k: v for k, v in h.items() if k != "time"}  # noqa: E731
    assert [drop_time(h) for h in res.history] == [drop_time(h) for h in with_files.history]
    assert seen == [(0, True, True)] + [(s, False, True) for s in range(1, 16)]  # 480 / 32
    assert before[0] == after[0] and before[1] == after[1] and torch.equal(before[2], after[2])


def test_max_steps_on_a_given_model_and_data():
    from perceptron_theory.deep.runs import build_model, run_dataset

    cfg = tiny()
    bundle = run_dataset(cfg)
    model = build_model(cfg, bundle, "cpu")
    w0 = model.classifier.weight.detach().clone()
    steps = []
    res = train(cfg, model=model, data=bundle, max_steps=20, eval_splits=("val",),
                step_callbacks=[lambda m, s, info: steps.append((s, info["epoch"]))],
                progress=False)
    assert steps[-1] == (20, 2) and len(steps) == 21  # 15 steps per epoch, then 5
    assert res.epochs_done == 2 and [h["epoch"] for h in res.history] == [1, 2]
    assert "val_loss" in res.final and "test_loss" not in res.final
    assert not torch.equal(model.classifier.weight, w0)  # trained in place
    none = train(cfg, max_steps=0, progress=False)
    assert none.history == () and none.epochs_done == 0


def test_options_of_runs_without_files_need_out_dir_none(tmp_path):
    cfg = tiny()
    for kwargs in (dict(max_steps=3), dict(device="cpu"), dict(model=torch.nn.Linear(1, 1))):
        with pytest.raises(ValueError, match="needs out_dir=None"):
            train(cfg, tmp_path / "x", **kwargs)
    with pytest.raises(ValueError, match="eval_splits entries must be one of val, test"):
        train(cfg, eval_splits=("train",))
    with pytest.raises(ValueError, match="max_steps must be an integer"):
        train(cfg, max_steps=-1)
    with pytest.raises(ValueError, match="resume needs out_dir"):
        train(cfg, resume=True)
    assert not (tmp_path / "x").exists()
