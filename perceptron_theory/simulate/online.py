r"""Online SGD at finite N: order-parameter trajectories for many seeds in parallel.

Each step draws a fresh batch of ``M`` inputs :math:`x \sim N(0, I/N)` and labels
:math:`y = g^*(w^*\cdot x) + \sqrt S\,\xi`, then applies the update of
:mod:`perceptron_theory.simulate.kernels` (sum over the batch; weights with rate ``lr``,
:math:`\gamma, \beta` with rate ``lr/N``). Time is :math:`t = \text{samples seen}/N`, the
time of the ODEs of :mod:`perceptron_theory.theory.dynamics`.

Two engines give the same law of the trajectory:

* ``"vector"`` -- the literal simulation with N-dimensional weights and inputs;
* ``"reduced"`` -- the exact rotation-reduced Markov chain of the order parameters
  (:func:`.kernels.reduced_step`), ``O(M^2)`` per step whatever ``N``.

Seeds run in parallel (``prange``); each seed owns its random stream, so results do not
depend on the number of threads.

>>> from perceptron_theory.simulate import online
>>> r = online.run("wn-decay", "relu", N=200, lr=0.5, zeta=0.25, t_max=2.0, n_points=3,
...                seeds=2, engine="reduced")
>>> r.R.shape, bool(r.diverged.any())
((2, 3), False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import (
    check_choice,
    check_int,
    check_memory,
    check_real,
    check_work,
)
from perceptron_theory.simulate import kernels as K
from perceptron_theory.simulate._rng import seed_state
from perceptron_theory.simulate.data import init_weights_vector

__all__ = ["METHODS", "Method", "OnlineResult", "run", "method_config", "exact_test_error",
           "student_readout", "run_in_batches", "seed_array", "SeedStats"]


@dataclass(frozen=True)
class Method:
    """One student / update rule: how its pre-activation is normalized.

    ``name`` is a model of :data:`perceptron_theory.vocabulary.MODELS` (``doc`` its summary).
    """

    name: str
    normalized: bool
    center_batch: bool = False
    scale_batch: bool = False
    learn_beta: bool = False
    ghost: bool = False
    zeta: str = "any"  # "zero" or "any"

    @property
    def doc(self) -> str:
        return _vocab.MODELS[self.name].summary


#: Kernel configuration of every model of :func:`perceptron_theory.vocabulary.methods`
#: ``("simulate")``, in that order (a test checks the keys).
METHODS = {m.name: m for m in (
    Method("sgd", False, zeta="zero"),
    Method("wn", True, zeta="zero"),
    Method("wn-decay", True),  # zeta = 0 is "wn"
    Method("pn", True, learn_beta=True),
    Method("bn", True, True, True, True),
    Method("bn-mean", True, True, False, True),
    Method("bn-var", True, False, True, True),
    Method("ghost-bn", True, True, True, True, ghost=True),
)}
ENGINES = _vocab.ENGINES
FIELDS = ("gamma", "beta", "q2", "c", "running_mean", "running_var")


def check_weight_decay(method: str, weight_decay: float) -> float:
    """The plain student's L2 decay, checked: >= 0, finite, and only for ``"sgd"``."""
    weight_decay = check_real("weight_decay", weight_decay, 0.0)
    if weight_decay != 0.0 and METHODS[method].normalized:
        raise ValueError(f"weight_decay must be 0 for method {method!r} (an L2 decay on w is "
                         f"the plain student's, 'sgd'; normalized students decay gamma: "
                         f"zeta), got {weight_decay!r}")
    return weight_decay


def method_config(method: str, activation: str, teacher: str, batch_size: int, zeta: float,
                  ghost_size: int | None, freeze_L: bool) -> np.ndarray:
    """Validated integer configuration (``kernels.CFG_FIELDS``) for one method."""
    spec = METHODS[check_choice("method", method, METHODS)]
    M = batch_size
    if spec.zeta == "zero" and zeta != 0.0:
        raise ValueError(f"zeta must be 0 for method {method!r} (use 'wn-decay' for gamma "
                         f"decay), got {zeta}")
    if spec.center_batch or spec.scale_batch:
        if M < 2:
            raise ValueError(f"batch_size must be >= 2 for method {method!r} (batch statistics), "
                             f"got {M}")
    ghost = M
    if spec.ghost:
        if ghost_size is None:
            raise ValueError("ghost_size is required for method 'ghost-bn'")
        ghost = check_int("ghost_size", ghost_size, 2, M)
        if M % ghost:
            raise ValueError(f"ghost_size must divide batch_size={M}, got {ghost}")
    elif ghost_size is not None:
        raise ValueError(f"ghost_size applies only to method 'ghost-bn', got {ghost_size} "
                         f"for {method!r}")
    return np.array([K.ACTIVATION_CODES[activation], K.ACTIVATION_CODES[teacher],
                     int(spec.normalized), int(spec.center_batch), int(spec.scale_batch), ghost,
                     int(spec.learn_beta), int(freeze_L)], dtype=np.int64)


