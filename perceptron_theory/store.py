"""The run store: results of units of work, keyed by their complete configuration.

A *unit* is one piece of work that is worth keeping: one training run, one simulation
cell, one theory grid, one check of the report. Its result is stored under a cache
folder as JSON, keyed by the SHA-256 of ``(function, configuration, package version[,
source fingerprint])``::

    <root>/<kind>/<key[:2]>/<key>.json   {"key", "function", "config", "payload", "sha256"}

Asking again for a stored unit reads it back. An entry whose key or checksum does not
match (a partial write, a corrupt or edited file) is treated as absent and recomputed,
never used. Entries are written atomically (temporary file + rename), so a kill at any
moment loses at most the units in flight.

What makes two units the same
-----------------------------
``code=False`` (deep training runs): the package version. Stored training runs cost
minutes to hours each and survive edits that do not change the training loop; after
such a change, bump the version or pass ``--rerun``.
``code=True`` (simulations, theory grids, checks: seconds each): the version and a
fingerprint of the package's source files, so that any edit recomputes them.

The default folder is ``$XDG_CACHE_HOME/perceptron_theory`` (``~/.cache/perceptron_theory``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from perceptron_theory._io import plain

__all__ = ["Store", "default_root", "unit_key", "source_fingerprint"]


def default_root() -> Path:
    """``$XDG_CACHE_HOME/perceptron_theory`` or ``~/.cache/perceptron_theory``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "perceptron_theory"


@functools.cache
def source_fingerprint() -> str:
    """SHA-256 over the ``.py`` files of the installed packages ``perceptron_theory``,
    ``validation`` and ``paper_figures`` (path and content, in a fixed order)."""
    h = hashlib.sha256()
    import importlib.util

    for pkg in ("perceptron_theory", "validation", "paper_figures"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def unit_key(function: str, config, *, code: bool = True) -> str:
    """The key of a unit: SHA-256 of its function, configuration and package version
    (and the source fingerprint when ``code``)."""
    from perceptron_theory import __version__

    doc = {"function": function, "config": config, "version": __version__}
    if code:
        doc["source"] = source_fingerprint()
    text = json.dumps(plain(doc), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(payload_text: str) -> str:
    return hashlib.sha256(payload_text.encode()).hexdigest()


class Store:
    """A folder of unit results (see the module docstring).

    Parameters
    ----------
    root : path-like, optional
        The cache folder (default :func:`default_root`).
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, kind: str, key: str) -> Path:
        """Where the entry ``key`` of ``kind`` (``"deep"``, ``"unit"``, ``"check"``) lives."""
        if not kind.replace("-", "").isalnum():
            raise ValueError(f"kind must be alphanumeric (and '-'), got {kind!r}")
        return self.root / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str):
        """The stored payload of ``key``, or None when absent, partial or corrupt."""
        path = self.path(kind, key)
        try:
            entry = json.loads(path.read_text())
            payload = entry["payload"]
            text = json.dumps(payload, sort_keys=True)
            if entry["key"] != key or entry["sha256"] != _digest(text):
                return None
            return payload
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, kind: str, key: str, payload, **meta) -> Path:
        """Store ``payload`` (JSON-able; numpy converted) under ``key``, atomically;
        ``meta`` (the configuration, the function) is kept beside it for people."""
        from perceptron_theory._io import atomic_write_text

        payload = json.loads(json.dumps(plain(payload)))
        text = json.dumps(payload, sort_keys=True)
        entry = {"key": key, **{k: v for k, v in meta.items() if k not in ("key", "payload")},
                 "payload": payload, "sha256": _digest(text)}
        return atomic_write_text(self.path(kind, key), json.dumps(plain(entry)))

    def discard(self, kind: str, key: str) -> None:
        """Remove an entry (absent is fine)."""
        try:
            self.path(kind, key).unlink()
        except FileNotFoundError:
            pass

    def count(self, kind: str | None = None) -> int:
        """Number of entries (of one kind)."""
        base = self.root / kind if kind else self.root
        return sum(1 for _ in base.rglob("*.json")) if base.exists() else 0
