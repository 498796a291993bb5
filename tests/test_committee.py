"""Committee machines: the ODEs (theory.committee) against the single-unit ODEs, against
finite-N simulation (simulate.committee) with the N^-1/2 rate, and the plateau picture."""

from __future__ import annotations

import numpy as np
import pytest

from perceptron_theory.simulate import committee as SC
from perceptron_theory.theory import committee as CM
from perceptron_theory.theory import dynamics as D

Q0 = np.array([[0.5, 0.1], [0.1, 0.4]])
R0 = np.array([[0.2, 0.1], [0.0, 0.3]])


# ------------------------------------------------------------------ K = M = 1 is exact
@pytest.mark.parametrize("activation", ["erf", "linear", "relu"])
@pytest.mark.parametrize("method", ["sgd", "wn-decay"])
def test_single_unit_rhs_is_the_dynamics_rhs(method, activation):
    """K = M = 1: the committee right-hand side, mapped to (L, R/L) by the chain rule
    (dL = dQ/(2L), d(R/L) = dR/L - R dL/L^2), equals theory.dynamics' at random states to
    1e-12 (two derivations of the same ODE: Saad & Solla's form and Luo et al.'s eq. 6)."""
    rng = np.random.default_rng(3)
    lr, zeta = 0.7, (0.15 if method != "sgd" else 0.0)
    sp = CM.spec(method, activation, 1, 1)
    f = CM.rhs(sp, lr, zeta)
    g = D.rhs(method, activation, lr, zeta)
    for _ in range(5):
        L, Rn, gam = rng.uniform(0.5, 1.5), rng.uniform(-0.9, 0.95), rng.uniform(0.3, 1.5)
        y = CM.pack(sp, [[L * L]], [[Rn * L]], [gam] if sp.normalized else None)
        dQ, dR = f(0.0, y)[:2]
        dL = dQ / (2 * L)
        dRn = dR / L - Rn * L * dL / L ** 2
        if method == "sgd":
            ref = g(0.0, np.array([L, Rn]))
            np.testing.assert_allclose([dL, dRn], ref, rtol=1e-12, atol=1e-13)
        else:
            dg = f(0.0, y)[2]
            ref = g(0.0, np.array([gam, Rn, L]))  # (gamma, R, L)
            np.testing.assert_allclose([dg, dRn, dL], ref, rtol=1e-12, atol=1e-13)


def test_single_unit_trajectory_matches_dynamics():
    """Integrated, the same (solver tolerance 1e-11): erf, wn-decay."""
    tr = CM.integrate("wn-decay", "erf", hidden=1, teachers=1, lr=0.7, zeta=0.1,
                      Q0=[[1.44]], R0=[[0.36]], gamma0=[0.8], t_max=10, n_points=6,
                      rtol=1e-11, atol=1e-12)
    ref = D.integrate("wn-decay", "erf", lr=0.7, zeta=0.1, L_init=1.2, R_init=0.3,
                      gamma_init=0.8, t_max=10, n_points=6, rtol=1e-11, atol=1e-12)
    L, Rn = CM.order_parameters_single(tr.Q[:, 0, 0], tr.R[:, 0, 0])
    np.testing.assert_allclose(L, ref.L, atol=1e-9)
    np.testing.assert_allclose(Rn, ref.R, atol=1e-9)
    np.testing.assert_allclose(tr.gamma[:, 0], ref.gamma, atol=1e-9)
    np.testing.assert_allclose(tr.eps, ref.eps, atol=1e-9)


# ------------------------------------------------------------- against finite N (K = M = 2)
@pytest.mark.parametrize("method, zeta", [("sgd", 0.0), ("wn-decay", 0.05)])
def test_ode_matches_simulation(method, zeta):
    """K = M = 2, erf, N = 2000, 12 seeds from the same exact start: the seed mean of every
    Q_kl, R_kn at t = 2, 4, 6 lies within 4 standard errors + 2/N (the O(1/N) bias) of the
    ODE; the measured test error within 4 SE (seeds) + 3 SE (20,000 test fields)."""
    N, S = 2000, 12
    r = SC.run(method, "erf", hidden=2, teachers=2, N=N, lr=0.5, t_max=6, Q0=Q0, R0=R0,
               seeds=S, n_points=4, zeta=zeta)
    tr = CM.integrate(method, "erf", hidden=2, teachers=2, lr=0.5, Q0=Q0, R0=R0, zeta=zeta,
                      t_max=6, n_points=4)
    for sim, ode in ((r.Q, tr.Q), (r.R, tr.R)):
        m, se = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(S)
        assert np.all(np.abs(m - ode)[1:] <= 4 * se[1:] + 2.0 / N), (m - ode) / se
    m, se = r.eps.mean(0), r.eps.std(0, ddof=1) / np.sqrt(S)
    mc = 3 * tr.eps * np.sqrt(2.0 / 20_000)  # a Gaussian-ish sum of squares: rough 3 SE
    assert np.all(np.abs(m - tr.eps) <= 4 * se + mc + 2.0 / N), (m, tr.eps)


