"""The report spine: comparison records, check results and the check registry.

A *check* is a function ``f(quick: bool, seed: int) -> CheckResult`` registered
under a claim id of ``shared/PAPERS.md`` (``"L-eq3"``, ``"A-eq19"`` ...). It sets a
prediction from :mod:`perceptron_theory.theory` beside an independent measurement
(Monte Carlo, finite-N simulation, numerical quadrature, a second derivation) and
returns :class:`Comparison` records plus plot specifications.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from perceptron_theory.plotting import Plot

__all__ = ["Comparison", "CheckResult", "Check", "REGISTRY", "register", "compare", "expect"]


@dataclass(frozen=True)
class Comparison:
    """One prediction beside one measurement.

    ``relation`` is ``"=="`` (``|predicted - measured| <= tolerance``), ``">="``
    (``measured >= predicted - tolerance``) or ``"<="``
    (``measured <= predicted + tolerance``).
    """

    claim: str
    quantity: str
    predicted: float
    measured: float
    stderr: float
    tolerance: float
    ok: bool
    note: str = ""
    relation: str = "=="

    def to_dict(self) -> dict:
        return asdict(self)


def compare(claim: str, quantity: str, predicted, measured, *, stderr: float = 0.0,
            n_sigma: float = 4.0, atol: float = 0.0, rtol: float = 0.0,
            note: str = "") -> Comparison:
    """Equality within ``n_sigma * stderr + atol + rtol * |predicted|``.

    ``stderr`` is the standard error of the measurement (Monte Carlo), ``atol``
    an allowance whose origin the caller states in ``note`` (truncation order,
    quadrature error ...).
    """
    predicted, measured, stderr = float(predicted), float(measured), float(stderr)
    tol = n_sigma * stderr + atol + rtol * abs(predicted)
    ok = math.isfinite(measured) and math.isfinite(predicted) and abs(predicted - measured) <= tol
    return Comparison(claim, quantity, predicted, measured, stderr, tol, bool(ok), note, "==")


def expect(claim: str, quantity: str, bound, measured, relation: str, *, stderr: float = 0.0,
           n_sigma: float = 0.0, note: str = "") -> Comparison:
    """An inequality claim: ``measured >= bound`` (``relation=">="``) or ``<=``."""
    bound, measured = float(bound), float(measured)
    tol = n_sigma * float(stderr)
    if relation == ">=":
        ok = measured >= bound - tol
    elif relation == "<=":
        ok = measured <= bound + tol
    else:
        raise ValueError(f"relation must be '>=' or '<=', got {relation!r}")
    ok = ok and math.isfinite(measured)
    return Comparison(claim, quantity, bound, measured, float(stderr), tol, bool(ok), note,
                      relation)


@dataclass(frozen=True)
class CheckResult:
    """What a check returns: comparisons, plots and a paragraph for the report."""

    claim: str
    title: str
    comparisons: tuple
    plots: tuple = field(default_factory=tuple)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    def to_dict(self) -> dict:
        return {"claim": self.claim, "title": self.title, "ok": self.ok, "summary": self.summary,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "plots": [p.to_dict() for p in self.plots]}


@dataclass(frozen=True)
class Check:
    claim: str
    title: str
    func: Callable[..., CheckResult]
    paper: str = ""

    def run(self, quick: bool = True, seed: int = 0) -> CheckResult:
        return self.func(quick=quick, seed=seed)


REGISTRY: dict[str, Check] = {}


def register(claim: str, title: str, paper: str = ""):
    """Decorator: add ``func(quick, seed) -> CheckResult`` to :data:`REGISTRY`."""

    def deco(func):
        if claim in REGISTRY:
            raise ValueError(f"claim {claim!r} registered twice")
        REGISTRY[claim] = Check(claim, title, func, paper)
        return func

    return deco


def plots_tuple(*plots: Plot) -> tuple:
    return tuple(plots)
