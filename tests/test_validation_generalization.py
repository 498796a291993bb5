"""The generalization checks (L-D, L-F1a) pass at quick size, fail when the theory they test
is perturbed, and the Fig. 1a script runs at tiny size; the offline BN simulations of
L-F1a / L-F1b (Fig. 1a/1b squares) agree with their exact finite-N models and can fail."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from perceptron_theory.plotting import Plot
from perceptron_theory.theory import generalization as gen
from validation import REGISTRY, l_d, l_f1a, l_f1b

MODULES = {"L-D": l_d, "L-F1a": l_f1a}
# a reduced L-F1a for the perturbation tests (the linear part only matters there)
SMALL = {"N": (100, 200), "seeds": (60, 30), "realized": (10, 5), "relu_N": (60, 100),
         "relu_seeds": (4, 4), "lbfgs_seeds": 1, "lbfgs_inits": 1}
# a reduced BN section (one alpha, two small N) for the perturbation tests
SMALL_BN = {"runs": {0.5: (128, 256)}, "seeds": 4, "wn_max_N": 256}


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


@pytest.fixture
def small_bn(monkeypatch):
    """The linear-theory perturbation tests do not need the full BN simulation."""
    monkeypatch.setitem(l_f1a.BN_SIZES, True, SMALL_BN)


def test_l_f1a_bn_offline_follows_shrunk_min_norm_not_ridge(results):
    """Offline BN (M = 32): the WN + decay control sits on exact ridge, BN on the c_M-shrunk
    centred min-norm solution of the same data; one shrinkage fits every alpha, no ridge
    decay does (alpha = 0.8 is sampled)."""
    res = results["L-F1a"]
    by = {c.quantity: c for c in res.comparisons}
    cfg = l_f1a.BN_SIZES[True]
    n_runs = sum(len(Ns) for Ns in cfg["runs"].values())
    wn = [c for q, c in by.items() if q.startswith("WN + decay control")]
    paired = [c for q, c in by.items() if "c_M-shrunk min-norm on the same data" in q]
    assert len(paired) == n_runs and wn and all(c.ok for c in wn + paired)
    assert max(N for Ns in cfg["runs"].values() for N in Ns) >= 1024  # the quick N
    k = by["BN shrinkage k = (1 - c) M fitted over alpha"]
    assert k.ok and abs(k.predicted - 0.757) < 1e-3 and k.stderr < 0.2
    rejected = [c for q, c in by.items() if q.startswith("BN read as ridge")]
    assert len(rejected) == 2 and all(c.ok and c.measured > 20 for c in rejected)
    assert by["BN regularizes: eps - min-norm on the same data, alpha=0.8, N=512"].ok
    assert "c_M" in res.summary and "shrinks the min-norm" in res.summary
    assert any("ridge candidate" in q for q in by)
    assert any(p.title.startswith("BN offline") for p in res.plots)


def test_l_f1a_bn_detects_the_unshrunk_model(monkeypatch):
    """BN read as the plain (c = 1) min-norm solution, or as ridge, must fail."""
    cfg = {"runs": {0.8: (256, 512)}, "seeds": 8, "wn_max_N": 0}
    runs = l_f1a.bn_runs(cfg, 0)

    def paired(comps):
        return [c for c in comps if "c_M-shrunk min-norm on the same data" in c.quantity]

    good = l_f1a.bn_comparisons(cfg, runs)[0]
    assert len(paired(good)) == 2 and all(c.ok for c in good), good
    monkeypatch.setattr(l_f1a, "C_M", 1.0)  # no shrinkage: BN = min-norm
    assert not all(c.ok for c in paired(l_f1a.bn_comparisons(cfg, runs)[0]))
    monkeypatch.setattr(l_f1a, "C_M", l_f1a.batchnorm.real_batch_shrinkage(l_f1a.BATCH))
    monkeypatch.setattr(l_f1a, "shrunk_min_norm",  # BN = ridge at alpha/(2M)
                        lambda a, c: l_f1a._ridge_inf(a, np.asarray(a) / (2 * l_f1a.BATCH)))
    bad = [c.quantity for c in l_f1a.bn_comparisons(cfg, runs)[0] if not c.ok]
    assert any("vs c_M-shrunk min-norm curve" in q for q in bad), bad


def test_shrunk_min_norm_closed_forms():
    """c = 1 is the min-norm curve; the finite-N mean is the inverse-Wishart one at P - 1
    and tends to the N -> inf curve like 1/N."""
    a = np.array([0.3, 0.5, 2.0, 3.0])
    np.testing.assert_allclose(l_f1a.shrunk_min_norm(a, 1.0),
                               gen.min_norm_linear(a, l_f1a.NOISE).eps, rtol=1e-12)
    assert l_f1a.shrunk_min_norm_finite_n(512, 1024, 1.0) == pytest.approx(
        float(gen.min_norm_finite_n(511, 1024, l_f1a.NOISE)[0]), rel=1e-12)
    for alpha in (0.5, 3.0):
        gaps = [l_f1a.shrunk_min_norm_finite_n(int(alpha * N), N, l_f1a.C_M)
                - float(l_f1a.shrunk_min_norm(alpha, l_f1a.C_M)[0]) for N in (1000, 4000)]
        assert abs(gaps[1]) < abs(gaps[0]) and abs(gaps[1]) < 2e-3


def test_exact_fits_match_lstsq():
    from perceptron_theory.simulate import data, finite_n

    for N, P in ((40, 20), (40, 40), (40, 41), (40, 100)):
        X, y, _ = data.training_set(N, P, noise=0.25, seed=1)
        v, proj = finite_n.centred_least_squares(X, y)
        w = finite_n.ridge_fit(X, y, 0.1)
        xb = X.mean(axis=0)
        np.testing.assert_allclose(v, np.linalg.lstsq(X - xb, y - y.mean(), rcond=None)[0],
                                   atol=1e-8)
        np.testing.assert_allclose(w, np.linalg.solve(X.T @ X + 0.1 * np.eye(N), X.T @ y),
                                   atol=1e-10)
        u = np.random.default_rng(0).standard_normal(N)
        np.testing.assert_allclose((X - xb) @ (u - proj(u)), 0.0, atol=1e-9)


def test_l_f1b_bn_section_small():
    """The ReLU BN section at small size: WN + decay on the replica curve, and the BN and WN
    runs share their training sets (identical at epoch 0)."""
    cfg = {"runs": {3.0: (128, 256)}, "seeds": 6}
    runs = l_f1b.bn_runs(cfg, 0)
    comps, pts = l_f1b.bn_comparisons(cfg, runs)
    assert len(comps) == 2 and set(pts) == {3.0}
    wn = next(c for c in comps if c.quantity.startswith("WN + decay ReLU"))
    assert wn.ok, wn
    assert 0 < pts[3.0]["zeta_eff"] < 2.0


def test_paper_plug_in_convention_fails_the_per_sample_curve(monkeypatch, small_bn):
    """Reading BN's per-sample decay as the sum-convention zeta (the paper's plug-in) is
    caught by the finite-N ridge at zeta = alpha/(2M)."""
    monkeypatch.setitem(l_f1a.SIZES, True, SMALL)
    true = gen.learning_curve

    def plug_in(student, method, alpha, **kw):
        if kw.get("batch_size") is not None:  # BN's equivalent decay
            kw["decay_convention"] = "sum"
        return true(student, method, alpha, **kw)

    monkeypatch.setattr(l_f1a.gen, "learning_curve", plug_in)
    failing = _failing(l_f1a)
    assert any(q.startswith("zeta=alpha/(2M) per-sample, alpha=3.0") for q in failing), failing
    assert not any(q.startswith("min-norm") for q in failing)


def test_wrong_marchenko_pastur_edges_fail(monkeypatch, small_bn):
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
