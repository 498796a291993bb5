"""The replica-symmetric solver (perceptron_theory.theory.replica).

Closed forms to 1e-8 (linear min-norm, ridge, finite-temperature ridge, noiseless
recovery), the paper's eq. 25 as our saddle point minus one constraint, finite-beta
theory against the exact Gaussian Gibbs measure of a finite-N ridge problem, the
free-energy derivatives against finite differences, the two independent ReLU integration
engines against each other and against Monte Carlo, a convergence grid, bad input, and
the L-F1b check failing when the theory is wrong.
"""

import json
import math

import numpy as np
import pytest
from scipy.integrate import quad

from perceptron_theory.theory import generalization as gen
from perceptron_theory.theory import replica as R

S = 0.25


def _scalar(a) -> float:
    return float(np.ravel(a)[0])


# ------------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 1.1, 2.0, 4.0])
@pytest.mark.parametrize("noise", [0.0, 0.25, 1.0])
def test_linear_min_norm(alpha, noise):
    sol = R.solve(alpha, student="linear", noise=noise)
    ref = float(gen.min_norm_linear(alpha, noise).eps[0])
    assert sol.converged, sol.message
    assert sol.eps == pytest.approx(ref, rel=1e-8, abs=1e-12)
    assert sol.phase == ("interpolating" if alpha < 1 else
                         "recovered" if noise == 0 else "unique")
    if alpha > 1 and noise > 0:  # the hand computation: T = 1, x = 1/(alpha - 1)
        assert sol.T == pytest.approx(1.0, rel=1e-10)
        assert sol.x == pytest.approx(1.0 / (alpha - 1.0), rel=1e-9)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("zeta", [1e-3, 1.0 / 32, 0.25, 1.0])
@pytest.mark.parametrize("noise", [0.0, 0.25, 1.0])
def test_linear_ridge_krogh_hertz(alpha, zeta, noise):
    sol = R.solve(alpha, student="linear", noise=noise, zeta=zeta)
    assert sol.converged, sol.message
    assert sol.eps == pytest.approx(float(gen.ridge_linear(alpha, zeta, noise).eps[0]),
                                    rel=1e-8)


def test_relu_teacher_linear_student_ridge_moments():
    """A ReLU teacher enters the linear student only through E y^2 = 1/2 + S, E[y t] = 1/2:
    the saddle point equals ridge regression with those moments (closed form below)."""
    a, z = 2.0, 0.25
    sol = R.solve(a, student="linear", teacher="relu", noise=S, zeta=z)
    G = _scalar(gen.mp_stieltjes(a, z))
    dG = _scalar(gen.mp_stieltjes_derivative(a, z))
    # w = c w* + v, |v|^2/N = 1/2 - c^2 (the non-linear part acts as extra noise)
    c, m2 = 0.5, 0.5 + S
    noise_eff = m2 - c * c
    T = c * (1 - z * G)
    Q = c * c * (1 - 2 * z * G - z * z * dG) + noise_eff * (G + z * dG)
    assert sol.T == pytest.approx(T, rel=1e-8)
    assert sol.Q == pytest.approx(Q, rel=1e-8)
    assert sol.eps == pytest.approx(0.5 + Q - T, rel=1e-8)


@pytest.mark.parametrize("student,teacher,alpha,eps", [
    ("linear", "linear", 1.5, 0.0), ("relu", "linear", 2.5, 0.5), ("relu", "relu", 3.0, 0.0)])
def test_noiseless_recovery(student, teacher, alpha, eps):
    sol = R.solve(alpha, student=student, teacher=teacher, noise=0.0)
    assert sol.phase == "recovered" and sol.converged
    assert sol.eps == pytest.approx(eps, abs=1e-12)


def test_relu_noiseless_curve_meets_recovery():
    """S = 0: the interpolating branch reaches w = w* (eps = 1/2) as alpha -> 2."""
    e = [R.solve(a, student="relu", noise=0.0).eps for a in (1.9, 1.99, 1.999)]
    assert e[0] > e[1] > e[2] > 0.5
    assert e[2] - 0.5 < 1e-3


