"""Luo et al.'s deep checks on the evidence spine (L-F2ab, L-F2ef, L-F2gh, L-F4).

At ``size="tiny"`` only the structure is asserted (one headline finding, statement, data
set and size, finite headline values, exact records that pass); the floors are tested on
hand-made runs (an arm under its floor makes its records invalid); the two measurements
set beside :mod:`perceptron_theory.theory` are tested on small nets where the answer is
known (the zeta identity; BN's penalty vanishes when the batch is the population).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from validation import _deep, l_f2ab, l_f2ef, l_f2gh, l_f4  # noqa: E402
from validation._core import REGISTRY  # noqa: E402

pytestmark = pytest.mark.deep

MODULES = {"L-F2ab": l_f2ab, "L-F2ef": l_f2ef, "L-F2gh": l_f2gh, "L-F4": l_f4}


@pytest.fixture(scope="module")
def tiny():
    with _deep.options(allow_synthetic=True):
        return {claim: mod.check(size="tiny", seed=0) for claim, mod in MODULES.items()}


@pytest.mark.parametrize("claim", sorted(MODULES))
def test_tiny_structure(tiny, claim):
    res = tiny[claim]
    assert REGISTRY[claim].func is MODULES[claim].check
    assert res.statement and res.size == "tiny" and res.dataset
    heads = [c for c in res.comparisons if c.headline]
    assert len(heads) == 1 and heads[0].kind == "finding"
    assert res.verdict == heads[0].verdict
    assert len(heads[0].values) == 2 and all(math.isfinite(v) for v in heads[0].values)
    for c in res.comparisons:
        if c.kind == "exact":
            assert c.ok, (c.quantity, c.measured, c.predicted)
        else:
            assert c.size == "tiny" and c.dataset == res.dataset
    json.dumps(res.to_dict(), allow_nan=False)


def test_theory_records_are_present(tiny):
    """Two checks set a deep measurement beside perceptron_theory.theory."""
    ab = [c for c in tiny["L-F2ab"].comparisons if "zeta_theorem1" in c.quantity]
    assert len(ab) == 1 and ab[0].kind == "exact"
    ef = [c for c in tiny["L-F2ef"].comparisons if "Theorem 1" in c.quantity]
    assert len(ef) == 2 and all(c.kind == "finding" for c in ef)


def test_quick_arms_are_the_headline_pair():
    for mod in (l_f2ab, l_f2gh):
        assert set(mod.ARMS["quick"]) == set(mod.HEADLINE)
    assert l_f2ef.SETTINGS["quick"]["batch_sizes"] == (16, 128)
    # the shared base run: BN M=128 of L-F2ab and WN of L-F2gh are L-F2cd's configurations
    assert l_f2ab.variants("quick")["bn"] == {}
    assert l_f2gh.arms("quick")["wn"][1] == {"norm": "wn"}
    assert l_f2ab._base("quick") == _deep.base("quick") == l_f2gh._base("quick")


# ------------------------------------------------------------------------------ floors
class Seeds(list):
    """One value per seed in :func:`_hand_runs` (anything else is every seed's value)."""


def _hand_runs(values: dict, seeds=(0, 1, 2), floor=0.85) -> _deep.Runs:
    """``values``: label -> dict of final metrics (same for every seed, or :class:`Seeds`)."""
    hist = {}
    for lab, metrics in values.items():
        for i, s in enumerate(seeds):
            hist[(lab, s)] = ({k: (v[i] if isinstance(v, Seeds) else v)
                               for k, v in metrics.items()},)
    return _deep.Runs(labels=tuple(values), seeds=tuple(seeds), histories=hist,
                      diverged={k: False for k in hist}, scale=_deep.SCALES["cpu"],
                      dataset="fashion-mnist", elapsed=0.0, floor=floor)


def _ok(acc=0.9):
    return {"val_acc": acc, "val_loss": Seeds([0.30, 0.31, 0.29]), "train_loss": 0.25}


def test_l_f2gh_headline_invalid_when_wn_dropout_is_under_its_floor(monkeypatch):
    a = l_f2gh.arms("cpu")
    vals = {a[k][0]: _ok() for k in l_f2gh.ARMS["cpu"]}
    vals[a["wnd"][0]] = _ok(acc=0.5)
    monkeypatch.setattr(_deep, "run_grid", lambda *args, **kw: _hand_runs(vals))
    res = l_f2gh.check(size="cpu")
    assert res.verdict == "invalid" and "not trained" in res.headline.note
    assert res.headline.quantity.startswith("val accuracy: WN +")
    # records not involving the untrained arm keep a verdict
    bn = [c for c in res.comparisons if c.quantity.startswith("val loss: BN M=512 +")]
    assert bn and bn[0].verdict != "invalid"


def test_l_f2ab_headline_invalid_when_pn_is_under_its_floor(monkeypatch):
    lab = l_f2ab.labels("cpu")
    vals = {lab[k]: _ok() for k in l_f2ab.ARMS["cpu"]}
    vals[lab["pngd"]] = _ok(acc=0.3)
    monkeypatch.setattr(l_f2ab, "grid", lambda size, seed: _hand_runs(vals))
    res = l_f2ab.check(size="cpu")
    assert res.verdict == "invalid"
    ghost = [c for c in res.comparisons if c.quantity.startswith("val loss: ghost")]
    assert ghost[0].verdict != "invalid"


def test_l_f2ef_records_and_floor(monkeypatch):
    ms = l_f2ef.SETTINGS["cpu"]["batch_sizes"]
    pen = {"pen": [0.04, 0.01], "pen_theory": [0.4, 0.1], "pen_theory_exact": [0.45, 0.1]}
    vals = {l_f2ef.label(m): {**_ok(), "gamma_sq_mean": Seeds([1.0 + m / 100, 1.1 + m / 100,
                                                               0.9 + m / 100]), **pen}
            for m in ms}
    monkeypatch.setattr(l_f2ef, "grid", lambda size, seed: _hand_runs(vals))
    res = l_f2ef.check(size="cpu")
    assert res.verdict == "confirmed"  # gamma^2 grows with M in every seed
    theory = [c for c in res.comparisons if "within a factor" in c.quantity][0]
    # measured ratio 4 == Theorem 1's 4: d = log 1.25 in every seed
    np.testing.assert_allclose(theory.values, math.log(l_f2ef.MARGIN))
    assert theory.verdict == "confirmed"
    vals[l_f2ef.label(ms[0])]["val_acc"] = 0.6
    res = l_f2ef.check(size="cpu")
    assert res.verdict == "invalid"
    assert all(c.verdict == "invalid" for c in res.comparisons if "Theorem 1" in c.quantity)


def _finetune_record(grow: float):
    w0, w1 = [1.0, 2.0], [1.0 * (1 + grow), 2.0 * (1 + grow)]
    return {"fold_max_rel_err": 1e-7, "step": [0, 5], "weight_layers": ["a", "b"],
            "weight_norm": [w0, w1], "control_weight_norm": [w0, w0],
            "train_loss": [0.3, 0.29], "val_loss": [0.31, 0.32],
            "control_train_loss": [0.3, 0.3], "control_val_loss": [0.31, 0.31]}


def test_l_f4_headline_and_floor(monkeypatch):
    def runs(acc):
        return _hand_runs({l_f4.LABEL: {"val_acc": acc, "finetune": Seeds([
            _finetune_record(0.01), _finetune_record(0.02), _finetune_record(0.015)])}})

    monkeypatch.setattr(l_f4, "grid", lambda size, seed: runs(0.9))
    res = l_f4.check(size="cpu")
    assert res.verdict == "confirmed" and res.ok
    monkeypatch.setattr(l_f4, "grid", lambda size, seed: runs(0.8))
    res = l_f4.check(size="cpu")
    assert res.verdict == "invalid" and res.ok  # the exact fold record still passes


# ------------------------------------------------------------------- theory beside nets
def test_zeta_identity_on_a_pn_net():
    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.norms import refresh_population_stats

    torch.manual_seed(0)
    net = make_model("cnn", norm="pn", in_channels=1, image_size=12,
                     channels=(2, 2, 3, 3), hidden=5, padding="valid")
    x = torch.randn(32, 1, 12, 12)
    refresh_population_stats(net, [x], passes=None)
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "population_mean"):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    out = l_f2ab.zeta_identity(net, x, 8)
    assert len(out["zeta_torch"]) == 5  # four conv slots and the fc slot
    bound = l_f2ab.ZETA_RTOL + 2 * out["zeta_eps"] / out["zeta_var_min"]
    assert out["zeta_max_rel_dev"] <= bound
    assert all(z > 0 for layer in out["zeta_theory"] for z in layer)


