"""A small, fast, seedable random number generator for numba kernels.

``xoshiro256+`` (Blackman & Vigna 2018) for uniform 64-bit words, seeded through
``splitmix64`` so that every ``(seed, stream)`` pair gets an independent,
reproducible state; Gaussian variates by the Marsaglia & Tsang (2000) ziggurat
(128 layers, 32-bit) on the top bits of each word. The state is a ``uint64`` array
of shape ``(4,)`` owned by one task, so kernels running in ``prange`` over seeds are
deterministic whatever the thread count.

numba's own ``np.random.standard_normal`` costs about 24 ns per variate on the
machines this package targets (a Mersenne twister with a polar method), which would
make the generation of ``x ~ N(0, I/N)`` the whole cost of an online step;
the ziggurat here is several times faster (``benchmarks/simulate.py`` measures it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["seed_state", "next_u64", "bounded", "shuffle", "uniform", "normal", "fill_normal",
           "fill_normal_dot", "ZIGGURAT_TABLES"]


def _ziggurat_tables():
    """Marsaglia & Tsang's ``zigset`` for the normal distribution (128 layers)."""
    m1 = 2147483648.0
    dn = tn = 3.442619855899
    vn = 9.91256303526217e-3
    kn = np.zeros(128, np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    q = vn / math.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = math.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


ZIGGURAT_TABLES = _ziggurat_tables()
_KN, _WN, _FN = ZIGGURAT_TABLES
_R = 3.442619855899  # start of the tail


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@njit(cache=True)
def seed_state(seed, stream):
    """State (shape=(4,), uint64) for the pair ``(seed, stream)`` via splitmix64."""
    x = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) ^ np.uint64(stream)
    s = np.empty(4, np.uint64)
    for i in range(4):
        x, s[i] = _splitmix64(x)
    # a short warm-up decorrelates neighbouring seeds further
    for _ in range(8):
        next_u64(s)
    return s


@njit(cache=True, inline="always")
def next_u64(s):
    """One xoshiro256+ step on the state ``s`` (shape=(4,)), in place."""
    result = s[0] + s[3]
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """U(0, 1) from the top 53 bits; never exactly 0."""
    return ((next_u64(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def bounded(s, n):
    """A uniform integer in ``[0, n)`` for ``1 <= n < 2**32``, exactly (Lemire 2019).

    The top 32 bits ``x`` of one draw give ``m = x n < 2**64`` (all in unsigned 64-bit
    arithmetic); ``m >> 32`` is the result unless the low word falls in the
    ``2**32 mod n`` values that would bias it, which are redrawn. D. Lemire, "Fast random
    integer generation in an interval", ACM TOMACS 29 (2019).
    """
    nn = np.uint64(n)
    m = (next_u64(s) >> np.uint64(32)) * nn
    low = m & np.uint64(0xFFFFFFFF)
    if low < nn:
        t = (np.uint64(0x100000000) - nn) % nn
        while low < t:
            m = (next_u64(s) >> np.uint64(32)) * nn
            low = m & np.uint64(0xFFFFFFFF)
    return np.int64(m >> np.uint64(32))


@njit(cache=True)
def shuffle(s, perm):
    """Fisher-Yates shuffle of ``perm`` (shape=(P,), P < 2**32) in place, with :func:`bounded`."""
    for i in range(perm.shape[0] - 1, 0, -1):
        j = bounded(s, i + 1)
        perm[i], perm[j] = perm[j], perm[i]


@njit(cache=True, inline="always")
def _signed32(s):
    return np.int64(np.int32(np.uint32(next_u64(s) >> np.uint64(32))))


@njit(cache=True)
def _normal_slow(s, hz, iz):
    while True:
        x = hz * _WN[iz]
        if iz == 0:  # the tail beyond r
            while True:
                x = -math.log(uniform(s)) / _R
                y = -math.log(uniform(s))
                if y + y >= x * x:
                    break
            return _R + x if hz > 0 else -_R - x
        if _FN[iz] + uniform(s) * (_FN[iz - 1] - _FN[iz]) < math.exp(-0.5 * x * x):
            return x
        hz = _signed32(s)
        iz = hz & 127
        if abs(hz) < _KN[iz]:
            return hz * _WN[iz]


@njit(cache=True, inline="always")
def normal(s):
    """One N(0, 1) variate (ziggurat)."""
    hz = _signed32(s)
    iz = hz & 127
    if abs(hz) < _KN[iz]:
        return hz * _WN[iz]
    return _normal_slow(s, hz, iz)


@njit(cache=True)
def fill_normal(s, out, scale):
    """``out[:] = scale * N(0, 1)`` variates (shape=(n,)), advancing the state ``s``.

    The state lives in registers for the whole fill (loading and storing the state array
    at every variate costs ~6x); the rare slow path syncs it back.
    """
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for i in range(out.shape[0]):
        r = s0 + s3
        t = s1 << np.uint64(17)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
        hz = np.int64(np.int32(np.uint32(r >> np.uint64(32))))
        iz = hz & 127
        if abs(hz) < _KN[iz]:
            v = scale * (hz * _WN[iz])
        else:
            s[0], s[1], s[2], s[3] = s0, s1, s2, s3
            v = scale * _normal_slow(s, hz, iz)
            s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
        out[i] = v
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3


@njit(cache=True)
def fill_normal_dot(s, out, scale, a, b):
    """:func:`fill_normal`, returning ``(a . out, b . out)`` (a, b shape=(n,)) accumulated
    while generating: one pass over memory instead of two.

    The generator loop is written out again on purpose: sharing it through an optional
    argument or a tuple-returning helper measured 2x slower (numba does not inline them).
    """
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    da = 0.0
    db = 0.0
    for i in range(out.shape[0]):
        r = s0 + s3
        t = s1 << np.uint64(17)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
        hz = np.int64(np.int32(np.uint32(r >> np.uint64(32))))
        iz = hz & 127
        if abs(hz) < _KN[iz]:
            v = scale * (hz * _WN[iz])
        else:
            s[0], s[1], s[2], s[3] = s0, s1, s2, s3
            v = scale * _normal_slow(s, hz, iz)
            s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
        out[i] = v
        da += a[i] * v
        db += b[i] * v
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return da, db
