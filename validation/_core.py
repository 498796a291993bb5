"""The report spine: comparison records, check results and the check registry.

A *check* is a function ``f(quick: bool, seed: int) -> CheckResult`` registered
under a claim id of ``shared/PAPERS.md`` (``"L-eq3"``, ``"A-eq19"`` ...). It sets a
prediction from :mod:`perceptron_theory.theory` beside an independent measurement
(Monte Carlo, finite-N simulation, numerical quadrature, a second derivation) and
returns :class:`Comparison` records plus plot specifications.

Two kinds of record
-------------------
``exact`` (:func:`compare`, :func:`expect`)
    Theory beside an independent computation (Monte Carlo, finite-N simulation,
    quadrature, a second derivation): pass or fail. A failure makes ``reproduce`` exit 1.
``finding`` (:func:`finding`)
    A paper claim measured on trained networks: seed-paired differences oriented so that
    the claim predicts them positive, and a three-way verdict by the pre-registered rule
    of :func:`verdict_of` -- ``confirmed`` (paired ``t >= T_VERDICT``), ``contradicted``
    (``t <= -T_VERDICT``), ``unresolved`` -- or ``invalid`` when an arm did not train
    (under its floor), a seed diverged or the data were not the paper's kind. Findings
    never change the exit status (``reproduce --strict`` makes anything but ``confirmed``
    exit 1). One finding per deep check is its ``headline``: the claim's verdict.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from perceptron_theory._io import plain

__all__ = ["Comparison", "CheckResult", "Check", "REGISTRY", "register", "compare", "expect",
           "finding", "verdict_of", "VERDICTS", "T_VERDICT"]

#: |paired t| at which a finding is confirmed / contradicted (fixed before any run)
T_VERDICT = 2.0
#: verdicts of a finding (and of a claim made of findings)
VERDICTS = ("confirmed", "contradicted", "unresolved", "invalid")


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
    kind: str = "exact"
    verdict: str = ""
    headline: bool = False
    n: int = 0
    values: tuple = ()
    dataset: str = ""
    size: str = ""

    def __post_init__(self):
        if self.kind not in ("exact", "finding"):
            raise ValueError(f"kind must be 'exact' or 'finding', got {self.kind!r}")
        if not self.verdict:
            object.__setattr__(self, "verdict", "pass" if self.ok else "fail")

    @property
    def t(self) -> float:
        """Paired t of a finding (``measured / stderr``); NaN when undefined."""
        if self.stderr > 0 and math.isfinite(self.stderr) and math.isfinite(self.measured):
            return self.measured / self.stderr
        return math.nan

    def to_dict(self) -> dict:
        d = plain(asdict(self), finite_only=True)  # strict JSON has no NaN
        if self.kind == "finding":
            d["t"] = None if not math.isfinite(self.t) else self.t
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        """Inverse of :meth:`to_dict` (None back to NaN)."""
        nan = lambda v: math.nan if v is None else v  # noqa: E731
        kw = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        for k in ("predicted", "measured", "stderr", "tolerance"):
            kw[k] = nan(kw[k])
        kw["values"] = tuple(nan(v) for v in kw.get("values", ()))
        return cls(**kw)


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


def verdict_of(diffs, *, invalid: str = "") -> tuple[str, float, float, int, str]:
    """The pre-registered verdict of seed-paired, oriented differences.

    ``diffs`` are positive when the claim holds. Returns ``(verdict, mean, stderr, n,
    reason)``: ``invalid`` when ``invalid`` names a reason or a seed is missing (NaN: a
    diverged run); otherwise with ``t = mean / stderr`` (``stderr = std(ddof=1)/sqrt(n)``),
    ``confirmed`` for ``t >= T_VERDICT``, ``contradicted`` for ``t <= -T_VERDICT`` and
    ``unresolved`` in between, for fewer than two seeds, or when all differences are 0.
    Identical non-zero differences (``stderr`` 0, a deterministic measurement) count as
    ``|t| = inf``.
    """
    d = np.asarray(diffs, dtype=float).ravel()
    fin = d[np.isfinite(d)]
    n = int(fin.size)
    mean = float(fin.mean()) if n else math.nan
    se = float(fin.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    if invalid:
        return "invalid", mean, se, n, invalid
    if n < d.size:
        return "invalid", mean, se, n, f"{d.size - n} of {d.size} seeds missing (diverged)"
    if n < 2:
        return "unresolved", mean, se, n, "fewer than two seeds"
    if se == 0.0:
        t = math.copysign(math.inf, mean) if mean != 0 else math.nan
    else:
        t = mean / se
    if not math.isfinite(t) and math.isnan(t):
        return "unresolved", mean, se, n, "all differences zero"
    if t >= T_VERDICT:
        return "confirmed", mean, se, n, ""
    if t <= -T_VERDICT:
        return "contradicted", mean, se, n, ""
    return "unresolved", mean, se, n, ""


def finding(claim: str, quantity: str, diffs, *, headline: bool = False, invalid: str = "",
            dataset: str = "", size: str = "", note: str = "") -> Comparison:
    """A deep-network finding: oriented seed-paired differences and their verdict.

    ``quantity`` says what the paper claims ("val loss: BN < WN"); ``diffs`` are the
    per-seed differences, positive when it holds; ``invalid`` a reason the record is not a
    verdict (an arm under its floor, ...). The record never fails the run (``ok`` is True).
    """
    verdict, mean, se, n, reason = verdict_of(diffs, invalid=invalid)
    values = tuple(float(v) for v in np.asarray(diffs, dtype=float).ravel())
    t = mean / se if n > 1 and se > 0 else math.nan
    text = (f"per-seed {[round(v, 4) for v in values]}, mean {mean:.4g} +- {se:.2g} "
            f"(n={n}), t = {t:.2f}: {verdict}" + (f" ({reason})" if reason else "")
            + f"; rule: confirmed at t >= {T_VERDICT:g}, contradicted at t <= "
            f"-{T_VERDICT:g}. {note}")
    return Comparison(claim, quantity, 0.0, mean, se if math.isfinite(se) else 0.0, 0.0, True,
                      text.strip(), ">=", kind="finding", verdict=verdict, headline=headline,
                      n=n, values=values, dataset=dataset, size=size)


@dataclass(frozen=True)
class CheckResult:
    """What a check returns: comparisons, plots and a paragraph for the report.

    ``statement`` is the paper's claim in one sentence (the claim table's second column);
    ``status`` is ``"ran"``, ``"skipped"`` (with the reason in ``summary``) or ``"error"``;
    ``dataset`` and ``size`` name what a deep check trained on.
    """

    claim: str
    title: str
    comparisons: tuple
    plots: tuple = field(default_factory=tuple)
    summary: str = ""
    statement: str = ""
    status: str = "ran"
    dataset: str = ""
    size: str = ""

    @property
    def ok(self) -> bool:
        """No exact record failed and the check did not raise (findings never fail)."""
        return self.status != "error" and all(c.ok for c in self.comparisons)

    @property
    def findings(self) -> tuple:
        return tuple(c for c in self.comparisons if c.kind == "finding")

    @property
    def headline(self) -> Comparison | None:
        """The finding that carries the claim's verdict (None for exact checks)."""
        heads = [c for c in self.findings if c.headline]
        return heads[0] if heads else None

    @property
    def verdict(self) -> str:
        """The claim's verdict: ``skipped``/``error``; a finding check's headline verdict;
        an exact check's ``pass``/``fail``."""
        if self.status in ("skipped", "error"):
            return self.status
        head = self.headline
        if head is not None:
            return head.verdict
        if self.findings:
            return "unresolved"
        return "pass" if self.ok else "fail"

    def to_dict(self) -> dict:
        head = self.headline
        return {"claim": self.claim, "title": self.title, "ok": self.ok,
                "verdict": self.verdict, "status": self.status, "statement": self.statement,
                "dataset": self.dataset, "size": self.size,
                "effect": None if head is None or not math.isfinite(head.measured)
                else head.measured,
                "stderr": None if head is None or not head.n > 1 else head.stderr,
                "n_seeds": None if head is None else head.n,
                "summary": self.summary,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "plots": [p.to_dict() for p in self.plots]}

    @classmethod
    def from_dict(cls, d: dict) -> CheckResult:
        """Inverse of :meth:`to_dict` (what the run store keeps of a check)."""
        from perceptron_theory.plotting import Plot

        return cls(d["claim"], d["title"],
                   tuple(Comparison.from_dict(c) for c in d["comparisons"]),
                   tuple(Plot.from_dict(p) for p in d.get("plots", ())), d.get("summary", ""),
                   d.get("statement", ""), d.get("status", "ran"), d.get("dataset", ""),
                   d.get("size", ""))


@dataclass(frozen=True)
class Check:
    claim: str
    title: str
    func: Callable[..., CheckResult]
    paper: str = ""

    @property
    def sized(self) -> bool:
        """Whether the check takes a ``size`` (deep checks: tiny, quick, cpu, full)."""
        return "size" in inspect.signature(self.func).parameters

    def run(self, quick: bool = True, seed: int = 0, size: str | None = None) -> CheckResult:
        """Run at ``size`` if the check has sizes; otherwise quick unless size is full."""
        if size is not None and self.sized:
            return self.func(quick=size != "full", seed=seed, size=size)
        if size is not None:
            quick = size != "full"
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

