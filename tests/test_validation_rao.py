"""Rao & Sohl-Dickstein (R-T3, R-F1, R-F3, R-F4/F6, R-F5) and Annamalai & Thakur (A-TI,
A-TII) on the evidence spine.

At ``size="tiny"`` only the structure is asserted (one headline finding, statement, data
set and size, finite records, plots, strict JSON), never the outcome. Floors are tested on
hand-built runs: ``_deep.run_grid`` is replaced by a function returning :class:`Runs`
whose accuracies the test sets, so an arm forced under its floor must make its records
``invalid``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import validation  # noqa: E402
from perceptron_theory.plotting import Plot  # noqa: E402
from validation import _deep, a_ti, r_f1f3, r_f4f6, r_f5, r_t3  # noqa: E402
from validation._core import VERDICTS  # noqa: E402

pytestmark = pytest.mark.deep

CHECKS = {"R-T3": r_t3.check, "R-F5": r_f5.check, "R-F1": r_f1f3.check_f1,
          "R-F3": r_f1f3.check_f3, "R-F4/F6": r_f4f6.check, "A-TI": a_ti.check,
          "A-TII": a_ti.check_snr}


@pytest.fixture(scope="module")
def tiny_results():
    with _deep.options(allow_synthetic=True):
        return {claim: func(size="tiny", seed=0) for claim, func in CHECKS.items()}


def test_r_f5_is_registered():
    assert "r_f5" in validation.CHECK_MODULES
    reg = validation.load_all()
    assert reg["R-F5"].func is r_f5.check and reg["R-F5"].sized


@pytest.mark.parametrize("claim", list(CHECKS))
def test_structure_at_tiny_size(tiny_results, claim):
    res = tiny_results[claim]
    assert validation.REGISTRY[claim].func is CHECKS[claim]
    assert res.claim == claim and res.title and res.summary and res.statement
    assert res.size == "tiny" and res.dataset in ("fashion-mnist", "synthetic")
    heads = [c for c in res.comparisons if c.headline]
    assert len(heads) == 1 and heads[0].kind == "finding"
    assert res.verdict == heads[0].verdict
    # the headline is measured on every seed at tiny (nothing missing, nothing NaN)
    assert len(heads[0].values) == 2 and all(math.isfinite(v) for v in heads[0].values)
    for c in res.comparisons:
        assert c.claim == claim and c.note
        if c.kind == "finding":
            assert c.verdict in VERDICTS and c.ok
            assert c.size == "tiny" and c.dataset == res.dataset
        else:
            assert math.isfinite(c.measured) and math.isfinite(c.predicted)
    assert res.plots and all(isinstance(p, Plot) and p.series for p in res.plots)
    for p in res.plots:
        for s in p.series:
            assert len(s.x) == len(s.y) > 0
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("claim", ["R-F1", "R-F3", "R-F4/F6"])
def test_initialization_claims_state_why_no_floor(tiny_results, claim):
    assert "no floor: a claim about" in tiny_results[claim].summary


def test_arms_per_size():
    assert r_t3.ARMS["quick"] == r_t3.HEADLINE == ("bn", "pre-ln")
    assert r_t3.base("quick") == _deep.base("quick")  # shared with the other checks
    assert len(r_t3.ARMS["cpu"]) * r_t3.N_SEEDS["cpu"] <= 16
    assert r_f5.TRAIN_BATCH["quick"] == (_deep.base("quick")["batch_size"],)
    assert r_f4f6.ARMS["quick"] == ("bn", "ln")
    assert r_f4f6.SETTINGS["quick"]["steps"] == r_f4f6.STEP_F4
    assert a_ti.ARMS["quick"] == ((2.0, 6.0), (100.0, 0.5))


# ------------------------------------------------------------------ hand-built runs
def _fake_grid(acc: dict, extra=None):
    """A ``run_grid`` stand-in: every label gets val accuracy ``acc.get(label, 0.9)`` on
    every seed, plus ``extra(label, seed_index)`` keys."""

    def run_grid(base, variants, scale, seed=0, *, callback_factory=None, n_seeds=None,
                 floor="dataset"):
        seeds = scale.seeds(seed, n_seeds)
        hist = {}
        for lab in variants:
            for i, s in enumerate(seeds):
                e = {"val_acc": acc.get(lab, 0.9), "val_loss": 0.3, "train_loss": 0.2}
                if extra is not None:
                    e.update(extra(lab, i))
                hist[(lab, s)] = (e,)
        if floor == "dataset":
            value, reason = _deep.FLOORS["fashion-mnist"], ""
        else:
            value, reason = None, str(floor)
        return _deep.Runs(labels=tuple(variants), seeds=seeds, histories=hist,
                          diverged={k: False for k in hist}, scale=scale,
                          dataset="fashion-mnist", elapsed=0.0, floor=value,
                          floor_reason=reason)

    return run_grid


def test_r_t3_arm_under_its_floor_is_invalid(monkeypatch):
    monkeypatch.setattr(_deep, "run_grid", _fake_grid({"PreLN": 0.80}))
    res = r_t3.check(size="cpu")
    head = res.headline
    assert head.quantity.startswith("val accuracy gap BN - PreLN") and head.verdict == "invalid"
    assert "not trained: PreLN val acc 0.800 < floor 0.85" in head.note
    # a record between trained arms keeps a verdict (identical accuracies: unresolved)
    bn_ln = next(c for c in res.comparisons if c.quantity.startswith("val accuracy: BN > LN"))
    assert bn_ln.verdict == "unresolved"
    monkeypatch.setattr(_deep, "run_grid", _fake_grid({}))
    assert r_t3.check(size="cpu").verdict == "confirmed"  # gap 0 < CLOSE on every seed


def _tb(acc_small):
    def extra(lab, i):
        out = {f"tb_acc_batch_{b}": 0.9 for b in r_f5.TEST_BATCH_SIZES}
        out.update(tb_acc_running=0.9, tb_n_val=5000.0)
        out[f"tb_acc_batch_{r_f5.B_SMALL}"] = acc_small + 0.001 * i
        return out
    return extra


def test_r_f5_headline_and_floor(monkeypatch):
    monkeypatch.setattr(_deep, "run_grid", _fake_grid({}, _tb(0.82)))
    res = r_f5.check(size="cpu")
    assert res.headline.verdict == "confirmed" and res.ok
    assert len(res.headline.values) == r_f5.N_SEEDS["cpu"][128]
    assert "train batch 128" in res.headline.quantity
    under = {r_f5.label(128): 0.84}  # the reported (running-statistics) accuracy
    monkeypatch.setattr(_deep, "run_grid", _fake_grid(under, _tb(0.82)))
    res = r_f5.check(size="cpu")
    assert res.headline.verdict == "invalid" and "not trained" in res.headline.note
    # the probe's running accuracy (0.9) is not the run's (0.84): the exact record fails
    assert not res.ok


def test_a_ti_amplitude_arm_under_floor(monkeypatch):
    monkeypatch.setattr(_deep, "run_grid", _fake_grid(
        {"amplitude 6": 0.80},
        lambda lab, i: {k: 1.0 + 0.01 * i for k in a_ti.KEYS}))
    res = a_ti.check(size="cpu")
    assert res.headline.verdict == "invalid" and "amplitude 6 val acc 0.800" in res.headline.note


def test_a_tii_per_snr_floors(monkeypatch):
    floors = {100.0: 0.847, 10.0: 0.835, 1.0: 0.80, 0.5: 0.77}
    monkeypatch.setattr(a_ti, "snr_floors", lambda size, seed, snrs: (
        {r: floors[r] for r in snrs}, "floors stated for the test"))

    def norms(lab, i):
        snr = float(lab.split()[-1])
        return {k: (1.0 + 0.01 * i) * (1.0 + 0.01 * math.log(snr)) for k in a_ti.KEYS}

    # SNR 0.5 at 0.78: under 0.85 but over its own floor 0.77 -> a verdict
    monkeypatch.setattr(_deep, "run_grid", _fake_grid({"SNR 0.5": 0.78, "SNR 1": 0.81,
                                                       "SNR 10": 0.84}, norms))
    res = a_ti.check_snr(size="cpu")
    assert res.headline.verdict == "confirmed"
    assert all(c.verdict != "invalid" for c in res.findings)
    # under its own floor -> invalid
    monkeypatch.setattr(_deep, "run_grid", _fake_grid({"SNR 0.5": 0.70}, norms))
    res = a_ti.check_snr(size="cpu")
    assert res.headline.verdict == "invalid"
    assert "SNR 0.5 val acc 0.700 < floor 0.770" in res.headline.note


def test_snr_floor_scaling(monkeypatch):
    acc = {None: 0.80, 100.0: 0.80, 0.5: 0.72}
    monkeypatch.setattr(a_ti, "reference_accuracy",
                        lambda size, seed, snr: ("fashion-mnist", acc[snr]))
    floors, text = a_ti.snr_floors("cpu", 0, (100.0, 0.5))
    assert floors[100.0] == pytest.approx(0.85)
    assert floors[0.5] == pytest.approx(0.85 * 0.72 / 0.80)
    assert "reference" in text
    assert a_ti.snr_floors("tiny", 0, (100.0, 0.5))[0] == {}


def test_reference_classifier_is_a_classifier():
    with _deep.options(allow_synthetic=True):
        name, acc = a_ti.reference_accuracy("tiny", 0, None)
    assert name in ("fashion-mnist", "synthetic") and 0.0 <= acc <= 1.0


def test_r_f5_callback_flattens_the_probe():
    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.runs import run_dataset
    from perceptron_theory.deep.train import TrainConfig

    with _deep.options(allow_synthetic=True):
        data = _deep.dataset_args(_deep.SCALES["tiny"])
    cfg = TrainConfig(**{**data, **_deep.base("tiny"), "norm": "bn", "seed": 0}).to_dict()
    (cb,) = r_f5.test_batch_callback(cfg)
    b = run_dataset(cfg)
    torch.manual_seed(0)
    net = make_model("mlp", norm="bn", in_channels=b.in_channels, image_size=b.image_size,
                     num_classes=b.num_classes, hidden=8)
    assert cb(net, cfg["epochs"] + 1, {}) is None
    out = cb(net, cfg["epochs"], {})
    assert set(out) == {"tb_acc_running", "tb_n_val",
                        *(f"tb_acc_batch_{b}" for b in r_f5.TEST_BATCH_SIZES)}
    n_val = int(out["tb_n_val"])
    for b in r_f5.TEST_BATCH_SIZES:
        v = out[f"tb_acc_batch_{b}"]
        assert (v is None) == (b > n_val) and (v is None or 0.0 <= v <= 1.0)
    assert np.isfinite(out["tb_acc_running"])
