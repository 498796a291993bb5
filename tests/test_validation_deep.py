"""The deep-network checks and the evidence spine they share.

Every registered check with sizes (the deep ones) runs at ``size="tiny"`` (seconds): only
the structure is asserted -- one headline finding, a statement, the data set and size,
finite numbers, plots, strict JSON -- never the outcome, which means nothing at that
size. The verdict rule, the floors, the data-missing path, the run store and the exit
status are tested on constructed inputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import validation  # noqa: E402
from perceptron_theory.plotting import Plot  # noqa: E402
from validation import _core, _deep  # noqa: E402
from validation._core import VERDICTS, CheckResult, compare, finding, verdict_of  # noqa: E402

pytestmark = pytest.mark.deep

DEEP = sorted(c for c, chk in validation.load_all().items() if chk.sized)


@pytest.fixture(scope="module")
def tiny_results():
    # structure only: the synthetic teacher stands in where Fashion-MNIST is not installed
    with _deep.options(allow_synthetic=True):
        return {claim: validation.REGISTRY[claim].run(seed=0, size="tiny") for claim in DEEP}


def test_every_deep_claim_of_papers_md_has_a_check():
    deep_ids = {"L-F2ab", "L-F2cd", "L-F2ef", "L-F2gh", "L-F4", "D-T1/T2", "D-T3", "D-F2/F3",
                "R-F1", "R-F3", "R-F4/F6", "R-T3", "A-TI", "A-TII"}
    assert deep_ids <= set(DEEP)


@pytest.mark.parametrize("claim", DEEP)
def test_check_structure_at_tiny_size(tiny_results, claim):
    res = tiny_results[claim]
    assert isinstance(res, CheckResult) and res.claim == claim
    assert res.title and res.summary and res.statement
    assert res.size == "tiny" and res.dataset in ("fashion-mnist", "synthetic")
    heads = [c for c in res.comparisons if c.headline]
    assert len(heads) == 1 and heads[0].kind == "finding", [c.quantity for c in heads]
    assert res.verdict == heads[0].verdict
    for c in res.comparisons:
        assert c.claim == claim and c.note
        if c.kind == "finding":
            assert c.verdict in VERDICTS and c.ok and c.size == "tiny"
            assert len(c.values) >= 1
        else:
            assert c.verdict in ("pass", "fail")
    for p in res.plots:
        assert isinstance(p, Plot)
        for s in p.series:
            assert len(s.x) == len(s.y) > 0
    json.dumps(res.to_dict(), allow_nan=False)


def test_plots_draw(tiny_results, tmp_path):
    pytest.importorskip("matplotlib")
    from perceptron_theory import plotting

    for claim, res in tiny_results.items():
        if res.plots:
            path = tmp_path / f"{claim.replace('/', '_')}.png"
            plotting.save(res.plots, path)
            assert path.stat().st_size > 0


def test_sizes():
    assert _deep.resolve_size(True, None) == "quick"
    assert _deep.resolve_size(False, None) == "full"
    assert _deep.resolve_size(False, "cpu") == "cpu"
    with pytest.raises(ValueError, match="size must be one of tiny, quick, cpu, full"):
        _deep.resolve_size(True, "huge")
    assert _deep.SCALES["cpu"].seeds(4) == (4, 5, 6, 7, 8)
    assert _deep.SCALES["cpu"].seeds(0, 2) == (0, 1)
    assert _deep.SCALES["full"].device == "auto"
    assert not _deep.SCALES["tiny"].floor and _deep.SCALES["quick"].floor
    # quick's runs are cpu's runs (shared through the store)
    assert _deep.base("quick") == _deep.base("cpu")
    assert _deep.SCALES["quick"].pool == _deep.SCALES["cpu"].pool


# --------------------------------------------------------------------------- verdict rule
@pytest.mark.parametrize("diffs, verdict", [
    ([0.10, 0.12, 0.11, 0.09], "confirmed"),        # t >> 2
    ([-0.10, -0.12, -0.11, -0.09], "contradicted"),
    ([0.1, -0.08, 0.05, -0.04], "unresolved"),       # |t| < 2
    ([0.3], "unresolved"),                            # one seed: no spread
    ([0.0, 0.0, 0.0], "unresolved"),
    ([0.2, 0.2, 0.2], "confirmed"),                   # deterministic positive
    ([0.1, np.nan, 0.2], "invalid"),                  # a diverged seed
])
def test_verdict_rule_on_constructed_samples(diffs, verdict):
    assert verdict_of(diffs)[0] == verdict
    assert finding("X", "q", diffs).verdict == verdict


def test_verdict_rule_threshold_is_t_2():
    # d = (m + s e) with e = (+1, -1) * a: mean m, stderr a / 1 for n = 2 ... use n = 4
    base = np.array([1.0, -1.0, 1.0, -1.0])
    se_unit = base.std(ddof=1) / 2.0
    just_above = 2.01 * se_unit + base
    just_below = 1.99 * se_unit + base
    assert verdict_of(just_above)[0] == "confirmed"
    assert verdict_of(just_below)[0] == "unresolved"
    assert verdict_of(-just_above)[0] == "contradicted"


def test_invalid_reason_wins_and_findings_never_fail():
    c = finding("X", "q", [1.0, 1.1, 0.9], invalid="not trained: a 0.5 < floor 0.85")
    assert c.verdict == "invalid" and c.ok and "not trained" in c.note
    res = CheckResult("X", "t", (c,), statement="s")
    assert res.ok and res.verdict == "unresolved"  # no headline: not a verdict
    res = CheckResult("X", "t", (replace(c, headline=True),), statement="s")
    assert res.verdict == "invalid"
    json.dumps(res.to_dict(), allow_nan=False)


def _runs(values: dict, seeds=(0, 1, 2), key="val_loss", acc=None, floor=0.85) -> _deep.Runs:
    acc = acc or {}
    hist = {(lab, s): ({key: float(v[i]), "val_acc": acc.get(lab, 0.9)},)
            for lab, v in values.items() for i, s in enumerate(seeds)}
    return _deep.Runs(labels=tuple(values), seeds=tuple(seeds), histories=hist,
                      diverged={k: False for k in hist}, scale=_deep.SCALES["cpu"],
                      dataset="fashion-mnist", elapsed=0.0, floor=floor)


def test_paired_statistics():
    mean, se, n = _deep.paired([1.0, 2.0, 4.0], [0.0, 1.0, 1.0])
    d = np.array([1.0, 1.0, 3.0])
    assert n == 3 and mean == pytest.approx(d.mean())
    assert se == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    assert _deep.paired([1.0, np.nan], [0.0, 0.0])[2] == 1


def test_ordering_orientation_and_verdicts():
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.55, 0.8]})
    good = _deep.ordering("X", "a < b", runs, "a", "b", "val_loss", higher_is_better=False)
    assert good.measured == pytest.approx(np.mean([0.2, -0.05, 0.25]))
    assert good.verdict == "unresolved" and "seeds [0, 1, 2]" in good.note  # t = 1.43
    assert good.dataset == "fashion-mnist" and good.size == "cpu"
    bad = _deep.ordering("X", "b < a", runs, "b", "a", "val_loss", higher_is_better=False)
    assert bad.measured < 0
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.8, 0.76]})
    assert _deep.ordering("X", "a < b", runs, "a", "b", "val_loss",
                          higher_is_better=False).verdict == "confirmed"
    assert _deep.ordering("X", "b < a", runs, "b", "a", "val_loss",
                          higher_is_better=False).verdict == "contradicted"


def test_arm_under_its_floor_makes_records_invalid():
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.8, 0.76]}, acc={"b": 0.62})
    c = _deep.ordering("X", "a < b", runs, "a", "b", "val_loss", higher_is_better=False)
    assert c.verdict == "invalid" and "not trained: b val acc 0.620 < floor 0.85" in c.note
    # a record not involving the untrained arm keeps its verdict
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.8, 0.76], "c": [0.7, 0.8, 0.76]},
                 acc={"c": 0.62})
    assert _deep.ordering("X", "a < b", runs, "a", "b", "val_loss",
                          higher_is_better=False).verdict == "confirmed"
    assert "c 0.620" in runs.arm_table() and "floor 0.85" in runs.arm_table()
    # no floor (a claim about initialization): never invalid for accuracy
    runs = replace(runs, floor=None, floor_reason="initialization")
    assert _deep.sign_record("X", "q", [1.0, 1.2, 1.1], runs=runs).verdict == "confirmed"
    assert "no floor: initialization" in runs.arm_table()


def test_diverged_seed_makes_the_record_invalid():
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.65, 0.8]})
    runs.diverged[("b", 1)] = True
    c = _deep.ordering("X", "a < b", runs, "a", "b", "val_loss", higher_is_better=False)
    assert c.verdict == "invalid" and c.n == 2


def test_bound_check_orientation():
    runs = _runs({"a": [0.0, 0.0, 0.0]})
    assert _deep.bound_check("X", "q", [0.004, 0.006, 0.005], 0.01, "<=",
                             runs=runs).verdict == "confirmed"
    assert _deep.bound_check("X", "q", [0.02, 0.03, 0.025], 0.01, "<=",
                             runs=runs).verdict == "contradicted"
    with pytest.raises(ValueError, match="relation"):
        _deep.bound_check("X", "q", [0.0], 0.0, "==", runs=runs)


def test_seeds_for_power():
    assert _deep.seeds_for_power(0.02, 0.016) == 3     # ceil(2.56) = 3
    assert _deep.seeds_for_power(0.01, 0.016) == 11 - 1  # ceil(10.24) = 11, clipped to 10
    assert _deep.seeds_for_power(0.01, 0.016, hi=20) == 11
    with pytest.raises(ValueError, match="effect"):
        _deep.seeds_for_power(0.0, 0.01)


# --------------------------------------------------------------------------- data missing
def test_missing_data_is_skipped_not_synthetic(monkeypatch, tmp_path):
    from validation import l_f2cd, report

    monkeypatch.setitem(_deep._CACHE, "dir", "")  # as if Fashion-MNIST were absent
    with pytest.raises(_deep.DataMissing, match="apt-get install -y dataset-fashion-mnist"):
        _deep.dataset_args(_deep.SCALES["quick"])
    with _deep.options(allow_synthetic=True):
        assert _deep.dataset_args(_deep.SCALES["quick"])["dataset"] == "synthetic"
    rep = report.run(tmp_path, claims=["L-F2cd"], size="tiny")
    (res,) = rep.results
    assert res.status == "skipped" and res.verdict == "skipped" and rep.ok
    assert "data set missing" in res.summary
    row = json.loads((tmp_path / "results.json").read_text())["claims"][0]
    assert row["verdict"] == "skipped"
    rep = report.run(tmp_path, claims=["L-F2cd"], size="tiny", allow_synthetic=True)
    assert rep.results[0].dataset == "synthetic" and rep.results[0].status == "ran"
    assert l_f2cd.CLAIM == "L-F2cd"


# --------------------------------------------------------------------------- run store
_BASE = dict(model="mlp", norm="bn", model_options={"hidden": 8}, batch_size=20, epochs=1,
             lr=0.1, schedule="constant")


def _no_time(histories: dict) -> dict:
    return {k: [{m: v for m, v in e.items() if m != "time"} for e in h]
            for k, h in histories.items()}


def test_run_store_serves_stored_runs_and_retrains_corrupt_ones(tmp_path, monkeypatch):
    tiny = _deep.SCALES["tiny"]
    with _deep.options(cache_dir=tmp_path):
        first = _deep.run_grid(_BASE, {"a": {}}, tiny, 0)
        assert first.stored == 0
        files = sorted((tmp_path / "deep").rglob("*.json"))
        assert len(files) == 2  # two seeds
        calls = []
        real = _deep.train_unit
        monkeypatch.setattr(_deep, "train_unit",
                            lambda **kw: calls.append(1) or real(**kw))
        second = _deep.run_grid(_BASE, {"a": {}}, tiny, 0)
        assert second.stored == 2 and not calls
        assert second.histories == first.histories
        files[0].write_text(files[0].read_text()[:50])  # truncated entry
        third = _deep.run_grid(_BASE, {"a": {}}, tiny, 0)
        assert third.stored == 1 and len(calls) == 1
        assert _no_time(third.histories) == _no_time(first.histories)
        entry = json.loads(files[1].read_text())
        entry["payload"]["history"][0]["val_acc"] = 1.0  # tampered: checksum mismatch
        files[1].write_text(json.dumps(entry))
        assert _deep.run_grid(_BASE, {"a": {}}, tiny, 0).stored == 1
        with _deep.options(rerun=True):
            assert _deep.run_grid(_BASE, {"a": {}}, tiny, 0).stored == 0


def test_worker_processes_match_in_process():
    """Two tiny runs through the worker pool give the in-process histories bit for bit."""
    variants = {"a": {}, "b": {"lr": 0.05}}
    tiny = _deep.SCALES["tiny"]
    seq = _deep.run_grid(_BASE, variants, tiny, 0)
    par = _deep.run_grid(_BASE, variants, replace(tiny, workers=2), 0)
    for k in seq.histories:
        for key in ("train_loss", "val_loss", "val_acc"):
            assert seq.histories[k][0][key] == par.histories[k][0][key]


def test_idx_copy_roundtrip(tmp_path):
    from perceptron_theory.deep.data import read_idx

    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _deep._write_idx(tmp_path / "x", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), arr)


# --------------------------------------------------------------------------- exit status
def _fake_registry(monkeypatch, checks):
    reg = dict(validation.load_all())
    for claim, func in checks.items():
        reg[claim] = _core.Check(claim, claim, func)
    monkeypatch.setattr(_core, "REGISTRY", reg)
    monkeypatch.setattr("validation.report.load_all", lambda: reg)


def _finding_check(diffs):
    def f(quick=True, seed=0, size=None):
        return CheckResult("Z-f", "f", (finding("Z-f", "q", diffs, headline=True),),
                           statement="s", dataset="fashion-mnist", size=size or "quick")
    return f


@pytest.mark.parametrize("diffs, strict, code", [
    ([-1.0, -1.1, -0.9], False, 0),   # contradicted: a finding, not a failure
    ([0.1, -0.1, 0.05], False, 0),    # unresolved
    ([0.1, -0.1, 0.05], True, 1),     # --strict: anything but confirmed exits 1
    ([1.0, 1.1, 0.9], True, 0),       # confirmed
])
def test_exit_status_semantics(monkeypatch, tmp_path, capsys, diffs, strict, code):
    from perceptron_theory.cli import main

    _fake_registry(monkeypatch, {"Z-f": _finding_check(diffs)})
    argv = ["reproduce", "--claim", "Z-f", "--out", str(tmp_path), "--no-cache"]
    assert main(argv + (["--strict"] if strict else [])) == code
    out = capsys.readouterr().out
    assert "Z-f" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claims"][0]["verdict"] == verdict_of(diffs)[0]
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Claims") < md.index("## Records")


def test_exact_failure_and_crash_exit_1(monkeypatch, tmp_path, capsys):
    from perceptron_theory.cli import main

    def bad(quick=True, seed=0):
        return CheckResult("Z-bad", "bad", (compare("Z-bad", "q", 1.0, 2.0, atol=0.1),))

    def boom(quick=True, seed=0, size=None):
        raise RuntimeError("kaboom")

    _fake_registry(monkeypatch, {"Z-bad": bad, "Z-boom": boom})
    for claim in ("Z-bad", "Z-boom"):
        assert main(["reproduce", "--claim", claim, "--out", str(tmp_path)]) == 1
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claims"][0]["verdict"] == "error"
