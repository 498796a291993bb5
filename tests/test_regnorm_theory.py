"""theory.regnorm: RegNorm's batch-mean regularizer against brute force over pairs,
finite differences and scipy; the torch penalty (skipped without torch); the R-B check at
quick size."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.optimize import minimize

from perceptron_theory.theory import regnorm as rn


def _batch(seed, M=8, N=5, offset=1.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((M, N)) + offset * rng.standard_normal(N)


def _brute(x, pairs="independent"):
    M = x.shape[0]
    vals = [np.sum((x[a] + x[b]) ** 2 - 2) for a, b in itertools.product(range(M), repeat=2)
            if pairs == "independent" or a != b]
    return float(np.mean(vals))


@pytest.mark.parametrize("pairs", rn.PAIRS)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_regularizer_equals_brute_force(pairs, eps):
    zbar = rn.normalize(_batch(0), eps=eps)
    assert rn.regularizer(zbar, pairs=pairs) == pytest.approx(_brute(zbar, pairs), rel=1e-12)


def test_normalized_regularizer_is_twice_the_squared_batch_mean():
    z = _batch(1, M=6, N=4)
    zbar = rn.normalize(z)
    np.testing.assert_allclose(np.sum(zbar**2, axis=1), 4.0, rtol=1e-13)
    m = zbar.mean(0)
    assert rn.regularizer(zbar) == pytest.approx(2 * m @ m, rel=1e-12)
    M, N = zbar.shape
    assert rn.regularizer(zbar, pairs="distinct") == pytest.approx(
        (2 * M * m @ m - 2 * N) / (M - 1), rel=1e-12)
    # eps > 0: the extra term 2(sum q - N) = -2N E_a[eps/(rms_a^2 + eps)]
    eps = 0.3
    ze = rn.normalize(z, eps=eps)
    ms = np.mean(z * z, axis=1)
    me = ze.mean(0)
    assert rn.regularizer(ze) == pytest.approx(2 * me @ me - 2 * N * np.mean(eps / (ms + eps)),
                                               rel=1e-12)


def test_regularizer_from_moments():
    x = _batch(2)
    for pairs in rn.PAIRS:
        assert rn.regularizer_from_moments(x.mean(0), x.var(0), batch_size=x.shape[0],
                                           pairs=pairs) == pytest.approx(
            rn.regularizer(x, pairs=pairs), rel=1e-12)


def test_pair_term_is_symbolic():
    sp = pytest.importorskip("sympy")
    x = sp.symbols("x1:4", real=True)
    m, q = sum(x) / 3, sum(xi**2 for xi in x) / 3
    definition = sum((a + b) ** 2 - 2 for a in x for b in x) / 9
    assert sp.expand(definition - rn.pair_term(m, q, 3)) == 0


def test_minimizing_shift_is_minus_the_geometric_median():
    z = _batch(3)
    res = rn.minimizing_shift(z)
    assert res.value < 1e-20
    np.testing.assert_allclose(res.batch_mean, 0.0, atol=1e-10)
    # the geometric median by scipy, from the sum of distances
    med = minimize(lambda y: np.sum(np.linalg.norm(z - y, axis=1)), z.mean(0), method="BFGS",
                   options={"gtol": 1e-12}).x
    np.testing.assert_allclose(-res.shift, med, atol=1e-6)
    # and not minus the mean
    assert rn.regularizer(rn.normalize(z - z.mean(0))) > 1e-4
    json.dumps(res.to_dict())


def test_shift_jacobian_and_hessian_by_finite_differences():
    z = _batch(4, M=10, N=4)
    N = z.shape[1]
    res = rn.minimizing_shift(z)

    def mean_zbar(c):
        return rn.normalize(z + c).mean(0)

    def r(c):
        return rn.regularizer(rn.normalize(z + c))

    h = 1e-6
    c0 = res.shift + 0.1                    # the Jacobian anywhere, not only at the minimum
    J = np.column_stack([(mean_zbar(c0 + h * e) - mean_zbar(c0 - h * e)) / (2 * h)
                         for e in np.eye(N)])
    np.testing.assert_allclose(rn.shift_jacobian(z, c0), J, atol=1e-8)
    h = 1e-4
    E = np.eye(N) * h
    Hfd = np.array([[(r(res.shift + E[i] + E[j]) - r(res.shift + E[i] - E[j])
                      - r(res.shift - E[i] + E[j]) + r(res.shift - E[i] - E[j])) / (4 * h * h)
                     for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(res.hessian, Hfd, atol=1e-5)
    assert np.linalg.eigvalsh(res.hessian).min() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="M >= 2"):
        rn.regularizer(np.ones((1, 3)))
    with pytest.raises(ValueError, match="pairs must be one of"):
        rn.regularizer(np.ones((2, 3)), pairs="all")
    with pytest.raises(ValueError, match="RMS is 0"):
        rn.normalize(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coincides with a sample"):
        rn.minimizing_shift(np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="shift must have"):
        rn.shift_jacobian(np.ones((3, 2)), np.zeros(3))


def test_torch_penalty_matches_closed_form():
    torch = pytest.importorskip("torch")
    from perceptron_theory.deep.norms import RegNorm
    from perceptron_theory.deep.penalties import Record, regnorm_mean

    z = _batch(5, M=6, N=8)
    layer = RegNorm(2, dim=2)
    zt = torch.tensor(z.reshape(6, 2, 2, 2), dtype=torch.float64)
    layer = layer.double()
    with torch.no_grad():
        layer(zt)
        rec = Record(torch.zeros(6, 1), torch.zeros(6, 1), [zt], [layer], True)
        pen = float(regnorm_mean(torch.nn.Sequential(layer), rec))
    pred = rn.regularizer(rn.normalize(z, eps=layer.eps))
    assert pen == pytest.approx(pred, rel=1e-5)          # the penalty computes in float32
    assert float(layer.regularizer()) == pytest.approx(pred, rel=1e-10)


# ------------------------------------------------------------------ the R-B check
@pytest.fixture(scope="module")
def result():
    from validation import r_b

    return r_b.check(quick=True, seed=0)


def test_check_passes_at_quick_size(result):
    from perceptron_theory.plotting import Plot
    from validation import REGISTRY, r_b

    assert REGISTRY["R-B"].func is r_b.check
    bad = [c for c in result.comparisons if not c.ok]
    assert not bad, "\n".join(f"{c.quantity}: {c.predicted} vs {c.measured} (tol "
                              f"{c.tolerance})" for c in bad)
    assert len(result.comparisons) >= 20 and "PAPER ERROR" in result.summary
    assert result.plots and all(isinstance(p, Plot) for p in result.plots)
    json.dumps(result.to_dict(), allow_nan=False)


def test_check_without_torch_skips_cleanly(monkeypatch):
    import sys

    from validation import r_b

    monkeypatch.setitem(sys.modules, "torch", None)       # "import torch" raises ImportError
    assert r_b.torch_records(np.ones((2, 12)), np.zeros(12)) is None
    res = r_b.check(quick=True, seed=1)
    assert res.ok and "torch not installed" in res.summary
    assert not any(c.quantity.startswith("torch") for c in res.comparisons)


def test_check_fails_with_app_b_cross_term(monkeypatch):
    """App. B's E_ab[x^a x^b] = E_a[x^2] (pair term 4q - 2) must fail the check."""
    from validation import r_b

    orig = rn.pair_term

    def app_b(m, q, batch_size, pairs="independent"):
        return 4 * q - 2 if pairs == "independent" else orig(m, q, batch_size, pairs)

    monkeypatch.setattr(rn, "pair_term", app_b)
    failing = [c.quantity for c in r_b.check(quick=True, seed=0).comparisons if not c.ok]
    assert any("definition - closed form, independent" in q for q in failing)
    assert any("brute force over all pairs = closed form (independent)" in q for q in failing)
