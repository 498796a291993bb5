"""Validation: theory beside independent measurement, one module per claim id.

Importing :func:`load_all` fills :data:`REGISTRY`; ``perceptron-theory reproduce``
runs every registered check and writes the report (:mod:`validation.report`).
"""

from __future__ import annotations

import importlib

from validation._core import REGISTRY, Check, CheckResult, Comparison, compare, expect, register

__all__ = ["REGISTRY", "Check", "CheckResult", "Comparison", "compare", "expect", "register",
           "load_all", "CHECK_MODULES"]

#: Modules holding registered checks, in report order (claim ids of shared/PAPERS.md).
CHECK_MODULES = ("l_prior", "l_c3", "l_eq3", "l_eq6", "l_t1", "l_d", "l_f1a", "l_f1b",
                 "a_eq11", "a_eq19", "l_f2ab", "l_f2cd", "l_f2gh", "d_t1t2", "r_t3", "a_ti",
                 "l_f2ef", "l_f4", "d_t3", "d_f2f3", "r_f1f3", "r_f4f6", "r_f5")


def load_all() -> dict[str, Check]:
    """Import every check module (registering its checks) and return the registry."""
    for name in CHECK_MODULES:
        importlib.import_module(f"validation.{name}")
    return REGISTRY
