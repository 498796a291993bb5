r"""Online SGD of soft committee machines at finite N (K student, M teacher hidden units).

Symbol map: ``hidden`` = :math:`K`, ``teachers`` = :math:`M`, ``batch_size`` = :math:`B`
samples per step, ``lr`` = :math:`\eta`, ``zeta`` = :math:`\zeta` (gamma decay),
``noise`` = :math:`S`, :math:`x \sim N(0, I/N)`, teacher units orthogonal with
:math:`w^*_n\cdot w^*_m = N T_{nm}` (``T`` identity by default), fields
:math:`\lambda_k = w_k\cdot x`, :math:`\nu_n = w^*_n\cdot x`, output
:math:`\hat y = \sum_k v_k g(s_k)`, label :math:`y = \sum_n v^*_n g^*(\nu_n) + \sqrt S\xi`.

Loss and rates are those of :mod:`.kernels` (one step descends the **sum** of the
per-sample losses :math:`\tfrac12(y - \hat y)^2 + \tfrac\zeta2\sum_k\gamma_k^2` of its
batch; weights with rate :math:`\eta`, the scalars :math:`\gamma_k, \beta_k` with
:math:`\eta/N`), so that at ``batch_size = 1`` the order parameters follow
:mod:`perceptron_theory.theory.committee` as :math:`N \to \infty`. Methods:

* ``"sgd"`` -- :math:`s_k = \lambda_k`, :math:`\Delta w_k = \eta v_k\sum_b g'(s_{bk})\delta_b x_b`.
* ``"wn-decay"`` / ``"wn"`` -- every unit weight-normalized with its own scale:
  :math:`s_k = \gamma_k\lambda_k/L_k`, :math:`L_k = |w_k|/\sqrt N`; the gradient through
  :math:`|w_k|` projects the step on :math:`w_k^\perp`.
* ``"bn"`` -- real-batch BN on the hidden layer (no theory counterpart: the batch is the
  source of its noise): :math:`s_{bk} = \gamma_k(\lambda_{bk} - \mu_k)/\sigma_k + \beta_k`
  with the batch mean and (biased) standard deviation of unit ``k`` over the
  ``batch_size >= 2`` samples of the step, the backward pass through the statistics as
  :func:`.kernels.normalized_grads`; at test time the running averages (momentum 0.1,
  unbiased variance, as ``torch.nn.BatchNorm1d``).

The test error :math:`\epsilon = E[(\sum_n v^*_n g^*(\nu_n) - \hat y)^2]` (unhalved,
without label noise) is measured, not predicted: on ``n_test`` Gaussian field vectors
drawn once per seed and mapped through the Cholesky factor of the weights' Gram matrix
(the fields of Gaussian inputs are exactly jointly Gaussian with that covariance), so
the same test sample serves every record of a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from perceptron_theory._checks import check_array, check_choice, check_int, check_real, check_work
from perceptron_theory._io import PlainDict
from perceptron_theory.simulate import kernels as K_
from perceptron_theory.simulate._rng import fill_normal, seed_state

__all__ = ["METHODS", "CommitteeResult", "run", "initial_overlaps", "test_error",
           "empirical_lr_max"]

METHODS = ("sgd", "wn-decay", "wn", "bn")
MAX_UNITS = 16
DIVERGENCE_BOUND = K_.DIVERGENCE_BOUND
_METHOD_CODES = {"sgd": 0, "wn-decay": 1, "wn": 1, "bn": 2}


# --------------------------------------------------------------------------------- init
@njit(cache=True)
def _init_weights(state, T_chol, A, Bmat, scale, W, Ws):
    """Teacher ``Ws`` (M, N) with Gram ``N T``, student ``W`` (K, N).

    ``A`` (K, M) and ``Bmat`` (K, K) are the coordinates of the students on the teacher
    directions and on K further orthonormal directions (exact overlaps ``Q = A A^T + B B^T``,
    ``R = A T_chol^T``) when ``scale`` is 0; otherwise every entry of ``W`` is
    ``N(0, scale^2)``, so ``Q_kk ~ scale^2 N / N = scale^2`` up to O(N^-1/2).
    """
    Kh, N = W.shape
    M = Ws.shape[0]
    E = np.empty((M + Kh, N))
    for i in range(M + Kh):  # Gram-Schmidt: orthogonal directions of norm sqrt N
        fill_normal(state, E[i], 1.0)
        for j in range(i):
            E[i] -= (np.dot(E[i], E[j]) / N) * E[j]
        E[i] *= math.sqrt(N) / math.sqrt(np.dot(E[i], E[i]))
    for n in range(M):
        Ws[n] = 0.0
        for m in range(n + 1):
            Ws[n] += T_chol[n, m] * E[m]
    if scale > 0.0:
        for k in range(Kh):
            fill_normal(state, W[k], scale)
        return
    for k in range(Kh):
        W[k] = 0.0
        for n in range(M):
            W[k] += A[k, n] * E[n]
        for j in range(Kh):
            W[k] += Bmat[k, j] * E[M + j]


# --------------------------------------------------------------------------------- step
@njit(cache=True)
def _step(code, act, tact, W, Ws, v, vs, gamma, beta, rmean, rvar, X, lam, nu, y, G, lr,
          zeta, noise_std, state, inv_n, train_v=False):
    """One SGD step on a fresh batch ``X`` (B, N) of all K units (state in place); with
    ``train_v`` the second layer ``v`` too, at the scalars' rate ``lr/N``.

    The small per-step arrays (lengths, batch statistics, errors) are allocated here on
    purpose: preallocated scratch passed in measured 5-25% slower per sample (LLVM can
    no longer assume they alias nothing)."""
    B, N = X.shape
    Kh = W.shape[0]
    M = Ws.shape[0]
    for b in range(B):
        fill_normal(state, X[b], math.sqrt(inv_n))
    for b in range(B):
        for k in range(Kh):
            lam[b, k] = np.dot(W[k], X[b])
        for n in range(M):
            nu[b, n] = np.dot(Ws[n], X[b])
    if noise_std > 0.0:
        fill_normal(state, y, noise_std)
    else:
        y[:] = 0.0
    for b in range(B):
        for n in range(M):
            y[b] += vs[n] * K_.act(tact, nu[b, n])
    # pre-activations s (kept in G for now), then the output error
    L = np.empty(Kh)
    mu = np.zeros(Kh)
    sd = np.ones(Kh)
    for k in range(Kh):
        if code == 1:  # only the weight-normalized units need |w_k|
            L[k] = math.sqrt(np.dot(W[k], W[k]) * inv_n)
        elif code == 2:
            m = 0.0
            for b in range(B):
                m += lam[b, k]
            m /= B
            var = 0.0
            for b in range(B):
                var += (lam[b, k] - m) ** 2
            var /= B
            mu[k] = m
            sd[k] = math.sqrt(var + K_.BN_EPS)
            rmean[k] = (1 - K_.RUNNING_MOMENTUM) * rmean[k] + K_.RUNNING_MOMENTUM * m
            rvar[k] = ((1 - K_.RUNNING_MOMENTUM) * rvar[k]
                       + K_.RUNNING_MOMENTUM * var * B / (B - 1))
    delta = np.empty(B)
    for b in range(B):
        out = 0.0
        for k in range(Kh):
            if code == 0:
                s = lam[b, k]
            elif code == 1:
                s = gamma[k] * lam[b, k] / L[k]
            else:
                s = gamma[k] * (lam[b, k] - mu[k]) / sd[k] + beta[k]
            G[b, k] = s
            out += v[k] * K_.act(act, s)
        delta[b] = y[b] - out
    # G[b, k] = v_k g'(s_bk) delta_b = -d(sum l)/ds_bk; dv_k = -d(sum l)/dv_k
    dv = np.zeros(Kh)
    for b in range(B):
        for k in range(Kh):
            if train_v:
                dv[k] += K_.act(act, G[b, k]) * delta[b]
            G[b, k] = v[k] * K_.dact(act, G[b, k]) * delta[b]
    if train_v:
        for k in range(Kh):
            v[k] += lr * inv_n * dv[k]
    for k in range(Kh):
        if code == 0:
            for b in range(B):
                W[k] += (lr * G[b, k]) * X[b]
        elif code == 1:
            # Delta w = lr a sum_b G_b (x_b - lam_b w / (N L^2)), with the old w throughout
            a = gamma[k] / L[k]
            cw = 0.0
            for b in range(B):
                cw += G[b, k] * lam[b, k]
            W[k] *= 1.0 - lr * a * cw * inv_n / (L[k] * L[k])
            for b in range(B):
                W[k] += (lr * a * G[b, k]) * X[b]
            gamma[k] += lr * inv_n * (cw / L[k] - B * zeta * gamma[k])
        else:
            mg = 0.0
            mgh = 0.0
            gg = 0.0
            gb = 0.0
            for b in range(B):
                hh = (lam[b, k] - mu[k]) / sd[k]
                mg += gamma[k] * G[b, k] / B
                mgh += gamma[k] * G[b, k] * hh / B
                gg += G[b, k] * hh
                gb += G[b, k]
            for b in range(B):
                hh = (lam[b, k] - mu[k]) / sd[k]
                c = (gamma[k] * G[b, k] - mg - hh * mgh) / sd[k]
                W[k] += (lr * c) * X[b]
            gamma[k] += lr * inv_n * (gg - B * zeta * gamma[k])
            beta[k] += lr * inv_n * gb


@njit(cache=True, parallel=True)
def _run_seeds(code, act, tact, seeds, N, B, n_steps_at, T_chol, A, Bmat, scale, v0, vs,
               gamma0, lr, zeta, noise_std, train_v, freeze_L, Q_out, R_out, g_out, b_out, rm_out,
               rv_out, v_out):
    """All seeds (in parallel, one stream each): record after ``n_steps_at[r]`` steps."""
    Kh = A.shape[0]
    M = A.shape[1]
    inv_n = 1.0 / N
    for i in prange(seeds.shape[0]):
        st = seed_state(seeds[i], 0)
        W = np.empty((Kh, N))
        Ws = np.empty((M, N))
        _init_weights(st, T_chol, A, Bmat, scale, W, Ws)
        st = seed_state(seeds[i], 1)
        L0 = np.empty(Kh)
        for k in range(Kh):
            L0[k] = math.sqrt(np.dot(W[k], W[k]) * inv_n)
        gamma = gamma0.copy()
        v = v0.copy()
        beta = np.zeros(Kh)
        rmean = np.zeros(Kh)
        rvar = np.ones(Kh)
        X = np.empty((B, N))
        lam = np.empty((B, Kh))
        nu = np.empty((B, M))
        y = np.empty(B)
        G = np.empty((B, Kh))
        done = 0
        dead = False
        for r in range(n_steps_at.shape[0]):
            while not dead and done < n_steps_at[r]:
                _step(code, act, tact, W, Ws, v, vs, gamma, beta, rmean, rvar, X, lam, nu, y,
                      G, lr, zeta, noise_std, st, inv_n, train_v)
                if freeze_L:  # lengths back to the start's (normalized units: same outputs)
                    for k in range(Kh):
                        W[k] *= L0[k] / math.sqrt(np.dot(W[k], W[k]) * inv_n)
                done += 1
                if done % 64 == 0 or done == n_steps_at[r]:
                    big = 0.0
                    for k in range(Kh):
                        q = np.dot(W[k], W[k]) * inv_n
                        big = max(big, q, gamma[k] * gamma[k], beta[k] * beta[k], v[k] * v[k])
                    if not (big < DIVERGENCE_BOUND):
                        dead = True
            if dead:
                Q_out[i, r] = np.nan
                R_out[i, r] = np.nan
                g_out[i, r] = np.nan
                b_out[i, r] = np.nan
                rm_out[i, r] = np.nan
                rv_out[i, r] = np.nan
                v_out[i, r] = np.nan
                continue
            for k in range(Kh):
                for l in range(Kh):
                    Q_out[i, r, k, l] = np.dot(W[k], W[l]) * inv_n
                for n in range(M):
                    R_out[i, r, k, n] = np.dot(W[k], Ws[n]) * inv_n
            g_out[i, r] = gamma
            b_out[i, r] = beta
            rm_out[i, r] = rmean
            rv_out[i, r] = rvar
            v_out[i, r] = v


# ------------------------------------------------------------------------------ results
@dataclass
class CommitteeResult(PlainDict):
    """Records of :func:`run`, per seed (axis 0) and time (axis 1): ``Q`` (S, n, K, K),
    ``R`` (S, n, K, M), ``gamma``, ``beta``, ``running_mean``, ``running_var`` (S, n, K),
    ``v`` (S, n, K) the student's second layer, ``eps`` (S, n) the measured test error; NaN
    from a seed's divergence on."""

    method: str
    activation: str
    teacher: str
    N: int
    batch_size: int
    lr: float
    zeta: float
    noise: float
    seeds: np.ndarray
    t: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray
    v: np.ndarray
    eps: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """Per seed: did it diverge before the last record."""
        return ~np.isfinite(self.eps[:, -1])


