"""L-eq6: the order-parameter ODEs, their integrals, fixed points and Jacobian.

Independent computations: Monte Carlo for I1, I2, I3 (eqs. 13-15); the measured
one-step drift of finite-N SGD for the right-hand side of eq. (6) (BN, WN, SGD);
long-time ODE integration (solve_ivp) for the root-found fixed points; central
finite differences of the right-hand side for the sympy Jacobian.

ODE vs simulation (:mod:`perceptron_theory.simulate.online`, section 5): whole
trajectories of online SGD at N = 250, 1000, 4000 from one initial condition against
:func:`~perceptron_theory.theory.dynamics.integrate`, for BN-as-ODE (``"wn-decay"``, one
name in both, :mod:`perceptron_theory.vocabulary`), WN and plain SGD with ReLU and linear
students, and plain SGD with the peer options (label noise, L2 weight decay, a teacher
activation other than the student's: :data:`PEER_CASES`).
Two ways the simulation approaches the ODE are measured separately:

* the seed-to-seed spread: the rms deviation of a single run from the ODE,
  ``max_t sqrt(E_seeds (X(t) - X_ode(t))^2)``, scales as :math:`N^{-1/2}` (regressed
  on log N, bootstrap over seeds);
* the bias of the mean, ``E_seeds X(t) - X_ode(t)``, is :math:`O(1/N)`. With a few
  dozen seeds it is far below the standard error of the mean at N >= 1000 (|N bias|
  <= 0.4 against a spread ``sqrt(N) sd`` of 0.1-0.9), so ``max_t |mean - ode|`` is
  compared with ``4 SE + BIAS_COEF / N``, and the 1/N law itself is regressed on a
  ladder of small N with thousands of seeds, where it is resolved.

The ``"reduced"`` engine (exact rotation-reduced Markov chain) is checked against the
literal ``"vector"`` engine at N = 500, and real-batch BN (``"bn"``, M = 16) against
the wn-decay ODE at the equivalent decays of :mod:`perceptron_theory.theory.batchnorm`
(all in the ODE's ``decay2`` convention: halved loss + zeta/2 gamma^2): the gap does
not vanish with N (model error of the BN -> gamma-decay mapping), and for the linear
student the real-batch gradient-matched decay ``equivalent_decay_real_batch(M,
convention="decay2")`` (= 3/(4M) at large M; 3/(8M) in Theorem 1's convention)
predicts gamma's long-time value.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from perceptron_theory.plotting import Plot, series
from perceptron_theory.theory import batchnorm as BN
from perceptron_theory.theory import dynamics as D
from perceptron_theory.theory import integrals as I
from validation._core import CheckResult, compare, expect, register
from validation._finite_n import gaussian_moments, one_step_drift

CLAIM = "L-eq6"

# ----------------------------------------------- 5. ODE vs simulation: constants
#: (method, zeta): the same model names in ``simulate`` and ``theory.dynamics``
SIM_CASES = (("wn-decay", 0.25), ("wn", 0.0), ("sgd", 0.0))
SIM_ACTIVATIONS = ("relu", "linear")  # teacher = student activation
SIM_LR = 1.0  # per-sample rate: eta_eff <= 1 along every trajectory, below eta_max
#: one initial condition for all: output scale 0.5 (gamma for the normalized students,
#: the length L = Q for the plain one), R = 0.2
SIM_INIT = {"R_init": 0.2, "gamma_init": 0.5, "L_init": 1.0}
SGD_INIT = {"R_init": 0.2, "L_init": 0.5}
SIM_N = (250, 1000, 4000)
#: allowance BIAS_COEF / N for the O(1/N) bias of the mean: |N (mean - ode)| <= 0.4 in
#: every case and field at lr = 1, N = 250, 4000 seeds (measured once; lr = 1.5: <= 0.75)
BIAS_COEF = 1.0
SLOPE_ALLOWANCE_RMS = 0.02  # rms^2 = s^2/N + b^2/N^2: |slope + 1/2| <= b^2/(2 s^2 N_min)
#: b(N) = b1/N (1 + c/N): the next order shifts the slope by about c/N at the ladder's
#: geometric-mean N (64); N*b = 0.371, 0.346, 0.365 (+-0.014..0.025) at N = 32, 64, 128
#: (WN linear, L(t=8), 2000 seeds) gives |c| <~ 3; the allowance covers |c| <= 6
SLOPE_ALLOWANCE_BIAS = 0.1
BIAS_T_MAX = 8.0  # the bias ladder's observable is X(BIAS_T_MAX)
N_BOOT = 400
BN_BATCH = 16  # real-batch BN, M
BN_LR = 0.25
BN_INIT = {"R_init": 0.99, "gamma_init": 0.95, "L_init": 1.0}  # gamma between candidates
#: average over t >= BN_WINDOW: gamma relaxes on t ~ 4 (linear: its long-time value;
#: ReLU + learnable beta has a slower (gamma, beta) mode, t ~ 50)
BN_WINDOW = 20.0
#: peer parity (issue 15.3): plain SGD with label noise S, L2 weight decay lambda and a
#: teacher activation other than the student's, ODE vs simulation (reduced engine, N =
#: PEER_N); (student, teacher, S, lambda, lr)
PEER_CASES = (("erf", "linear", 0.2, 0.2, 1.0), ("relu", "erf", 0.3, 0.1, 0.8),
              ("linear", "relu", 0.1, 0.3, 0.8))
PEER_N = 1000
SIM_SIZE = {
    # "seeds" per N of SIM_N: the rms slope's variance is ~ 1/K(N_min) + 1/K(N_max) and a
    # run costs ~ K N, so the small N get more seeds
    True: {"seeds": (64, 48, 24), "t_max": 6.0, "n_points": 13,
           "bias_cases": (("wn", 0.0, "linear", "L"),), "bias_N": (32, 64, 128),
           "bias_seeds": 1000, "vec_N": 500, "vec_seeds": 64, "vec_t_max": 4.0,
           "bn_N": (500, 2000), "bn_seeds": 32, "bn_t_max": 40.0, "bn_long": None,
           "peer_seeds": 64},
    False: {"seeds": (512, 256, 128), "t_max": 20.0, "n_points": 41,
            "bias_cases": (("wn", 0.0, "linear", "L"), ("wn", 0.0, "relu", "R")),
            "bias_N": (32, 64, 128, 256), "bias_seeds": 4000, "vec_N": 500,
            "vec_seeds": 256, "vec_t_max": 8.0, "bn_N": (1000, 4000), "bn_seeds": 128,
            "bn_t_max": 60.0,
            "bn_long": (1000, 16, 200.0),  # ReLU's slow (gamma, beta) mode: N, seeds, t
            "peer_seeds": 256},
}


@register(CLAIM, "Order-parameter ODEs: integrals, drift, fixed points, Jacobian",
          paper="Luo et al. 2019, eq. 6, 13-15, App. C.5")
def check(quick: bool = True, seed: int = 0) -> CheckResult:
    rng = np.random.default_rng(seed)
    comps = []
    n_mc = 200_000 if quick else 2_000_000
    # 1. integrals vs Monte Carlo
    for act, (q, r) in (("relu", (0.7, 0.4)), ("relu", (1.3, -0.5)), ("erf", (0.9, 0.8)),
                        ("linear", (1.2, 0.3))):
        mc = gaussian_moments(act, q, r, n_mc, rng)
        for name in I.QUANTITIES:
            comps.append(compare(CLAIM, f"{name} {act} Q={q} R={r}",
                                 I.evaluate(name, act, q, r).item(), mc[name][0],
                                 stderr=mc[name][1], note=f"Monte Carlo, n={n_mc}"))
    # 2. right-hand side vs finite-N one-step drift
    N = 2000 if quick else 4000
    n_steps = 16_000 if quick else 100_000
    cases = (("wn-decay", "relu", 1.5, 0.25, (0.8, 0.6, 1.2)),
             ("wn", "erf", 1.0, 0.0, (1.1, 0.3, 0.9)),
             ("sgd", "relu", 1.0, 0.0, (0.8, 0.6)),
             ("wn-decay", "linear", 0.8, 0.1, (0.7, 0.5, 1.0)))
    for method, act, lr, zeta, pt in cases:
        drift = one_step_drift(method, act, lr, zeta, pt, N=N, n_samples=n_steps,
                               seed=int(rng.integers(1 << 31)))
        f = D.rhs(method, act, lr, zeta)(0.0, list(pt))
        names = ("Q", "R") if method == "sgd" else ("gamma", "R", "L")
        for i, name in enumerate(names):
            key = "gamma" if name == "Q" else name
            # O(1/N) allowance: |x_perp|^2 = 1 - 1/N and second-order terms of the
            # normalized update contribute (1 + lr^2) / N relative to O(1) drifts.
            allow = 3.0 * (1.0 + lr**2) / N
            comps.append(compare(CLAIM, f"d{name}/dt {method}/{act} lr={lr} zeta={zeta}", f[i],
                                 drift[key][0], stderr=drift[key][1], atol=allow,
                                 note=f"finite-N SGD drift, N={N}, {n_steps} steps; "
                                      f"O(1/N) allowance {allow:.3g}"))
    # 3. fixed points: root vs long-time ODE integration (L frozen: quasi-static)
    for act, zeta, eta_eff in (("relu", 0.25, 1.0), ("linear", 0.0625, 1.5), ("erf", 0.25, 2.0)):
        g0 = D.fixed_point("wn-decay", act, zeta).gamma
        lr = eta_eff / g0
        br = D.quasi_static_branch(act, zeta, np.linspace(eta_eff / 20, eta_eff, 20))
        tr = D.integrate("wn-decay", act, lr=lr, zeta=zeta, gamma_init=0.5, R_init=0.3,
                         t_max=400.0, freeze_L=True, rtol=1e-10, atol=1e-12)
        comps.append(compare(CLAIM, f"quasi-static R* wn-decay/{act} zeta={zeta} "
                                    f"eta_eff={eta_eff}",
                             br.R[-1], tr.R[-1], atol=1e-6,
                             note="root (continuation) vs solve_ivp endpoint at t=400"))
        comps.append(compare(CLAIM, f"quasi-static gamma* wn-decay/{act} zeta={zeta}",
                             br.gamma[-1], tr.gamma[-1], atol=1e-6,
                             note="root (continuation) vs solve_ivp endpoint at t=400"))
    # 4. sympy Jacobian vs finite differences of the right-hand side
    h = 1e-6
    for method, act, lr, zeta, pt in cases:
        J = D.jacobian(method, act, lr, zeta, pt)
        f = D.rhs(method, act, lr, zeta)
        Jfd = np.empty_like(J)
        for j in range(len(pt)):
            e = np.zeros(len(pt))
            e[j] = h
            Jfd[:, j] = (f(0, np.add(pt, e)) - f(0, np.subtract(pt, e))) / (2 * h)
        err = float(np.max(np.abs(J - Jfd)))
        comps.append(compare(CLAIM, f"Jacobian {method}/{act} max |sympy - FD|", 0.0, err,
                             atol=1e-6, note="central differences, h=1e-6: O(h^2)+roundoff/h"))
    # 5. ODE vs simulation
    sim_comps, sim_plots, sim_summary = ode_vs_simulation_section(quick, seed)
    comps.extend(sim_comps)
    # figure: trajectories
    plots = []
    for act in ("relu", "linear"):
        ss = []
        for method, zeta in (("wn-decay", 0.25), ("wn", 0.0), ("sgd", 0.0)):
            init = {"L_init": 0.5} if method == "sgd" else {"gamma_init": 0.5}
            tr = D.integrate(method, act, lr=0.5, zeta=zeta, R_init=0.05, t_max=60.0,
                             n_points=121, **init)
            ss.append(series(f"{method} R", tr.t, tr.R))
            ss.append(series(f"{method} gamma", tr.t, tr.gamma, style="dashed"))
        plots.append(Plot(f"ODE trajectories ({act}, lr=0.5)", "t = steps / N",
                          "R (solid), gamma (dashed)", tuple(ss)))
    plots.extend(sim_plots)
    summary = ("Eq. (6) re-derived from the SGD update (5): the gamma step is lr/N, dL/dt "
               "has no O(lr) term because the update is orthogonal to w. Right-hand sides "
               "agree with the drift measured on finite-N SGD; ReLU I2 (eq. 15) as printed "
               "is garbled and the derived form agrees with Monte Carlo. " + sim_summary)
    return CheckResult(CLAIM, REGISTRY_TITLE, tuple(comps), tuple(plots), summary)


REGISTRY_TITLE = "Order-parameter ODEs: integrals, drift, fixed points, Jacobian"


# ---------------------------------------------------------- 5. ODE vs simulation
def _seed_block(seed: int, section: int, item: int = 0, n: int = 0) -> int:
    """First simulation seed of a block of at most 10^4 consecutive seeds, distinct for
    every (check seed, section, item, n): no two runs share a random stream."""
    return ((((seed + 1) * 100 + section) * 100 + item) * 100 + n) * 10_000


def _fields(sim_method: str) -> tuple[str, ...]:
    """Order parameters compared: plain SGD's gamma is Q = L (one field)."""
    return ("R", "gamma") if sim_method == "sgd" else ("R", "gamma", "L")


