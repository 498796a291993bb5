"""Scripts that redraw the figures of Luo et al. (2019) from :mod:`perceptron_theory`.

Each script is a tested user of the library (STYLE.md, guideline 11): constants at the
top, ``main(out_dir="paper_figures_out", size="full" | "tiny") -> list[Path]`` that
writes PNGs (and a JSON of the plotted data) atomically and returns their paths, and an
``if __name__ == "__main__"`` entry point::

    PYTHONPATH=. python -m paper_figures.lr_limits --out-dir paper_figures_out

The computing modules never import matplotlib; the scripts describe their panels as
:class:`perceptron_theory.plotting.Plot` specifications and draw them with
:func:`perceptron_theory.plotting.save`.

:data:`FIGURES` maps a figure name to the module that draws it, so the CLI and the
tests iterate the registry instead of listing scripts by hand::

    import importlib
    for name, module in FIGURES.items():
        importlib.import_module(module).main(out_dir, size="tiny")
"""

FIGURES = {
    "lr_limits": "paper_figures.lr_limits",
    "fig1a": "paper_figures.fig1a",
    "fig1b": "paper_figures.fig1b",
    "ode_vs_sim": "paper_figures.ode_vs_sim",
}

__all__ = ["FIGURES"]
