"""Deep-network validation checks (L-F2ab, L-F2cd, L-F2gh, D-T1/T2, R-T3, A-TI, A-TII).

Each check runs at ``size="tiny"`` (seconds, a 120-image split): only the structure is
asserted -- records present, finite numbers, plots, a JSON-able result -- never the
outcome, which means nothing at that size. The statistics helpers of
``validation._deep`` are tested on hand-made histories, and the worker-process path of
``run_grid`` on two tiny runs.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perceptron_theory.plotting import Plot  # noqa: E402
from validation import CHECK_MODULES, REGISTRY, _deep  # noqa: E402

pytestmark = pytest.mark.deep

# claim -> (module, function)
CHECKS = {
    "L-F2ab": ("l_f2ab", "check"),
    "L-F2cd": ("l_f2cd", "check"),
    "L-F2gh": ("l_f2gh", "check"),
    "D-T1/T2": ("d_t1t2", "check"),
    "R-T3": ("r_t3", "check"),
    "A-TI": ("a_ti", "check"),
    "A-TII": ("a_ti", "check_snr"),
}


def _func(claim):
    mod, name = CHECKS[claim]
    return getattr(importlib.import_module(f"validation.{mod}"), name)


@pytest.fixture(scope="module")
def tiny_results():
    return {claim: _func(claim)(size="tiny", seed=0) for claim in CHECKS}


@pytest.mark.parametrize("claim", list(CHECKS))
def test_check_structure_at_tiny_size(tiny_results, claim):
    res = tiny_results[claim]
    assert CHECKS[claim][0] in CHECK_MODULES
    assert REGISTRY[claim].func is _func(claim)
    assert res.claim == claim and res.title and res.summary
    assert len(res.comparisons) >= 5
    for c in res.comparisons:
        assert c.claim == claim
        assert c.relation in ("==", ">=", "<=")
        for v in (c.predicted, c.measured, c.stderr, c.tolerance):
            assert math.isfinite(v), (c.quantity, v)
        assert "size tiny" in c.note and "seed" in c.note
    assert "size tiny" in res.summary
    assert res.plots and all(isinstance(p, Plot) and p.series for p in res.plots)
    json.dumps(res.to_dict(), allow_nan=False)


def test_plots_draw(tiny_results, tmp_path):
    pytest.importorskip("matplotlib")
    from perceptron_theory import plotting

    for claim, res in tiny_results.items():
        path = tmp_path / f"{claim.replace('/', '_')}.png"
        plotting.save(res.plots, path)
        assert path.stat().st_size > 0


def test_sizes():
    assert _deep.resolve_size(True, None) == "quick"
    assert _deep.resolve_size(False, None) == "full"
    assert _deep.resolve_size(False, "tiny") == "tiny"
    with pytest.raises(ValueError, match="size must be one of tiny, quick, full"):
        _deep.resolve_size(True, "huge")
    assert _deep.SCALES["quick"].seeds(4) == (4, 5, 6)
    assert _deep.SCALES["full"].device == "auto"


def _runs(values: dict, seeds=(0, 1, 2), key="val_loss") -> _deep.Runs:
    hist = {(lab, s): ({key: float(v[i])},) for lab, v in values.items()
            for i, s in enumerate(seeds)}
    return _deep.Runs(labels=tuple(values), seeds=tuple(seeds), histories=hist,
                      diverged={k: False for k in hist}, scale=_deep.SCALES["tiny"],
                      dataset="synthetic", elapsed=0.0)


def test_paired_statistics():
    mean, se, n = _deep.paired([1.0, 2.0, 4.0], [0.0, 1.0, 1.0])
    d = np.array([1.0, 1.0, 3.0])
    assert n == 3 and mean == pytest.approx(d.mean())
    assert se == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    assert _deep.paired([1.0, np.nan], [0.0, 0.0])[2] == 1


def test_ordering_sign_and_orientation():
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.65, 0.8]})
    good = _deep.ordering("X", "a < b", runs, "a", "b", "val_loss", higher_is_better=False)
    assert good.ok and good.measured == pytest.approx(np.mean([0.2, 0.05, 0.25]))
    assert "resolved" in good.note and "seeds [0, 1, 2]" in good.note
    bad = _deep.ordering("X", "b < a", runs, "b", "a", "val_loss", higher_is_better=False)
    assert not bad.ok and bad.measured < 0
    acc = _deep.ordering("X", "b > a", runs, "b", "a", "val_loss", higher_is_better=True)
    assert acc.ok and acc.measured == pytest.approx(-bad.measured)


def test_ordering_fails_on_diverged_runs():
    runs = _runs({"a": [0.5, 0.6, 0.55], "b": [0.7, 0.65, 0.8]})
    runs.diverged[("b", 1)] = True
    runs.diverged[("b", 0)] = True
    runs.diverged[("b", 2)] = True
    c = _deep.ordering("X", "a < b", runs, "a", "b", "val_loss", higher_is_better=False)
    assert not c.ok and math.isnan(c.measured)


def test_bound_check():
    runs = _runs({"a": [0.0, 0.0, 0.0]})
    assert _deep.bound_check("X", "q", [0.004, 0.006, 0.005], 0.01, "<=", runs=runs).ok
    assert not _deep.bound_check("X", "q", [0.02, 0.03, 0.01], 0.01, "<=", runs=runs).ok


def test_idx_copy_roundtrip(tmp_path):
    from perceptron_theory.deep.data import read_idx

    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _deep._write_idx(tmp_path / "x", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), arr)


def test_worker_processes_match_in_process():
    """Two tiny runs through the worker pool give the in-process histories bit for bit."""
    base = dict(model="mlp", norm="bn", model_options={"hidden": 8}, batch_size=20,
                epochs=1, lr=0.1, schedule="constant")
    variants = {"a": {}, "b": {"lr": 0.05}}
    tiny = _deep.SCALES["tiny"]
    seq = _deep.run_grid(base, variants, tiny, 0)
    par = _deep.run_grid(base, variants, replace(tiny, workers=2), 0)
    for k in seq.histories:
        for key in ("train_loss", "val_loss", "val_acc"):
            assert seq.histories[k][0][key] == par.histories[k][0][key]
