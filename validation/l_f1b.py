r"""L-F1b: the ReLU student's learning curve (Luo et al. Fig. 1b) from the replica solver.

Three things are compared, each against an independent computation:

1. **Closed forms** -- :mod:`perceptron_theory.theory.replica` reproduces the linear
   student's min-norm and ridge (Krogh-Hertz) curves of
   :mod:`perceptron_theory.theory.generalization` (also a Gibbs sample at finite
   :math:`\beta`) to :math:`10^{-8}`.
2. **Exhaustive training of the ReLU student without decay** (:math:`\zeta\to0^+`): below
   the interpolation threshold the global minimizers of the training loss are the polyhedron
   :math:`\{w\cdot x_p = y_p\ (y_p > 0),\ w\cdot x_p \le 0\ (y_p \le 0)\}`; its min-norm
   point is a convex QP, solved exactly at finite N (least-distance programming,
   :func:`perceptron_theory.simulate.finite_n.relu_min_norm_interpolator`, the same
   solver as L-F1a's). The replica saddle point agrees with it;
   Luo et al.'s eq. (25) does not (it is the min-norm fit of the :math:`y>0` half alone).
3. **The ReLU student with gamma decay** (open in the paper, Sec. 4.1): the replica curve
   vs finite-N training of :math:`\frac12\sum_p(y_p - \mathrm{relu}(w\cdot x_p))^2 +
   \frac\zeta2|w|^2`. The loss is non-convex (a positive-label pattern can be "dead",
   :math:`w\cdot x_p < 0`), so training is a local search: an exact active-set Newton
   method (piecewise quadratic; patterns with :math:`y_p\le0` pinned at
   :math:`w\cdot x_p = 0` carry multipliers in :math:`[0, |y_p|]`;
   :mod:`perceptron_theory.simulate.finite_n`) from several starts,
   keeping the lowest energy -- the "exhaustive training" the theory describes.

Tolerances: 4 standard errors over seeds plus an :math:`O(1/N)` allowance, the difference
of the means at N and N/2 (the bias at N of a :math:`c/N` correction), stated per record.

Search bias: the landscape has many near-degenerate minima, and the test error of the best
minimum found rises with the number of starts towards the replica value (N = 200, 10 seeds:
zeta = 1/4, alpha = 1.5: 0.717, 0.725, 0.729, 0.732 for 1, 4, 8, 16 starts, replica 0.729;
zeta = 0, alpha = 2.5: 0.797, 0.828, 0.843, 0.853 for 1, 4, 16, 128 starts, replica 0.830,
SE 0.02). It is largest near the zeta -> 0 peak and grows with N, so the checks stay at
alpha >= 3 for zeta = 0 and the N = 400 points near alpha = 2 (zeta = 1/32) sit ~2-4 SE
low with 16 starts.

4. **The BN ReLU student by offline SGD** (the paper's squares, M = 16): method ``"bn"`` of
   :func:`perceptron_theory.simulate.offline.run` beside ``"wn-decay"`` at
   :math:`\zeta = 1/(2M)` per sample on the same training sets. WN + decay must land on
   the replica curve at :math:`\zeta = \alpha/(2M)` (4 SE + the O(1/N) allowance from two
   N + the change over the second half of training). BN is compared paired with WN:
   equal far from the :math:`\zeta\to0` peak, larger (by more than 4 SE) near it, where
   its error grows with the length of the run (alpha = 2, same 8 training sets: N = 1024:
   0.756 and 0.793 after 300 and 600 epochs; N = 512: 0.742, 0.799, 0.823 after 300, 600,
   1000 epochs; WN + decay stays at 0.71-0.72) -- BN normalizes by training-set
   statistics, so its implicit decay is not a decay on :math:`|w|^2` (see L-F1a for the
   linear student, where this is exact). The effective decay (replica eps equal to BN's)
   is reported per alpha.

Decay conventions: ``zeta`` is the sum convention of :mod:`.replica`; Luo et al.'s
per-sample WN loss :math:`\frac1P\sum_p(y_p - g)^2 + \zeta_{ps}\gamma^2` is
:math:`\zeta = \alpha\zeta_{ps}` (:func:`generalization.sum_decay_from_per_sample`). Their
Fig. 1b plug-in value :math:`\zeta = 1/(2M)`, :math:`M = 16`, is drawn in both readings.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from perceptron_theory.plotting import Plot, series
from perceptron_theory.simulate import finite_n, offline
from perceptron_theory.theory import batchnorm, replica
from perceptron_theory.theory import generalization as gen
from validation._core import CheckResult, compare, expect, register

CLAIM = "L-F1b"
TITLE = ("Fig. 1b: ReLU student learning curves -- replica saddle point vs closed forms, "
         "min-norm interpolators and finite-N training with gamma decay")

NOISE = 0.25  # S, the paper's label-noise variance
BATCH_SIZE = 16  # M of the paper's ReLU experiment
ZETA_PLUGIN = 1.0 / (2 * BATCH_SIZE)  # the paper's zeta = 1/(2M)
ZETA_OPT_LINEAR = NOISE  # the linear student's optimal decay, the paper's second value

SIZES = {
    True: {"N": (100, 200), "seeds": (10, 6), "inits": 8, "mn_N": (200, 400),
           "mn_seeds": (16, 12),
           "cases": ((0.0, 3.0), (ZETA_PLUGIN, 2.0), (0.25, 1.5)), "alphas_mn": (0.5, 1.0),
           "curve": 40},
    False: {"N": (200, 400), "seeds": (16, 8), "inits": 16, "mn_N": (400, 800),
            "mn_seeds": (32, 16),
            "cases": tuple((z, a) for z in (ZETA_PLUGIN, 0.25) for a in (0.5, 1.0, 2.0, 3.0))
            + ((0.0, 3.0), (0.0, 4.0)),
            "alphas_mn": (0.5, 1.0, 1.3), "curve": 80},
}


# ================================================================= finite-N measurement
def finite_n_eps(alpha: float, N: int, noise: float, zeta: float, n_seeds: int, seed: int,
                 *, n_init: int = 3, min_norm: bool = False) -> dict:
    """Mean test error of the trained (or min-norm) ReLU student over seeds, with its SE.

    The test error of a weight vector is exact: :math:`1 + Q/2 - T`, :math:`Q = |w|^2/N`,
    :math:`T = w\\cdot w^*/N` (Gaussian inputs, linear teacher, no label noise).
    """
    vals, energies, fails = [], [], 0
    for k in range(n_seeds):
        rng = np.random.default_rng([seed, k, N, int(round(1000 * alpha)),
                                     int(round(1e6 * zeta))])
        X, y, w_star = finite_n.teacher_data(N, alpha, noise, rng)
        if min_norm:
            w = finite_n.relu_min_norm_interpolator(X, y)
        else:
            w, _ = finite_n.train_relu(X, y, zeta, n_init, rng)
        ok = w is not None
        if not ok:
            fails += 1
            continue
        Q, T = float(w @ w) / N, float(w @ w_star) / N
        vals.append(1.0 + Q / 2.0 - T)
        energies.append(finite_n.relu_energy(X, y, w, zeta) / N)
    v = np.asarray(vals)
    n = v.size
    return {"mean": float(v.mean()) if n else math.nan,
            "se": float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf,
            "values": v.tolist(), "energy": float(np.mean(energies)) if n else math.nan,
            "n": int(n), "fails": fails, "N": N}


def _two_n(alpha, noise, zeta, cfg, seed, **kw):
    """Measurements at N/2 and N: the larger N's mean, SE and the O(1/N) allowance."""
    (n1, n2), (s1, s2) = ((cfg["mn_N"], cfg["mn_seeds"]) if kw.get("min_norm")
                          else (cfg["N"], cfg["seeds"]))
    m1 = finite_n_eps(alpha, n1, noise, zeta, s1, seed, n_init=cfg["inits"], **kw)
    m2 = finite_n_eps(alpha, n2, noise, zeta, s2, seed, n_init=cfg["inits"], **kw)
    # c/N bias at n2 estimated from the two means: (m1 - m2) * n1 / (n2 - n1)
    allowance = abs(m1["mean"] - m2["mean"]) * n1 / (n2 - n1)
    return m1, m2, allowance, m2["se"]


