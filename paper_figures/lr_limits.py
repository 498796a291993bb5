r"""Learning-rate limits of the normalized perceptron (Luo et al. 2019, Sec. 3 and Table 1).

Symbol map: ``zeta`` = :math:`\zeta` (decay on gamma; BN read as WN + gamma decay),
``gamma`` = :math:`\gamma` (scale of the normalized student), ``R`` = overlap with the
teacher, ``L0`` = length of the raw weight, ``lr`` = :math:`\eta` (raw learning rate),
``eta_eff`` = :math:`\eta\gamma_0/L_0^2` (BN; :math:`\eta/L_0^2` for WN, :math:`\eta` for SGD).

Four figures, all computed by :mod:`perceptron_theory.theory.dynamics`:

1. ``lr_limits_eta_max.png`` -- :math:`\eta_{\max}(\zeta)` for BN from our derived Table-1
   formula (:func:`dynamics.lr_limits`), the formula as printed in the paper
   (:func:`dynamics.eta_max_paper`), WN and SGD (constant in :math:`\zeta`) and the
   Prop. 4 bound :math:`\eta_{\max}^{wn} + 2\zeta`, one panel per activation; plus the
   critical *raw* learning rate ``lr_critical`` (:math:`\eta_{\max}/(\gamma_0/L_0^2)`).
2. ``lr_limits_flow.png`` -- trajectories of :func:`dynamics.integrate` in the
   :math:`(R, \gamma)` plane from several starting points, for BN (:math:`\zeta = 1/4`)
   and WN at a moderate rate, with the small-rate fixed point :math:`(1, \gamma_0)`.
3. ``lr_limits_branch.png`` -- the quasi-static fixed point :math:`R^*(\eta_{\rm eff})`
   (:func:`dynamics.quasi_static_branch`, :math:`L` frozen) for :math:`\zeta \in
   \{0, 1/32, 1/4\}` and the largest real part of its Jacobian's eigenvalues: WN's
   :math:`R = 1` loses stability at :math:`\eta_{\rm eff} = 2`, where a stable
   :math:`R^* < 1` branch takes over (found by integrating the frozen-:math:`L` system),
   while BN's branch slides below 1 continuously and stays stable.
4. ``lr_limits.json`` -- the plotted data (``panels``: the :class:`~perceptron_theory.plotting.Plot`
   specifications; ``data``: the same numbers keyed for programs).

Run ``PYTHONPATH=. python -m paper_figures.lr_limits [--out-dir DIR] [--size tiny]``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from paper_figures._common import run_cli, write_document
from perceptron_theory import plotting
from perceptron_theory.theory import dynamics

# ----------------------------------------------------------------------------- constants
ACTIVATIONS = ("relu", "linear", "erf")
ZETA_RANGE = (0.0, 1.0)  # panel (i), (ii)
L0 = 1.0  # raw-weight length at the fixed point (eta_eff and lr_critical depend on it)

FLOW_ZETA = 0.25  # BN's gamma decay in the flow panels
FLOW_LR = 1.0  # raw rate: eta_eff = 2/3 (BN, zeta = 1/4) and 1 (WN), below eta_max
FLOW_T_MAX = 100.0
FLOW_STARTS = ((0.2, 0.0), (1.5, 0.0), (1.0, -0.5), (0.3, 0.8), (1.6, 0.7))  # (gamma, R)

BRANCH_ZETAS = (0.0, 1.0 / 32.0, 0.25)
BRANCH_ACTIVATION = "relu"
ETA_EFF_RANGE = (0.05, 8.0)
WN_LOWER_RANGE = (2.25, 8.0)  # WN's R* < 1 branch, found by integrating with L frozen
WN_LOWER_T_MAX = 400.0
WN_LOWER_TOL = 1e-7  # |d(gamma, R)/dt| / lr at the end point for it to count as a fixed point

SIZES = {
    "full": {"n_zeta": 101, "n_branch": 160, "starts": FLOW_STARTS, "n_traj_points": 401,
             "n_wn_lower": 24},
    "tiny": {"n_zeta": 6, "n_branch": 24, "starts": FLOW_STARTS[:2], "n_traj_points": 81,
             "n_wn_lower": 3},
}
FILES = {"eta_max": "lr_limits_eta_max.png", "flow": "lr_limits_flow.png",
         "branch": "lr_limits_branch.png", "data": "lr_limits.json"}
ACT_NAMES = {"relu": "ReLU", "linear": "linear", "erf": r"erf$(x/\sqrt{2})$"}


def _zeta_label(z: float) -> str:
    return "0" if z == 0 else str(Fraction(z).limit_denominator(64))


def _finite(*arrays) -> tuple[np.ndarray, ...]:
    """Drop the positions where any of ``arrays`` is not finite."""
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrs])
    return tuple(a[ok] for a in arrs)


# ------------------------------------------------------------------------------ compute
def eta_max_data(zetas: np.ndarray) -> dict:
    """:math:`\\eta_{\\max}` and ``lr_critical`` against ``zeta`` for every activation."""
    out = {}
    for act in ACTIVATIONS:
        bn = [dynamics.lr_limits("wn-decay", act, float(z), L0, exact=False) for z in zetas]
        wn = dynamics.lr_limits("wn", act, 0.0, L0, exact=False)
        sgd = dynamics.lr_limits("sgd", act, exact=False)
        out[act] = {
            "zeta": zetas.tolist(),
            "gamma0": [b.gamma0 for b in bn],
            "bn": [b.eta_max for b in bn],
            "bn_paper": [b.eta_max_paper for b in bn],
            "prop4_bound": (wn.eta_max + 2.0 * zetas).tolist(),
            "wn": wn.eta_max,
            "sgd": sgd.eta_max,
            "lr_critical_bn": [b.lr_critical for b in bn],
            "lr_critical_wn": wn.lr_critical,
            "lr_critical_sgd": sgd.lr_critical,
        }
    return out


def flow_data(starts, n_points: int) -> dict:
    """Trajectories of BN (``FLOW_ZETA``) and WN at ``FLOW_LR`` from ``starts``."""
    out = {}
    for key, method, zeta in (("bn", "wn-decay", FLOW_ZETA), ("wn", "wn", 0.0)):
        g0 = dynamics.fixed_point(method, "relu", zeta, L=L0).gamma
        trajs = []
        for gamma_init, R_init in starts:
            tr = dynamics.integrate(method, "relu", lr=FLOW_LR, zeta=zeta, gamma_init=gamma_init,
                                    R_init=R_init, L_init=L0, t_max=FLOW_T_MAX,
                                    n_points=n_points)
            R, g = _finite(tr.R, tr.gamma)
            trajs.append({"gamma_init": gamma_init, "R_init": R_init, "R": R.tolist(),
                          "gamma": g.tolist(), "L_final": float(tr.L[-1]),
                          "diverged": tr.diverged})
        out[key] = {"zeta": zeta, "lr": FLOW_LR, "eta_eff": FLOW_LR * g0 / L0**2,
                       "gamma0": g0, "t_max": FLOW_T_MAX, "trajectories": trajs}
    return out


def wn_lower_branch(eta_eff: np.ndarray) -> dict:
    """WN's stable :math:`R^* < 1` fixed points past :math:`\\eta_{\\rm eff} = 2`.

    :func:`dynamics.quasi_static_branch` follows WN along the (then unstable) ``R = 1``;
    the stable branch is the end point of the frozen-``L`` dynamics started at ``R = 0.5``.
    Points whose ``(gamma, R)`` velocity has not decayed below ``WN_LOWER_TOL`` are dropped.
    """
    rows = []
    for ee in eta_eff:
        lr = float(ee) * L0**2  # gamma0 = 1 for WN
        tr = dynamics.integrate("wn", BRANCH_ACTIVATION, lr=lr, gamma_init=0.8, R_init=0.5,
                                L_init=L0, t_max=WN_LOWER_T_MAX, n_points=2, freeze_L=True)
        g, R = float(tr.gamma[-1]), float(tr.R[-1])
        v = dynamics.rhs("wn", BRANCH_ACTIVATION, lr)(0.0, [g, R, L0])[:2] / lr
        if np.all(np.isfinite(v)) and np.max(np.abs(v)) < WN_LOWER_TOL and R < 1 - 1e-6:
            rows.append((float(ee), g, R))
    e, g, R = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    return {"eta_eff": e, "gamma": g, "R": R}


def branch_data(eta_eff: np.ndarray, n_wn_lower: int) -> dict:
    """Quasi-static branches for ``BRANCH_ZETAS`` and WN's lower branch."""
    branches = []
    for z in BRANCH_ZETAS:
        br = dynamics.quasi_static_branch(BRANCH_ACTIVATION, z, eta_eff, L0)
        method = "wn-decay" if z > 0 else "wn"
        eta_max = dynamics.lr_limits(method, BRANCH_ACTIVATION, z, L0, exact=False).eta_max
        ok = br.converged & np.isfinite(br.max_real_eig)
        e, R, g, m = br.eta_eff[ok], br.R[ok], br.gamma[ok], br.max_real_eig[ok]
        branches.append({"zeta": z, "eta_max": eta_max, "eta_eff": e.tolist(), "R": R.tolist(),
                         "gamma": g.tolist(), "max_real_eig": m.tolist(),
                         "R_star_at_eta_max": float(np.interp(eta_max, e, R)),
                         "n_not_converged": int(np.sum(~ok))})
    lower = wn_lower_branch(np.linspace(*WN_LOWER_RANGE, n_wn_lower))
    return {"activation": BRANCH_ACTIVATION, "L0": L0, "branches": branches,
            "wn_lower": lower}


