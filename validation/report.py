"""Run registered checks and write ``results.json``, ``report.md`` and the PNGs."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from perceptron_theory import __version__
from perceptron_theory._checks import check_int, check_output_dir, finite_or_none
from perceptron_theory._io import atomic_write_json, atomic_write_text, remove_stale_temp_files
from validation import load_all
from validation._core import CheckResult, Comparison

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    out_dir: Path
    results: tuple
    elapsed: float
    size: str = "quick"

    @property
    def ok(self) -> bool:
        """No exact record failed and no check raised (findings never count)."""
        return all(r.ok for r in self.results)

    @property
    def strict_ok(self) -> bool:
        """:attr:`ok`, and every claim is ``pass`` or ``confirmed``."""
        return self.ok and all(r.verdict in ("pass", "confirmed") for r in self.results)

    @property
    def n_comparisons(self) -> int:
        return sum(len(r.comparisons) for r in self.results)

    @property
    def n_failed(self) -> int:
        """Failed exact records plus checks that raised."""
        return sum(not c.ok for r in self.results for c in r.comparisons)

    def verdict_counts(self) -> dict:
        out: dict = {}
        for r in self.results:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out


def _error_result(claim: str, title: str, exc: BaseException) -> CheckResult:
    msg = f"{type(exc).__name__}: {exc}"
    comp = Comparison(claim, "check ran", 1.0, 0.0, 0.0, 0.0, False, msg)
    return CheckResult(claim, title, (comp,), (), "The check raised:\n\n```\n"
                       + traceback.format_exc() + "```", status="error")


def _skipped_result(claim: str, title: str, exc: BaseException, size: str) -> CheckResult:
    return CheckResult(claim, title, (), (), f"Skipped: {exc}", status="skipped", size=size)


def run(out_dir="reproduce_out", quick: bool = True, seed: int = 0, claims=None,
        progress: bool | None = None, *, size: str | None = None,
        allow_synthetic: bool = False, cache_dir=None, rerun: bool = False) -> Report:
    """Run every registered check (or those in ``claims``) and write the report.

    ``size`` (tiny, quick, cpu, full; default quick or full from ``quick``) is passed to
    the checks that have sizes (the deep ones); the others run quick unless it is full.
    A deep check without its data set is reported ``skipped`` unless ``allow_synthetic``.
    ``cache_dir`` is the deep run store (``rerun`` retrains stored runs).
    """
    from perceptron_theory import plotting
    from validation import _deep

    if size is None:
        size = "quick" if quick else "full"
    if size not in _deep.SIZES:
        raise ValueError(f"size must be one of {', '.join(_deep.SIZES)}; got {size!r}")
    seed = check_int("seed", seed, 0, 2**31 - 1)
    out_dir = check_output_dir("out_dir", out_dir)
    if cache_dir is not None:
        cache_dir = check_output_dir("cache_dir", cache_dir)
    registry = load_all()
    if claims:
        unknown = sorted(set(claims) - set(registry))
        if unknown:
            raise ValueError(f"claims must be among {', '.join(registry)}; "
                             f"got {', '.join(unknown)}")
    selected = [c for c in registry.values() if not claims or c.claim in claims]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out, ("results.json", "report.md"))
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = tqdm(selected, desc="checks", disable=not progress) if tqdm else selected
    results, figures, timings, stored = [], {}, {}, set()
    store = None
    if cache_dir is not None:
        from perceptron_theory.store import Store

        store = Store(cache_dir)
    t_all = time.perf_counter()
    with _deep.options(allow_synthetic=allow_synthetic, cache_dir=cache_dir, rerun=rerun):
        for check in it:
            t0 = time.perf_counter()
            try:
                key = (None if store is None else
                       _check_key(check, seed, size, allow_synthetic))
                res = _stored_check(store, key, rerun)
                if res is None:
                    res = check.run(seed=seed, size=size)
                    if check.sized and not res.size:
                        res = replace(res, size=size)
                    _store_check(store, key, check, seed, size, res,
                                 time.perf_counter() - t0)
                else:
                    stored.add(check.claim)
            except _deep.DataMissing as exc:
                res = _skipped_result(check.claim, check.title, exc, size)
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
    report = Report(out, tuple(results), elapsed, size)
    payload = {
        "version": __version__, "size": size, "quick": size != "full", "seed": seed,
        "ok": report.ok, "n_comparisons": report.n_comparisons, "n_failed": report.n_failed,
        "verdicts": report.verdict_counts(), "elapsed_s": round(elapsed, 3),
        "provenance": provenance(),
        "claims": [_claim_row(r) for r in results],
        "checks": [dict(r.to_dict(), figure=figures.get(r.claim),
                        elapsed_s=round(timings[r.claim], 3), stored=r.claim in stored)
                   for r in results],
    }
    # strict JSON (no NaN): a quantity that could not be measured is null. Both files are
    # written atomically at the end, so an interrupted run leaves the previous ones intact
    atomic_write_json(out / "results.json", finite_or_none(payload))
    atomic_write_text(out / "report.md", _markdown(report, figures, timings, size, seed))
    return report


def _check_key(check, seed: int, size: str, allow_synthetic: bool) -> str:
    """Store key of a check's result: claim, size, seed, the data it would train on, the
    package version and source fingerprint (any edit recomputes the check)."""
    from perceptron_theory.store import unit_key
    from validation import _deep

    config = {"claim": check.claim, "size": size if check.sized else
              ("full" if size == "full" else "quick"), "seed": seed}
    if check.sized:
        config["data"] = "fashion-mnist" if _deep._fashion_cache() else (
            "synthetic" if allow_synthetic else "missing")
    return unit_key("validation.report:check", config, code=True)


def _stored_check(store, key, rerun):
    """The stored result of a check (None when absent, corrupt, or ``rerun``)."""
    if store is None or rerun:
        return None
    payload = store.get("check", key)
    if payload is None:
        return None
    try:
        return CheckResult.from_dict(payload["result"])
    except (KeyError, TypeError, ValueError):
        return None


def _store_check(store, key, check, seed, size, res, seconds) -> None:
    """Keep a check that ran (never a skipped or failed one) in the store."""
    if store is None or res.status != "ran" or not res.ok:
        return
    store.put("check", key, {"result": res.to_dict(), "seconds": seconds},
              claim=check.claim, size=size, seed=seed)


def provenance() -> dict:
    """Package version, git commit (if any), machine and date of a report."""
    import datetime
    import os
    import platform
    import subprocess

    commit = None
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=10,
                                check=True).stdout.strip() or None
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    with contextlib.suppress(Exception):
        import torch

        machine += f", torch {torch.__version__}" + (
            f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU")
    return {"version": __version__, "commit": commit, "machine": machine,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _claim_row(r: CheckResult) -> dict:
    head = r.headline
    finite = head is not None and math.isfinite(head.measured)
    return {"claim": r.claim, "statement": r.statement or r.title, "verdict": r.verdict,
            "quantity": head.quantity if head is not None else None,
            "effect": head.measured if finite else None,
            "stderr": head.stderr if finite and head.n > 1 else None,
            "n_seeds": head.n if head is not None else None,
            "per_seed": [None if not math.isfinite(v) else v for v in head.values]
            if head is not None else None,
            "dataset": r.dataset or (head.dataset if head is not None else ""),
            "size": r.size or (head.size if head is not None else ""),
            "kind": "finding" if r.findings else "exact",
            "n_records": len(r.comparisons),
            "n_failed": sum(not c.ok for c in r.comparisons)}


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _measured(row: dict) -> str:
    if row["kind"] == "exact":
        return f"{row['n_records'] - row['n_failed']}/{row['n_records']} records agree"
    if row["effect"] is None:
        return "-"
    se = "nan" if row["stderr"] is None else f"{row['stderr']:.2g}"
    return f"{row['quantity']}: {row['effect']:.4g} +- {se} (n={row['n_seeds']})"


def _markdown(report: Report, figures, timings, size, seed) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(report.verdict_counts().items()))
    lines = [
        "# perceptron_theory reproduction report",
        "",
        f"version {__version__}, size {size}, seed {seed}, {len(report.results)} claims "
        f"({counts}); {report.n_comparisons} records, {report.n_failed} exact records "
        f"failed; {report.elapsed:.1f} s.",
        "",
        "## Claims",
        "",
        "Exact checks (theory beside an independent computation) pass or fail. Deep-network "
        "claims get a verdict fixed before any run: *confirmed* (seed-paired t >= 2 in the "
        "paper's direction), *contradicted* (t <= -2), *unresolved*, or *invalid* (an arm "
        "under its training floor, or a diverged seed); the headline record gives the "
        "claim's verdict.",
        "",
        "| claim | what the paper says | what we measured | verdict | size | data set |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.results:
        row = _claim_row(r)
        stmt = row["statement"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.claim} | {stmt} | {_measured(row).replace('|', '/')} | "
                     f"**{row['verdict']}** | {row['size'] or '-'} | {row['dataset'] or '-'} |")
    lines += [
        "",
        "## Records",
        "",
        "`==` rows pass when |predicted - measured| <= tolerance; `>=`/`<=` rows are "
        "inequality claims (the predicted column holds the bound). Findings hold the "
        "seed-mean oriented difference (positive when the claim holds) and its verdict.",
        "",
        "| claim | quantity | rel | predicted | measured | stderr | tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        for c in r.comparisons:
            result = (c.verdict if c.kind == "finding" else ("ok" if c.ok else "**FAIL**"))
            if c.headline:
                result = f"**{result}** (headline)"
            lines.append(f"| {c.claim} | {c.quantity} | {c.relation} | {_fmt(c.predicted)} | "
                         f"{_fmt(c.measured)} | {_fmt(c.stderr)} | {_fmt(c.tolerance)} | "
                         f"{result} |")
    for r in report.results:
        lines += ["", f"## {r.claim}: {r.title}", "",
                  f"Verdict: {r.verdict} ({timings.get(r.claim, 0):.1f} s)", ""]
        if r.summary:
            lines += [r.summary, ""]
        if r.claim in figures:
            lines += [f"![{r.claim}]({figures[r.claim]})", ""]
        notes = sorted({c.note for c in r.comparisons if c.note})
        if notes:
            lines += ["Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
