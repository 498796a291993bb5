"""Exact finite-N solvers (perceptron_theory.simulate.finite_n) and the offline BN runs.

Each solver is checked against an independent computation: normal equations for ridge,
a generic constrained optimizer (SLSQP) for the min-norm ReLU interpolator, random
perturbations for the local minima of the ReLU energy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from perceptron_theory.simulate import finite_n, offline


def _data(N=30, alpha=0.5, S=0.25, seed=0):
    return finite_n.teacher_data(N, alpha, S, np.random.default_rng(seed))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_ridge_fit_solves_the_normal_equations(alpha):
    X, y, _ = _data(alpha=alpha)
    N = X.shape[1]
    w = finite_n.ridge_fit(X, y, 0.3)
    np.testing.assert_allclose(X.T @ (X @ w - y) + 0.3 * w, 0.0, atol=1e-10)
    np.testing.assert_allclose(finite_n.ridge_fit(X, y, 0.0),
                               np.linalg.pinv(X) @ y, atol=1e-9)
    assert w.shape == (N,)


def test_centred_least_squares_has_an_intercept():
    for alpha in (0.5, 2.0):
        X, y, _ = _data(alpha=alpha)
        v, proj = finite_n.centred_least_squares(X, y)
        xb = X.mean(axis=0)
        np.testing.assert_allclose(v, np.linalg.lstsq(X - xb, y - y.mean(), rcond=None)[0],
                                   atol=1e-8)
        u = np.random.default_rng(1).standard_normal(X.shape[1])
        np.testing.assert_allclose(proj(proj(u)), proj(u), atol=1e-9)  # a projector


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_min_norm_interpolator_against_slsqp(seed):
    """The least-distance (NNLS) solution is the min-norm point of the polyhedron
    {w.x = y (y > 0), w.x <= 0 (y <= 0)}: SLSQP on the same convex QP finds it too."""
    X, y, _ = _data(N=20, alpha=0.6, S=0.25, seed=seed)
    w = finite_n.relu_min_norm_interpolator(X, y)
    assert w is not None
    pos = y > 0
    cons = [{"type": "eq", "fun": lambda v: X[pos] @ v - y[pos], "jac": lambda v: X[pos]},
            {"type": "ineq", "fun": lambda v: -(X[~pos] @ v), "jac": lambda v: -X[~pos]}]
    ref = minimize(lambda v: 0.5 * v @ v, np.zeros(X.shape[1]), jac=lambda v: v,
                   constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert ref.success
    np.testing.assert_allclose(w, ref.x, atol=1e-6)
    np.testing.assert_allclose(X[pos] @ w, y[pos], atol=1e-10)
    assert np.all(X[~pos] @ w <= 1e-8)


def test_relu_min_norm_interpolator_infeasible_is_none():
    X, y, _ = _data(N=10, alpha=3.0, S=0.25)   # ~15 positive labels in 10 dimensions
    assert finite_n.relu_min_norm_interpolator(X, y) is None


def test_active_set_relu_finds_a_local_minimum():
    X, y, _ = _data(N=40, alpha=1.5, S=0.25)
    rng = np.random.default_rng(3)
    w, kkt = finite_n.active_set_relu(X, y, 0.1, rng.standard_normal(40))
    assert kkt
    e0 = finite_n.relu_energy(X, y, w, 0.1)
    for _ in range(50):
        d = 1e-4 * rng.standard_normal(40)
        assert finite_n.relu_energy(X, y, w + d, 0.1) >= e0 - 1e-12
    best, info = finite_n.train_relu(X, y, 0.1, 4, rng)
    assert finite_n.relu_energy(X, y, best, 0.1) <= e0 + 1e-9 or info["kkt_fraction"] > 0
    v = rng.standard_normal(40)  # a generic point (the minimum sits on kinks w.x = 0)
    loss, grad = finite_n.relu_loss(v, X, y)
    h = 1e-6 * rng.standard_normal(40)
    assert finite_n.relu_loss(v + h, X, y)[0] - loss == pytest.approx(grad @ h, rel=1e-4)


def test_bn_with_wn_decay_shares_the_training_sets():
    r = offline.bn_with_wn_decay("linear", N=32, alpha=2.0, epochs=3, batch_size=8,
                                 noise=0.25, zeta=1 / 16, n_seeds=3, seed=1)
    assert r.P == 64 and r.epochs == 3 and list(r.seeds) == [1000, 1001, 1002]
    assert r.bn.method == "bn" and r.wn.method == "wn-decay" and r.wn.zeta == 1 / 16
    np.testing.assert_array_equal(r.bn.seeds, r.wn.seeds)
    np.testing.assert_array_equal(r.bn.R[:, 0], r.wn.R[:, 0])  # the same initial students
    grid = offline.bn_runs("linear", {2.0: (16, 32)}, epochs=lambda a: 2, n_seeds=2,
                           wn_max_N=16, batch_size=8, noise=0.25, zeta=1 / 16)
    assert set(grid) == {(2.0, 16), (2.0, 32)}
    assert grid[(2.0, 16)].wn is not None and grid[(2.0, 32)].wn is None