# ------------------------------------------------------------------------------- panels
def eta_max_panels(d: dict) -> list[plotting.Plot]:
    """Panel (i) per activation and panel (ii), lr_critical."""
    s = plotting.series
    plots = []
    for act in ACTIVATIONS:
        a = d[act]
        z = a["zeta"]
        same = np.isclose(a["wn"], a["sgd"], rtol=1e-9)
        ser = [s(r"BN, derived: $\eta_{\max}$", z, a["bn"]),
               s("BN, paper's printed formula", z, a["bn_paper"], style="dashed"),
               s(r"Prop. 4 bound $\eta_{\max}^{wn} + 2\zeta$", z, a["prop4_bound"],
                 style="dashed"),
               s("WN = SGD" if same else "WN", z, np.full(len(z), a["wn"]))]
        if not same:
            ser.append(s("SGD", z, np.full(len(z), a["sgd"])))
        tight = np.allclose(a["bn"], a["prop4_bound"], rtol=1e-9)
        plots.append(plotting.Plot(
            title=(f"(i) max. effective rate, {ACT_NAMES[act]} (Table 1)"
                   + (": BN = bound" if tight else "")),
            xlabel=r"$\zeta$ (decay on $\gamma$)",
            ylabel=r"$\eta_{\max}$ (units of $\eta_{\rm eff}$)",
            series=tuple(ser)))
    ser = []
    for act in ACTIVATIONS:
        a = d[act]
        ser.append(s(f"BN, {ACT_NAMES[act]}", a["zeta"], a["lr_critical_bn"]))
    # WN and SGD are constant in zeta; one dashed line per distinct value
    flat: dict[float, tuple[list[str], list[str]]] = {}
    for act in ACTIVATIONS:
        for name in ("WN", "SGD"):
            methods, acts = flat.setdefault(round(d[act][f"lr_critical_{name.lower()}"], 9),
                                            ([], []))
            if name not in methods:
                methods.append(name)
            if ACT_NAMES[act] not in acts:
                acts.append(ACT_NAMES[act])
    z = d[ACTIVATIONS[0]]["zeta"]
    for v, (methods, acts) in flat.items():
        ser.append(s(f"{' = '.join(methods)}, {', '.join(acts)} (= {v:.3g})", z,
                     np.full(len(z), v), style="dashed"))
    plots.append(plotting.Plot(
        title=rf"(ii) critical raw rate $\eta_{{\max}} L_0^2/\gamma_0$ ($L_0$ = {L0:g})",
        xlabel=r"$\zeta$", ylabel=r"critical learning rate $\eta$", series=tuple(ser)))
    return plots


