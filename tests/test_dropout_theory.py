"""theory.dropout: dropout before a linear last layer against mask enumeration and Monte
Carlo (seeded; tolerances 4 standard errors), the declared rates in p, the FL2/EL2
relations, and the D-eq5 check at quick size."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.special import logsumexp

from perceptron_theory.theory import dropout as dp

N_MC = 40_000          # masks per sample in the Monte Carlo tests
N_SIGMA = 4.0


def _masks(H: int, p: float):
    m = np.array(list(itertools.product((0.0, 1.0), repeat=H)))
    return m, np.prod(np.where(m == 1.0, 1.0 - p, p), axis=1)


def _ce(z, labels):
    return logsumexp(z, axis=-1) - np.take_along_axis(z, labels[..., None], -1)[..., 0]


def _instance(seed, K=4, H=6, N=3, scale=1.5):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((K, H)) / np.sqrt(H)
    h = np.abs(rng.standard_normal((N, H)))
    b = 0.3 * rng.standard_normal(K)
    return W, h, b, rng


@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_squared_loss_equals_mask_enumeration(inverted, p):
    W, h, b, rng = _instance(1)
    y = rng.standard_normal((h.shape[0], W.shape[0]))
    masks, prob = _masks(h.shape[1], p)
    d = masks[:, None, :] * h[None] / ((1.0 - p) if inverted else 1.0)
    loss = np.sum((y - d @ W.T - b) ** 2, axis=2).mean(1)
    res = dp.squared_loss_dropout(W, h, y, p, b=b, inverted=inverted)
    assert res.expected == pytest.approx(float(prob @ loss), rel=1e-12)
    assert res.penalty == pytest.approx(dp.dropout_strength(p, inverted=inverted)
                                        * dp.dropout_regularizer(W, h), rel=1e-14)


def test_squared_loss_monte_carlo():
    W, h, b, rng = _instance(2, K=3, H=40, N=4)
    y = rng.standard_normal((4, 3))
    p = 0.3
    keep = rng.random((N_MC,) + h.shape) >= p
    v = np.sum((y - (keep * h / (1 - p)) @ W.T - b) ** 2, axis=2).mean(1)
    se = v.std(ddof=1) / np.sqrt(N_MC)
    assert abs(dp.squared_loss_dropout(W, h, y, p, b=b).expected - v.mean()) < N_SIGMA * se


def _exact_ce(W, h, labels, b, p):
    masks, prob = _masks(h.shape[1], p)
    z = np.einsum("mj,nj,kj->mnk", masks, h, W) / (1 - p) + b
    loss = _ce(z, np.broadcast_to(labels, (len(masks), len(labels))))
    return float(np.mean(prob @ loss) - np.mean(_ce(h @ W.T + b, labels)))


def test_cross_entropy_rates_in_p():
    """Quadratic: error / p -> c3 (rate 1); Bregman: error / p^2 bounded (rate 2)."""
    W, h, b, rng = _instance(3)
    labels = rng.integers(0, W.shape[0], h.shape[0])
    ps = np.array([0.02, 0.01, 0.005, 0.0025])
    eq, eb = [], []
    for p in ps:
        ex = _exact_ce(W, h, labels, b, p)
        eq.append(ex - dp.cross_entropy_dropout(W, h, labels, p, b=b).penalty)
        eb.append(ex - dp.cross_entropy_dropout(W, h, labels, p, b=b,
                                                approximation="bregman").penalty)
    slope_q = np.polyfit(np.log(ps), np.log(np.abs(eq)), 1)[0]
    slope_b = np.polyfit(np.log(ps), np.log(np.abs(eb)), 1)[0]
    assert slope_q == pytest.approx(1.0, abs=0.1)
    assert slope_b == pytest.approx(2.0, abs=0.1)
    c3 = dp.quadratic_error_coefficient(W, h, b=b)
    assert 2 * eq[-1] / ps[-1] - eq[-2] / ps[-2] == pytest.approx(c3, rel=1e-2)


def test_cross_entropy_quadratic_low_confidence_monte_carlo():
    """Small logits: the quadratic penalty is the mask expectation within 4 SE."""
    W, h, b, rng = _instance(4, K=5, H=30, N=4, scale=0.3)
    labels = rng.integers(0, 5, 4)
    p = 0.25
    z0 = h @ W.T + b
    keep = rng.random((N_MC,) + h.shape) >= p
    z = (keep * h / (1 - p)) @ W.T + b
    g = np.exp(z0 - logsumexp(z0, axis=1, keepdims=True))
    g[np.arange(4), labels] -= 1.0                      # control variate, mean 0 exactly
    v = np.mean(_ce(z, np.broadcast_to(labels, (N_MC, 4))) - _ce(z0, labels)
                - np.sum(g * (z - z0), axis=2), axis=1)
    se = v.std(ddof=1) / np.sqrt(N_MC)
    q = dp.cross_entropy_dropout(W, h, labels, p, b=b).penalty
    assert abs(q - v.mean()) < N_SIGMA * se + 0.005 * q  # 0.5%: third-order term, O(scale)


def test_quadratic_at_uniform_softmax_is_column_centred_r_dropout():
    rng = np.random.default_rng(5)
    K, H = 4, 7
    h = np.abs(rng.standard_normal(H))
    W = rng.standard_normal((K, H))
    W -= np.outer(W @ h, h) / (h @ h)                  # W h = 0, b = 0: softmax uniform
    p = 0.3
    got = dp.cross_entropy_dropout(W, h, [1], p).penalty
    want = dp.dropout_strength(p) / (2 * K) * dp.dropout_regularizer(W - W.mean(0), h)
    assert got == pytest.approx(want, rel=1e-12)


def test_penalty_is_label_independent_and_bregman_matches_quadratic_for_small_v():
    W, h, b, _ = _instance(6, scale=1e-3)
    a = dp.cross_entropy_dropout(W, h, [0, 1, 2], 0.1, b=b)
    c = dp.cross_entropy_dropout(W, h, [3, 3, 3], 0.1, b=b)
    assert a.penalty == c.penalty
    br = dp.cross_entropy_dropout(W, h, [0, 1, 2], 0.1, b=b, approximation="bregman")
    assert br.penalty == pytest.approx(a.penalty, rel=1e-2)


def test_penalty_relations():
    rng = np.random.default_rng(7)
    W = rng.standard_normal((5, 9))
    h = np.maximum(rng.standard_normal((30, 9)) + 0.4, 0)
    r = dp.penalty_relations(W, h)
    assert r.k_r_fl2 == pytest.approx(np.mean(np.sum((h @ W.T) ** 2, 1)), rel=1e-12)
    assert r.k_r_fl2 == pytest.approx(r.r_dropout + r.offdiagonal, rel=1e-12)
    assert r.h_r_el2 == pytest.approx(np.mean(np.sum(h * h, 1)), rel=1e-12)
    assert r.min_column_norm2 * r.h_r_el2 <= r.r_dropout <= r.max_column_norm2 * r.h_r_el2
    assert r.r_dropout <= r.weight_norm2 * r.h_r_el2 <= r.corrected_bound
    cs = np.geomspace(1e-2, 1e2, 200_001)
    rhs = 0.25 * (r.weight_norm2 / cs**2) ** 2 + 0.25 * r.h_r_el2 * cs**2
    assert r.paper_bound_rescaled == pytest.approx(rhs.min(), rel=1e-6)
    # rescaling (W/c, c h) leaves R_Dropout unchanged
    r2 = dp.penalty_relations(W / 3.0, 3.0 * h)
    assert r2.r_dropout == pytest.approx(r.r_dropout, rel=1e-12)
    # the paper's bound fails on the smallest example
    one = dp.penalty_relations([[1.0]], [[1.0]])
    assert not one.paper_bound_holds and one.corrected_bound >= one.r_dropout
    json.dumps(r.to_dict())


@pytest.mark.parametrize("kwargs, match", [
    (dict(W=np.ones(3), h=np.ones((2, 3))), "W must have shape"),
    (dict(W=np.ones((2, 3)), h=np.ones((2, 4))), "h must have shape"),
    (dict(W=np.ones((2, 3)), h=np.ones((2, 3)), b=np.ones(3)), "b must have shape"),
])
def test_bad_shapes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dp.cross_entropy_dropout(labels=[0, 1], p=0.1, **kwargs)


def test_bad_arguments():
    W, h = np.ones((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match="p must be in"):
        dp.dropout_strength(1.0)
    with pytest.raises(ValueError, match="labels must be"):
        dp.cross_entropy_dropout(W, h, [0, 2], 0.1)
    with pytest.raises(ValueError, match="approximation must be one of"):
        dp.cross_entropy_dropout(W, h, [0, 1], 0.1, approximation="cubic")
    with pytest.raises(ValueError, match="y must have shape"):
        dp.squared_loss_dropout(W, h, np.ones((2, 3)), 0.1)


# ------------------------------------------------------------------ the D-eq5 check
@pytest.fixture(scope="module")
def result():
    from validation import d_eq5

    return d_eq5.check(quick=True, seed=0)


def test_check_passes_at_quick_size(result):
    from perceptron_theory.plotting import Plot
    from validation import REGISTRY, d_eq5

    assert REGISTRY["D-eq5"].func is d_eq5.check
    bad = [c for c in result.comparisons if not c.ok]
    assert not bad, "\n".join(f"{c.quantity}: {c.predicted} vs {c.measured} (tol "
                              f"{c.tolerance})" for c in bad)
    assert len(result.comparisons) >= 20 and "PAPER ERROR" in result.summary
    assert result.plots and all(isinstance(p, Plot) for p in result.plots)
    json.dumps(result.to_dict(), allow_nan=False)


def test_check_fails_with_the_plain_dropout_constant(monkeypatch):
    """lambda = p instead of p/(1-p) must fail the squared-loss Monte Carlo records."""
    from validation import d_eq5

    monkeypatch.setattr(dp, "dropout_strength", lambda p, inverted=True: p)
    failing = [c.quantity for c in d_eq5.check(quick=True, seed=0).comparisons if not c.ok]
    assert any("MSE: E_mask loss, inverted dropout, p=0.5" in q for q in failing)
