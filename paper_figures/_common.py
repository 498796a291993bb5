"""Pieces every figure script shares: the data document and the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from perceptron_theory._io import atomic_write_json


def write_document(path, figure: str, size: str, constants: dict, data: dict,
                   panels: dict) -> Path:
    """Write the plotted data and panel specs of one figure as JSON, atomically."""
    doc = {"figure": figure, "size": size, "constants": constants, "data": data,
           "panels": {k: [p.to_dict() for p in v] for k, v in panels.items()}}
    return Path(atomic_write_json(path, doc))


def run_cli(main, doc: str, sizes) -> None:
    """``python -m paper_figures.X [--out-dir D] [--size S]``: run ``main`` and list files."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out-dir", default="paper_figures_out", help="output folder")
    parser.add_argument("--size", choices=tuple(sizes), default="full",
                        help="'tiny' is a few-second smoke run")
    args = parser.parse_args()
    for p in main(args.out_dir, args.size):
        print(p)
