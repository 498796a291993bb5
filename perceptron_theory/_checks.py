"""Argument checks shared by every public function.

Each check raises :class:`ValueError` naming the parameter, the offending value
and the valid range *before* any work starts (DESIGN.md, "Bad input").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["check_real", "check_int", "check_choice", "check_array"]


def _fmt_range(lo, hi, lo_open, hi_open) -> str:
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def check_real(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False) -> float:
    """Return ``value`` as a finite float inside the interval, or raise ValueError.

    ``lo_open``/``hi_open`` make the corresponding end of the interval open.
    """
    rng = _fmt_range(lo, hi, lo_open, hi_open)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite and in {rng}, got {value!r}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return x


def check_int(name: str, value, lo=None, hi=None) -> int:
    """Return ``value`` as an int inside ``[lo, hi]``, or raise ValueError."""
    rng = _fmt_range(lo, hi, False, False)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer in {rng}, got {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in {rng}, got {value!r}")
    return v


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_array(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False,
                min_size: int = 0) -> np.ndarray:
    """Return ``value`` as a float ndarray whose entries are finite and in range."""
    rng = _fmt_range(lo, hi, lo_open, hi_open)
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be real numbers in {rng}, got {value!r}") from None
    if a.size < min_size:
        raise ValueError(f"{name} must hold at least {min_size} values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite and in {rng}; found a non-finite entry")
    bad = np.zeros(a.shape, dtype=bool)
    if lo is not None:
        bad |= (a < lo) | ((a == lo) if lo_open else False)
    if hi is not None:
        bad |= (a > hi) | ((a == hi) if hi_open else False)
    if np.any(bad):
        first = float(a[bad].flat[0])
        raise ValueError(f"{name} must be in {rng}; found {first!r}")
    return a
