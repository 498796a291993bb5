"""D-eq5: dropout on the embedding before a linear last layer as an additive penalty.

Dauphin & Cubuk 2021, Sec. 3.1, eq. 5: with squared loss, dropout at the last layer is
``loss + lambda R_Dropout``, ``R_Dropout = tr(W diag(E[Emb Emb^T]) W^T)``, and
``K R_FL2 ~ R_Dropout <= 1/4 ||W||^4 + H/4 R_EL2``; for cross-entropy "by Taylor
expansion, assuming low confidence". Theory: :mod:`perceptron_theory.theory.dropout`.

Independent computations:

* **squared loss**: Monte Carlo over dropout masks (inverted and plain dropout), the sample
  mean of the summed squared error against the exact ``clean + lambda R_Dropout``, 4 SE;
* **cross-entropy, narrow layer** (H = 10, large per-unit logit contributions; instances drawn
  from their own stream, so quick and full share them): the exact
  mask expectation by enumeration of all 2^H masks per sample, checked against Monte
  Carlo (4 SE); against it, the rates of the two approximations in p (log-log slopes of
  the error over the smallest p: 1 for the quadratic form, 2 for the Bregman form), the
  quadratic's leading error coefficient c3 (Richardson limit of error/p) and, at fixed p,
  the quadratic's error under W -> sW against the Lagrange bound E_m[L^3]/24 of the
  third-order remainder (L = range of the logit perturbation over classes; O(s^3), so the
  relative error is O(s));
* **cross-entropy, wide layer** (H = 128, W ~ N(0, 1/H), low confidence, small p): Monte
  Carlo (with the first-order term as a control variate, mean 0 exactly) against both
  forms, 4 SE plus an allowance |bregman - quadratic| = p/(1-p)|c3|, the quadratic's
  predicted leading error;
* **relations to FL2 / EL2**: R_Dropout against the paper's trace form, ``K R_FL2`` and
  ``E||Emb||^2`` computed directly from the embeddings, on constructed embeddings /
  weights where the relations are exact; eq. 5's bound against a counterexample and
  against the same network rescaled (W/c, c h), the corrected bound on random instances;
  the quadratic cross-entropy penalty at uniform softmax against ``lambda/(2K)`` times
  the column-centred R_Dropout.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import dropout as dp
from validation._core import CheckResult, compare, expect, register

CLAIM = "D-eq5"
TITLE = "Dropout before a linear last layer: exact penalty (MSE), expansions (CE), FL2/EL2"

SIZES = {True: {"n_masks": 10_000}, False: {"n_masks": 100_000}}
CHUNK = 10_000
SQ_SHAPE = (4, 32, 8)            # K, H, N for the squared loss
SQ_PS = (0.1, 0.3, 0.5, 0.8)
NARROW = (5, 10, 6, 2.0)         # K, H, N, weight scale (W ~ scale N(0, 1/H))
NARROW_PS = (0.4, 0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125)
NARROW_MC_PS = (0.4, 0.1)
RATE_PS = 4                      # the rates are fitted on the 4 smallest p
SCALES = (0.00625, 0.0125, 0.025, 0.05)   # W -> s W / scale at p = SCALE_P
SCALE_P = 0.1
WIDE = (10, 128, 8, 1.0)
WIDE_PS = (0.01, 0.02, 0.05)
A_SCALE = 2.0                    # scale of (W, h) for the rescaled counterexample
SLOPE_ATOL = {"p": 0.1}


def _ce(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unhalved NLL lse(z) - z_y over the last axis; labels broadcast over the rest."""
    return logsumexp(z, axis=-1) - np.take_along_axis(z, labels[..., None], -1)[..., 0]


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(np.abs(y)), 1)[0])


def mc_squared(W, h, y, b, p, n, rng, inverted=True) -> tuple[float, float]:
    """Monte Carlo mean and SE of the sample-mean summed squared error under dropout."""
    vals = []
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        keep = rng.random((k,) + h.shape) >= p                      # (k, N, H)
        d = keep * h / (1.0 - p) if inverted else keep * h
        out = d @ W.T + b                                           # (k, N, K)
        vals.append(np.mean(np.sum((y - out) ** 2, axis=2), axis=1))
    v = np.concatenate(vals)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))