def _label(sim_method: str, field: str) -> str:
    return "Q" if sim_method == "sgd" and field == "gamma" else field


def _case_name(sim_method: str, zeta: float, activation: str) -> str:
    z = f"(zeta={zeta:g})" if zeta else ""
    return f"{sim_method}{z}/{activation}"


@functools.lru_cache(maxsize=256)
def simulate(method: str, activation: str, N: int, seeds: int, seed: int, t_max: float,
             n_points: int, *, zeta: float = 0.0, lr: float = SIM_LR, engine: str = "reduced",
             batch_size: int = 1, freeze_L: bool = False, init=None):
    """:func:`perceptron_theory.simulate.online.run` from ``init`` (default
    :func:`_init`), memoized (the runs are seeded and deterministic; a check run twice in
    one process, as in the tests, reuses them)."""
    from perceptron_theory.simulate import online  # numba: loaded on first use

    init = dict(_init(method) if init is None else init)
    return online.run(method, activation, N=N, lr=lr, zeta=zeta, t_max=t_max,
                      n_points=n_points, seeds=seeds, seed=seed, engine=engine,
                      batch_size=batch_size, freeze_L=freeze_L, **init)


def _init(method: str) -> dict:
    """The check's initial condition for ``method`` (:data:`SIM_INIT`, :data:`SGD_INIT`)."""
    return SGD_INIT if method == "sgd" else SIM_INIT


