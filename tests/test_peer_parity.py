"""Peer parity for the plain student (issue 15, item 3): label noise S, L2 weight decay
lambda and a teacher activation other than the student's, in the ODEs
(:mod:`perceptron_theory.theory.dynamics`) and the simulators
(:mod:`perceptron_theory.simulate.online`), checked against each other.

Tolerances:

* closed forms vs Monte Carlo: 5 standard errors of the sample mean (seeded);
* defaults vs the old code path: 1e-12 (both are the same floating-point formula up to
  the order of the additions);
* ODE vs the independent Saad & Solla K = M = 1 ODE: both integrated with
  rtol = 1e-10, compared to 1e-7;
* ODE vs finite-N online SGD: ``|mean_seeds - ode| <= 5 SE + BIAS_COEF / N`` at every
  recorded time, with BIAS_COEF = 1 from L-eq6 (|N x bias of the mean| <= 0.4 measured at
  lr = 1 on every case there; ``validation/l_eq6.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from perceptron_theory.theory import dynamics as D
from perceptron_theory.theory import integrals as I

BIAS_COEF = 1.0  # validation/l_eq6.BIAS_COEF
N_SE = 5.0

MIXED = [("erf", "linear"), ("erf", "relu"), ("linear", "erf"), ("relu", "erf")]


# --------------------------------------------------------------- integrals vs Monte Carlo
@pytest.mark.parametrize("student, teacher", MIXED)
def test_mixed_integrals_vs_monte_carlo(student, teacher):
    """n = 400 000 Gaussian pairs per point, 5 SE, three (Q, R) points incl. R = 1."""
    rng = np.random.default_rng(15)
    g, dg = I.activation_function(student)
    gt, _ = I.activation_function(teacher)
    n = 400_000
    for q, r in ((0.6, 0.4), (1.3, -0.7), (0.9, 1.0)):
        u, z = rng.standard_normal((2, n))
        s, t = q * u, r * u + math.sqrt(max(1 - r * r, 0.0)) * z
        d = dg(s) * (gt(t) - g(s))
        for name, v in (("I1", d * s), ("I2", d * d), ("I3", d * t),
                        ("eps", (gt(t) - g(s)) ** 2)):
            pred = float(I.evaluate(name, student, q, r, teacher=teacher))
            assert abs(pred - v.mean()) <= N_SE * v.std() / math.sqrt(n) + 1e-12, (name, q, r)


@pytest.mark.parametrize("student, teacher", MIXED)
def test_mixed_derivatives_vs_finite_differences(student, teacher):
    """Symbolic dI/dQ, dI/dR against central differences (h = 1e-6: error O(h^2) + 1e-10)."""
    h, q, r = 1e-6, 0.8, 0.3
    for name in I.QUANTITIES:
        for wrt in ("Q", "R"):
            dq, dr = (h, 0.0) if wrt == "Q" else (0.0, h)
            fd = (I.evaluate(name, student, q + dq, r + dr, teacher=teacher)
                  - I.evaluate(name, student, q - dq, r - dr, teacher=teacher)) / (2 * h)
            an = I.evaluate(name, student, q, r, derivative=wrt, teacher=teacher)
            assert abs(float(an - fd)) < 1e-8, (name, wrt)


@pytest.mark.parametrize("activation", I.ACTIVATIONS)
def test_noise_factor_vs_monte_carlo(activation):
    """K(Q) = E[g'(s)^2]: n = 400 000, 5 SE (exact for linear and ReLU up to sampling)."""
    rng = np.random.default_rng(3)
    _, dg = I.activation_function(activation)
    n = 400_000
    for q in (0.4, 1.7):
        v = dg(q * rng.standard_normal(n)) ** 2
        assert abs(float(I.noise_factor(activation, q)) - v.mean()) <= (
            N_SE * v.std() / math.sqrt(n) + 1e-12)
        fd = (I.noise_factor(activation, q + 1e-6) - I.noise_factor(activation, q - 1e-6)) / 2e-6
        assert abs(float(I.noise_factor(activation, q, derivative=True) - fd)) < 1e-8


def test_erf_teacher_closed_forms_are_the_derived_ones():
    """Linear student, erf teacher: eps = 1/3 - 2QR/sqrt(pi) + Q^2 (Stein); ReLU student
    halves every cross moment (parity) -- exact sympy equality."""
    import sympy as sp

    Q, R = I.Q, I.R
    lin = I.symbolic("linear", "erf")
    assert sp.simplify(lin["eps"] - (sp.Rational(1, 3) - 2 * Q * R / sp.sqrt(sp.pi) + Q**2)) == 0
    relu = I.symbolic("relu", "erf")
    assert sp.simplify(relu["I1"] - lin["I1"] / 2) == 0
    assert sp.simplify(relu["eps"] - (sp.Rational(1, 3) - Q * R / sp.sqrt(sp.pi) + Q**2 / 2)) == 0


# ------------------------------------------------------------- defaults = the old code path
def _old_sgd_rhs(activation, lr, y):
    """The plain-SGD right-hand side as it was written before the peer options."""
    q, r = y
    i1, i2, i3 = I.scalar_kernel(activation)(q, r)
    return np.array([(2 * lr * i1 + lr**2 * i2) / (2 * q),
                     lr * i3 / q - r * (2 * lr * i1 + lr**2 * i2) / (2 * q**2)])


def _old_wn_rhs(activation, lr, zeta, y):
    g, r, L = y
    i1, i2, i3 = I.scalar_kernel(activation)(g, r)
    return np.array([lr * (i1 / g - zeta * g),
                     lr * (g * i3 - r * i1) / L**2 - lr**2 * g**2 * r * i2 / (2 * L**4),
                     lr**2 * g**2 * i2 / (2 * L**3)])


@pytest.mark.parametrize("activation", I.ACTIVATIONS)
def test_defaults_reproduce_the_old_right_hand_side(activation):
    for y in ((0.8, 0.6), (1.3, -0.2), (1.0, 1.0)):
        new = D.rhs("sgd", activation, 0.7)(0.0, list(y))
        explicit = D.rhs("sgd", activation, 0.7, teacher=activation, noise=0.0,
                         weight_decay=0.0)(0.0, list(y))
        np.testing.assert_allclose(new, _old_sgd_rhs(activation, 0.7, y), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(new, explicit)
    y = (0.8, 0.6, 1.2)
    np.testing.assert_allclose(D.rhs("wn-decay", activation, 0.7, 0.25)(0.0, list(y)),
                               _old_wn_rhs(activation, 0.7, 0.25, y), rtol=0, atol=1e-12)
    tr = D.integrate("sgd", activation, lr=0.7, t_max=5.0, n_points=6)
    tr2 = D.integrate("sgd", activation, lr=0.7, t_max=5.0, n_points=6, teacher=activation,
                      noise=0.0, weight_decay=0.0)
    for f in ("gamma", "R", "eps"):
        np.testing.assert_array_equal(getattr(tr, f), getattr(tr2, f))
    np.testing.assert_equal(D.lr_limits("sgd", activation, exact=False).to_dict(),
                            D.lr_limits("sgd", activation, exact=False, noise=0.0,
                                        weight_decay=0.0).to_dict())


def test_jacobian_with_the_options_vs_finite_differences():
    """The sympy Jacobian carries dK/dQ and the decay: central differences, h = 1e-6."""
    kw = dict(teacher="linear", noise=0.3, weight_decay=0.2)
    pt, h = np.array([0.9, 0.5]), 1e-6
    J = D.jacobian("sgd", "erf", 0.8, 0.0, pt, **kw)
    f = D.rhs("sgd", "erf", 0.8, **kw)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        np.testing.assert_allclose(J[:, j], (f(0, pt + e) - f(0, pt - e)) / (2 * h), atol=1e-7)


# ----------------------------------- noisy erf vs Saad & Solla / Biehl & Schwarze (K = M = 1)
def _saad_solla_rhs(lr, S):
    """K = M = 1 soft committee with g = erf(x/sqrt 2), written from Saad & Solla (1995),
    eqs. for I2, I3, I4 in their variables: Q = J.J/N (ours: Q^2), R = J.B/N (ours: QR),
    T = 1. dR = lr (I3(s,t,t) - I3(s,t,s)); dQ = 2 lr (I3(s,s,t) - I3(s,s,s))
    + lr^2 (I4(s,s,t,t) - 2 I4(s,s,s,t) + I4(s,s,s,s) + S I2(s,s))."""

    def rhs(_, y):
        Qs, Rs = y
        C = {("s", "s"): Qs, ("s", "t"): Rs, ("t", "s"): Rs, ("t", "t"): 1.0}

        def i2(a, b):
            return 2 / np.pi / math.sqrt(1 + C[a, a] + C[b, b] + C[a, a] * C[b, b] - C[a, b] ** 2)

        def i3(a, b, c):
            lam3 = (1 + C[a, a]) * (1 + C[c, c]) - C[a, c] ** 2
            return (2 / np.pi / math.sqrt(lam3)
                    * (C[b, c] * (1 + C[a, a]) - C[a, b] * C[a, c]) / (1 + C[a, a]))

        def i4(a, b, c, d):
            lam4 = (1 + C[a, a]) * (1 + C[b, b]) - C[a, b] ** 2
            lam0 = (lam4 * C[c, d] - C[b, c] * C[b, d] * (1 + C[a, a])
                    - C[a, c] * C[a, d] * (1 + C[b, b])
                    + C[a, b] * C[a, c] * C[b, d] + C[a, b] * C[a, d] * C[b, c])
            lam1 = (lam4 * (1 + C[c, c]) - C[b, c] ** 2 * (1 + C[a, a])
                    - C[a, c] ** 2 * (1 + C[b, b]) + 2 * C[a, b] * C[a, c] * C[b, c])
            lam2 = (lam4 * (1 + C[d, d]) - C[b, d] ** 2 * (1 + C[a, a])
                    - C[a, d] ** 2 * (1 + C[b, b]) + 2 * C[a, b] * C[a, d] * C[b, d])
            return 4 / np.pi**2 / math.sqrt(lam4) * math.asin(lam0 / math.sqrt(lam1 * lam2))

        dR = lr * (i3("s", "t", "t") - i3("s", "t", "s"))
        dQ = (2 * lr * (i3("s", "s", "t") - i3("s", "s", "s"))
              + lr**2 * (i4("s", "s", "t", "t") - 2 * i4("s", "s", "s", "t")
                         + i4("s", "s", "s", "s") + S * i2("s", "s")))
        return [dQ, dR]

    return rhs


@pytest.mark.parametrize("lr, S", [(0.8, 0.2), (2.0, 0.5)])
def test_noisy_erf_against_saad_solla(lr, S):
    q0, r0, t_max = 0.7, 0.1, 20.0
    tr = D.integrate("sgd", "erf", lr=lr, noise=S, L_init=q0, R_init=r0, t_max=t_max,
                     n_points=11, rtol=1e-10, atol=1e-12)
    ref = solve_ivp(_saad_solla_rhs(lr, S), (0, t_max), [q0**2, q0 * r0], t_eval=tr.t,
                    rtol=1e-10, atol=1e-12)
    Qs, Rs = ref.y
    np.testing.assert_allclose(tr.gamma, np.sqrt(Qs), atol=1e-7)
    np.testing.assert_allclose(tr.R, Rs / np.sqrt(Qs), atol=1e-7)
    # eps: Saad & Solla's (unhalved here) E[(g(t) - g(s))^2] from their I2 (erf J2)
    eps = 2 / np.pi * (np.arcsin(0.5) - 2 * np.arcsin(Rs / np.sqrt(2 * (1 + Qs)))
                       + np.arcsin(Qs / (1 + Qs)))
    np.testing.assert_allclose(tr.eps, eps, atol=1e-7)


# ------------------------------------------------------ ODE vs finite-N online simulation
#: (activation, teacher, noise, weight_decay, lr, engine, N, seeds): one case per option
SIM_CASES = {
    "noise": ("erf", None, 0.5, 0.0, 1.0, "reduced", 1000, 64),
    "weight_decay": ("relu", None, 0.0, 0.3, 0.8, "reduced", 1000, 64),
    "weight_decay_vector": ("linear", None, 0.1, 0.3, 0.8, "vector", 500, 24),
    "erf_student_linear_teacher": ("erf", "linear", 0.1, 0.1, 1.0, "reduced", 1000, 64),
    "linear_student_erf_teacher": ("linear", "erf", 0.0, 0.0, 0.5, "reduced", 1000, 64),
    "relu_student_erf_teacher": ("relu", "erf", 0.2, 0.0, 0.8, "reduced", 1000, 64),
    "erf_student_relu_teacher": ("erf", "relu", 0.0, 0.0, 1.0, "reduced", 1000, 64),
}
T_MAX, N_POINTS, INIT = 4.0, 5, {"R_init": 0.2, "L_init": 0.5}


def _sim_and_ode(case, **ode_override):
    from perceptron_theory.simulate import online

    act, teacher, S, wd, lr, engine, N, seeds = SIM_CASES[case]
    res = online.run("sgd", act, N=N, lr=lr, t_max=T_MAX, n_points=N_POINTS, seeds=seeds,
                     seed=1500, teacher=teacher, noise=S, weight_decay=wd, engine=engine,
                     **INIT)
    kw = dict(teacher=teacher, noise=S, weight_decay=wd) | ode_override
    tr = D.integrate("sgd", act, lr=lr, t_max=T_MAX, n_points=N_POINTS, rtol=1e-10,
                     atol=1e-12, **kw, **INIT)
    return res, tr, N


def _gaps(res, tr, N):
    """max_t (|mean - ode| - 5 SE - BIAS_COEF/N) per field (<= 0: within tolerance)."""
    assert not res.diverged.any()
    np.testing.assert_allclose(res.t, tr.t, atol=1e-12)
    out = {}
    for field, ode in (("gamma", tr.gamma), ("R", tr.R), ("eps", tr.eps)):
        m, se = res.mean(field)
        out[field] = float(np.max(np.abs(m[1:] - ode[1:]) - N_SE * se[1:] - BIAS_COEF / N))
    return out


@pytest.mark.parametrize("case", sorted(SIM_CASES))
def test_ode_vs_online_simulation(case):
    res, tr, N = _sim_and_ode(case)
    gaps = _gaps(res, tr, N)
    assert max(gaps.values()) <= 0.0, gaps


@pytest.mark.parametrize("case, wrong", [("noise", {"noise": 0.0}),
                                         ("weight_decay", {"weight_decay": 0.0}),
                                         ("erf_student_linear_teacher", {"teacher": "erf"})])
def test_the_comparison_has_power(case, wrong):
    """The same tolerance rejects the ODE with the option left out."""
    res, tr, N = _sim_and_ode(case, **wrong)
    assert max(_gaps(res, tr, N).values()) > 0.0


def test_reduced_engine_with_weight_decay_matches_vector_engine():
    """Same law: time-averaged Q of the two engines within 5 SE (independent seeds)."""
    from perceptron_theory.simulate import online

    kw = dict(N=300, lr=0.8, t_max=3.0, n_points=7, seeds=32, noise=0.2, weight_decay=0.5,
              **INIT)
    a = online.run("sgd", "relu", engine="vector", seed=0, **kw).gamma[:, 1:].mean(axis=1)
    b = online.run("sgd", "relu", engine="reduced", seed=100, **kw).gamma[:, 1:].mean(axis=1)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) <= N_SE * se


# ------------------------------------------------------------------------- fixed points
@pytest.mark.parametrize("activation, kw", [("relu", {"noise": 0.2}),
                                            ("linear", {"weight_decay": 0.2}),
                                            ("erf", {"teacher": "linear", "noise": 0.1})])
def test_sgd_fixed_point_vs_long_time_ode(activation, kw):
    """Continuation root vs solve_ivp at t = 400 (rtol 1e-10): 1e-6."""
    fp = D.fixed_point("sgd", activation, lr=1.0, **kw)
    assert fp.converged and fp.R < 1.0
    tr = D.integrate("sgd", activation, lr=1.0, L_init=fp.gamma * 0.9, R_init=0.8, t_max=400.0,
                     n_points=2, rtol=1e-10, atol=1e-12, **kw)
    assert abs(tr.gamma[-1] - fp.gamma) < 1e-6 and abs(tr.R[-1] - fp.R) < 1e-6


def test_small_lr_fixed_point_with_decay_is_gamma0():
    """I1(Q0, 1) = lambda Q0^2 is gamma decay's Prop. 1: 1/(1 + 2 lambda) for ReLU."""
    fp = D.fixed_point("sgd", "relu", weight_decay=0.3)
    assert abs(fp.gamma - 1 / 1.6) < 1e-12 and fp.R == 1.0
    assert D.fixed_point("sgd", "relu") .gamma == 1.0


def test_lr_limits_with_options():
    base = D.lr_limits("sgd", "relu", exact=False).eta_max
    # continuity: a vanishing decay gives back the plain-SGD eta_max
    assert abs(D.lr_limits("sgd", "relu", exact=False, weight_decay=1e-9).eta_max - base) < 1e-6
    lim = D.lr_limits("sgd", "erf", teacher="linear")
    assert lim.exact_status == "found" and lim.eta_max_exact > 0 and lim.teacher == "linear"
    J = D.jacobian("sgd", "erf", lim.eta_max_exact * 0.99, 0.0,
                   _fp(lim.eta_max_exact * 0.99), teacher="linear")
    assert np.max(np.linalg.eigvals(J).real) < 0


def _fp(lr):
    f = D.fixed_point("sgd", "erf", lr=lr, teacher="linear")
    return (f.gamma, f.R)


# -------------------------------------------------------------------------- bad input
def test_bad_options_are_value_errors():
    from perceptron_theory.simulate import online

    with pytest.raises(ValueError, match=r"^noise must be in \[0"):
        D.integrate("sgd", "erf", lr=0.5, noise=-0.1)
    with pytest.raises(ValueError, match=r"^weight_decay must be finite"):
        D.rhs("sgd", "erf", 0.5, weight_decay=float("nan"))
    with pytest.raises(ValueError, match=r"^weight_decay must be 0 for method 'wn'"):
        D.integrate("wn", "erf", lr=0.5, weight_decay=0.1)
    with pytest.raises(ValueError, match=r"^teacher must be one of"):
        D.integrate("sgd", "erf", lr=0.5, teacher="tanh")
    with pytest.raises(ValueError, match="not implemented"):
        D.fixed_point("wn-decay", "relu", 0.1, noise=0.1)
    with pytest.raises(ValueError, match="not implemented"):
        D.lr_limits("wn", "relu", teacher="linear")
    with pytest.raises(ValueError, match=r"^weight_decay must be 0 for method 'bn'"):
        online.run("bn", "relu", N=20, lr=0.1, t_max=1.0, batch_size=4, weight_decay=0.1)
    with pytest.raises(ValueError, match=r"^weight_decay must be in \[0"):
        online.run("sgd", "relu", N=20, lr=0.1, t_max=1.0, weight_decay=-1.0)


def test_noise_for_the_normalized_student_enters_I2():
    """wn: dL/dt = lr^2 gamma^2 (I2 + S K) / (2 L^3) -- the only place S enters."""
    y = [0.8, 0.6, 1.2]
    a = D.rhs("wn", "erf", 0.7)(0.0, y)
    b = D.rhs("wn", "erf", 0.7, noise=0.4)(0.0, y)
    k = float(I.noise_factor("erf", 0.8))
    assert a[0] == b[0]
    assert abs((b[2] - a[2]) - 0.7**2 * 0.8**2 * 0.4 * k / (2 * 1.2**3)) < 1e-14


def test_cli_dynamics_and_simulate_take_the_options(capsys):
    import json

    from perceptron_theory.cli import main

    assert main(["dynamics", "--method", "sgd", "--activation", "erf", "--teacher", "linear",
                 "--noise", "0.1", "--weight-decay", "0.05", "--lr", "0.5", "--t-max", "2",
                 "--n-points", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["teacher"] == "linear" and d["noise"] == 0.1 and d["weight_decay"] == 0.05
    assert main(["simulate", "--method", "sgd", "--activation", "relu", "--teacher", "erf",
                 "--noise", "0.1", "--weight-decay", "0.2", "--N", "50", "--online",
                 "--t-max", "1", "--lr", "0.5", "--seeds", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["weight_decay"] == 0.2 and d["teacher"] == "erf"