def flow_panels(d: dict) -> list[plotting.Plot]:
    """Panel (iii): trajectories in the (R, gamma) plane."""
    s = plotting.series
    plots = []
    for method, name in (("bn", "BN"), ("wn", "WN")):
        f = d[method]
        # one legend entry for all trajectories; the start markers tell them apart
        ser = [s(rf"trajectories, $t \leq$ {f['t_max']:g}" if k == 0 else "", tr["R"],
                 tr["gamma"]) for k, tr in enumerate(f["trajectories"])]
        ser.append(s(r"start $(R, \gamma)$", [tr["R_init"] for tr in f["trajectories"]],
                     [tr["gamma_init"] for tr in f["trajectories"]], style="points"))
        ser.append(s(rf"fixed point $(1, \gamma_0 = {f['gamma0']:.3g})$", [1.0], [f["gamma0"]],
                     style="points"))
        zeta = rf", $\zeta$ = {_zeta_label(f['zeta'])}" if method == "bn" else ""
        plots.append(plotting.Plot(
            title=(rf"(iii) {name}{zeta}: flow of $(R, \gamma)$, $\eta$ = {f['lr']:g} "
                   rf"($\eta_{{\rm eff}}$ = {f['eta_eff']:.2g})"),
            xlabel=r"overlap $R$", ylabel=r"scale $\gamma$", series=tuple(ser)))
    return plots


