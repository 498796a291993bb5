r"""``theory.generalization`` against computations that share none of its code.

Conventions: ``x ~ N(0, I/N)``, ``|w*|^2 = N``, ``y = w*.x + sqrt(S) xi``, sum convention
``1/2 sum_p (y_p - g(w.x_p))^2 + zeta/2 |w|^2``, eps unhalved without label noise.

Independent references and where their tolerances come from (STYLE.md guideline 9):

* adaptive quadrature of the Marchenko-Pastur density written out here (edge substitution,
  ``epsrel = 1e-12``) -- rtol 1e-9;
* central finite differences -- O(h^2) truncation, rtol 1e-6;
* Monte Carlo of eps(gamma, R) -- 400k samples, 4.5 SE;
* exact finite-N linear algebra (lstsq / solve / eigenvalues), seeded, tolerance
  4.5 SE + the stated O(1/N) allowance;
* numerical minimization of the paper's *mean* WN objective (per-sample decay) -- the
  minimizer must equal ridge at zeta = alpha zeta_ps to 1e-8;
* limits (zeta -> 0, zeta -> inf, S = 0, alpha -> inf) and bad input (hypothesis).
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import minimize

from perceptron_theory.theory import batchnorm as bn
from perceptron_theory.theory import generalization as gen

HYP = settings(max_examples=40, deadline=None)
S = 0.25


def test_doctests():
    assert doctest.testmod(gen, optionflags=doctest.ELLIPSIS).failed == 0


# ----------------------------------------------------------------- Marchenko-Pastur
def mp_integral(alpha: float, f, zeta: float = 1.0) -> float:
    """int f dmu for the MP law of X^T X: density + atom, by quad after lam = lm + h(1-cos).

    ``zeta`` is the width of the peak of f near lam = 0 (a break point for quad).
    """
    lm, lp = (1 - math.sqrt(alpha)) ** 2, (1 + math.sqrt(alpha)) ** 2
    h = (lp - lm) / 2

    def g(th):
        lam = lm + 2 * h * math.sin(th / 2) ** 2  # = lm + h (1 - cos th), no cancellation
        return 0.0 if lam <= 0 else f(lam) * (h * math.sin(th)) ** 2 / (2 * math.pi * lam)

    brk = [min(math.pi / 2, k * math.sqrt(zeta)) for k in (1.0, 10.0)]
    return (quad(g, 0, math.pi, points=brk, limit=400, epsabs=0, epsrel=1e-12)[0]
            + max(1 - alpha, 0) * f(0.0))


MP_CASES = [(a, z) for a in (0.1, 0.5, 0.99, 1.0, 1.01, 2.0, 7.0)
            for z in (1e-4, 0.01, 0.25, 1.0, 30.0)]


@pytest.mark.parametrize("alpha,zeta", MP_CASES)
def test_stieltjes_and_parts_vs_quadrature(alpha, zeta):
    G = mp_integral(alpha, lambda lam: 1 / (lam + zeta), zeta)
    G2 = mp_integral(alpha, lambda lam: 1 / (lam + zeta) ** 2, zeta)
    var = mp_integral(alpha, lambda lam: lam / (lam + zeta) ** 2, zeta)
    np.testing.assert_allclose(gen.mp_stieltjes(alpha, zeta), G, rtol=1e-9)
    np.testing.assert_allclose(gen.mp_stieltjes_derivative(alpha, zeta), -G2, rtol=1e-9)
    p = gen.ridge_parts(alpha, zeta)
    np.testing.assert_allclose(p.bias, zeta**2 * G2, rtol=1e-9)
    np.testing.assert_allclose(p.variance, var, rtol=1e-9)
    np.testing.assert_allclose(p.zeta_G, zeta * G, rtol=1e-9)


def test_paper_closed_form_matches_the_stable_evaluation():
    """Luo et al.'s printed G, evaluated naively where it is well-conditioned."""
    a = np.array([0.3, 0.8, 1.5, 4.0])[:, None]
    z = np.array([0.05, 0.25, 2.0])[None, :]
    paper = (1 - a - z + np.sqrt((z + (1 + np.sqrt(a)) ** 2) * (z + (1 - np.sqrt(a)) ** 2))) / (
        2 * z)
    np.testing.assert_allclose(gen.mp_stieltjes(a, z), paper, rtol=1e-12)


