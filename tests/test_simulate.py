"""The numba simulation engine against independent computations.

* RNG: moments, Kolmogorov-Smirnov, determinism; chi-square and Wishart quadratic forms
  against their exact means/variances.
* Kernels: every update rule's step against central finite differences of the batch loss
  written out in numpy (the backward pass through batch statistics).
* Engines: the rotation-reduced chain against the literal N-vector simulation (same law:
  means within 4 SE); results independent of the thread count; deterministic per seed.
* Offline: weight normalization + decay trained to convergence against the ridge solution
  solved with numpy on the very same training set.
* Exact test error against Monte Carlo.
"""

import math
import subprocess
import sys

import numba
import numpy as np
import pytest
from scipy import stats

from perceptron_theory.simulate import _cache, data, kernels, max_lr, offline, online
from perceptron_theory.simulate._rng import fill_normal, seed_state

CFG = {name: online.method_config(name, "relu", "relu", 8, 0.1 if name == "wn-decay" else 0.0,
                                  4 if name == "ghost-bn" else None, False)
       for name in online.METHODS if name not in ("sgd", "wn")}


# ------------------------------------------------------------------------------- RNG
def test_normal_generator_distribution():
    out = np.empty(400_000)
    fill_normal(seed_state(7, 3), out, 1.0)
    n = out.size
    assert abs(out.mean()) < 4 / math.sqrt(n)
    assert abs(out.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs(stats.kurtosis(out)) < 4 * math.sqrt(24 / n)
    assert stats.kstest(out, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(out) > 3.6)  # the ziggurat's tail branch (r = 3.44)
    p = 2 * stats.norm.sf(3.6)
    assert abs(tail - p) < 5 * math.sqrt(p / n)


def test_generator_deterministic_and_streams_differ():
    a, b, c = np.empty(100), np.empty(100), np.empty(100)
    fill_normal(seed_state(1, 0), a, 1.0)
    fill_normal(seed_state(1, 0), b, 1.0)
    fill_normal(seed_state(1, 1), c, 1.0)
    assert np.array_equal(a, b)
    assert abs(np.corrcoef(a, c)[0, 1]) < 0.4


@pytest.mark.parametrize("k", [1, 3, 50])
def test_chi2_moments(k):
    s = seed_state(3, k)
    v = np.array([kernels.chi2(s, k) for _ in range(40_000)])
    assert abs(v.mean() - k) < 4 * math.sqrt(2 * k / v.size)
    assert abs(v.var() - 2 * k) < 0.1 * 2 * k


def test_gram_quadratic_against_explicit_vectors():
    """|sum_m d_m r_m|^2 for r_m ~ N(0, I_dof/N): Bartlett sampler vs explicit Gaussian vectors."""
    rng = np.random.default_rng(0)
    d = np.array([0.5, -1.0, 2.0])
    N, dof, n = 40, 38, 20_000
    s = seed_state(5, 0)
    z = np.empty(6)
    fast = np.array([kernels.gram_quadratic(d, s, dof, 1 / N, z) for _ in range(n)])
    r = rng.standard_normal((n, 3, dof)) / math.sqrt(N)
    slow = np.sum(np.einsum("m,nmi->ni", d, r) ** 2, axis=1)
    mean = d @ d * dof / N  # exact
    assert abs(fast.mean() - mean) < 4 * fast.std() / math.sqrt(n)
    assert abs(slow.mean() - mean) < 4 * slow.std() / math.sqrt(n)
    assert stats.ks_2samp(fast, slow).pvalue > 1e-3


# --------------------------------------------------------- kernels vs finite differences
def _batch_loss(method, w, gamma, beta, X, y, zeta, ghost):
    """sum_m 1/2 (y_m - relu(s_m))^2 + M zeta/2 gamma^2, statistics written out in numpy."""
    spec = online.METHODS[method]
    h = X @ w
    N = w.size
    s = np.empty_like(h)
    for lo in range(0, h.size, ghost):
        hh = h[lo:lo + ghost]
        mu_b, var_b = hh.mean(), hh.var()
        mu = mu_b if spec.center_batch else 0.0
        sig = math.sqrt(var_b + kernels.BN_EPS) if spec.scale_batch else np.linalg.norm(w) / \
            math.sqrt(N)
        s[lo:lo + ghost] = gamma * (hh - mu) / sig + beta
    return 0.5 * np.sum((y - np.maximum(s, 0)) ** 2) + h.size * zeta / 2 * gamma**2


@pytest.mark.parametrize("method", sorted(CFG))
def test_update_is_the_gradient_of_the_batch_loss(method):
    rng = np.random.default_rng(1)
    N, M = 12, 8
    cfg = CFG[method]
    zeta = 0.1 if method == "wn-decay" else 0.0
    ghost = int(cfg[5])
    X = rng.standard_normal((M, N)) / math.sqrt(N)
    w, w_star = rng.standard_normal(N), rng.standard_normal(N)
    y = np.maximum(X @ w_star, 0) + 0.1 * rng.standard_normal(M)
    gamma, beta = 0.8, 0.3
    lr = 1e-3
    prm = np.array([lr, zeta, 0.0, 1.0])
    sc = np.array([gamma, beta, w @ w / N, w @ w_star / N, 0.0, 1.0])
    w_new = w.copy()
    kernels.vector_update(cfg, prm, w_new, w_star, X, X @ w, y, np.empty(M), np.zeros(2), sc)
    f = lambda ww, g, b: _batch_loss(method, ww, g, b, X, y, zeta, ghost)  # noqa: E731
    eps = 1e-6
    grad = np.array([(f(w + eps * e, gamma, beta) - f(w - eps * e, gamma, beta)) / (2 * eps)
                     for e in np.eye(N)])
    np.testing.assert_allclose((w - w_new) / lr, grad, rtol=1e-5, atol=1e-7)
    g_gamma = (f(w, gamma + eps, beta) - f(w, gamma - eps, beta)) / (2 * eps)
    assert (gamma - sc[0]) * N / lr == pytest.approx(g_gamma, rel=1e-5, abs=1e-8)
    if online.METHODS[method].learn_beta:
        g_beta = (f(w, gamma, beta + eps) - f(w, gamma, beta - eps)) / (2 * eps)
        assert (beta - sc[1]) * N / lr == pytest.approx(g_beta, rel=1e-5, abs=1e-8)
    else:
        assert sc[1] == beta
    assert sc[2] == pytest.approx(w_new @ w_new / N)
    assert sc[3] == pytest.approx(w_new @ w_star / N)


def test_plain_update_is_the_gradient():
    rng = np.random.default_rng(2)
    N, M = 10, 3
    X = rng.standard_normal((M, N)) / math.sqrt(N)
    w, w_star = rng.standard_normal(N), rng.standard_normal(N)
    y = np.tanh(X @ w_star)
    cfg = online.method_config("sgd", "erf", "linear", M, 0.0, None, False)
    lr = 1e-2
    w_new = w.copy()
    kernels.vector_update(cfg, np.array([lr, 0, 0, 1.0]), w_new, w_star, X, X @ w, y,
                          np.empty(M), np.zeros(2), np.zeros(6))
    from scipy.special import erf
    f = lambda ww: 0.5 * np.sum((y - erf(X @ ww / math.sqrt(2))) ** 2)  # noqa: E731
    grad = np.array([(f(w + 1e-6 * e) - f(w - 1e-6 * e)) / 2e-6 for e in np.eye(N)])
    np.testing.assert_allclose((w - w_new) / lr, grad, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ engines and runners
@pytest.mark.parametrize("method,M,act", [("wn-decay", 1, "relu"), ("bn", 8, "linear"),
                                          ("sgd", 1, "relu"), ("ghost-bn", 8, "relu")])
def test_reduced_engine_has_the_law_of_the_vector_engine(method, M, act):
    kw = dict(N=150, lr=0.6, t_max=3.0, times=[1.0, 3.0], batch_size=M, R_init=0.3,
              gamma_init=0.6, L_init=1.2, noise=0.1,
              zeta=0.2 if method == "wn-decay" else 0.0,
              ghost_size=4 if method == "ghost-bn" else None)
    vec = online.run(method, act, seeds=48, engine="vector", **kw)
    red = online.run(method, act, seeds=400, seed=1000, engine="reduced", **kw)
    for field in ("R", "L", "gamma", "eps"):
        mv, sv = vec.mean(field)
        mr, sr = red.mean(field)
        assert np.all(np.abs(mv - mr) <= 4.5 * np.hypot(sv, sr) + 1e-12), (field, mv, mr, sv, sr)


def test_deterministic_and_thread_independent():
    kw = dict(N=64, lr=0.5, zeta=0.1, t_max=2.0, n_points=3, seeds=4, batch_size=4)
    a = online.run("bn", "relu", **kw)
    b = online.run("bn", "relu", **kw)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        c = online.run("bn", "relu", **kw)
    finally:
        numba.set_num_threads(old)
    for f in ("R", "L", "gamma", "beta", "eps"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
        assert np.array_equal(getattr(a, f), getattr(c, f))
    d = online.run("bn", "relu", **{**kw, "seeds": [0, 1, 2, 3]})
    assert np.array_equal(a.R, d.R)


def test_divergence_is_reported_not_nan_silently():
    r = online.run("sgd", "linear", N=200, lr=3.0, t_max=20.0, n_points=5, seeds=3, R_init=0.5)
    assert r.diverged.all()
    assert np.all(np.isfinite(r.t_diverged)) and np.all(r.t_diverged <= 20.0)
    assert np.isnan(r.R[:, -1]).all()
    ok = online.run("sgd", "linear", N=200, lr=0.5, t_max=20.0, n_points=5, seeds=3)
    assert not ok.diverged.any() and np.isfinite(ok.R).all() and np.isnan(ok.t_diverged).all()


def test_online_reaches_the_teacher_and_records_times():
    r = online.run("wn", "linear", N=300, lr=0.5, t_max=30.0, times=[0, 10, 30], seeds=2,
                   R_init=0.1)
    np.testing.assert_allclose(r.t, [0, 10, 30], atol=1 / 300)
    assert np.all(r.R[:, 0] == pytest.approx(0.1, abs=1e-12))
    assert np.all(r.R[:, -1] > 0.95)


def test_freeze_L_holds_the_length():
    r = online.run("wn", "relu", N=100, lr=1.0, t_max=5.0, n_points=4, L_init=0.7, seeds=2,
                   freeze_L=True)
    np.testing.assert_allclose(r.L, 0.7, rtol=1e-12)


# ------------------------------------------------------------------------------ offline
def test_offline_wn_decay_converges_to_the_ridge_solution_on_the_same_data():
    N, alpha, zeta_ps, S, seed = 60, 2.0, 0.1, 0.25, 3
    r = offline.run("wn-decay", "linear", N=N, alpha=alpha, epochs=400, lr=0.3, lr_final=1e-3,
                    zeta=zeta_ps, noise=S, seeds=[seed], n_points=1, L_init=0.5,
                    gamma_init=0.5)
    X, y, w_star = data.training_set(N, int(alpha * N), noise=S, seed=seed)
    zeta_sum = alpha * zeta_ps
    w = np.linalg.solve(X.T @ X + zeta_sum * np.eye(N), X.T @ y)
    eps_ridge = np.sum((w - w_star) ** 2) / N
    assert r.eps[0, -1] == pytest.approx(eps_ridge, rel=0.02)
    assert r.gamma[0, -1] == pytest.approx(np.linalg.norm(w) / math.sqrt(N), rel=0.01)
    loss = 0.5 * np.mean((y - X @ w) ** 2)
    assert r.train_loss[0, -1] == pytest.approx(loss, rel=0.02)


def test_training_set_matches_the_kernel_draw():
    X, y, w_star = data.training_set(50, 20, noise=0.0, seed=4)
    np.testing.assert_allclose(y, X @ w_star, rtol=1e-12)
    assert w_star @ w_star == pytest.approx(50)
    assert np.array_equal(w_star, data.teacher(50, 4))


def test_offline_bn_trains():
    r = offline.run("bn", "linear", N=128, alpha=0.5, epochs=60, lr=0.3, lr_final=0.01,
                    batch_size=16, noise=0.25, seeds=4, L_init=0.05, gamma_init=0.5)
    assert not r.diverged.any()
    assert np.all(r.train_loss[:, -1] < 0.3 * r.train_loss[:, 0])
    assert np.all(r.eps[:, -1] < r.eps[:, 0]) and np.all(np.isfinite(r.eps))


# ----------------------------------------------------------------------- test error
@pytest.mark.parametrize("student,teacher", [("linear", "linear"), ("relu", "linear"),
                                             ("erf", "relu"), ("relu", "erf")])
def test_exact_test_error_against_monte_carlo(student, teacher):
    rng = np.random.default_rng(0)
    q2, c, a, b = 1.3, 0.6, 0.9, 0.2
    n = 1_000_000
    t = rng.standard_normal(n)
    h = c * t + math.sqrt(q2 - c * c) * rng.standard_normal(n)
    from scipy.special import erf
    g = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0),
         "erf": lambda x: erf(x / math.sqrt(2))}
    v = (g[teacher](t) - g[student](a * h + b)) ** 2
    pred = float(online.exact_test_error(student, teacher, q2, c, a, b))
    assert abs(pred - v.mean()) < 4 * v.std() / math.sqrt(n)


# --------------------------------------------------------------------------- max lr
def test_empirical_max_lr_sgd_linear_is_two():
    """Plain SGD, linear student: the exact limit is lr = 2 for every N (the order
    parameters' drift is linear in the error); the R-criterion does not move it much."""
    r = max_lr.empirical_max_lr("sgd", "linear", N=400, t_max=20.0, seeds=3, tol=0.05)
    assert 1.85 < r.lr_max < 2.1
    assert r.lr_fail / r.lr_pass <= 1.01 + 1e-12


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs,word", [
    (dict(N=2), "N"), (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"),
    (dict(method="bogus"), "method"), (dict(method="bn", batch_size=1), "batch_size"),
    (dict(method="wn", zeta=0.1), "zeta"), (dict(method="wn-decay", zeta=-0.1), "zeta"),
    (dict(method="ghost-bn", batch_size=8, ghost_size=3), "ghost_size"),
    (dict(activation="tanh"), "activation"), (dict(engine="gpu"), "engine"),
    (dict(t_max=-1.0), "t_max"), (dict(noise=-0.1), "noise"), (dict(seeds=0), "seeds"),
])
def test_bad_input_raises_before_any_work(monkeypatch, kwargs, word):
    monkeypatch.setattr(online, "_run", lambda *a: pytest.fail("kernel was called"))
    base = dict(method="wn", activation="relu", N=10, lr=0.1, t_max=1.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=word):
        online.run(base.pop("method"), base.pop("activation"), **base)


