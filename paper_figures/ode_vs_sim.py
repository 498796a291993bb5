r"""Order-parameter ODEs against finite-N online SGD (Luo et al. 2019, eq. 6).

Symbol map: ``R`` = overlap with the teacher, ``gamma`` = :math:`\gamma` (scale of the
normalized student; for plain SGD the length :math:`Q = |w|/\sqrt N`), ``L`` =
:math:`|w|/\sqrt N`, ``lr`` = :math:`\eta` (per sample; :math:`\gamma` moves with
:math:`\eta/N`), ``zeta`` = :math:`\zeta` (decay on gamma), time :math:`t` = samples / N,
``N`` the input dimension. BN is read as WN + gamma decay: ``"wn-decay"`` in
:mod:`perceptron_theory.simulate` and :mod:`perceptron_theory.theory.dynamics` alike.

Two figures and their data, from :func:`dynamics.integrate` (the ODE) and
:func:`simulate.online.run` (the exact rotation-reduced chain, ``engine="reduced"``):

1. ``ode_vs_sim_trajectories.png`` -- :math:`R(t)` (top row) and :math:`\gamma(t)`
   (middle row) for BN (:math:`\zeta = 1/4`), WN and plain SGD, ReLU student and
   teacher, from one initial condition: the ODE (line) and the simulation's mean over
   seeds with its standard error (points) at N = 250, 1000, 4000; bottom row: the gap
   ``mean(R_sim) - R_ode`` with its standard error, shrinking with N.
2. ``ode_vs_sim_scaling.png`` -- the rms deviation of a single run from the ODE (maximum
   over t of the rms over seeds) against N, with the :math:`N^{-1/2}` law of the
   fluctuations; the bias of the mean is O(1/N), far below this spread.
3. ``ode_vs_sim.json`` -- the plotted data.

Run ``PYTHONPATH=. python -m paper_figures.ode_vs_sim [--out-dir DIR] [--size tiny]``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from paper_figures._common import run_cli, units, write_document
from perceptron_theory import plotting
from perceptron_theory.theory import dynamics

# ----------------------------------------------------------------------------- constants
ACTIVATION = "relu"
#: (method, zeta, label): one model name in the simulation and the ODE
METHODS = (("wn-decay", 0.25, r"BN as WN + $\gamma$ decay ($\zeta$ = 1/4)"),
           ("wn", 0.0, "WN"),
           ("sgd", 0.0, "plain SGD"))
LR = 1.0  # per-sample rate; eta_eff <= 1 on every trajectory, below eta_max = 2
#: initial condition: output scale 0.5 (gamma of the normalized students; the length
#: L = Q of the plain one, :data:`SGD_INIT`), R = 0.2
INIT = {"R_init": 0.2, "gamma_init": 0.5, "L_init": 1.0}
SGD_INIT = {"R_init": 0.2, "L_init": 0.5}
N_VALUES = (250, 1000, 4000)
SEED = 0

SIZES = {
    "full": {"seeds": 128, "t_max": 20.0, "n_points": 41},
    "tiny": {"seeds": 4, "t_max": 2.0, "n_points": 5},
}
FILES = {"trajectories": "ode_vs_sim_trajectories.png", "scaling": "ode_vs_sim_scaling.png",
         "data": "ode_vs_sim.json"}


# ------------------------------------------------------------------------------ compute
def simulate_case(method: str, zeta: float, N: int, seeds: int, t_max: float,
                  n_points: int, seed: int):
    """Online SGD at dimension N from :data:`INIT` (reduced engine)."""
    from perceptron_theory.simulate import online  # numba: loaded on first use

    return online.run(method, ACTIVATION, N=N, lr=LR, zeta=zeta, t_max=t_max,
                      n_points=n_points, seeds=seeds, seed=seed, engine="reduced",
                      **_init(method))


def _init(method: str) -> dict:
    return SGD_INIT if method == "sgd" else INIT


def case_data(index: int, method: str, zeta: float, cfg: dict) -> dict:
    """ODE trajectory, simulation means and SEs per N, and the rms single-run deviation.

    ``index`` (the position in :data:`METHODS`) keeps every run's seeds distinct.
    """
    tr = dynamics.integrate(method, ACTIVATION, lr=LR, zeta=zeta, t_max=cfg["t_max"],
                            n_points=cfg["n_points"], rtol=1e-10, atol=1e-12, **_init(method))
    out = {"method": method, "zeta": zeta, "t": tr.t.tolist(),
           "ode": {"R": tr.R.tolist(), "gamma": tr.gamma.tolist(), "L": tr.L.tolist()},
           "sim": {}}
    for k, N in enumerate(N_VALUES):
        r = simulate_case(method, zeta, N, cfg["seeds"], cfg["t_max"], cfg["n_points"],
                          SEED + 10_000 * (10 * index + k))
        if not np.allclose(r.t, tr.t, rtol=0.0, atol=1e-12):
            raise ValueError(f"N={N}: the recorded times are not the ODE's; choose n_points so "
                             "that t_max/(n_points - 1) is a multiple of 1/N")
        d = {"seeds": int(r.seeds.size), "diverged": int(r.diverged.sum())}
        for field in ("R", "gamma"):
            mean, se = r.mean(field)
            dev = getattr(r, field)[~r.diverged] - getattr(tr, field)
            d[field] = {"mean": mean.tolist(), "se": se.tolist(),
                        "rms": float(np.sqrt(np.mean(dev**2, axis=0)).max()),
                        "max_abs_mean_gap": float(np.max(np.abs(mean - getattr(tr, field))))}
        out["sim"][str(N)] = d
    return out


# ------------------------------------------------------------------------------- panels
def trajectory_panels(data: list[dict]) -> list[plotting.Plot]:
    """R(t) for each method (first row), then gamma(t) (second row)."""
    s = plotting.series
    plots = []
    for field, name in (("R", r"overlap $R$"), ("gamma", r"scale $\gamma$ ($Q$ for SGD)")):
        for d, (_, _, label) in zip(data, METHODS, strict=True):
            ser = [s("ODE", d["t"], d["ode"][field])]
            for N in N_VALUES:
                sim = d["sim"][str(N)][field]
                ser.append(s(f"N = {N} (mean $\\pm$ SE)", d["t"], sim["mean"], sim["se"],
                             style="points"))
            plots.append(plotting.Plot(
                title=f"{label}: {field}(t), {ACTIVATION}, $\\eta$ = {LR:g}",
                xlabel="t = samples / N", ylabel=name, series=tuple(ser)))
    for d, (_, _, label) in zip(data, METHODS, strict=True):
        ode = np.asarray(d["ode"]["R"])
        ser = [s("", [d["t"][0], d["t"][-1]], [0.0, 0.0], style="dashed")]
        for N in N_VALUES:
            sim = d["sim"][str(N)]["R"]
            ser.append(s(f"N = {N}", d["t"], np.asarray(sim["mean"]) - ode, sim["se"],
                         style="points"))
        plots.append(plotting.Plot(
            title=f"{label}: gap of the mean, R", xlabel="t = samples / N",
            ylabel=r"$\langle R\rangle_{\rm sim} - R_{\rm ODE}$ ($\pm$ SE)",
            series=tuple(ser)))
    return plots


def scaling_panel(data: list[dict]) -> list[plotting.Plot]:
    """rms single-run deviation of R and gamma against N, with N^{-1/2} (log-log; the
    N axis is drawn as log10 N, which keeps its ticks legible over a decade)."""
    s = plotting.series
    Ns = np.array(N_VALUES, float)
    ser = []
    for d, (_, _, label) in zip(data, METHODS, strict=True):
        for field in ("R", "gamma"):
            ser.append(s(f"{label}, {field}", np.log10(Ns),
                         [d["sim"][str(N)][field]["rms"] for N in N_VALUES], style="points"))
    first = data[0]["sim"][str(N_VALUES[0])]["R"]["rms"]
    ser.append(s(r"$\propto N^{-1/2}$", np.log10(Ns), first * np.sqrt(Ns[0] / Ns),
                 style="dashed"))
    return [plotting.Plot(title="single run vs ODE: rms deviation (max over t)",
                          xlabel=r"$\log_{10} N$", ylabel="rms deviation", series=tuple(ser),
                          yscale="log")]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Integrate, simulate, draw both PNGs and write the JSON; return their paths.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the output files (created if missing).
    size : {"full", "tiny"}
        ``"tiny"``: 4 seeds up to t = 2 (a smoke test of a few seconds once the
        simulation kernels are compiled).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    cfg = SIZES[size]
    out = Path(out_dir)
    data = units("paper_figures.ode_vs_sim:case_data",
                 [{"index": i, "method": m, "zeta": z, "cfg": cfg}
                  for i, (m, z, _) in enumerate(METHODS)])
    panels = {"trajectories": trajectory_panels(data), "scaling": scaling_panel(data)}
    paths = [plotting.save(panels["trajectories"], out / FILES["trajectories"], ncols=3),
             plotting.save(panels["scaling"], out / FILES["scaling"], ncols=1)]
    constants = {"activation": ACTIVATION, "methods": [m[:2] for m in METHODS], "lr": LR,
                 "init": INIT, "sgd_init": SGD_INIT, "N_values": N_VALUES, "seed": SEED,
                 "rms_times_sqrt_N": {d["method"]: [d["sim"][str(N)]["R"]["rms"] * math.sqrt(N)
                                                    for N in N_VALUES] for d in data},
                 **cfg}
    paths.append(write_document(out / FILES["data"], "ode_vs_sim", size, constants,
                                {d["method"]: d for d in data}, panels))
    return [Path(p) for p in paths]


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
