"""Atomic output: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["plain", "to_plain_dict", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_json", "atomic_savefig", "remove_stale_temp_files"]


def atomic_write_bytes(path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` so that readers never see a partial file.

    ``fsync`` (default) forces the data to disk before the rename, so that a crash of
    the machine leaves the old file or the new one; without it a crash can leave an
    empty file (for files that are rebuilt anyway, such as a run's log).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temp_files(folder, names, older_than_s: float = 600.0) -> list[str]:
    """Remove the temporary files ``.NAME.*.tmp`` of :func:`atomic_write_bytes` for each
    of ``names`` in ``folder`` that are older than ``older_than_s`` seconds: left by a
    writer that was killed (an atomic write takes far less time). Returns their names."""
    import time

    removed = []
    now = time.time()
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > older_than_s:
                    tmp.unlink()
                    removed.append(tmp.name)
            except FileNotFoundError:
                pass
    return sorted(removed)


def atomic_write_text(path, text: str, *, fsync: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path, obj) -> Path:
    """Strict JSON, atomically: NaN and +-inf are written ``null`` (they are not JSON)."""
    text = json.dumps(plain(obj, finite_only=True), indent=2, sort_keys=False,
                      default=_jsonable, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_savefig(fig, path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (PNG unless ``format`` says otherwise)."""
    import io

    buf = io.BytesIO()
    fmt = kwargs.pop("format", Path(path).suffix.lstrip(".") or "png")
    fig.savefig(buf, format=fmt, **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def plain(obj, *, finite_only: bool = False):
    """Nested data as plain Python for JSON: the package's one cleaner.

    Mappings become dicts (keys kept), lists, tuples, numpy arrays and torch tensors
    (duck-typed, ``.detach()``) become lists, numpy scalars Python numbers, objects with
    ``to_dict()`` their dict, other dataclasses the dict of their fields; anything else
    is returned as it is. ``finite_only``: NaN and infinities become ``None`` (strict
    JSON's ``null``); otherwise they stay floats (``json`` writes ``NaN``/``Infinity``).

    >>> import numpy as np
    >>> plain({"a": np.array([1.0, np.nan]), "b": (np.int64(2), np.bool_(True))})
    {'a': [1.0, nan], 'b': [2, True]}
    >>> plain([np.inf, 0.5], finite_only=True)
    [None, 0.5]
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float):
        return None if finite_only and not math.isfinite(obj) else obj
    if isinstance(obj, (int, str)) or obj is None:  # (bool is an int)
        return obj
    if isinstance(obj, Mapping):
        return {k: plain(v, finite_only=finite_only) for k, v in obj.items()}
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()  # Python numbers, nested lists (a 0-d array: a number)
        if not finite_only:
            return obj
    if isinstance(obj, (list, tuple)):
        return [plain(v, finite_only=finite_only) for v in obj]
    if isinstance(obj, (int, float)):
        return plain(obj, finite_only=finite_only)
    if hasattr(obj, "to_dict"):
        return plain(obj.to_dict(), finite_only=finite_only)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain_dict(obj, finite_only=finite_only)
    return obj


def to_plain_dict(obj, *, finite_only: bool = False) -> dict:
    """A dataclass as a dict of plain Python values (:func:`plain` of each field)."""
    return {f.name: plain(getattr(obj, f.name), finite_only=finite_only)
            for f in dataclasses.fields(obj)}


def _jsonable(obj):
    """``json.dumps(..., default=_jsonable)``: :func:`plain`, or TypeError if it cannot."""
    out = plain(obj)
    if out is obj:
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")
    return out