# ============================================== BN ReLU student, offline simulation
# The BN squares of Fig. 1b: multi-epoch SGD of the batch-normalized ReLU student
# (simulate.offline, method "bn": batch statistics, learned beta, running averages at test
# time) and the WN + gamma-decay control (method "wn-decay", the model the replica solver
# describes), on the same training sets (same seeds).
BN_EPOCHS = {0.5: 600, 1.0: 1000, 1.5: 1000, 2.0: 600, 3.0: 150, 4.0: 150}
BN_SIZES = {
    True: {"runs": {2.0: (512, 1024), 3.0: (512, 1024)}, "seeds": 8},
    False: {"runs": {a: (2048, 4096) for a in (0.5, 1.0, 2.0, 3.0, 4.0)}, "seeds": 8},
}
ZETA_WN = 1.0 / (2 * BATCH_SIZE)  # per-sample decay of the WN control: zeta_sum = alpha/(2M)
# near the zeta -> 0 peak (alpha_c ~ 1.47) BN regularizes less than WN + decay
PEAK_BAND = (1.0, 2.5)
# BN read as WN + gamma decay: sum-convention zeta(alpha) of each candidate
BN_CANDIDATES = {
    "1/(2M) plug-in": lambda a: ZETA_PLUGIN,
    "alpha/(2M) per sample": lambda a: a * ZETA_PLUGIN,
    "3alpha/(4M) real batch": lambda a: a * batchnorm.equivalent_decay_real_batch(
        BATCH_SIZE, convention="decay2"),
}


