r"""``theory.committee_integrals`` against independent computations.

* Monte Carlo -- every supported combination, ``MC_N = 2_000_000`` seeded samples per
  covariance, tolerance five standard errors from the same samples; random positive
  definite covariances *and* the repeated-field (singular) covariances of the ODE.
* ``theory.integrals`` -- the single-unit erf/ReLU closed forms (sympy-derived) are
  combinations of these integrals over the fields ``(s, t)``; reproduced to 1e-12.
* Closed forms / quadrature / limits / symmetries; bad input -> ValueError.
"""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest

from perceptron_theory.theory import committee_integrals as ci
from perceptron_theory.theory import integrals
from perceptron_theory.theory.committee_integrals import ACTIVATIONS, I2, I3, I4, J2

MC_N = 2_000_000


def _random_cov(rng, n: int, rank: int | None = None) -> np.ndarray:
    A = rng.normal(size=(n, rank or n + 2)) * rng.uniform(0.4, 1.4, size=(n, 1))
    return A @ A.T / A.shape[1]


def _embed(G: np.ndarray, idx) -> np.ndarray:
    """Covariance of the fields ``idx`` (repeats allowed) of a base covariance ``G``."""
    return G[np.ix_(idx, idx)]


# base covariances of 4 fields: random positive definite, and one with a null field
_rng = np.random.default_rng(19950801)
BASES = {"pd": _random_cov(_rng, 4), "pd2": _random_cov(_rng, 4),
         "null": np.pad(_random_cov(_rng, 3), ((0, 1), (0, 1)))}  # field 3: w = 0