def _ode(method: str, activation: str, zeta: float, t_max: float, n_points: int,
         lr: float = SIM_LR, init=None):
    init = _init(method) if init is None else init
    return D.integrate(method, activation, lr=lr, zeta=zeta, t_max=t_max,
                       n_points=n_points, rtol=1e-10, atol=1e-12, **init)


def _deviations(res, tr, field: str) -> np.ndarray:
    """``X_seed(t) - X_ode(t)`` at the recorded times after t = 0, shape=(K, n_points - 1)."""
    if not np.allclose(res.t, tr.t, rtol=0.0, atol=1e-12):
        raise ValueError("simulation and ODE record at different times")
    dev = getattr(res, field)[:, 1:] - getattr(tr, field)[1:]
    return np.where(res.diverged[:, None], np.nan, dev)


def _loglog_slope(N, y) -> np.ndarray:
    """Least-squares slope of log y on log N; ``y`` shape=(len(N),) or (len(N), B)."""
    return np.polyfit(np.log(np.asarray(N, float)), np.log(y), 1)[0]


def rms_slope(devs, Ns, rng, n_boot: int = N_BOOT) -> tuple[np.ndarray, float, float]:
    """rms single-run deviation per N, its log-log slope and the slope's bootstrap SE.

    ``rms = max_t sqrt(E_seeds dev(t)^2)``: the peak of the spread, reached during the
    transient. (Pooling all times would mix in the converged stretch, where R sits next
    to 1 and its fluctuation is second order, O(1/N), steepening the slope.) The
    bootstrap resamples whole seeds (trajectories) independently at each N.
    """
    rms = np.array([np.sqrt(np.mean(d**2, axis=0)).max() for d in devs])
    boot = []
    for d in devs:
        idx = rng.integers(0, d.shape[0], (n_boot, d.shape[0]))
        boot.append(np.sqrt(np.mean(d[idx] ** 2, axis=1)).max(axis=1))
    slopes = _loglog_slope(Ns, np.array(boot))
    return rms, float(_loglog_slope(Ns, rms)), float(np.std(slopes, ddof=1))


