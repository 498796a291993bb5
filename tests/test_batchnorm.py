"""Tests of perceptron_theory.theory.batchnorm against independent computations.

Tiers: closed form vs quadrature / exact sums (tight rtol); Monte Carlo with a seeded
generator (tolerance 4.5 standard errors, sample size stated); hypothesis property tests
(positivity, monotonicity, invariances, bad input -> ValueError naming the parameter).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special, stats

from perceptron_theory.theory import batchnorm as bn

N_SIGMA = 4.5
HYP = settings(max_examples=40, deadline=None)


def close_mc(pred, samples, n_sigma=N_SIGMA, atol=0.0):
    samples = np.asarray(samples, float)
    m = samples.mean()
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(m - pred) <= n_sigma * se + atol, (pred, m, se)


def gaussian_grid(P=8192, seed=0):
    """Stratified Gaussian sample (normal quantiles, shuffled) and its standardization."""
    h = stats.norm.ppf((np.arange(P) + 0.5) / P)
    np.random.default_rng(seed).shuffle(h)
    return h, (h - h.mean()) / h.std()


def test_doctests():
    assert doctest.testmod(bn).failed == 0


# ------------------------------------------------------------------ batch noise (L-prior)
def test_chi_dof_and_prior_fields():
    assert bn.chi_dof(8) == 7 and bn.chi_dof(8, centered=False) == 8
    p = bn.batch_stats_prior(16, mu_P=1.0, sigma_P=2.0, rho=3.0)
    assert p.mean_mu_b == 1.0 and p.var_mu_b == pytest.approx(4.0 / 16)
    # dimensionally right: Var(sigma_B) scales as sigma_P^2 (paper prints (rho+2)/(4M))
    assert p.var_sigma_b == pytest.approx(4.0 * 5.0 / 64)
    assert bn.batch_stats_prior(16, centered=False).var_mu_b == 0.0
    assert set(p.to_dict()) >= {"mean_sigma_b", "var_sigma_b"}


def test_batch_variance_variance_uniform_mc():
    rng = np.random.default_rng(1)
    M, nb = 5, 400_000
    h = rng.uniform(-math.sqrt(3), math.sqrt(3), (nb, M))
    v = h.var(axis=1)
    pred = bn.batch_variance_variance(M, rho=-1.2)
    d = (v - v.mean()) ** 2
    close_mc(pred, d)
    # Gaussian case: the chi-square variance 2 nu / M^2
    assert bn.batch_variance_variance(9) == pytest.approx(bn.gaussian_batch_stats(9).var_sigma_b2)


def _bernoulli_cumulants(p):
    q = 1 - p
    m = {k: p * q**k + q * (-p) ** k for k in (2, 3, 4, 6)}
    k6 = m[6] - 15 * m[4] * m[2] - 10 * m[3] ** 2 + 30 * m[2] ** 3
    return m[3] / m[2] ** 1.5, m[4] / m[2] ** 2 - 3, k6 / m[2] ** 3


def _bernoulli_var_sigma_b(M, p, centered):
    """Exact Var(sigma_B) for standardized Bernoulli h, summing over K ~ Bin(M, p)."""
    q = 1 - p
    K = np.arange(M + 1)
    w = stats.binom.pmf(K, M, p)
    v = (K / M) * (1 - K / M) / (p * q) if centered else (K * q * q + (M - K) * p * p) / (M * p * q)
    s = np.sqrt(v)
    return float(w @ v - (w @ s) ** 2)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.1])
@pytest.mark.parametrize("centered", [True, False])
def test_std_variance_coefficients_exact_bernoulli(p, centered):
    """c1 (with skewness and kappa6) vs an exact binomial sum, Richardson-extrapolated."""
    s, rho, k6 = _bernoulli_cumulants(p)
    c0, c1 = bn.batch_std_variance_coefficients(rho=rho, kappa6=k6, skewness=s,
                                                centered=centered)

    def f(M):
        return M * (M * _bernoulli_var_sigma_b(M, p, centered) - c0)

    M = 2000
    assert 2 * f(2 * M) - f(M) == pytest.approx(c1, abs=2e-3 * max(1.0, abs(c1)))


def test_std_variance_coefficients_gaussian():
    for centered in (True, False):
        c0, c1 = bn.batch_std_variance_coefficients(centered=centered)
        assert (c0, c1) == pytest.approx((0.5, -0.125))
        M = 20_000
        ex = bn.gaussian_batch_stats(M, centered=centered).var_sigma_b
        assert M * (M * ex - c0) == pytest.approx(c1, abs=1e-3)


@pytest.mark.parametrize("k", [1.0, -1.0, -2.0, 0.5, 3.0, -3.5])
@pytest.mark.parametrize("M", [6, 17, 200])
@pytest.mark.parametrize("centered", [True, False])
def test_batch_std_moment_vs_quadrature(k, M, centered):
    nu = M - 1 if centered else M
    f = lambda c: (c / math.sqrt(M)) ** k * stats.chi.pdf(c, nu)  # noqa: E731
    val, _ = integrate.quad(f, 0, np.inf, limit=200)
    assert bn.batch_std_moment(M, k, centered=centered) == pytest.approx(val, rel=1e-8)


def test_inverse_moments_paper_forms():
    for M in (5, 10, 64, 1000):
        e1 = math.sqrt(M / 2) * math.exp(special.gammaln((M - 2) / 2)
                                         - special.gammaln((M - 1) / 2))
        assert bn.inverse_std_moment(M, 1) == pytest.approx(e1, rel=1e-12)
        assert bn.inverse_std_moment(M, 2) == pytest.approx(M / (M - 3), rel=1e-12)


def test_moments_large_M_accuracy():
    M = 10**8   # poch keeps 1 - c_M ~ 7.5e-9 accurate; exp(gammaln - gammaln) would not
    one_minus = 1 - bn.real_batch_shrinkage(M)
    assert one_minus == pytest.approx(0.75 / M + 7 / 32 / M**2, rel=1e-6)
    assert bn.batch_std_moment(10**6, 40.0) == pytest.approx(
        math.exp(20 * math.log(2 / 10**6) + special.gammaln((10**6 - 1 + 40) / 2)
                 - special.gammaln((10**6 - 1) / 2)), rel=1e-9)


def test_gaussian_batch_stats_mc():
    rng = np.random.default_rng(2)
    M, nb = 8, 200_000
    h = 3.0 + 2.0 * rng.standard_normal((nb, M))
    s = h.std(axis=1)
    ex = bn.gaussian_batch_stats(M, mu_P=3.0, sigma_P=2.0)
    close_mc(ex.mean_sigma_b, s)
    close_mc(ex.var_sigma_b, (s - s.mean()) ** 2)
    close_mc(ex.var_mu_b, (h.mean(axis=1) - 3.0) ** 2)
    assert ex.dof == 7 and ex.independent


def test_moment_range_errors():
    with pytest.raises(ValueError, match="batch_size"):
        bn.inverse_std_moment(3, 2)            # nu = 2, needs nu > 2
    bn.inverse_std_moment(3, 2, centered=False)  # nu = 3 is fine
    with pytest.raises(ValueError, match="batch_size"):
        bn.batch_std_moment(4, -3.0)
    with pytest.raises(ValueError, match="batch_size"):
        bn.equivalent_decay_linear(3)          # exact form needs E[1/sigma_B^2]


@pytest.mark.parametrize("kw,name", [
    (dict(batch_size=1), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(batch_size=8, sigma_P=-1.0), "sigma_P"), (dict(batch_size=8, sigma_P=0.0), "sigma_P"),
    (dict(batch_size=8, rho=-2.5), "rho"), (dict(batch_size=8, mu_P=float("nan")), "mu_P"),
    (dict(batch_size=8, sigma_P=float("inf")), "sigma_P"),
])
def test_prior_bad_inputs(kw, name):
    M = kw.pop("batch_size")
    with pytest.raises(ValueError, match=name):
        bn.batch_stats_prior(M, **kw)


@HYP
@given(M=st.integers(2, 10**6), k=st.floats(-0.9, 6.0), centered=st.booleans())
def test_moment_positive_finite(M, k, centered):
    v = bn.batch_std_moment(M, k, centered=centered)
    assert math.isfinite(v) and v > 0
    if k == 1.0:
        assert v < 1.0                          # Jensen: E sigma_B < sqrt(E sigma_B^2) <= sigma_P


@HYP
@given(M=st.one_of(st.integers(-5, 1), st.floats(2.1, 9.9).filter(lambda x: x != int(x)),
                   st.just(float("nan")), st.text(max_size=3)))
def test_bad_batch_size_named(M):
    for f in (lambda: bn.chi_dof(M), lambda: bn.real_batch_shrinkage(M),
              lambda: bn.equivalent_decay_linear(M), lambda: bn.batch_stats_prior(M)):
        with pytest.raises(ValueError, match="batch_size"):
            f()


# ------------------------------------------------------------------ linear student (L-C3)
def test_decay_conventions_and_limits():
    M = 10**6
    p = bn.linear_decay_parts(M)
    assert M * p.sigma_part == pytest.approx(0.25, rel=1e-4)
    assert M * p.mu_part == pytest.approx(0.5, rel=1e-4)
    assert M * p.total == pytest.approx(0.75, rel=1e-4)
    p2 = bn.linear_decay_parts(64, convention="decay2")
    assert p2.total == pytest.approx(2 * bn.linear_decay_parts(64).total)
    sig = bn.linear_decay_parts(64).sigma_part
    assert bn.equivalent_decay_linear(64, include_mean=False) == sig
    assert bn.equivalent_decay_linear(64, exact=False, convention="decay2",
                                      include_mean=False) == pytest.approx(1 / 128)
    assert M * bn.equivalent_decay_linear(M, centered=False) == pytest.approx(0.25, rel=1e-4)
    with pytest.raises(ValueError, match="include_mean"):
        bn.equivalent_decay_linear(64, centered=False, include_mean=True)
    with pytest.raises(ValueError, match="convention"):
        bn.equivalent_decay_linear(64, convention="halved")


@HYP
@given(M=st.integers(4, 10**5), conv=st.sampled_from(["theorem1", "decay2"]),
       centered=st.booleans(), exact=st.booleans())
def test_decay_positive_and_decreasing(M, conv, centered, exact):
    z = lambda m: bn.equivalent_decay_linear(m, convention=conv, centered=centered,  # noqa: E731
                                             exact=exact)
    assert 0 < z(M + 1) < z(M)
    zr = lambda m: bn.equivalent_decay_real_batch(m, convention=conv, centered=centered)  # noqa: E731
    assert 0 < zr(M + 1) < zr(M)


def test_independent_excess_mc():
    """Independence model by sampling: E[l_BN] - l_PN and its gamma-gradient."""
    rng = np.random.default_rng(3)
    M, a, n = 12, 0.7, 1_000_000
    h = rng.standard_normal(n)
    y = a * h + 0.5 * rng.standard_normal(n)
    u = np.sqrt(M / rng.chisquare(M - 1, n))
    nrm = (h - rng.standard_normal(n) / math.sqrt(M)) * u
    for g in (a, 1.3 * a):
        ex = bn.linear_excess_loss(M, g, a, mode="independent")
        close_mc(ex.value, 0.5 * (y - g * nrm) ** 2 - 0.5 * (y - g * h) ** 2)
        close_mc(ex.grad_gamma, -y * (nrm - h) + g * (nrm**2 - h**2))
    # at gamma = a, R_f = 0 and the excess is zeta_exact gamma^2
    assert bn.linear_excess_loss(M, a, a, mode="independent").value == pytest.approx(
        bn.equivalent_decay_linear(M) * a * a)


def test_real_batch_identities_any_distribution():
    rng = np.random.default_rng(4)
    for h in (rng.standard_normal((1000, 7)), rng.exponential(size=(1000, 7))):
        n = (h - h.mean(axis=1, keepdims=True)) / h.std(axis=1, keepdims=True)
        np.testing.assert_allclose((n * n).mean(axis=1), 1.0, rtol=1e-12)
        mu_P = 0.3
        lhs = ((h - mu_P) * (h - h.mean(axis=1, keepdims=True))).sum(axis=1)
        np.testing.assert_allclose(lhs, 7 * h.var(axis=1), rtol=1e-10)


@pytest.mark.parametrize("M", [4, 16])
def test_real_batch_excess_mc(M):
    """The finding: E_batches[l_BN] = l_PN + gamma a (1 - c_M), linear in gamma."""
    rng = np.random.default_rng(5 + M)
    a, nb = 0.9, 2**20 // M
    h = rng.standard_normal((nb, M))
    y = a * h + 0.4 * rng.standard_normal((nb, M))
    n = (h - h.mean(axis=1, keepdims=True)) / h.std(axis=1, keepdims=True)
    cM = bn.real_batch_shrinkage(M)
    close_mc(cM, (h * n).mean(axis=1))
    for g in (0.5, a, 1.7):
        ex = bn.linear_excess_loss(M, g, a)
        assert ex.value == pytest.approx(g * a * (1 - cM)) and ex.grad_gamma == pytest.approx(
            a * (1 - cM))
        close_mc(ex.value, (0.5 * (y - g * n) ** 2 - 0.5 * (y - g * h) ** 2).mean(axis=1))
    # Theorem 1's gradient 2 zeta gamma at gamma = a is about twice the real one
    ratio = 2 * bn.equivalent_decay_linear(M, exact=False) * a / (a * (1 - cM))
    assert 1.5 < ratio < 2.1


def test_gradient_matched_decay_fixed_point():
    for M in (8, 64, 4096):
        cM = bn.real_batch_shrinkage(M)
        z, a = bn.equivalent_decay_real_batch(M), 0.8
        g_star = optimize.minimize_scalar(lambda g, a=a, z=z: -g * a + g * g / 2 + z * g * g).x
        assert g_star == pytest.approx(a * cM, rel=1e-6)     # same fixed point as real BN
    assert 4096 * bn.equivalent_decay_real_batch(4096) == pytest.approx(0.375, rel=2e-3)
    assert bn.equivalent_decay_real_batch(64, convention="decay2") == pytest.approx(
        1 / bn.real_batch_shrinkage(64) - 1)


def test_decay_report():
    import json

    d = bn.decay_report(32, sigma_P=2.0)
    json.dumps(d, allow_nan=False)
    assert d["dof"] == 31 and d["gaussian_E_inv_sigma_B2"] == pytest.approx(32 / 29 / 4)
    assert d["zeta_independent_total_theorem1_exact"] == bn.equivalent_decay_linear(32)
    assert d["zeta_independent_total_decay2_large_M"] == pytest.approx(3 / 64)
    assert d["zeta_real_batch_gradient_matched_decay2"] == bn.equivalent_decay_real_batch(
        32, convention="decay2")
    small = bn.decay_report(3)
    assert small["gaussian_E_inv_sigma_B2"] is None and small["gaussian_E_inv_sigma_B"] > 0
    assert small["zeta_independent_total_theorem1_exact"] is None
    assert bn.decay_report(2)["gaussian_E_inv_sigma_B"] is None
    assert bn.decay_report(8, centered=False)["zeta_independent_mu_part_theorem1_exact"] == 0
    with pytest.raises(ValueError, match="sigma_P"):
        bn.decay_report(8, sigma_P=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        bn.decay_report(1)


# ------------------------------------------------------------------ losses and Theorem 1
def test_softplus_partition():
    h = np.linspace(-30, 30, 121)
    eps = 1e-5
    d1 = (bn.softplus_partition(h + eps) - bn.softplus_partition(h - eps)) / (2 * eps)
    np.testing.assert_allclose(d1, np.logaddexp(0, h), rtol=1e-7, atol=1e-9)
    eps = 1e-4
    d2 = (bn.softplus_partition(h + eps) - 2 * bn.softplus_partition(h)
          + bn.softplus_partition(h - eps)) / eps**2
    np.testing.assert_allclose(d2, special.expit(h), atol=2e-5)
    for x in (-3.0, 0.0, 2.5):                  # A(x) = int_{-inf}^x softplus
        val, _ = integrate.quad(lambda t: np.logaddexp(0, t), -60, x)
        assert bn.softplus_partition([x])[0] == pytest.approx(val, rel=1e-9, abs=1e-12)
    assert bn.softplus_partition([0.0])[0] == pytest.approx(math.pi**2 / 12)
    assert np.all(np.isfinite(bn.softplus_partition([-700.0, 700.0])))
    assert bn.LOSSES["glm-softplus"].mean(np.array([0.3])) == pytest.approx(np.log1p(np.exp(0.3)))


def test_zeta_theorem1_values():
    h, hh = gaussian_grid()
    z = bn.zeta_theorem1(h, 16, 1.0, rho=0.0)
    assert z.zeta == pytest.approx(0.75 / 16) and z.fisher == pytest.approx(1.0)
    assert z.sigma_part == pytest.approx(2 / (8 * 16)) and z.mu_part == pytest.approx(1 / 32)
    assert abs(bn.zeta_theorem1(h, 16, 1.0).rho) < 0.01    # estimated kurtosis of the grid
    ze = bn.zeta_theorem1(h, 16, 1.0, moments="gaussian-exact")
    assert ze.zeta == pytest.approx(bn.equivalent_decay_linear(16), rel=1e-12)
    assert bn.zeta_theorem1(h, 16, 1.0, rho=0.0, convention="decay2").zeta == pytest.approx(
        2 * z.zeta)
    assert bn.zeta_theorem1(h, 16, 1.0, rho=0.0, centered=False).mu_part == 0.0
    # ReLU case: curvature = sigmoid, mu part = mean sigmoid / (2M)
    curv = special.expit(0.7 * hh + 0.2)
    zr = bn.zeta_theorem1(h, 32, curv, rho=0.0)
    assert zr.mu_part == pytest.approx(curv.mean() / 64)
    assert zr.fisher == pytest.approx(np.mean(curv * hh**2))


def test_fisher_outer_vs_hessian():
    """The two Fisher estimates agree at the true model only (mse: unit noise variance)."""
    rng = np.random.default_rng(6)
    h = rng.standard_normal(400_000)
    hh = (h - h.mean()) / h.std()
    for noise_sd, agree in ((1.0, True), (2.0, False)):
        y = 0.6 * hh + noise_sd * rng.standard_normal(h.size)
        g = bn.pn_stationary_gamma(h, y)
        grad = (g * hh - y) * hh                   # dl/dgamma, halved squared error
        zo = bn.zeta_theorem1(h, 16, 1.0, rho=0.0, dloss_dgamma=grad)
        zh = bn.zeta_theorem1(h, 16, 1.0, rho=0.0)
        assert zo.fisher_estimate == "outer" and zh.fisher_estimate == "hessian"
        assert (abs(zo.fisher - zh.fisher) < 0.02) == agree


@pytest.mark.parametrize("kw,name", [
    (dict(curvature=-1.0), "curvature"), (dict(curvature=np.ones(3)), "curvature"),
    (dict(batch_size=1), "batch_size"), (dict(rho=-3.0), "rho"),
    (dict(convention="x"), "convention"), (dict(moments="x"), "moments"),
    (dict(h=np.ones(10)), "h"), (dict(h=[1.0, np.inf]), "h"),
    (dict(dloss_dgamma=np.ones(3)), "dloss_dgamma"),
])
def test_zeta_theorem1_bad_inputs(kw, name):
    args = dict(h=np.linspace(-1, 1, 10), batch_size=8, curvature=1.0)
    args.update(kw)
    h, M, c = args.pop("h"), args.pop("batch_size"), args.pop("curvature")
    with pytest.raises(ValueError, match=name):
        bn.zeta_theorem1(h, M, c, **args)


def test_pn_losses_and_stationary_points():
    rng = np.random.default_rng(7)
    h = 2.0 + 3.0 * rng.standard_normal(5000)
    hh = (h - h.mean()) / h.std()
    y = np.maximum(0, 0.8 * hh + 0.5 * rng.standard_normal(h.size))
    assert bn.pn_loss(h, y, 0.5, 0.1) == pytest.approx(np.mean(0.5 * (y - 0.5 * hh - 0.1) ** 2))
    assert bn.pn_stationary_gamma(h, y) == pytest.approx(np.mean(y * hh))
    g = bn.pn_stationary_gamma(h, y, 0.3, "glm-softplus")
    f = lambda x: bn.pn_loss(h, y, x, 0.3, "glm-softplus")  # noqa: E731
    assert (f(g + 1e-5) - f(g - 1e-5)) / 2e-5 == pytest.approx(0, abs=1e-8)
    g, b = bn.pn_stationary_point(h, y, "glm-softplus")
    for dg, db in ((1e-5, 0), (0, 1e-5)):
        fd = (bn.pn_loss(h, y, g + dg, b + db, "glm-softplus")
              - bn.pn_loss(h, y, g - dg, b - db, "glm-softplus")) / 2e-5
        assert fd == pytest.approx(0, abs=1e-8)
    z = bn.zeta_theorem1(h, 16, special.expit(g * hh + b))
    assert bn.pn_loss_plus_decay(h, y, g, b, 16, "glm-softplus") == pytest.approx(
        bn.pn_loss(h, y, g, b, "glm-softplus") + z.zeta * g * g)


def test_expected_bn_loss_exact_cases():
    rng = np.random.default_rng(8)
    h, y = rng.standard_normal(64), rng.standard_normal(64)
    # one batch holding all data: batch statistics = population statistics
    r = bn.expected_bn_loss(h, y, 0.7, 0.1, 64, "glm-softplus", n_draws=4)
    assert r.mean == pytest.approx(bn.pn_loss(h, y, 0.7, 0.1, "glm-softplus")) and r.stderr < 1e-12
    a = bn.expected_bn_loss(h, y, 0.7, 0.1, 10, n_draws=8, seed=3)   # P not divisible by M
    assert a == bn.expected_bn_loss(h, y, 0.7, 0.1, 10, n_draws=8, seed=3)
    assert a.mean != bn.expected_bn_loss(h, y, 0.7, 0.1, 10, n_draws=8, seed=4).mean
    c = bn.expected_bn_loss(h, y, 0.7, 0.1, 10, n_draws=8, seed=3, max_chunk_elements=100)
    assert np.isfinite(c.mean) and c.to_dict()["mode"] == "real"


@pytest.mark.parametrize("mode", ["real", "independent"])
@pytest.mark.parametrize("loss", ["mse", "glm-softplus"])
def test_expected_bn_loss_vs_quadrature(mode, loss):
    h, hh = gaussian_grid(4096, seed=1)
    y = 0.8 * hh + 0.3 if loss == "mse" else np.maximum(0, hh)
    M = 12
    mc = bn.expected_bn_loss(h, y, 0.9, 0.2, M, loss, n_draws=40, seed=2, mode=mode)
    q = bn.gaussian_batch_loss(h, y, 0.9, 0.2, M, loss, mode=mode)
    assert abs(mc.mean - q) <= N_SIGMA * mc.stderr + 1e-3 * abs(q)


@pytest.mark.parametrize("M", [8, 32, 300])
@pytest.mark.parametrize("centered", [True, False])
def test_quadrature_nodes_exact_moments(M, centered):
    """The quadrature core, averaged over x ~ N(0,1): E[x n] and E[n^2] in closed form."""
    z, wz = special.roots_hermitenorm(80)
    wz = wz / math.sqrt(2 * math.pi)
    rel = 2e-4 if M == 8 else 1e-9
    n, w = bn._batch_normalized(z, M, "real", centered, 48)
    cM = bn.real_batch_shrinkage(M, centered=centered)
    assert wz @ ((z[:, None] * n) @ w) == pytest.approx(cM, rel=rel)
    assert wz @ ((n * n) @ w) == pytest.approx(1.0, rel=rel)
    n, w = bn._batch_normalized(z, M, "independent", centered, 48)
    c2 = bn.inverse_std_moment(M, 2, centered=centered) * (1 + 1 / M if centered else 1)
    assert wz @ ((z[:, None] * n) @ w) == pytest.approx(
        bn.inverse_std_moment(M, 1, centered=centered), rel=rel)
    assert wz @ ((n * n) @ w) == pytest.approx(c2, rel=rel)


@pytest.mark.parametrize("M", [8, 32])
@pytest.mark.parametrize("centered", [True, False])
def test_quadrature_vs_closed_forms(M, centered):
    """gaussian_batch_loss for mse on a stratified Gaussian sample vs the exact results."""
    P = 40001
    h = stats.norm.ppf((np.arange(P) + 0.5) / P)
    hh = (h - h.mean()) / h.std()
    d4 = abs(np.mean(hh**4) - 3)                # the sample's kurtosis deficit, ~1e-3
    a, g = 0.7, 1.1
    pn = bn.pn_loss(h, a * hh, g)
    for mode in ("real", "independent"):
        ex = bn.linear_excess_loss(M, g, a, mode=mode, centered=centered).value
        q = bn.gaussian_batch_loss(h, a * hh, g, 0.0, M, mode=mode, centered=centered) - pn
        assert q == pytest.approx(ex, rel=2e-4 + 2 * d4)


def test_real_batch_leading_excess():
    h, hh = gaussian_grid(8192, seed=3)
    # linear target: total = gamma a (rho+6)/(8M), the expansion of gamma a (1 - c_M)
    lead = bn.real_batch_leading_excess(h, 0.8 * hh, 0.5, 0.0, 64)   # rho, s from the data
    rho = stats.kurtosis(h)
    assert lead.total == pytest.approx(0.5 * 0.8 * (rho + 6) / (8 * 64), rel=1e-10)
    # misspecified GLM: first-order term survives; quadrature - leading = O(1/M^2)
    y = np.exp(0.5 * hh)
    g, b = bn.pn_stationary_point(h, y, "glm-softplus")
    pn = bn.pn_loss(h, y, g, b, "glm-softplus")
    r = []
    for M in (128, 256):
        lead = bn.real_batch_leading_excess(h, y, g, b, M, "glm-softplus", rho=0.0, skewness=0.0)
        assert abs(lead.first_order) > 0.05 * abs(lead.second_order)
        r.append(bn.gaussian_batch_loss(h, y, g, b, M, "glm-softplus") - pn - lead.total)
    assert math.log2(abs(r[0] / r[1])) == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("kw,name", [
    (dict(batch_size=100), "batch_size"), (dict(n_draws=1), "n_draws"),
    (dict(mode="fresh"), "mode"), (dict(loss="hinge"), "loss"), (dict(gamma=np.nan), "gamma"),
    (dict(y=np.ones(5)), "y"), (dict(seed=-1), "seed"),
])
def test_expected_bn_loss_bad_inputs(kw, name):
    args = dict(h=np.linspace(-1, 1, 20), y=np.zeros(20), gamma=1.0, batch_size=4)
    args.update(kw)
    with pytest.raises(ValueError, match=name):
        bn.expected_bn_loss(args.pop("h"), args.pop("y"), args.pop("gamma"),
                            batch_size=args.pop("batch_size"), **args)


# ------------------------------------------------------------------ Annamalai & Thakur
def _spd(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q @ np.diag(rng.uniform(0.2, 3.0, d)) @ q.T


def test_bn_weight_effective_rate_mc():
    rng = np.random.default_rng(9)
    R, w = _spd(4, rng), rng.standard_normal(4)
    x = rng.multivariate_normal(np.zeros(4), R, size=400_000)
    a = bn.effective_rate(w, R)
    s2 = (x @ w) ** 2
    close_mc(a * a, s2)
    wbn = bn.bn_weight(w, 1.7, R)
    np.testing.assert_allclose(wbn, 1.7 * w / a)
    close_mc(1.7**2, (x @ wbn) ** 2)         # BN output has variance gamma^2


def test_constrained_solution_slsqp():
    rng = np.random.default_rng(10)
    R, w = _spd(5, rng), rng.standard_normal(5)
    sol = bn.bn_constrained_solution(w, R)
    a = bn.effective_rate(w, R)
    res = optimize.minimize(lambda v: a * (v @ v), rng.standard_normal(5), method="SLSQP",
                            constraints=[{"type": "eq", "fun": lambda v: v @ w - 1}],
                            options={"ftol": 1e-14})
    np.testing.assert_allclose(res.x, sol.minimizer, atol=1e-6)
    assert sol.objective == pytest.approx(res.fun, rel=1e-8)
    np.testing.assert_allclose(2 * a * res.x, sol.multiplier * w, atol=1e-5)   # KKT
    np.testing.assert_allclose(bn.bn_weight(w, sol.matching_gamma, R), sol.minimizer)
    assert set(sol.to_dict()) == {"minimizer", "multiplier", "matching_gamma", "objective"}


@HYP
@given(c=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3), gamma=st.floats(-5, 5),
       seed=st.integers(0, 1000))
def test_bn_weight_scale_invariance(c, gamma, seed):
    rng = np.random.default_rng(seed)
    R, w = _spd(3, rng), rng.standard_normal(3)
    np.testing.assert_allclose(bn.bn_weight(c * w, gamma, R),
                               np.sign(c) * bn.bn_weight(w, gamma, R), atol=1e-12)


@HYP
@given(gamma=st.floats(0.1, 5), lam=st.floats(0.01, 100), sigma2=st.floats(0, 100),
       seed=st.integers(0, 1000))
def test_noise_penalty_forms(gamma, lam, sigma2, seed):
    rng = np.random.default_rng(seed)
    d = 4
    w = rng.standard_normal(d)
    fac = bn.noise_regularization_factor(gamma, lam, sigma2)
    assert bn.noise_penalty(w, gamma, lam * np.eye(d), sigma2) == pytest.approx(fac, rel=1e-10)
    assert fac <= gamma**2 + 1e-12
    R = _spd(d, rng)
    ev, Q = np.linalg.eigh(R)
    wt = Q.T @ w                                # eigenbasis form of eq. 18
    eig = sigma2 * gamma**2 * np.sum(wt**2) / np.sum((ev + sigma2) * wt**2)
    assert bn.noise_penalty(w, gamma, R, sigma2) == pytest.approx(eig, rel=1e-10)
    # = sigma^2 |w_bn|^2 with w_bn from the noisy covariance
    wbn = bn.bn_weight(w, gamma, R + sigma2 * np.eye(d))
    assert bn.noise_penalty(w, gamma, R, sigma2) == pytest.approx(sigma2 * wbn @ wbn, rel=1e-10,
                                                                  abs=1e-300)


def test_noise_factor_limits():
    # small noise: sigma^2 gamma^2 / lambda (the paper prints gamma^2 / lambda)
    assert bn.noise_regularization_factor(2.0, 4.0, 1e-8) == pytest.approx(1e-8 * 4 / 4, rel=1e-6)
    assert bn.noise_regularization_factor(2.0, 4.0, 1e8) == pytest.approx(4.0, rel=1e-6)


def test_noise_penalty_mc():
    rng = np.random.default_rng(11)
    d, s2, g = 6, 0.5, 1.2
    R, w, ws = _spd(d, rng), rng.standard_normal(d), rng.standard_normal(d)
    n = 400_000
    x = rng.multivariate_normal(np.zeros(d), R, size=n)
    xi = math.sqrt(s2) * rng.standard_normal((n, d))
    wbn = bn.bn_weight(w, g, R + s2 * np.eye(d))
    y = x @ ws
    inc = ((x + xi) @ wbn - y) ** 2 - (x @ wbn - y) ** 2
    close_mc(bn.noise_penalty(w, g, R, s2), inc)


@pytest.mark.parametrize("w,R,name", [
    (np.zeros(2), np.eye(2), "w"), (np.ones((2, 2)), np.eye(2), "w"),
    (np.ones(2), np.eye(3), "R"), (np.ones(2), np.array([[1.0, 0.5], [0.0, 1.0]]), "R"),
    (np.ones(2), np.array([[1.0, 2.0], [2.0, 1.0]]), "R"), (np.ones(2), np.eye(2) * np.nan, "R"),
])
def test_annamalai_bad_inputs(w, R, name):
    with pytest.raises(ValueError, match=name):
        bn.bn_weight(w, 1.0, R)
    with pytest.raises(ValueError, match=name):
        bn.effective_rate(w, R)


@pytest.mark.parametrize("args,name", [
    ((1.0, 0.0, 1.0), "lam"), ((1.0, 1.0, -1.0), "sigma2"), ((np.inf, 1.0, 1.0), "gamma"),
])
def test_noise_factor_bad_inputs(args, name):
    with pytest.raises(ValueError, match=name):
        bn.noise_regularization_factor(*args)
