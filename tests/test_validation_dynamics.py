"""The L-eq6 and L-T1 checks pass, and fail when the theory they test is wrong."""

import numpy as np
import pytest

from perceptron_theory.theory import dynamics as D
from validation import l_eq6, l_t1


@pytest.mark.parametrize("mod", [l_eq6, l_t1])
def test_check_passes(mod):
    res = mod.check(quick=True, seed=0)
    bad = [c for c in res.comparisons if not c.ok]
    assert not bad, bad
    assert len(res.comparisons) >= 20 and res.plots


def test_l_eq6_detects_a_missing_eta_squared_term(monkeypatch):
    """Drop the eta^2 term of dR/dt: the finite-N drift comparison must flag it."""
    true_rhs = D.rhs

    def wrong_rhs(method, activation, lr, zeta=0.0):
        f = true_rhs(method, activation, lr, zeta)
        if method == "sgd":
            return f

        def g(t, y):
            out = f(t, y).copy()
            gam, R, L = y[0], min(y[1], 1.0), y[2]
            from perceptron_theory.theory.integrals import I2

            out[1] += lr**2 * gam**2 * R * float(I2(activation, gam, R)) / (2 * L**4)
            return out

        return g

    monkeypatch.setattr(l_eq6.D, "rhs", wrong_rhs)
    res = l_eq6.check(quick=True, seed=0)
    failed = {c.quantity for c in res.comparisons if not c.ok}
    assert any(q.startswith("dR/dt bn/relu") for q in failed), failed


def test_l_t1_detects_the_papers_printed_eta_max(monkeypatch):
    """Substituting the paper's printed BN eta_max must break the check."""
    true = D.lr_limits

    def paper_limits(method, activation, zeta=0.0, L0=1.0, exact=True):
        r = true(method, activation, zeta, L0, exact=exact)
        if method == "bn":
            import dataclasses

            return dataclasses.replace(r, eta_max=D.eta_max_paper(activation, zeta))
        return r

    monkeypatch.setattr(l_t1.D, "lr_limits", paper_limits)
    res = l_t1.check(quick=True, seed=0)
    failed = [c.quantity for c in res.comparisons if not c.ok]
    assert any("eta_max bn/relu" in q for q in failed)
    assert any("Prop.4" in q and "relu" in q for q in failed)
    assert np.isfinite([c.measured for c in res.comparisons]).all()