def trajectory_comparisons(activation: str, case, Ns, *, seeds, t_max: float,
                           n_points: int, seed: int, rng) -> tuple[list, dict]:
    """Gap of the mean (per N and field) and the rms slope (per field) for one case.

    ``seeds``: the number of seeds at each N of ``Ns``. Returns the comparisons and the
    data of the figure (ODE, means, SEs, rms per N).
    """
    sim_method, zeta = case
    name = _case_name(sim_method, zeta, activation)
    tr = _ode(sim_method, activation, zeta, t_max, n_points)
    runs = {N: simulate(sim_method, activation, N, K, seed + 10_000 * k, t_max, n_points,
                        zeta=zeta) for k, (N, K) in enumerate(zip(Ns, seeds, strict=True))}
    comps, fig = [], {"t": tr.t, "ode": {}, "mean": {}, "se": {}, "rms": {}}
    for field in _fields(sim_method):
        lab = _label(sim_method, field)
        devs = [_deviations(runs[N], tr, field) for N in Ns]
        fig["ode"][field] = getattr(tr, field)
        fig["mean"][field] = {N: runs[N].mean(field)[0] for N in Ns}
        fig["se"][field] = {N: runs[N].mean(field)[1] for N in Ns}
        for N, d in zip(Ns, devs, strict=True):
            m = np.mean(d, axis=0)
            se = np.std(d, axis=0, ddof=1) / math.sqrt(d.shape[0])
            i = int(np.argmax(np.abs(m)))
            comps.append(compare(
                CLAIM, f"ODE vs sim: max_t |<{lab}>_sim - {lab}_ode| {name} N={N}", 0.0,
                float(np.max(np.abs(m))), stderr=float(np.max(se)), atol=BIAS_COEF / N,
                note=(f"{d.shape[0]} seeds, t <= {t_max:g}, lr={SIM_LR:g}; largest at "
                      f"t={tr.t[1 + i]:.3g}: N*(mean-ode) = {N * m[i]:+.2f} +- "
                      f"{N * se[i]:.2f} (N*SE; noise-limited where N*SE > 1); tolerance "
                      f"4 max_t SE + O(1/N) bias allowance {BIAS_COEF:g}/N")))
        rms, slope, slope_se = rms_slope(devs, Ns, rng)
        fig["rms"][field] = rms
        comps.append(compare(
            CLAIM, f"ODE vs sim: slope of log max_t rms(single run - ODE, {lab}) vs log N, {name}",
            -0.5, slope, stderr=slope_se, atol=SLOPE_ALLOWANCE_RMS,
            note=(f"N={list(Ns)}, seeds={list(seeds)}, rms*sqrt(N) = "
                  + ", ".join(f"{r * math.sqrt(N):.3f}" for r, N in zip(rms, Ns, strict=True))
                  + f"; bootstrap SE over seeds; allowance {SLOPE_ALLOWANCE_RMS} for the "
                  "O(1/N) bias inside the rms")))
    return comps, fig