def _epochs(alpha: float) -> int:
    return BN_EPOCHS.get(alpha, 600)


def bn_offline(N: int, alpha: float, n_seeds: int, seed: int = 0, *, epochs=None) -> dict:
    """BN and WN + decay (``ZETA_WN`` per sample) ReLU students on the same ``n_seeds``
    training sets (:func:`perceptron_theory.simulate.offline.bn_with_wn_decay`), summarized
    by :func:`_bn_summary_of`."""
    return _bn_summary_of(offline.bn_with_wn_decay(
        "relu", N=N, alpha=alpha, epochs=int(epochs or _epochs(alpha)), batch_size=BATCH_SIZE,
        noise=NOISE, zeta=ZETA_WN, n_seeds=n_seeds, seed=seed))


def _bn_summary_of(run: offline.BNRuns) -> dict:
    """Final test errors (mean, SE), BN - WN paired, and the change over the second half of
    training (records at epochs 0, E/2, E)."""
    N, alpha, E, bn, wn = run.N, run.alpha, run.epochs, run.bn, run.wn
    n_seeds = run.seeds.size
    se = lambda v: float(v.std(ddof=1) / math.sqrt(v.size))  # noqa: E731
    d = bn.eps[:, -1] - wn.eps[:, -1]
    drift = bn.eps[:, -1] - bn.eps[:, 1]  # paired change over the second half
    return {"N": N, "alpha": alpha, "epochs": E, "seeds": int(n_seeds),
            "bn_half": float(bn.eps[:, 1].mean()), "bn_drift": (float(drift.mean()), se(drift)),
            "bn": (float(bn.eps[:, -1].mean()), se(bn.eps[:, -1])),
            "wn": (float(wn.eps[:, -1].mean()), se(wn.eps[:, -1])),
            "bn_minus_wn": (float(d.mean()), se(d)),
            "bn_conv": float(abs(bn.eps[:, -1].mean() - bn.eps[:, 1].mean())),
            "wn_conv": float(abs(wn.eps[:, -1].mean() - wn.eps[:, 1].mean())),
            "beta": float(bn.beta[:, -1].mean()), "gamma": float(bn.gamma[:, -1].mean()),
            "diverged": int(bn.diverged.sum() + wn.diverged.sum())}


