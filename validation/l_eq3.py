r"""L-eq3: BN loss = PN loss + zeta(h) gamma^2 (Luo et al. Theorem 1, eq. 3).

Setting: h = a stratified Gaussian sample (normal quantiles, shuffled) of size P; the
linear student (``mse``, halved loss, target y = 0.8 hhat + 0.6 xi) and the paper's ReLU
case (``glm-softplus``: loss A(h~) - y h~ with A' = softplus, target from a ReLU teacher
y = relu(0.9 hhat + 0.436 xi)); (gamma, beta) at the joint PN-stationary point, so that
Theorem 1's first-order term R_f vanishes in the independence model.

Independent measurement: Monte Carlo over batch draws of the exact BN loss
(:func:`~perceptron_theory.theory.batchnorm.expected_bn_loss`), in both noise models:

* ``independent`` (Theorem 1's model): compared with (i) the Gauss-quadrature loss of the
  same model for a Gaussian population (:func:`gaussian_batch_loss`, all orders); (ii)
  Theorem 1's PN + zeta gamma^2, allowance = the computed neglected terms (i) - (ii),
  O(1/M^2).
* ``real`` (the sample in its batch): compared with (iii) the Gauss-quadrature real-batch
  loss (:func:`gaussian_batch_loss`); (iv) our leading order PN + zeta gamma^2 + the
  real-batch first-order term -gamma/(2M) mean[(A'-y) hhat^3]
  (:func:`real_batch_leading_excess`), allowance the computed O(1/M^2) difference
  (iii) - (iv); (v) Theorem 1 itself: it holds for the linear student (allowance (iii) - T1,
  O(1/M^2)) and FAILS at leading order for the ReLU/GLM case, recorded as the claim that
  the measurement lies below Theorem 1 by more than the O(1/M^2) allowance + 4 SE.
* rates (deterministic, M = 64..512): |(iii)-(iv)| and |(i)-(ii)| fall as M^-2; the
  real-batch error of Theorem 1 falls as M^-2 (linear) but only as M^-1 (ReLU/GLM).
* **finite-N SGD** (:mod:`perceptron_theory.simulate`): online SGD of a linear student with
  real batch statistics (``"bn"``, batch size M, linear teacher, N = 1000) settles at
  :math:`\gamma^* = R\,c_M` with :math:`c_M = E[\sigma_B/\sigma_P]` (the stationary point
  of the real-batch loss, :func:`~perceptron_theory.theory.batchnorm.real_batch_shrinkage`);
  Theorem 1's independence model predicts the PN + decay fixed point
  :math:`1/(1 + 2\zeta_{T1})`, :math:`\zeta_{T1} \approx 3/(4M)`, i.e. twice the
  shrinkage. The measurement is the time average of :math:`\gamma/R` over the second half
  of each run, mean and SE over seeds; the allowance is the O(lr/N) bias of the
  stationary SGD average, estimated from a run at half the rate.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import batchnorm as bn
from validation._core import CheckResult, compare, expect, register

CLAIM = "L-eq3"
BATCH_SIZES = (8, 16, 32, 64)
RATE_SIZES = (64, 128, 256, 512)


def make_data(P: int, seed: int):
    """Stratified Gaussian h and the two targets; returns h, hhat, {loss: y}."""
    rng = np.random.default_rng(seed)
    h = stats.norm.ppf((np.arange(P) + 0.5) / P)
    rng.shuffle(h)
    hh = (h - h.mean()) / h.std()
    xi = rng.standard_normal(P)
    # noise exactly orthogonal to hhat and hhat^3 on the sample, as in the population, so
    # that finite-P noise does not add an O(1/(M sqrt P)) first-order term to the mse case
    basis = np.stack([np.ones(P), hh, hh**3], axis=1)
    xi -= basis @ np.linalg.lstsq(basis, xi, rcond=None)[0]
    xi /= xi.std()
    return h, hh, {"mse": 0.8 * hh + 0.6 * xi,
                   "glm-softplus": np.maximum(0.0, 0.9 * hh + np.sqrt(1 - 0.81) * xi)}


def _slope(ms, vals) -> float:
    return float(np.polyfit(np.log(ms), np.log(np.abs(vals)), 1)[0])


@register(CLAIM, "BN loss = PN loss + zeta(h) gamma^2: Monte Carlo over batch draws",
          paper="Luo et al. 2019, eq. 3, Theorem 1, App. C.1-C.2")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    P = 8192 if quick else 32768
    n_draws = 48 if quick else 200
    h, hh, targets = make_data(P, seed)
    comps, plot_series, ratios = [], [], {}
    for loss, y in targets.items():
        L = bn.LOSSES[loss]
        g, b = bn.pn_stationary_point(h, y, loss)
        pn = bn.pn_loss(h, y, g, b, loss)
        curv = L.curvature(g * hh + b)
        rows = []
        for i, M in enumerate(BATCH_SIZES):
            t1 = bn.zeta_theorem1(h, M, curv, rho=0.0).zeta * g * g
            qind = bn.gaussian_batch_loss(h, y, g, b, M, loss, mode="independent") - pn
            quad = bn.gaussian_batch_loss(h, y, g, b, M, loss) - pn
            lead = bn.real_batch_leading_excess(h, y, g, b, M, loss, rho=0.0, skewness=0.0)
            mc = {mode: bn.expected_bn_loss(h, y, g, b, M, loss, n_draws=n_draws,
                                            seed=seed + 100 * i + k, mode=mode)
                  for k, mode in enumerate(("independent", "real"))}
            ind, real = mc["independent"], mc["real"]
            tag = f"{loss} M={M}"
            comps.append(compare(
                CLAIM, f"[independent] MC vs Gaussian-population quadrature, {tag}", qind,
                ind.mean - pn, stderr=ind.stderr, rtol=1e-3,
                note="rtol 1e-3: 10x the quadrature accuracy tested at M >= 8"))
            comps.append(compare(
                CLAIM, f"[independent] MC vs Theorem 1 PN + zeta gamma^2, {tag}", t1,
                ind.mean - pn, stderr=ind.stderr, atol=abs(qind - t1),
                note=f"allowance = computed neglected terms (quadrature - T1) "
                     f"{abs(qind - t1):.2e}; MC/T1 = {(ind.mean - pn) / t1:.3f}"))
            comps.append(compare(
                CLAIM, f"[real] MC vs Gaussian-population quadrature, {tag}", quad,
                real.mean - pn, stderr=real.stderr, rtol=1e-3,
                note="rtol 1e-3: 10x the quadrature accuracy tested at M >= 8"))
            comps.append(compare(
                CLAIM, f"[real] MC vs ours: leading order incl. first-order real term, {tag}",
                lead.total, real.mean - pn, stderr=real.stderr, atol=abs(quad - lead.total),
                note=f"first-order term {lead.first_order:.2e}; allowance = computed O(1/M^2) "
                     f"(quadrature - leading) {abs(quad - lead.total):.2e}"))
            r_real = (real.mean - pn) / t1
            if loss == "mse":
                comps.append(compare(
                    CLAIM, f"[real] MC vs Theorem 1 PN + zeta gamma^2, {tag}", t1,
                    real.mean - pn, stderr=real.stderr, atol=abs(quad - t1),
                    note=f"linear student: T1 holds, allowance = computed O(1/M^2) "
                         f"{abs(quad - t1):.2e}; MC/T1 = {r_real:.3f}"))
            else:
                allow = abs(quad - lead.total)
                comps.append(expect(
                    CLAIM, f"[real] MC below Theorem 1 beyond O(1/M^2) + 4 SE, {tag}",
                    t1 - allow - 4 * real.stderr, real.mean - pn, "<=", stderr=real.stderr,
                    note=f"paper: PN + zeta gamma^2 = {t1:.5f}; real batches {r_real:.3f} x "
                         f"that: first-order term -gamma/(2M) mean[(A'-y) hhat^3] = "
                         f"{lead.first_order:.2e} survives at the PN-stationary point"))
            rows.append((M, t1, qind, quad, ind, real, pn))
            ratios[(loss, M)] = ((ind.mean - pn) / t1, r_real)
        # rates, deterministic
        t1s = np.array([bn.zeta_theorem1(h, M, curv, rho=0.0).zeta * g * g for M in RATE_SIZES])
        qinds = np.array([bn.gaussian_batch_loss(h, y, g, b, M, loss, mode="independent") - pn
                          for M in RATE_SIZES])
        quads = np.array([bn.gaussian_batch_loss(h, y, g, b, M, loss) - pn
                          for M in RATE_SIZES])
        leads = np.array([bn.real_batch_leading_excess(h, y, g, b, M, loss, rho=0.0,
                                                       skewness=0.0).total for M in RATE_SIZES])
        band = 0.15
        comps.append(compare(CLAIM, f"slope log|quad - leading| vs log M, {loss}", -2.0,
                             _slope(RATE_SIZES, quads - leads), atol=band,
                             note=f"M = {RATE_SIZES}; band {band}: the next order shifts the "
                                  "local slope by O(1/M)"))
        comps.append(compare(CLAIM, f"slope log|quad_indep - T1| vs log M, {loss}", -2.0,
                             _slope(RATE_SIZES, qinds - t1s), atol=band,
                             note="independence model: Theorem 1 is exact to O(1/M^2)"))
        want = -2.0 if loss == "mse" else -1.0
        comps.append(compare(CLAIM, f"slope log|quad - T1| vs log M (real batches), {loss}",
                             want, _slope(RATE_SIZES, quads - t1s), atol=band,
                             note="linear: O(1/M^2); ReLU/GLM: O(1/M), Theorem 1 misses a "
                                  "first-order term in real batches"))
        ms = [r[0] for r in rows]
        plot_series += [
            series(f"{loss}: Theorem 1", ms, [r[0] * r[1] for r in rows]),
            series(f"{loss}: independent, quadrature", ms, [r[0] * r[2] for r in rows],
                   style="dashed"),
            series(f"{loss}: real, quadrature", ms, [r[0] * r[3] for r in rows], style="dashed"),
            series(f"{loss}: independent MC", ms, [r[0] * (r[4].mean - r[6]) for r in rows],
                   [r[0] * r[4].stderr for r in rows], "points"),
            series(f"{loss}: real MC", ms, [r[0] * (r[5].mean - r[6]) for r in rows],
                   [r[0] * r[5].stderr for r in rows], "points"),
        ]
    sim_comps, sim_plot, sim_text = _simulation(quick, seed)
    comps += sim_comps
    p1 = Plot("L-eq3: M (E[l_BN] - l_PN) at the PN-stationary point", "batch size M",
              "M x excess loss", tuple(plot_series), xscale="log")
    fmt = "; ".join(f"{loss} M={M}: independent {r[0]:.2f}, real {r[1]:.2f}"
                    for (loss, M), r in ratios.items())
    summary = (
        "Ratio of the Monte Carlo excess E[l_BN] - l_PN to Theorem 1's zeta(h) gamma^2 at the "
        f"PN-stationary point: {fmt}. Independence model: Theorem 1 is its O(1/M) truncation, "
        "but the dropped O(1/M^2) terms are large (heavy tail of 1/sigma_B^2: E = M/(M-3)), "
        "about 2x at M = 8. Real batches: for the linear student Theorem 1 holds with a small "
        "O(1/M^2) error; for the ReLU/GLM case it misses a first-order term "
        "-gamma/(2M) mean[(A'(h~) - y) hhat^3] (the sample's own share of mu_B, sigma_B) that "
        "does not vanish at the PN-stationary point unless the GLM is well specified; our "
        "leading-order real-batch formula and the quadrature agree with the Monte Carlo. "
        + sim_text)
    return CheckResult(CLAIM, "BN loss = PN + zeta(h) gamma^2", tuple(comps), (p1, sim_plot),
                       summary)


SIM_BATCH_SIZES = (4, 8, 16, 32)


def _stationary_gamma(M: int, lr: float, quick: bool, seed: int, engine: str = "reduced"):
    """Mean over seeds of the late-time average of gamma / R, and its SE."""
    from perceptron_theory.simulate import online

    N, t_max = 1000, (80.0 if quick else 300.0)
    r = online.run("bn", "linear", N=N, batch_size=M, lr=lr, t_max=t_max, n_points=81,
                   seeds=16 if quick else 64, seed=seed, R_init=0.9, gamma_init=1.0,
                   engine=engine)
    if r.diverged.any():
        raise RuntimeError(f"BN simulation diverged at M={M}, lr={lr}")
    late = r.t >= t_max / 2
    v = (r.gamma[:, late] / r.R[:, late]).mean(axis=1)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def _simulation(quick: bool, seed: int):
    """gamma* of real-batch BN in finite-N online SGD vs c_M and vs Theorem 1 (module doc)."""
    comps, rows = [], []
    lr = 0.2
    for M in SIM_BATCH_SIZES:
        c_M = bn.real_batch_shrinkage(M)
        t1 = 1.0 / (1.0 + 2.0 * bn.equivalent_decay_linear(M, convention="theorem1"))
        g, se = _stationary_gamma(M, lr, quick, seed + M)
        g_half, se_half = _stationary_gamma(M, lr / 2, quick, seed + 100 + M)
        allow = abs(g - g_half)  # ~ the O(lr) bias of the stationary average at lr
        comps.append(compare(CLAIM, f"BN SGD gamma*/R, linear, M={M} vs c_M", c_M, g,
                             stderr=se, atol=allow,
                             note=f"finite-N online SGD (N=1000, lr={lr}); O(lr) allowance "
                                  f"|g(lr) - g(lr/2)| = {allow:.2g}"))
        comps.append(expect(CLAIM, f"BN SGD gamma*/R - Theorem-1 gamma0, M={M}", 0.0,
                            g - t1, ">=", stderr=se, n_sigma=-4.0,
                            note=f"Theorem 1 (independence model) predicts {t1:.4f}: real "
                                 "batches shrink gamma half as much (measured must exceed it "
                                 "by > 4 SE)"))
        rows.append((M, c_M, t1, g, se))
    g_vec, se_vec = _stationary_gamma(8, lr, quick, seed + 7, engine="vector")
    g_red = next(r[3] for r in rows if r[0] == 8)
    se_red = next(r[4] for r in rows if r[0] == 8)
    comps.append(compare(CLAIM, "BN SGD gamma*/R, M=8: vector engine vs reduced engine", g_red,
                         g_vec, stderr=float(np.hypot(se_vec, se_red)),
                         note="the literal N-vector simulation vs the exact reduced chain"))
    ms = [r[0] for r in rows]
    plot = Plot("L-eq3 in finite-N SGD: stationary gamma of real-batch BN (linear)",
                "batch size M", "gamma* / R", (
                    series("c_M = E[sigma_B / sigma_P] (real batch)", ms, [r[1] for r in rows]),
                    series("Theorem 1: 1/(1 + 2 zeta_T1)", ms, [r[2] for r in rows],
                           style="dashed"),
                    series("simulation (N = 1000)", ms, [r[3] for r in rows],
                           [r[4] for r in rows], "points")), xscale="log")
    text = ("In finite-N online SGD the real-batch BN student settles at gamma* = R c_M ("
            + ", ".join(f"M={r[0]}: {r[3]:.4f} vs c_M {r[1]:.4f}, Theorem 1 {r[2]:.4f}"
                        for r in rows)
            + "): BN's induced decay is the gradient-matched zeta = (1/c_M - 1)/2 ~ 3/(8M) "
              "(Theorem 1 convention), half of Theorem 1's.")
    return comps, plot, text