def bias_ladder(case, activation: str, field: str, Ns, *, seeds: int, t_max: float,
                seed: int, rng) -> tuple:
    """Bias of the mean at t_max, ``E X(t_max) - X_ode(t_max)``, on a ladder of N.

    Returns ``(bias, se, slope, slope_se)``; the slope is the log-log regression, its SE
    the bootstrap over seeds.
    """
    sim_method, zeta = case
    tr = _ode(sim_method, activation, zeta, t_max, 2)
    ends = []
    for k, N in enumerate(Ns):
        r = simulate(sim_method, activation, N, seeds, seed + 10_000 * k, t_max, 2, zeta=zeta)
        ends.append(_deviations(r, tr, field)[:, -1])
    bias = np.array([e.mean() for e in ends])
    se = np.array([e.std(ddof=1) / math.sqrt(e.size) for e in ends])
    boot = np.array([e[rng.integers(0, e.size, (N_BOOT, e.size))].mean(axis=1) for e in ends])
    with np.errstate(invalid="ignore"):
        slopes = _loglog_slope(Ns, np.abs(boot))
        slope = float(_loglog_slope(Ns, np.abs(bias)))
    return bias, se, slope, float(np.nanstd(slopes, ddof=1))


def engine_comparisons(*, N: int, seeds: int, t_max: float, seed: int) -> list:
    """The reduced chain against the literal N-vector simulation (same law)."""
    sim_method, zeta = SIM_CASES[0]
    act = SIM_ACTIVATIONS[0]
    n_points = int(round(2 * t_max)) + 1
    runs = {e: simulate(sim_method, act, N, seeds, seed + 10_000 * k, t_max, n_points,
                        zeta=zeta, engine=e) for k, e in enumerate(("vector", "reduced"))}
    comps = []
    for field in _fields(sim_method):
        # time-averaged mean (one number per seed) and the spread at t_max
        avg = {e: getattr(r, field)[:, 1:].mean(axis=1) for e, r in runs.items()}
        se = math.sqrt(sum(np.var(a, ddof=1) / a.size for a in avg.values()))
        comps.append(compare(
            CLAIM, f"engines: time-averaged <{field}>, vector vs reduced, "
                   f"{_case_name(sim_method, zeta, act)} N={N}",
            avg["reduced"].mean(), avg["vector"].mean(), stderr=se,
            note=f"{seeds} seeds each, t in (0, {t_max:g}]; independent seeds"))
        end = {e: getattr(r, field)[:, -1] for e, r in runs.items()}
        sd = {e: float(np.std(v, ddof=1)) for e, v in end.items()}
        se_sd = math.sqrt(sum(s**2 / (2 * (seeds - 1)) for s in sd.values()))
        comps.append(compare(
            CLAIM, f"engines: seed spread sd({field}(t={t_max:g})), vector vs reduced, N={N}",
            sd["reduced"], sd["vector"], stderr=se_sd,
            note="SE of a standard deviation sd/sqrt(2(K-1)) (normal approximation)"))
    return comps


def _window(t, x) -> np.ndarray:
    """Average over the recorded times t >= BN_WINDOW (last axis)."""
    return np.asarray(x)[..., np.asarray(t) >= BN_WINDOW].mean(axis=-1)


def _zeta_fit(activation: str, gamma: float, shift: float) -> float:
    """zeta whose small-lr gamma0 (Prop. 1) is ``gamma - shift`` (``shift``: the O(lr)
    offset of the finite-lr fixed point from gamma0, taken at a nearby zeta)."""
    g = gamma - shift
    return (1.0 / g - 1.0) / (2.0 if activation == "relu" else 1.0)