def bn_runs(cfg: dict, seed: int) -> dict:
    """:func:`bn_offline` at every ``(alpha, N)`` of ``cfg["runs"]`` (the library's
    :func:`~perceptron_theory.simulate.offline.bn_runs`)."""
    runs = offline.bn_runs("relu", cfg["runs"], epochs=_epochs, n_seeds=cfg["seeds"],
                           seed=seed, batch_size=BATCH_SIZE, noise=NOISE, zeta=ZETA_WN)
    return {key: _bn_summary_of(r) for key, r in runs.items()}


def effective_decay(alpha: float, eps: float) -> float:
    """Sum-convention zeta with replica eps(zeta) = ``eps`` on ``[0, zeta*]`` (eps falls
    there); an end of the interval if ``eps`` is outside the range."""
    f = lambda lz: replica.solve(alpha, student="relu", noise=NOISE,  # noqa: E731
                                 zeta=float(np.exp(lz))).eps
    opt = minimize_scalar(f, bounds=(np.log(1e-3), np.log(2.0)), method="bounded",
                          options={"xatol": 1e-3})
    lo, hi = np.log(1e-6), float(opt.x)
    g = lambda lz: f(lz) - eps  # noqa: E731
    if g(lo) * g(hi) > 0:
        return float(np.exp(lo if abs(g(lo)) < abs(g(hi)) else hi))
    return float(np.exp(brentq(g, lo, hi, xtol=1e-6)))


def bn_comparisons(cfg: dict, runs: dict):
    """Comparison records of the BN section and the points at the largest N."""
    comps, pts = [], {}
    for a in sorted(cfg["runs"]):
        N1, N2 = cfg["runs"][a][0], cfg["runs"][a][-1]
        o1, o2 = runs[(a, N1)], runs[(a, N2)]
        cand = {n: replica.solve(a, student="relu", noise=NOISE, zeta=z(a)).eps
                for n, z in BN_CANDIDATES.items()}
        # WN + decay control against the replica curve it realizes (alpha/(2M))
        th = cand["alpha/(2M) per sample"]
        allow = abs(o1["wn"][0] - o2["wn"][0]) * N1 / (N2 - N1) + o2["wn_conv"]
        comps.append(compare(CLAIM, f"WN + decay ReLU (SGD), zeta=alpha/(2M), alpha={a}, "
                                    f"N={N2} vs replica", th, o2["wn"][0],
                             stderr=o2["wn"][1], atol=allow, note=(
                                 f"{o2['seeds']} seeds, {o2['epochs']} epochs from small "
                                 f"init; allowance {allow:.3g} = O(1/N) from N={N1} "
                                 f"({o1['wn'][0]:.4f}) + change over the last half")))
        allow_bn = abs(o1["bn"][0] - o2["bn"][0]) * N1 / (N2 - N1) + o2["bn_conv"]
        eff = float(np.hypot(o2["bn"][1], allow_bn))
        z_eff = effective_decay(a, o2["bn"][0])
        pts[a] = {"bn": o2["bn"], "wn": o2["wn"], "allow": allow_bn, "N": N2,
                  "zeta_eff": z_eff, "candidates": cand}
        dist = ", ".join(f"{n}: {v:.4f} ({(o2['bn'][0] - v) / eff:+.1f} SE)"
                         for n, v in cand.items())
        where = (f"BN {o2['bn'][0]:.4f} (beta {o2['beta']:+.3f}); replica at {dist}; "
                 f"zeta_eff = {z_eff:.4g} = {z_eff * BATCH_SIZE / a:.3g} alpha/M")
        if not PEAK_BAND[0] <= a < PEAK_BAND[1]:
            m, s = o2["bn_minus_wn"]
            comps.append(compare(CLAIM, f"BN ReLU - WN+decay (alpha/(2M)), same data, "
                                        f"alpha={a}, N={N2}", 0.0, m, stderr=s,
                                 atol=o2["bn_conv"] + o2["wn_conv"], note=where))
        else:  # near the peak BN regularizes less than WN + decay, and keeps drifting
            m, s = o2["bn_minus_wn"]
            comps.append(expect(CLAIM, f"BN ReLU - WN+decay (alpha/(2M)), same data, "
                                       f"alpha={a}, N={N2}: BN regularizes less near the peak",
                                4.0 * s, m, ">=", note=(
                                    where + f"; BN {o2['bn_half']:.4f} -> "
                                    f"{o2['bn'][0]:.4f} over epochs {o2['epochs'] // 2}-"
                                    f"{o2['epochs']} (paired change {o2['bn_drift'][0]:+.4f} +- "
                                    f"{o2['bn_drift'][1]:.2g}; WN {o2['wn_conv']:.1e})")))
    return comps, pts


