"""Atomic output: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["to_plain_dict", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "atomic_savefig", "remove_stale_temp_files"]


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
    from perceptron_theory._checks import finite_or_none

    text = json.dumps(finite_or_none(obj), indent=2, sort_keys=False, default=_jsonable,
                      allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_savefig(fig, path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (PNG unless ``format`` says otherwise)."""
    import io

    buf = io.BytesIO()
    fmt = kwargs.pop("format", Path(path).suffix.lstrip(".") or "png")
    fig.savefig(buf, format=fmt, **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def to_plain_dict(obj) -> dict:
    """A dataclass as a dict of plain Python values (arrays become lists), for JSON."""
    from dataclasses import fields

    import numpy as np

    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