def test_offline_bad_input(monkeypatch):
    monkeypatch.setattr(offline, "_run", lambda *a: pytest.fail("kernel was called"))
    with pytest.raises(ValueError, match="batch_size"):
        offline.run("bn", "linear", N=10, alpha=1.0, epochs=1, lr=0.1, batch_size=11)
    with pytest.raises(ValueError, match="alpha"):
        offline.run("bn", "linear", N=10, alpha=0.0, epochs=1, lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="in-memory"):
        offline.run("sgd", "linear", N=20_000, alpha=1e3, epochs=1, lr=0.1)


# --------------------------------------------------------------------------- caching
def test_second_process_uses_the_numba_cache():
    code = ("from perceptron_theory.simulate import online\n"
            "online.run('bn', 'relu', N=20, lr=0.1, t_max=0.5, batch_size=4)\n"
            "s = online._run.stats\n"
            "print(len(s.cache_hits), len(s.cache_misses))\n")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    hits, misses = map(int, outs[1])
    assert hits >= 1 and misses == 0, outs


def test_package_stamp_sees_every_module(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    monkeypatch.setattr(_cache, "_PACKAGE_DIR", tmp_path)
    s0 = _cache.package_stamp()
    (tmp_path / "b.py").write_text("y = 22\n")
    assert _cache.package_stamp() != s0