# ======================================================================== the check
@register(CLAIM, TITLE, paper="Luo et al. 2019, Sec. 4.1, Fig. 1b, App. D.2 (eqs. 19-25)")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    cfg = SIZES[bool(quick)]
    comps = []

    # 1. closed forms of the linear student --------------------------------------------
    for a in (0.5, 2.0, 4.0):
        sol = replica.solve(a, student="linear", noise=NOISE)
        comps.append(compare(CLAIM, f"linear min-norm eps, alpha={a}",
                             float(gen.min_norm_linear(a, NOISE).eps[0]), sol.eps, rtol=1e-8,
                             note="replica saddle point (zeta -> 0+) vs 1 - a + aS/(1-a), "
                                  "S/(a-1)"))
    for a in (0.5, 1.0, 2.0, 4.0):
        for z in (ZETA_PLUGIN, 0.25, 1.0):
            sol = replica.solve(a, student="linear", noise=NOISE, zeta=z)
            comps.append(compare(CLAIM, f"linear ridge eps, alpha={a}, zeta={z:g}",
                                 float(gen.ridge_linear(a, z, NOISE).eps[0]), sol.eps,
                                 rtol=1e-8, note="Krogh-Hertz via the Marchenko-Pastur "
                                                 "Stieltjes transform"))
    sol = replica.solve(2.0, student="linear", noise=NOISE, zeta=0.25, beta=5.0)
    comps.append(compare(CLAIM, "linear ridge Gibbs sample eps, alpha=2, zeta=1/4, beta=5",
                         float(gen.ridge_linear(2.0, 0.25, NOISE, beta=5.0).eps[0]), sol.eps,
                         rtol=1e-8, note="finite-temperature replica vs ridge + G/beta"))

    # 2. ReLU, no decay: min-norm interpolators vs replica vs eq. 25 -------------------
    mn_rows = []
    for S in (0.0, NOISE):
        for a in cfg["alphas_mn"]:
            rs = replica.solve(a, student="relu", noise=S)
            m1, fn, allow, se = _two_n(a, S, 0.0, cfg, seed, min_norm=True)
            eq25 = float(gen.relu_exhaustive(a, S).eps[0])
            mn_rows.append((S, a, rs.eps, eq25, fn))
            comps.append(compare(CLAIM, f"ReLU min-norm interpolator eps, S={S:g}, alpha={a}",
                                 rs.eps, fn["mean"], stderr=se, atol=allow,
                                 note=(f"replica ({rs.phase}) vs exact QP, N={fn['N']} "
                                       f"({fn['n']} seeds); O(1/N) allowance {allow:.3g} from "
                                       f"N={m1['N']} (mean {m1['mean']:.4f})")))
            if S == 0.0 and a >= 1.0:  # where the paper's error exceeds the noise
                comps.append(expect(CLAIM, f"|eq. 25 - finite N|, S=0, alpha={a}",
                                    4.0 * se + allow, abs(eq25 - fn["mean"]), ">=",
                                    note=f"noiseless: Luo et al. eq. 25 = {eq25:.4f} vs "
                                         f"measured {fn['mean']:.4f}, replica {rs.eps:.4f}: "
                                         "eq. 25 fails the tolerance (4 SE + O(1/N)) that the "
                                         "replica passes"))

    # 3. ReLU with gamma decay (and zeta = 0 past the interpolation threshold) ---------
    dec_rows = []
    for z, a in cfg["cases"]:
        rs = replica.solve(a, student="relu", noise=NOISE, zeta=z)
        m1, m2, allow, se = _two_n(a, NOISE, z, cfg, seed)
        dec_rows.append((z, a, rs.eps, m1, m2))
        comps.append(compare(CLAIM, f"ReLU + decay eps, zeta={z:g}, alpha={a}",
                             rs.eps, m2["mean"], stderr=se, atol=allow,
                             note=(f"replica ({rs.phase}) vs best of {cfg['inits']} basin-hopping"
                                   f" minima, N={m2['N']} ({m2['n']} seeds); O(1/N) allowance "
                                   f"{allow:.3g} from N={m1['N']} (mean {m1['mean']:.4f})")))

    # 4. BN ReLU student by offline SGD (the paper's squares) -----------------------
    bcfg = BN_SIZES[bool(quick)]
    bn_run = bn_runs(bcfg, seed)
    bn_comps, bn_pts = bn_comparisons(bcfg, bn_run)
    comps.extend(bn_comps)

    # the curves ---------------------------------------------------------------------
    plots = list(_plots(cfg["curve"], mn_rows, dec_rows)) + [_bn_plot(bn_run)]
    peak = _zero_decay_peak()
    summary = (
        "The replica saddle point reproduces the linear student's min-norm, ridge and "
        "Gibbs-sample curves to 1e-8. For the ReLU student at zeta -> 0+ it agrees with "
        "exact finite-N min-norm interpolators and rejects Luo et al.'s eq. 25, which is "
        "the min-norm fit of the y > 0 half alone (e.g. S = 0, alpha = 1: replica "
        f"{replica.solve(1.0, student='relu', noise=0.0).eps:.4f}, eq. 25 0.75). Without "
        "decay the curve does not diverge at alpha = 2: the interpolating phase ends at "
        f"alpha_c = {peak['alpha_c']:.3f} (S = {NOISE}), where eps peaks at "
        f"{peak['eps_max']:.2f} with an infinite slope, and falls again beyond. Gamma decay "
        "(beyond the paper) removes the peak: zeta = 1/32 leaves a shoulder near alpha_c, "
        "zeta = 1/4 a monotone curve; finite-N training (best of several exact local "
        "minima) agrees within 4 SE + O(1/N). The optimal decay of the ReLU student is "
        "below S and rises towards it with alpha (linear student: exactly S). "
        + _bn_summary(bn_pts))
    return CheckResult(CLAIM, TITLE, tuple(comps), tuple(plots), summary)


