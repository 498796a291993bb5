"""Package-level contracts: light import, doctests, console script."""

import doctest
import importlib
import shutil
import subprocess
import sys

import pytest

THEORY_MODULES = ["perceptron_theory.theory.integrals", "perceptron_theory.theory.dynamics",
                  "perceptron_theory.theory.generalization",
                  "perceptron_theory.theory.batchnorm", "perceptron_theory.theory.dropout",
                  "perceptron_theory.theory.regnorm"]


def test_import_is_light():
    code = ("import sys, perceptron_theory; "
            "bad = [m for m in ('torch', 'sympy', 'numba', 'matplotlib') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_theory_never_imports_matplotlib_or_other_layers():
    code = ("import sys; import " + ", ".join(THEORY_MODULES) + "; "
            "bad = [m for m in sys.modules"
            " if m.split('.')[0] in ('matplotlib', 'torch', 'validation')"
            " or m.startswith('perceptron_theory.simulate')"
            " or m.startswith('perceptron_theory.deep')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", THEORY_MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0


@pytest.mark.skipif(shutil.which("perceptron-theory") is None, reason="package not installed")
def test_console_script_help_lists_every_command():
    r = subprocess.run(["perceptron-theory", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("integrals", "dynamics", "lr-limits", "bn-decay", "reproduce"):
        assert cmd in r.stdout
