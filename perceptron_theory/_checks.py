"""Argument checks shared by every public function.

Each check raises :class:`ValueError` naming the parameter, the offending value
and the valid range *before* any work starts (DESIGN.md, "Bad input"). Besides
values, the checks cover what a computation can honour: the memory and time a size
would need (:func:`check_memory`, :func:`check_work`, refused with the estimate) and
output paths (:func:`check_output_file`, :func:`check_output_dir`: the folder must be
creatable and writable, tested before the work so that a long run is never lost to a
bad ``--plot``). :func:`check_cli_args` applies the generic rules to every option of a
parsed command line (finite floats, 64-bit integers, the paths named by
:data:`OUTPUT_FILE_OPTIONS`, :data:`OUTPUT_DIR_OPTIONS` and :data:`INPUT_DIR_OPTIONS`,
the devices of :data:`DEVICE_OPTIONS`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["check_real", "check_int", "check_choice", "check_array", "check_memory",
           "check_work", "check_output_file", "check_output_dir", "check_input_dir",
           "check_device", "check_keywords",
           "check_cli_args", "finite_or_none", "WORK_LIMIT_S"]


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
                min_size: int = 0, shape: tuple | None = None) -> np.ndarray:
    """Return ``value`` as a float ndarray whose entries are finite and in range (and of
    ``shape`` when given)."""
    rng = _fmt_range(lo, hi, lo_open, hi_open)
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be real numbers in {rng}, got {value!r}") from None
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {a.shape}")
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


# ----------------------------------------------------------------------- memory and time
#: Longest single computation accepted, in estimated seconds (one week): a larger size is
#: refused with its estimate instead of running out of time.
WORK_LIMIT_S = 7 * 86400.0

#: Rough throughput of the numerical kernels, elementary floating-point updates per second,
#: used only to turn a size into a time estimate for :func:`check_work`.
OPS_PER_S = 1e9


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _fmt_seconds(s: float) -> str:
    for unit, sec in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600),
                      ("minutes", 60)):
        if s >= sec:
            return f"{s / sec:.3g} {unit}"
    return f"{s:.3g} s"


def memory_limit() -> float:
    """Bytes one computation may allocate: the machine's physical memory."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 2.0 ** 40


def check_memory(what: str, n_bytes: float) -> None:
    """Raise ValueError when ``n_bytes`` (an estimate) exceeds the machine's memory.

    ``what`` names the sizes responsible, e.g. ``"seeds=10^12 x n_points=11"``.
    """
    limit = memory_limit()
    if not n_bytes <= limit:
        raise ValueError(f"{what} would need about {_fmt_bytes(float(n_bytes))} of memory, "
                         f"more than this machine's {_fmt_bytes(limit)}")


def check_work(what: str, n_ops: float, *, limit_s: float | None = None) -> None:
    """Raise ValueError when ``n_ops`` elementary updates would take longer than ``limit_s``
    (default :data:`WORK_LIMIT_S`, read at each call so that a test can lower it).

    The estimate assumes :data:`OPS_PER_S`; it only has to be right within a factor of
    a few to tell a size that finishes from one that never does.
    """
    limit_s = WORK_LIMIT_S if limit_s is None else limit_s
    seconds = float(n_ops) / OPS_PER_S
    if not seconds <= limit_s:
        raise ValueError(f"{what} would take about {_fmt_seconds(seconds)} "
                         f"(~{float(n_ops):.2g} updates); the limit is "
                         f"{_fmt_seconds(limit_s)}")


# -------------------------------------------------------------------------------- paths
def _check_path_text(name: str, path) -> Path:
    if path is None or not str(path).strip():
        raise ValueError(f"{name} must be a non-empty path, got {path!r}")
    text = os.fspath(path)
    if "\x00" in text:
        raise ValueError(f"{name} must not contain a NUL character, got {path!r}")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > 255:
            raise ValueError(f"{name} has a path component longer than 255 bytes: "
                             f"{part[:40]!r}...")
    return Path(text)


