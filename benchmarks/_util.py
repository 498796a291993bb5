"""Formatting shared by the benchmark scripts (run as ``python benchmarks/X.py``)."""

from __future__ import annotations

import math


def fmt_t(s: float) -> str:
    """Format seconds with a unit that keeps three significant digits readable."""
    if not math.isfinite(s):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(s) >= scale or unit == "ns":
            return f"{s / scale:.3g} {unit}"
    return f"{s:g} s"


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Print a left-aligned text table."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for k, r in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))