def mc_ce_excess(W, h, labels, b, p, n, rng) -> tuple[float, float]:
    """Monte Carlo of E_m[mean_n l(z_n)] - mean_n l(z0_n), inverted dropout.

    Control variate: the first-order term g^T (z - z0), g = softmax(z0) - e_y, whose mask
    mean is exactly 0 (E[m/(1-p)] = 1), is subtracted draw by draw (no theory used).
    """
    z0 = h @ W.T + b                                                # (N, K)
    l0 = _ce(z0, labels)
    g = np.exp(z0 - logsumexp(z0, axis=1, keepdims=True))
    g[np.arange(len(labels)), labels] -= 1.0
    vals = []
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        keep = rng.random((k,) + h.shape) >= p
        z = (keep * h / (1.0 - p)) @ W.T + b                        # (k, N, K)
        loss = _ce(z, np.broadcast_to(labels, (k, len(labels))))   # (k, N)
        vals.append(np.mean(loss - l0 - np.sum(g * (z - z0), axis=2), axis=1))
    v = np.concatenate(vals)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))


def exact_ce_excess(W, h, labels, b, p) -> float:
    """Exact E_m[mean_n l] - mean_n l(z0) by enumerating the 2^H masks of each sample."""
    H = h.shape[1]
    masks = np.array(list(itertools.product((0.0, 1.0), repeat=H)))   # (2^H, H)
    prob = np.prod(np.where(masks == 1.0, 1.0 - p, p), axis=1)         # (2^H,)
    z = np.einsum("mj,nj,kj->mnk", masks, h, W) / (1.0 - p) + b        # (2^H, N, K)
    loss = _ce(z, np.broadcast_to(labels, (len(masks), len(labels))))  # (2^H, N)
    return float(np.mean(prob @ loss) - np.mean(_ce(h @ W.T + b, labels)))


def third_order_term(W, h, b, p) -> float:
    """E_m of the cubic Taylor term of lse at z0: E[xi^3]/6 E sum_j kappa3_s(v_j).

    xi = m/(1-p) - 1 has E[xi^3] = p^3/(1-p)^2 - p; the third derivative of lse is the third
    cumulant of the softmax distribution s, kappa3_s(v) = sum_k s_k (v_k - s.v)^3;
    v_j = h_j W_:j. Derived here, not taken from the library.
    """
    z0 = h @ W.T + b
    s = np.exp(z0 - logsumexp(z0, axis=1, keepdims=True))          # (N, K)
    v = h[:, :, None] * W.T[None, :, :]                             # (N, H, K)
    c = v - np.sum(v * s[:, None, :], axis=2, keepdims=True)
    k3 = np.sum(s[:, None, :] * c**3, axis=2)                       # (N, H)
    return float((p**3 / (1 - p) ** 2 - p) / 6.0 * np.mean(np.sum(k3, axis=1)))


def remainder_bound(W, h, p) -> float:
    """E_m[L^3]/24, L = max_k delta_k - min_k delta_k, delta = W(m*h/(1-p) - h), by enumeration.

    Bounds |E_m l - l0 - quadratic|: the Lagrange remainder of the second-order Taylor
    expansion of lse is T(delta, delta, delta)/6 at an intermediate point, T a third
    cumulant of a distribution on an interval of length L, |T| <= L * L^2/4.
    """
    H = h.shape[1]
    masks = np.array(list(itertools.product((0.0, 1.0), repeat=H)))
    prob = np.prod(np.where(masks == 1.0, 1.0 - p, p), axis=1)
    delta = np.einsum("mj,nj,kj->mnk", masks / (1.0 - p) - 1.0, h, W)   # (2^H, N, K)
    L = delta.max(axis=2) - delta.min(axis=2)
    return float(np.mean(prob @ L**3) / 24.0)


def _instance(shape, rng):
    K, H, N, scale = shape
    W = scale * rng.standard_normal((K, H)) / np.sqrt(H)
    h = np.abs(rng.standard_normal((N, H)))                 # a ReLU-like embedding
    b = 0.3 * rng.standard_normal(K)
    labels = rng.integers(0, K, N)
    return W, h, b, labels