def _drop_negative_label_constraint(monkeypatch):
    """Patch the ReLU prox to Luo et al.'s eq. 25 model: region 0 (w.x <= 0 on y <= 0) free."""
    orig = R.expectations._relu_wedges

    def no_constraint(x):
        theta, a, b = orig(x)
        a = a.copy()
        a[0] = 0.0
        return theta, a, b

    monkeypatch.setattr(R.expectations, "_relu_wedges", no_constraint)


def test_paper_eq25_is_the_saddle_point_without_the_negative_label_constraint(monkeypatch):
    """Luo et al. eq. 25 = our saddle point with the cost of pushing w.x <= 0 on y <= 0
    patterns dropped (region 0 of the prox, u* = 0), to machine precision; with it the
    curve is lower at S = 0 and departs from eq. 25."""
    alphas = (0.3, 1.0, 1.7)
    true = [R.solve(a, student="relu", noise=S).eps for a in alphas]
    _drop_negative_label_constraint(monkeypatch)
    for al, t in zip(alphas, true, strict=True):
        paper = float(gen.relu_exhaustive(al, S).eps[0])
        assert R.solve(al, student="relu", noise=S).eps == pytest.approx(paper, rel=1e-10)
        assert abs(t - paper) > 0.01
    # and eq. 25 is (1 + min-norm linear error at alpha/2)/2
    a = np.array([0.4, 1.0, 1.6])
    np.testing.assert_allclose(gen.relu_exhaustive(a, S).eps,
                               (1 + gen.min_norm_linear(a / 2, S).eps) / 2, rtol=1e-12)


# --------------------------------------------------------------------- finite beta
@pytest.mark.parametrize("alpha,zeta,beta", [(0.5, 0.25, 2.0), (2.0, 0.1, 5.0), (3.0, 0.0, 1.0),
                                             (1.5, 1.0, 0.5)])