def test_mp_density_mass_and_mean():
    """quad in u = sqrt(lam) (removes the 1/sqrt(lam) edge at alpha = 1)."""
    for a in (0.3, 1.0, 2.5):
        lo, hi = abs(1 - math.sqrt(a)), 1 + math.sqrt(a)

        def moment(k, a=a, lo=lo, hi=hi):
            f = lambda u: float(gen.mp_density([u * u], a)[0]) * 2 * u * u ** (2 * k)  # noqa: E731
            return quad(f, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-12)[0]

        assert moment(0) == pytest.approx(min(1.0, a), rel=1e-9)
        assert moment(1) == pytest.approx(a, rel=1e-9)  # the atom sits at 0


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.0])
@pytest.mark.parametrize("zeta", [0.01, 0.25, 3.0])
def test_derivatives_vs_finite_differences(alpha, zeta):
    h = 1e-4 * zeta
    G = lambda z: gen.mp_stieltjes(alpha, z)[0]  # noqa: E731
    fd = (G(zeta + h) - G(zeta - h)) / (2 * h)
    assert gen.mp_stieltjes_derivative(alpha, zeta)[0] == pytest.approx(fd, rel=1e-6)
    zG = lambda z: gen.ridge_parts(alpha, z).zeta_G[0]  # noqa: E731
    assert gen.ridge_parts(alpha, zeta).variance[0] == pytest.approx(
        (zG(zeta + h) - zG(zeta - h)) / (2 * h), rel=1e-6)


def test_depsilon_dzeta_is_S_minus_zeta_times_negative():
    """d eps/d zeta = (S - zeta)(zeta G)'': its sign changes exactly at zeta = S."""
    for a in (0.4, 1.0, 2.5):
        for z in (0.05, 0.2, 0.3, 1.0):
            h = 1e-5
            e = lambda zz, a=a: gen.ridge_linear(a, zz, S).eps[0]  # noqa: E731
            d = (e(z + h) - e(z - h)) / (2 * h)
            second = -2 * mp_integral(a, lambda lam, z=z: lam / (lam + z) ** 3)  # (zeta G)''
            assert d == pytest.approx((S - z) * second, rel=1e-5, abs=1e-9)


# ------------------------------------------------------------------------ closed forms
def test_min_norm_hand_formula_and_alpha_one():
    a = np.array([0.1, 0.5, 0.9, 1.0, 1.1, 2.0, 10.0])
    d = np.where(a == 1, 0.5, 1 - a)
    expect = np.where(a < 1, 1 - a + a * S / d, -S / d)
    expect[a == 1] = np.inf
    c = gen.min_norm_linear(a, S)
    np.testing.assert_allclose(c.eps, expect, rtol=1e-13)
    assert c.method == "min-norm" and np.all(c.zeta == 0)
    fin = a != 1
    np.testing.assert_allclose(c.gamma[fin] * c.R[fin], np.minimum(a, 1)[fin], rtol=1e-12)
    assert np.isinf(c.gamma[~fin]).all() and (c.R[~fin] == 0).all()
    # noiseless: pure bias, finite at alpha = 1
    np.testing.assert_allclose(gen.min_norm_linear(a, 0.0).eps, np.maximum(1 - a, 0), atol=1e-15)