@register(CLAIM, TITLE, paper="Dauphin & Cubuk 2021, Sec. 3.1 eq. 5 (after Wang & Manning 2013)")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    cfg = SIZES[bool(quick)]
    n = cfg["n_masks"]
    rng = np.random.default_rng([seed, 0])        # instances: the same in quick and full
    mc_rng = np.random.default_rng([seed, 1])     # mask draws
    comps = []

    # ---- 1. squared loss: exact, Monte Carlo over masks
    K, H, N = SQ_SHAPE
    W = rng.standard_normal((K, H)) / np.sqrt(H)
    h = np.maximum(rng.standard_normal((N, H)) + 0.3, 0.0)
    b = 0.2 * rng.standard_normal(K)
    y = rng.standard_normal((N, K))
    sq_pts = {True: [], False: []}
    for inverted in (True, False):
        kind = "inverted" if inverted else "plain"
        for p in SQ_PS:
            th = dp.squared_loss_dropout(W, h, y, p, b=b, inverted=inverted)
            m, se = mc_squared(W, h, y, b, p, n, mc_rng, inverted)
            sq_pts[inverted].append((p, m, se, th.expected))
            lam = dp.dropout_strength(p, inverted=inverted)
            comps.append(compare(
                CLAIM, f"MSE: E_mask loss, {kind} dropout, p={p}", th.expected, m, stderr=se,
                note=f"clean {th.clean:.5g} + lambda R_Dropout {th.penalty:.5g}, lambda = "
                     f"{'p/(1-p)' if inverted else 'p(1-p)'} = {lam:.4g}; Monte Carlo, {n} "
                     f"masks per sample, N={N}, H={H}, K={K}"))
    r_paper = np.trace(W @ np.diag(np.diag(h.T @ h / N)) @ W.T)
    comps.append(compare(CLAIM, "R_Dropout = tr(W diag(E[Emb Emb^T]) W^T) (paper's form)",
                         r_paper, dp.dropout_regularizer(W, h), rtol=1e-12,
                         note="sum_j E[h_j^2] ||W_:j||^2; paper's lambda = p/(1-p) (inverted)"))

    # ---- 2. cross-entropy, narrow layer: exact enumeration, rates
    Wn, hn, bn, ln = _instance(NARROW, rng)
    exact = {p: exact_ce_excess(Wn, hn, ln, bn, p) for p in NARROW_PS}
    for p in NARROW_MC_PS:
        m, se = mc_ce_excess(Wn, hn, ln, bn, p, n, mc_rng)
        comps.append(compare(CLAIM, f"CE narrow: enumeration of 2^{NARROW[1]} masks vs "
                                    f"Monte Carlo, p={p}", exact[p], m, stderr=se,
                             note=f"{n} masks per sample, N={NARROW[2]}"))
    quad = {p: dp.cross_entropy_dropout(Wn, hn, ln, p, b=bn).penalty for p in NARROW_PS}
    breg = {p: dp.cross_entropy_dropout(Wn, hn, ln, p, b=bn, approximation="bregman").penalty
            for p in NARROW_PS}
    eq = np.array([exact[p] - quad[p] for p in NARROW_PS])
    eb = np.array([exact[p] - breg[p] for p in NARROW_PS])
    ps = np.array(NARROW_PS)
    small = slice(len(ps) - RATE_PS, None)
    c3 = dp.quadratic_error_coefficient(Wn, hn, b=bn)
    rel_q = eq[-1] / exact[ps[-1]]
    comps.append(compare(CLAIM, "CE narrow: slope of log|exact - quadratic| vs log p", 1.0,
                         _slope(ps[small], eq[small]), atol=SLOPE_ATOL["p"],
                         note=f"p = {ps[small].min():g}..{ps[small].max():g}; error p c3 + "
                              f"O(p^2): relative error at p={ps[-1]:g} is {rel_q:.3f}, it does "
                              f"not vanish as p -> 0"))
    comps.append(compare(CLAIM, "CE narrow: slope of log|exact - bregman| vs log p", 2.0,
                         _slope(ps[small], eb[small]), atol=SLOPE_ATOL["p"],
                         note="lambda sum_j D(v_j): exact to first order in p"))
    r1, r2 = eq[-1] / ps[-1], eq[-2] / ps[-2]
    comps.append(compare(CLAIM, "CE narrow: lim (exact - quadratic)/p = c3", c3,
                         2.0 * r1 - r2, rtol=1e-2, atol=1e-4,
                         note=f"Richardson from p = {ps[-2]:g}, {ps[-1]:g} (O(p^2) left); "
                              f"c3 = E sum_j (D(v_j) - v_j^T A v_j/2)"))
    sc = np.array(SCALES)
    es, rels, ratios, bounds = [], [], [], []
    for s in SCALES:
        Ws = Wn * s / NARROW[3]
        ex = exact_ce_excess(Ws, hn, ln, bn, SCALE_P)
        q = dp.cross_entropy_dropout(Ws, hn, ln, SCALE_P, b=bn).penalty
        es.append(ex - q)
        rels.append((ex - q) / ex)
        ratios.append((ex - q) / third_order_term(Ws, hn, bn, SCALE_P))
        bounds.append(remainder_bound(Ws, hn, SCALE_P))
    worst = max(abs(e_) / bd for e_, bd in zip(es, bounds, strict=True))
    comps.append(expect(CLAIM, f"CE narrow, p={SCALE_P}: |exact - quadratic| <= E_m[L^3]/24 "
                               f"(Lagrange remainder, O(s^3)) for W -> sW, max ratio", 1.0,
                        worst, "<=",
                        note=f"L = max_k delta_k - min_k delta_k; s = {sc.min():g}..{sc.max():g}; "
                             f"relative error {rels[0]:.1e} at s={sc[0]:g}, {rels[-1]:.1e} at "
                             f"s={sc[-1]:g} (O(s)); error / third-order Taylor term = "
                             f"{ratios[0]:.3f} at s={sc[0]:g}"))

    # ---- 3. cross-entropy, wide layer: Monte Carlo
    Ww, hw, bw, lw = _instance(WIDE, rng)
    wide_pts = []
    for p in WIDE_PS:
        m, se = mc_ce_excess(Ww, hw, lw, bw, p, n, mc_rng)
        q = dp.cross_entropy_dropout(Ww, hw, lw, p, b=bw).penalty
        bg = dp.cross_entropy_dropout(Ww, hw, lw, p, b=bw, approximation="bregman").penalty
        wide_pts.append((p, m, se, q, bg))
        for name, val in (("quadratic", q), ("bregman", bg)):
            comps.append(compare(
                CLAIM, f"CE wide (H={WIDE[1]}): {name} penalty vs Monte Carlo, p={p}", val, m,
                stderr=se, atol=abs(bg - q),
                note=f"allowance |bregman - quadratic| = {abs(bg - q):.2e} (= p/(1-p) |c3|, "
                     f"the quadratic's leading error); {n} masks per "
                     f"sample, N={WIDE[2]}, K={WIDE[0]}"))

    # ---- 4. relations to FL2 / EL2 and the bound of eq. 5
    Kr, Hr, Nr = 6, 16, 64
    Wr = rng.standard_normal((Kr, Hr)) / np.sqrt(Hr)
    Q = np.linalg.qr(rng.standard_normal((Nr, Hr)))[0]              # orthonormal columns
    h_dec = np.sqrt(Nr) * Q * rng.uniform(0.5, 2.0, Hr)              # E[h h^T] diagonal
    rel = dp.penalty_relations(Wr, h_dec)
    k_fl2 = float(np.mean(np.sum((h_dec @ Wr.T) ** 2, axis=1)))
    comps.append(compare(CLAIM, "K R_FL2 = R_Dropout, decorrelated embedding "
                                "(E[h_j h_k] = 0, j != k)", k_fl2, rel.r_dropout, rtol=1e-12,
                         note="the paper's approximation is exact here"))
    h_relu = np.maximum(rng.standard_normal((Nr, Hr)) + 0.5, 0.0)
    rel = dp.penalty_relations(Wr, h_relu)
    k_fl2 = float(np.mean(np.sum((h_relu @ Wr.T) ** 2, axis=1)))
    comps.append(compare(CLAIM, "K R_FL2 = R_Dropout + sum_{j!=k} (W^T W)_jk E[h_j h_k], "
                                "ReLU embedding", k_fl2, rel.r_dropout + rel.offdiagonal,
                         rtol=1e-12,
                         note=f"K R_FL2 / R_Dropout = {k_fl2 / rel.r_dropout:.3f}: positive "
                              f"means correlate the units, the '~' of eq. 5 is off"))
    el2 = float(np.mean(np.sum(h_relu ** 2, axis=1))) / Hr          # R_EL2 (eq. 2)
    W_eq = Wr / np.linalg.norm(Wr, axis=0) * 0.7                     # equal column norms
    comps.append(compare(CLAIM, "R_Dropout = ||W||_F^2 R_EL2, equal column norms of W",
                         float(np.sum(W_eq ** 2)) * el2, dp.dropout_regularizer(W_eq, h_relu),
                         rtol=1e-12, note="EL2 scaled by ||W||_F^2 (= H ||W_:j||^2)"))
    h_eq = h_relu / np.sqrt(np.mean(h_relu ** 2, axis=0))            # equal E[h_j^2] = 1
    comps.append(compare(CLAIM, "R_Dropout = ||W||_F^2 R_EL2, equal E[h_j^2]",
                         float(np.sum(Wr ** 2)) * float(np.mean(np.sum(h_eq ** 2, 1))) / Hr,
                         dp.dropout_regularizer(Wr, h_eq), rtol=1e-12, note=""))
    comps.append(expect(CLAIM, "R_Dropout >= min_j ||W_:j||^2 H R_EL2 (ReLU embedding)",
                        rel.min_column_norm2 * Hr * el2, rel.r_dropout, ">="))
    comps.append(expect(CLAIM, "R_Dropout <= max_j ||W_:j||^2 H R_EL2 (ReLU embedding)",
                        rel.max_column_norm2 * Hr * el2, rel.r_dropout, "<="))
    # eq. 5's bound: a counterexample, and the same network rescaled
    ce1 = dp.penalty_relations(np.array([[1.0]]), np.array([[1.0]]))
    comps.append(expect(CLAIM, "eq. 5 bound FAILS: R_Dropout > 1/4||W||^4 + H/4 R_EL2 at "
                               "H=K=1, W=h=1", ce1.paper_bound, ce1.r_dropout, ">=",
                        note="R_Dropout = 1 > 1/2: a pass records the violation"))
    # the ReLU net scaled by A_SCALE (logits x A_SCALE^2), then rescaled to (W/c, c h)
    Wa, ha = A_SCALE * Wr, A_SCALE * h_relu
    rel_a = dp.penalty_relations(Wa, ha)
    w2, e = float(np.sum(Wa ** 2)), float(np.mean(np.sum(ha ** 2, axis=1)))

    def paper_rhs(logc):                     # eq. 5's right side for (W/c, c h)
        c = np.exp(logc)
        return 0.25 * (w2 / c**2) ** 2 + 0.25 * e * c**2
    opt = minimize_scalar(paper_rhs, bounds=(-10, 10), method="bounded",
                          options={"xatol": 1e-10})
    comps.append(compare(CLAIM, "min over rescalings (W/c, c h) of eq. 5's right side",
                         rel_a.paper_bound_rescaled, opt.fun, rtol=1e-8,
                         note=f"3/4 2^(-2/3) (||W||^2 H R_EL2)^(2/3); at c = 1: "
                              f"{rel_a.paper_bound:.4g}"))
    # eq. 5 holds for every rescaling iff a^(4/3) <= 3/4 2^(-2/3) (||W||^2 H R_EL2)^(2/3)/R
    a_star = (rel.paper_bound_rescaled / rel.r_dropout) ** 0.75
    rms = float(np.sqrt(np.mean((ha @ Wa.T) ** 2)))
    comps.append(expect(CLAIM, f"eq. 5 bound FAILS for the ReLU net scaled by {A_SCALE:g} and "
                               f"rescaled (same NN(x), same R_Dropout)", opt.fun,
                        rel_a.r_dropout, ">=",
                        note=f"logit RMS {rms:.2f}; it fails for every scale above "
                             f"a* = {a_star:.3f} (c* = {np.exp(opt.x):.3g}); a pass records "
                             f"the violation"))
    worst = -np.inf
    for scale in (0.1, 1.0, 10.0):
        for hh in (h_relu, h_dec):
            rr = dp.penalty_relations(scale * Wr, hh / scale**0.5)
            worst = max(worst, rr.r_dropout - rr.weight_norm2 * rr.h_r_el2,
                        rr.weight_norm2 * rr.h_r_el2 - rr.corrected_bound)
    comps.append(expect(CLAIM, "corrected: R_Dropout <= ||W||_F^2 H R_EL2 <= "
                               "1/4(||W||_F^2 + H R_EL2)^2 (6 instances, max slack)", 0.0,
                        worst, "<=", note="max over instances of the larger violation (<= 0)"))
    # cross-entropy at uniform softmax: lambda/(2K) times the column-centred R_Dropout
    hu = np.abs(rng.standard_normal(Hr))
    Wu = rng.standard_normal((Kr, Hr))
    Wu -= np.outer(Wu @ hu, hu) / (hu @ hu)                          # W h = 0: z0 = 0
    pu = 0.2
    Wc = Wu - Wu.mean(axis=0)
    comps.append(compare(CLAIM, "CE quadratic penalty at uniform softmax = lambda/(2K) "
                                "R_Dropout(column-centred W)",
                         dp.dropout_strength(pu) / (2 * Kr) * dp.dropout_regularizer(Wc, hu),
                         dp.cross_entropy_dropout(Wu, hu, [0], pu).penalty, rtol=1e-12,
                         note="factor 1/(2K) against the MSE penalty lambda R_Dropout"))

    # ---- plots
    p1 = Plot("D-eq5: cross-entropy, narrow layer, error of the approximations",
              "drop probability p", "|exact - approximation|",
              (series("quadratic", ps, np.abs(eq), style="points"),
               series("bregman", ps, np.abs(eb), style="points"),
               series("p c3 (predicted leading error)", ps, np.abs(c3) * ps, style="dashed"),
               series("exact excess", ps, [exact[p] for p in ps])),
              xscale="log", yscale="log")
    p2 = Plot(f"D-eq5: quadratic CE penalty, error under W -> sW (p = {SCALE_P})", "s",
              "|exact - quadratic|",
              (series("enumeration", sc, np.abs(es), style="points"),
               series("s^3 reference", sc, np.abs(es[-1]) * (sc / sc[-1]) ** 3,
                      style="dashed"),
               series("Lagrange bound E_m[L^3]/24", sc, bounds, style="dashed")),
              xscale="log", yscale="log")
    p3 = Plot("D-eq5: squared loss, E_mask loss vs p", "p", "expected loss",
              tuple(series(f"{'inverted' if inv else 'plain'}: exact", [q[0] for q in pts],
                           [q[3] for q in pts]) for inv, pts in sq_pts.items())
              + tuple(series(f"{'inverted' if inv else 'plain'}: Monte Carlo",
                             [q[0] for q in pts], [q[1] for q in pts], [q[2] for q in pts],
                             "points") for inv, pts in sq_pts.items()))
    wq = wide_pts
    summary = (
        "Squared loss: E_mask ||y - W(m*h)/(1-p) - b||^2 = ||y - Wh - b||^2 + p/(1-p) "
        "sum_j h_j^2 ||W_:j||^2 holds exactly (Monte Carlo, 4 SE; plain dropout: mean "
        "(1-p)Wh, lambda = p(1-p)), i.e. the paper's lambda R_Dropout with lambda = p/(1-p). "
        "Cross-entropy: the quadratic (Taylor) penalty p/(2(1-p)) sum_j v_j^T A v_j has error "
        f"p c3 + O(p^2) (c3 = {c3:.4f} here), so its relative error does not vanish as p -> 0 "
        f"({rel_q:.0%} on the narrow layer at p = {ps[-1]:g}); it vanishes with the per-unit "
        "contributions (error O(s^3) under W -> sW, relative O(s)), as on the wide "
        f"low-confidence layer (relative gap {abs(wq[0][4] - wq[0][3]) / wq[0][3]:.1%} at "
        f"p = {wq[0][0]:g}). The Bregman form p/(1-p) sum_j D(v_j) is exact to first order in "
        "p (error O(p^2)). At uniform softmax the quadratic penalty is lambda/(2K) times the "
        "column-centred R_Dropout. Relations: K R_FL2 = R_Dropout + sum_{j!=k} (W^TW)_jk "
        "E[h_j h_k] (equal iff that vanishes, e.g. uncentered-decorrelated features, not a ReLU "
        "embedding), R_Dropout = ||W||_F^2 R_EL2 when column norms or unit second moments are "
        "equal. PAPER ERROR: eq. 5's bound R_Dropout <= 1/4||W||^4 + H/4 R_EL2 is false (H = K "
        "= 1, W = h = 1 gives 1 > 1/2; any net whose R_Dropout exceeds 3/4 2^(-2/3) "
        "(||W||^2 H R_EL2)^(2/3) violates it after the rescaling (W/c, c h), which changes "
        "neither the function nor the dropout loss); correct: R_Dropout <= ||W||_F^2 H R_EL2 "
        "<= 1/4 (||W||_F^2 + H R_EL2)^2.")
    return CheckResult(CLAIM, TITLE, tuple(comps), (p1, p2, p3), summary)
