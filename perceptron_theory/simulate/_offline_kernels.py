r"""Numba kernels of the offline runner: the mini-batch rows read in place, twice.

A step on the rows ``X[rows]`` of the stored training set needs ``h = X[rows] w``
(:func:`forward`), the batch statistics and ``dh`` (``O(M)``, :func:`.kernels._grads`),
then ``w <- shrink w - lr sum_m dh_m X[rows[m]]`` with ``|w|^2`` and ``w . w*``
(:func:`update`). The rows are never copied: :func:`forward` streams them from memory
eight at a time (eight dot products per sweep of ``w``; one row at a time streams ~1.4x
slower than memory allows), :func:`update` reads them again from the cache four at a
time, last rows first. ``h`` of a step depends on every row of the step before, so
the second read cannot be fused into the first; tiling the update of one step with the
forward pass of the next, or prefetching the next step's rows during the update, measured
no faster (``benchmarks/simulate.py``, section e, gives the runner against a plain read
of the array).

``X`` is float64 or float32 (storage only: every product and sum is taken in float64;
the f32 -> f64 conversions are what keep the float32 runner above the float32 memory
floor). Sums are taken in another order than the replaced runner's (BLAS dot products,
one row at a time): results agree to ~1e-15 relative per step.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perceptron_theory.simulate import kernels as K
from perceptron_theory.simulate._rng import fill_normal


@njit(cache=True, fastmath=K._FAST)
def dot(x, w):
    """``x . w`` summed in float64 (x: shape=(n,), float32 or float64; w: float64)."""
    acc = 0.0
    for i in range(x.shape[0]):
        acc += np.float64(x[i]) * w[i]
    return acc


@njit(cache=True, fastmath=K._FAST, inline="always")
def _dot8(x0, x1, x2, x3, x4, x5, x6, x7, w):
    """Eight dot products with ``w`` in one sweep: ``w`` is loaded once for eight rows,
    and eight memory streams are in flight at once (a single row streams ~1.4x slower)."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    for i in range(w.shape[0]):
        v = w[i]
        a0 += np.float64(x0[i]) * v
        a1 += np.float64(x1[i]) * v
        a2 += np.float64(x2[i]) * v
        a3 += np.float64(x3[i]) * v
        a4 += np.float64(x4[i]) * v
        a5 += np.float64(x5[i]) * v
        a6 += np.float64(x6[i]) * v
        a7 += np.float64(x7[i]) * v
    return a0, a1, a2, a3, a4, a5, a6, a7


@njit(cache=True, fastmath=K._FAST)
def forward(X, rows, w, h):
    """``h[m] = X[rows[m]] . w`` (``rows``, ``h`` shape=(M,); ``w`` shape=(N,)), eight rows
    per sweep."""
    M = rows.shape[0]
    m8 = M - M % 8
    for m in range(0, m8, 8):
        r = rows[m:m + 8]
        (h[m], h[m + 1], h[m + 2], h[m + 3], h[m + 4], h[m + 5], h[m + 6],
         h[m + 7]) = _dot8(X[r[0]], X[r[1]], X[r[2]], X[r[3]], X[r[4]], X[r[5]], X[r[6]],
                           X[r[7]], w)
    for m in range(m8, M):
        h[m] = dot(X[rows[m]], w)


@njit(cache=True, fastmath=K._FAST, inline="always")
def _axpy1(s, c, x, w, w_star, norms):
    """``w <- s w + c x``; returns ``(|w|^2, w . w*)`` if ``norms``, else zeros."""
    a2 = 0.0
    aw = 0.0
    for i in range(w.shape[0]):
        v = s * w[i] + c * np.float64(x[i])
        w[i] = v
        if norms:
            a2 += v * v
            aw += v * w_star[i]
    return a2, aw


@njit(cache=True, fastmath=K._FAST, inline="always")
def _axpy4(s, c0, c1, c2, c3, x0, x1, x2, x3, w, w_star, norms):
    """``w <- s w + c0 x0 + c1 x1 + c2 x2 + c3 x3`` (one read and write of ``w`` per four
    rows); returns ``(|w|^2, w . w*)`` if ``norms``, else zeros."""
    a2 = 0.0
    aw = 0.0
    for i in range(w.shape[0]):
        v = (s * w[i] + c0 * np.float64(x0[i]) + c1 * np.float64(x1[i])
             + c2 * np.float64(x2[i]) + c3 * np.float64(x3[i]))
        w[i] = v
        if norms:
            a2 += v * v
            aw += v * w_star[i]
    return a2, aw


@njit(cache=True, fastmath=K._FAST)
def update(X, rows, coef, shrink, w, w_star):
    """``w <- shrink w + sum_m coef[m] X[rows[m]]``; returns ``(|w|^2, w . w*)`` of the new
    ``w``. ``rows``, ``coef`` shape=(M,); ``w``, ``w_star`` shape=(N,).

    The rows are visited last first, four per sweep of ``w`` (the ``M mod 4`` last ones
    one by one): right after :func:`forward` the last rows are the likeliest to still be in
    the core's own cache. The first sweep applies ``shrink``, the last one sums the norms.
    """
    M = rows.shape[0]
    m4 = M - M % 4
    s = shrink
    out = (0.0, 0.0)
    for m in range(M - 1, m4 - 1, -1):
        out = _axpy1(s, coef[m], X[rows[m]], w, w_star, m == 0)
        s = 1.0
    for m in range(m4 - 4, -1, -4):
        r = rows[m:m + 4]
        out = _axpy4(s, coef[m], coef[m + 1], coef[m + 2], coef[m + 3], X[r[0]], X[r[1]],
                     X[r[2]], X[r[3]], w, w_star, m == 0)
        s = 1.0
    return out


@njit(cache=True)
def fill_training_set_cast(state, X, w_star, teacher, noise_std, y, row):
    """:func:`.data.fill_training_set` into ``X`` of any float dtype: the same float64
    draws and labels ``y`` (from the float64 inputs), the inputs rounded on storage
    (float32) or stored exactly (float64: bit for bit the draw of ``fill_training_set``).

    ``X`` shape=(P, N); ``y`` shape=(P,); ``row`` shape=(N,) float64 scratch.
    """
    P, N = X.shape
    t = np.empty(P)
    for p in range(P):
        fill_normal(state, row, 1.0 / math.sqrt(N))
        t[p] = np.dot(row, w_star)
        for i in range(N):
            X[p, i] = row[i]
    K.labels(t, teacher, noise_std, state, y)


@njit(cache=True, fastmath=K._FAST)
def stream_sum(X):
    """Sum of every entry of ``X`` (shape=(P, N)) read once in storage order, eight rows at
    a time (eight memory streams in flight: ~1.2x faster than one): the memory floor of an
    epoch, which must read the whole training set (``benchmarks/simulate.py``)."""
    P = X.shape[0]
    p8 = P - P % 8
    acc = 0.0
    for p in range(0, p8, 8):
        x0, x1, x2, x3 = X[p], X[p + 1], X[p + 2], X[p + 3]
        x4, x5, x6, x7 = X[p + 4], X[p + 5], X[p + 6], X[p + 7]
        for i in range(x0.shape[0]):
            acc += (np.float64(x0[i]) + np.float64(x1[i]) + np.float64(x2[i])
                    + np.float64(x3[i]) + np.float64(x4[i]) + np.float64(x5[i])
                    + np.float64(x6[i]) + np.float64(x7[i]))
    for p in range(p8, P):
        x = X[p]
        for i in range(x.shape[0]):
            acc += np.float64(x[i])
    return acc