def test_ridge_limits():
    a = np.array([0.2, 0.7, 1.3, 3.0])
    # zeta -> 0: min-norm (both sides of alpha = 1)
    np.testing.assert_allclose(gen.ridge_linear(a, 1e-10, S).eps, gen.min_norm_linear(a, S).eps,
                               rtol=1e-7)
    # zeta = 0 is the same code path and identical
    np.testing.assert_array_equal(gen.ridge_linear(a, 0.0, S).eps, gen.min_norm_linear(a, S).eps)
    # zeta -> inf: w -> 0, eps -> 1 (= 1 + gamma^2 - 2 gamma R with gamma -> 0)
    big = gen.ridge_linear(a, 1e9, S)
    np.testing.assert_allclose(big.eps, 1.0, rtol=1e-8)
    assert np.all(big.gamma < 1e-4)
    # S = 0: pure bias, decreasing in alpha, increasing in zeta
    e0 = gen.ridge_linear(a, 0.3, 0.0).eps
    np.testing.assert_allclose(e0, gen.ridge_parts(a, 0.3).bias)
    assert np.all(np.diff(e0) < 0)
    assert np.all(gen.ridge_linear(1.5, [0.1, 0.2, 0.4], 0.0).eps[1:] >
                  gen.ridge_linear(1.5, [0.1, 0.2, 0.4], 0.0).eps[:-1])
    # alpha -> inf: eps -> 0 like S/alpha
    assert gen.ridge_linear(1e6, 0.25, S).eps[0] == pytest.approx(S / 1e6, rel=1e-3)


def test_order_parameters_reproduce_eps():
    a = np.linspace(0.1, 3, 13)
    for z in (0.0, 0.05, 0.25):
        c = gen.ridge_linear(a, z, S)
        ok = np.isfinite(c.eps)
        np.testing.assert_allclose(gen.eps_gamma_R("linear", c.gamma[ok], c.R[ok]), c.eps[ok],
                                   rtol=1e-10, atol=1e-12)
    r = gen.relu_exhaustive(a[a < 2], S)
    np.testing.assert_allclose(gen.eps_gamma_R("relu", r.gamma, r.R), r.eps, rtol=1e-12)


def test_relu_closed_form():
    a = np.array([0.25, 1.0, 1.5, 1.99])
    np.testing.assert_allclose(gen.relu_exhaustive(a, S).eps, 1 - a / 4 + a * S / (2 * (2 - a)))
    np.testing.assert_allclose(gen.relu_noiseless_bound(a), 1 - a / 4)
    assert np.all(gen.relu_exhaustive(a, S).eps >= gen.relu_noiseless_bound(a))
    for bad in (2.0, 2.5, [1.0, 3.0]):
        with pytest.raises(ValueError, match="alpha"):
            gen.relu_exhaustive(bad, S)
        with pytest.raises(ValueError, match="alpha"):
            gen.learning_curve("relu", "min-norm", bad, noise=S)


def test_include_noise_adds_S():
    for c0, c1 in ((gen.ridge_linear(2.0, 0.1, S), gen.ridge_linear(2.0, 0.1, S,
                                                                     include_noise=True)),
                   (gen.relu_exhaustive(1.0, S), gen.relu_exhaustive(1.0, S,
                                                                     include_noise=True))):
        assert c1.eps[0] == pytest.approx(c0.eps[0] + S)


# -------------------------------------------------------------------- eps(gamma, R)
@pytest.mark.parametrize("student", ["linear", "relu"])
def test_eps_gamma_R_vs_monte_carlo(student):
    rng = np.random.default_rng(11)
    n = 400_000
    for g, R in ((0.3, 0.8), (1.0, 0.0), (1.7, -0.6), (0.9, 1.0)):
        u, z = rng.standard_normal((2, n))
        t = R * u + math.sqrt(1 - R * R) * z
        s = g * u if student == "linear" else np.maximum(g * u, 0)
        v = (t - s) ** 2
        pred = float(gen.eps_gamma_R(student, g, R))
        assert abs(pred - v.mean()) < 4.5 * v.std() / math.sqrt(n)
        hand = 1 + g * g - 2 * g * R if student == "linear" else 1 + g * g / 2 - g * R
        assert pred == pytest.approx(hand, rel=1e-12, abs=1e-14)