def test_bn_penalty_vanishes_when_the_batch_is_the_population():
    from perceptron_theory.deep.models import make_model

    torch.manual_seed(0)
    net = make_model("cnn", norm="bn", in_channels=1, image_size=12, channels=(2, 2, 3, 3),
                     hidden=6, padding="valid", init="he", single_bn_at_embedding=True)
    with torch.no_grad():
        net.body[-2].norm.weight.uniform_(0.5, 1.5)
    x, y = torch.randn(64, 1, 12, 12), torch.randint(0, 10, (64,))
    g = torch.Generator().manual_seed(0)
    out = l_f2ef.bn_penalty(net, x, y, ms=(8, 32, 64), permutations=3, generator=g)
    assert abs(out["pen"][2]) < 1e-12  # one batch of all 64: batch stats = population stats
    assert all(math.isfinite(v) and v >= 0 for v in out["pen_se"])
    # Theorem 1 at leading order: zeta ~ 1/M whatever the activations
    assert out["pen_theory"][0] / out["pen_theory"][1] == pytest.approx(4.0, rel=1e-12)
    assert out["pen_theory_exact"][0] > out["pen_theory"][0]  # dropped O(1/M^2) terms > 0


def test_merge_keeps_every_arm():
    a = _hand_runs({"x": _ok()})
    b = _hand_runs({"y": _ok(0.8)})
    m = l_f2ab.merge(a, b)
    assert m.labels == ("x", "y") and m.accuracy("y") == pytest.approx(0.8)
    with pytest.raises(ValueError, match="seeds"):
        l_f2ab.merge(a, _hand_runs({"z": _ok()}, seeds=(0, 1)))
