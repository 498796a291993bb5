"""L-D: App. D -- eps(gamma, R) and the ingredients of the Krogh-Hertz learning curve.

Independent computations:

* **eps(gamma, R)** for the linear and the ReLU student of a *linear* teacher (App. D eq. 18
  and the ReLU form after it) against Monte Carlo over ``(u, z) ~ N(0, I_2)`` with
  ``s = gamma u``, ``t = R u + sqrt(1 - R^2) z`` (4 SE); and the order parameters of eq. 25
  (``gamma R = alpha/2``, ``gamma^2 = alpha/2 + alpha S/(2 - alpha)``) put through eps(gamma, R)
  must give eq. 25 back.
* **Marchenko-Pastur law**: the density's mass (``min(1, alpha)``) and mean (``alpha``) by
  quadrature, then the closed-form Stieltjes transform G, its derivative G' and the ridge
  bias/variance integrals against ``scipy.integrate.quad`` of the density (plus the atom
  ``1 - alpha`` at 0), with the substitution ``lam = lam_- + (lam_+ - lam_-)(1 - cos th)/2``
  that removes the square-root edges; G' also against a central finite difference of G.
* **Ridge curve from its definition**: ``eps = int (zeta^2 + S lam)/(lam + zeta)^2 dmu`` by
  quadrature against ``ridge_linear``.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import generalization as gen
from validation._core import CheckResult, compare, register

CLAIM = "L-D"
TITLE = "App. D: eps(gamma, R) for linear/ReLU students; Marchenko-Pastur G and the ridge curve"

GR_POINTS = ((0.5, 0.9), (1.0, 0.3), (1.5, -0.4), (0.8, 1.0), (2.0, 0.7))
MP_ALPHAS = (0.3, 1.0, 2.5)
MP_ZETAS = (1e-3, 1.0 / 64, 0.25, 4.0)
NOISE = 0.25
SIZES = {True: {"n_mc": 400_000}, False: {"n_mc": 4_000_000}}
QUAD_RTOL = 1e-11


def mc_eps(student: str, gamma: float, R: float, n: int, rng) -> tuple[float, float]:
    """Monte Carlo mean and standard error of (t - g(gamma u))^2, linear teacher t."""
    u, z = rng.standard_normal((2, n))
    t = R * u + np.sqrt(max(1.0 - R * R, 0.0)) * z
    s = gamma * u
    out = s if student == "linear" else np.maximum(s, 0.0)
    v = (t - out) ** 2
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))


def mp_quad(alpha: float, f) -> float:
    """``int f(lam) dmu(lam)`` for the MP law of X^T X (continuous part + atom at 0).

    The density is written out here (not taken from the library):
    ``sqrt((lp - lam)(lam - lm)) / (2 pi lam)`` on ``[lm, lp]``, ``lm, lp = (1 -+ sqrt a)^2``.
    """
    lm, lp = (1 - np.sqrt(alpha)) ** 2, (1 + np.sqrt(alpha)) ** 2
    h = (lp - lm) / 2.0

    def integrand(th):
        lam = lm + h * (1.0 - np.cos(th))
        # rho(lam) dlam = sqrt(..)/(2 pi lam) * h sin(th) dth, sqrt(..) = h sin(th)
        return f(lam) * (h * np.sin(th)) ** 2 / (2.0 * np.pi * lam) if lam > 0 else 0.0

    val = quad(integrand, 0.0, np.pi, limit=400, epsabs=0.0, epsrel=QUAD_RTOL)[0]
    return val + max(1.0 - alpha, 0.0) * f(0.0)


@register(CLAIM, TITLE, paper="Luo et al. 2019, App. D.1 eqs. 16-18, Sec. 4.1 (Krogh & Hertz)")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    cfg = SIZES[bool(quick)]
    rng = np.random.default_rng(seed)
    comps = []
    # eps(gamma, R) vs Monte Carlo
    for student, hand in (("linear", lambda g, r: 1 + g * g - 2 * g * r),
                          ("relu", lambda g, r: 1 + g * g / 2 - g * r)):
        for g, r in GR_POINTS:
            pred = float(gen.eps_gamma_R(student, g, r))
            m, se = mc_eps(student, g, r, cfg["n_mc"], rng)
            comps.append(compare(CLAIM, f"eps({student} student, linear teacher) at "
                                        f"gamma={g}, R={r}", pred, m, stderr=se,
                                 note=f"Monte Carlo, {cfg['n_mc']} samples; paper: "
                                      f"{hand(g, r):.6g}"))
    # eq. 25 from its order parameters
    for a in (0.5, 1.0, 1.5):
        c = gen.relu_exhaustive(a, NOISE)
        comps.append(compare(CLAIM, f"eq.25 = eps_relu(gamma, R) at eqs. 22-23, alpha={a}",
                             float(c.eps[0]),
                             float(gen.eps_gamma_R("relu", c.gamma[0], c.R[0])), rtol=1e-12,
                             note="gamma R = alpha/2, gamma^2 = alpha/2 + alpha S/(2 - alpha)"))
    # Marchenko-Pastur: normalization, G, G', bias, variance, eps
    for a in MP_ALPHAS:
        comps.append(compare(CLAIM, f"MP mass, alpha={a}", 1.0, mp_quad(a, lambda lam: 1.0),
                             atol=1e-9, note="continuous part + atom 1 - alpha"))
        comps.append(compare(CLAIM, f"MP mean eigenvalue, alpha={a}", a,
                             mp_quad(a, lambda lam: lam), rtol=1e-9, note="tr X^T X / N"))
        for z in MP_ZETAS:
            q = f"alpha={a}, zeta={z:g}"
            G = float(gen.mp_stieltjes(a, z)[0])
            Gp = float(gen.mp_stieltjes_derivative(a, z)[0])
            comps.append(compare(CLAIM, f"G {q}", mp_quad(a, lambda lam, z=z: 1 / (lam + z)), G,
                                 rtol=1e-8, note="quad of the MP density"))
            comps.append(compare(CLAIM, f"G' {q}",
                                 -mp_quad(a, lambda lam, z=z: 1 / (lam + z) ** 2), Gp,
                                 rtol=1e-8, note="quad of -1/(lam + zeta)^2"))
            hstep = 1e-4 * z
            fd = (float(gen.mp_stieltjes(a, z + hstep)[0])
                  - float(gen.mp_stieltjes(a, z - hstep)[0])) / (2 * hstep)
            comps.append(compare(CLAIM, f"G' {q} vs central difference", fd, Gp, rtol=1e-6,
                                 note="step 1e-4 zeta: O(h^2) truncation"))
            eps_q = mp_quad(a, lambda lam, z=z: (z * z + NOISE * lam) / (lam + z) ** 2)
            comps.append(compare(CLAIM, f"ridge eps {q}, S={NOISE}", eps_q,
                                 float(gen.ridge_linear(a, z, NOISE).eps[0]), rtol=1e-8,
                                 note="int (zeta^2 + S lam)/(lam + zeta)^2 dmu (definition)"))
    # plots: eps(gamma, R) slices and G
    gs = np.linspace(0.05, 2.0, 60)
    ser = []
    for student in ("linear", "relu"):
        for r in (1.0, 0.5):
            ser.append(series(f"{student}, R={r}", gs, gen.eps_gamma_R(student, gs, r)))
    pts = [(g, mc_eps("relu", g, 0.5, 20_000, rng)) for g in (0.25, 0.75, 1.25, 1.75)]
    ser.append(series("relu, R=0.5, Monte Carlo", [p[0] for p in pts], [p[1][0] for p in pts],
                      yerr=[p[1][1] for p in pts], style="points"))
    p1 = Plot("eps(gamma, R), linear teacher (App. D)", "gamma", "eps", tuple(ser))
    zs = np.geomspace(1e-3, 10, 80)
    ser2 = [series(f"alpha={a}", zs, gen.mp_stieltjes(a, zs)) for a in MP_ALPHAS]
    ser2 += [series(f"alpha={a}, quadrature", MP_ZETAS,
                    [mp_quad(a, lambda lam, z=z: 1 / (lam + z)) for z in MP_ZETAS],
                    style="points") for a in MP_ALPHAS]
    p2 = Plot("Marchenko-Pastur Stieltjes transform G(zeta)", "zeta", "G", tuple(ser2),
              xscale="log", yscale="log")
    summary = ("eps(gamma, R) = 1 + gamma^2 - 2 gamma R (linear) and 1 + gamma^2/2 - gamma R "
               "(ReLU student, linear teacher) agree with Monte Carlo; eq. 25 follows from its "
               "order parameters gamma R = alpha/2, gamma^2 = alpha/2 + alpha S/(2 - alpha). "
               "The closed-form G (the paper's Krogh-Hertz formula, legible in our copy up to "
               "OCR), its analytic derivative and the ridge curve -zeta^2 G' + S (zeta G)' "
               "agree with quadrature of the Marchenko-Pastur density to ~1e-10.")
    return CheckResult(CLAIM, TITLE, tuple(comps), (p1, p2), summary)