# ------------------------------------------------------------------- finite N, exact
def _draw(rng, N, P, noise):
    X = rng.standard_normal((P, N)) / math.sqrt(N)
    w = rng.standard_normal(N)
    w *= math.sqrt(N) / np.linalg.norm(w)
    return X, w, X @ w + math.sqrt(noise) * rng.standard_normal(P)


@pytest.mark.parametrize("N,P", [(20, 8), (20, 15), (20, 30), (20, 60)])
def test_min_norm_finite_n_exact(N, P):
    """Inverse-Wishart means vs lstsq on 4000 seeded draws (4.5 SE, no allowance)."""
    rng = np.random.default_rng(N * 1000 + P)
    vals = []
    for _ in range(4000):
        X, w_star, y = _draw(rng, N, P, S)
        w = np.linalg.lstsq(X, y, rcond=None)[0]
        vals.append(np.sum((w - w_star) ** 2) / N)
    vals = np.asarray(vals)
    pred = gen.min_norm_finite_n(P, N, S)[0]
    assert abs(vals.mean() - pred) < 4.5 * vals.std() / math.sqrt(vals.size)


def test_min_norm_finite_n_edges_and_limit():
    assert np.all(np.isinf(gen.min_norm_finite_n([19, 20, 21], 20, S)))
    np.testing.assert_allclose(gen.min_norm_finite_n([10, 20, 30], 20, 0.0), [0.5, 0.0, 0.0])
    big = gen.min_norm_finite_n(np.array([50_000, 300_000]), 100_000, S)
    np.testing.assert_allclose(big, gen.min_norm_linear([0.5, 3.0], S).eps, rtol=1e-4)
    with pytest.raises(ValueError, match="P"):
        gen.min_norm_finite_n(0, 10, S)
    with pytest.raises(ValueError, match="N"):
        gen.min_norm_finite_n(5, 0, S)


@pytest.mark.parametrize("alpha,zeta", [(0.5, 0.25), (2.0, 1 / 64), (1.5, 0.1)])
def test_ridge_vs_finite_n(alpha, zeta):
    """E[eps | X] from eigenvalues at N = 300 (30 draws): 4.5 SE + 1/N allowance (c <= 1
    for these cases, validation L-F1a)."""
    N = 300
    P = int(alpha * N)
    rng = np.random.default_rng(7)
    vals, real = [], []
    for k in range(30):
        X, w_star, y = _draw(rng, N, P, S)
        lam = np.linalg.eigvalsh(X.T @ X)
        vals.append(np.mean((zeta**2 + S * lam) / (lam + zeta) ** 2))
        if k < 5:  # one direct solve per few draws: the identity behind E[eps | X]
            w = np.linalg.solve(X.T @ X + zeta * np.eye(N), X.T @ y)
            real.append(np.sum((w - w_star) ** 2) / N - vals[-1])
    vals = np.asarray(vals)
    pred = gen.ridge_linear(alpha, zeta, S).eps[0]
    assert abs(vals.mean() - pred) < 4.5 * vals.std() / math.sqrt(vals.size) + 1.0 / N
    assert abs(np.mean(real)) < 0.05


def test_thermal_term_vs_gibbs_samples():
    """A Gibbs sample at beta: w = w_ridge + A^{-1/2} z / sqrt(beta), A = X^T X + zeta."""
    N, alpha, zeta, beta = 300, 1.5, 0.2, 4.0
    rng = np.random.default_rng(3)
    X, w_star, y = _draw(rng, N, int(alpha * N), S)
    A = X.T @ X + zeta * np.eye(N)
    lam, V = np.linalg.eigh(A)
    w_r = np.linalg.solve(A, X.T @ y)
    extra = []
    for _ in range(200):
        w = w_r + V @ (rng.standard_normal(N) / np.sqrt(beta * lam))
        extra.append((np.sum((w - w_star) ** 2) - np.sum((w_r - w_star) ** 2)) / N)
    pred = gen.ridge_linear(alpha, zeta, S, beta=beta).eps - gen.ridge_linear(alpha, zeta, S).eps
    assert pred[0] == pytest.approx(gen.mp_stieltjes(alpha, zeta)[0] / beta, rel=1e-12)
    assert abs(np.mean(extra) - pred[0]) < 4.5 * np.std(extra) / math.sqrt(200) + 2.0 / N