# which base fields feed x1..xn; repeats = the ODE's singular covariances
PATTERNS = {
    2: [(0, 1), (0, 0), (1, 3)],
    3: [(0, 1, 2), (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (3, 1, 2), (0, 3, 1)],
    4: [(0, 1, 2, 3), (0, 0, 1, 2), (0, 1, 2, 2), (0, 0, 1, 1), (0, 1, 0, 1),
        (0, 1, 1, 0), (0, 0, 0, 1), (0, 1, 0, 0), (0, 0, 0, 0), (0, 1, 0, 2),
        (3, 0, 1, 2), (0, 1, 3, 2)],
}
_KINDS = {"I2": "gg", "J2": "dd", "I3": "dxg", "I4": "ddgg"}
_FUNCS = {"I2": I2, "J2": J2, "I3": I3, "I4": I4}


def _supported(name: str):
    """The activation tuples each function implements (others must raise ValueError)."""
    n_act = {"I2": 2, "J2": 2, "I3": 2, "I4": 4}[name]
    out = []
    for acts in itertools.product(ACTIVATIONS, repeat=n_act):
        C = np.eye(len(_KINDS[name]))
        try:
            _FUNCS[name](C, *acts)
        except ValueError:
            continue
        out.append(acts)
    return out


_VALUES: dict = {}


def _values(base: str):
    """Fields and activation values of ``MC_N`` seeded samples of a base (cached)."""
    if base not in _VALUES:
        z = np.random.default_rng(20240605).standard_normal((MC_N, 4))
        G = BASES[base]
        w, V = np.linalg.eigh(G)
        x = z @ (V * np.sqrt(np.maximum(w, 0.0))).T
        x[:, np.diag(G) == 0] = 0.0  # a null field is exactly zero
        vals = {"x": x}
        for a in ACTIVATIONS:
            g, dg = ci.activation_pair(a)
            vals[("g", a)], vals[("d", a)] = g(x), dg(x)
        _VALUES.clear()  # keep one base in memory
        _VALUES[base] = vals
    return _VALUES[base]


MC_CASES = [(name, base, pat) for base in BASES for name in ("I2", "J2", "I3", "I4")
            for pat in PATTERNS[len(_KINDS[name])]]


@pytest.mark.parametrize(("name", "base", "pattern"), MC_CASES)
def test_monte_carlo(name, base, pattern):
    """Every supported combination on every pattern: |exact - MC| < 5 standard errors."""
    vals = _values(base)
    C = _embed(BASES[base], pattern)
    kinds = _KINDS[name]
    worst = 0.0
    for acts in _supported(name):
        act_iter = iter(acts)
        prod = np.ones(MC_N)
        for kind, f in zip(kinds, pattern, strict=True):
            prod *= vals["x"][:, f] if kind == "x" else vals[(kind, next(act_iter))][:, f]
        mean = prod.mean()
        se = np.sqrt(max(prod @ prod / MC_N - mean**2, 0.0) / MC_N)
        exact = float(_FUNCS[name](C, *acts))
        assert np.isfinite(exact)
        assert abs(exact - mean) <= 5 * se + 1e-12, (acts, exact, mean, se)
        worst = max(worst, abs(exact - mean) / max(se, 1e-300))
    print(f"MC {name} {base} {pattern}: worst {worst:.2f} SE")


# ------------------------------------------------------------ theory.integrals (erf, relu)
def _single_unit(act: str, Q: float, R: float) -> dict:
    """I1, I2, I3, eps of ``theory.integrals`` from the committee integrals on (s, t)."""
    G = np.array([[Q * Q, Q * R], [Q * R, 1.0]])
    s, t = 0, 1

    def i3(a, b, c):
        return float(I3(_embed(G, (a, b, c)), act, act))

    def i4(a, b, c, d):
        return float(I4(_embed(G, (a, b, c, d)), act, act, act, act))

    def i2(a, b):
        return float(I2(_embed(G, (a, b)), act, act))

    return {"I1": i3(s, s, t) - i3(s, s, s),
            "I2": i4(s, s, t, t) - 2 * i4(s, s, t, s) + i4(s, s, s, s),
            "I3": i3(s, t, t) - i3(s, t, s),
            "eps": i2(t, t) - 2 * i2(s, t) + i2(s, s)}


SINGLE_UNIT_ACTS = ["erf", "linear", "relu"]


@pytest.mark.parametrize("act", SINGLE_UNIT_ACTS)
def test_single_unit_integrals(act):
    """Luo et al.'s I1, I2, I3 and eps (sympy-derived) to 1e-12, including R = +-1."""
    worst = 0.0
    for Q, R in [(0.3, 0.2), (1.0, 0.9), (2.5, -0.7), (1.3, 1.0), (0.7, -1.0), (1.0, 0.0)]:
        mine = _single_unit(act, Q, R)
        for q in integrals.QUANTITIES:
            ref = float(integrals.evaluate(q, act, Q, R))
            assert abs(mine[q] - ref) <= 1e-12 * max(1.0, abs(ref)), (act, q, Q, R)
            worst = max(worst, abs(mine[q] - ref))
    print(f"{act}: worst |committee - integrals| = {worst:.2e}")


def _saad_solla_I4(C):
    """Saad & Solla (1995) eq. (A3) written out with Lambda_0..Lambda_4."""
    c = lambda i, j: C[..., i - 1, j - 1]  # noqa: E731
    L4 = (1 + c(1, 1)) * (1 + c(2, 2)) - c(1, 2) ** 2
    L0 = (L4 * c(3, 4) - c(2, 3) * c(2, 4) * (1 + c(1, 1)) - c(1, 3) * c(1, 4) * (1 + c(2, 2))
          + c(1, 2) * c(1, 3) * c(2, 4) + c(1, 2) * c(1, 4) * c(2, 3))
    L1 = (L4 * (1 + c(3, 3)) - c(2, 3) ** 2 * (1 + c(1, 1)) - c(1, 3) ** 2 * (1 + c(2, 2))
          + 2 * c(1, 2) * c(1, 3) * c(2, 3))
    L2 = (L4 * (1 + c(4, 4)) - c(2, 4) ** 2 * (1 + c(1, 1)) - c(1, 4) ** 2 * (1 + c(2, 2))
          + 2 * c(1, 2) * c(1, 4) * c(2, 4))
    return 4 / np.pi**2 / np.sqrt(L4) * np.arcsin(np.clip(L0 / np.sqrt(L1 * L2), -1, 1))


def test_erf_closed_forms():
    """I3, I4, J2 (erf) equal Saad & Solla's Lambda forms on a random stack (1e-12)."""
    rng = np.random.default_rng(7)
    C4 = np.stack([_random_cov(rng, 4) for _ in range(200)]
                  + [_embed(_random_cov(rng, 4), p) for p in PATTERNS[4]])
    assert np.allclose(I4(C4, "erf", "erf", "erf", "erf"), _saad_solla_I4(C4),
                       rtol=1e-12, atol=1e-14)
    C3 = C4[:, :3, :3]
    c = lambda i, j: C3[:, i - 1, j - 1]  # noqa: E731
    L3 = (1 + c(1, 1)) * (1 + c(3, 3)) - c(1, 3) ** 2
    ref3 = 2 / np.pi * (c(2, 3) * (1 + c(1, 1)) - c(1, 2) * c(1, 3)) / ((1 + c(1, 1))
                                                                         * np.sqrt(L3))
    assert np.allclose(I3(C3, "erf", "erf"), ref3, rtol=1e-12, atol=1e-14)
    C2 = C4[:, :2, :2]
    ref2 = 2 / np.pi / np.sqrt((1 + C2[:, 0, 0]) * (1 + C2[:, 1, 1]) - C2[:, 0, 1] ** 2)
    assert np.allclose(J2(C2, "erf", "erf"), ref2, rtol=1e-12, atol=0)


def test_linear_closed_forms():
    rng = np.random.default_rng(8)
    C = np.stack([_random_cov(rng, 4) for _ in range(20)])
    assert np.array_equal(I4(C, *["linear"] * 4), C[:, 2, 3])
    assert np.array_equal(I3(C[:, :3, :3], "linear", "linear"), C[:, 1, 2])
    assert np.array_equal(I2(C[:, :2, :2], "linear", "linear"), C[:, 0, 1])
    assert np.array_equal(J2(C[:, :2, :2], "linear", "linear"), np.ones(20))


# ------------------------------------------------------------------------- properties
@pytest.mark.parametrize("acts", [a for a in itertools.product(ACTIVATIONS, repeat=4)])
def test_I4_symmetry(acts):
    """Swapping (x1, x2) with (dact1, dact2), or (x3, x4) with (act3, act4), is a no-op."""
    rng = np.random.default_rng(11)
    C = np.stack([_random_cov(rng, 4) for _ in range(5)])
    try:
        v = I4(C, *acts)
    except ValueError:
        return
    p12, p34 = [1, 0, 2, 3], [0, 1, 3, 2]
    v12 = I4(C[:, p12][:, :, p12], acts[1], acts[0], acts[2], acts[3])
    v34 = I4(C[:, p34][:, :, p34], acts[0], acts[1], acts[3], acts[2])
    assert np.allclose(v, v12, rtol=1e-11, atol=1e-14)
    assert np.allclose(v, v34, rtol=1e-11, atol=1e-14)


def test_shapes_broadcast():
    rng = np.random.default_rng(3)
    C = np.stack([_random_cov(rng, 4) for _ in range(6)]).reshape(2, 3, 4, 4)
    out = I4(C, "erf", "erf", "erf", "erf")
    assert out.shape == (2, 3)
    assert np.isclose(out[1, 2], I4(C[1, 2], "erf", "erf", "erf", "erf"))
    assert I2(np.eye(2), "erf", "erf").shape == ()


# ------------------------------------------------------------------------------ bad input
def test_bad_input():
    C2 = np.eye(2)
    with pytest.raises(ValueError, match="linear, relu, erf"):
        I2(C2, "tanh", "erf")
    with pytest.raises(ValueError, match="act2"):
        I2(C2, "erf", "sigmoid")
    with pytest.raises(ValueError, match="shape"):
        I3(C2, "erf", "erf")
    with pytest.raises(ValueError, match="symmetric"):
        J2(np.array([[1.0, 0.5], [0.2, 1.0]]), "erf", "erf")
    with pytest.raises(ValueError, match="positive semi-definite"):
        I2(np.array([[1.0, 2.0], [2.0, 1.0]]), "erf", "erf")
    with pytest.raises(ValueError, match="positive semi-definite"):
        I2(np.array([[-1.0, 0.0], [0.0, 1.0]]), "erf", "erf")
    with pytest.raises(ValueError, match="finite"):
        I2(np.array([[np.nan, 0.0], [0.0, 1.0]]), "erf", "erf")
    # rounding-level asymmetry / negativity is accepted
    I2(np.array([[1.0, 1.0 + 1e-15], [1.0, 1.0]]), "erf", "erf")


def test_doctests():
    assert doctest.testmod(ci, raise_on_error=False).failed == 0


# ------------------------------------------------------------------------------ ReLU
def _orthant_mvn(C):
    """P(x > 0) by scipy's Genz-Bretz integration (its own error: up to ~1e-7 here)."""
    from scipy.stats import multivariate_normal
    n = C.shape[0]
    return multivariate_normal(np.zeros(n), C, abseps=1e-10, releps=1e-10,
                               maxpts=2 * 10**6).cdf(np.zeros(n))


def test_relu_orthants_against_scipy():
    """J2 (relu) = P2, the 3- and 4-field orthants of the engine vs multivariate_normal."""
    rng = np.random.default_rng(12)
    for _ in range(3):
        G = _random_cov(rng, 4)
        assert abs(float(J2(G[:2, :2], "relu", "relu")) - _orthant_mvn(G[:2, :2])) < 1e-9
        assert abs(ci._orthant(G[None, :3, :3])[0] - _orthant_mvn(G[:3, :3])) < 2e-7
        assert abs(ci._orthant(G[None])[0] - _orthant_mvn(G)) < 2e-7


def test_relu_I4_diagonal_limit():
    """Independent fields: E[step] E[step] E[relu] E[relu] = sqrt(C33 C44) / (8 pi)."""
    d = np.array([0.3, 1.7, 0.8, 2.2])
    assert np.isclose(float(I4(np.diag(d), *["relu"] * 4)),
                      np.sqrt(d[2] * d[3]) / (8 * np.pi), rtol=1e-13)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3)])
