"""Derived expressions compiled once, kept as generated source: no sympy on a warm call.

The theory modules derive their closed forms with sympy and compile them with
:func:`sympy.lambdify`. Deriving and compiling costs seconds per process (the sympy
import alone about a second), which a command-line call such as ``perceptron-theory
integrals`` paid every time. :func:`lambdified` keeps what ``lambdify`` generated -- the
Python source of the function and the numpy / math names it uses -- in the run store
folder (``<cache>/codegen/<key>.json``), keyed by the tag, the source files of the
deriving modules, the package version and the sympy version; a later process executes
that source without importing sympy. A missing, corrupt or stale entry is derived again
(and anything unexpected falls back to the freshly lambdified function, so the cache
can only save time, never change a number: the test suite compares both).

``PERCEPTRON_THEORY_NO_CODEGEN_CACHE=1`` switches the cache off.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import types
from collections.abc import Callable
from pathlib import Path

__all__ = ["lambdified", "cache_dir"]

_HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """``<run store>/codegen``."""
    from perceptron_theory.store import default_root

    return default_root() / "codegen"


def _key(tag: str, sources: tuple[str, ...]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from perceptron_theory import __version__

    h = hashlib.sha256()
    try:
        sympy_version = version("sympy")
    except PackageNotFoundError:  # pragma: no cover
        sympy_version = "?"
    h.update(json.dumps([tag, __version__, sympy_version]).encode())
    for name in sources:
        h.update((_HERE / name).read_bytes())
    return h.hexdigest()


def _describe(func) -> dict | None:
    """Source and globals of a lambdified function, as JSON; None when not portable."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    names: dict = {}
    code_names = set(func.__code__.co_names)
    for const in func.__code__.co_consts:  # nested code objects (cse helpers)
        if isinstance(const, types.CodeType):
            code_names |= set(const.co_names)
    glb = func.__globals__
    for name in sorted(code_names):
        if name not in glb:
            continue  # a builtin
        obj = glb[name]
        if isinstance(obj, types.ModuleType):
            names[name] = ["module", obj.__name__]
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            names[name] = ["value", float(obj)]
        else:
            mod = getattr(obj, "__module__", None) or ""
            attr = getattr(obj, "__name__", None)
            try:
                found = getattr(importlib.import_module(mod), attr) if mod and attr else None
            except ImportError:
                found = None
            if found is not obj:
                return None
            names[name] = ["attr", mod, attr]
    return {"source": source, "name": func.__name__, "names": names}


def _build(entry: dict) -> Callable:
    ns: dict = {}
    for name, spec in entry["names"].items():
        if spec[0] == "module":
            ns[name] = importlib.import_module(spec[1])
        elif spec[0] == "value":
            ns[name] = spec[1]
        else:
            ns[name] = getattr(importlib.import_module(spec[1]), spec[2])
    import linecache

    source = entry["source"]
    filename = f"<codegen {hashlib.sha256(source.encode()).hexdigest()[:16]}>"
    # registered like lambdify's own source: tracebacks and inspect.getsource work
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)  # noqa: S102
    return ns[entry["name"]]


def lambdified(tag: str, derive: Callable[[], Callable], sources: tuple[str, ...]) -> Callable:
    """The function ``derive()`` returns (a :func:`sympy.lambdify` result), read from the
    code cache when held there.

    Parameters
    ----------
    tag : str
        What is compiled (``"integrals:erf:I1:R"``); part of the key.
    derive : callable
        Builds the function with sympy (called only on a cache miss).
    sources : tuple of str
        File names, in ``perceptron_theory/theory/``, whose content the derivation
        depends on (part of the key, so an edit derives again).
    """
    if os.environ.get("PERCEPTRON_THEORY_NO_CODEGEN_CACHE"):
        return derive()
    from perceptron_theory._io import atomic_write_text

    key = _key(tag, sources)
    path = cache_dir() / key[:2] / f"{key}.json"
    try:
        entry = json.loads(path.read_text())
        if entry.get("key") == key and entry.get("tag") == tag:
            return _build(entry)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError,
            SyntaxError):
        pass
    func = derive()
    entry = _describe(func)
    if entry is not None:
        try:
            _build(entry)  # what a later process would run must compile here too
            atomic_write_text(path, json.dumps({"key": key, "tag": tag, **entry}))
        except Exception:  # an unwritable cache or a non-portable function: just derive
            pass
    return func