def real_batch_bn(Ns, *, seeds: int, t_max: float, seed: int) -> tuple[list, dict]:
    """Real-batch BN (M = BN_BATCH) against the wn-decay ODE at the candidate decays.

    Both with L frozen at ``BN_INIT["L_init"]`` (fixed effective rate) from ``BN_INIT``;
    gamma and R are averaged over ``t >= BN_WINDOW`` in the simulation (per seed) and
    along the integrated ODE trajectory alike, at the two dimensions ``Ns``.
    """
    M = BN_BATCH
    cands = {"plug-in 1/(2M)": 1.0 / (2 * M),
             "real-batch gradient-matched": BN.equivalent_decay_real_batch(M, convention="decay2"),
             "independence model 3/(2M)": BN.equivalent_decay_linear(M, convention="decay2")}
    comps, info = [], {}
    n_points = int(round(t_max)) + 1
    for act in SIM_ACTIVATIONS:
        ode = {}
        for k, z in cands.items():
            tr = D.integrate("wn-decay", act, lr=BN_LR, zeta=z, t_max=t_max, n_points=n_points,
                             freeze_L=True, rtol=1e-10, atol=1e-12, **BN_INIT)
            ode[k] = (float(_window(tr.t, tr.gamma)), float(_window(tr.t, tr.R)))
        meas = {}
        for k, N in enumerate(Ns):
            r = simulate("bn", act, N, seeds, seed + 10_000 * k, t_max, n_points, lr=BN_LR,
                         batch_size=M, freeze_L=True, init=tuple(BN_INIT.items()))
            g, R = _window(r.t, r.gamma), _window(r.t, r.R)
            meas[N] = {"gamma": (float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size))),
                       "R": (float(R.mean()), float(R.std(ddof=1) / math.sqrt(R.size))),
                       "beta": float(_window(r.t, r.beta).mean()),
                       "diverged": int(r.diverged.sum())}
        plug = ode["plug-in 1/(2M)"]
        n1, n2 = Ns
        for i, field in enumerate(("gamma", "R")):
            (x1, s1), (x2, s2) = meas[n1][field], meas[n2][field]
            comps.append(compare(
                CLAIM, f"BN(M={M})/{act}: {field} gap to the wn-decay ODE (zeta=1/(2M)), "
                       f"N={n1} vs N={n2}",
                x1 - plug[i], x2 - plug[i], stderr=math.hypot(s1, s2), atol=BIAS_COEF / n1,
                note=(f"gap {x2 - plug[i]:+.3g} at N={n2} ({(x2 - plug[i]) / s2:+.0f} SE), "
                      f"t in [{BN_WINDOW:g}, {t_max:g}], lr={BN_LR:g}: the model error of BN -> "
                      f"gamma decay does not shrink with N; allowance {BIAS_COEF:g}/N_min")))
        # the gap the mapping cannot close: linear -- gamma (R = 1 in BN, 0.99994 in the
        # ODE); ReLU -- R (gamma still drifts with beta at these times, see the summary)
        i, field = (0, "gamma") if act == "linear" else (1, "R")
        x2, s2 = meas[n2][field]
        comps.append(expect(
            CLAIM, f"BN(M={M})/{act}: |{field} gap| to the wn-decay ODE (zeta=1/(2M)) at N={n2} "
                   "exceeds what finite size allows",
            4 * s2 + BIAS_COEF / n2, abs(x2 - plug[i]), ">=",
            note=f"bound 4 SE + {BIAS_COEF:g}/N: a model error, not a finite-N effect"))
        if act == "linear":
            key = "real-batch gradient-matched"
            for N in Ns:
                g, se = meas[N]["gamma"]
                comps.append(compare(
                    CLAIM, f"BN(M={M})/linear: gamma vs wn-decay ODE at the real-batch "
                           f"gradient-matched zeta={cands[key]:.4f}, N={N}",
                    ode[key][0], g, stderr=se, atol=BIAS_COEF / N,
                    note=(f"t in [{BN_WINDOW:g}, {t_max:g}], L frozen, {seeds} seeds; ODE gamma "
                          "for the candidates: " + ", ".join(f"{k} ({M * cands[k]:.2f}/M) "
                                                             f"{v[0]:.4f}"
                                                             for k, v in ode.items()))))
        g2 = meas[n2]["gamma"][0]
        shift = plug[0] - D.gamma0_closed_form(act, cands["plug-in 1/(2M)"])
        info[act] = {"gamma": g2, "gamma_se": meas[n2]["gamma"][1], "R": meas[n2]["R"][0],
                     "beta": meas[n2]["beta"], "R_ode_plugin": plug[1],
                     "zeta_fit_times_M": M * _zeta_fit(act, g2, shift),
                     "gamma_ode": {k: v[0] for k, v in ode.items()},
                     "candidates_times_M": {k: M * z for k, z in cands.items()}}
    return comps, info


