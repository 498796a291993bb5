"""The offline runner's Fisher-Yates shuffle: uniform above P = 1024, same in fresh processes.

Before the fix the index ``(u >> 11) * (i + 1) >> 53`` was a signed 64-bit product that
overflowed once ``i + 1 > 1024`` (negative indices wrapped around): these tests failed on
that code (chi-square statistics in the tens of thousands at P = 4096 and 12288).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from perceptron_theory.simulate import _rng

BLOCKS = 16


def _block_counts(P: int, shuffles: int, seed: int) -> np.ndarray:
    """counts[a, b]: how often an element of block a ended in position block b."""
    state = _rng.seed_state(seed, 7)
    perm = np.arange(P)
    counts = np.zeros((BLOCKS, BLOCKS))
    pos_block = np.arange(P) * BLOCKS // P
    for _ in range(shuffles):
        perm[:] = np.arange(P)
        _rng.shuffle(state, perm)
        np.add.at(counts, (perm * BLOCKS // P, pos_block), 1.0)
    return counts


@pytest.mark.parametrize("P", [4096, 12288])
def test_shuffle_positions_are_uniform(P):
    # each shuffle's block table is a contingency table with fixed margins: under a uniform
    # permutation the Pearson statistic of the summed tables is chi-square with
    # (BLOCKS - 1)^2 degrees of freedom; p < 1e-4 fails (a false alarm once in 10^4 runs)
    shuffles = 200
    counts = _block_counts(P, shuffles, seed=3)
    expected = shuffles * P / BLOCKS**2
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    p = stats.chi2.sf(chi2, (BLOCKS - 1) ** 2)
    assert p > 1e-4, f"chi2 = {chi2:.0f} on {(BLOCKS - 1) ** 2} df, p = {p:.2e}"


def test_bounded_stays_in_range_and_covers_it():
    state = _rng.seed_state(0, 0)
    for n in (1, 2, 3, 1025, 12288, 2**31 + 11, 2**32 - 1):
        draws = np.array([_rng.bounded(state, n) for _ in range(2000)])
        assert draws.min() >= 0 and draws.max() < n
        if n > 1:  # the mean of U{0..n-1} within 5 standard errors
            se = (n / np.sqrt(12)) / np.sqrt(draws.size)
            assert abs(draws.mean() - (n - 1) / 2) < 5 * se


_SCRIPT = """
import hashlib, json, numpy as np
from perceptron_theory.simulate import _rng
s = _rng.seed_state(5, 1)
perm = np.arange(12288)
_rng.shuffle(s, perm)
print(json.dumps(hashlib.sha256(perm.tobytes()).hexdigest()))
"""


def test_same_seed_same_permutation_in_fresh_processes(tmp_path):
    # each process compiles afresh (its own NUMBA_CACHE_DIR): undefined behaviour would
    # show as two different permutations
    out = []
    for k in range(2):
        env = {"NUMBA_CACHE_DIR": str(tmp_path / f"cache{k}"), "PATH": "/usr/bin:/bin"}
        r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                           env=env, check=True, timeout=300)
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    state = _rng.seed_state(5, 1)
    perm = np.arange(12288)
    _rng.shuffle(state, perm)
    import hashlib

    assert out[0] == out[1] == hashlib.sha256(perm.tobytes()).hexdigest()
    assert sorted(perm.tolist()) == list(range(12288))