def test_error(method: str, activation: str, teacher: str, Q, R, T, v, v_star, gamma, beta,
               rmean, rvar, Z: np.ndarray) -> float:
    """Test error of one network state on the standard normal test fields ``Z`` (n, K+M)."""
    Kh, M = np.shape(R)
    C = np.block([[Q, R], [np.transpose(R), T]])
    w, U = np.linalg.eigh(C)  # Gram matrices may be singular: a symmetric square root
    F = Z @ (U * np.sqrt(np.clip(w, 0.0, None))).T
    lam, nu = F[:, :Kh], F[:, Kh:]
    if method == "sgd":
        s = lam
    elif method == "bn":
        s = gamma * (lam - rmean) / np.sqrt(rvar + K_.BN_EPS) + beta
    else:
        s = gamma * lam / np.sqrt(np.diag(Q))
    g, gs = K_.numpy_act(activation), K_.numpy_act(teacher)
    return float(np.mean((gs(nu) @ v_star - g(s) @ v) ** 2))


def _teacher_chol(T, M: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T, its Cholesky factor)``; T defaults to the identity (M, M)."""
    T = np.eye(M) if T is None else check_array("T", T, shape=(M, M))
    try:
        return T, np.linalg.cholesky(T)
    except np.linalg.LinAlgError:
        raise ValueError("T must be symmetric positive definite") from None


def initial_overlaps(hidden: int, teachers: int, *, N: int, seed: int = 0, scale: float,
                     T=None) -> tuple[np.ndarray, np.ndarray]:
    """``(Q0, R0)`` of the random initialization of :func:`run` with ``init_scale=scale``
    for ``seed`` (the start to give the ODE of the same run): the same draw as ``run``."""
    Kh = check_int("hidden", hidden, 1, MAX_UNITS)
    M = check_int("teachers", teachers, 1, MAX_UNITS)
    N = check_int("N", N, Kh + M + 2)
    scale = check_real("init_scale", scale, 0.0, lo_open=True)
    _, T_chol = _teacher_chol(T, M)
    W, Ws = np.empty((Kh, N)), np.empty((M, N))
    _init_weights(seed_state(check_int("seed", seed, 0), 0), T_chol, np.zeros((Kh, M)),
                  np.zeros((Kh, Kh)), scale, W, Ws)
    return W @ W.T / N, W @ Ws.T / N


# ----------------------------------------------------------------------------------- run
def run(method: str, activation: str, *, hidden: int, teachers: int, N: int, lr: float,
        t_max: float, zeta: float = 0.0, noise: float = 0.0, teacher: str | None = None,
        batch_size: int = 1, Q0=None, R0=None, init_scale: float | None = None,
        gamma_init=1.0, T=None, v=None, v_star=None, train_second_layer: bool = False,
        freeze_L: bool = False, n_points: int = 51, times=None, seeds=1, seed: int = 0,
        n_test: int = 20_000) -> CommitteeResult:
    """Simulate online SGD of a soft committee machine for ``seeds`` independent runs.

    Parameters
    ----------
    method : {"sgd", "wn-decay", "wn", "bn"}
        Module docstring.
    activation, teacher : {"erf", "relu", "linear"}
        Student and teacher activation (teacher default: the student's).
    hidden, teachers : int
        K and M (1..16).
    N : int
        Input dimension (>= hidden + teachers + 2).
    lr : float
        :math:`\\eta > 0`.
    t_max : float
        Last time in samples / N.
    zeta, noise : float
        Gamma decay (``wn-decay``, ``bn``) and label-noise variance S.
    batch_size : int
        Samples per step (``bn``: >= 2).
    Q0, R0 : array_like, optional
        Exact initial overlaps (K, K), (K, M); else ``init_scale``.
    init_scale : float, optional
        Random start: entries of ``w_k`` i.i.d. ``N(0, init_scale^2)`` (so ``Q_kk`` is about
        ``init_scale^2``, ``R`` of order ``init_scale / sqrt N``); exclusive with ``Q0``.
    gamma_init : float or array_like
        Initial scales (normalized methods).
    T, v, v_star : array_like, optional
        Teacher overlaps (M, M, default identity), second layers (default ones; ``v`` the
        initial one when trained).
    train_second_layer : bool
        Train ``v`` too, with rate ``lr/N`` (as
        :func:`perceptron_theory.theory.committee.integrate`).
    freeze_L : bool
        Normalized methods: rescale every :math:`w_k` to its initial length after each
        step, so the effective rate :math:`\\eta\\gamma_k/L_k^2` stays what it was set to
        (the outputs do not depend on :math:`|w_k|`).
    n_points, times
        Record at ``n_points`` equally spaced times in [0, t_max] or at ``times``.
    seeds, seed
        How many seeds (``seed, seed + 1, ...``) or the explicit list.
    n_test : int
        Test fields per seed for the measured test error.
    """
    method = check_choice("method", method, METHODS)
    activation = check_choice("activation", activation, K_.ACTIVATION_CODES)
    teacher = activation if teacher is None else check_choice("teacher", teacher,
                                                              K_.ACTIVATION_CODES)
    Kh = check_int("hidden", hidden, 1, MAX_UNITS)
    M = check_int("teachers", teachers, 1, MAX_UNITS)
    N = check_int("N", N, Kh + M + 2)
    lr = check_real("lr", lr, 0.0, lo_open=True)
    t_max = check_real("t_max", t_max, 0.0, lo_open=True)
    zeta = check_real("zeta", zeta, 0.0)
    if zeta and method in ("sgd", "wn"):
        raise ValueError(f"zeta is a decay on gamma: only for 'wn-decay' and 'bn'; got "
                         f"{zeta} for {method!r}")
    noise = check_real("noise", noise, 0.0)
    B = check_int("batch_size", batch_size, 2 if method == "bn" else 1)
    n_test = check_int("n_test", n_test, 1, 10_000_000)
    if freeze_L and method == "sgd":
        raise ValueError("freeze_L is for the normalized methods (wn-decay, wn, bn): the "
                         "plain student's output depends on |w|")
    T, T_chol = _teacher_chol(T, M)
    v = np.ones(Kh) if v is None else check_array("v", v, shape=(Kh,))
    vs = np.ones(M) if v_star is None else check_array("v_star", v_star, shape=(M,))
    gamma0 = np.broadcast_to(check_array("gamma_init", gamma_init), (Kh,)).astype(float)
    if (Q0 is None) == (init_scale is None):
        raise ValueError("give exactly one of Q0 (with R0) and init_scale")
    A = np.zeros((Kh, M))
    Bm = np.zeros((Kh, Kh))
    scale = 0.0
    if Q0 is not None:
        Q0 = check_array("Q0", Q0, shape=(Kh, Kh))
        R0 = check_array("R0", np.zeros((Kh, M)) if R0 is None else R0, shape=(Kh, M))
        A = np.linalg.solve(T_chol, R0.T).T  # R0 = A T_chol^T
        rest = Q0 - A @ A.T
        w_, U = np.linalg.eigh((rest + rest.T) / 2)
        if w_.min() < -1e-12 * max(1.0, np.abs(Q0).max()):
            raise ValueError(f"Q0, R0 are not the overlaps of weights: Q0 - R0 T^-1 R0^T has "
                             f"eigenvalue {w_.min():.3g} < 0")
        Bm = U * np.sqrt(np.clip(w_, 0.0, None))
    else:
        scale = check_real("init_scale", init_scale, 0.0, lo_open=True)
    if times is None:
        times = np.linspace(0.0, t_max, check_int("n_points", n_points, 1, 100_000))
    times = check_array("times", times, 0.0, t_max)
    steps = np.maximum(np.round(np.asarray(times) * N / B).astype(np.int64), 0)
    if np.any(np.diff(steps) < 0):
        raise ValueError("times must be non-decreasing")
    if np.isscalar(seeds) or np.ndim(seeds) == 0:
        seeds = np.arange(check_int("seeds", seeds, 1)) + check_int("seed", seed, 0)
    seeds = np.asarray(seeds, dtype=np.int64)
    check_work("committee simulation", float(seeds.size) * steps[-1] * B * N * (Kh + M) * 3)
    S, n = seeds.size, steps.size
    Q = np.empty((S, n, Kh, Kh))
    R = np.empty((S, n, Kh, M))
    g, be, rm, rv, vv = (np.empty((S, n, Kh)) for _ in range(5))
    codes = K_.ACTIVATION_CODES
    _run_seeds(_METHOD_CODES[method], codes[activation], codes[teacher], seeds, N, B, steps,
               T_chol, A, Bm, scale, v, vs, gamma0, lr, zeta, math.sqrt(noise),
               bool(train_second_layer), bool(freeze_L), Q, R, g, be, rm, rv, vv)
    eps = np.full((S, n), np.nan)
    for i, s in enumerate(seeds):
        Z = np.random.default_rng([int(s), 7]).standard_normal((n_test, Kh + M))
        for r in range(n):
            if np.all(np.isfinite(Q[i, r])):
                eps[i, r] = test_error(method, activation, teacher, Q[i, r], R[i, r], T,
                                       vv[i, r], vs, g[i, r], be[i, r], rm[i, r], rv[i, r], Z)
    return CommitteeResult(method, activation, teacher, N, B, lr, zeta, noise, seeds,
                           steps * B / N, Q, R, g, be, rm, rv, vv, eps)



def empirical_lr_max(method: str, activation: str, hidden: int, *, N: int,
                     batch_size: int = 1, zeta: float = 0.0, tol: float = 0.05,
                     t_max: float = 50.0, R_init: float = 0.95, seeds: int = 4, seed: int = 0,
                     lr_start: float = 1.0, rel_tol: float = 0.02,
                     max_evaluations: int = 40) -> dict:
    """Largest rate at which a K = M committee stays learned, by bisection (as
    :func:`perceptron_theory.simulate.max_lr.empirical_max_lr` for one unit).

    Start: unit k on teacher k with normalized overlap ``R_init`` (``Q = I``,
    ``R = R_init I``), gamma = 1, the lengths frozen (normalized methods). A rate passes when
    no seed diverges within ``t_max`` and the median over seeds of
    :math:`\\min_k R_{kk}/L_k` at ``t_max`` exceeds ``1 - tol``. Returns ``lr_max`` (the
    geometric mean of the final bracket), the bracket and every evaluation. With L = gamma
    = 1 the effective rate is ``lr_max``. The criterion is a threshold on R: where the
    learned state slides off R = 1 continuously (gamma decay, batch noise) it measures where
    ``1 - R`` reaches ``tol``, not a loss of stability.
    """
    from perceptron_theory.simulate.max_lr import _bracket

    tol = check_real("tol", tol, 0.0, 1.0, lo_open=True, hi_open=True)
    rel_tol = check_real("rel_tol", rel_tol, 0.0, 1.0, lo_open=True, hi_open=True)
    R_init = check_real("R_init", R_init, 0.0, 1.0)
    lr = check_real("lr_start", lr_start, 1e-6, 1e6)
    max_evaluations = check_int("max_evaluations", max_evaluations, 2)
    K = check_int("hidden", hidden, 1, MAX_UNITS)
    evals = []

    class _Stop(Exception):
        pass

    def trial(x):
        if len(evals) >= max_evaluations:
            raise _Stop
        r = run(method, activation, hidden=K, teachers=K, N=N, lr=x, t_max=t_max, zeta=zeta,
                batch_size=batch_size, Q0=np.eye(K), R0=R_init * np.eye(K), seeds=seeds,
                seed=seed, freeze_L=method != "sgd", times=[t_max], n_test=1)
        Rn = np.diagonal(r.R[:, -1], axis1=-2, axis2=-1) / np.sqrt(
            np.diagonal(r.Q[:, -1], axis1=-2, axis2=-1))
        score = np.where(r.diverged, -np.inf, np.min(Rn, axis=-1))
        med = float(np.median(score))
        ok = bool(not r.diverged.any() and med > 1.0 - tol)
        evals.append((float(x), ok, med, int(r.diverged.sum())))
        return ok

    try:
        lo, hi = _bracket(trial, lr, rel_tol)
    except _Stop:
        return {"lr_max": float("nan"), "bracket": None, "evaluations": evals,
                "converged": False}
    return {"lr_max": math.sqrt(lo * hi), "bracket": (lo, hi), "evaluations": evals,
            "converged": True}