def test_relu_I4_continuity_at_repeated_fields(i, j):
    """Field j -> field i: I4 approaches the exact repeated-field value linearly in the
    perturbation sqrt(eps) (no jump, no loss of accuracy beyond ~1e-8)."""
    rng = np.random.default_rng(13)
    L = np.linalg.cholesky(_random_cov(rng, 4))
    Ls = L.copy()
    Ls[j] = L[i]
    Cs = Ls @ Ls.T
    exact = float(I4(Cs, *["relu"] * 4))
    slope = None
    for eps in (1e-4, 1e-8, 1e-12):
        Lp = L.copy()
        Lp[j] = L[i] + np.sqrt(eps) * (L[j] - L[i])
        diff = float(I4(Lp @ Lp.T, *["relu"] * 4)) - exact
        slope = diff / np.sqrt(eps) if slope is None else slope
        # linear approach; 3e-8 absorbs the rounding of the near-singular input
        # (measured: <= 1.2e-8 at 1 - rho ~ 1e-12, the worst of the five pairs)
        dev = abs(diff - slope * np.sqrt(eps))
        print(f"pair {(i, j)} eps {eps:g}: |diff - linear| = {dev:.1e}")
        assert dev <= 2e-2 * abs(slope) * np.sqrt(eps) + 3e-8
    # C + 1e-8 I: 1 - rho ~ 1e-8, so the change is O(sqrt(1e-8)) = O(1e-4) (measured 2e-6)
    assert abs(float(I4(Cs + 1e-8 * np.eye(4), *["relu"] * 4)) - exact) < 1e-5