def test_deviation_shrinks_as_n_to_the_minus_half():
    """Declared rate: the RMS deviation (over seeds) of the simulated Q, R from the ODE at
    t = 3 falls like N^-1/2; fitted log-log slope over N = 250..2000 in [-0.75, -0.25]."""
    Ns = np.array([250, 500, 1000, 2000])
    tr = CM.integrate("sgd", "erf", hidden=2, teachers=2, lr=0.5, Q0=Q0, R0=R0, t_max=3,
                      n_points=2)
    rms = []
    for N in Ns:
        r = SC.run("sgd", "erf", hidden=2, teachers=2, N=int(N), lr=0.5, t_max=3, Q0=Q0,
                   R0=R0, seeds=16, n_points=2)
        dev = np.concatenate([(r.Q[:, -1] - tr.Q[-1]).reshape(16, -1),
                              (r.R[:, -1] - tr.R[-1]).reshape(16, -1)], axis=1)
        rms.append(np.sqrt(np.mean(dev ** 2)))
    slope = np.polyfit(np.log(Ns), np.log(rms), 1)[0]
    assert -0.75 <= slope <= -0.25, (slope, rms)


# ----------------------------------------------------------------------------- plateau
def _escape_time(asym: float) -> float:
    """Time at which eps falls below half its plateau value, from a symmetric start
    R_kn = 0.01 (all k, n) broken by R_00 += asym, erf, K = M = 2, lr = 0.5."""
    R = np.full((2, 2), 0.01)
    R[0, 0] += asym
    tr = CM.integrate("sgd", "erf", hidden=2, teachers=2, lr=0.5, Q0=0.09 * np.eye(2),
                      R0=R, t_max=400, n_points=801)
    plateau = tr.eps[np.searchsorted(tr.t, 15.0)]
    below = np.nonzero((tr.eps < plateau / 2) & (tr.t > 15))[0]
    return float(tr.t[below[0]]) if below.size else np.inf


def test_plateau_and_log_escape():
    """The symmetric start never specializes (eps stays on the plateau); a small asymmetry
    escapes after a time that grows like log(1/asymmetry) (linear instability of the
    symmetric fixed point, Saad & Solla 1995): the escape-time increments per factor 10 are
    equal to 10%, and positive."""
    assert _escape_time(0.0) == np.inf
    t = [_escape_time(a) for a in (1e-3, 1e-4, 1e-5)]
    d1, d2 = t[1] - t[0], t[2] - t[1]
    assert d1 > 5 and d2 > 5
    assert d2 == pytest.approx(d1, rel=0.1), t


# --------------------------------------------------------------------- inputs and specs
def test_bad_input():
    with pytest.raises(ValueError, match="hidden"):
        CM.integrate("sgd", "erf", hidden=0, teachers=1, lr=0.1, Q0=[[1.0]], R0=[[0.0]])
    with pytest.raises(ValueError, match="Q0 must have shape"):
        CM.integrate("sgd", "erf", hidden=2, teachers=1, lr=0.1, Q0=[[1.0]], R0=[[0.0]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        CM.integrate("sgd", "erf", hidden=1, teachers=1, lr=0.1, Q0=[[1.0]], R0=[[1.5]])
    with pytest.raises(ValueError, match="zeta"):
        CM.integrate("sgd", "erf", hidden=1, teachers=1, lr=0.1, zeta=0.1, Q0=[[1.0]],
                     R0=[[0.0]])
    with pytest.raises(ValueError, match="init_scale"):
        SC.run("sgd", "erf", hidden=1, teachers=1, N=100, lr=0.1, t_max=1)
    with pytest.raises(ValueError, match="batch_size"):
        SC.run("bn", "erf", hidden=1, teachers=1, N=100, lr=0.1, t_max=1, init_scale=1.0)
    with pytest.raises(ValueError, match="not the overlaps"):
        SC.run("sgd", "erf", hidden=1, teachers=1, N=100, lr=0.1, t_max=1, Q0=[[0.5]],
               R0=[[0.9]])


def test_exact_start_and_initial_overlaps():
    """The simulation starts exactly at (Q0, R0); the random start has Q_kk ~ scale^2."""
    r = SC.run("sgd", "erf", hidden=2, teachers=2, N=300, lr=0.1, t_max=1, Q0=Q0, R0=R0,
               seeds=2, n_points=2)
    np.testing.assert_allclose(r.Q[:, 0], np.broadcast_to(Q0, (2, 2, 2)), atol=1e-12)
    np.testing.assert_allclose(r.R[:, 0], np.broadcast_to(R0, (2, 2, 2)), atol=1e-12)
    Qr, Rr = SC.initial_overlaps(2, 2, N=4000, seed=1, scale=0.3)
    assert np.all(np.abs(np.diag(Qr) - 0.09) < 5 * 0.09 * np.sqrt(2 / 4000))
    assert np.all(np.abs(Rr) < 5 * 0.3 / np.sqrt(4000))
