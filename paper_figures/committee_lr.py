r"""Committee machines at large rates: where does the learned state stop being learned, for
WN (the ODE's sharp limit) and for real-batch BN (issue 15, item 4).

Symbol map: ``K = M = 2`` erf units (:math:`T = I`, second layers 1), ``lr`` =
:math:`\eta` per sample (the effective rate: lengths frozen at L = 1, gamma = 1 at the
start), :math:`B` samples per step, :math:`\zeta` per sample.

Every arm starts on the learned state (unit k on teacher k, normalized overlap 0.95,
:math:`Q = I`) with the lengths frozen (``freeze_L``: the effective rate stays ``lr``)
and runs to ``T_MAX``; the record is the seed median of the largest cross overlap
:math:`\max_{k\ne n}|R_{kn}|/L_k` (0 on the learned state; the units mix when it is lost)
and of the test error. Arms: ``wn`` (B = 1 and 16), ``bn`` (B = 16 and 64, running
averages at test time) and ``wn-decay`` at BN's leading-order decay
:math:`\zeta = 1/(2B)`, B = 16. Beside them the ODE's limit
(:func:`perceptron_theory.theory.committee.lr_max`; K = 2: 2.307 for WN, against 4.056
for a single unit, :func:`perceptron_theory.theory.dynamics.lr_limits`).

No verdict rule: this is a measurement. Exploratory runs made while writing the script
(the same settings, wn at B = 1, 16 and bn at B = 16 for lr = 1, 2, 2.2, 2.4, 2.6) had
already shown what the full grid records: WN keeps the learned state (cross overlap
~ 1e-4) up to 2.2 and loses it by 2.4 (a bifurcation to mixed units, bracketing the ODE's
2.307); BN (B = 16) is off the learned state at every rate (cross overlap 0.08 at lr = 1)
and slides continuously, with no sharp limit, as the single unit does (README, findings).
A criterion on R_kk alone (``simulate.committee.empirical_lr_max``) misses the WN
bifurcation at tol = 0.05: the mixed state keeps R_kk / L > 0.96 up to lr ~ 3.2.

Run ``perceptron-theory figure committee_lr [--size tiny]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures import _common
from paper_figures._common import start, units, write_document
from perceptron_theory import plotting

ACTIVATION = "erf"
K = 2
ARMS = {"wn B=1": ("wn", 1, 0.0), "wn B=16": ("wn", 16, 0.0), "bn B=16": ("bn", 16, 0.0),
        "bn B=64": ("bn", 64, 0.0), "wn-decay B=16": ("wn-decay", 16, 1.0 / 32)}
SIZES = {
    "full": {"N": 1000, "seeds": 4, "t_max": 200.0,
             "lrs": (0.25, 0.5, 1.0, 1.5, 2.0, 2.2, 2.4, 2.6, 3.0)},
    "tiny": {"N": 100, "seeds": 2, "t_max": 5.0, "lrs": (0.5, 3.0)},
}
FILES = {"fig": "committee_lr.png", "data": "committee_lr.json"}


def point(cfg: dict, arm: str, lr: float) -> dict:
    """One arm at one rate (a unit of the run store)."""
    from perceptron_theory.simulate import committee as SC

    method, B, zeta = ARMS[arm]
    r = SC.run(method, ACTIVATION, hidden=K, teachers=K, N=cfg["N"], lr=lr,
               t_max=cfg["t_max"], zeta=zeta, batch_size=B, Q0=np.eye(K),
               R0=0.95 * np.eye(K), seeds=cfg["seeds"], freeze_L=True, times=[cfg["t_max"]],
               n_test=4000)
    L = np.sqrt(np.diagonal(r.Q[:, -1], axis1=-2, axis2=-1))
    Rn = r.R[:, -1] / L[:, :, None]
    off = ~np.eye(K, dtype=bool)
    cross = np.max(np.abs(Rn[:, off]), axis=-1)
    return _common.clean({"lr": lr, "cross": np.median(cross), "cross_seeds": cross,
                          "eps": np.median(r.eps[:, -1]), "diverged": int(r.diverged.sum())})


def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Run every arm at every rate, draw ``committee_lr.png``, write ``committee_lr.json``."""
    from perceptron_theory.theory import committee as CM
    from perceptron_theory.theory import dynamics as D

    cfg, out = start(out_dir, size, SIZES)
    rows = units("paper_figures.committee_lr:point",
                 [{"cfg": cfg, "arm": a, "lr": lr} for a in ARMS for lr in cfg["lrs"]])
    n = len(cfg["lrs"])
    data = {"arms": {a: rows[i * n:(i + 1) * n] for i, a in enumerate(ARMS)},
            "ode_lr_max": {"wn": CM.lr_max("wn", ACTIVATION, K).eta_max,
                           "wn-decay 1/32": CM.lr_max("wn-decay", ACTIVATION, K,
                                                      zeta=1.0 / 32).eta_max},
            "single_unit_eta_max": D.lr_limits("wn", ACTIVATION).eta_max}
    s = plotting.series
    ser, ser2 = [], []
    for a, pts in data["arms"].items():
        x = [p["lr"] for p in pts]
        ser.append(s(a, x, [np.nan if p["cross"] is None else p["cross"] for p in pts],
                     style="points"))
        ser2.append(s(a, x, [np.nan if p["eps"] is None else p["eps"] for p in pts],
                      style="points"))
    for name, v in data["ode_lr_max"].items():
        ser.append(s(f"ODE lr_max {name} = {v:.3f}", [v, v], [0.0, 0.3], style="dashed"))
    v = data["single_unit_eta_max"]
    ser.append(s(f"single unit eta_max = {v:.3f}", [v, v], [0.0, 0.3], style="dashed"))
    ps = [plotting.Plot(f"(i) erf K = M = {K}, N = {cfg['N']}: learned state at t = "
                        f"{cfg['t_max']:g}", "lr (effective)", "max cross overlap (median)",
                        tuple(ser)),
          plotting.Plot("(ii) test error at t_max", "lr (effective)", "eps (median)",
                        tuple(ser2))]
    paths = [plotting.save(ps, out / FILES["fig"], ncols=2)]
    paths.append(write_document(out / FILES["data"], "committee_lr", size,
                                {"activation": ACTIVATION, "K": K, **cfg}, data,
                                {"committee_lr": ps}))
    return [Path(p) for p in paths]


if __name__ == "__main__":
    _common.run_cli(main, __doc__, SIZES)
