"""Benchmark the exact-theory layer: integrals, ODE trajectories and learning-rate limits.

Usage::

    PYTHONPATH=. python benchmarks/theory.py            # full run (< 3 min on 2 cores)
    PYTHONPATH=. python benchmarks/theory.py --quick    # reduced sizes (< 30 s)

Every section measures its own baseline in the same run and prints ratios, so the
numbers travel between machines better than the absolute times do.

a. :math:`I_1, I_2, I_3` for ReLU on random ``(Q, R)`` points (``Q ~ U(0.05, 2)``,
   ``R ~ U(-1, 1)``, seeded): the vectorized path (:func:`integrals.evaluate` on arrays,
   and the bare lambdified function on arrays), the scalar path (the same lambdified
   function called point by point in a Python loop, timed on fewer points and
   extrapolated), and -- the baseline -- a hand-written numpy closed form
   (the formulas of the :mod:`perceptron_theory.theory.integrals` docstring). The
   first-call cost (sympy derivation + lambdify) is measured first, in a fresh process.
b. One ODE trajectory (:func:`dynamics.integrate`, LSODA, ``rtol=1e-8``) for BN and SGD,
   median of several runs, against a fixed-step RK4 driving the *same* right-hand side
   (:func:`dynamics.rhs`) and a hand-written closed-form ReLU right-hand side, each with
   the smallest step count whose error (against an LSODA ``rtol=1e-12`` reference)
   matches LSODA's.
c. :func:`dynamics.lr_limits` (``"wn-decay"``, ReLU) over a grid of zetas in ``[0, 1]``, with
   ``exact=False`` (first-order Table-1 formula; baseline) and ``exact=True``
   (quasi-static branch scan).

Times are ``time.perf_counter`` wall-clock seconds: "best" is the minimum over the
repeats, "median" the median.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_t, table  # noqa: E402

# sizes: (full, quick)
N_VECTOR = (10**6, 10**5)  # points for the vectorized paths
N_SCALAR = (10**4, 2 * 10**3)  # points for the Python-loop path (extrapolated)
N_SCALAR_EVALUATE = (2 * 10**3, 5 * 10**2)  # points for evaluate() called per point
REPEATS = (5, 3)  # repeats of every timed vectorized call / trajectory
N_ZETA = (100, 10)  # zetas for lr_limits(exact=False)
N_ZETA_EXACT = (100, 5)  # zetas for lr_limits(exact=True)
SEED = 0

# section b problem (the brief's: relu, lr = 0.5, zeta = 0.25, t_max = 50)
#: the output scale starts at 0.5 (gamma for wn-decay, Q = L for sgd)
TRAJ = {"wn-decay": {"lr": 0.5, "zeta": 0.25, "gamma_init": 0.5},
        "sgd": {"lr": 0.5, "zeta": 0.0, "L_init": 0.5}}
T_MAX = 50.0
N_POINTS = 201  # output times of integrate(); RK4 step counts are multiples of N_POINTS - 1
RTOL_REF, ATOL_REF = 1e-12, 1e-13
QUANTITIES = ("I1", "I2", "I3")


# ----------------------------------------------------------------------------- helpers
def timeit(fn, repeats: int) -> tuple[float, float]:
    """Return ``(best, median)`` wall-clock seconds of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def once(fn):
    """Return ``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ------------------------------------------------------------------ closed forms (ReLU)
def relu_closed_form(Q: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, ...]:
    """Hand-written :math:`I_1, I_2, I_3` for ReLU (integrals module docstring).

    With :math:`S = \\sqrt{1-R^2}`, :math:`a = \\pi/2 + \\arcsin R = \\pi - \\arccos R`:
    :math:`I_1 = Q (S + aR)/(2\\pi) - Q^2/2`,
    :math:`I_3 = (a + RS)/(2\\pi) - QR/2`,
    :math:`I_2 = Q^2/2 + (a + RS)/(2\\pi) - Q(S + aR)/\\pi`.
    """
    S = np.sqrt(1.0 - R * R)
    a = 0.5 * np.pi + np.arcsin(R)
    e_rr = (S + a * R) * (0.5 / np.pi)  # E[relu(u) relu(t)]
    e_tt = (a + R * S) * (0.5 / np.pi)  # E[1{u>0} relu(t) t]
    half_q2 = 0.5 * Q * Q
    return Q * e_rr - half_q2, half_q2 + e_tt - 2.0 * Q * e_rr, e_tt - 0.5 * Q * R


def _relu_scalar(Q: float, R: float) -> tuple[float, float, float]:
    S = math.sqrt(max(1.0 - R * R, 0.0))
    a = 0.5 * math.pi + math.asin(R)
    e_rr = (S + a * R) * (0.5 / math.pi)
    e_tt = (a + R * S) * (0.5 / math.pi)
    half_q2 = 0.5 * Q * Q
    return Q * e_rr - half_q2, half_q2 + e_tt - 2.0 * Q * e_rr, e_tt - 0.5 * Q * R


def closed_form_rhs(method: str, lr: float, zeta: float):
    """The ReLU order-parameter ODEs of :mod:`dynamics` written out by hand (floats)."""

    def f(t, y):
        g = max(float(y[0]), 1e-12)
        R = min(max(float(y[1]), -1.0), 1.0)
        i1, i2, i3 = _relu_scalar(g, R)
        if method == "sgd":
            a = 2.0 * lr * i1 + lr * lr * i2
            return np.array([a / (2.0 * g), lr * i3 / g - R * a / (2.0 * g * g)])
        L = float(y[2])
        L2 = L * L
        return np.array([
            lr * (i1 / g - zeta * g),
            lr * (g * i3 - R * i1) / L2 - lr * lr * g * g * R * i2 / (2.0 * L2 * L2),
            lr * lr * g * g * i2 / (2.0 * L2 * L),
        ])

    return f


def rk4(f, y0, t_max: float, n_steps: int, n_out: int) -> np.ndarray:
    """Classic fixed-step RK4; returns the state at ``n_out`` equally spaced times."""
    y = np.asarray(y0, dtype=float)
    h = t_max / n_steps
    every = n_steps // (n_out - 1)
    out = [y]
    t = 0.0
    for k in range(1, n_steps + 1):
        k1 = f(t, y)
        k2 = f(t + h / 2, y + h / 2 * k1)
        k3 = f(t + h / 2, y + h / 2 * k2)
        k4 = f(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = k * h
        if k % every == 0:
            out.append(y)
    return np.array(out).T


# ---------------------------------------------------------------------------- sections
def first_calls(integrals) -> list[tuple]:
    """Fresh-process cost of the sympy derivation and the lambdify of I1, I2, I3."""
    rows = []
    for act in ("relu", "linear", "erf"):
        t_der, _ = once(lambda act=act: integrals.symbolic(act))
        t_lam, _ = once(lambda act=act: [integrals.evaluate(q, act, 0.7, 0.3) for q in QUANTITIES])
        t_again, _ = once(lambda act=act: [integrals.evaluate(q, act, 0.7, 0.3)
                                           for q in QUANTITIES])
        rows.append((act, fmt_t(t_der), fmt_t(t_lam), fmt_t(t_der + t_lam), fmt_t(t_again)))
    return rows


def section_integrals(integrals, quick: bool) -> None:
    """Section a: vectorized vs scalar vs hand-written closed form."""
    import sympy as sp

    i = int(quick)
    n, n_s, n_se, reps = N_VECTOR[i], N_SCALAR[i], N_SCALAR_EVALUATE[i], REPEATS[i]
    rows = first_calls(integrals)
    table("a0. first call (fresh process): sympy derivation, then lambdify + 1 point of I1,I2,I3",
          ("activation", "derive", "lambdify(3)", "total", "2nd call (3 pts)"), rows)

    rng = np.random.default_rng(SEED)
    Q = rng.uniform(0.05, 2.0, n)
    R = rng.uniform(-1.0, 1.0, n)
    # the function integrals.evaluate compiles: lambdify((Q, R), expr, "numpy", cse=True)
    exprs = integrals.symbolic("relu")
    lam = {}
    for q in QUANTITIES:
        syms = {s.name: s for s in exprs[q].free_symbols}
        lam[q] = sp.lambdify((syms["Q"], syms.get("R", sp.Symbol("R"))), exprs[q],
                             modules="numpy", cse=True)

    # accuracy check: evaluate vs closed form on the first 10^5 points
    m = min(n, 10**5)
    ref = relu_closed_form(Q[:m], R[:m])
    err = max(float(np.max(np.abs(integrals.evaluate(q, "relu", Q[:m], R[:m]) - r)))
              for q, r in zip(QUANTITIES, ref, strict=True))

    best_cf, med_cf = timeit(lambda: relu_closed_form(Q, R), reps)
    best_ev, med_ev = timeit(lambda: [integrals.evaluate(q, "relu", Q, R) for q in QUANTITIES],
                             reps)

    def raw():
        with np.errstate(invalid="ignore", divide="ignore"):
            return [lam[q](Q, R) for q in QUANTITIES]

    best_raw, med_raw = timeit(raw, reps)
    Qs, Rs = Q[:n_s].tolist(), R[:n_s].tolist()

    def scalar_loop():
        for q in QUANTITIES:
            f = lam[q]
            for a, b in zip(Qs, Rs, strict=True):
                f(a, b)

    best_sl, _ = timeit(scalar_loop, max(1, reps // 2))
    Qe, Re = Qs[:n_se], Rs[:n_se]

    def scalar_evaluate():
        for q in QUANTITIES:
            for a, b in zip(Qe, Re, strict=True):
                integrals.evaluate(q, "relu", a, b)

    best_se, _ = timeit(scalar_evaluate, 1)

    def scalar_closed():
        for a, b in zip(Qs, Rs, strict=True):
            _relu_scalar(a, b)

    best_sc, _ = timeit(scalar_closed, max(1, reps // 2))
    per = {  # seconds per point for all three quantities
        "numpy closed form, arrays (baseline)": (best_cf / n, med_cf / n, f"{n:.0e} pts"),
        "integrals.evaluate, arrays": (best_ev / n, med_ev / n, f"{n:.0e} pts"),
        "bare lambdified fn, arrays": (best_raw / n, med_raw / n, f"{n:.0e} pts"),
        "lambdified fn, Python loop": (best_sl / n_s, float("nan"), f"{n_s:.0e} pts, extrap."),
        "integrals.evaluate, Python loop": (best_se / n_se, float("nan"),
                                            f"{n_se:.0e} pts, extrap."),
        "math closed form, Python loop": (best_sc / n_s, float("nan"), f"{n_s:.0e} pts, extrap."),
    }
    base = per["numpy closed form, arrays (baseline)"][0]
    rows = [(name, note, fmt_t(b), fmt_t(b * 1e6), f"{b / base:.3g}x")
            for name, (b, _, note) in per.items()]
    table(f"a. ReLU I1+I2+I3 (all three) on random (Q, R); best of {reps}; "
          "loop paths timed on fewer points and extrapolated to 10^6",
          ("path", "measured on", "per point", "for 10^6 pts", "vs numpy closed form"), rows)
    print(f"  max |evaluate - closed form| over {m:.0e} points: {err:.2e}")
    print(f"  evaluate overhead over the bare lambdified fn: {best_ev / best_raw:.3g}x "
          f"(argument checks + broadcast copy); median/best evaluate: {med_ev / best_ev:.3g}")


def _count_rhs_calls(dynamics, method, **kwargs) -> int:
    """Number of right-hand-side evaluations LSODA makes (wraps dynamics.rhs briefly)."""
    orig = dynamics.rhs
    calls = [0]

    def counting(*a, **k):
        f = orig(*a, **k)

        def g(t, y):
            calls[0] += 1
            return f(t, y)

        return g

    dynamics.rhs = counting
    try:
        dynamics.integrate(method, "relu", **kwargs)
    finally:
        dynamics.rhs = orig
    return calls[0]


def section_trajectory(dynamics, quick: bool) -> None:
    """Section b: LSODA trajectory vs fixed-step RK4 at matched accuracy."""
    reps = REPEATS[int(quick)]
    t_first, _ = once(lambda: dynamics.integrate("wn-decay", "relu", t_max=T_MAX,
                                                 **TRAJ["wn-decay"]))
    rows, notes = [], []
    for method, kw in TRAJ.items():
        kw = dict(kw, t_max=T_MAX, n_points=N_POINTS)
        best, med = timeit(lambda kw=kw, m=method: dynamics.integrate(m, "relu", **kw), reps)
        tr = dynamics.integrate(method, "relu", **kw)
        ref = dynamics.integrate(method, "relu", rtol=RTOL_REF, atol=ATOL_REF, **kw)
        state = ("gamma", "R") if method == "sgd" else ("gamma", "R", "L")
        y_ref = np.array([getattr(ref, s) for s in state])
        y0 = y_ref[:, 0]
        err_lsoda = float(np.max(np.abs(np.array([getattr(tr, s) for s in state]) - y_ref)))
        n_calls = _count_rhs_calls(dynamics, method, **kw)
        f_lib = dynamics.rhs(method, "relu", kw["lr"], kw["zeta"])
        f_cf = closed_form_rhs(method, kw["lr"], kw["zeta"])
        t_call_lib, _ = timeit(lambda f=f_lib, y=y0: [f(0.0, y) for _ in range(200)], 3)
        t_call_cf, _ = timeit(lambda f=f_cf, y=y0: [f(0.0, y) for _ in range(200)], 3)
        rows.append((method, "LSODA (integrate)", f"{n_calls or 'n/a'}", f"{err_lsoda:.1e}",
                     fmt_t(med), fmt_t(best), "1 (baseline)"))
        for label, f in (("RK4, same rhs (dynamics.rhs)", f_lib),
                         ("RK4, hand-written rhs", f_cf)):
            n_steps = N_POINTS - 1
            while True:
                y = rk4(f, y0, T_MAX, n_steps, N_POINTS)
                err = float(np.max(np.abs(y - y_ref)))
                if err <= err_lsoda or n_steps >= 64 * (N_POINTS - 1):
                    break
                n_steps *= 2
            b, m = timeit(lambda f=f, n=n_steps, y0=y0: rk4(f, y0, T_MAX, n, N_POINTS),
                          max(1, reps // 2))
            rows.append((method, f"{label}, {n_steps} steps", f"{4 * n_steps}", f"{err:.1e}",
                         fmt_t(m), fmt_t(b), f"{m / med:.3g}x"))
        notes.append(f"{method}: one rhs call costs {fmt_t(t_call_lib / 200)} via dynamics.rhs, "
                     f"{fmt_t(t_call_cf / 200)} hand-written ({t_call_lib / t_call_cf:.3g}x)")
    table(f"b. one trajectory, relu, t_max={T_MAX:g}, {N_POINTS} outputs (wn-decay: lr=0.5, "
          f"zeta=0.25; sgd: lr=0.5); median of {reps}; error = max |y - y_ref| vs LSODA "
          f"rtol={RTOL_REF:g}",
          ("method", "solver", "rhs calls", "max error", "median", "best", "time vs LSODA"),
          rows)
    print(f"  first integrate() call in this process (sympy system + lambdify): "
          f"{fmt_t(t_first)}")
    for s in notes:
        print("  " + s)


def section_lr_limits(dynamics, quick: bool) -> None:
    """Section c: lr_limits over a zeta grid, first-order vs exact."""
    i = int(quick)
    reps = REPEATS[i]
    zetas = np.linspace(0.0, 1.0, N_ZETA[i])
    zetas_ex = np.linspace(0.0, 1.0, N_ZETA_EXACT[i])
    t_first, _ = once(lambda: dynamics.lr_limits("wn-decay", "relu", 0.5, exact=False))
    b0, m0 = timeit(lambda: [dynamics.lr_limits("wn-decay", "relu", float(z), exact=False)
                             for z in zetas], reps)
    b1, out = once(lambda: [dynamics.lr_limits("wn-decay", "relu", float(z), exact=True)
                            for z in zetas_ex])
    per0 = m0 / len(zetas)
    per1 = b1 / len(zetas_ex)
    rows = [("exact=False (baseline)", len(zetas), f"median of {reps}", fmt_t(m0),
             fmt_t(per0), "1"),
            ("exact=True", len(zetas_ex), "1 sweep", fmt_t(b1), fmt_t(per1),
             f"{per1 / per0:.3g}x")]
    table('c. dynamics.lr_limits("wn-decay", "relu", zeta) for zeta on a uniform grid in [0, 1]',
          ("mode", "zetas", "timing", "total", "per zeta", "per zeta vs exact=False"), rows)
    print(f"  first lr_limits call (lambdify of the R-derivatives): {fmt_t(t_first)}")
    r_star = np.array([o.R_star_at_eta_max for o in out])
    finite = [(o.zeta, o.eta_max_exact) for o in out if math.isfinite(o.eta_max_exact)]
    print(f"  exact=True: eta_max_exact = inf for {len(out) - len(finite)}/{len(out)} zetas; "
          "finite at " + (", ".join(f"zeta={z:.4g} ({e:.4g})" for z, e in finite) or "none"))
    print(f"  R* at the first-order eta_max ranges {r_star.min():.4f} .. {r_star.max():.4f}")


def main(argv=None) -> int:
    """Run all three sections and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (< 30 s)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    t_imp, (integrals, dynamics) = once(_import_theory)
    print(f"perceptron_theory theory benchmark ({'quick' if args.quick else 'full'}) -- "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    print(f"import perceptron_theory.theory.{{integrals,dynamics}}: {fmt_t(t_imp)}")
    section_integrals(integrals, args.quick)
    section_trajectory(dynamics, args.quick)
    section_lr_limits(dynamics, args.quick)
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")
    return 0


def _import_theory():
    from perceptron_theory.theory import dynamics, integrals

    return integrals, dynamics


if __name__ == "__main__":
    sys.exit(main())
