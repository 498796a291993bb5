"""Numba on-disk caching that notices changes anywhere in this package.

numba stamps a cached function with its own source file only, so a changed kernel
in ``kernels.py`` would leave a stale compiled ``online._run`` (which calls it) in the
cache. The locator below stamps every function of ``perceptron_theory.simulate`` with
the (mtime, size) of *all* the package's modules instead; it is registered before any
kernel module is imported (``simulate/__init__.py``). With ``NUMBA_CACHE_DIR`` set numba's
own user-provided locator takes precedence and this protection does not apply.
"""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching

_PACKAGE_DIR = Path(__file__).resolve().parent


def package_stamp() -> tuple:
    """(name, mtime, size) of every module of the package, sorted."""
    out = []
    for p in sorted(_PACKAGE_DIR.glob("*.py")):
        st = p.stat()
        out.append((p.name, st.st_mtime, st.st_size))
    return tuple(out)


class PackageCacheLocator(caching.InTreeCacheLocator):
    """In-tree cache (``__pycache__``) whose source stamp covers the whole package."""

    def get_source_stamp(self):
        return package_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            inside = Path(py_file).resolve().parent == _PACKAGE_DIR
        except OSError:
            return None
        if not inside or not os.path.exists(py_file):
            return None
        return super().from_function(py_func, py_file)


def install() -> None:
    """Put :class:`PackageCacheLocator` first in numba's locator list (idempotent)."""
    classes = caching.CacheImpl._locator_classes
    if PackageCacheLocator not in classes:
        pos = 1 if classes and classes[0] is caching.UserProvidedCacheLocator else 0
        classes.insert(pos, PackageCacheLocator)
