"""The generalization checks (L-D, L-F1a) pass at quick size, fail when the theory they test
is perturbed, and the Fig. 1a script runs at tiny size."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from perceptron_theory.plotting import Plot
from perceptron_theory.theory import generalization as gen
from validation import REGISTRY, l_d, l_f1a

MODULES = {"L-D": l_d, "L-F1a": l_f1a}
# a reduced L-F1a for the perturbation tests (the linear part only matters there)
SMALL = {"N": (100, 200), "seeds": (60, 30), "realized": (10, 5), "relu_N": (60, 100),
         "relu_seeds": (4, 4), "lbfgs_seeds": 1, "lbfgs_inits": 1}


@pytest.fixture(scope="module")
def results():
    return {claim: mod.check(quick=True, seed=0) for claim, mod in MODULES.items()}


@pytest.mark.parametrize("claim", list(MODULES))
def test_check_passes(results, claim):
    res = results[claim]
    assert REGISTRY[claim].func is MODULES[claim].check
    bad = [c for c in res.comparisons if not c.ok]
    assert not bad, "\n".join(f"{c.quantity}: predicted {c.predicted}, measured {c.measured}, "
                              f"tol {c.tolerance}" for c in bad)
    assert len(res.comparisons) >= 20 and res.summary
    assert res.plots and all(isinstance(p, Plot) for p in res.plots)
    json.dumps(res.to_dict(), allow_nan=False)


def test_l_f1a_reports_the_finite_size_trend_and_the_relu_finding(results):
    res = results["L-F1a"]
    extrap = [c for c in res.comparisons if "extrapolation" in c.quantity]
    assert len(extrap) == len(l_f1a.CURVES) * len(l_f1a.ALPHAS)
    assert all("c = " in c.note for c in extrap)
    assert "y>0 samples alone" in res.summary and "NOT by exhaustive training" in res.summary
    relu_gap = [c for c in res.comparisons if "min-norm global minimizer" in c.quantity]
    assert relu_gap and all(c.ok and c.measured > 0.03 for c in relu_gap)


def _failing(mod, **kw):
    return [c.quantity for c in mod.check(quick=True, seed=0, **kw).comparisons if not c.ok]


def test_paper_plug_in_convention_fails_the_per_sample_curve(monkeypatch):
    """Reading BN's per-sample decay as the sum-convention zeta (the paper's plug-in) is
    caught by the finite-N ridge at zeta = alpha/(2M)."""
    monkeypatch.setitem(l_f1a.SIZES, True, SMALL)
    true = gen.learning_curve

    def plug_in(student, method, alpha, **kw):
        if method == "bn":
            kw["decay_convention"] = "sum"
        return true(student, method, alpha, **kw)

    monkeypatch.setattr(l_f1a.gen, "learning_curve", plug_in)
    failing = _failing(l_f1a)
    assert any(q.startswith("zeta=alpha/(2M) per-sample, alpha=3.0") for q in failing), failing
    assert not any(q.startswith("min-norm") for q in failing)


def test_wrong_marchenko_pastur_edges_fail(monkeypatch):
    """Edges (1 -+ alpha)^2 instead of (1 -+ sqrt(alpha))^2 (an OCR-style slip) must fail
    both the quadrature (L-D) and the finite-N comparison (L-F1a)."""
    true = gen._mp_core
    monkeypatch.setattr(gen, "_mp_core", lambda a, z: true(np.asarray(a) ** 2, z))
    failing = _failing(l_d)
    assert any(q.startswith("G alpha=2.5") for q in failing), failing
    assert any(q.startswith("ridge eps alpha=0.3") for q in failing), failing
    monkeypatch.setitem(l_f1a.SIZES, True, SMALL)
    failing = _failing(l_f1a)
    assert any("ridge zeta=S, alpha=2.0" in q for q in failing), failing


def test_garbled_relu_order_parameters_fail(monkeypatch):
    """gamma^2 = alpha/2 + alpha S/(2(2 - alpha)) (one reading of the printed eq. 22) is not
    consistent with eq. 25."""
    true = gen.relu_exhaustive

    def garbled(alpha, noise, **kw):
        c = true(alpha, noise, **kw)
        a = np.asarray(c.alpha)
        gamma = np.sqrt(a / 2 + a * noise / (2 * (2 - a)))
        import dataclasses

        return dataclasses.replace(c, gamma=gamma, R=(a / 2) / gamma)

    monkeypatch.setattr(gen, "relu_exhaustive", garbled)
    assert any(q.startswith("eq.25 = eps_relu") for q in _failing(l_d))


def test_fig1a_tiny(tmp_path):
    mod = importlib.import_module("paper_figures.fig1a")
    paths = mod.main(out_dir=tmp_path, size="tiny")
    pngs = [p for p in paths if p.suffix == ".png"]
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    doc = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    d = doc["data"]
    np.testing.assert_allclose(d["optimum"]["zeta"], 0.25, atol=1e-6)
    np.testing.assert_allclose(d["optimum"]["eps"], np.interp(d["optimum"]["alpha"], d["alpha"],
                                                              d["zeta_S"]), rtol=1e-2)
    a = np.array(d["alpha"])
    for key in ("plug_in", "per_sample", "zeta_S"):
        assert all(v is not None for v in d[key])
    # the zeta = S curve lies below every other curve (Bayes optimum)
    zs = np.array(d["zeta_S"])
    for key in ("plug_in", "per_sample"):
        assert np.all(zs <= np.array(d[key]) + 1e-12)
    mn = np.array([np.inf if v is None else v for v in d["min_norm"]])
    assert np.all(zs <= mn + 1e-12) and a.max() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="size"):
        mod.main(out_dir=tmp_path, size="huge")