@njit(cache=True)
def _diverged(sc):
    """L^2 = |w|^2/N, gamma^2, beta^2 or (w.w*/N)^2 beyond ``DIVERGENCE_BOUND``, or non-finite."""
    if not math.isfinite(sc[2]) or sc[2] > K.DIVERGENCE_BOUND:
        return True
    for k in (0, 1, 3):
        v = sc[k]
        if not math.isfinite(v) or v * v > K.DIVERGENCE_BOUND:
            return True
    return False


@njit(cache=True)
def _run_one(cfg, prm, N, M, rec_steps, seed, init, engine, out):
    """One seed: fills ``out`` (shape=(n_rec, 6), FIELDS); returns the divergence step or -1."""
    # private copies: every kernel call increments the reference count of its array
    # arguments, and atomics on arrays shared between threads cost ~1/3 of the speed-up
    cfg = cfg.copy()
    prm = prm.copy()
    state = seed_state(seed, 0)
    sc = np.empty(6)
    sc[0] = init[2]
    sc[1] = 0.0
    sc[4] = 0.0
    sc[5] = init[1] * init[1]
    h, t, y, dh = np.empty(M), np.empty(M), np.empty(M), np.empty(M)
    stats = np.zeros(2)
    vector = engine == 0
    n_vec = N if vector else 1
    w_star, w = np.empty(n_vec), np.empty(n_vec)
    X = np.empty((M, n_vec))
    # kernels.reduced_scratch_size(M), used by the reduced engine only (O(M^2) memory)
    z = np.empty(1 if vector else 2 * M + M * (M + 1) // 2)
    if vector:
        init_weights_vector(state, init[0], init[1], w_star, w, X[0])
        sc[2] = np.dot(w, w) / N
        sc[3] = np.dot(w, w_star) / N
    else:
        sc[2] = init[1] * init[1]
        sc[3] = init[0] * init[1]
    j = 0
    for r in range(rec_steps.shape[0]):
        while j < rec_steps[r]:
            if vector:
                K.vector_step(cfg, prm, w, w_star, X, h, t, y, dh, stats, state, sc)
            else:
                K.reduced_step(cfg, prm, N, z, h, t, y, dh, stats, state, sc)
            j += 1
            if _diverged(sc):
                out[r:, :] = np.nan
                return j
        out[r, :] = sc
    return -1


@njit(cache=True, parallel=True)
def _run(cfg, prm, N, M, rec_steps, seeds, init, engine, out, div_step):
    """All seeds in parallel: ``out`` shape=(K, n_rec, 6); ``div_step`` shape=(K,)."""
    for k in prange(seeds.shape[0]):
        div_step[k] = _run_one(cfg, prm, N, M, rec_steps, seeds[k], init, engine, out[k])


def run_in_batches(kernel, seeds: np.ndarray, outs: tuple, progress, desc: str) -> None:
    """Call ``kernel(seeds_chunk, *out_chunks)``: once for all seeds, or in ~20 chunks when
    a tqdm bar is shown (``progress=None``: when stderr is a terminal).

    Each seed owns its random stream, so chunking changes nothing in the numbers.
    """
    import sys

    import numba

    if progress is None:
        progress = sys.stderr.isatty() and seeds.size > numba.get_num_threads()
    # one call for all seeds unless a bar is shown (each call pays the parallel launch)
    chunk = seeds.size if not progress else max(numba.get_num_threads(),
                                                -(-seeds.size // 20))
    starts = list(range(0, seeds.size, chunk))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=seeds.size, desc=desc, unit="seed", file=sys.stderr)
    for lo in starts:
        sl = slice(lo, lo + chunk)
        kernel(seeds[sl], *(o[sl] for o in outs))
        if bar is not None:
            bar.update(seeds[sl].size)
    if bar is not None:
        bar.close()


class SeedStats:
    """Mean/SE over seeds and JSON export, shared by the online and offline results."""

    def mean(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean over the non-diverged seeds and its standard error, per recorded time."""
        v = getattr(self, field)[~self.diverged]
        n = v.shape[0]
        se = v.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(v.shape[1], np.nan)
        return v.mean(axis=0), se

    def to_dict(self) -> dict:
        from perceptron_theory._io import to_plain_dict
        return to_plain_dict(self)


def step_cost(M: int, N: int, vector: bool) -> float:
    """Cost of one SGD step in :data:`perceptron_theory._checks.OPS_PER_S` units (ns),
    measured on one core: ~500 ns of overhead plus ~6 ns per input entry (vector engine)
    or ~15 ns per pair of samples (reduced engine)."""
    return 500.0 + (6.0 * M * N if vector else 15.0 * M * M)


#: Most recorded times of one call.
MAX_POINTS = 10**6
#: Most seeds of one call (each is a full simulation; the limit only keeps the bookkeeping
#: arrays of an absurd count from exhausting memory before :func:`check_sim_work` runs).
MAX_SEEDS = 10**7


def seed_array(seeds, seed: int) -> np.ndarray:
    """``seeds`` as an int64 array: a count (``seed, seed + 1, ...``) or explicit seeds."""
    if np.isscalar(seeds):
        n = check_int("seeds", seeds, 1, MAX_SEEDS)
        seed = check_int("seed", seed, 0, 2**63 - 1 - n)
        return np.arange(seed, seed + n, dtype=np.int64)
    try:
        out = np.asarray(seeds, np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"seeds must be a count >= 1 or non-negative integers, "
                         f"got {seeds!r}") from None
    if out.ndim != 1 or out.size == 0 or np.any(out < 0) or out.size > MAX_SEEDS:
        raise ValueError(f"seeds must be a count in [1, {MAX_SEEDS}] or up to {MAX_SEEDS} "
                         f"non-negative integers, got {seeds}")
    return out


def check_sim_work(what: str, n_seeds: int, n_rec: int, per_seed_bytes: float,
                   ops_per_seed: float) -> None:
    """Refuse (ValueError with the estimate) a simulation that would not fit in memory --
    ``n_seeds x n_rec`` records plus one seed's working arrays per thread -- or in time."""
    import numba

    rec_bytes = 8.0 * n_seeds * n_rec * 8
    check_memory(what, rec_bytes + per_seed_bytes * min(n_seeds, numba.get_num_threads()))
    check_work(what, float(n_seeds) * ops_per_seed)


@dataclass(frozen=True)
class OnlineResult(SeedStats):
    """Order parameters at the recorded times, one row per seed.

    ``gamma``/``beta``: the affine parameters (for ``sgd``: ``gamma = Q = |w|/sqrt N``);
    ``R`` = w.w*/(|w||w*|); ``L`` = |w|/sqrt N; ``Q`` = the test-time scale of the
    student's pre-activation, ``gamma L / sigma_test`` (= gamma for WN, = Q for SGD);
    ``eps`` = E[(g*(t) - g(s))^2] on fresh inputs (exact given the order parameters, test-
    time statistics), unhalved, without the label noise. After a divergence a row is NaN
    from the first recorded time past ``t_diverged``; ``diverged`` says so.
    """

    method: str
    activation: str
    teacher: str
    engine: str
    N: int
    batch_size: int
    lr: float
    zeta: float
    noise: float
    t: np.ndarray  # shape=(n_rec,)
    gamma: np.ndarray  # shape=(K, n_rec)
    beta: np.ndarray
    R: np.ndarray
    L: np.ndarray
    Q: np.ndarray
    eps: np.ndarray
    diverged: np.ndarray  # shape=(K,), bool
    t_diverged: np.ndarray  # shape=(K,), NaN where not diverged
    seeds: np.ndarray
    weight_decay: float = 0.0



def exact_test_error(student: str, teacher: str, q2, c, a, b, *, n_nodes: int = 96) -> np.ndarray:
    r"""Exact test error of :math:`s = a h + b` from :math:`|w|^2/N` and :math:`w\cdot w^*/N`.

    :math:`t = w^*\cdot x \sim N(0, 1)` and :math:`h = w\cdot x \sim N(0, q^2)` are jointly
    Gaussian with covariance ``c``, so :math:`\epsilon = E[(g^*(t) - g(s))^2]` is a
    two-dimensional Gaussian integral. Linear teacher: closed forms (Stein's lemma) for the
    linear and ReLU students, :math:`E[t\,g(s)] = \mathrm{cov}(t,s)E[g'(s)]`; otherwise
    Gauss-Hermite quadrature with ``n_nodes``^2 points (error < 1e-6 for smooth
    activations, ~1e-5 with a ReLU kink).
    """
    from scipy.stats import norm

    q2, c, a, b = np.broadcast_arrays(*(np.asarray(v, float) for v in (q2, c, a, b)))
    v = a * a * q2  # var s
    cts = a * c  # cov(t, s)
    if teacher == "linear" and student == "linear":
        return 1.0 - 2.0 * cts + v + b * b
    if teacher == "linear" and student == "relu":
        sd = np.sqrt(np.maximum(v, 1e-300))
        z = b / sd
        Phi, phi = norm.cdf(z), norm.pdf(z)
        return 1.0 - 2.0 * cts * Phi + (b * b + v) * Phi + b * sd * phi
    g = {name: K.numpy_act(name) for name in (teacher, student)}
    xs, ws = np.polynomial.hermite_e.hermegauss(n_nodes)
    ws = ws / ws.sum()
    u, z = xs[:, None], xs[None, :]
    W = ws[:, None] * ws[None, :]
    out = np.empty(q2.shape)
    for idx in np.ndindex(q2.shape):
        sd = math.sqrt(max(v[idx], 0.0))
        rho = cts[idx] / sd if sd > 0 else 0.0
        rho = min(max(rho, -1.0), 1.0)
        t = u
        s = b[idx] + sd * (rho * u + math.sqrt(1.0 - rho * rho) * z)
        out[idx] = float(np.sum(W * (g[teacher](t) - g[student](s)) ** 2))
    return out


def student_readout(method: str, activation: str, teacher: str, out: np.ndarray):
    """``(gamma, beta, R, L, Q, eps)`` from raw records ``out`` (shape=(..., 6), FIELDS)."""
    gamma, beta, q2, c = out[..., 0], out[..., 1], out[..., 2], out[..., 3]
    L = np.sqrt(q2)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = c / L
        spec = METHODS[method]
        if not spec.normalized:
            a, b, Q = np.ones_like(q2), np.zeros_like(q2), L
            gamma = L
        else:
            mu = out[..., 4] if spec.center_batch else np.zeros_like(q2)
            sig = np.sqrt(out[..., 5] + K.BN_EPS) if spec.scale_batch else L
            a = gamma / sig
            b = beta - gamma * mu / sig
            Q = a * L
        eps = exact_test_error(activation, teacher, q2, c, a, b)
    return gamma, beta, R, L, Q, eps


def run(method: str, activation: str, *, N: int, lr: float, t_max: float, zeta: float = 0.0,
        batch_size: int = 1, teacher: str | None = None, noise: float = 0.0,
        weight_decay: float = 0.0, n_points: int = 51, times=None, seeds=1, seed: int = 0,
        R_init: float = _vocab.INITIAL_CONDITIONS["R_init"],
        L_init: float = _vocab.INITIAL_CONDITIONS["L_init"],
        gamma_init: float = _vocab.INITIAL_CONDITIONS["gamma_init"],
        ghost_size: int | None = None,
        engine: str = "vector", freeze_L: bool = False, progress: bool | None = None
        ) -> OnlineResult:
    """Simulate online SGD for ``seeds`` independent runs.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    activation : str
        Student activation, ``"linear"``, ``"relu"`` or ``"erf"``.
    N : int
        Input dimension, >= 3.
    lr : float
        Per-sample learning rate :math:`\\eta` > 0 (see :mod:`.kernels`).
    t_max : float
        Last time, in samples / N.
    zeta : float
        Decay on gamma (per sample, :math:`\\tfrac\\zeta2\\gamma^2`), >= 0.
    batch_size : int
        M, samples per step (1 <= M; >= 2 with batch statistics).
    teacher : str, optional
        Teacher activation (default: the student's).
    noise : float
        Label-noise variance S >= 0.
    weight_decay : float
        L2 decay lambda >= 0 of the plain student (``"sgd"`` only): per sample
        :math:`\\tfrac{\\lambda}{2N}|w|^2`, so every step multiplies ``w`` by
        ``1 - lr batch_size lambda / N`` (the convention of
        :func:`perceptron_theory.theory.dynamics.integrate`: ``-lr lambda Q`` in dQ/dt).
    n_points, times
        Record at ``n_points`` equally spaced times in [0, t_max] or at the given ``times``.
    seeds : int or sequence of int
        How many seeds (``seed, seed+1, ...``) or the explicit list.
    seed : int
        First seed when ``seeds`` is a count.
    R_init, L_init, gamma_init : float
        Initial overlap, length |w|/sqrt N (for ``sgd``: Q) and gamma; by default
        :data:`perceptron_theory.vocabulary.INITIAL_CONDITIONS`, as in
        :func:`perceptron_theory.theory.dynamics.integrate`.
    ghost_size : int, optional
        Virtual batch size for ``ghost-bn``.
    engine : str
        ``"vector"`` (full N-vectors) or ``"reduced"`` (exact order-parameter chain,
        ``batch_size <= N - 2``).
    freeze_L : bool
        Rescale w to length ``L_init sqrt N`` after every step (normalized students only:
        their output does not depend on |w|, so this only fixes the effective rate).
    progress : bool, optional
        Show a progress bar over seed chunks (default: when stderr is a terminal).
    """
    method = check_choice("method", method, METHODS)
    activation = check_choice("activation", activation, K.ACTIVATION_CODES)
    teacher = activation if teacher is None else check_choice("teacher", teacher,
                                                              K.ACTIVATION_CODES)
    engine = check_choice("engine", engine, ENGINES)
    N = check_int("N", N, 3)
    lr = check_real("lr", lr, 0.0, lo_open=True)
    t_max = check_real("t_max", t_max, 0.0, lo_open=True)
    zeta = check_real("zeta", zeta, 0.0)
    M = check_int("batch_size", batch_size, 1)
    noise = check_real("noise", noise, 0.0)
    weight_decay = check_weight_decay(method, weight_decay)
    R_init = check_real("R_init", R_init, -1.0, 1.0)
    L_init = check_real("L_init", L_init, 0.0, lo_open=True)
    gamma_init = check_real("gamma_init", gamma_init)
    if freeze_L and not METHODS[method].normalized:
        raise ValueError(f"freeze_L applies to normalized students only, not {method!r}")
    cfg = method_config(method, activation, teacher, M, zeta, ghost_size, freeze_L)
    n_seeds = check_int("seeds", seeds, 1, MAX_SEEDS) if np.isscalar(seeds) else len(seeds)
    if times is None:
        n_points = check_int("n_points", n_points, 1, MAX_POINTS)
        check_sim_work(f"n_points={n_points}", n_seeds, n_points, 0.0, 0.0)
        times = np.linspace(0.0, t_max, n_points)
    times = np.asarray(times, float)
    if times.ndim != 1 or times.size == 0 or np.any(np.diff(times) < 0) or times[0] < 0 \
            or times[-1] > t_max * (1 + 1e-12):
        raise ValueError(f"times must be a non-empty increasing sequence in [0, t_max={t_max}]")
    vector = engine == "vector"
    if not vector and M > N - 2:  # Bartlett's Wishart Gram needs N - 2 >= M dimensions
        raise ValueError(f"batch_size must be <= N - 2 = {N - 2} for engine 'reduced', got "
                         f"{M}; use engine 'vector'")
    n_steps = t_max * N / M
    check_sim_work(f"online {method}: seeds={n_seeds}, N={N}, batch_size={M}, t_max={t_max:g}",
                   n_seeds, times.size, 8.0 * ((M + 3) * N if vector else M * (M + 5) / 2),
                   n_steps * step_cost(M, N, vector) + N)
    seeds = seed_array(seeds, seed)
    rec = np.round(times * N / M).astype(np.int64)
    t = rec * M / N
    prm = np.array([lr, zeta, math.sqrt(noise), L_init, weight_decay])
    init = np.array([R_init, L_init, gamma_init])
    out = np.empty((seeds.size, rec.size, 6))
    div = np.empty(seeds.size, np.int64)
    eng = ENGINES.index(engine)
    run_in_batches(lambda sd, o, d: _run(cfg, prm, N, M, rec, sd, init, eng, o, d),
                   seeds.astype(np.int64), (out, div), progress, f"{method} N={N}")
    gamma, beta, R, L, Q, eps = student_readout(method, activation, teacher, out)
    diverged = div >= 0
    t_div = np.where(diverged, div * M / N, np.nan)
    return OnlineResult(method, activation, teacher, engine, N, M, lr, zeta, noise, t, gamma,
                        beta, R, L, Q, eps, diverged, t_div, seeds,
                        weight_decay)

