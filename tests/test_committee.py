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


# --------------------------------------------------------------- learning-rate limits
@pytest.mark.parametrize("method", ["sgd", "wn"])
def test_lr_max_single_unit_is_dynamics_eta_max(method):
    """K = 1: the committee's stability limit is theory.dynamics' exact eta_max (erf), to the
    1e-8 of the central differences."""
    ref = D.lr_limits(method, "erf", 0.0).eta_max_exact
    assert CM.lr_max(method, "erf", 1).eta_max == pytest.approx(ref, rel=1e-8)


def test_lr_max_single_unit_wn_decay_is_the_full_gamma_R_linearization():
    """K = 1, wn-decay (zeta = 0.3): lr_max is where the (gamma, R) block of
    theory.dynamics.jacobian (sympy, L frozen) at the small-rate fixed point (gamma0, 1)
    first has an eigenvalue crossing zero -- found here by bisection on that Jacobian."""
    zeta = 0.3
    res = CM.lr_max("wn-decay", "erf", 1, zeta=zeta)
    g0 = D.fixed_point("wn-decay", "erf", zeta).gamma
    assert res.gamma0 == pytest.approx(g0, rel=1e-10)

    def growth(eta):
        J = D.jacobian("wn-decay", "erf", eta, zeta, (g0, 1.0, 1.0))[:2, :2]
        return np.max(np.linalg.eigvals(J).real) / eta

    lo, hi = 0.5 * res.lr_max, 1.5 * res.lr_max
    assert growth(lo) < 0 < growth(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if growth(mid) < 0 else (lo, mid)
    assert res.lr_max == pytest.approx(lo, rel=1e-7)


def test_lr_max_falls_with_the_number_of_units():
    """The learned state of a larger committee tolerates a smaller rate (erf, sgd)."""
    etas = [CM.lr_max("sgd", "erf", k).eta_max for k in (1, 2, 3)]
    assert etas[0] > etas[1] > etas[2] > 0


# ------------------------------------------------- ReLU, noise, K != M against finite N
@pytest.mark.parametrize("activation, noise, K, M", [("relu", 0.0, 2, 2), ("erf", 0.2, 3, 1),
                                                    ("linear", 0.1, 1, 2)])
def test_ode_matches_simulation_relu_noise_unequal(activation, noise, K, M):
    """ReLU (numerical I4), label noise and K != M: seed means of Q, R at t = 1.5, 3 within
    4 SE + 2/N of the ODE (N = 1500, 12 seeds; lr = 0.3)."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((K + M, K + M)) * 0.4 + np.eye(K + M)
    G = W @ W.T / (K + M)
    G[K:, K:] = np.eye(M)  # teacher block T = I; keep the whole Gram matrix PSD
    Q0, R0 = G[:K, :K], G[:K, K:] * 0.5
    N, S = 1500, 12
    r = SC.run("sgd", activation, hidden=K, teachers=M, N=N, lr=0.3, t_max=3, Q0=Q0, R0=R0,
               seeds=S, n_points=3, noise=noise, n_test=100)
    tr = CM.integrate("sgd", activation, hidden=K, teachers=M, lr=0.3, Q0=Q0, R0=R0,
                      noise=noise, t_max=3, n_points=3)
    for sim, ode in ((r.Q, tr.Q), (r.R, tr.R)):
        m, se = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(S)
        assert np.all(np.abs(m - ode)[1:] <= 4 * se[1:] + 2.0 / N), (m - ode) / se


# ---------------------------------------------- the simulator's step is the true gradient
@pytest.mark.parametrize("method", ["sgd", "wn-decay", "bn"])
def test_step_is_minus_lr_times_the_autograd_gradient(method):
    """One step of the numba kernel equals -lr * grad of the summed batch loss computed by
    torch autograd on the same batch (the weights; gamma, beta and the trained second layer
    v at rate lr/N), to 1e-10:
    the backward pass through the weight norm and the batch statistics is right."""
    torch = pytest.importorskip("torch")
    from perceptron_theory.simulate import kernels as KK
    from perceptron_theory.simulate._rng import seed_state

    code = {"sgd": 0, "wn-decay": 1, "bn": 2}[method]
    rng = np.random.default_rng(0)
    Kh, M, N, B, lr, zeta = 3, 2, 40, 6, 0.7, 0.2
    W = rng.standard_normal((Kh, N))
    Ws = rng.standard_normal((M, N))
    v, vs = np.array([1.0, -0.5, 0.8]), np.array([1.0, 0.7])
    gamma, beta = np.array([0.9, 1.2, 0.6]), np.array([0.1, -0.2, 0.05])
    rm, rv = np.zeros(Kh), np.ones(Kh)
    X, lam, nu, y, G = (np.empty((B, N)), np.empty((B, Kh)), np.empty((B, M)), np.empty(B),
                        np.empty((B, Kh)))
    W1, g1, b1, v1 = W.copy(), gamma.copy(), beta.copy(), v.copy()
    SC._step(code, 2, 2, W1, Ws, v1, vs, g1, b1, rm, rv, X, lam, nu, y, G, lr,
             zeta if method != "sgd" else 0.0, 0.3, seed_state(3, 1), 1.0 / N, True)
    t = {k: torch.tensor(a, dtype=torch.float64, requires_grad=True)
         for k, a in (("W", W), ("g", gamma), ("b", beta), ("v", v))}
    Xt, yt = torch.tensor(X), torch.tensor(y)
    lam_t = Xt @ t["W"].T
    if method == "sgd":
        s = lam_t
    elif method == "wn-decay":
        s = t["g"] * lam_t / torch.sqrt((t["W"] ** 2).sum(1) / N)
    else:
        mu = lam_t.mean(0)
        var = ((lam_t - mu) ** 2).mean(0)
        s = t["g"] * (lam_t - mu) / torch.sqrt(var + KK.BN_EPS) + t["b"]
    out = (torch.erf(s / np.sqrt(2)) * t["v"]).sum(1)
    loss = 0.5 * ((yt - out) ** 2).sum()
    if method != "sgd":
        loss = loss + B * zeta / 2 * (t["g"] ** 2).sum()
    loss.backward()
    np.testing.assert_allclose(W1, W - lr * t["W"].grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(v1, v - lr / N * t["v"].grad.numpy(), rtol=0, atol=1e-12)
    if method != "sgd":
        np.testing.assert_allclose(g1, gamma - lr / N * t["g"].grad.numpy(), atol=1e-12)
    if method == "bn":
        np.testing.assert_allclose(b1, beta - lr / N * t["b"].grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("method", ["sgd", "wn"])
def test_trained_second_layer_ode_matches_simulation(method):
    """A trained second layer (rate lr/N): the ODE's v(t), Q, R against the seed means of
    the simulation at N = 2000 (12 seeds, 4 SE + 2/N), erf, K = 3 students, M = 2
    teachers, starting from v = (0.5, 0.5, 0.5)."""
    Q3 = np.array([[0.6, 0.1, 0.0], [0.1, 0.5, 0.05], [0.0, 0.05, 0.4]])
    R3 = np.array([[0.2, 0.1], [0.0, 0.3], [0.1, 0.1]])
    kw = dict(hidden=3, teachers=2, lr=0.6, Q0=Q3, R0=R3, v=[0.5, 0.5, 0.5],
              train_second_layer=True)
    N, S = 2000, 12
    r = SC.run(method, "erf", N=N, t_max=4, seeds=S, n_points=3, n_test=100, **kw)
    tr = CM.integrate(method, "erf", t_max=4, n_points=3, **kw)
    assert np.all(np.abs(tr.v[-1] - 0.5) > 0.01)  # the second layer did move
    for sim, ode in ((r.Q, tr.Q), (r.R, tr.R), (r.v, tr.v)):
        m, se = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(S)
        assert np.all(np.abs(m - ode)[1:] <= 4 * se[1:] + 2.0 / N), (m - ode) / se


# ------------------------------------------------------------------------ command line
def test_cli_dynamics_and_simulate_committee(capsys, tmp_path):
    """--hidden/--teachers route dynamics and simulate to the committee machine: the JSON
    is the library's result for the same start; bad combinations exit 2 with one line."""
    import json

    from perceptron_theory.cli import main

    rc = main(["dynamics", "--method", "wn-decay", "--activation", "erf", "--lr", "0.5",
               "--zeta", "0.05", "--hidden", "2", "--teachers", "3", "--t-max", "5",
               "--n-points", "3", "--R-init", "0.3", "--json", "--no-cache"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    tr = CM.integrate("wn-decay", "erf", hidden=2, teachers=3, lr=0.5, zeta=0.05,
                      Q0=np.eye(2), R0=0.3 * np.eye(2, 3), t_max=5, n_points=3)
    np.testing.assert_allclose(d["eps"], tr.eps, rtol=1e-12)
    png = tmp_path / "c.png"
    rc = main(["simulate", "--online", "--method", "bn", "--activation", "erf", "--N", "200",
               "--hidden", "2", "--teachers", "2", "--batch-size", "4", "--lr", "0.5",
               "--t-max", "1", "--n-points", "2", "--seeds", "2", "--plot", str(png)])
    out = capsys.readouterr().out
    assert rc == 0 and "committee bn/erf K=2 M=2" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    for argv in (["simulate", "--method", "sgd", "--activation", "erf", "--N", "100",
                  "--hidden", "2", "--lr", "0.5", "--alpha", "1", "--epochs", "2"],
                 ["simulate", "--online", "--method", "pn", "--activation", "erf", "--N", "100",
                  "--hidden", "2", "--lr", "0.5", "--t-max", "1"],
                 ["dynamics", "--method", "sgd", "--activation", "erf", "--lr", "0.5",
                  "--hidden", "0"]):
        with pytest.raises(SystemExit) as e:
            raise SystemExit(main(argv))
        assert e.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
