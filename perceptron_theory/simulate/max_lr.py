r"""Empirical maximum stable learning rate of online SGD at finite N (Luo et al. Table 1).

A learning rate *passes* when, started near the teacher (``R_init``), no seed diverges
within ``t_max`` and the median over seeds of :math:`R(t_{\max})` exceeds ``1 - tol``.
:func:`empirical_max_lr` brackets the pass/fail boundary (doubling or halving from
``lr_start``) and bisects it in :math:`\log\eta` to relative precision ``rel_tol``.

For normalized students the effective rate is :math:`\eta_{\rm eff} = \eta\gamma/L^2`
(:mod:`perceptron_theory.theory.dynamics`); with ``freeze_L=True`` (default) the length
``L`` is held at ``L_init`` so that :math:`\eta_{\rm eff}` stays what it was set to --
otherwise ``L`` grows as :math:`\eta^2` and anneals the rate, and no rate ever fails.

Note that the criterion is a threshold on :math:`R`: for students whose fixed point
moves off :math:`R = 1` smoothly with the rate (gamma decay, batch noise) it measures where
:math:`1 - R^*` reaches ``tol``, not a loss of stability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import check_int, check_real, check_work
from perceptron_theory.simulate import online

__all__ = ["MaxLRResult", "empirical_max_lr", "passes", "LR_START_RANGE"]

#: First rates accepted: doubling or halving reaches any boundary in (1e-12, 1e12) from
#: them within the default 40 runs.
LR_START_RANGE = (1e-6, 1e6)


@dataclass(frozen=True)
class MaxLRResult:
    """Largest passing rate ``lr_max`` (bracket ``[lr_pass, lr_fail]``) and its effective rate.

    ``eta_eff = lr_max * gamma_init / L_init^2`` for normalized students (``lr_max`` for
    ``sgd``); ``evaluations`` lists ``(lr, passed, median R(t_max), n_diverged)``.
    ``converged`` is False when no pass/fail bracket was found within the allowed runs
    (``lr_max`` and ``eta_eff`` are then NaN, ``null`` in JSON) and ``message`` says why.
    """

    method: str
    activation: str
    N: int
    batch_size: int
    zeta: float
    tol: float
    t_max: float
    lr_max: float
    lr_pass: float
    lr_fail: float
    eta_eff: float
    evaluations: tuple = field(default=())
    converged: bool = True
    message: str = ""

    def to_dict(self) -> dict:
        from perceptron_theory._io import to_plain_dict
        return to_plain_dict(self)


def passes(lr: float, method: str, activation: str, *, tol: float, t_max: float,
           **kwargs) -> tuple[bool, float, int]:
    """Run once at ``lr``: ``(passed, median R(t_max), number of diverged seeds)``."""
    r = online.run(method, activation, lr=lr, t_max=t_max, times=[t_max], **kwargs)
    n_div = int(r.diverged.sum())
    R_end = r.R[:, -1]
    med = float(np.median(np.where(r.diverged, -np.inf, R_end)))
    return (n_div == 0 and med > 1.0 - tol), med, n_div


def empirical_max_lr(method: str, activation: str, *, N: int, zeta: float = 0.0,
                     batch_size: int = 1, tol: float = 0.05, t_max: float = 50.0,
                     R_init: float = 0.95,
                     gamma_init: float = _vocab.INITIAL_CONDITIONS["gamma_init"],
                     L_init: float = _vocab.INITIAL_CONDITIONS["L_init"],
                     seeds: int = 4, seed: int = 0, lr_start: float = 1.0,
                     rel_tol: float = 0.01, engine: str = "reduced", freeze_L: bool = True,
                     max_evaluations: int = 40, **kwargs) -> MaxLRResult:
    """Bisect the largest learning rate that passes (module docstring).

    Parameters as :func:`.online.run`; ``tol`` in (0, 1), ``rel_tol`` in (0, 1),
    ``lr_start`` in [1e-6, 1e6] the first rate tried. When no bracket is found within
    ``max_evaluations`` runs the result says so (``converged=False``).
    """
    tol = check_real("tol", tol, 0.0, 1.0, lo_open=True, hi_open=True)
    rel_tol = check_real("rel_tol", rel_tol, 0.0, 1.0, lo_open=True, hi_open=True)
    lr = check_real("lr_start", lr_start, *LR_START_RANGE)
    max_evaluations = check_int("max_evaluations", max_evaluations, 2)
    # the whole bisection, before its first run (each run also checks its own cost)
    n_seeds = check_int("seeds", seeds, 1, online.MAX_SEEDS)
    N_, M_ = check_int("N", N, 3), check_int("batch_size", batch_size, 1)
    t_ = check_real("t_max", t_max, 0.0, lo_open=True)
    check_work(f"max-lr: up to {max_evaluations} runs of {n_seeds} seeds, N={N_}, "
               f"batch_size={M_}, t_max={t_:g}", max_evaluations * n_seeds * t_ * N_ / M_
               * online.step_cost(M_, N_, engine == "vector"))
    normalized = online.METHODS[method].normalized if method in online.METHODS else True
    kw = dict(N=N, zeta=zeta, batch_size=batch_size, R_init=R_init, gamma_init=gamma_init,
              L_init=L_init, seeds=seeds, seed=seed, engine=engine, tol=tol, t_max=t_max,
              **kwargs)
    if normalized:
        kw["freeze_L"] = freeze_L
    evals = []

    def trial(x):
        if len(evals) >= max_evaluations:
            raise _NoBracket
        ok, med, nd = passes(x, method, activation, **kw)
        evals.append((x, ok, med, nd))
        return ok

    try:
        lo, hi = _bracket(trial, lr, rel_tol)
    except _NoBracket:
        nan = float("nan")
        return MaxLRResult(method, activation, int(N), int(batch_size), float(zeta), tol,
                           float(t_max), nan, nan, nan, nan, tuple(evals), converged=False,
                           message=f"no pass/fail bracket within {max_evaluations} runs from "
                                   f"lr_start={lr_start:g}")
    lr_max = math.sqrt(lo * hi)
    eta_eff = lr_max * gamma_init / L_init**2 if normalized else lr_max
    return MaxLRResult(method, activation, int(N), int(batch_size), float(zeta), tol,
                       float(t_max), lr_max, lo, hi, eta_eff, tuple(evals))


class _NoBracket(Exception):
    """Raised by a trial past ``max_evaluations``."""


def _bracket(trial, lr: float, rel_tol: float) -> tuple[float, float]:
    """``(lo, hi)``: a passing and a failing rate within ``rel_tol`` of each other,
    found by doubling or halving from ``lr`` and then bisecting in log lr."""
    lo = hi = None
    if trial(lr):
        lo = lr
        while hi is None:
            lr *= 2.0
            if trial(lr):
                lo = lr
            else:
                hi = lr
    else:
        hi = lr
        while lo is None:
            lr /= 2.0
            if trial(lr):
                lo = lr
            else:
                hi = lr
    while hi / lo > 1.0 + rel_tol:
        mid = math.sqrt(lo * hi)
        if trial(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi
