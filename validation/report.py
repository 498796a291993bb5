"""Run registered checks and write ``results.json``, ``report.md`` and the PNGs."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from perceptron_theory import __version__
from perceptron_theory._io import atomic_write_json, atomic_write_text
from validation import load_all
from validation._core import CheckResult, Comparison

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    out_dir: Path
    results: tuple
    elapsed: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def n_comparisons(self) -> int:
        return sum(len(r.comparisons) for r in self.results)

    @property
    def n_failed(self) -> int:
        return sum(not c.ok for r in self.results for c in r.comparisons)


def _error_result(claim: str, title: str, exc: BaseException) -> CheckResult:
    msg = f"{type(exc).__name__}: {exc}"
    comp = Comparison(claim, "check ran", 1.0, 0.0, 0.0, 0.0, False, msg)
    return CheckResult(claim, title, (comp,), (), "The check raised:\n\n```\n"
                       + traceback.format_exc() + "```")


def run(out_dir="reproduce_out", quick: bool = True, seed: int = 0, claims=None,
        progress: bool | None = None) -> Report:
    """Run every registered check (or those in ``claims``) and write the report."""
    from perceptron_theory import plotting

    registry = load_all()
    if claims:
        unknown = sorted(set(claims) - set(registry))
        if unknown:
            raise ValueError(f"claims must be among {', '.join(registry)}; "
                             f"got {', '.join(unknown)}")
    selected = [c for c in registry.values() if not claims or c.claim in claims]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = tqdm(selected, desc="checks", disable=not progress) if tqdm else selected
    results, figures, timings = [], {}, {}
    t_all = time.perf_counter()
    for check in it:
        t0 = time.perf_counter()
        try:
            res = check.run(quick=quick, seed=seed)
        except Exception as exc:  # a broken check is a failed check, not a lost report
            log.exception("check %s raised", check.claim)
            res = _error_result(check.claim, check.title, exc)
        timings[check.claim] = time.perf_counter() - t0
        if res.plots:
            name = f"{check.claim.replace('/', '_')}.png"
            try:
                plotting.save(res.plots, out / name)
                figures[check.claim] = name
            except Exception:  # a figure failure must not lose the numbers
                log.exception("figure for %s failed", check.claim)
        results.append(res)
    elapsed = time.perf_counter() - t_all
    report = Report(out, tuple(results), elapsed)
    payload = {
        "version": __version__, "quick": quick, "seed": seed, "ok": report.ok,
        "n_comparisons": report.n_comparisons, "n_failed": report.n_failed,
        "elapsed_s": round(elapsed, 3),
        "checks": [dict(r.to_dict(), figure=figures.get(r.claim),
                        elapsed_s=round(timings[r.claim], 3)) for r in results],
    }
    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "report.md", _markdown(report, figures, timings, quick, seed))
    return report


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _markdown(report: Report, figures, timings, quick, seed) -> str:
    lines = [
        "# perceptron_theory reproduction report",
        "",
        f"version {__version__}, mode {'quick' if quick else 'full'}, seed {seed}, "
        f"{report.n_comparisons} comparisons, {report.n_failed} failed, "
        f"{report.elapsed:.1f} s.",
        "",
        "Each row sets a prediction beside an independent measurement. `==` rows pass "
        "when |predicted - measured| <= tolerance; `>=`/`<=` rows are inequality claims "
        "(the predicted column holds the bound).",
        "",
        "| claim | quantity | rel | predicted | measured | stderr | tolerance | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        for c in r.comparisons:
            lines.append(f"| {c.claim} | {c.quantity} | {c.relation} | {_fmt(c.predicted)} | "
                         f"{_fmt(c.measured)} | {_fmt(c.stderr)} | {_fmt(c.tolerance)} | "
                         f"{'ok' if c.ok else '**FAIL**'} |")
    for r in report.results:
        lines += ["", f"## {r.claim}: {r.title}", "",
                  f"Status: {'ok' if r.ok else 'FAILED'} ({timings.get(r.claim, 0):.1f} s)", ""]
        if r.summary:
            lines += [r.summary, ""]
        if r.claim in figures:
            lines += [f"![{r.claim}]({figures[r.claim]})", ""]
        notes = sorted({c.note for c in r.comparisons if c.note})
        if notes:
            lines += ["Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