def test_relu_eq25_is_the_positive_only_min_norm_fit():
    """Eq. 25 = min-norm fit of the y > 0 samples (N = 200, 60 draws; allowance 0.02 from
    the O(1/N) trend of validation L-F1a)."""
    N, alpha = 200, 1.0
    rng = np.random.default_rng(5)
    vals = []
    for _ in range(60):
        X, w_star, y = _draw(rng, N, int(alpha * N), S)
        pos = y > 0
        w = np.linalg.lstsq(X[pos], y[pos], rcond=None)[0]
        vals.append(1 + 0.5 * (w @ w) / N - (w @ w_star) / N)
    vals = np.asarray(vals)
    pred = gen.relu_exhaustive(alpha, S).eps[0]
    assert abs(vals.mean() - pred) < 4.5 * vals.std() / math.sqrt(vals.size) + 0.02


# -------------------------------------------------------------------- conventions
@pytest.mark.parametrize("halved", [False, True])
def test_per_sample_decay_equals_alpha_scaled_sum_decay(halved):
    """Minimize the paper's mean WN objective numerically; it must equal ridge at
    zeta = (1 or 2) alpha zeta_ps."""
    rng = np.random.default_rng(1)
    N, P, zeta_ps = 30, 45, 0.07
    X, _, y = _draw(rng, N, P, S)
    c = 0.5 if halved else 1.0

    def mean_loss(w):
        r = y - X @ w
        return (c * r @ r / P + zeta_ps * (w @ w) / N,
                -2 * c * X.T @ r / P + 2 * zeta_ps * w / N)

    z = gen.sum_decay_from_per_sample(zeta_ps, P / N, halved=halved)
    assert z == pytest.approx((2.0 if halved else 1.0) * P / N * zeta_ps)
    w_ridge = np.linalg.solve(X.T @ X + z * np.eye(N), X.T @ y)
    # the mean objective is stationary at the sum-convention ridge solution ...
    assert np.max(np.abs(mean_loss(w_ridge)[1])) < 1e-13
    # ... and a numerical minimizer finds it (optimizer tolerance)
    w_num = minimize(mean_loss, np.zeros(N), jac=True, method="BFGS",
                     options={"gtol": 1e-12}).x
    np.testing.assert_allclose(w_num, w_ridge, atol=1e-5)
    # the direct plug-in (zeta = zeta_ps) is a different estimator
    w_plug = np.linalg.solve(X.T @ X + zeta_ps * np.eye(N), X.T @ y)
    assert np.max(np.abs(mean_loss(w_plug)[1])) > 1e-4


def test_optimal_decay_equals_noise():
    for noise in (0.0, 0.1, 0.25, 1.0):
        c = gen.optimal_ridge([0.3, 1.0, 2.0, 5.0], noise)
        assert np.all(c.converged)
        np.testing.assert_allclose(c.zeta, noise, atol=1e-6)
        np.testing.assert_allclose(c.eps, gen.ridge_linear([0.3, 1.0, 2.0, 5.0], noise,
                                                           noise).eps, rtol=1e-10, atol=1e-5)


def test_bn_decay_models():
    assert gen.bn_equivalent_decay(32) == pytest.approx(1 / 64)
    assert gen.bn_equivalent_decay(32, "exact") == pytest.approx(
        bn.equivalent_decay_linear(32, convention="decay2", centered=False))
    assert gen.bn_equivalent_decay(1000, "real-batch") == pytest.approx(1 / 4000, rel=1e-2)