def peer_parity_comparisons(*, seeds: int, t_max: float, n_points: int, seed: int) -> list:
    """Plain SGD with label noise, L2 decay and another teacher (:data:`PEER_CASES`):
    ``max_t |<X>_sim - X_ode|`` for Q, R and eps against 4 SE + BIAS_COEF/N."""
    from perceptron_theory.simulate import online

    comps = []
    for k, (act, teacher, S, wd, lr) in enumerate(PEER_CASES):
        kw = dict(teacher=teacher, noise=S, weight_decay=wd)
        res = online.run("sgd", act, N=PEER_N, lr=lr, t_max=t_max, n_points=n_points,
                         seeds=seeds, seed=seed + 10_000 * k, engine="reduced", **kw,
                         **SGD_INIT)
        tr = D.integrate("sgd", act, lr=lr, t_max=t_max, n_points=n_points, rtol=1e-10,
                         atol=1e-12, **kw, **SGD_INIT)
        name = f"sgd/{act} teacher={teacher} S={S:g} lambda={wd:g}"
        for field in ("gamma", "R", "eps"):
            d = _deviations(res, tr, field)
            m = np.mean(d, axis=0)
            se = np.std(d, axis=0, ddof=1) / math.sqrt(d.shape[0])
            i = int(np.argmax(np.abs(m)))
            comps.append(compare(
                CLAIM, f"ODE vs sim (peer options): max_t |<{_label('sgd', field)}>_sim - "
                       f"ode| {name} N={PEER_N}", 0.0, float(np.max(np.abs(m))),
                stderr=float(np.max(se)), atol=BIAS_COEF / PEER_N,
                note=(f"{d.shape[0]} seeds, t <= {t_max:g}, lr={lr:g}, reduced engine; "
                      f"largest at t={tr.t[1 + i]:.3g}: N*(mean-ode) = {PEER_N * m[i]:+.2f} "
                      f"+- {PEER_N * se[i]:.2f}; tolerance 4 max_t SE + {BIAS_COEF:g}/N")))
    return comps


def ode_vs_simulation_section(quick: bool, seed: int) -> tuple[list, list, str]:
    """Section 5 of the check: comparisons, figures and a summary sentence."""
    cfg = SIM_SIZE[bool(quick)]
    rng = np.random.default_rng([seed, 6])  # bootstrap
    comps, figs = [], {}
    for a, act in enumerate(SIM_ACTIVATIONS):
        for c, case in enumerate(SIM_CASES):
            cc, fig = trajectory_comparisons(act, case, SIM_N, seeds=cfg["seeds"],
                                             t_max=cfg["t_max"], n_points=cfg["n_points"],
                                             seed=_seed_block(seed, 1, 3 * a + c), rng=rng)
            comps.extend(cc)
            figs[(case[0], act)] = fig
    # the 1/N bias, resolved on a ladder of small N with many seeds
    ladders = []
    for k, (sm, z, act, field) in enumerate(cfg["bias_cases"]):
        bias, se, slope, slope_se = bias_ladder((sm, z), act, field, cfg["bias_N"],
                                                seeds=cfg["bias_seeds"], t_max=BIAS_T_MAX,
                                                seed=_seed_block(seed, 2, k), rng=rng)
        Ns = np.array(cfg["bias_N"])
        comps.append(compare(
            CLAIM, f"ODE vs sim: slope of log |bias of the mean of {_label(sm, field)}"
                   f"(t={BIAS_T_MAX:g})| vs log N, {_case_name(sm, z, act)}",
            -1.0, slope, stderr=slope_se, atol=SLOPE_ALLOWANCE_BIAS,
            note=(f"N={list(cfg['bias_N'])}, {cfg['bias_seeds']} seeds each; N*bias = "
                  + ", ".join(f"{n * b:+.3f}+-{n * s:.3f}" for n, b, s in zip(Ns, bias, se,
                                                                         strict=True))
                  + f"; bootstrap SE; allowance {SLOPE_ALLOWANCE_BIAS} for the O(1/N^2) term")))
        ladders.append((f"|bias| {_label(sm, field)}, {_case_name(sm, z, act)}", Ns, bias, se))
    comps.extend(engine_comparisons(N=cfg["vec_N"], seeds=cfg["vec_seeds"],
                                    t_max=cfg["vec_t_max"], seed=_seed_block(seed, 3)))
    peer = peer_parity_comparisons(seeds=cfg["peer_seeds"], t_max=cfg["t_max"],
                                   n_points=cfg["n_points"], seed=_seed_block(seed, 6))
    comps.extend(peer)
    bn_comps, bn = real_batch_bn(cfg["bn_N"], seeds=cfg["bn_seeds"], t_max=cfg["bn_t_max"],
                                 seed=_seed_block(seed, 4))
    if cfg["bn_long"] is not None:
        N, k, t_long = cfg["bn_long"]
        r = simulate("bn", "relu", N, k, _seed_block(seed, 5), t_long, 2, lr=BN_LR,
                     batch_size=BN_BATCH, freeze_L=True, init=tuple(BN_INIT.items()))
        bn["relu"]["long"] = {"N": N, "t": t_long, "gamma": float(r.mean("gamma")[0][-1]),
                              "beta": float(r.mean("beta")[0][-1])}
    comps.extend(bn_comps)
    plots = _sim_plots(figs, ladders, cfg)
    slopes = [c.measured for c in comps if "max_t rms(" in c.quantity]
    gaps = [np.mean([c.measured for c in comps
                     if "max_t |<R>_sim" in c.quantity and c.quantity.endswith(f"N={N}")])
            for N in SIM_N]
    bias_slopes = [c.measured for c in comps if "|bias of the mean" in c.quantity]
    lin, relu = bn["linear"], bn["relu"]
    cand = lin["candidates_times_M"]
    summary = (
        f"ODE vs simulation (N = {', '.join(map(str, SIM_N))}; BN-as-ODE, WN, SGD; ReLU and "
        f"linear): single runs deviate from the ODE by an rms ~ N^-1/2 (log-log slopes "
        f"{min(slopes):.2f} to {max(slopes):.2f}); the bias of the mean is O(1/N) "
        f"(slope {', '.join(f'{s:.2f}' for s in bias_slopes)} on N = "
        f"{', '.join(map(str, cfg['bias_N']))}) and below the noise at N >= 1000, so the "
        "sup-gap of the mean shrinks with N like its standard error (max_t |<R> - R_ode|, "
        f"mean over the six cases: {', '.join(f'{g:.2g}' for g in gaps)}). The reduced engine "
        f"agrees with the N-vector one. Plain SGD with label noise, L2 weight decay and a "
        f"teacher activation other than the student's ({len(PEER_CASES)} cases) follows "
        f"its ODE within 4 SE + 1/N ({sum(c.ok for c in peer)}/{len(peer)} "
        "comparisons). Real-batch BN (M = {BN_BATCH}) is not the wn-decay "
        "ODE at any N: the gap is N-independent. Linear student: gamma -> "
        f"{lin['gamma']:.4f}, fitted zeta = {lin['zeta_fit_times_M']:.2f}/M against the "
        f"real-batch gradient-matched {cand['real-batch gradient-matched']:.2f}/M (3/(4M) at "
        "large M in the ODE's decay2 convention, 3/(8M) in Theorem 1's), the plug-in 0.5/M "
        f"and the independence model's {cand['independence model 3/(2M)']:.2f}/M; R = "
        f"{lin['R']:.6f} (BN's projection removes the residual (1 - gamma) t, which for "
        f"wn-decay acts as label noise: ODE R* = {lin['R_ode_plugin']:.5f}). ReLU at t in "
        f"[{BN_WINDOW:g}, {cfg['bn_t_max']:g}]: gamma = {relu['gamma']:.4f} (zeta = "
        f"{relu['zeta_fit_times_M']:.2f}/M if read as gamma0), R = {relu['R']:.5f} against the "
        f"ODE's {relu['R_ode_plugin']:.5f} at 1/(2M) (the batch noise on w costs alignment), "
        f"beta = {relu['beta']:+.3f}" + (
            f"; by t = {relu['long']['t']:g} gamma = {relu['long']['gamma']:.3f}, beta = "
            f"{relu['long']['beta']:+.3f} (N = {relu['long']['N']}): (gamma, beta) relax on "
            "t ~ 50, a slow mode the wn-decay ODE (no beta) lacks." if "long" in relu else
            " and still drifting (the full mode follows it to t = 200)."))
    return comps, plots, summary