def test_relu_anti_repeated_fields_vanish():
    """x2 = -x1 (or x4 = -x3): step(x) step(-x) = relu(x) relu(-x) = 0."""
    rng = np.random.default_rng(14)
    L = np.linalg.cholesky(_random_cov(rng, 4))
    for i, j in [(0, 1), (2, 3), (0, 3)]:
        Lp = L.copy()
        Lp[j] = -0.7 * L[i]
        assert float(I4(Lp @ Lp.T, *["relu"] * 4)) == 0.0


#: Node counts of the P4 quadrature and the largest error against 40 nodes per panel,
#: on random and near-singular correlations (the measured study is in the docstring).
P4_CONVERGENCE = {6: 2e-7, 8: 1e-9, 10: 5e-12, 12: 5e-13}


def test_orthant4_convergence():
    rng = np.random.default_rng(15)
    Rs = []
    for k in range(12):
        L = np.linalg.cholesky(_random_cov(rng, 4))
        if k >= 4:  # near-repeated fields, 1 - rho ~ eps
            i, j = [(0, 1), (2, 3), (0, 2), (1, 3)][k % 4]
            L[j] = L[i] + 10.0 ** (-(k // 4) * 3) * (L[j] - L[i])
        C = L @ L.T
        d = 1 / np.sqrt(np.diag(C))
        Rs.append(C * d[:, None] * d)
    R = np.array(Rs)
    ref = ci._orthant4(R, ci.graded_nodes(40, 0.25, 40))
    for m, tol in P4_CONVERGENCE.items():
        err = np.abs(ci._orthant4(R, ci.graded_nodes(m)) - ref).max()
        print(f"P4 graded Gauss-Legendre, {m} nodes/panel: max error {err:.1e}")
        assert err < tol


def test_timings():
    """Report the time of a stack of 1000 covariances per function (no assertion)."""
    import time
    rng = np.random.default_rng(16)
    A = rng.normal(size=(1000, 4, 6))
    C = A @ A.transpose(0, 2, 1) / 6
    for name, fn, n, acts in [("I2", I2, 2, ("relu", "relu")), ("J2", J2, 2, ("relu",) * 2),
                              ("I3", I3, 3, ("relu", "relu")), ("I4", I4, 4, ("relu",) * 4),
                              ("I4", I4, 4, ("erf",) * 4), ("I3", I3, 3, ("erf", "erf"))]:
        t0 = time.perf_counter()
        fn(C[:, :n, :n], *acts)
        print(f"{name}{acts}: {1e3 * (time.perf_counter() - t0):.1f} ms / 1000")
