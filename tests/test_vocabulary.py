"""One vocabulary: a model name means the same model in dynamics, simulate and curve.

The decisive test runs every method name that ``theory.dynamics`` and ``simulate.online``
share with *default* options in both (initial condition, batch size, engine, teacher)
and checks that the finite-N simulation at N = 2000 tracks the ODE.

Tolerance, stated before running: a single run deviates from the ODE by O(N^-1/2)
(L-eq6 measures sqrt(N) * rms = 0.1-0.9 at these rates), the mean over K seeds by its
standard error plus an O(1/N) bias. Per field and recorded time,
``|mean_K X(t) - X_ode(t)| <= 4 sd / sqrt(K) + 1/N`` with ``sd`` the largest seed
standard deviation over the recorded times (K = 8), and the fluctuation itself is
``N^-1/2``-sized: ``sqrt(N) sd < 2``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perceptron_theory import vocabulary as V
from perceptron_theory.simulate import offline, online
from perceptron_theory.theory import dynamics, generalization

N = 2000
SEEDS = 8
LR = 0.5
T_MAX = 10.0
N_POINTS = 11
#: the model parameter a method needs (wn-decay's decay); everything else is default
ZETA = {"wn-decay": 0.25}
SHARED = tuple(m for m in V.methods("dynamics") if m in V.methods("simulate"))


def test_registries_use_the_vocabulary():
    assert dynamics.METHODS == V.methods("dynamics") == ("sgd", "wn", "wn-decay")
    assert tuple(online.METHODS) == V.methods("simulate")
    assert offline.METHODS is online.METHODS
    assert generalization.METHODS == V.methods("curve")
    assert SHARED == ("sgd", "wn", "wn-decay")
    for layer in V.LAYERS:
        assert set(V.DEPRECATED[layer]).isdisjoint(V.methods(layer))
        assert set(V.DEPRECATED[layer].values()) <= set(V.methods(layer))


def test_one_default_initial_condition():
    import inspect

    for fn in (online.run, offline.run):
        sig = inspect.signature(fn).parameters
        assert {k: sig[k].default for k in V.INITIAL_CONDITIONS} == V.INITIAL_CONDITIONS
    sig = inspect.signature(dynamics.integrate).parameters
    assert sig["R_init"].default == V.INITIAL_CONDITIONS["R_init"]
    assert sig["L_init"].default == V.INITIAL_CONDITIONS["L_init"]
    tr = dynamics.integrate("wn", "relu", lr=LR, t_max=1.0, n_points=2)
    assert tr.gamma[0] == pytest.approx(V.INITIAL_CONDITIONS["gamma_init"], abs=1e-15)


def test_resolve_method():
    with pytest.warns(DeprecationWarning, match="'bn' of dynamics"):
        assert V.resolve_method("dynamics", "bn") == "wn-decay"
    assert V.resolve_method("simulate", "bn") == "bn"  # real-batch BN, not deprecated
    assert V.resolve_method("curve", "nonsense") == "nonsense"
    with pytest.raises(ValueError, match="layer"):
        V.methods("deep")


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("method", SHARED)
def test_simulation_tracks_the_ode_with_default_options(method, activation):
    zeta = ZETA.get(method, 0.0)
    tr = dynamics.integrate(method, activation, lr=LR, zeta=zeta, t_max=T_MAX,
                            n_points=N_POINTS, rtol=1e-10, atol=1e-12)
    sim = online.run(method, activation, N=N, lr=LR, zeta=zeta, t_max=T_MAX,
                     n_points=N_POINTS, seeds=SEEDS)
    assert not sim.diverged.any() and not tr.diverged
    np.testing.assert_allclose(sim.t, tr.t, atol=1e-12)
    fields = ("R", "gamma") if method == "sgd" else ("R", "gamma", "L")
    for field in fields:
        x = getattr(sim, field)  # shape=(SEEDS, N_POINTS)
        np.testing.assert_allclose(x[:, 0], getattr(tr, field)[0], atol=1e-12)  # same start
        dev = x[:, 1:].mean(axis=0) - getattr(tr, field)[1:]
        sd = float(np.max(x[:, 1:].std(axis=0, ddof=1)))
        assert math.sqrt(N) * sd < 2.0, (field, math.sqrt(N) * sd)
        tol = 4.0 * sd / math.sqrt(SEEDS) + 1.0 / N
        worst = int(np.argmax(np.abs(dev)))
        assert abs(dev[worst]) <= tol, (field, tr.t[1 + worst], dev[worst], tol)