def _writable_ancestor(name: str, path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a folder we can create files in
    (tested by creating one: ``os.access`` is always true for root)."""
    import tempfile

    probe = path.absolute()
    try:
        while not probe.exists():
            if probe.is_symlink():
                raise ValueError(f"{name}: {probe} is a dangling symbolic link")
            probe = probe.parent
    except OSError as exc:  # e.g. a folder we may not search
        raise ValueError(f"{name}: cannot reach {probe} ({exc.strerror or exc})") from None
    if not probe.is_dir():
        raise ValueError(f"{name}: {probe} is not a folder, so {path} cannot be created")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write into {probe} ({exc.strerror or exc})") from None


def check_output_file(name: str, path, *, formats: Iterable[str] | None = None) -> Path:
    """Return ``path`` as a Path if a file can be written there, else raise ValueError.

    Missing parent folders are fine (writers create them); a parent that is a file, an
    unwritable folder, an existing folder at ``path``, an empty name or (with ``formats``)
    an unknown suffix are refused.
    """
    p = _check_path_text(name, path)
    if p.is_dir():
        raise ValueError(f"{name}: {p} is a folder, not a file name")
    if formats is not None:
        formats = tuple(formats)
        suffix = p.suffix.lstrip(".").lower()
        if suffix and suffix not in formats:
            raise ValueError(f"{name}: unknown file type {p.suffix!r}; use one of "
                             f"{', '.join('.' + f for f in formats)}")
    _writable_ancestor(name, p.parent if str(p.parent) else Path("."))
    return p


def check_output_dir(name: str, path) -> Path:
    """Return ``path`` as a Path if it is (or can be created as) a writable folder."""
    p = _check_path_text(name, path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{name}: {p} exists and is not a folder")
    _writable_ancestor(name, p)
    return p


def check_input_dir(name: str, path, what: str = "") -> Path:
    """Return ``path`` as a Path if it is an existing folder, else raise ValueError
    (``what`` describes the folder expected, for the message)."""
    p = _check_path_text(name, path)
    if not p.is_dir():
        raise ValueError(f"{name}: {p} is not an existing folder" + (f"; expected {what}"
                                                                      if what else ""))
    return p


def check_device(name: str, device) -> str:
    """``device`` if torch can use it here ("cpu", "auto", "cuda", "cuda:K"), else raise."""
    text = str(device)
    if text in ("cpu", "auto"):
        return text
    if text == "cuda" or text.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text!r}: CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use cpu")
        index = text.partition(":")[2]
        if index and not (index.isdigit() and int(index) < torch.cuda.device_count()):
            raise ValueError(f"{name} {text!r}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return text
    raise ValueError(f"{name} must be cpu, auto or cuda[:K], got {text!r}")


def check_keywords(name: str, fn, options, *, skip: Iterable[str] = ()) -> dict:
    """``options`` if every key is a keyword parameter of ``fn`` (less ``skip``), else
    raise ValueError listing the valid ones; a ``**kwargs`` function accepts anything."""
    import inspect

    fn = getattr(fn, "fn", fn)
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(options)
    valid = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and p.name not in set(skip)]
    for key in options:
        if key not in valid:
            raise ValueError(f"{name} has unknown key {key!r}; valid keys: "
                             f"{', '.join(valid) or 'none'}")
    return dict(options)


# ---------------------------------------------------------------------- command lines
#: Options (argparse ``dest``) that name a file the command writes.
OUTPUT_FILE_OPTIONS = frozenset({"plot"})
#: Options that name a folder the command writes into (created when missing).
OUTPUT_DIR_OPTIONS = frozenset({"out", "cache_dir"})
#: Options that name a folder the command reads, with what it should hold.
INPUT_DIR_OPTIONS = {"checkpoint": "a run folder written by train (config.json + "
                                   "checkpoint.pt)",
                     "data_dir": "the folder of the data set's files"}
#: Options that name a torch device.
DEVICE_OPTIONS = frozenset({"device"})

_INT64 = 2 ** 63


def check_cli_args(parser, args) -> None:
    """Generic checks of a parsed command line, before any work.

    Every option whose argparse ``type`` is ``float`` must be finite and every ``int``
    must fit in 64 bits (what numpy, numba and torch compute with), whatever the
    subcommand; options named in :data:`OUTPUT_FILE_OPTIONS`, :data:`OUTPUT_DIR_OPTIONS`
    and :data:`INPUT_DIR_OPTIONS` must be usable paths. Messages name the option as
    typed (``--lr``). Range checks specific to an option stay with the function that
    uses the value.
    """
    for action in _actions_of(parser, args):
        if not action.option_strings:
            continue
        value = getattr(args, action.dest, None)
        if value is None:
            continue
        flag = max(action.option_strings, key=len)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if action.type is float and not math.isfinite(v):
                raise ValueError(f"{flag} must be a finite number, got {v!r}")
            if action.type is int and not -_INT64 <= v < _INT64:
                raise ValueError(f"{flag} must be an integer in [-2^63, 2^63), got {v}")
        if action.dest in OUTPUT_FILE_OPTIONS:
            check_output_file(flag, value, formats=_image_formats())
        elif action.dest in OUTPUT_DIR_OPTIONS:
            check_output_dir(flag, value)
        elif action.dest in INPUT_DIR_OPTIONS:
            check_input_dir(flag, value, INPUT_DIR_OPTIONS[action.dest])
        elif action.dest in DEVICE_OPTIONS:
            check_device(flag, value)


def _actions_of(parser, args):
    """The actions of the top-level parser and of the subcommand ``args`` selected."""
    import argparse

    out = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                out += _actions_of(action.choices[name], args)
    return out


def _image_formats() -> tuple:
    """File suffixes matplotlib can write (without importing pyplot)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(FigureCanvasBase.get_supported_filetypes())


# ------------------------------------------------------------------------------- output
def finite_or_none(obj):
    """``obj`` with every non-finite float (NaN, +-inf) replaced by ``None``, recursively:
    strict JSON has no NaN or Infinity (:func:`perceptron_theory._io.plain` with
    ``finite_only``, the package's one cleaner)."""
    from perceptron_theory._io import plain

    return plain(obj, finite_only=True)
