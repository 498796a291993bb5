"""Comparison records, the registry and the report writer (failures are reported, not lost)."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import validation
from validation import _core
from validation._core import CheckResult, compare, expect
from validation.report import run


def test_compare_semantics():
    c = compare("X", "q", 1.0, 1.09, stderr=0.02, n_sigma=4, atol=0.02)
    assert c.tolerance == pytest.approx(0.1) and c.ok
    assert not compare("X", "q", 1.0, 1.11, stderr=0.02, n_sigma=4, atol=0.02).ok
    assert not compare("X", "q", 1.0, float("nan"), atol=1.0).ok
    assert set(c.to_dict()) >= {"claim", "quantity", "predicted", "measured", "stderr",
                                "tolerance", "ok", "note"}


def test_expect_semantics():
    assert expect("X", "q", 0.0, 0.1, ">=").ok
    assert not expect("X", "q", 0.0, -0.1, ">=").ok
    assert expect("X", "q", 0.0, -0.1, "<=").ok
    with pytest.raises(ValueError, match="relation"):
        expect("X", "q", 0.0, 0.0, "==")


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@given(finite, finite, st.floats(min_value=0, max_value=10), st.floats(min_value=0, max_value=1))
def test_compare_is_symmetric_and_monotone(x, y, se, atol):
    a = compare("X", "q", x, y, stderr=se, atol=atol)
    b = compare("X", "q", y, x, stderr=se, atol=atol)
    assert a.ok == b.ok
    if a.ok:  # a larger allowance never turns a pass into a failure
        assert compare("X", "q", x, y, stderr=2 * se, atol=2 * atol).ok
    assert compare("X", "q", x, x, stderr=se, atol=atol).ok


def test_every_registered_claim_is_a_papers_md_id():
    reg = validation.load_all()
    assert {"L-eq6", "L-T1"} <= set(reg)
    for claim in reg:
        assert claim.split("-")[0] in {"L", "D", "R", "A"}


def test_report_records_a_failing_and_a_raising_check(tmp_path, monkeypatch):
    validation.load_all()
    reg = dict(_core.REGISTRY)

    def bad(quick=True, seed=0):
        return CheckResult("Z-bad", "bad", (compare("Z-bad", "q", 1.0, 2.0, atol=0.1),))

    def boom(quick=True, seed=0):
        raise RuntimeError("kaboom")

    reg["Z-bad"] = _core.Check("Z-bad", "bad", bad)
    reg["Z-boom"] = _core.Check("Z-boom", "boom", boom)
    monkeypatch.setattr(_core, "REGISTRY", reg)
    monkeypatch.setattr("validation.report.load_all", lambda: reg)
    rep = run(tmp_path, quick=True, claims=["Z-bad", "Z-boom"])
    assert not rep.ok and rep.n_failed == 2
    res = json.loads((tmp_path / "results.json").read_text())
    assert [c["ok"] for c in res["checks"]] == [False, False]
    assert "kaboom" in (tmp_path / "report.md").read_text()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert math.isfinite(res["elapsed_s"])
