"""L-F1a: Fig. 1a learning curves against exact finite-N computations (and eq. 25 for ReLU).

Conventions of :mod:`perceptron_theory.theory.generalization` (sum convention
``1/2 sum_p (y_p - g(w.x_p))^2 + zeta/2 |w|^2``, ``x ~ N(0, I/N)``, ``|w*|^2 = N``,
``S = 0.25``, eps without the label noise).

Independent computations (numpy only; nothing here calls the closed forms):

* **Linear student, finite N.** For each alpha and N, draw ``X`` (P x N), ``w*`` uniform on
  the sphere of radius sqrt(N) and the label noise; solve min-norm (``np.linalg.lstsq``) and
  ridge (``np.linalg.solve``) and take eps = |w - w*|^2 / N (*realized*). The same draw
  also gives the *conditional* mean over ``w*`` and noise,
  ``E[eps | X] = (1/N) sum_i (zeta^2 + S lam_i)/(lam_i + zeta)^2`` over the eigenvalues of
  ``X^T X`` (zero eigenvalues count 1 each at zeta = 0): same expectation, O(1/N)
  fluctuations instead of O(1/sqrt N), so the finite-size trend is resolved. Realized and
  conditional means must agree (paired difference within 4 SE).
* **Finite-size trend.** Per curve and alpha the gap (conditional mean - theory) is fitted
  by ``c/N`` (slope ``c``, reported) and by ``a + c/N``: the extrapolation ``a`` must be 0
  within 4 SE, ``|gap|`` must not grow with N, and at each N
  ``|gap| <= 4 SE + |c|/N`` (the estimated O(1/N) allowance).
* **Exact finite-N min-norm.** The inverse-Wishart mean (``min_norm_finite_n``) must match the
  conditional mean at every N within 4 SE, with no finite-size allowance.
* **zeta* = S.** ``optimal_ridge`` (bounded Brent on the closed form) against S, to 1e-6.
* **ReLU student, eq. 25.** At finite N: (i) the min-norm least-squares fit of the y > 0
  samples alone (the model eq. 25 actually describes); (ii) the min-norm *global
  minimizer* of 1/2 sum (y - relu(w.x))^2, i.e. least-distance programming (Lawson-Hanson,
  NNLS) for ``w.x_p = y_p`` (y_p > 0), ``w.x_p <= 0`` (y_p <= 0); (iii) L-BFGS-B from random
  initializations (keep the lowest training loss), which stalls on dead ReLU units.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, nnls

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import generalization as gen
from validation._core import CheckResult, compare, expect, register

CLAIM = "L-F1a"
TITLE = ("Fig. 1a learning curves (min-norm, ridge, BN as decay) vs exact finite N; "
         "zeta* = S; ReLU eq. 25 vs exhaustive training")

NOISE = 0.25
BATCH = 32  # the paper's M for Fig. 1a
ALPHAS = (0.2, 0.5, 0.8, 1.25, 1.5, 2.0, 3.0)  # avoids alpha = 1 (min-norm diverges)
ZETA_STAR_ALPHAS = (0.2, 0.5, 0.8, 1.0, 1.25, 2.0, 3.0)
ZETA_STAR_NOISES = (0.25, 0.1, 1.0)
SIZES = {
    True: {"N": (100, 200, 400), "seeds": (200, 100, 40), "realized": (40, 16, 6),
           "relu_N": (100, 200), "relu_seeds": (30, 20), "lbfgs_seeds": 4, "lbfgs_inits": 3},
    False: {"N": (100, 200, 400, 800), "seeds": (1000, 500, 200, 100),
            "realized": (200, 100, 40, 20), "relu_N": (100, 200, 400),
            "relu_seeds": (200, 100, 50), "lbfgs_seeds": 20, "lbfgs_inits": 5},
}
RELU_ALPHAS = (0.5, 1.0, 1.5)
RELU_NOISES = (0.0, 0.25)
RELU_INFEASIBLE_ALPHA = 1.7  # with S = 0.25 no zero-excess-loss ReLU student exists here

# curve name -> (closed form eps(alpha), finite-N zeta(alpha))
CURVES = {
    "min-norm": (lambda a: gen.learning_curve("linear", "min-norm", a, noise=NOISE).eps,
                 lambda a: 0.0),
    "ridge zeta=S": (lambda a: gen.learning_curve("linear", "ridge", a, noise=NOISE,
                                                  zeta=NOISE).eps,
                     lambda a: NOISE),
    "zeta=1/(2M) plug-in": (lambda a: gen.learning_curve("linear", "bn", a, noise=NOISE,
                                                         batch_size=BATCH,
                                                         decay_convention="sum").eps,
                            lambda a: 1.0 / (2 * BATCH)),
    "zeta=alpha/(2M) per-sample": (lambda a: gen.learning_curve("linear", "bn", a, noise=NOISE,
                                                                batch_size=BATCH).eps,
                                   lambda a: a / (2 * BATCH)),
}


# ------------------------------------------------------------------- finite N, linear
def _linear_draw(N: int, alpha: float, zetas: dict, rng, realized: bool):
    """One draw: conditional (and, if ``realized``, realized) eps for every curve."""
    P = int(round(alpha * N))
    X = rng.standard_normal((P, N)) / np.sqrt(N)
    w_star = rng.standard_normal(N)
    w_star *= np.sqrt(N) / np.linalg.norm(w_star)
    y = X @ w_star + np.sqrt(NOISE) * rng.standard_normal(P)
    gram = X @ X.T if P < N else X.T @ X
    lam = np.linalg.eigvalsh(gram)  # the min(P, N) eigenvalues, all > 0 a.s.
    n_zero = N - min(P, N)
    real, cond = {}, {}
    for name, z in zetas.items():
        cond[name] = float((n_zero + np.sum((z * z + NOISE * lam) / (lam + z) ** 2)) / N)
        if not realized:
            continue
        if z == 0.0:
            w = np.linalg.lstsq(X, y, rcond=None)[0]
        elif P < N:
            w = X.T @ np.linalg.solve(gram + z * np.eye(P), y)
        else:
            w = np.linalg.solve(gram + z * np.eye(N), X.T @ y)
        real[name] = float(np.sum((w - w_star) ** 2) / N)
    return P, real, cond


def linear_finite_n(N: int, n_seeds: int, n_realized: int, seed: int) -> dict:
    """Means and standard errors per (curve, alpha): conditional (``n_seeds`` draws),
    realized and realized - conditional (the first ``n_realized`` of them)."""
    out = {}
    se = lambda v: float(v.std(ddof=1) / np.sqrt(v.size))  # noqa: E731
    for k, alpha in enumerate(ALPHAS):
        rng = np.random.default_rng([seed, N, k])
        zetas = {name: float(zf(alpha)) for name, (_, zf) in CURVES.items()}
        rows = [_linear_draw(N, alpha, zetas, rng, i < n_realized) for i in range(n_seeds)]
        P = rows[0][0]
        for name in CURVES:
            c = np.array([row[2][name] for row in rows])
            r = np.array([row[1][name] for row in rows[:n_realized]])
            out[(name, alpha)] = {"P": P, "real": (float(r.mean()), se(r)),
                                  "cond": (float(c.mean()), se(c)),
                                  "diff": (float((r - c[:n_realized]).mean()),
                                           se(r - c[:n_realized]))}
    return out


def fit_inverse_n(Ns, gaps, ses) -> dict:
    """Weighted least squares of the gap on 1/N: through 0 (``c0``) and with intercept."""
    x, g, w = 1.0 / np.asarray(Ns, float), np.asarray(gaps, float), 1.0 / np.asarray(ses) ** 2
    c0 = float(np.sum(w * x * g) / np.sum(w * x * x))
    A = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(A.T @ (w[:, None] * A))
    a, c = cov @ (A.T @ (w * g))
    return {"c0": c0, "a": float(a), "c": float(c), "se_a": float(np.sqrt(cov[0, 0])),
            "se_c": float(np.sqrt(cov[1, 1]))}


# --------------------------------------------------------------------- finite N, ReLU
def _eps_relu(w, w_star, N):
    return 1.0 + 0.5 * (w @ w) / N - (w @ w_star) / N


def _relu_loss(w, X, y):
    s = X @ w
    r = y - np.maximum(s, 0.0)
    return 0.5 * float(r @ r), -(X.T @ (r * (s > 0)))


def least_distance(G, h):
    """``argmin |v|`` subject to ``G v >= h`` (Lawson & Hanson, ch. 23, via NNLS); None if empty."""
    m, n = G.shape
    if m == 0:
        return np.zeros(n)
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(n + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * max(m, n))
    r = E @ u - f
    if abs(r[-1]) < 1e-10:
        return None
    return -r[:n] / r[-1]


def relu_min_norm_interpolator(X, y):
    """Min-norm w with relu(w.x_p) = y_p (y_p > 0) and w.x_p <= 0 (y_p <= 0), or None.

    These are exactly the w reaching the smallest possible training loss
    ``1/2 sum_{y_p <= 0} y_p^2`` of ``1/2 sum_p (y_p - relu(w.x_p))^2``.
    """
    pos = y > 0
    A, B = X[pos], X[~pos]
    U, s, Vt = np.linalg.svd(A, full_matrices=True)
    r = int(np.sum(s > 1e-10 * s[0]))
    if r < A.shape[0]:
        return None  # more positive samples than dimensions: no exact fit
    w0 = Vt[:r].T @ ((U[:, :r].T @ y[pos]) / s[:r])
    Z = Vt[r:].T
    v = least_distance(-(B @ Z), B @ w0)
    if v is None:
        return None
    w = w0 + Z @ v
    return w if np.all(B @ w <= 1e-8) else None


def relu_finite_n(N: int, alpha: float, S: float, n_seeds: int, seed: int,
                  lbfgs_inits: int = 0, lbfgs_seeds: int = 0) -> dict:
    """Mean/SE of eps: the y>0-only fit, the min-norm interpolator, L-BFGS-B (random inits)."""
    rng = np.random.default_rng([seed, N, int(1000 * alpha), int(1000 * S)])
    rows = {"pos_only": [], "interp": [], "feasible": [], "lbfgs": [], "lbfgs_excess": []}
    for i in range(n_seeds):
        P = int(round(alpha * N))
        X = rng.standard_normal((P, N)) / np.sqrt(N)
        w_star = rng.standard_normal(N)
        w_star *= np.sqrt(N) / np.linalg.norm(w_star)
        y = X @ w_star + np.sqrt(S) * rng.standard_normal(P)
        pos = y > 0
        w_pos = np.linalg.lstsq(X[pos], y[pos], rcond=None)[0]
        rows["pos_only"].append(_eps_relu(w_pos, w_star, N))
        w_int = relu_min_norm_interpolator(X, y)
        rows["feasible"].append(w_int is not None)
        if w_int is not None:
            rows["interp"].append(_eps_relu(w_int, w_star, N))
        if lbfgs_inits and i < lbfgs_seeds:
            floor = 0.5 * float(np.sum(y[~pos] ** 2))  # global minimum when feasible
            best = None
            for _ in range(lbfgs_inits):
                o = minimize(_relu_loss, rng.standard_normal(N), args=(X, y), jac=True,
                             method="L-BFGS-B",
                             options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-9})
                if best is None or o.fun < best.fun:
                    best = o
            rows["lbfgs"].append(_eps_relu(best.x, w_star, N))
            rows["lbfgs_excess"].append(best.fun - floor)
    out = {}
    for k, v in rows.items():
        v = np.asarray(v, dtype=float)
        out[k] = ((float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)), int(v.size))
                  if v.size > 1 else (float("nan"), float("nan"), int(v.size)))
    return out


# ------------------------------------------------------------------------------ check
@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 4.1, Fig. 1a,b, App. D.2 eq. 25")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    cfg = SIZES[bool(quick)]
    comps, lines = [], []
    Ns = cfg["N"]
    fn = {N: linear_finite_n(N, s, r, seed)
          for N, s, r in zip(Ns, cfg["seeds"], cfg["realized"], strict=True)}

    # ---- linear: closed forms vs finite N, with the estimated 1/N allowance
    slopes = {}
    for name, (eps_fn, _) in CURVES.items():
        th = {a: float(eps_fn(a)[0]) for a in ALPHAS}
        for a in ALPHAS:
            gaps = [fn[N][(name, a)]["cond"][0] - th[a] for N in Ns]
            ses = [fn[N][(name, a)]["cond"][1] for N in Ns]
            f = fit_inverse_n(Ns, gaps, ses)
            slopes[(name, a)] = f
            q = f"{name}, alpha={a}"
            comps.append(compare(CLAIM, f"{q}: N->inf extrapolation of finite-N eps", th[a],
                                 th[a] + f["a"], stderr=f["se_a"], note=(
                                     f"weighted fit gap = a + c/N over N={list(Ns)}: "
                                     f"c = {f['c']:.3g} +- {f['se_c']:.2g}; through 0: "
                                     f"c0 = {f['c0']:.3g}")))
            Nm = Ns[-1]
            d = fn[Nm][(name, a)]["cond"]
            comps.append(compare(CLAIM, f"{q}: eps at N={Nm}", th[a], d[0], stderr=d[1],
                                 atol=abs(f["c0"]) / Nm,
                                 note=f"allowance |c0|/N = {abs(f['c0']) / Nm:.2g} "
                                      "(estimated finite-size term)"))
            se_comb = float(np.hypot(ses[0], ses[-1]))
            comps.append(expect(CLAIM, f"{q}: |gap| at N={Nm} <= |gap| at N={Ns[0]}",
                                abs(gaps[0]), abs(gaps[-1]), "<=", stderr=se_comb,
                                n_sigma=4.0, note="the finite-size gap shrinks"))
        # realized vs conditional (exact identity in expectation), pooled over N
        zs = []
        for a in ALPHAS:
            ds = [fn[N][(name, a)]["diff"] for N in Ns]
            w = np.array([1.0 / d[1] ** 2 for d in ds])
            m = float(np.sum(w * np.array([d[0] for d in ds])) / np.sum(w))
            zs.append(abs(m) * np.sqrt(np.sum(w)))
        comps.append(expect(CLAIM, f"{name}: max_alpha |realized - conditional| / SE", 4.0,
                            float(max(zs)), "<=", note="lstsq/solve with drawn w*, noise "
                            "vs E[eps | X] from the eigenvalues; pooled over N"))

    # ---- exact finite-N min-norm (inverse Wishart): no allowance
    for N in Ns:
        for a in ALPHAS:
            d = fn[N][("min-norm", a)]
            iw = float(gen.min_norm_finite_n(d["P"], N, NOISE)[0])
            comps.append(compare(CLAIM, f"min-norm exact finite-N mean, N={N}, P={d['P']}", iw,
                                 d["cond"][0], stderr=d["cond"][1],
                                 note="inverse-Wishart mean; no finite-size allowance"))

    # ---- zeta* = S
    worst = 0.0
    for S in ZETA_STAR_NOISES:
        opt = gen.optimal_ridge(np.array(ZETA_STAR_ALPHAS), S)
        for a, z, ok in zip(ZETA_STAR_ALPHAS, opt.zeta, opt.converged, strict=True):
            comps.append(compare(CLAIM, f"zeta* (minimize_scalar) at alpha={a}, S={S}", S,
                                 z if ok else float("nan"), atol=1e-6,
                                 note="d eps/d zeta = (S - zeta)(zeta G)''"))
            worst = max(worst, abs(z - S))
    ps_opt = {a: NOISE / a for a in (0.5, 3.0)}

    # ---- ReLU: eq. 25 vs finite N
    relu = {}
    for S in RELU_NOISES:
        for a in RELU_ALPHAS:
            th = float(gen.relu_exhaustive(a, S).eps[0])
            lb = (cfg["lbfgs_inits"], cfg["lbfgs_seeds"])
            res = {N: relu_finite_n(N, a, S, ns, seed, *(lb if N == cfg["relu_N"][0] else ()))
                   for N, ns in zip(cfg["relu_N"], cfg["relu_seeds"], strict=True)}
            relu[(S, a)] = (th, res)
            Nr = cfg["relu_N"]
            gaps = [res[N]["pos_only"][0] - th for N in Nr]
            ses = [res[N]["pos_only"][1] for N in Nr]
            f = fit_inverse_n(Nr, gaps, ses)
            d = res[Nr[-1]]["pos_only"]
            comps.append(compare(CLAIM, f"ReLU eq.25 vs min-norm fit of y>0 samples only, "
                                        f"S={S}, alpha={a}, N={Nr[-1]}", th, d[0],
                                 stderr=d[1], atol=abs(f["c0"]) / Nr[-1],
                                 note=f"allowance |c0|/N, c0 = {f['c0']:.3g} from N={list(Nr)}"))
            it = res[Nr[-1]]["interp"]
            feas = res[Nr[-1]]["feasible"][0]
            if S == 0.0 and a >= 1.0:  # at alpha = 0.5 the gap (~0.025) needs more draws
                comps.append(expect(
                    CLAIM, f"ReLU S=0, alpha={a}: eq.25 - eps(min-norm global minimizer), "
                           f"N={Nr[-1]}", 4.0 * it[1], th - it[0], ">=",
                    note=f"eq.25 = {th:.4f}, min-norm global minimizer {it[0]:.4f} +- "
                         f"{it[1]:.2g} (feasible in {feas:.0%}); the paper's Prop. 5 drops "
                         "the w.x <= 0 constraints of the y <= 0 samples"))
    # with noise, zero excess training loss becomes infeasible before alpha = 2
    far = relu_finite_n(cfg["relu_N"][-1], RELU_INFEASIBLE_ALPHA, 0.25, 10, seed)
    comps.append(expect(CLAIM, f"ReLU S=0.25, alpha={RELU_INFEASIBLE_ALPHA}: fraction of draws "
                               "with a zero-excess-loss student", 0.2, far["feasible"][0], "<=",
                        note="eq. 25 assumes every y>0 sample is fitted exactly and ignores "
                             "y<=0 samples"))

    # ---- plots
    plots = _plots(fn, Ns, relu, cfg)
    # ---- summary
    for (S, a), (th, res) in relu.items():
        N0, N1 = cfg["relu_N"][0], cfg["relu_N"][-1]
        lb = res[N0]["lbfgs"]
        lines.append(f"S={S}, alpha={a}: eq.25 {th:.4f}; y>0-only fit {res[N1]['pos_only'][0]:.4f}"
                     f"; min-norm global minimizer {res[N1]['interp'][0]:.4f} (feasible "
                     f"{res[N1]['feasible'][0]:.0%}); L-BFGS-B random init (N={N0}) "
                     f"{lb[0]:.4f}, excess train loss {res[N0]['lbfgs_excess'][0]:.3g}")
    sl = ", ".join(f"{n}@{a}: c={slopes[(n, a)]['c0']:.2g}" for n in CURVES for a in (0.5, 2.0))
    e_plug, e_ps = (float(CURVES[k][0](3.0)[0]) for k in ("zeta=1/(2M) plug-in",
                                                          "zeta=alpha/(2M) per-sample"))
    summary = (
        "Linear student: min-norm, ridge (zeta = S) and the BN-as-decay curves (zeta = 1/(2M), "
        f"M = {BATCH}, plugged in directly as the paper does, and alpha/(2M) from the paper's "
        "per-sample WN loss) match exact finite-N solutions; the N->inf extrapolations agree "
        f"within 4 SE, the gap falls like c/N ({sl}). The inverse-Wishart finite-N min-norm "
        f"formula matches at every N without allowance. zeta* = S to {worst:.1e} (the paper's "
        "'zeta = 0.25 = noise' holds in the sum convention only: in its per-sample mean-loss "
        f"form the optimum is S/alpha, e.g. {ps_opt[0.5]:g} at alpha = 0.5). Plug-in vs "
        f"per-sample at alpha = 3: eps = {e_plug:.4f} vs {e_ps:.4f} (issue 4 decides which BN "
        "follows). ReLU eq. 25 (1 - alpha/4 + alpha S/(2(2-alpha))) is reproduced by the "
        "min-norm fit of the y>0 samples alone, NOT by exhaustive training: the global "
        "minimizers must also keep w.x <= 0 on y<=0 samples; their min-norm member has lower "
        "eps at S = 0 and stops existing near alpha ~ 1.5 at S = 0.25; L-BFGS-B from random "
        "inits stalls on dead units (positive excess training loss). " + " | ".join(lines))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)


def clipped(y, cap: float = 1.6) -> np.ndarray:
    """Display only: clip a curve at ``cap`` (the min-norm divergence at alpha = 1)."""
    y = np.asarray(y, dtype=float)
    return np.where(np.isfinite(y) & (y < cap), y, cap)


def _plots(fn, Ns, relu, cfg) -> tuple:
    grid = np.linspace(0.02, 3.0, 150)
    ser = []
    for name, (eps_fn, _) in CURVES.items():
        ser.append(series(name, grid, clipped(eps_fn(grid))))
    Nm = Ns[-1]
    for name in CURVES:
        pts = [(a, *fn[Nm][(name, a)]["cond"]) for a in ALPHAS]
        pts = [p for p in pts if p[1] <= 1.6]
        ser.append(series(f"{name}, N={Nm}", [p[0] for p in pts], [p[1] for p in pts],
                          yerr=[p[2] for p in pts], style="points"))
    p1 = Plot(f"Fig. 1a theory vs finite N (linear student, S = {NOISE}; clipped at 1.6)",
              "alpha = P/N", "eps (no label noise)", tuple(ser))
    ser2 = []
    for name in CURVES:
        for a in (0.5, 2.0):
            th = float(CURVES[name][0](a)[0])
            g = [fn[N][(name, a)]["cond"][0] - th for N in Ns]
            e = [fn[N][(name, a)]["cond"][1] for N in Ns]
            ser2.append(series(f"{name}, alpha={a}", [1.0 / N for N in Ns], g, yerr=e,
                               style="points"))
    p2 = Plot("finite-size gap (conditional mean - theory) vs 1/N", "1/N", "gap", tuple(ser2))
    ser3 = []
    ag = np.linspace(0.02, 1.9, 100)
    for S in RELU_NOISES:
        ser3.append(series(f"eq. 25, S={S}", ag, gen.relu_exhaustive(ag, S).eps))
        Nr = cfg["relu_N"][-1]
        for key, lab in (("pos_only", "y>0-only fit"), ("interp", "min-norm global minimizer")):
            pts = [(a, *relu[(S, a)][1][Nr][key][:2]) for a in RELU_ALPHAS]
            pts = [p for p in pts if np.isfinite(p[1])]
            ser3.append(series(f"{lab}, S={S}, N={Nr}", [p[0] for p in pts],
                               [p[1] for p in pts], yerr=[p[2] for p in pts], style="points"))
        N0 = cfg["relu_N"][0]
        pts = [(a, *relu[(S, a)][1][N0]["lbfgs"][:2]) for a in RELU_ALPHAS]
        ser3.append(series(f"L-BFGS-B random init, S={S}, N={N0}", [p[0] for p in pts],
                           [p[1] for p in pts], yerr=[p[2] for p in pts], style="points"))
    p3 = Plot("ReLU student: eq. 25 vs exhaustive training", "alpha = P/N", "eps", tuple(ser3))
    return (p1, p2, p3)
