"""The batch-normalization validation checks: all pass at quick size, and fail when the
theory they test is perturbed (so that a pass means something)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest

from perceptron_theory.plotting import Plot
from perceptron_theory.theory import batchnorm as bn
from validation import REGISTRY

MODULES = {"L-prior": "l_prior", "L-C3": "l_c3", "L-eq3": "l_eq3", "A-eq11": "a_eq11",
           "A-eq19": "a_eq19"}


def run(claim: str, seed: int = 0):
    mod = importlib.import_module(f"validation.{MODULES[claim]}")
    return mod.check(quick=True, seed=seed)


@pytest.fixture(scope="module")
def results():
    return {claim: run(claim) for claim in MODULES}


@pytest.mark.parametrize("claim", list(MODULES))
def test_check_passes(results, claim):
    res = results[claim]
    assert REGISTRY[claim].func is importlib.import_module(f"validation.{MODULES[claim]}").check
    bad = [c for c in res.comparisons if not c.ok]
    assert not bad, "\n".join(f"{c.quantity}: predicted {c.predicted}, measured {c.measured}, "
                              f"tol {c.tolerance}" for c in bad)
    assert len(res.comparisons) >= 5 and res.summary
    assert res.plots and all(isinstance(p, Plot) for p in res.plots)
    json.dumps(res.to_dict(), allow_nan=False)


def _patch(monkeypatch, name, fn):
    """Replace ``bn.<name>`` in the package and in every module of it that holds it, so that
    the theory's own internal calls see the perturbation too."""
    subs = (importlib.import_module(f"{bn.__name__}.{m.name}")
            for m in pkgutil.iter_modules(bn.__path__))
    for mod in (bn, *subs):
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, fn)


def _failing(claim):
    res = run(claim)
    return [c.quantity for c in res.comparisons if not c.ok]


def test_perturbed_variance_fails_l_prior(monkeypatch):
    orig = bn.batch_variance_variance
    _patch(monkeypatch, "batch_variance_variance", lambda *a, **k: 1.05 * orig(*a, **k))
    assert any("Var(sigma_B^2)" in q for q in _failing("L-prior"))


def test_theorem1_gradient_fails_l_c3(monkeypatch):
    """Replacing the real-batch shrinkage by Theorem 1's gradient (1 - c_M -> 2 zeta) fails."""
    orig = bn.real_batch_shrinkage
    _patch(monkeypatch, "real_batch_shrinkage", lambda M, **k: 1 - 2 * (1 - orig(M, **k)))
    failing = _failing("L-C3")
    assert any("real: d/dgamma" in q for q in failing)
    assert any("real: c_M" in q for q in failing)


def test_perturbed_zeta_fails_l_eq3(monkeypatch):
    """A wrong zeta(h) (x 1.5) is caught by the O(1/M^2) rate claims."""
    orig = bn.zeta_theorem1

    def wrong(*a, **k):
        z = orig(*a, **k)
        return dataclasses.replace(z, zeta=1.5 * z.zeta) if k.get("moments") is None else z

    _patch(monkeypatch, "zeta_theorem1", wrong)
    assert any("slope" in q for q in _failing("L-eq3"))


def test_paper_multiplier_fails_a_eq11(monkeypatch):
    """The paper's eq. 10 multiplier (no factor 2) fails the KKT comparison."""
    orig = bn.bn_constrained_solution
    _patch(monkeypatch, "bn_constrained_solution",
           lambda w, R: dataclasses.replace(orig(w, R), multiplier=orig(w, R).multiplier / 2))
    assert any("multiplier" in q for q in _failing("A-eq11"))


def test_paper_small_noise_limit_fails_a_eq19(monkeypatch):
    """The printed small-noise limit gamma^2/lambda instead of sigma^2 gamma^2/(lambda+sigma^2)."""
    _patch(monkeypatch, "noise_regularization_factor", lambda g, lam, s2: g * g / lam)
    assert any("eq.19" in q for q in _failing("A-eq19"))
