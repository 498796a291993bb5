"""The code cache of derived expressions: a cached function is the derived one, exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from perceptron_theory.theory import _codegen, dynamics, integrals


@pytest.fixture
def derive_fresh(monkeypatch):
    """``__wrapped__`` calls below derive with sympy instead of reading the cache."""
    monkeypatch.setenv("PERCEPTRON_THEORY_NO_CODEGEN_CACHE", "1")


@pytest.mark.parametrize("activation", integrals.ACTIVATIONS)
def test_cached_integrals_equal_the_derived_ones_bit_for_bit(activation, derive_fresh):
    rng = np.random.default_rng(0)
    Q, R = rng.uniform(0.1, 3.0, 200), rng.uniform(-1.0, 1.0, 200)
    for q in integrals.QUANTITIES:
        for wrt in (None, "Q", "R"):
            fresh = integrals._compiled.__wrapped__(activation, q, wrt)  # derived now
            rebuilt = _codegen._build(_codegen._describe(fresh))
            with np.errstate(all="ignore"):
                a, b = np.asarray(fresh(Q, R)), np.asarray(rebuilt(Q, R))
            np.testing.assert_array_equal(a, b)
    for teacher in (None, *(t for t in integrals.ACTIVATIONS if t != activation)):
        k = integrals._scalar_kernel.__wrapped__(activation, True, teacher)
        assert k(1.3, 0.4) == _codegen._build(_codegen._describe(k))(1.3, 0.4)


def test_a_corrupt_entry_is_derived_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def derive():
        import sympy as sp

        calls.append(1)
        x = sp.Symbol("x")
        return sp.lambdify((x,), sp.sqrt(x) + sp.pi, modules="numpy")

    f = _codegen.lambdified("test:sqrt", derive, ("integrals.py",))
    g = _codegen.lambdified("test:sqrt", derive, ("integrals.py",))
    assert len(calls) == 1 and f(4.0) == g(4.0) == 2.0 + np.pi
    (path,) = (tmp_path / "perceptron_theory" / "codegen").rglob("*.json")
    entry = json.loads(path.read_text())
    entry["source"] = "def broken(:"
    path.write_text(json.dumps(entry))
    assert _codegen.lambdified("test:sqrt", derive, ("integrals.py",))(4.0) == f(4.0)
    assert len(calls) == 2


def test_ode_right_hand_side_from_the_cache_equals_the_derived_one(derive_fresh):
    for method in dynamics.METHODS:
        f_num, J_num = dynamics._compiled_system.__wrapped__(method)
        # (gamma, R, L, eta, zeta, lam, S), then I1, I2, I3, K and their 8 derivatives
        args = (0.7, 0.3, 1.1, 0.5, 0.1, 0.2, 0.3) + tuple(np.linspace(0.1, 0.9, 12))
        for fn in (f_num, J_num):
            rebuilt = _codegen._build(_codegen._describe(fn))
            np.testing.assert_array_equal(np.asarray(fn(*args)), np.asarray(rebuilt(*args)))


def test_a_warm_command_line_call_does_not_import_sympy(tmp_path):
    code = ("import sys; from perceptron_theory.cli import main; "
            "main(['integrals', '--activation', 'erf', '--Q', '1', '--R', '0.5', '--json']); "
            "main(['lr-limits', '--method', 'wn', '--activation', 'relu', '--json']); "
            "print('SYMPY', 'sympy' in sys.modules)")
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=300)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert "SYMPY True" in first.stdout  # the cold call derives
    assert "SYMPY False" in second.stdout, second.stderr[-2000:]
    assert first.stdout.split("SYMPY")[0] == second.stdout.split("SYMPY")[0]
