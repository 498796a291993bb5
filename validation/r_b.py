"""R-B: RegNorm's regularizer E_ab[sum_i (zbar_i^a + zbar_i^b)^2 - 2] is minimal at batch mean 0.

Rao & Sohl-Dickstein 2020, eq. 3 and App. B. Theory: :mod:`perceptron_theory.theory.regnorm`
(closed form ``r = sum_i (2 q_i + 2 m_i^2 - 2)``, ``= 2 sum_i m_i^2`` on RMS-normalized
inputs; the minimizing pre-norm shift is minus the geometric median).

Independent computations:

* **sympy, explicit batches** (M = 2..5 symbols per unit): the definition, a double sum over
  all pairs (independent or distinct), minus the library's ``pair_term`` of the symbolic
  mean and second moment, expanded: every coefficient 0;
* **sympy, any M**: the expectation over two i.i.d. draws (or distinct draws: moments
  (S_i S_j - S_{i+j})/(M(M-1)) of power sums) of (X^a + X^b)^2 - 2, monomial by monomial;
* **sympy, the sphere**: sum_i (z_i / rms(z))^2 = N; with sum_i q_i = N the regularizer
  in (m, v) becomes 2 sum_i m_i^2: gradient 4m, only critical point m = 0, Hessian 4 I
  (distinct pairs: 4M/(M-1) I); at fixed variances (a shift of zbar) gradient 8(m + c),
  Hessian 8 I. App. B's step E_ab[x^a x^b] = E_a[(x^a)^2] is off by -v;
* **numeric**: r by brute force over all M^2 pairs of a random batch against the closed
  form; scipy's BFGS minimizing the brute-force r over a shift of zbar (minimum at -m,
  finite-difference Hessian 8 I) and over a shift of the pre-norm z (r -> 0, batch mean
  of zbar -> 0, shift = minus the geometric median from the library's Weiszfeld iteration,
  finite-difference Hessian = 4 J^2, positive definite);
* **torch** (skipped cleanly without it): the ``regnorm-mean`` penalty of
  ``deep.penalties`` and ``RegNorm.regularizer()`` on the same batch, against the closed
  form with the layer's eps.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import regnorm as rn
from validation._core import CheckResult, compare, expect, register

CLAIM = "R-B"
TITLE = "RegNorm's regularizer is minimized at zero batch mean (App. B), symbolic + numeric"

BATCH = 16                  # M
UNIT_SHAPE = (3, 2, 2)      # (C, H, W): N = 12 units
OFFSET = 1.0                # scale of the per-unit mean of the random batch
SYMBOLIC_M = (2, 3, 4, 5)
SYMBOLIC_N = (2, 3, 4)
FD_STEP = 1e-4              # central-difference step of the numeric Hessians
FD_ATOL = 1e-5              # O(h^2) truncation + rounding (1e-16 / h^2 ~ 1e-8)


def brute_force(x: np.ndarray, pairs: str = "independent") -> float:
    """r straight from eq. 3: the mean over all ordered pairs (a, b) of the batch."""
    M = x.shape[0]
    tot = 0.0
    count = 0
    for a, b in itertools.product(range(M), repeat=2):
        if pairs == "distinct" and a == b:
            continue
        tot += float(np.sum((x[a] + x[b]) ** 2 - 2.0))
        count += 1
    return tot / count


def brute_force_fast(x: np.ndarray) -> float:
    """Independent-pair brute force as one (M, M, N) array (for the optimizers)."""
    return float(np.mean(np.sum((x[:, None, :] + x[None, :, :]) ** 2 - 2.0, axis=2)))


def _rms_normalize(z: np.ndarray) -> np.ndarray:
    return z / np.sqrt(np.mean(z * z, axis=1, keepdims=True))


def fd_hessian(f, x0: np.ndarray, step: float = FD_STEP) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = x0.size
    Hm = np.zeros((n, n))
    E = np.eye(n) * step
    for i in range(n):
        for j in range(i, n):
            v = (f(x0 + E[i] + E[j]) - f(x0 + E[i] - E[j]) - f(x0 - E[i] + E[j])
                 + f(x0 - E[i] - E[j])) / (4 * step * step)
            Hm[i, j] = Hm[j, i] = v
    return Hm


def _max_coeff(expr, symbols) -> float:
    """Largest |coefficient| of a polynomial (0.0 for the zero polynomial)."""
    import sympy as sp

    expr = sp.expand(expr)
    if expr == 0:
        return 0.0
    return float(max(abs(c) for c in sp.Poly(expr, *symbols).coeffs()))


def symbolic_records() -> tuple[list, dict]:
    """The sympy half of the check: (comparisons, facts for the summary)."""
    import sympy as sp

    comps = []
    facts = {}
    # 1. explicit batches: definition minus the library's pair_term, per unit
    for pairs in rn.PAIRS:
        worst = 0.0
        for M in SYMBOLIC_M:
            x = sp.symbols(f"x1:{M + 1}", real=True)
            idx = [(a, b) for a in range(M) for b in range(M)
                   if pairs == "independent" or a != b]
            definition = sum((x[a] + x[b]) ** 2 - 2 for a, b in idx) / sp.Integer(len(idx))
            m = sum(x) / sp.Integer(M)
            q = sum(xi**2 for xi in x) / sp.Integer(M)
            worst = max(worst, _max_coeff(definition - rn.pair_term(m, q, M, pairs), x))
        comps.append(compare(CLAIM, f"sympy: definition - closed form, {pairs} pairs, "
                                    f"M = {SYMBOLIC_M[0]}..{SYMBOLIC_M[-1]}", 0.0, worst,
                             note="max |coefficient| of the expanded difference (exact)"))
    # 2. any M: expectation over two draws, monomial by monomial
    M = sp.Symbol("M", integer=True, positive=True)
    Xa, Xb = sp.symbols("X_a X_b", real=True)
    mu = {k: sp.Symbol(f"mu{k}") for k in range(1, 5)}
    mu[0] = sp.Integer(1)

    def expectation(expr, pairs):
        out = 0
        for (i, j), c in sp.Poly(sp.expand(expr), Xa, Xb).terms():
            if pairs == "independent":
                out += c * mu[i] * mu[j]
            else:   # sampling without replacement: power sums S_k = M mu_k
                out += c * (M * M * mu[i] * mu[j] - M * mu[i + j]) / (M * (M - 1))
        return sp.simplify(out)

    for pairs in rn.PAIRS:
        e = expectation((Xa + Xb) ** 2 - 2, pairs)
        diff = sp.simplify(e - rn.pair_term(mu[1], mu[2], M, pairs))
        comps.append(compare(CLAIM, f"sympy: E_ab[(X^a + X^b)^2 - 2] = closed form, {pairs} "
                                    f"pairs, symbolic M", 0.0, 0.0 if diff == 0 else 1.0,
                             note=f"E = {sp.factor(e)}; measured 0 iff the difference "
                                  f"simplifies to 0"))
    # App. B's step: E_ab[X^a X^b] = E_a[(X^a)^2]? (independent draws)
    paper_gap = sp.simplify(expectation(Xa * Xb, "independent") - mu[2])
    comps.append(compare(CLAIM, "sympy: App. B's E_ab[zbar^a zbar^b] - E_a[zbar^2] = -v (not 0)",
                         0.0, 0.0 if sp.simplify(paper_gap + (mu[2] - mu[1] ** 2)) == 0 else 1.0,
                         note=f"E_ab[x^a x^b] - E_a[x^2] = {paper_gap}: App. B drops it and ends "
                              f"with the constant r = 2N"))
    facts["paper_gap"] = str(paper_gap)
    # 3. the sphere: sum_i zbar_i^2 = N
    worst = 0
    for N in SYMBOLIC_N:
        z = sp.symbols(f"z1:{N + 1}", positive=True)
        rms = sp.sqrt(sum(zi**2 for zi in z) / N)
        worst = max(worst, abs(sp.simplify(sum((zi / rms) ** 2 for zi in z) - N)))
    comps.append(compare(CLAIM, f"sympy: sum_i (z_i/rms(z))^2 - N = 0, N = "
                                f"{SYMBOLIC_N[0]}..{SYMBOLIC_N[-1]}", 0.0, float(worst),
                         note="eps = 0; hence sum_i q_i = N for every normalized batch"))
    # 4. r in (m, v) with sum_i v_i = N - sum_i m_i^2: gradient, critical points, Hessian
    N = 3
    m = sp.symbols(f"m1:{N + 1}", real=True)
    v = sp.symbols(f"v1:{N + 1}", nonnegative=True)
    for pairs, hess_pred in (("independent", 4), ("distinct", 4 * M / (M - 1))):
        r = sum(rn.pair_term(m[i], v[i] + m[i] ** 2, M, pairs) for i in range(N))
        r_sphere = sp.simplify(r.subs(v[-1], N - sum(mi**2 for mi in m) - sum(v[:-1])))
        grad = [sp.diff(r_sphere, mi) for mi in m]
        crit = sp.solve(grad, m, dict=True)
        hess = sp.hessian(r_sphere, m)
        pred_r = (2 * sum(mi**2 for mi in m) if pairs == "independent"
                  else (2 * M * sum(mi**2 for mi in m) - 2 * N) / (M - 1))
        ok_form = sp.simplify(r_sphere - pred_r) == 0
        ok_crit = crit == [{mi: 0 for mi in m}]
        ok_hess = sp.simplify(hess - hess_pred * sp.eye(N)) == sp.zeros(N, N)
        comps.append(compare(CLAIM, f"sympy: on the sphere r = {sp.sstr(pred_r.subs(N, N))} "
                                    f"({pairs}, N={N})", 0.0, 0.0 if ok_form else 1.0,
                             note="v eliminated by sum_i v_i = N - sum_i m_i^2"))
        comps.append(compare(CLAIM, f"sympy: unique critical point m = 0, Hessian "
                                    f"{sp.sstr(hess_pred)} I ({pairs})", 0.0,
                             0.0 if (ok_crit and ok_hess) else 1.0,
                             note=f"solve(grad = 0) = {crit}; Hessian positive definite for M > 1"))
    # 5. fixed variances (a shift c of the normalized values): gradient 8(m + c), Hessian 8 I
    c = sp.symbols(f"c1:{N + 1}", real=True)
    r_shift = sum(rn.pair_term(m[i] + c[i], v[i] + (m[i] + c[i]) ** 2, M, "independent")
                  for i in range(N))
    crit = sp.solve([sp.diff(r_shift, ci) for ci in c], c, dict=True)
    hess = sp.hessian(r_shift, c)
    ok = crit == [{ci: -mi for ci, mi in zip(c, m, strict=True)}] and hess == 8 * sp.eye(N)
    comps.append(compare(CLAIM, "sympy: r(zbar + c) at fixed variances: unique minimum c = -m, "
                                "Hessian 8 I", 0.0, 0.0 if ok else 1.0,
                         note=f"solve = {crit}"))
    return comps, facts


def torch_records(z: np.ndarray, shift: np.ndarray) -> list | None:
    """deep.penalties' regnorm-mean and RegNorm.regularizer() vs the closed form; None
    without torch."""
    try:
        import torch

        from perceptron_theory.deep.norms import RegNorm
        from perceptron_theory.deep.penalties import Record, regnorm_mean
    except ImportError:
        return None
    comps = []
    M = z.shape[0]
    layer = RegNorm(UNIT_SHAPE[0], dim=2)
    model = torch.nn.Sequential(layer)
    for tag, batch in (("random batch", z), ("at the minimizing shift", z + shift)):
        zt = torch.tensor(batch.reshape((M,) + UNIT_SHAPE), dtype=torch.float32)
        with torch.no_grad():
            layer(zt)
            rec = Record(torch.zeros(M, 1), torch.zeros(M, 1), [zt], [layer], True)
            pen = float(regnorm_mean(model, rec))
            reg = float(layer.regularizer())
        pred = rn.regularizer(rn.normalize(batch, eps=layer.eps))
        for name, val in (("penalties.regnorm_mean", pen), ("RegNorm.regularizer()", reg)):
            comps.append(compare(CLAIM, f"torch {name}, {tag}", pred, val, rtol=1e-5,
                                 atol=1e-5 * batch.shape[1],
                                 note=f"float32; eps = {layer.eps:g} (r = 2 sum m^2 + "
                                      f"2(sum q - N), second term ~ -2N eps/rms^2)"))
    return comps


@register(CLAIM, TITLE, paper="Rao & Sohl-Dickstein 2020, eq. 3 and App. B")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    rng = np.random.default_rng(seed)
    N = int(np.prod(UNIT_SHAPE))
    comps, facts = symbolic_records()

    # ---- numeric: a random batch with non-zero unit means
    z = rng.standard_normal((BATCH, N)) + OFFSET * rng.standard_normal(N)
    zbar = _rms_normalize(z)
    for pairs in rn.PAIRS:
        comps.append(compare(CLAIM, f"r: brute force over all pairs = closed form ({pairs})",
                             brute_force(zbar, pairs), rn.regularizer(rn.normalize(z), pairs=pairs),
                             rtol=1e-12, atol=1e-12, note=f"M={BATCH}, N={N}, eps = 0"))
    zbar_eps = z / np.sqrt(np.mean(z * z, axis=1, keepdims=True) + 0.05)
    comps.append(compare(CLAIM, "r: brute force = closed form, eps = 0.05",
                         brute_force(zbar_eps), rn.regularizer(rn.normalize(z, eps=0.05)),
                         rtol=1e-12, atol=1e-12, note="2 sum m^2 + 2(sum q - N)"))
    m = zbar.mean(0)
    comps.append(compare(CLAIM, "r(zbar) = 2 sum_i m_i^2 (eps = 0)", 2.0 * float(m @ m),
                         brute_force(zbar), rtol=1e-12,
                         note=f"App. B's final formula gives the constant 2N = {2 * N}"))
    # shift of the normalized values
    f_c = lambda c: brute_force_fast(zbar + c)   # noqa: E731
    res = minimize(f_c, np.zeros(N), method="BFGS", options={"gtol": 1e-10})
    v = zbar.var(0)
    comps.append(compare(CLAIM, "shift of zbar: BFGS minimizer c* = -m (max abs deviation)", 0.0,
                         float(np.max(np.abs(res.x + m))), atol=1e-6,
                         note=f"minimum value {res.fun:.6g}, predicted 2 sum v - 2N = "
                              f"{2 * v.sum() - 2 * N:.6g}"))
    comps.append(compare(CLAIM, "shift of zbar: minimum value = sum_i (2 v_i - 2)",
                         float(np.sum(2 * v - 2)), res.fun, atol=1e-9, note="BFGS, gtol 1e-10"))
    Hfd = fd_hessian(f_c, res.x)
    comps.append(compare(CLAIM, "shift of zbar: finite-difference Hessian = 8 I (max abs dev.)",
                         0.0, float(np.max(np.abs(Hfd - 8 * np.eye(N)))), atol=FD_ATOL,
                         note=f"central differences, step {FD_STEP:g}"))
    # shift of the pre-norm values
    g_c = lambda c: brute_force_fast(_rms_normalize(z + c))   # noqa: E731
    res2 = minimize(g_c, np.zeros(N), method="BFGS", options={"gtol": 1e-12})
    th = rn.minimizing_shift(z)
    comps.append(compare(CLAIM, "shift of z: BFGS minimum of r = 0", 0.0, res2.fun, atol=1e-10,
                         note=f"from r = {g_c(np.zeros(N)):.4g} at c = 0; r at c = -mean(z): "
                              f"{g_c(-z.mean(0)):.4g} (centring z is not enough)"))
    comps.append(compare(CLAIM, "shift of z: batch mean of zbar at the BFGS minimizer "
                                "(max abs)", 0.0,
                         float(np.max(np.abs(_rms_normalize(z + res2.x).mean(0)))), atol=1e-5,
                         note="optimizer accuracy ~ sqrt(r*)"))
    comps.append(compare(CLAIM, "shift of z: BFGS minimizer = -geometric median (Weiszfeld), "
                                "max abs dev.", 0.0, float(np.max(np.abs(res2.x - th.shift))),
                         atol=1e-5,
                         note=f"Weiszfeld {th.iterations} iterations, r = {th.value:.2g}"))
    Hfd2 = fd_hessian(g_c, th.shift)
    scale = float(np.max(np.abs(th.hessian)))
    comps.append(compare(CLAIM, "shift of z: finite-difference Hessian = 4 J^2 (max abs dev.)",
                         0.0, float(np.max(np.abs(Hfd2 - th.hessian))), atol=FD_ATOL * scale,
                         note=f"J = sqrt(N)/M sum_a (I - u_a u_a^T)/|z^a + c|; max entry "
                              f"{scale:.3g}"))
    eig = np.linalg.eigvalsh(0.5 * (Hfd2 + Hfd2.T))
    comps.append(expect(CLAIM, "shift of z: smallest Hessian eigenvalue > 0 (finite "
                               "differences)", FD_ATOL * scale, float(eig.min()), ">=",
                        note=f"eigenvalues {eig.min():.3g}..{eig.max():.3g}: strict minimum"))
    d_val = rn.regularizer(rn.normalize(z + th.shift), pairs="distinct")
    comps.append(compare(CLAIM, "distinct pairs at the same shift: r = -2N/(M-1)",
                         -2.0 * N / (BATCH - 1), brute_force(_rms_normalize(z + th.shift),
                                                            "distinct"), atol=1e-9,
                         note=f"closed form {d_val:.8g}; same minimizer, negative minimum"))
    # ---- torch (optional)
    tc = torch_records(z, th.shift)
    torch_note = ("torch: deep.penalties' regnorm-mean and RegNorm.regularizer() agree with "
                  "the closed form (float32)." if tc is not None else
                  "torch not installed: the deep.penalties comparison was skipped.")
    comps.extend(tc or [])

    # ---- plot: r along the line from 0 to the minimizing shift and to -mean(z)
    t = np.linspace(-0.25, 1.5, 71)
    p1 = Plot("R-B: r along shifts of the pre-norm batch", "t (shift = t c)", "r",
              (series("c = -geometric median (minimizer)", t,
                      [g_c(ti * th.shift) for ti in t]),
               series("c = -mean(z)", t, [g_c(-ti * z.mean(0)) for ti in t]),
               series("c = BFGS minimizer", [1.0], [res2.fun], style="points")))
    summary = (
        "r = E_ab[sum_i (x_i^a + x_i^b)^2 - 2] = sum_i (2 q_i + 2 m_i^2 - 2) = sum_i (2 v_i + "
        "4 m_i^2 - 2) for independent a, b (sympy, explicit M = 2..5 and symbolic M; distinct "
        "pairs: 2q + 2(M m^2 - q)/(M-1) - 2). On RMS-normalized inputs (eps = 0) every sample "
        "has sum_i zbar_i^2 = N, so r = 2 sum_i m_i^2: gradient 4m, the only critical point is "
        "m = 0 and the Hessian is 4 I (distinct pairs: (2M sum m^2 - 2N)/(M-1), same minimizer, "
        "minimum -2N/(M-1)); at fixed variances (shifting zbar) the minimum is at c = -m with "
        "Hessian 8 I; brute force over all pairs and BFGS agree. Shifting the pre-norm values, "
        "r reaches 0 where the batch mean of zbar vanishes, at minus the geometric median of "
        f"the samples (not at minus their mean: r = {g_c(-z.mean(0)):.3g} there), with Hessian "
        "4 J^2 > 0. PAPER ERROR (App. B): the proof sets E_ab[zbar_i^a zbar_i^b] = "
        f"E_a[(zbar_i^a)^2] (the difference is {facts['paper_gap']} = -v_i) and ends with "
        "r = 2 sum_i E_a[(zbar_i^a)^2] = 2N, a constant; the statement (unique minimum at "
        "batch mean 0) is right, with r = 2 sum_i m_i^2. " + torch_note)
    return CheckResult(CLAIM, TITLE, tuple(comps), (p1,), summary)
