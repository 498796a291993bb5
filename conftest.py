"""pytest at the repository root: the package's doctests (setup.cfg ``--doctest-modules``).

Without torch the deep arm's modules that import it are not collected (the deep tests
skip themselves); ``deep/__init__.py`` and ``deep/names.py`` are torch-free and still run.
"""

import importlib.util
from pathlib import Path

_DEEP = Path(__file__).parent / "perceptron_theory" / "deep"
_TORCH_FREE = {"__init__.py", "names.py"}

collect_ignore = [] if importlib.util.find_spec("torch") else [
    str(p) for p in _DEEP.rglob("*.py") if p.name not in _TORCH_FREE or p.parent != _DEEP]
