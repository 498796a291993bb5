"""Small plotting helper: figure *specifications* as data, drawn with matplotlib.

Computing modules never import matplotlib; they (and :mod:`validation`) return
:class:`Plot` objects, and this module draws them (headless, Agg backend) for the
report, the CLI's ``--plot`` and :mod:`paper_figures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Series", "Plot", "draw", "save"]


@dataclass(frozen=True)
class Series:
    """One curve or set of points. ``style`` is ``"line"``, ``"points"`` or ``"dashed"``."""

    label: str
    x: tuple
    y: tuple
    yerr: tuple | None = None
    style: str = "line"

    def to_dict(self) -> dict:
        return {"label": self.label, "x": list(self.x), "y": list(self.y),
                "yerr": None if self.yerr is None else list(self.yerr), "style": self.style}

    @classmethod
    def from_dict(cls, d: dict) -> Series:
        """Inverse of :meth:`to_dict` (None, as strict JSON writes NaN, back to NaN)."""
        f = lambda a: tuple(float("nan") if v is None else float(v) for v in a)  # noqa: E731
        return cls(d["label"], f(d["x"]), f(d["y"]),
                   None if d.get("yerr") is None else f(d["yerr"]), d.get("style", "line"))


@dataclass(frozen=True)
class Plot:
    """A single panel: axes labels, scales and its series."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple = field(default_factory=tuple)
    xscale: str = "linear"
    yscale: str = "linear"

    def to_dict(self) -> dict:
        return {"title": self.title, "xlabel": self.xlabel, "ylabel": self.ylabel,
                "xscale": self.xscale, "yscale": self.yscale,
                "series": [s.to_dict() for s in self.series]}

    @classmethod
    def from_dict(cls, d: dict) -> Plot:
        """Inverse of :meth:`to_dict`."""
        return cls(d["title"], d["xlabel"], d["ylabel"],
                   tuple(Series.from_dict(s) for s in d.get("series", ())),
                   d.get("xscale", "linear"), d.get("yscale", "linear"))


def series(label, x, y, yerr=None, style="line") -> Series:
    """Build a :class:`Series` from array-likes (stored as plain float tuples)."""
    f = lambda a: tuple(float(v) for v in np.ravel(a))  # noqa: E731
    return Series(label, f(x), f(y), None if yerr is None else f(yerr), style)


def draw(plots, ncols: int | None = None):
    """Draw one or several :class:`Plot` panels side by side; return the figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plots = [plots] if isinstance(plots, Plot) else list(plots)
    ncols = ncols or min(len(plots), 3)
    nrows = -(-len(plots) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax, p in zip(axes.flat, plots, strict=False):
        for s in p.series:
            x, y = np.asarray(s.x), np.asarray(s.y)
            if s.style == "points":
                ax.errorbar(x, y, yerr=None if s.yerr is None else np.asarray(s.yerr),
                            fmt="s", ms=4, capsize=2, label=s.label)
            else:
                ax.plot(x, y, "--" if s.style == "dashed" else "-", label=s.label)
        ax.set_xscale(p.xscale)
        ax.set_yscale(p.yscale)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(p.xlabel)
        ax.set_ylabel(p.ylabel)
        if any(s.label for s in p.series):
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(plots):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def save(plots, path, ncols: int | None = None, dpi: int = 110):
    """Draw ``plots`` and write the PNG atomically to ``path``."""
    import matplotlib.pyplot as plt

    from perceptron_theory._io import atomic_savefig

    fig = draw(plots, ncols=ncols)
    try:
        return atomic_savefig(fig, path, dpi=dpi)
    finally:
        plt.close(fig)