def _bn_summary(pts) -> str:
    rows = "; ".join(
        f"alpha={a}: BN {p['bn'][0]:.4f} +- {p['bn'][1]:.2g}, WN+decay {p['wn'][0]:.4f}, "
        "replica " + ", ".join(f"{n.split(' ')[0]} {v:.4f}" for n, v in p["candidates"].items())
        + f", zeta_eff = {p['zeta_eff'] * BATCH_SIZE / a:.3g} alpha/M"
        for a, p in sorted(pts.items()))
    return (
        f"BN ReLU student (M = {BATCH_SIZE}) by offline SGD (batch statistics, learned beta, "
        "running averages; small initial weights as in L-F1a) beside WN + gamma decay at "
        f"zeta = 1/(2M) per sample on the same training sets (N = largest): {rows}. WN + "
        "decay lands on the replica curve it realizes (a local search on a non-convex loss: "
        "at alpha < 1 and near the peak SGD's minimum can sit above it). BN is not WN + a "
        f"fixed decay: far from the zeta -> 0 peak (alpha >= {PEAK_BAND[1]}) it is "
        "indistinguishable from WN at zeta = alpha/(2M) (candidates differ little there), "
        "near the peak it regularizes less, and more so the longer it trains (as the "
        "linear student near alpha = 1, L-F1a: BN's decay acts on the training-set "
        "statistics). BN's learned beta is a bias the replica's relu(w.x) student lacks.")


