"""The Dauphin & Cubuk checks (D-T1/T2, D-T3, D-F2/F3, D-eq1, D-single) and their shared
arms (``validation._dauphin``).

At ``size="tiny"`` (seconds) only the structure is asserted: one headline finding, a
statement, the data set and size, finite records, passing exact records. The verdict
logic is tested on hand-made runs (``_dauphin.grid`` replaced): an arm under its floor
makes the records invalid; D-eq1's band rule on constructed ratios.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import validation  # noqa: E402
from validation import CHECK_MODULES, _dauphin, _deep, d_eq1, d_f2f3  # noqa: E402
from validation._core import VERDICTS, CheckResult  # noqa: E402

pytestmark = pytest.mark.deep

CLAIMS = {"D-T1/T2": "d_t1t2", "D-T3": "d_t3", "D-F2/F3": "d_f2f3", "D-eq1": "d_eq1",
          "D-single": "d_single"}


@pytest.fixture(scope="module")
def tiny_results():
    reg = validation.load_all()
    with _deep.options(allow_synthetic=True):
        return {claim: reg[claim].run(seed=0, size="tiny") for claim in CLAIMS}


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_structure_at_tiny_size(tiny_results, claim):
    res = tiny_results[claim]
    assert CLAIMS[claim] in CHECK_MODULES and validation.REGISTRY[claim].sized
    assert isinstance(res, CheckResult) and res.claim == claim and res.status == "ran"
    assert res.title and res.summary and res.statement
    assert res.size == "tiny" and res.dataset in ("fashion-mnist", "synthetic")
    heads = [c for c in res.comparisons if c.headline]
    assert len(heads) == 1 and heads[0].kind == "finding"
    assert res.verdict == heads[0].verdict
    for c in res.comparisons:
        assert c.claim == claim and c.note
        if c.kind == "finding":
            assert c.verdict in VERDICTS and c.ok and c.size == "tiny"
            assert c.values and all(math.isfinite(v) for v in c.values), c.quantity
        else:
            assert c.ok, (c.quantity, c.measured)  # exact records: identities that hold
    for p in res.plots:
        for s in p.series:
            assert len(s.x) == len(s.y) > 0
    json.dumps(res.to_dict(), allow_nan=False)


def test_eq1_records_at_tiny(tiny_results):
    res = tiny_results["D-eq1"]
    exact = [c for c in res.comparisons if c.kind == "exact"]
    assert len(exact) == 2 and all(c.ok for c in exact)
    assert "corrected eq. 1" in res.headline.quantity


# ------------------------------------------------------------------------ shared arms
def test_cnn_arms_are_the_shared_base_run():
    """No-BN / BN arms are _deep.base with only ``norm`` changed (so the run store shares
    them with every check that uses the base run); single BN sets one model flag."""
    for size in ("tiny", "quick", "cpu"):
        base = _deep.base(size)
        assert {**base, **_dauphin.arm(_dauphin.BN, size)} == {**base, "norm": "bn"}
        assert {**base, **_dauphin.arm(_dauphin.NO_BN, size)} == {**base, "norm": "none"}
        single = _dauphin.arm(_dauphin.SINGLE, size)
        assert single["model_options"] == {**base["model_options"],
                                           "single_bn_at_embedding": True}
    assert _dauphin.arm(_dauphin.BN, "quick") == _dauphin.arm(_dauphin.BN, "cpu")
    with pytest.raises(ValueError, match="no cnn version"):
        _dauphin.arm(_dauphin.SINGLE_NO_FIXUP, "cpu")


@pytest.mark.parametrize("label", list(_dauphin.ARMS))
def test_full_size_arms_build(label):
    """Every arm of the full size (WRN family) is a valid TrainConfig and model."""
    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.train import TrainConfig

    cfg = TrainConfig(**{**_deep.base("full"), **_dauphin.arm(label, "full")})
    assert cfg.model == "wrn" and _dauphin.family("full") == "wrn"
    fixup = cfg.model_options.get("fixup", False)
    assert fixup == (cfg.norm == "none" or label == _dauphin.SINGLE)
    opts = {**cfg.model_options, **_dauphin.WRN_OPTIONS["tiny"]}
    net = make_model("wrn", norm=cfg.norm, in_channels=1, image_size=8, **opts)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_grid_reuses_runs_in_process():
    with _deep.options(allow_synthetic=True):
        a = _dauphin.grid((_dauphin.NO_BN, _dauphin.BN), "tiny", 5, n_seeds=2)
        b = _dauphin.grid((_dauphin.BN,), "tiny", 5, n_seeds=2)
        w = _dauphin.grid((_dauphin.NO_BN, _dauphin.SINGLE_NO_FIXUP), "tiny", 5, n_seeds=1,
                          fam="wrn")
    assert b.elapsed == 0.0 and b.histories[(_dauphin.BN, 5)] is a.histories[(_dauphin.BN, 5)]
    assert a.seeds == (5, 6) and a.floor is None
    # the WRN no-BN run is a different run from the CNN one
    assert w.histories[(_dauphin.NO_BN, 5)] is not a.histories[(_dauphin.NO_BN, 5)]
    last = w.histories[(_dauphin.SINGLE_NO_FIXUP, 5)][-1]
    assert "dropout_drop" in last and not any(k.startswith("eq1_") for k in last)


# ------------------------------------------------------------------ hand-made runs
def _history(acc: float, rng, epochs: int = 2, **final) -> tuple:
    out = []
    for e in range(epochs):
        h = {"val_acc": acc, "val_loss": 0.4 + 0.01 * rng.random(),
             "train_loss": 0.3 + 0.01 * rng.random(),
             "embedding_sq": 10.0 * (1 + e) * (1 + rng.random()),
             "output_sq": 5.0 * (1 + e) * (1 + rng.random())}
        if e == epochs - 1:
            h.update(dropout_drop=0.1 * rng.random(), clean_acc=acc, dropout_acc=acc - 0.05,
                     eq1_embedding_sq=8.0, eq1_embedding_sq_eval=8.0 * (1 + 0.01 * e),
                     eq1_relu_gaussian=8.0, eq1_gamma_beta_sq=16.0,
                     eq1_pre_activation_sq=16.0, eq1_pre_activation_exact=16.0,
                     eq1_embedding_is_relu_of_norm=1.0)
            h.update(final)
        out.append(h)
    return tuple(out)


def _fake_grid(acc: dict, seeds=(0, 1, 2), **final):
    rng = np.random.default_rng(0)

    def grid(labels, size, seed=0, n_seeds=None, fam=None):
        hist = {(lab, s): _history(acc.get(lab, 0.9), rng, **final)
                for lab in labels for s in seeds}
        return _deep.Runs(labels=tuple(labels), seeds=tuple(seeds), histories=hist,
                          diverged={k: False for k in hist}, scale=_deep.SCALES["cpu"],
                          dataset="fashion-mnist", elapsed=0.0, floor=0.85)

    return grid


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_arm_under_floor_makes_headline_invalid(monkeypatch, claim):
    """The arm every headline compares -- BN for D-T3, D-F2/F3, D-eq1; no BN for D-T1/T2 and
    D-single -- at 0.5 val accuracy: the headline is invalid (not trained)."""
    low = _dauphin.BN if claim in ("D-T3", "D-F2/F3", "D-eq1") else _dauphin.NO_BN
    monkeypatch.setattr(_dauphin, "grid", _fake_grid({low: 0.5}))
    res = validation.load_all()[claim].run(seed=0, size="cpu")
    assert res.verdict == "invalid" and "not trained" in res.headline.note
    assert f"{low} val acc 0.500" in res.headline.note
    # all arms trained: a verdict, not invalid
    monkeypatch.setattr(_dauphin, "grid", _fake_grid({}))
    res = validation.load_all()[claim].run(seed=0, size="cpu")
    assert res.verdict in ("confirmed", "contradicted", "unresolved")


def test_eq1_band_rule(monkeypatch):
    """Ratio 1 to the corrected prediction: confirmed; the printed eq. 1 (E|Emb|^2 =
    4 (|g|^2 + |b|^2), here 1/8 of it): contradicted; a ratio 2 (outside sqrt 2):
    contradicted."""
    monkeypatch.setattr(_dauphin, "grid", _fake_grid({}))
    res = d_eq1.check(size="cpu")
    head, printed = res.comparisons[0], res.comparisons[1]
    assert head.headline and head.verdict == "confirmed"
    assert head.values == pytest.approx([math.log(math.sqrt(2))] * 3)
    assert printed.verdict == "contradicted"
    assert printed.values == pytest.approx([math.log(math.sqrt(2)) - math.log(8)] * 3)
    assert all(c.ok for c in res.comparisons)
    monkeypatch.setattr(_dauphin, "grid", _fake_grid({}, eq1_embedding_sq=16.0))
    assert d_eq1.check(size="cpu").verdict == "contradicted"
    # a broken BN identity fails the exact record (and reproduce)
    monkeypatch.setattr(_dauphin, "grid", _fake_grid({}, eq1_pre_activation_sq=16.1))
    assert not d_eq1.check(size="cpu").ok


def test_eq1_constants_follow_the_derivation():
    """App. A: Swish_rho(z) -> z/2 and E z^2 = gamma^2 + beta^2, so E|Emb|^2 = (|g|^2 +
    |b|^2)/4, the inverse of eq. 1's printed constant (4) -- a factor 16; ReLU at beta 0:
    1/2, by Monte Carlo."""
    c = d_eq1.CONSTANTS
    assert c["eq. 1 as printed"] / c["App. A (Swish, rho -> 0)"] == 16.0
    g = torch.Generator().manual_seed(0)
    z = 1.7 * torch.randn(400_000, generator=g, dtype=torch.float64)
    rho = 1e-4
    swish = z * torch.sigmoid(rho * z)
    assert float(swish.square().mean() / z.square().mean()) == pytest.approx(0.25, rel=1e-3)
    relu = torch.relu(z).square().mean() / z.square().mean()
    assert float(relu) == pytest.approx(c["ReLU, beta = 0"], abs=5e-3)


def test_f2_growth_is_log_of_last_over_first():
    runs = _fake_grid({})((_dauphin.NO_BN,), "cpu")
    g = d_f2f3.growth(runs, _dauphin.NO_BN, "embedding_sq")
    for s, v in zip(runs.seeds, g, strict=True):
        h = runs.histories[(_dauphin.NO_BN, s)]
        assert v == pytest.approx(math.log(h[-1]["embedding_sq"] / h[0]["embedding_sq"]))
    runs = _deep.Runs(labels=("a",), seeds=(0,), histories={("a", 0): ({"x": 1.0},
                                                                        {"x": -1.0})},
                      diverged={("a", 0): False}, scale=_deep.SCALES["cpu"],
                      dataset="fashion-mnist", elapsed=0.0)
    assert math.isnan(d_f2f3.growth(runs, "a", "x")[0])