def test_learning_curve_dispatch_and_conventions():
    a = np.array([0.5, 1.5, 3.0])
    M = 32
    scaled = gen.learning_curve("linear", "wn-decay", a, noise=S, batch_size=M)
    np.testing.assert_allclose(scaled.eps, gen.ridge_linear(a, a / (2 * M), S).eps)
    np.testing.assert_allclose(scaled.zeta, a / (2 * M))
    assert "alpha * zeta_ps" in scaled.note and "M=32" in scaled.note
    plug = gen.learning_curve("linear", "wn-decay", a, noise=S, batch_size=M,
                              decay_convention="sum")
    np.testing.assert_allclose(plug.eps, gen.ridge_linear(a, 1 / (2 * M), S).eps)
    assert "plug-in" in plug.note
    th1 = gen.learning_curve("linear", "wn-decay", a, noise=S, batch_size=M,
                             decay_convention="theorem1")
    np.testing.assert_allclose(th1.eps, scaled.eps)  # BN's decay is convention-free
    r = gen.learning_curve("linear", "wn-decay", a, noise=S, zeta=0.1, decay_convention="decay2")
    np.testing.assert_allclose(r.eps, gen.ridge_linear(a, 0.1 * a, S).eps)
    mn = gen.learning_curve("linear", "min-norm", a, noise=S)
    np.testing.assert_allclose(mn.eps, gen.min_norm_linear(a, S).eps)
    rl = gen.learning_curve("relu", "min-norm", [0.5, 1.5], noise=S)
    np.testing.assert_allclose(rl.eps, gen.relu_exhaustive([0.5, 1.5], S).eps)
    json.dumps(scaled.to_dict())


def test_replica_branch_delegates_in_the_sum_convention():
    """ReLU ridge/bn go to the replica solver, with bn's decay scaled by alpha."""
    from perceptron_theory.theory import replica

    alphas = [0.5, 2.0]
    c = gen.learning_curve("relu", "wn-decay", alphas, noise=S, batch_size=16)
    ref = replica.learning_curve(alphas, student="relu", teacher="linear", noise=S,
                                 zeta=np.array(alphas) / 32)
    np.testing.assert_allclose(c.eps, ref.eps, rtol=1e-10)
    np.testing.assert_allclose(c.zeta, np.array(alphas) / 32)
    assert c.method == "wn-decay" and "replica" in c.note and "M=16" in c.note
    c = gen.learning_curve("relu", "wn-decay", [0.5], noise=S, zeta=0.1, include_noise=True)
    r = replica.solve(0.5, student="relu", noise=S, zeta=0.1)
    assert c.eps[0] == pytest.approx(r.eps + S, rel=1e-10)


def test_vectorized_shapes_and_broadcast():
    a = np.linspace(0.1, 3, 12).reshape(3, 4)
    c = gen.ridge_linear(a, 0.25, S)
    assert c.eps.shape == (3, 4) and c.gamma.shape == (3, 4)
    z = np.array([0.0, 0.1, 0.25, 1.0])
    c2 = gen.ridge_linear(a, z, S)
    for j in range(4):
        np.testing.assert_allclose(c2.eps[:, j], gen.ridge_linear(a[:, j], z[j], S).eps)


# ----------------------------------------------------------------------- bad input
bad_pos = st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.just(float("inf")))
bad_nonneg = st.one_of(st.floats(max_value=-1e-12), st.just(float("nan")))


@HYP
@given(alpha=bad_pos)
def test_bad_alpha(alpha):
    for f in (lambda: gen.ridge_linear(alpha, 0.1, S), lambda: gen.min_norm_linear(alpha, S),
              lambda: gen.learning_curve("linear", "wn-decay", [1.0, alpha], noise=S),
              lambda: gen.mp_stieltjes(alpha, 0.1), lambda: gen.relu_exhaustive(alpha, S)):
        with pytest.raises(ValueError, match="alpha"):
            f()


@HYP
@given(noise=bad_nonneg)
def test_bad_noise(noise):
    with pytest.raises(ValueError, match="noise"):
        gen.learning_curve("linear", "min-norm", 1.5, noise=noise)
    with pytest.raises(ValueError, match="noise"):
        gen.relu_exhaustive(1.0, noise)


