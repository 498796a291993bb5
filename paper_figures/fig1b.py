r"""Fig. 1b of Luo et al. (2019), theory layers: ReLU student, noisy linear teacher.

Symbol map: ``alpha`` = :math:`\alpha = P/N`, ``NOISE`` = :math:`S` (label-noise variance),
``zeta`` = decay in the sum convention :math:`\frac12\sum_p(y_p - \mathrm{relu}(w\cdot
x_p))^2 + \frac\zeta2|w|^2` (:mod:`perceptron_theory.theory.replica`), ``BATCH`` =
:math:`M`. eps is the unhalved test error without the label noise.

Figures:

1. ``fig1b.png`` --
   (i) the paper's layers and ours: exhaustive training ("ReLU SGD") as printed (eq. 25,
   diverges at :math:`\alpha = 2`) beside the replica saddle point at :math:`\zeta\to0^+`
   (the min-norm global minimizer: a finite peak at :math:`\alpha_c \approx 1.465`, then
   decreasing); the noiseless "lower bound" :math:`1 - \alpha/4` beside the replica
   :math:`S = 0` curve; **WN + gamma decay** from the replica solver (open in the paper) at
   :math:`\zeta = 1/(2M)`, :math:`M = 16`, read both ways (plugged in as a sum-convention
   decay, and per sample, :math:`\zeta = \alpha/(2M)`, the paper's mean-loss WN objective),
   and at :math:`\zeta = 0.25`; finite-N points (min-norm interpolators without decay, and
   basin-hopping training with decay, from :mod:`validation.l_f1b`); the paper's BN
   squares, simulated: offline SGD of the BN ReLU student (batch statistics, learned
   :math:`\beta`, running averages at test time) and of WN + gamma decay at
   :math:`\zeta = 1/(2M)` per sample on the same training sets
   (:func:`validation.l_f1b.bn_offline`);
   (ii) the same curves on a log scale, showing the height of the :math:`\zeta\to0` peak;
   (iii) the optimal decay :math:`\zeta^*(\alpha)` of the ReLU student for several
   :math:`S` (for the linear student it is exactly :math:`S`).
2. ``fig1b.json`` -- the plotted data (``panels``: the Plot specifications; ``data``: the
   same numbers keyed for programs, unclipped).

Curves are clipped at ``Y_CAP`` in panel (i) for display.

Run ``PYTHONPATH=. python -m paper_figures.fig1b [--out-dir DIR] [--size tiny]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from paper_figures import _common
from paper_figures._common import run_cli, start, units, write_document
from perceptron_theory import plotting
from perceptron_theory.theory import generalization as gen
from perceptron_theory.theory import replica
from validation import l_f1b

# ----------------------------------------------------------------------------- constants
NOISE = 0.25  # S, as in the paper
BATCH = 16  # M of Fig. 1b
ZETA_PLUGIN = 1.0 / (2 * BATCH)
ZETA_LARGE = 0.25
ALPHA_MAX = 4.0
RELU_ALPHA_MAX = 1.95  # eq. 25 diverges at alpha = 2
Y_CAP = 1.3  # display clip of panel (i)
OPT_NOISES = (0.1, 0.25, 0.5, 1.0)
SIZES = {
    "full": {"n_alpha": 200, "n_opt": 16, "N": 400, "seeds": 12, "inits": 16,
             "mn_alphas": (0.5, 1.0, 1.3), "fit_alphas": (0.5, 1.0, 2.0, 3.0, 4.0),
             "sim_N": 1024, "sim_seeds": 8, "sim_epochs": None,
             "sim_alphas": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)},
    "tiny": {"n_alpha": 24, "n_opt": 3, "N": 60, "seeds": 3, "inits": 2,
             "mn_alphas": (1.0,), "fit_alphas": (2.0,), "sim_N": 64, "sim_seeds": 2,
             "sim_epochs": 20, "sim_alphas": (2.0,)},
}
FILES = {"fig": "fig1b.png", "data": "fig1b.json"}


def _grid(n: int, hi: float = ALPHA_MAX) -> np.ndarray:
    return np.linspace(0.0, hi, n + 1)[1:]


# ------------------------------------------------------------------------------ compute
def curves(alphas: np.ndarray) -> dict:
    """All theory curves on ``alphas`` (eps, unclipped; eq. 25 only below 2)."""
    kw = dict(student="relu", noise=NOISE)
    low = alphas[alphas < RELU_ALPHA_MAX]
    out = {"alpha": alphas.tolist(), "alpha_below_2": low.tolist(),
           "eq25": gen.relu_exhaustive(low, NOISE).eps.tolist(),
           "noiseless_bound_paper": gen.relu_noiseless_bound(low).tolist()}
    runs = {
        "replica_zeta0": replica.learning_curve(alphas, **kw),
        "replica_noiseless": replica.learning_curve(alphas, student="relu", noise=0.0),
        "replica_plugin": replica.learning_curve(alphas, zeta=ZETA_PLUGIN, **kw),
        "replica_per_sample": replica.learning_curve(
            alphas, zeta=gen.sum_decay_from_per_sample(ZETA_PLUGIN, alphas), **kw),
        "replica_zeta_large": replica.learning_curve(alphas, zeta=ZETA_LARGE, **kw),
    }
    for name, c in runs.items():
        out[name] = c.eps.tolist()
        out[name + "_converged"] = c.converged.tolist()
        out[name + "_phase"] = [s.phase for s in c.solutions]
    return out


def optimal_decay(alphas: np.ndarray) -> dict:
    """:math:`\\zeta^*(\\alpha)` minimizing the replica eps of the ReLU student, per S."""
    out = {"alpha": alphas.tolist()}
    for S in OPT_NOISES:
        zs, es = [], []
        for a in alphas:
            r = minimize_scalar(lambda lz, a=a, S=S: replica.solve(
                a, student="relu", noise=S, zeta=float(np.exp(lz))).eps,
                bounds=(np.log(1e-3), np.log(10.0)), method="bounded",
                options={"xatol": 1e-4})
            zs.append(float(np.exp(r.x)))
            es.append(float(r.fun))
        out[f"S={S:g}"] = {"zeta_opt": zs, "eps_opt": es}
    return out


def finite_n(cfg: dict) -> dict:
    """Finite-N points: min-norm interpolators (zeta -> 0) and trained students (decay)."""
    pts = {"N": cfg["N"], "seeds": cfg["seeds"], "inits": cfg["inits"], "min_norm": [],
           "trained": []}
    for a in cfg["mn_alphas"]:
        m = l_f1b.finite_n_eps(a, cfg["N"], NOISE, 0.0, cfg["seeds"], 0, min_norm=True)
        pts["min_norm"].append({"alpha": a, "mean": m["mean"], "se": m["se"]})
    for z in (ZETA_PLUGIN, ZETA_LARGE):
        for a in cfg["fit_alphas"]:
            m = l_f1b.finite_n_eps(a, cfg["N"], NOISE, z, cfg["seeds"], 0, n_init=cfg["inits"])
            pts["trained"].append({"zeta": z, "alpha": a, "mean": m["mean"], "se": m["se"]})
    return pts


def simulation(cfg: dict) -> dict:
    """BN and WN + decay (zeta = 1/(2M) per sample) ReLU students by offline SGD."""
    rows = units("paper_figures.fig1b:simulation_point",
                 [{"cfg": cfg, "alpha": a} for a in cfg["sim_alphas"]])
    return {"N": cfg["sim_N"], "seeds": cfg["sim_seeds"], "batch_size": BATCH,
            "zeta_wn_per_sample": l_f1b.ZETA_WN, "points": rows}


def simulation_point(cfg: dict, alpha: float) -> dict:
    """One load of :func:`simulation` (a unit of the executor and the run store)."""
    o = l_f1b.bn_offline(cfg["sim_N"], alpha, cfg["sim_seeds"], 0, epochs=cfg["sim_epochs"])
    return _common.clean({"alpha": alpha, "epochs": o["epochs"], "bn": list(o["bn"]),
                          "wn": list(o["wn"]), "bn_minus_wn": list(o["bn_minus_wn"]),
                          "beta": o["beta"]})


# ------------------------------------------------------------------------------- panels
def _cap(v):
    return np.minimum(np.asarray(v, dtype=float), Y_CAP)


def panels(d: dict) -> list[plotting.Plot]:
    s = plotting.series
    c = d["curves"]
    a, low = c["alpha"], c["alpha_below_2"]
    lines = [
        ("exhaustive, Luo et al. eq. 25", low, c["eq25"], "dashed"),
        (r"exhaustive, replica $\zeta\to0^+$ (min-norm minimizer)", a, c["replica_zeta0"],
         "line"),
        (r"noiseless bound, paper $1-\alpha/4$", low, c["noiseless_bound_paper"], "dashed"),
        ("noiseless, replica", a, c["replica_noiseless"], "line"),
        (rf"WN+$\gamma$ decay, $\zeta = 1/(2M)$ = 1/{2 * BATCH} (sum)", a, c["replica_plugin"],
         "line"),
        (r"WN+$\gamma$ decay, $\zeta = \alpha/(2M)$ (per sample)", a,
         c["replica_per_sample"], "line"),
        (rf"WN+$\gamma$ decay, $\zeta$ = {ZETA_LARGE:g}", a, c["replica_zeta_large"], "line"),
    ]
    pts = d["finite_n"]
    marks = [s(f"min-norm QP, N={pts['N']}", [p["alpha"] for p in pts["min_norm"]],
               [p["mean"] for p in pts["min_norm"]], yerr=[p["se"] for p in pts["min_norm"]],
               style="points")]
    for z in sorted({p["zeta"] for p in pts["trained"]}):
        rows = [p for p in pts["trained"] if p["zeta"] == z]
        marks.append(s(rf"trained, $\zeta$={z:g}, N={pts['N']}", [p["alpha"] for p in rows],
                       [p["mean"] for p in rows], yerr=[p["se"] for p in rows],
                       style="points"))
    sim = d["simulation"]
    xs = [p["alpha"] for p in sim["points"]]
    for key, lab in (("bn", "BN (SGD, running averages)"),
                     ("wn", r"WN + decay (SGD), $\zeta = 1/2M$ per sample")):
        marks.append(s(f"{lab}, N={sim['N']}", xs, [p[key][0] for p in sim["points"]],
                       yerr=[p[key][1] for p in sim["points"]], style="points"))
    p1 = plotting.Plot(
        title=rf"(i) ReLU student, S = {NOISE:g}: eps vs alpha (clipped at {Y_CAP:g})",
        xlabel=r"$\alpha = P/N$", ylabel=r"$\epsilon$ (unhalved, no label noise)",
        series=tuple(s(lab, x, _cap(y), style=st) for lab, x, y, st in lines) + tuple(marks))
    p2 = plotting.Plot(
        title=r"(ii) the same, log scale: the $\zeta\to0$ peak at $\alpha_c$",
        xlabel=r"$\alpha$", ylabel=r"$\epsilon$", yscale="log",
        series=tuple(s(lab, x, y, style=st) for lab, x, y, st in lines))
    o = d["optimal_decay"]
    ser = []
    for S in OPT_NOISES:
        k = f"S={S:g}"
        ser.append(s(rf"ReLU $\zeta^*$, S = {S:g}", o["alpha"], o[k]["zeta_opt"]))
        ser.append(s(f"S = {S:g} (linear student's optimum)", o["alpha"],
                     np.full(len(o["alpha"]), S), style="dashed"))
    p3 = plotting.Plot(title=r"(iii) optimal decay of the ReLU student (replica)",
                       xlabel=r"$\alpha$", ylabel=r"$\zeta^*$ (sum convention)",
                       series=tuple(ser))
    return [p1, p2, p3]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Compute the data, draw the PNG and write the JSON; return their paths.

    ``size``: ``"tiny"`` uses few points and a small finite-N run (a smoke test);
    ``"full"`` includes the N = 1024 SGD simulation of BN and WN + decay (several
    minutes). ``out_dir`` and the check of ``size``:
    :func:`paper_figures._common.start`.
    """
    cfg, out = start(out_dir, size, SIZES)
    alphas = _grid(cfg["n_alpha"])
    data = {"curves": curves(alphas),
            "optimal_decay": optimal_decay(np.linspace(0.5, ALPHA_MAX, cfg["n_opt"])),
            "finite_n": finite_n(cfg), "simulation": simulation(cfg)}
    plots = panels(data)
    paths = [plotting.save(plots, out / FILES["fig"], ncols=3)]
    constants = {"noise": NOISE, "batch": BATCH, "zeta_plugin": ZETA_PLUGIN,
                 "zeta_large": ZETA_LARGE, "alpha_max": ALPHA_MAX, "y_cap": Y_CAP,
                 "opt_noises": OPT_NOISES, **{k: v for k, v in cfg.items()}}
    paths.append(write_document(out / FILES["data"], "fig1b", size, constants, data,
                                {"fig": plots}))
    return [Path(p) for p in paths]


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
