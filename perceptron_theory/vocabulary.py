r"""One vocabulary for the single-layer models: the names every layer and the CLI share.

A model has one name in :mod:`~perceptron_theory.theory.dynamics` (ODEs),
:mod:`~perceptron_theory.simulate` (finite-N SGD), :mod:`~perceptron_theory.theory.
generalization` (learning curves), the ``perceptron-theory`` command and the validation
checks, and the same default initial condition everywhere, so the same words compute the
same model at every layer. This module imports nothing heavy (no sympy, numba or torch):
the CLI reads its choices here and from the registries it names.

Models (:data:`MODELS`; ``layers`` says which layers compute each):

===========  ======================================================  =====================
name         student                                                 layers
===========  ======================================================  =====================
sgd          plain :math:`s = w\cdot x`                              dynamics, simulate
wn           WN :math:`s = \gamma\sqrt N\,w\cdot x/|w|`, no decay      dynamics, simulate
wn-decay     WN + gamma decay :math:`\frac\zeta2\gamma^2` per sample   dynamics, simulate,
             (Luo et al. eqs. 4-6: BN *read as* WN + decay; in        curve
             ``curve`` = ridge on w, or BN's equivalent decay when
             ``batch_size`` is given)
pn           population normalization + learned beta                 simulate
bn           batch normalization with real batch statistics          simulate
bn-mean      mean-only BN                                            simulate
bn-var       variance-only BN                                        simulate
ghost-bn     BN over virtual batches                                 simulate
min-norm     min-norm interpolator (ridge at :math:`\zeta\to0`)       curve
replica      wn-decay by the replica saddle point (any beta)         curve
===========  ======================================================  =====================

Why these names: ``bn`` is real-batch BN in ``simulate`` and in the deep arm
(``train --norm bn``), so it keeps that meaning everywhere; the ODE model of Luo et al.
(WN with a decay on gamma, BN entering only through the value of zeta) is ``wn-decay``,
the name ``simulate`` already used, because that is what it computes.

Deprecated names (:data:`DEPRECATED`, one release, :class:`DeprecationWarning`):
``dynamics``/``lr-limits`` ``bn`` -> ``wn-decay``; ``curve`` ``bn`` -> ``wn-decay`` (with
``batch_size``) and ``ridge`` -> ``wn-decay``.

>>> from perceptron_theory import vocabulary as V
>>> V.methods("dynamics")
('sgd', 'wn', 'wn-decay')
>>> V.INITIAL_CONDITIONS
{'gamma_init': 1.0, 'R_init': 0.0, 'L_init': 1.0}
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "INITIAL_CONDITIONS", "LAYERS", "Model", "MODELS", "DEPRECATED",
           "methods", "method_choices", "resolve_method", "ENGINES"]

#: Activations of teacher and student, in every layer (theory, simulate, CLI).
ACTIVATIONS = ("linear", "relu", "erf")

#: Default initial condition of every layer: ``gamma`` (the normalized student's scale),
#: ``R`` (overlap with the teacher) and ``L = |w|/sqrt(N)`` (for ``sgd`` the output scale
#: Q). gamma = 1 is BN's and WN's standard initialization, and with L = 1 it makes ``wn``,
#: ``wn-decay`` and ``sgd`` start as the *same* function s = w.x, so that methods differ
#: only by their dynamics; R = 0 is a random student in high dimension.
INITIAL_CONDITIONS = {"gamma_init": 1.0, "R_init": 0.0, "L_init": 1.0}

#: The layers that compute single-layer models (``curve`` = learning curves).
LAYERS = ("dynamics", "simulate", "curve")


@dataclass(frozen=True)
class Model:
    """A single-layer model: its name, what the student is, and the layers computing it."""

    name: str
    summary: str
    layers: tuple[str, ...]


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("sgd", "plain student s = w.x", ("dynamics", "simulate")),
    Model("wn", "weight normalization s = gamma sqrt(N) w.x/|w|, no decay (zeta = 0)",
          ("dynamics", "simulate")),
    Model("wn-decay", "weight normalization + gamma decay zeta/2 gamma^2 per sample "
                      "(Luo et al. eqs. 4-6, BN read as WN + decay; ridge on w in curve)",
          ("dynamics", "simulate", "curve")),
    Model("pn", "population normalization (exact mu_P = 0, sigma_P = |w|/sqrt N) + beta",
          ("simulate",)),
    Model("bn", "batch normalization with real batch statistics", ("simulate",)),
    Model("bn-mean", "mean-only BN: batch mean, population scale", ("simulate",)),
    Model("bn-var", "variance-only BN: population mean, batch standard deviation",
          ("simulate",)),
    Model("ghost-bn", "BN with statistics over virtual batches of ghost_size samples",
          ("simulate",)),
    Model("min-norm", "min-norm interpolator (wn-decay / ridge at zeta -> 0)", ("curve",)),
    Model("replica", "wn-decay by the replica-symmetric saddle point (finite beta too)",
          ("curve",)),
)}

#: Deprecated method names per layer: old name -> model name (kept for one release).
DEPRECATED: dict[str, dict[str, str]] = {
    "dynamics": {"bn": "wn-decay"},
    "simulate": {},
    "curve": {"bn": "wn-decay", "ridge": "wn-decay"},
}


def _check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}; got {layer!r}")
    return layer


def methods(layer: str) -> tuple[str, ...]:
    """The model names ``layer`` computes, in :data:`MODELS` order.

    Parameters
    ----------
    layer : {"dynamics", "simulate", "curve"}
        Which layer.

    Returns
    -------
    tuple of str
    """
    _check_layer(layer)
    return tuple(n for n, m in MODELS.items() if layer in m.layers)


def method_choices(layer: str) -> tuple[str, ...]:
    """:func:`methods` of ``layer`` and then the deprecated names it still accepts: the
    CLI's choices."""
    return methods(layer) + tuple(DEPRECATED[_check_layer(layer)])


def resolve_method(layer: str, method: str, stacklevel: int = 3) -> str:
    """The model name for ``method`` in ``layer``: deprecated names warn and are mapped.

    Unknown names are returned unchanged (the layer's own check names the valid ones).

    Parameters
    ----------
    layer : {"dynamics", "simulate", "curve"}
        Which layer asks.
    method : str
        The name given.
    stacklevel : int
        Passed to :func:`warnings.warn` (3: the caller of the function that resolves).

    Returns
    -------
    str
    """
    new = DEPRECATED[_check_layer(layer)].get(method) if isinstance(method, str) else None
    if new is None:
        return method
    warnings.warn(f"method {method!r} of {layer} is a deprecated alias of {new!r} (the "
                  f"one vocabulary of perceptron_theory.vocabulary); it will be removed in "
                  f"the next release", DeprecationWarning, stacklevel=stacklevel)
    return new


#: Engines of the online simulator (:func:`perceptron_theory.simulate.online.run`): the
#: N-vectors, or the exact rotation-reduced chain.
ENGINES = ("vector", "reduced")
