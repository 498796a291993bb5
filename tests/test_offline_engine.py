"""The offline runner's kernels (:mod:`perceptron_theory.simulate._offline_kernels`).

* Kernels against numpy on the same rows (float64 and float32 storage, batch sizes that
  leave remainders of the 8-row and 4-row blocks).
* The runner against the literal runner it replaced (``offline._reference``, kept for
  this): same seeds, every update rule, agreement to 1e-12 relative (only the summation
  order of the dot products differs).
* float32 storage against float64 on the same draws: the difference per seed is 1e-7
  of the seed-to-seed spread of the quantities a validation reads.
* Results independent of the thread count, for both storage types.
"""

import math

import numba
import numpy as np
import pytest

from perceptron_theory.simulate import _offline_kernels as FK
from perceptron_theory.simulate import data, offline


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M", [1, 6, 8, 13, 32])
def test_forward_and_update_match_numpy(dtype, M):
    rng = np.random.default_rng(M)
    P, N = 50, 37
    X = rng.standard_normal((P, N)).astype(dtype)
    rows = rng.permutation(P)[:M]
    w, w_star = rng.standard_normal(N), rng.standard_normal(N)
    Xr = X[rows].astype(np.float64)
    h = np.empty(M)
    FK.forward(X, rows, w, h)
    np.testing.assert_allclose(h, Xr @ w, rtol=1e-13, atol=1e-13)
    coef = rng.standard_normal(M)
    w_new = w.copy()
    w2, ww = FK.update(X, rows, coef, 0.9, w_new, w_star)
    expect = 0.9 * w + coef @ Xr
    np.testing.assert_allclose(w_new, expect, rtol=1e-13, atol=1e-13)
    assert w2 == pytest.approx(expect @ expect, rel=1e-13)
    assert ww == pytest.approx(expect @ w_star, rel=1e-13)
    assert FK.stream_sum(X) == pytest.approx(X.astype(np.float64).sum(), rel=1e-12)


def _reference(monkeypatch, *args, **kw):
    with monkeypatch.context() as m:
        m.setattr(offline, "_run", offline._reference)
        return offline.run(*args, **kw)


CASES = [("bn", "linear", 8, {}), ("bn", "relu", 13, {}), ("wn-decay", "relu", 6, {"zeta": 0.1}),
         ("ghost-bn", "erf", 12, {"ghost_size": 4}), ("sgd", "linear", 1, {}),
         ("pn", "relu", 5, {}), ("bn-var", "linear", 9, {})]


@pytest.mark.parametrize("method,act,M,extra", CASES)
def test_runner_agrees_with_the_replaced_one(monkeypatch, method, act, M, extra):
    """Same seeds, same draws, same update: only the order of the O(N) sums differs."""
    kw = dict(N=48, alpha=1.5, epochs=12, lr=0.2, lr_final=0.02, batch_size=M, noise=0.25,
              seeds=[3, 11], n_points=3, L_init=0.5, gamma_init=0.7, **extra)
    new = offline.run(method, act, **kw)
    ref = _reference(monkeypatch, method, act, **kw)
    assert not ref.diverged.any() and np.all(np.isfinite(ref.eps))
    for f in ("gamma", "beta", "R", "L", "Q", "eps", "train_loss"):
        np.testing.assert_allclose(getattr(new, f), getattr(ref, f), rtol=1e-12, atol=1e-14,
                                   err_msg=f)


def test_float32_storage_is_the_float64_draw_rounded():
    N, P = 40, 30
    X64, y, _ = data.training_set(N, P, noise=0.25, seed=5)
    Xc, yc = np.empty((P, N), np.float32), np.empty(P)
    w_star = data.teacher(N, 5)
    from perceptron_theory.simulate._rng import seed_state
    FK.fill_training_set_cast(seed_state(5, 1), Xc, w_star, 0, math.sqrt(0.25), yc, np.empty(N))
    assert np.array_equal(Xc, X64.astype(np.float32))
    assert np.array_equal(yc, y)  # labels from the float64 inputs
    X64c = np.empty((P, N))
    FK.fill_training_set_cast(seed_state(5, 1), X64c, w_star, 0, math.sqrt(0.25), yc,
                              np.empty(N))
    assert np.array_equal(X64c, X64)


def test_float32_within_the_seed_to_seed_error_of_float64():
    """BN on the same 12 draws stored in float64 and in float32: the per-seed difference of
    every read-out is below 1e-5 of the seed-to-seed standard deviation (measured 2e-8 to
    1.4e-7), so float32 storage moves no mean by more than a negligible fraction of its SE."""
    kw = dict(N=256, alpha=1.5, epochs=40, lr=0.3, lr_final=0.01, batch_size=16, noise=0.25,
              seeds=12, n_points=2, L_init=0.05, gamma_init=0.5)
    a = offline.run("bn", "linear", **kw)
    b = offline.run("bn", "linear", dtype="float32", **kw)
    assert not (a.diverged.any() or b.diverged.any())
    for f in ("eps", "R", "gamma", "train_loss"):
        va, vb = getattr(a, f)[:, -1], getattr(b, f)[:, -1]
        spread = va.std(ddof=1)
        assert np.max(np.abs(va - vb)) < 1e-5 * spread, (f, np.max(np.abs(va - vb)), spread)
        assert abs(va.mean() - vb.mean()) < 1e-5 * spread / math.sqrt(va.size)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_offline_thread_independent(dtype):
    kw = dict(N=40, alpha=1.0, epochs=3, lr=0.2, batch_size=8, seeds=3, dtype=dtype)
    a = offline.run("bn", "relu", **kw)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = offline.run("bn", "relu", **kw)
    finally:
        numba.set_num_threads(old)
    for f in ("R", "L", "gamma", "eps", "train_loss"):
        assert np.array_equal(getattr(a, f), getattr(b, f))


def test_offline_dtype_is_checked(monkeypatch):
    monkeypatch.setattr(offline, "_run", lambda *a: pytest.fail("kernel was called"))
    with pytest.raises(ValueError, match="dtype"):
        offline.run("bn", "linear", N=10, alpha=1.0, epochs=1, lr=0.1, batch_size=2,
                    dtype="float16")
    with pytest.raises(ValueError, match="in-memory"):  # twice the elements at float32
        offline.run("sgd", "linear", N=20_000, alpha=21, epochs=1, lr=0.1, dtype="float32")