def _bn_plot(runs) -> Plot:
    al = np.linspace(0.1, 4.0, 40)
    ser = [series("replica, zeta -> 0", al, replica.learning_curve(al, student="relu",
                                                                   noise=NOISE).eps)]
    for n, z in BN_CANDIDATES.items():
        ser.append(series(f"replica, zeta = {n}", al, replica.learning_curve(
            al, student="relu", noise=NOISE, zeta=np.array([z(a) for a in al])).eps,
            style="dashed"))
    for N in sorted({k[1] for k in runs}):
        rows = [o for (a, n), o in sorted(runs.items()) if n == N]
        for key, lab in (("bn", "BN"), ("wn", "WN + decay, zeta = 1/(2M) per sample")):
            ser.append(series(f"{lab} (SGD), N={N}", [o["alpha"] for o in rows],
                              [o[key][0] for o in rows], yerr=[o[key][1] for o in rows],
                              style="points"))
    return Plot(f"BN ReLU student (M = {BATCH_SIZE}), offline SGD, vs replica + decay",
                "alpha = P/N", "eps (no label noise)", tuple(ser))


def _zero_decay_peak(noise: float = NOISE) -> dict:
    """Location and height of the zeta -> 0 peak (end of the interpolating phase)."""
    a = np.linspace(1.3, 1.7, 81)
    c = replica.learning_curve(a, student="relu", noise=noise)
    interp = np.array([s.phase == "interpolating" for s in c.solutions])
    k = int(np.flatnonzero(interp).max()) if interp.any() else 0
    return {"alpha_c": float(a[min(k + 1, a.size - 1)]), "eps_max": float(np.nanmax(c.eps))}


def _plots(n_curve, mn_rows, dec_rows):
    al = np.linspace(0.05, 4.0, n_curve)
    below2 = al[al < 1.95]
    s = series
    rs0 = replica.learning_curve(al, student="relu", noise=NOISE)
    rsS0 = replica.learning_curve(al, student="relu", noise=0.0)
    ser = [s(f"replica, zeta -> 0, S={NOISE:g}", al, rs0.eps),
           s("Luo et al. eq. 25", below2, gen.relu_exhaustive(below2, NOISE).eps,
             style="dashed"),
           s("replica, zeta -> 0, S=0 (noiseless)", al, rsS0.eps),
           s("paper's noiseless bound 1 - a/4", below2, gen.relu_noiseless_bound(below2),
             style="dashed")]
    for z, lab in ((ZETA_PLUGIN, "1/32 (sum)"), (0.25, "1/4 (sum)")):
        c = replica.learning_curve(al, student="relu", noise=NOISE, zeta=z)
        ser.append(s(f"replica, zeta = {lab}", al, c.eps))
    zps = gen.sum_decay_from_per_sample(ZETA_PLUGIN, al)
    c = replica.learning_curve(al, student="relu", noise=NOISE, zeta=zps)
    ser.append(s("replica, zeta = alpha/32 (per sample)", al, c.eps))
    for S in (0.0, NOISE):
        rows = [r for r in mn_rows if r[0] == S]
        if rows:
            ser.append(s(f"min-norm QP, S={S:g}", [r[1] for r in rows],
                         [r[4]["mean"] for r in rows], yerr=[r[4]["se"] for r in rows],
                         style="points"))
    for z in sorted({r[0] for r in dec_rows}):
        rows = [r for r in dec_rows if r[0] == z]
        ser.append(s(f"trained, zeta={z:g}, N={rows[0][4]['N']}", [r[1] for r in rows],
                     [r[4]["mean"] for r in rows], yerr=[r[4]["se"] for r in rows],
                     style="points"))
    main = Plot("ReLU student, linear teacher: eps vs alpha", "alpha = P/N",
                "eps (unhalved, no label noise)", tuple(ser))
    return (main,)
