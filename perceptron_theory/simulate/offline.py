r"""Offline (multi-epoch) SGD on a fixed training set: learning curves at finite N.

A training set of :math:`P = \alpha N` samples (:func:`.data.training_set`'s draw, linear
teacher by default, label noise :math:`S`) is swept for ``epochs`` epochs in mini-batches of
``M``, reshuffled every epoch; the last ``P mod M`` samples of each shuffled epoch are left
out of that epoch (they are used in others). The update is the one of
:mod:`.kernels` (sum over the batch, weights with rate ``lr``, :math:`\gamma, \beta` with
``lr/N``); the rate decays geometrically from ``lr`` to ``lr_final`` over the run so that
SGD settles into a minimum of the *expected* loss over batch draws (BN's implicit
regularization does not vanish as the rate goes to 0; SGD's own noise does).

Decay convention: ``zeta`` is per sample, :math:`\tfrac\zeta2\gamma^2` added to every
sample's loss (the ODE convention), i.e. :math:`\tfrac{P\zeta}2\gamma^2` on the training set:
for weight normalization this is ridge regression with the sum-convention decay
:math:`\zeta_{\rm sum} = \alpha\zeta` of :mod:`perceptron_theory.theory.generalization`.

Test error: exact given the order parameters and the test-time statistics (running
averages for batch statistics, as BN does), from :func:`.online.exact_test_error`.

Engine: each seed keeps its training set in memory (float64, or float32 with
``dtype="float32"``: half the memory, 0.6-0.7x the time, results within 1e-7 of the
seed-to-seed spread) and every step reads its ``M`` rows in place
(:mod:`._offline_kernels`); an epoch costs 1.4-1.8x one plain read of the set
(``benchmarks/simulate.py``, section e). Seeds run in
parallel (``prange``), each on its own stream, so results do not depend on the threads.

>>> from perceptron_theory.simulate import offline
>>> r = offline.run("wn-decay", "linear", N=64, alpha=2.0, epochs=5, lr=0.2, zeta=0.1,
...                 noise=0.25, seeds=2)
>>> r.eps.shape, bool(r.diverged.any())
((2, 6), False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.simulate import _offline_kernels as FK
from perceptron_theory.simulate import kernels as K
from perceptron_theory.simulate._rng import seed_state, shuffle
from perceptron_theory.simulate.data import fill_training_set, init_weights_vector
from perceptron_theory.simulate.online import (
    MAX_POINTS,
    MAX_SEEDS,
    METHODS,
    SeedStats,
    _diverged,
    check_sim_work,
    check_weight_decay,
    method_config,
    run_in_batches,
    seed_array,
    student_readout,
)

__all__ = ["OfflineResult", "run", "MAX_ELEMENTS", "BN_SCHEDULE", "BNRuns", "bn_with_wn_decay",
           "bn_runs"]

# P * N above this would not fit comfortably in memory per seed (8 bytes each; twice as
# many at float32)
MAX_ELEMENTS = 200_000_000
_DTYPES = {"float64": 8, "float32": 4}  # storage dtype of the training set -> bytes
# cost model of one seed for check_sim_work, in ns of one core, rounded up (measured in
# benchmarks/simulate.py, section e): an epoch ~0.6 ns (float64) / ~0.3 ns (float32) per
# entry of the training set plus the O(M) work of each step; drawing the set a few ns per
# entry; each record reads the set once more
_EPOCH_PER_ENTRY = 1.0
_STEP_OVERHEAD = 500.0
_DATA_PER_ENTRY = 8.0


@njit(cache=True)
def _train_loss(cfg, X, y, w, sc, test_center, test_scale):
    """1/(2P) sum_p (y_p - g(s_p))^2 with test-time statistics (X float32 or float64)."""
    P = X.shape[0]
    tot = 0.0
    for p in range(P):
        h = FK.dot(X[p], w)
        if cfg[2] == 0:
            s = h
        else:
            s = sc[0] * (h - test_center) / test_scale + sc[1]
        r = y[p] - K.act(cfg[0], s)
        tot += r * r
    return 0.5 * tot / P


@njit(cache=True)
def _test_stats(cfg, sc):
    """(centre, scale) the student uses at test time."""
    center = sc[4] if cfg[3] != 0 else 0.0
    scale = math.sqrt(sc[5] + K.BN_EPS) if cfg[4] != 0 else math.sqrt(sc[2])
    return center, scale


@njit(cache=True)
def _setup(cfg, prm, N, P, seed, init, X):
    """Teacher, student, training set ``X`` (shape=(P, N), filled), labels and scalars of
    one seed; returns ``(state, w_star, w, y, sc)``."""
    state = seed_state(seed, 0)
    w_star, w, tmp = np.empty(N), np.empty(N), np.empty(N)
    init_weights_vector(state, init[0], init[1], w_star, w, tmp)
    y = np.empty(P)
    # the draws of data.fill_training_set, stored in X's dtype
    FK.fill_training_set_cast(seed_state(seed, 1), X, w_star, cfg[1], prm[2], y, tmp)
    sc = np.empty(6)
    sc[0], sc[1], sc[4], sc[5] = init[2], 0.0, 0.0, init[1] * init[1]
    sc[2] = np.dot(w, w) / N
    sc[3] = np.dot(w, w_star) / N
    return state, w_star, w, y, sc


@njit(cache=True)
def _record(cfg, X, y, w, sc, out, loss_out, r):
    out[r, :] = sc
    c, s = _test_stats(cfg, sc)
    loss_out[r] = _train_loss(cfg, X, y, w, sc, c, s)


@njit(cache=True)
def _run_one(cfg, prm, N, P, M, rec_epochs, lr_decay, seed, init, out, loss_out, proto):
    """One seed with the kernels of :mod:`._offline_kernels`; ``out``
    shape=(n_rec, 6), ``loss_out`` shape=(n_rec,); ``proto`` (empty) gives the storage
    dtype of the training set. Returns the divergence step or -1."""
    cfg = cfg.copy()  # thread-private (reference-count atomics; see online._run_one)
    X = np.empty((P, N), proto.dtype)
    state, w_star, w, y, sc = _setup(cfg, prm, N, P, seed, init, X)
    inv_n = 1.0 / N
    hb, yb, dh, coef = np.empty(M), np.empty(M), np.empty(M), np.empty(M)
    stats = np.zeros(2)
    perm = np.arange(P)
    p_run = prm.copy()
    n_batches = P // M
    step = 0
    epoch = 0
    for r in range(rec_epochs.shape[0]):
        while epoch < rec_epochs[r]:
            shuffle(state, perm)  # Fisher-Yates with the seed's stream
            for b in range(n_batches):
                p_run[0] = prm[0] * lr_decay ** step
                rows = perm[b * M:(b + 1) * M]
                FK.forward(X, rows, w, hb)  # the rows from memory
                for m in range(M):
                    yb[m] = y[rows[m]]
                c_w, g_gamma, g_beta = K._grads(cfg, p_run, hb, yb, dh, stats, sc, inv_n)
                lr = p_run[0]
                for m in range(M):
                    coef[m] = -lr * dh[m]
                w2, ww = FK.update(X, rows, coef, 1.0 - lr * c_w, w, w_star)  # from cache
                sc[2] = w2 * inv_n
                sc[3] = ww * inv_n
                K._scalars_update(cfg, p_run, sc, g_gamma, g_beta, stats, inv_n)
                step += 1
                if _diverged(sc):
                    out[r:, :] = np.nan
                    loss_out[r:] = np.nan
                    return step
            epoch += 1
        _record(cfg, X, y, w, sc, out, loss_out, r)
    return -1


@njit(cache=True, parallel=True)
def _run(cfg, prm, N, P, M, rec_epochs, lr_decay, seeds, init, out, loss_out, div, proto):
    for k in prange(seeds.shape[0]):
        div[k] = _run_one(cfg, prm, N, P, M, rec_epochs, lr_decay, seeds[k], init, out[k],
                          loss_out[k], proto)


# ------------------------------------------------------------------ reference runner
@njit(cache=True)
def _reference_one(cfg, prm, N, P, M, rec_epochs, lr_decay, seed, init, out, loss_out):
    """The literal runner the fused one replaced (float64; batch rows copied, then
    :func:`.kernels.vector_update`), kept for the tests and benchmarks to compare with."""
    cfg = cfg.copy()
    state = seed_state(seed, 0)
    w_star, w, tmp = np.empty(N), np.empty(N), np.empty(N)
    init_weights_vector(state, init[0], init[1], w_star, w, tmp)
    X = np.empty((P, N))
    y = np.empty(P)
    fill_training_set(seed_state(seed, 1), X, w_star, cfg[1], prm[2], y)
    sc = np.empty(6)
    sc[0], sc[1], sc[4], sc[5] = init[2], 0.0, 0.0, init[1] * init[1]
    sc[2] = np.dot(w, w) / N
    sc[3] = np.dot(w, w_star) / N
    Xb = np.empty((M, N))
    hb, yb, dh = np.empty(M), np.empty(M), np.empty(M)
    stats = np.zeros(2)
    perm = np.arange(P)
    p_run = prm.copy()
    n_batches = P // M
    step = 0
    epoch = 0
    for r in range(rec_epochs.shape[0]):
        while epoch < rec_epochs[r]:
            shuffle(state, perm)
            for b in range(n_batches):
                p_run[0] = prm[0] * lr_decay ** step
                for m in range(M):
                    src = perm[b * M + m]
                    Xb[m, :] = X[src]
                    hb[m] = np.dot(X[src], w)
                    yb[m] = y[src]
                K.vector_update(cfg, p_run, w, w_star, Xb, hb, yb, dh, stats, sc)
                step += 1
                if _diverged(sc):
                    out[r:, :] = np.nan
                    loss_out[r:] = np.nan
                    return step
            epoch += 1
        _record(cfg, X, y, w, sc, out, loss_out, r)
    return -1


@njit(cache=True, parallel=True)
def _reference(cfg, prm, N, P, M, rec_epochs, lr_decay, seeds, init, out, loss_out, div,
               proto):
    for k in prange(seeds.shape[0]):
        div[k] = _reference_one(cfg, prm, N, P, M, rec_epochs, lr_decay, seeds[k], init,
                                out[k], loss_out[k])


@dataclass(frozen=True)
class OfflineResult(SeedStats):
    """Order parameters, training loss and test error after the recorded epochs (rows: seeds).

    Fields as :class:`.online.OnlineResult`; ``train_loss`` = 1/(2P) sum (y - g(s))^2 on the
    training set with test-time statistics; ``eps`` without the label noise.
    """

    method: str
    activation: str
    teacher: str
    N: int
    P: int
    alpha: float
    batch_size: int
    lr: float
    lr_final: float
    zeta: float
    noise: float
    epochs: np.ndarray  # shape=(n_rec,)
    gamma: np.ndarray  # shape=(K, n_rec)
    beta: np.ndarray
    R: np.ndarray
    L: np.ndarray
    Q: np.ndarray
    eps: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    epoch_diverged: np.ndarray
    seeds: np.ndarray
    weight_decay: float = 0.0


def run(method: str, activation: str, *, N: int, alpha: float, epochs: int, lr: float,
        zeta: float = 0.0, batch_size: int = 1, teacher: str = "linear", noise: float = 0.0,
        weight_decay: float = 0.0, lr_final: float | None = None, n_points: int = 6, seeds=1,
        seed: int = 0,
        R_init: float = _vocab.INITIAL_CONDITIONS["R_init"],
        L_init: float = _vocab.INITIAL_CONDITIONS["L_init"],
        gamma_init: float = _vocab.INITIAL_CONDITIONS["gamma_init"],
        ghost_size: int | None = None, progress: bool | None = None,
        dtype: str = "float64") -> OfflineResult:
    """Train on a fixed set of ``P = round(alpha N)`` samples, ``seeds`` runs in parallel.

    Parameters as :func:`.online.run` (``weight_decay``: the plain student's per-sample
    :math:`\\tfrac{\\lambda}{2N}|w|^2`, ``"sgd"`` only), plus ``alpha`` (> 0, with
    ``batch_size <= P``), ``epochs`` (>= 1), ``lr_final`` (rate at the last step; default
    ``lr``: constant) and
    ``n_points`` (records at that many epochs spread over ``0..epochs``). Each seed draws its
    own teacher, training set and initial student. ``progress``: a bar over seed chunks
    (default: when stderr is a terminal). ``dtype``: storage of the training set,
    ``"float64"`` or ``"float32"`` (the same draws rounded on storage, labels from the
    float64 inputs; every sum still in float64): half the memory and 0.6-0.7x the time
    of an epoch, which streams the whole set; the rounding (relative 3e-8 per entry)
    moves results far less than the seed-to-seed spread (``tests/test_offline_engine.py``).
    """
    method = check_choice("method", method, METHODS)
    activation = check_choice("activation", activation, K.ACTIVATION_CODES)
    teacher = check_choice("teacher", teacher, K.ACTIVATION_CODES)
    N = check_int("N", N, 3)
    alpha = check_real("alpha", alpha, 0.0, lo_open=True)
    dtype = check_choice("dtype", dtype, _DTYPES)
    limit = MAX_ELEMENTS * 8 // _DTYPES[dtype]
    if alpha * N * N > limit:  # in floats: alpha N may not fit an integer
        raise ValueError(f"alpha N^2 = {alpha * N * N:.4g} exceeds the in-memory limit "
                         f"{limit} (P x N {dtype} training set per seed)")
    P = max(int(round(alpha * N)), 1)
    epochs = check_int("epochs", epochs, 1)
    lr = check_real("lr", lr, 0.0, lo_open=True)
    lr_final = lr if lr_final is None else check_real("lr_final", lr_final, 0.0, lr,
                                                      lo_open=True)
    zeta = check_real("zeta", zeta, 0.0)
    M = check_int("batch_size", batch_size, 1)
    if M > P:
        raise ValueError(f"batch_size must be <= P = round(alpha N) = {P}, got {M}")
    noise = check_real("noise", noise, 0.0)
    weight_decay = check_weight_decay(method, weight_decay)
    R_init = check_real("R_init", R_init, -1.0, 1.0)
    L_init = check_real("L_init", L_init, 0.0, lo_open=True)
    gamma_init = check_real("gamma_init", gamma_init)
    cfg = method_config(method, activation, teacher, M, zeta, ghost_size, False)
    n_points = check_int("n_points", n_points, 1, MAX_POINTS)
    n_seeds = check_int("seeds", seeds, 1, MAX_SEEDS) if np.isscalar(seeds) else len(seeds)
    check_sim_work(f"offline {method}: seeds={n_seeds}, N={N}, P={P}, epochs={epochs}, "
                   f"n_points={n_points}", n_seeds, min(n_points, epochs) + 1,
                   _DTYPES[dtype] * float(P) * N + 8.0 * (3 * N + 3 * P),
                   float(epochs) * ((P // M) * _STEP_OVERHEAD + _EPOCH_PER_ENTRY * P * N)
                   + (_DATA_PER_ENTRY + min(n_points, epochs) + 1) * float(P) * N)
    rec = np.unique(np.round(np.linspace(0, epochs, n_points + 1)[1:]).astype(np.int64))
    seeds = seed_array(seeds, seed)
    rec = np.concatenate([[0], rec])
    n_steps = epochs * (P // M)
    lr_decay = (lr_final / lr) ** (1.0 / max(n_steps - 1, 1))
    prm = np.array([lr, zeta, math.sqrt(noise), L_init, weight_decay])
    init = np.array([R_init, L_init, gamma_init])
    out = np.empty((seeds.size, rec.size, 6))
    loss = np.empty((seeds.size, rec.size))
    div = np.empty(seeds.size, np.int64)
    proto = np.empty((0, 0), dtype)
    run_in_batches(lambda sd, o, lo, d: _run(cfg, prm, N, P, M, rec, lr_decay, sd, init, o, lo,
                                             d, proto),
                   seeds.astype(np.int64), (out, loss, div), progress, f"{method} alpha={alpha}")
    gamma, beta, R, L, Q, eps = student_readout(method, activation, teacher, out)
    diverged = div >= 0
    ep_div = np.where(diverged, div / max(P // M, 1), np.nan)
    return OfflineResult(method, activation, teacher, N, P, P / N, M, lr, lr_final, zeta,
                         noise, rec.astype(float), gamma, beta, R, L, Q, eps, loss, diverged,
                         ep_div, seeds, weight_decay)


# ------------------------------------------------------ BN beside its WN + decay control
#: The schedule of the offline BN experiments (Luo et al. Fig. 1's squares; L-F1a,
#: L-F1b): rate 0.3 -> 0.003 geometric, from a small student (L = 0.05, gamma = 0.5).
BN_SCHEDULE = {"lr": 0.3, "lr_final": 0.003, "L_init": 0.05, "gamma_init": 0.5}


@dataclass(frozen=True)
class BNRuns:
    """Offline BN and its WN + gamma-decay control on the same training sets (same seeds).

    ``wn`` is ``None`` when the control was not run; records at epochs 0, E/2, E.
    """

    activation: str
    N: int
    alpha: float
    P: int
    epochs: int
    batch_size: int
    zeta: float
    seeds: np.ndarray
    bn: OfflineResult
    wn: OfflineResult | None


def bn_with_wn_decay(activation: str, *, N: int, alpha: float, epochs: int, batch_size: int,
                     noise: float, zeta: float, n_seeds: int, seed: int = 0, wn: bool = True,
                     schedule: Mapping = BN_SCHEDULE) -> BNRuns:
    """Method ``"bn"`` and ``"wn-decay"`` (per-sample decay ``zeta``) on the same training sets.

    Seeds ``1000 seed + (0, ..., n_seeds - 1)``: each seed's teacher, training set and
    initial student are the same for both (:func:`.data.training_set`,
    :func:`.data.student_init` reproduce them), so the two can be compared paired, and
    with exact finite-N solutions on the same data.

    Parameters
    ----------
    activation : {"linear", "relu", "erf"}
        Student activation (the teacher is linear).
    N, alpha, epochs, batch_size, noise
        As :func:`run`.
    zeta : float
        Per-sample decay of the WN control (sum convention: ``alpha zeta``).
    n_seeds, seed : int
        How many training sets, and the block they are taken from.
    wn : bool
        Also run the WN + decay control.
    schedule : mapping
        ``lr``, ``lr_final``, ``L_init``, ``gamma_init`` (default :data:`BN_SCHEDULE`).

    Returns
    -------
    BNRuns
    """
    seeds = np.arange(check_int("n_seeds", n_seeds, 1)) + 1000 * check_int("seed", seed, 0)
    kw = dict(N=N, alpha=alpha, epochs=epochs, batch_size=batch_size, noise=noise, seeds=seeds,
              n_points=2, **schedule)
    bn = run("bn", activation, **kw)
    wnr = run("wn-decay", activation, zeta=zeta, **kw) if wn else None
    return BNRuns(activation, bn.N, alpha, bn.P, int(epochs), bn.batch_size, float(zeta),
                  seeds, bn, wnr)


def bn_runs(activation: str, grid: Mapping[float, Sequence[int]], *,
            epochs: Callable[[float], int], n_seeds: int, seed: int = 0,
            wn_max_N: int | None = None, **kw) -> dict:
    """:func:`bn_with_wn_decay` at every ``(alpha, N)`` of ``grid`` (``alpha -> Ns``).

    ``epochs(alpha)`` gives each load its number of epochs; the control runs where
    ``N <= wn_max_N`` (everywhere when ``None``); ``kw`` goes to :func:`bn_with_wn_decay`.
    Returns ``{(alpha, N): BNRuns}``.
    """
    return {(a, N): bn_with_wn_decay(activation, N=N, alpha=a, epochs=int(epochs(a)),
                                     n_seeds=n_seeds, seed=seed,
                                     wn=wn_max_N is None or N <= wn_max_N, **kw)
            for a, Ns in grid.items() for N in Ns}