def test_linear_finite_beta_large_n(alpha, zeta, beta):
    """eps of a Gibbs sample = ridge + G/beta; f = exact -(1/(beta N)) ln Z at large N."""
    sol = R.solve(alpha, student="linear", noise=S, zeta=zeta, beta=beta)
    assert sol.converged, sol.message
    ref = float(gen.ridge_linear(alpha, zeta, S, beta=beta).eps[0])
    assert sol.eps == pytest.approx(ref, rel=1e-8)
    if zeta > 0:
        G = _scalar(gen.mp_stieltjes(alpha, zeta))
        # E_min/N = (zeta/2)(w*^T X^T (XX^T + zeta)^-1 X w* + S tr (XX^T + zeta)^-1)/N
        e_min = 0.5 * zeta * (1 - zeta * G + S * ((alpha - 1) / zeta + G))
        # (1/N) ln det(X^T X + zeta) = ln zeta - int_zeta^inf (G(u) - 1/u) du
        logdet = math.log(zeta) - quad(lambda u: _scalar(gen.mp_stieltjes(alpha, u)) - 1 / u,
                                       zeta, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        f = e_min - (0.5 * math.log(2 * math.pi / beta) - 0.5 * logdet) / beta
        assert sol.free_energy == pytest.approx(f, rel=1e-8)


def test_linear_finite_beta_vs_exact_gibbs_at_finite_n():
    """The Gibbs measure of the quadratic energy is N(ridge, (beta (X^T X + zeta))^-1):
    E_Gibbs[eps] = |m - w*|^2/N + tr(A^-1)/(beta N), exactly, per sample."""
    alpha, zeta, beta, N = 1.5, 0.2, 3.0, 300
    sol = R.solve(alpha, student="linear", noise=S, zeta=zeta, beta=beta)
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(8):
        P = int(alpha * N)
        X = rng.standard_normal((P, N)) / math.sqrt(N)
        w_star = rng.standard_normal(N)
        w_star *= math.sqrt(N) / np.linalg.norm(w_star)
        y = X @ w_star + math.sqrt(S) * rng.standard_normal(P)
        A = X.T @ X + zeta * np.eye(N)
        m = np.linalg.solve(A, X.T @ y)
        vals.append(np.sum((m - w_star) ** 2) / N + np.trace(np.linalg.inv(A)) / (beta * N))
    vals = np.array(vals)
    se = vals.std(ddof=1) / math.sqrt(vals.size)
    assert abs(vals.mean() - sol.eps) < 4 * se + 5.0 / N


def test_relu_finite_beta_approaches_zero_temperature():
    kw = dict(student="relu", noise=S, zeta=0.25)
    ref = R.solve(1.0, **kw)
    gaps = [abs(R.solve(1.0, beta=b, **kw).eps - ref.eps) for b in (10.0, 100.0, 1e4)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-4


def test_relu_finite_beta_quadrature_converged(monkeypatch):
    kw = dict(student="relu", noise=S, zeta=0.25, beta=100.0)
    e1 = R.solve(1.0, **kw).eps
    monkeypatch.setattr(R.expectations, "_FINITE_N", 2 * R.expectations._FINITE_N)
    assert R.solve(1.0, **kw).eps == pytest.approx(e1, rel=1e-8)


# ----------------------------------------------------- derivatives and the saddle point
@pytest.mark.parametrize("student", R.STUDENTS)
@pytest.mark.parametrize("teacher", R.TEACHERS)
def test_free_energy_gradient_matches_finite_differences(student, teacher):
    kw = dict(student=student, teacher=teacher, noise=S, zeta=0.2)
    h = 1e-5
    Q, T, x = 0.9, 0.4, 1.7
    g = R.stationarity(1.3, Q, T, x, **kw)["grad"]
    F = lambda *p: R.free_energy(1.3, *p, **kw)  # noqa: E731
    fd = [(F(Q + h, T, x) - F(Q - h, T, x)) / (2 * h), (F(Q, T + h, x) - F(Q, T - h, x)) / (2 * h),
          (F(Q, T, x + h) - F(Q, T, x - h)) / (2 * h)]
    np.testing.assert_allclose(fd, g, atol=1e-8)
    if student == "relu" and teacher == "relu":
        return  # finite beta needs a linear teacher for the ReLU student
    q, beta = 0.6, 3.0
    g = R.stationarity(1.3, Q, T, q=q, beta=beta, **kw)["grad"]
    F = lambda Q, q, T: R.free_energy(1.3, Q, T, q=q, beta=beta, **kw)  # noqa: E731
    fd = [(F(Q + h, q, T) - F(Q - h, q, T)) / (2 * h), (F(Q, q + h, T) - F(Q, q - h, T)) / (2 * h),
          (F(Q, q, T + h) - F(Q, q, T - h)) / (2 * h)]
    np.testing.assert_allclose(fd, g, atol=1e-7)


@pytest.mark.parametrize("zeta", [1.0 / 32, 0.25])
def test_solution_is_stationary(zeta):
    sol = R.solve(2.0, student="relu", noise=S, zeta=zeta)
    g = R.stationarity(2.0, sol.Q, sol.T, sol.x, student="relu", noise=S, zeta=zeta)
    np.testing.assert_allclose(g["grad"], 0.0, atol=1e-10)
    assert g["f"] == pytest.approx(sol.free_energy, rel=1e-12)
    # at the saddle f = zeta Q/2 + alpha * training energy
    assert sol.free_energy == pytest.approx(zeta * sol.Q / 2 + 2.0 * sol.train_energy, rel=1e-9)


# ------------------------------------------------------------------ integration engines
@pytest.mark.parametrize("noise", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("x", [0.05, 1.0, 50.0, math.inf])
def test_wedge_formulas_match_the_quadrature_engine(noise, x):
    for Q, T in ((0.8, 0.5), (2.0, -0.3), (0.5, 0.69)):
        a = R.prox_moments("relu", "linear", noise, Q, T, x, method="wedge")
        b = R.prox_moments("relu", "linear", noise, Q, T, x, method="quad")
        for k in ("M", "D2", "Dt", "A", "train", "active"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-7, abs=1e-9), k


def test_prox_moments_against_monte_carlo():
    """Brute-force prox (both branches, take the min) on sampled (t, xi, z)."""
    Q, T, x, noise, n = 0.8, 0.5, 1.3, S, 400_000
    rng = np.random.default_rng(1)
    t, z, xi = rng.standard_normal((3, n))
    om = T * t + math.sqrt(Q - T * T) * z
    y = t + math.sqrt(noise) * xi
    uA = np.minimum(om, 0.0)
    cA = (uA - om) ** 2 / (2 * x) + y**2 / 2
    uB = (om + x * y) / (1 + x)
    cB = np.where(uB > 0, (y - om) ** 2 / (2 * (1 + x)), np.inf)
    u = np.where(cB < cA, uB, uA)
    d = u - om
    mc = {"M": np.minimum(cA, cB), "D2": d * d, "Dt": d * t,
          "A": -d * z / math.sqrt(Q - T * T), "train": (y - np.maximum(u, 0)) ** 2 / 2,
          "active": (cB < cA).astype(float)}
    mom = R.prox_moments("relu", "linear", noise, Q, T, x)
    for k, v in mc.items():
        assert abs(getattr(mom, k) - v.mean()) < 4.5 * v.std() / math.sqrt(n), k


def test_relu_teacher_solution_and_quadrature():
    sol = R.solve(1.0, student="relu", teacher="relu", noise=S, zeta=0.1)
    assert sol.converged, sol.message
    assert 0 < sol.eps < float(R.solve(0.5, student="relu", teacher="relu", noise=S,
                                       zeta=0.1).eps)
    # the ReLU teacher's quadrature on a linear teacher equals the exact wedges
    m1 = R.prox_moments("relu", "linear", S, sol.Q, sol.T, sol.x, method="quad")
    m2 = R.prox_moments("relu", "linear", S, sol.Q, sol.T, sol.x, method="wedge")
    assert m1.M == pytest.approx(m2.M, rel=1e-8)


# ------------------------------------------------------------------- convergence grid
def test_convergence_grid():
    """Cold starts on alpha in (0, 4], zeta in [0, 1], S in [0, 1], both students."""
    failures = []
    for student in R.STUDENTS:
        for alpha in (0.05, 0.6, 1.4, 2.0, 3.0, 4.0):
            for zeta in (0.0, 0.01, 0.25, 1.0):
                for noise in (0.0, 0.25, 1.0):
                    s = R.solve(alpha, student=student, noise=noise, zeta=zeta)
                    if not (s.converged and np.isfinite(s.eps)):
                        failures.append((student, alpha, zeta, noise, s.message))
    assert not failures, failures


def test_learning_curve_continuation_matches_cold_starts():
    al = np.linspace(0.1, 4.0, 25)
    for z in (0.0, 1.0 / 32):
        c = R.learning_curve(al, student="relu", noise=S, zeta=z)
        d = R.learning_curve(al, student="relu", noise=S, zeta=z, continuation=False)
        assert c.converged.all() and d.converged.all()
        assert c.continuation and not d.continuation
        np.testing.assert_allclose(c.eps, d.eps, rtol=1e-8)


def test_zero_decay_relu_phases_and_peak():
    """zeta -> 0, S = 1/4: interpolating up to alpha_c ~ 1.465, a finite peak there, no
    divergence at alpha = 2; gamma decay removes the peak."""
    al = np.linspace(1.3, 2.2, 91)
    c = R.learning_curve(al, student="relu", noise=S)
    phases = [s.phase for s in c.solutions]
    k = max(i for i, p in enumerate(phases) if p == "interpolating")
    assert 1.45 < al[k] < 1.48 and all(p == "unique" for p in phases[k + 1:])
    assert 3.0 < np.max(c.eps) < 4.0 and np.all(np.isfinite(c.eps))
    assert c.eps[-1] < 1.2  # decreasing again past the peak
    dec = R.learning_curve(al, student="relu", noise=S, zeta=0.25)
    assert np.all(np.diff(dec.eps) < 0)


def test_singular_load_is_reported_not_returned():
    s = R.solve(1.0 - 1e-15, student="linear", noise=S)
    assert not s.converged and "diverge" in s.message


def test_solution_serializes():
    for s in (R.solve(0.5, student="relu", noise=S), R.solve(3.0, student="relu", noise=S)):
        d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
        assert d["phase"] == s.phase and d["converged"] is True
    c = R.learning_curve([0.5, 1.0], student="linear", noise=S, zeta=0.1)
    assert len(json.loads(json.dumps(c.to_dict()))["solutions"]) == 2


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,name", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(noise=-0.1), "noise"),
    (dict(zeta=-0.5), "zeta"), (dict(beta=0.0), "beta"), (dict(beta=-2.0), "beta"),
    (dict(student="tanh"), "student"), (dict(teacher="erf"), "teacher"),
    (dict(beta=2.0, zeta=0.0), "zeta"), (dict(beta=2.0, zeta=0.1, teacher="relu"), "teacher"),
    (dict(tol=0.0), "tol")])
def test_bad_input_names_the_parameter(kwargs, name):
    args = dict(alpha=1.0, student="relu", noise=S, zeta=0.1)
    args.update(kwargs)
    alpha = args.pop("alpha")
    with pytest.raises(ValueError, match=name):
        R.solve(alpha, **args)


def test_learning_curve_bad_input():
    with pytest.raises(ValueError, match="alphas"):
        R.learning_curve([0.5, 0.0], student="relu")
    with pytest.raises(ValueError, match="zeta"):
        R.learning_curve([0.5, 1.0], student="relu", zeta=[0.1, -0.1])


# ------------------------------------------------------------- the check can fail
def test_l_f1b_detects_the_papers_relu_theory(monkeypatch):
    """Replace the theory by the paper's (negative-label constraint dropped): the min-norm
    interpolator comparisons of the (shrunk) L-F1b check must fail; the true theory passes
    the same shrunk check."""
    from validation import l_f1b

    small = dict(l_f1b.SIZES[True], N=(60, 120), seeds=(8, 6), inits=4, mn_N=(100, 200),
                 mn_seeds=(16, 12),
                 cases=((0.25, 3.0),), alphas_mn=(1.0,), curve=8)
    monkeypatch.setitem(l_f1b.SIZES, True, small)
    monkeypatch.setattr(l_f1b, "_zero_decay_peak", lambda noise=S: {"alpha_c": 1.465,
                                                                    "eps_max": 3.45})
    # the BN simulation section is exercised by tests/test_validation_generalization.py;
    # this test is about the replica theory, so it is left out here (it takes minutes)
    from perceptron_theory.plotting import Plot

    monkeypatch.setattr(l_f1b, "bn_runs", lambda cfg, seed: None)
    monkeypatch.setattr(l_f1b, "bn_comparisons", lambda cfg, run: ([], {}))
    monkeypatch.setattr(l_f1b, "_bn_plot", lambda run: Plot("BN (skipped)", "alpha", "eps", ()))
    good = l_f1b.check(quick=True, seed=0)
    assert good.ok, [c for c in good.comparisons if not c.ok]
    _drop_negative_label_constraint(monkeypatch)
    bad = l_f1b.check(quick=True, seed=0)
    failed = {c.quantity for c in bad.comparisons if not c.ok}
    assert any(q.startswith("ReLU min-norm interpolator eps, S=0,") for q in failed), failed


def test_low_level_bad_input():
    with pytest.raises(ValueError, match="Q"):
        R.prox_moments("relu", "linear", S, 0.1, 0.5, 1.0)
    with pytest.raises(ValueError, match="x"):
        R.prox_moments("relu", "linear", S, 1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="method"):
        R.prox_moments("relu", "relu", S, 1.0, 0.5, 1.0, method="wedge")
    with pytest.raises(ValueError, match="q"):
        R.free_energy(1.0, 1.0, 0.5, q=1.5, beta=2.0)
