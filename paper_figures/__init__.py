"""Scripts that redraw paper figures from :mod:`perceptron_theory`.

Luo et al. (2019): ``lr_limits``, ``fig1a``, ``fig1b``, ``ode_vs_sim`` (theory and
simulation) and ``l_f2ef`` (deep nets); Rao & Sohl-Dickstein (2020): ``r_f1``, ``r_f3``;
Dauphin & Cubuk (2021): ``d_f2f3``, ``d_t3``; beyond the papers, committee machines with
normalized hidden units: ``committee_bn``, ``committee_lr``. The deep-network figures reuse the runs
of the matching :mod:`validation` checks (cached per process).

Each script is a tested user of the library (STYLE.md, guideline 11): constants at the
top, ``main(out_dir="paper_figures_out", size="full") -> list[Path]`` that writes PNGs
(and a JSON of the plotted data) atomically and returns their paths, and an
``if __name__ == "__main__"`` entry point::

    PYTHONPATH=. python -m paper_figures.lr_limits --out-dir paper_figures_out

``size`` is ``"full"`` or ``"tiny"`` (a few-second smoke run); the deep-network figures
also take ``"quick"``, each size mapped onto the validation check's size of that name.
The computing modules never import matplotlib; the scripts describe their panels as
:class:`perceptron_theory.plotting.Plot` specifications and draw them with
:func:`perceptron_theory.plotting.save`.

:data:`FIGURES` maps a figure name to the module that draws it, so the CLI and the
tests iterate the registry instead of listing scripts by hand; :data:`TORCH_FIGURES`
names those that need torch (the ``deep`` extra), which the tests skip without it::

    import importlib
    for name, module in FIGURES.items():
        importlib.import_module(module).main(out_dir, size="tiny")

Importing this package (or any script module) does not import torch; only running a
torch figure's ``main`` does.
"""

FIGURES = {
    "lr_limits": "paper_figures.lr_limits",
    "fig1a": "paper_figures.fig1a",
    "committee_bn": "paper_figures.committee_bn",
    "committee_lr": "paper_figures.committee_lr",
    "fig1b": "paper_figures.fig1b",
    "ode_vs_sim": "paper_figures.ode_vs_sim",
    "l_f2ef": "paper_figures.l_f2ef",
    "r_f1": "paper_figures.r_f1",
    "r_f3": "paper_figures.r_f3",
    "d_f2f3": "paper_figures.d_f2f3",
    "d_t3": "paper_figures.d_t3",
    "l_f4": "paper_figures.l_f4",
    "r_f4f6": "paper_figures.r_f4f6",
}

#: figures whose ``main`` trains or probes torch networks
TORCH_FIGURES = frozenset({"l_f2ef", "r_f1", "r_f3", "d_f2f3", "d_t3", "l_f4", "r_f4f6"})

__all__ = ["FIGURES", "TORCH_FIGURES"]