@HYP
@given(zeta=bad_nonneg)
def test_bad_zeta(zeta):
    with pytest.raises(ValueError, match="zeta"):
        gen.learning_curve("linear", "wn-decay", 1.5, noise=S, zeta=zeta)
    with pytest.raises(ValueError, match="zeta"):
        gen.ridge_parts(1.5, zeta)


@HYP
@given(beta=st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.just("hot")))
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        gen.learning_curve("linear", "wn-decay", 1.5, noise=S, zeta=0.1, beta=beta)


@HYP
@given(alpha=st.floats(0.01, 10), zeta=st.floats(0, 50), noise=st.floats(0, 5),
       beta=st.one_of(st.just(math.inf), st.floats(0.1, 100)))
def test_good_input_gives_finite_consistent_curves(alpha, zeta, noise, beta):
    c = gen.learning_curve("linear", "wn-decay", alpha, noise=noise, zeta=zeta, beta=beta)
    finite = zeta > 0 or alpha > 1 + 1e-9 or (math.isinf(beta) and (alpha < 1 or noise == 0))
    if finite:
        assert np.isfinite(c.eps[0]) and c.eps[0] >= 0
        # Bayes optimum: no decay beats zeta = noise (at beta = inf)
        if math.isinf(beta):
            assert gen.ridge_linear(alpha, noise, noise).eps[0] <= c.eps[0] + 1e-12


def test_bad_choices_and_combinations():
    with pytest.raises(ValueError, match="student"):
        gen.learning_curve("erf", "wn-decay", 1.0, noise=S)
    with pytest.raises(ValueError, match="method"):
        gen.learning_curve("linear", "sgd", 1.0, noise=S)
    with pytest.raises(ValueError, match="decay_convention"):
        gen.learning_curve("linear", "wn-decay", 1.0, noise=S, decay_convention="mean")
    with pytest.raises(ValueError, match="batch_size"), pytest.warns(DeprecationWarning):
        gen.learning_curve("linear", "bn", 1.0, noise=S)
    with pytest.raises(ValueError, match="batch_size"):
        gen.learning_curve("linear", "wn-decay", 1.0, noise=S, batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        gen.learning_curve("linear", "min-norm", 1.0, noise=S, batch_size=32)
    with pytest.raises(ValueError, match="zeta"):
        gen.learning_curve("linear", "wn-decay", 1.0, noise=S, batch_size=32, zeta=0.1)
    with pytest.raises(ValueError, match="zeta"):
        gen.learning_curve("linear", "min-norm", 1.0, noise=S, zeta=0.1)
    with pytest.raises(ValueError, match="bn_decay"):
        gen.learning_curve("linear", "wn-decay", 1.0, noise=S, batch_size=32, bn_decay="approx")
    with pytest.raises(ValueError, match="student"):
        gen.eps_gamma_R("erf", 1.0, 0.5)
    with pytest.raises(ValueError, match="zeta_ps"):
        gen.sum_decay_from_per_sample(-1.0, 1.0)


def test_deprecated_method_names_warn_and_map_to_wn_decay():
    """``ridge`` and ``bn`` (old names of ``wn-decay``) work for one release, warning."""
    a = [0.5, 2.0]
    with pytest.warns(DeprecationWarning, match="'ridge' of curve is a deprecated alias"):
        r = gen.learning_curve("linear", "ridge", a, noise=S, zeta=0.1)
    np.testing.assert_array_equal(r.eps, gen.learning_curve("linear", "wn-decay", a, noise=S,
                                                            zeta=0.1).eps)
    with pytest.warns(DeprecationWarning, match="'bn' of curve"):
        b = gen.learning_curve("linear", "bn", a, noise=S, batch_size=32)
    assert b.method == "wn-decay"
    np.testing.assert_array_equal(b.eps, gen.learning_curve("linear", "wn-decay", a, noise=S,
                                                            batch_size=32).eps)
