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

    def wrong_rhs(method, activation, lr, zeta=0.0, **options):
        f = true_rhs(method, activation, lr, zeta, **options)
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
    assert any(q.startswith("dR/dt wn-decay/relu") for q in failed), failed


def test_l_t1_detects_the_papers_printed_eta_max(monkeypatch):
    """Substituting the paper's printed BN eta_max must break the check."""
    true = D.lr_limits

    def paper_limits(method, activation, zeta=0.0, L0=1.0, exact=True):
        r = true(method, activation, zeta, L0, exact=exact)
        if method == "wn-decay":
            import dataclasses

            return dataclasses.replace(r, eta_max=D.eta_max_paper(activation, zeta))
        return r

    monkeypatch.setattr(l_t1.D, "lr_limits", paper_limits)
    res = l_t1.check(quick=True, seed=0)
    failed = [c.quantity for c in res.comparisons if not c.ok]
    assert any("eta_max bn/relu" in q for q in failed)
    assert any("Prop.4" in q and "relu" in q for q in failed)
    assert np.isfinite([c.measured for c in res.comparisons]).all()


# ------------------------------------------------------- L-eq6: ODE vs simulation
def test_rms_slope_recovers_a_known_exponent():
    """The estimator behind the N^-1/2 comparison: Gaussian deviations of size N^-p."""
    rng = np.random.default_rng(0)
    Ns = (250, 1000, 4000)
    for p in (0.5, 1.0):
        devs = [rng.standard_normal((64, 10)) * N**-p for N in Ns]
        rms, slope, se = l_eq6.rms_slope(devs, Ns, np.random.default_rng(1))
        assert rms.shape == (3,) and 0 < se < 0.1
        assert abs(slope + p) < 4 * se


def _small_trajectory_run(**kw):
    return l_eq6.trajectory_comparisons("relu", ("wn", 0.0), (250, 1000), seeds=(32, 16),
                                        t_max=4.0, n_points=9, seed=12345,
                                        rng=np.random.default_rng(0), **kw)


def test_ode_vs_simulation_passes_with_the_right_ode():
    comps, fig = _small_trajectory_run()
    assert comps and all(c.ok for c in comps), [c for c in comps if not c.ok]
    assert set(fig["rms"]) == {"R", "gamma", "L"}


def test_ode_vs_simulation_detects_a_wrong_rate(monkeypatch):
    """An ODE integrated at a 20% higher rate must fail the mean-gap comparisons."""
    true = D.integrate

    def wrong(method, activation, *, lr, **kw):
        return true(method, activation, lr=1.2 * lr, **kw)

    monkeypatch.setattr(l_eq6.D, "integrate", wrong)
    comps, _ = _small_trajectory_run()
    failed = [c.quantity for c in comps if not c.ok]
    assert any("max_t |<R>_sim - R_ode|" in q for q in failed), failed


def test_sgd_starts_at_the_same_scale_in_the_ode_and_the_simulation():
    """For plain SGD the scale Q is the length L in both layers (SGD_INIT: L = 0.5)."""
    r = l_eq6.simulate("sgd", "linear", 250, 2, 0, 1.0, 3)
    np.testing.assert_allclose(r.L[:, 0], 0.5)
    np.testing.assert_allclose(r.gamma[:, 0], 0.5)  # the plain student's gamma is Q
    tr = l_eq6._ode("sgd", "linear", 0.0, 1.0, 3)
    assert tr.gamma[0] == pytest.approx(0.5, abs=1e-15) and tr.L[0] == tr.gamma[0]


# ------------------------------------------------ L-T1: empirical maximum learning rate
def test_criterion_crossing_limits():
    """As tol -> 0 the ODE criterion tends to Table 1's eta_max = 2 for WN (transcritical)
    and to 0 for wn-decay, whose fixed point is never at R = 1 (t_max -> inf)."""
    wn = [l_t1.criterion_crossing("wn", "relu", 0.0, tol, 400.0) for tol in (0.01, 0.002)]
    bn = [l_t1.criterion_crossing("wn-decay", "relu", 0.25, tol, 400.0) for tol in (0.01, 0.002)]
    assert 2.0 < wn[1] < wn[0] < 2.1
    assert 0.0 < bn[1] < bn[0] < 0.5
    assert bn[1] < 0.3 * bn[0]  # 1 - R* ~ eta_eff: the crossing is ~ linear in tol


def test_l_t1_detects_table1_as_the_prediction_of_the_empirical_criterion(monkeypatch):
    """Predicting the empirical criterion by Table 1's eta_max (the naive reading) must fail
    for wn-decay, where the R threshold is crossed long before 2 (1 + 2 zeta)."""
    def table1(ode_method, activation, zeta, tol, t_max=l_t1.EMP_T_MAX):
        return D.lr_limits(ode_method, activation, zeta, exact=False).eta_max

    monkeypatch.setattr(l_t1, "criterion_crossing", table1)
    res = l_t1.check(quick=True, seed=0)
    failed = [c.quantity for c in res.comparisons if not c.ok]
    assert any("empirical max eta_eff" in q and "wn-decay" in q for q in failed), failed
    assert not any("empirical max eta_eff" in q and "sgd/linear" in q and "tol -> 0" not in q
                   for q in failed)
