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
  NNLS; :mod:`perceptron_theory.simulate.finite_n`, with the other exact solvers) for
  ``w.x_p = y_p`` (y_p > 0), ``w.x_p <= 0`` (y_p <= 0); (iii) L-BFGS-B from random
  initializations (keep the lowest training loss), which stalls on dead ReLU units.
* **BN linear student, offline SGD** (Fig. 1a's squares; M = 32, S = 0.25).
  :func:`perceptron_theory.simulate.offline.run` sweeps ``P = alpha N`` samples for
  hundreds to thousands of epochs (rate 0.3 -> 0.003 geometric, initial ``L = 0.05``),
  method ``"bn"`` (batch mean and variance, learned beta, running averages at test time),
  and method ``"wn-decay"`` at ``zeta = 1/(2M)`` per sample as the control. The
  simulation's training sets are reproducible per seed
  (:func:`perceptron_theory.simulate.data.training_set`), so each run is compared *paired*
  with exact finite-N solutions on the same data:

  - WN + decay must equal ridge at ``zeta_sum = P zeta / N`` (convergence control);
  - BN must equal ``c_M v`` with ``v`` the centred (intercept) min-norm / least-squares
    solution and ``c_M = E[sigma_B/sigma_P]`` (``batchnorm.real_batch_shrinkage``), plus
    the initial weights outside the centred row space (batch-statistics gradients never
    move them) and the EMA noise of the running averages,
    ``v_EMA (Q^2/(2(M-1)) + gamma^2/M)``, ``v_EMA = m/(2-m)``.

  Why not ridge: BN divides by the *training-set* spread of ``h = w.x``, so a decay on
  gamma (BN's implicit one, from the batch noise: expected loss ``-c_M gamma y.h_hat``)
  penalizes ``|X w|^2`` (the training outputs), not ``|w|^2``: it rescales the
  least-squares fit instead of damping its small-eigenvalue directions, and the learning
  curve keeps the min-norm divergence at alpha = 1. Tolerance of the paired records: 4 SE
  plus the change over the second half of training. Against the N -> inf curves: the BN
  mean with the exact finite-N mean of ``|c_M v - w*|^2/N`` as a control variate
  (:func:`shrunk_min_norm_finite_n`, inverse Wishart with ``P - 1`` samples), 4 SE plus the
  O(1/N) allowance from two N. Candidate "BN = ridge" decays (1/(2M), alpha/(2M),
  3 alpha/(4M), 3 alpha/(8M)) and one-parameter families (``zeta = k alpha/M``,
  ``k/M``, shrink ``c = 1 - k/M``) are fitted over alpha (weighted mean of per-alpha k,
  chi^2): the shrink family must fit with ``k`` = (1 - c_M) M, the ridge families must be
  rejected where alpha ~ 1 is sampled. alpha = 1 itself is avoided (min-norm diverges,
  convergence takes ~ 1/lambda_min epochs).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.stats import chi2

from perceptron_theory.plotting import Plot, series
from perceptron_theory.simulate import data as sim_data
from perceptron_theory.simulate import finite_n, offline
from perceptron_theory.simulate.kernels import RUNNING_MOMENTUM
from perceptron_theory.simulate.online import exact_test_error
from perceptron_theory.theory import batchnorm
from perceptron_theory.theory import generalization as gen
from validation._core import CheckResult, compare, expect, register

CLAIM = "L-F1a"
TITLE = ("Fig. 1a learning curves (min-norm, ridge, BN as decay) vs exact finite N; "
         "zeta* = S; ReLU eq. 25 vs exhaustive training; offline BN simulation")

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
    "ridge zeta=S": (lambda a: gen.learning_curve("linear", "wn-decay", a, noise=NOISE,
                                                  zeta=NOISE).eps,
                     lambda a: NOISE),
    "zeta=1/(2M) plug-in": (lambda a: gen.learning_curve("linear", "wn-decay", a, noise=NOISE,
                                                         batch_size=BATCH,
                                                         decay_convention="sum").eps,
                            lambda a: 1.0 / (2 * BATCH)),
    "zeta=alpha/(2M) per-sample": (lambda a: gen.learning_curve(
        "linear", "wn-decay", a, noise=NOISE, batch_size=BATCH).eps, lambda a: a / (2 * BATCH)),
}


# ------------------------------------------------------------------- finite N, linear
def _linear_draw(N: int, alpha: float, zetas: dict, rng, realized: bool):
    """One draw: conditional (and, if ``realized``, realized) eps for every curve."""
    X, y, w_star = finite_n.teacher_data(N, alpha, NOISE, rng)
    P = X.shape[0]
    gram = X @ X.T if P < N else X.T @ X
    lam = np.linalg.eigvalsh(gram)  # the min(P, N) eigenvalues, all > 0 a.s.
    n_zero = N - min(P, N)
    real, cond = {}, {}
    for name, z in zetas.items():
        cond[name] = float((n_zero + np.sum((z * z + NOISE * lam) / (lam + z) ** 2)) / N)
        if not realized:
            continue
        w = finite_n.ridge_fit(X, y, z)
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


def relu_finite_n(N: int, alpha: float, S: float, n_seeds: int, seed: int,
                  lbfgs_inits: int = 0, lbfgs_seeds: int = 0) -> dict:
    """Mean/SE of eps: the y>0-only fit, the min-norm interpolator, L-BFGS-B (random inits)."""
    rng = np.random.default_rng([seed, N, int(1000 * alpha), int(1000 * S)])
    rows = {"pos_only": [], "interp": [], "feasible": [], "lbfgs": [], "lbfgs_excess": []}
    for i in range(n_seeds):
        X, y, w_star = finite_n.teacher_data(N, alpha, S, rng)
        pos = y > 0
        w_pos = np.linalg.lstsq(X[pos], y[pos], rcond=None)[0]
        rows["pos_only"].append(_eps_relu(w_pos, w_star, N))
        w_int = finite_n.relu_min_norm_interpolator(X, y)
        rows["feasible"].append(w_int is not None)
        if w_int is not None:
            rows["interp"].append(_eps_relu(w_int, w_star, N))
        if lbfgs_inits and i < lbfgs_seeds:
            floor = 0.5 * float(np.sum(y[~pos] ** 2))  # global minimum when feasible
            best = None
            for _ in range(lbfgs_inits):
                o = minimize(finite_n.relu_loss, rng.standard_normal(N), args=(X, y), jac=True,
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


# ================================================ BN linear student, offline simulation
# Luo et al.'s BN squares of Fig. 1a: multi-epoch SGD of the batch-normalized linear student
# (perceptron_theory.simulate.offline, method "bn": batch mean and variance, learned beta,
# running averages at test time) on P = alpha N samples, beside the WN + gamma-decay control
# (method "wn-decay") that must land on ridge regression.
BN_SCHEDULE = offline.BN_SCHEDULE  # the library's: rate 0.3 -> 0.003, small init
# epochs per alpha: the slowest mode contracts like exp(-lr_eff lambda_min(X^T X) t), with
# lambda_min = (1 - sqrt(alpha))^2, so alpha near 1 needs many more epochs
BN_EPOCHS = {0.2: 600, 0.5: 600, 0.8: 3000, 1.5: 3000, 2.0: 1000, 3.0: 300}


def bn_epochs(alpha: float) -> int:
    """Epochs for ``alpha``: :data:`BN_EPOCHS`, else ``60 / (1 - sqrt(alpha))^2`` in
    ``[200, 3000]``."""
    if alpha in BN_EPOCHS:
        return BN_EPOCHS[alpha]
    lam = (1.0 - np.sqrt(alpha)) ** 2
    return 3000 if lam < 0.02 else int(np.clip(60.0 / lam, 200, 3000))
BN_SIZES = {
    True: {"runs": {0.5: (512, 1024), 0.8: (256, 512), 3.0: (512, 1024)}, "seeds": 8,
           "wn_max_N": 512},
    False: {"runs": {a: (2048, 4096) for a in (0.2, 0.5, 0.8, 1.5, 2.0, 3.0)}, "seeds": 8,
            "wn_max_N": 4096},
}
ZETA_WN = 1.0 / (2 * BATCH)  # per-sample decay of the WN control (sum convention: alpha x)
C_M = batchnorm.real_batch_shrinkage(BATCH)  # E[sigma_B/sigma_P], 1 - 3/(4M) - ...
K_M = (1.0 - C_M) * BATCH  # the shrinkage in units of 1/M (-> 3/4)
EMA_VAR = RUNNING_MOMENTUM / (2.0 - RUNNING_MOMENTUM)  # stationary variance factor of an EMA

# BN read as WN + gamma decay: sum-convention zeta(alpha) of each candidate
BN_RIDGE_CANDIDATES = {
    "1/(2M) plug-in": lambda a: 1.0 / (2 * BATCH) + 0.0 * a,
    "alpha/(2M) per sample": lambda a: a / (2 * BATCH),
    "3alpha/(4M) real batch": lambda a: a * batchnorm.equivalent_decay_real_batch(
        BATCH, convention="decay2"),
    "3alpha/(8M) (Theorem-1 number per sample)": lambda a: a * batchnorm.
    equivalent_decay_real_batch(BATCH, convention="theorem1"),
}
# one-parameter families fitted to the BN points: name -> (eps_inf(alpha, k), k_max(alpha));
# eps decreases monotonically in k on [0, k_max] (k_max: zeta = S, resp. the optimal c)
BN_FAMILIES = {
    "ridge zeta = k alpha/M": (lambda a, k: _ridge_inf(a, k * a / BATCH),
                               lambda a: NOISE * BATCH / a),
    "ridge zeta = k/M": (lambda a, k: _ridge_inf(a, k / BATCH + 0.0 * a),
                         lambda a: NOISE * BATCH),
    "shrunk min-norm c = 1 - k/M": (lambda a, k: shrunk_min_norm(a, 1.0 - k / BATCH),
                                    lambda a: BATCH * (1.0 - _tq(a))),
}


def _tq(alpha):
    """T/Q of the min-norm solution: the optimal scale c of shrunk_min_norm."""
    mn = gen.min_norm_linear(alpha, NOISE)
    return float((mn.R / mn.gamma)[0])


def _ridge_inf(alpha, zeta):
    return gen.learning_curve("linear", "wn-decay", alpha, noise=NOISE, zeta=zeta).eps


def shrunk_min_norm(alpha, c):
    r"""Test error of :math:`c\,w_{\rm mn}` (the min-norm / least-squares solution scaled by c).

    .. math::

        \epsilon = 1 - 2c\,\gamma R + c^2\gamma^2, \quad \gamma R = \min(\alpha, 1),\quad
        \gamma^2 = \min(\alpha,1) + \frac{S\min(\alpha,1)}{|1-\alpha|}

    (order parameters of :func:`generalization.min_norm_linear`). Offline BN converges to
    this with :math:`c = c_M` = ``batchnorm.real_batch_shrinkage(M)`` (module docstring).
    """
    mn = gen.min_norm_linear(alpha, NOISE)
    with np.errstate(invalid="ignore"):  # alpha = 1: infinite
        return np.where(np.isfinite(mn.eps),
                        1.0 - 2.0 * c * mn.gamma * mn.R + c * c * mn.gamma ** 2, np.inf)


def shrunk_min_norm_finite_n(P: int, N: int, c: float) -> float:
    """Exact mean of ``|c v - w*|^2 / N`` for the centred least-squares ``v`` of ``P`` samples.

    Centring (an unpenalized intercept) leaves ``P - 1`` Gaussian samples (Helmert), so with
    ``t = min(P-1, N)/N`` and the inverse-Wishart min-norm mean ``e``
    (:func:`generalization.min_norm_finite_n`): ``1 - 2ct + c^2 (e - 1 + 2t)``.
    """
    t = min(P - 1, N) / N
    e = float(gen.min_norm_finite_n(P - 1, N, NOISE)[0])
    return 1.0 - 2.0 * c * t + c * c * (e - 1.0 + 2.0 * t)


def _se(v, axis=0):
    v = np.asarray(v, float)
    return v.std(axis=axis, ddof=1) / np.sqrt(v.shape[axis])


_PARTS = ("vv", "pp", "vp", "vs", "ps", "ss", "vx", "px", "yb")


def _model(parts: dict, c, a):
    """``|w - w*|^2/N + (ybar - w.xbar)^2`` for ``w = c v + a w0_perp`` from the stored
    per-seed dot products (``parts``: arrays of shape (K,); ``a``: shape (K,) or (K, n))."""
    g = {k: np.asarray(parts[k])[:, None] for k in _PARTS}
    a = np.asarray(a, float)
    a = np.full_like(g["vv"], float(a)) if a.ndim == 0 else a.reshape(g["vv"].shape[0], -1)
    val = (c * c * g["vv"] + a * a * g["pp"] + g["ss"] + 2 * c * a * g["vp"]
           - 2 * c * g["vs"] - 2 * a * g["ps"] + (g["yb"] - c * g["vx"] - a * g["px"]) ** 2)
    return val if val.shape[1] > 1 else val[:, 0]


def bn_offline(N: int, alpha: float, n_seeds: int, seed: int = 0, *, epochs=None,
               wn: bool = True) -> dict:
    """Offline BN (and WN + decay) on ``n_seeds`` training sets, with the exact finite-N
    solutions on the same draws (the simulation's data are reproducible per seed).

    Returns per seed (rows) and record (epochs 0, E/2, E) BN's test error ``eps``
    (running averages), ``a = Q/L`` (the test-time slope gamma/sigma), the readout noise of
    the running averages ``drun = v (Q^2/(2(M-1)) + gamma^2/M)`` (``v = m/(2-m)``, momentum
    ``m``: EMA variance of the batch variance and mean), the population-statistics reading
    ``eps_pop``, and the dot products (``parts``) that give the model
    ``|c v + a w0_perp - w*|^2/N + (ybar - (c v + a w0_perp).xbar)^2`` for any ``c``
    (:func:`_model`): ``v`` the centred min-norm / least-squares solution, ``w0_perp`` the
    initial weights outside the centred row space, which batch-statistics gradients never
    touch. WN: ``wn_eps`` and the exact ridge error at ``zeta_sum = P zeta / N``.
    Summaries: :func:`bn_stats`.
    """
    return _bn_measure(offline.bn_with_wn_decay(
        "linear", N=N, alpha=alpha, epochs=int(epochs or bn_epochs(alpha)), batch_size=BATCH,
        noise=NOISE, zeta=ZETA_WN, n_seeds=n_seeds, seed=seed, wn=wn))


def _bn_measure(run: offline.BNRuns) -> dict:
    """:func:`bn_offline`'s record of one :class:`~perceptron_theory.simulate.offline.BNRuns`:
    the exact finite-N solutions on the same training sets beside the simulation."""
    N, alpha, P, E, seeds, bn, wnr = (run.N, run.alpha, run.P, run.epochs, run.seeds, run.bn,
                                      run.wn)
    wn = wnr is not None
    parts = {k: [] for k in (*_PARTS, "ridge")}
    for s in seeds:
        X, y, ws = sim_data.training_set(N, P, noise=NOISE, seed=int(s))
        w0 = sim_data.student_init(N, int(s), R=0.0, L=BN_SCHEDULE["L_init"])
        v, proj = finite_n.centred_least_squares(X, y)
        w_ridge = finite_n.ridge_fit(X, y, P * ZETA_WN / N)
        w0p = w0 - proj(w0)
        xb = X.mean(axis=0)
        for k, val in (("vv", v @ v / N), ("pp", w0p @ w0p / N), ("vp", v @ w0p / N),
                       ("vs", v @ ws / N), ("ps", w0p @ ws / N), ("ss", ws @ ws / N),
                       ("vx", v @ xb), ("px", w0p @ xb), ("yb", y.mean()),
                       ("ridge", (w_ridge - ws) @ (w_ridge - ws) / N)):
            parts[k].append(float(val))
    Lf = bn.L[:, -1]
    out = {"N": N, "alpha": alpha, "P": P, "epochs": E, "seeds": int(seeds.size),
           "diverged": int(bn.diverged.sum()), "eps": bn.eps, "a": bn.Q / bn.L,
           "drun": EMA_VAR * (bn.Q ** 2 / (2 * (BATCH - 1)) + bn.gamma ** 2 / BATCH),
           "gamma": bn.gamma[:, -1], "beta": bn.beta[:, -1],
           "eps_pop": exact_test_error("linear", "linear", Lf ** 2, bn.R[:, -1] * Lf,
                                       bn.gamma[:, -1] / Lf, bn.beta[:, -1]),
           "parts": {k: np.array(v) for k, v in parts.items()}}
    if wn:
        out.update({"wn_eps": wnr.eps, "wn_diverged": int(wnr.diverged.sum()),
                    "wn_zeta_sum": P * ZETA_WN / N})
    return out


def bn_stats(o: dict, c: float | None = None) -> dict:
    """Means and standard errors of one :func:`bn_offline` run, model at ``c`` (default
    :data:`C_M`): ``resid`` (eps - readout noise - model, paired, and its change over the
    second half ``resid_conv``), ``resid_mn`` (the same at c = 1), ``eps_cv`` and
    ``corrected`` (the mean with the exact finite-N mean of ``|c v - w*|^2/N`` as a control
    variate; ``corrected`` less the readout noise and the initial-weight term)."""
    c = C_M if c is None else c
    eps, drun, a, g = o["eps"], o["drun"], o["a"], o["parts"]
    r = eps - drun - _model(g, c, a)
    r1 = eps - drun - _model(g, 1.0, a)
    init = _model(g, c, a[:, -1]) - _model(g, c, 0.0)
    cv = c * c * g["vv"] + g["ss"] - 2 * c * g["vs"]
    cv_mean = shrunk_min_norm_finite_n(o["P"], o["N"], c)
    corrected = eps[:, -1] - drun[:, -1] - init
    ms = lambda v: (float(np.mean(v)), float(_se(v)))  # noqa: E731
    out = {"N": o["N"], "alpha": o["alpha"], "P": o["P"], "epochs": o["epochs"],
           "seeds": o["seeds"], "c": c, "eps": ms(eps[:, -1]),
           "eps_cv": (float(np.mean(eps[:, -1] - cv) + cv_mean), float(_se(eps[:, -1] - cv))),
           "corrected": (float(np.mean(corrected - cv) + cv_mean), float(_se(corrected - cv))),
           "drun": float(drun[:, -1].mean()), "init": float(init.mean()),
           "resid": ms(r[:, -1]), "resid_conv": float(abs(r[:, -1].mean() - r[:, 1].mean())),
           "resid_mn": ms(r1[:, -1]), "eps_pop": ms(o["eps_pop"]),
           "gamma": float(o["gamma"].mean()), "beta": float(o["beta"].mean())}
    if "wn_eps" in o:
        d = o["wn_eps"] - g["ridge"][:, None]
        out.update({"wn_eps": ms(o["wn_eps"][:, -1]), "wn_resid": ms(d[:, -1]),
                    "wn_conv": float(abs(d[:, -1].mean() - d[:, 1].mean())),
                    "wn_zeta_sum": o["wn_zeta_sum"]})
    return out


def fit_family(family, alphas, values, errors) -> dict:
    """Per alpha the k solving ``eps(alpha, k) = value`` (delta-method SE), their weighted
    mean and chi^2 about it; ``family = (eps, k_max)``, k clipped to ``[0, k_max(alpha)]``
    where no root exists."""
    eps_fn, k_max = family
    ks, ses = [], []
    for a, v, e in zip(alphas, values, errors, strict=True):
        f = lambda k, a=a, v=v: float(np.asarray(eps_fn(a, k)).ravel()[0]) - v  # noqa: E731
        lo, hi = 0.0, float(k_max(a))
        if f(lo) * f(hi) > 0:  # outside the family's range: nearest end
            k = lo if abs(f(lo)) < abs(f(hi)) else hi
        else:
            k = brentq(f, lo, hi, xtol=1e-10)
        h = 1e-4 * max(1.0, k)
        slope = (f(k + h) - f(max(k - h, 0.0))) / (k + h - max(k - h, 0.0))
        ks.append(k)
        ses.append(e / abs(slope) if slope != 0 else np.inf)
    ks, ses = np.array(ks), np.array(ses)
    w = 1.0 / ses ** 2
    with np.errstate(divide="ignore", invalid="ignore"):  # k not identified: nan
        k_bar = float(np.sum(w * ks) / np.sum(w))
        se_bar = float(1.0 / np.sqrt(np.sum(w)))
    return {"k": ks.tolist(), "se": ses.tolist(), "k_bar": k_bar, "se_bar": se_bar,
            "chi2": float(np.sum(w * (ks - k_bar) ** 2)), "dof": int(ks.size - 1)}


def bn_runs(cfg: dict, seed: int) -> dict:
    """:func:`bn_offline` at every ``(alpha, N)`` of ``cfg["runs"]`` (the library's
    :func:`~perceptron_theory.simulate.offline.bn_runs`, measured by :func:`_bn_measure`)."""
    runs = offline.bn_runs("linear", cfg["runs"], epochs=bn_epochs, n_seeds=cfg["seeds"],
                           seed=seed, wn_max_N=cfg["wn_max_N"], batch_size=BATCH, noise=NOISE,
                           zeta=ZETA_WN)
    return {key: _bn_measure(r) for key, r in runs.items()}


def bn_comparisons(cfg: dict, runs: dict):
    """Comparison records of the BN section, the points at the largest N and the fits."""
    comps = []
    runs = {key: bn_stats(o) for key, o in runs.items()}
    for (a, N), o in runs.items():
        if "wn_resid" in o:
            m, s = o["wn_resid"]
            comps.append(compare(CLAIM, f"WN + decay control, alpha={a}, N={N}: eps - exact "
                                        "ridge on the same data", 0.0, m, stderr=s,
                                 atol=o["wn_conv"], note=(
                                     f"paired over {o['seeds']} training sets; zeta = "
                                     f"{ZETA_WN:g} per sample = {o['wn_zeta_sum']:.4g} (sum); "
                                     f"eps = {o['wn_eps'][0]:.4f}; allowance = change over "
                                     f"the second half of {o['epochs']} epochs")))
        m, s = o["resid"]
        comps.append(compare(CLAIM, f"BN offline, alpha={a}, N={N}: eps - c_M-shrunk "
                                    "min-norm on the same data", 0.0, m, stderr=s,
                             atol=o["resid_conv"], note=(
                                 f"c_M = {C_M:.5f}; eps {o['eps'][0]:.4f} +- {o['eps'][1]:.2g} "
                                 f"less running-average readout noise {o['drun']:.4f}; "
                                 f"initial-weight term {o['init']:.4f} in the model; allowance "
                                 "= change over the second half of training")))
    # at the largest N of each alpha: against the N -> inf curves
    alphas = sorted(cfg["runs"])
    pts = {}
    for a in alphas:
        N1, N2 = cfg["runs"][a][0], cfg["runs"][a][-1]
        o1, o2 = runs[(a, N1)], runs[(a, N2)]
        allow = abs(o1["corrected"][0] - o2["corrected"][0]) * N1 / (N2 - N1)
        pts[a] = (o2["corrected"][0], o2["corrected"][1], allow, N2)
        th = float(shrunk_min_norm(a, C_M)[0])
        comps.append(compare(CLAIM, f"BN offline eps (readout-corrected), alpha={a}, N={N2} "
                                    "vs c_M-shrunk min-norm curve", th, o2["corrected"][0],
                             stderr=o2["corrected"][1], atol=allow, note=(
                                 f"control-variate mean (exact finite-N mean of the shrunk "
                                 f"centred least squares); O(1/N) allowance {allow:.2g} from "
                                 f"N={N1}; raw BN eps {o2['eps_cv'][0]:.4f}")))
        mn_gap = float(shrunk_min_norm(a, C_M)[0] - gen.min_norm_linear(a, NOISE).eps[0])
        m, s = o2["resid_mn"]
        if abs(mn_gap) >= 6 * s:  # resolvable: a 4-SE test has power
            comps.append(expect(CLAIM, f"BN regularizes: eps - min-norm on the same data, "
                                       f"alpha={a}, N={N2}", -4.0 * s, m, "<=", stderr=s,
                                note=f"paired; predicted {mn_gap:+.4f} (c_M shrinkage)"))
        eff = float(np.hypot(o2["corrected"][1], allow))
        cand = {n: float(_ridge_inf(a, z(a))[0]) for n, z in BN_RIDGE_CANDIDATES.items()}
        spread = max(abs(v - th) for v in cand.values())
        if min(abs(v - th) for v in cand.values()) >= 8 * eff:
            z_min = min(abs(v - o2["corrected"][0]) for v in cand.values()) / eff
            comps.append(expect(CLAIM, f"BN offline, alpha={a}: distance to the nearest "
                                       "ridge candidate in SE", 4.0, z_min, ">=", note=(
                                           "candidates " + ", ".join(
                                               f"{n}: {v:.4f}" for n, v in cand.items())
                                           + f"; BN {o2['corrected'][0]:.4f} +- {eff:.2g}; "
                                             f"spread {spread:.3f}")))
    fits = {name: fit_family(f, alphas, [pts[a][0] for a in alphas],
                             [float(np.hypot(pts[a][1], pts[a][2])) for a in alphas])
            for name, f in BN_FAMILIES.items()}
    crit = float(chi2.ppf(0.999, max(len(alphas) - 1, 1)))
    fs = fits["shrunk min-norm c = 1 - k/M"]
    comps.append(compare(CLAIM, "BN shrinkage k = (1 - c) M fitted over alpha", K_M,
                         fs["k_bar"], stderr=fs["se_bar"],
                         note=f"real-batch c_M = {C_M:.5f} (k = {K_M:.3f}; 3/4 at large M); "
                              f"per alpha {np.round(fs['k'], 3).tolist()}"))
    comps.append(expect(CLAIM, "BN shrinkage fit: chi^2 over alpha", crit, fs["chi2"], "<=",
                        note=f"{fs['dof']} dof, bound = 99.9% quantile"))
    has_near_one = any(0.6 <= a <= 1.6 for a in alphas)
    for name in ("ridge zeta = k alpha/M", "ridge zeta = k/M"):
        f = fits[name]
        if has_near_one and len(alphas) >= 3:
            comps.append(expect(CLAIM, f"BN read as {name}: chi^2 over alpha (rejected)", crit,
                                f["chi2"], ">=", note=(
                                    f"k per alpha {np.round(f['k'], 3).tolist()} +- "
                                    f"{np.round(f['se'], 3).tolist()}; mean {f['k_bar']:.3f} +- "
                                    f"{f['se_bar']:.2g}; no single decay fits near alpha = 1")))
    return comps, pts, fits


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

    # ---- BN linear student, offline SGD (Fig. 1a's squares)
    bcfg = BN_SIZES[bool(quick)]
    bn_run = bn_runs(bcfg, seed)
    bn_comps, bn_pts, bn_fits = bn_comparisons(bcfg, bn_run)
    comps.extend(bn_comps)
    bn_run = {key: bn_stats(o) for key, o in bn_run.items()}

    # ---- plots
    plots = _plots(fn, Ns, relu, cfg) + (_bn_plot(bcfg, bn_run),)
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
        f"per-sample at alpha = 3: eps = {e_plug:.4f} vs {e_ps:.4f} (which one BN follows: "
        "neither, see the BN simulation at the end). ReLU eq. 25 "
        "(1 - alpha/4 + alpha S/(2(2-alpha))) is reproduced by the "
        "min-norm fit of the y>0 samples alone, NOT by exhaustive training: the global "
        "minimizers must also keep w.x <= 0 on y<=0 samples; their min-norm member has lower "
        "eps at S = 0 and stops existing near alpha ~ 1.5 at S = 0.25; L-BFGS-B from random "
        "inits stalls on dead units (positive excess training loss). " + " | ".join(lines)
        + " " + _bn_summary(bcfg, bn_run, bn_pts, bn_fits))
    return CheckResult(CLAIM, TITLE, tuple(comps), plots, summary)


def _bn_summary(cfg, runs, pts, fits) -> str:
    fs = fits["shrunk min-norm c = 1 - k/M"]
    fr = fits["ridge zeta = k alpha/M"]
    fp = fits["ridge zeta = k/M"]
    alphas = sorted(pts)
    wn = [o for o in runs.values() if "wn_resid" in o]
    worst_wn = max(abs(o["wn_resid"][0]) for o in wn) if wn else float("nan")
    bn_pts = "; ".join(
        f"alpha={a}: BN {runs[(a, pts[a][3])]['eps_cv'][0]:.4f} (readout-corrected "
        f"{pts[a][0]:.4f} +- {pts[a][1]:.2g}), c_M-shrunk min-norm "
        f"{float(shrunk_min_norm(a, C_M)[0]):.4f}, min-norm "
        f"{float(gen.min_norm_linear(a, NOISE).eps[0]):.4f}, ridge "
        + ", ".join(f"{n.split(' ')[0]} {float(_ridge_inf(a, z(a))[0]):.4f}"
                    for n, z in BN_RIDGE_CANDIDATES.items()) for a in alphas)
    return (
        f"BN (M = {BATCH}), offline SGD to convergence (P = alpha N samples swept for "
        "hundreds to thousands of epochs, rate 0.3 -> 0.003 geometric; small initial weights "
        f"L = {BN_SCHEDULE['L_init']}: batch-statistics gradients lie in the span of the "
        "centred data, so the initial weights' other part never decays and adds "
        "a^2 L^2 (1 - alpha) to eps at alpha < 1, a = gamma/sigma; ~0.7 for L = 1; here "
        f"{max(o['init'] for o in runs.values()):.4f} at most, kept in the model). The WN + "
        "gamma-decay control lands on "
        f"exact ridge on the same data (worst |paired gap| {worst_wn:.1e}). BN does NOT: it "
        "normalizes by the statistics of the training set, so gamma decay (implicit, from "
        "the batch noise) penalizes the training outputs |Xw|^2, not |w|^2, and shrinks the "
        f"min-norm/least-squares solution by c_M = E[sigma_B/sigma_P] = {C_M:.4f} "
        f"(1 - 3/(4M)) instead of acting as ridge. Points (N = largest): {bn_pts}. Fitted "
        f"shrinkage k = (1 - c) M = {fs['k_bar']:.3f} +- {fs['se_bar']:.2g} (c_M: {K_M:.3f}; "
        f"chi^2 {fs['chi2']:.2g} on {fs['dof']} dof); the best single ridge decay "
        f"zeta = k alpha/M gives k = {np.round(fr['k'], 3).tolist()} per alpha (chi^2 "
        f"{fr['chi2']:.3g}), zeta = k/M k = {np.round(fp['k'], 3).tolist()} (chi^2 "
        f"{fp['chi2']:.3g}): away from alpha = 1 BN looks like ridge at zeta ~ alpha/(3M), "
        "but near alpha = 1 it follows the (shrunk) min-norm curve, which diverges there "
        "(the slow, large errors seen at alpha = 1). Readout: the running averages (what BN "
        "uses at test time) estimate the training-set statistics and add ~0.0025 of EMA "
        "noise; population statistics (gamma w.x/|w| + beta) give a different function "
        "than the one BN fitted (|w|/sqrt N exceeds the training-set spread once w "
        "overfits): "
        + ", ".join(f"alpha={a}: {o['eps_pop'][0]:.3f} vs {o['eps'][0]:.3f}"
                    for (a, n), o in sorted(runs.items()) if n == pts[a][3]) + ".")


def _bn_plot(cfg, runs) -> Plot:
    grid = np.linspace(0.02, 3.0, 150)
    ser = [series("min-norm", grid, clipped(gen.min_norm_linear(grid, NOISE).eps)),
           series(f"c_M-shrunk min-norm (c_M = {C_M:.4f})", grid,
                  clipped(shrunk_min_norm(grid, C_M)))]
    for n, z in BN_RIDGE_CANDIDATES.items():
        ser.append(series(f"ridge, zeta = {n}", grid, clipped(_ridge_inf(grid, z(grid))),
                          style="dashed"))
    for N in sorted({k[1] for k in runs}):
        rows = [o for (a, n), o in sorted(runs.items()) if n == N]
        ser.append(series(f"BN sim, N={N} (readout-corrected)", [o["alpha"] for o in rows],
                          [o["corrected"][0] for o in rows],
                          yerr=[o["corrected"][1] for o in rows], style="points"))
        wn = [o for o in rows if "wn_eps" in o]
        if wn:
            ser.append(series(f"WN + decay sim (zeta_sum = alpha/(2M)), N={N}",
                              [o["alpha"] for o in wn], [o["wn_eps"][0] for o in wn],
                              yerr=[o["wn_eps"][1] for o in wn], style="points"))
    return Plot(f"BN offline (M = {BATCH}) vs ridge candidates and shrunk min-norm",
                "alpha = P/N", "eps (no label noise)", tuple(ser))


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