def _sim_plots(figs, ladders, cfg) -> list:
    """R(t): ODE vs simulation mean at each N; spread and bias against N."""
    s = series
    f = figs[(SIM_CASES[0][0], SIM_ACTIVATIONS[0])]
    ser = [s("ODE", f["t"], f["ode"]["R"])]
    for N in SIM_N:
        ser.append(s(f"sim N={N} (mean +- SE)", f["t"], f["mean"]["R"][N], f["se"]["R"][N],
                     style="points"))
    sm, z = SIM_CASES[0]
    p1 = Plot(f"R(t): ODE vs simulation, {_case_name(sm, z, SIM_ACTIVATIONS[0])}, "
              f"lr={SIM_LR:g}", "t = samples / N", "R", tuple(ser))
    ser = []
    for (sm, act), fig in figs.items():
        ser.append(s(f"{sm}/{act}", SIM_N, fig["rms"]["R"], style="points"))
    Ns = np.array(SIM_N, float)
    first = figs[(SIM_CASES[0][0], SIM_ACTIVATIONS[0])]["rms"]["R"][0]
    ser.append(s("N^-1/2", Ns, first * np.sqrt(Ns[0] / Ns), style="dashed"))
    for lab, n, b, se in ladders:
        ser.append(s(lab, n, np.abs(b), se, style="points"))
        ser.append(s("N^-1", n, abs(b[0]) * n[0] / n, style="dashed"))
    p2 = Plot("Approach to the ODE: rms single-run deviation of R and |bias of the mean|",
              "N", "deviation", tuple(ser), xscale="log", yscale="log")
    return [p1, p2]