def _split_stable(e, y, m):
    """Split a branch into stable (max_real_eig < 0) and unstable runs sharing end points."""
    e, y, m = (np.asarray(a) for a in (e, y, m))
    st = m < 0
    stable = st | np.r_[False, st[:-1]]  # run on to the first unstable point: no gap
    unstable = ~st
    return (e[stable], y[stable]), (e[unstable], y[unstable])


def branch_panels(d: dict) -> list[plotting.Plot]:
    """Panel (iv): R*(eta_eff) with stability, and the largest eigenvalue."""
    s = plotting.series
    ser_R, ser_m = [], []
    marks_e, marks_R = [], []
    for b in d["branches"]:
        name = "WN" if b["zeta"] == 0 else "BN"
        lab = rf"{name}, $\zeta$ = {_zeta_label(b['zeta'])}"
        (es, rs), (eu, ru) = _split_stable(b["eta_eff"], b["R"], b["max_real_eig"])
        if len(es):
            ser_R.append(s(f"{lab}, stable", es, rs))
        if len(eu):
            ser_R.append(s(f"{lab}, unstable", eu, ru, style="dashed"))
        ser_m.append(s(lab, b["eta_eff"], np.asarray(b["max_real_eig"]) / b["eta_eff"]))
        marks_e.append(b["eta_max"])
        marks_R.append(b["R_star_at_eta_max"])
    lower = d["wn_lower"]
    if lower["eta_eff"]:
        ser_R.append(s(r"WN, stable $R^* < 1$ ($L$ frozen, integrated)", lower["eta_eff"],
                       lower["R"], style="points"))
    ser_R.append(s(r"first-order $\eta_{\max}$ (Table 1)", marks_e, marks_R, style="points"))
    e_all = np.concatenate([b["eta_eff"] for b in d["branches"]])
    ser_m.append(s("", [e_all.min(), e_all.max()], [0.0, 0.0], style="dashed"))
    act = ACT_NAMES[d["activation"]]
    return [
        plotting.Plot(title=rf"(iv) quasi-static fixed point $R^*$, {act}, $L_0$ = {d['L0']:g}",
                      xlabel=r"$\eta_{\rm eff} = \eta\gamma_0/L_0^2$",
                      ylabel=r"$R^*$ (dashed: unstable)", series=tuple(ser_R)),
        plotting.Plot(title=r"(iv) stability: largest eigenvalue of the $(\gamma, R)$ Jacobian",
                      xlabel=r"$\eta_{\rm eff}$",
                      ylabel=r"$\max \mathrm{Re}\,\lambda\; / \;\eta_{\rm eff}$ (< 0: stable)",
                      series=tuple(ser_m)),
    ]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Compute the data, draw the three PNGs and write the JSON; return their paths.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the output files (created if missing).
    size : {"full", "tiny"}
        ``"tiny"`` uses few points (a smoke test that runs in seconds).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    cfg = SIZES[size]
    out = Path(out_dir)
    zetas = np.linspace(*ZETA_RANGE, cfg["n_zeta"])
    eta_eff = np.linspace(*ETA_EFF_RANGE, cfg["n_branch"])
    data = {
        "eta_max": eta_max_data(zetas),
        "flow": flow_data(cfg["starts"], cfg["n_traj_points"]),
        "branch": branch_data(eta_eff, cfg["n_wn_lower"]),
    }
    panels = {
        "eta_max": eta_max_panels(data["eta_max"]),
        "flow": flow_panels(data["flow"]),
        "branch": branch_panels(data["branch"]),
    }
    paths = [plotting.save(panels["eta_max"], out / FILES["eta_max"], ncols=2),
             plotting.save(panels["flow"], out / FILES["flow"], ncols=2),
             plotting.save(panels["branch"], out / FILES["branch"], ncols=2)]
    constants = {"activations": ACTIVATIONS, "zeta_range": ZETA_RANGE, "L0": L0,
                 "flow_zeta": FLOW_ZETA, "flow_lr": FLOW_LR, "flow_t_max": FLOW_T_MAX,
                 "branch_zetas": BRANCH_ZETAS, "eta_eff_range": ETA_EFF_RANGE,
                 "wn_lower_range": WN_LOWER_RANGE, **cfg}
    paths.append(write_document(out / FILES["data"], "lr_limits", size, constants, data,
                                panels))
    return [Path(p) for p in paths]


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
