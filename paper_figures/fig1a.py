r"""Fig. 1a of Luo et al. (2019), theory layers: linear student, noisy linear teacher.

Symbol map: ``alpha`` = :math:`\alpha = P/N`, ``NOISE`` = :math:`S` (label-noise variance),
``zeta`` = decay in the sum convention :math:`\frac12\sum_p(y_p - w\cdot x_p)^2 +
\frac\zeta2|w|^2` (:mod:`perceptron_theory.theory.generalization`), ``BATCH`` = :math:`M`.
eps is the unhalved test error without the label noise.

Figures (all from :mod:`perceptron_theory.theory.generalization`):

1. ``fig1a.png`` --
   (i) the paper's curves: min-norm ("vanilla SGD", diverges at :math:`\alpha = 1`), WN +
   gamma decay at :math:`\zeta = 1/(2M)` plugged in directly as the paper does, the same decay
   read per sample (:math:`\zeta = \alpha/(2M)`, the paper's own mean-loss WN objective) and
   :math:`\zeta = S = 0.25`, with the numerically optimal decay's curve marked (it lies on
   :math:`\zeta = S`);
   (ii) :math:`\zeta^*(\alpha)` from ``minimize_scalar`` against :math:`S`, and the optimum
   of the per-sample decay, :math:`S/\alpha`;
   (iii) BN read as decay under the three batch-noise models of :func:`bn_equivalent_decay`
   (``leading`` :math:`1/(2M)`, ``exact``, ``real-batch`` :math:`\approx 1/(4M)`), plug-in
   and per-sample, as the reference layer for the BN simulation of issue 4;
   (iv) Fig. 1b's closed forms: ReLU eq. 25 at :math:`S = 0.25` and the noiseless bound
   :math:`1 - \alpha/4` (:math:`\alpha < 2`; the replica curves are in ``fig1b``);
   (v) the paper's BN squares, simulated: offline SGD of the BN student (batch statistics,
   running averages at test time) and of WN + gamma decay at :math:`\zeta = 1/(2M)` per
   sample, at finite N (:func:`validation.l_f1a.bn_offline`), beside the curves they are
   read against; BN follows the min-norm curve shrunk by :math:`c_M = E[\sigma_B/\sigma_P]`
   (it keeps the divergence at :math:`\alpha = 1`), not ridge at any single decay.
2. ``fig1a.json`` -- the plotted data (``panels``: the Plot specifications; ``data``: the
   same numbers keyed for programs).

Curves are clipped at ``Y_CAP`` for display (min-norm diverges at :math:`\alpha = 1`); the
JSON holds the clipped values in ``panels`` and the exact ones (``null`` for infinity) in
``data``.

Run ``PYTHONPATH=. python -m paper_figures.fig1a [--out-dir DIR] [--size tiny]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figures import _common
from paper_figures._common import run_cli, start, units, write_document
from perceptron_theory import plotting
from perceptron_theory._io import plain
from perceptron_theory.theory import generalization as gen
from validation import l_f1a

# ----------------------------------------------------------------------------- constants
NOISE = 0.25  # S, as in the paper
BATCH = 32  # M of Fig. 1a
ALPHA_RANGE = (0.0, 3.0)  # open at 0
RELU_ALPHA_MAX = 1.95  # eq. 25 diverges at alpha = 2
Y_CAP = 1.6  # display clip
SIZES = {
    "full": {"n_alpha": 600, "n_opt": 40, "sim_N": 1024, "sim_seeds": 8, "sim_epochs": None,
             "sim_alphas": (0.2, 0.35, 0.5, 0.65, 0.8, 1.5, 2.0, 2.5, 3.0)},
    # the paper's scale (N = 4096, M = 32, 8 seeds): results/fig1a_N4096/
    "paper": {"n_alpha": 600, "n_opt": 40, "sim_N": 4096, "sim_seeds": 8, "sim_epochs": None,
              "sim_alphas": (0.2, 0.35, 0.5, 0.65, 0.8, 1.5, 2.0, 2.5, 3.0)},
    "tiny": {"n_alpha": 30, "n_opt": 6, "sim_N": 64, "sim_seeds": 2, "sim_epochs": 20,
             "sim_alphas": (0.5, 2.0)},
}
FILES = {"fig": "fig1a.png", "data": "fig1a.json"}


def _grid(n: int, hi: float = ALPHA_RANGE[1]) -> np.ndarray:
    g = np.linspace(ALPHA_RANGE[0], hi, n + 1)[1:]
    return np.where(np.isclose(g, 1.0), 1.0 + 1e-3, g)  # min-norm is infinite at 1


def _clean(a) -> list:
    """A flat list of floats, infinite values as None (JSON null)."""
    return plain(np.ravel(np.asarray(a, float)), finite_only=True)


# ------------------------------------------------------------------------------ compute
def curves(alpha: np.ndarray, n_opt: int) -> dict:
    """The four paper curves, the numerical optimum and the BN variants."""
    lc = gen.learning_curve
    d = {
        "alpha": alpha.tolist(),
        "min_norm": _clean(lc("linear", "min-norm", alpha, noise=NOISE).eps),
        "plug_in": _clean(lc("linear", "wn-decay", alpha, noise=NOISE, batch_size=BATCH,
                             decay_convention="sum").eps),
        "per_sample": _clean(lc("linear", "wn-decay", alpha, noise=NOISE, batch_size=BATCH).eps),
        "zeta_S": _clean(lc("linear", "wn-decay", alpha, noise=NOISE, zeta=NOISE).eps),
    }
    a_opt = np.linspace(alpha[0], alpha[-1], n_opt)
    opt = gen.optimal_ridge(a_opt, NOISE)
    d["optimum"] = {"alpha": a_opt.tolist(), "zeta": opt.zeta.tolist(), "eps": _clean(opt.eps),
                    "per_sample_zeta": (NOISE / a_opt).tolist()}
    bn = {}
    for model in gen.BN_DECAYS:
        z = gen.bn_equivalent_decay(BATCH, model)
        for conv in ("sum", "decay2"):
            bn[f"{model}/{conv}"] = {
                "zeta_per_sample": z,
                "eps": _clean(lc("linear", "wn-decay", alpha, noise=NOISE, batch_size=BATCH,
                                 bn_decay=model, decay_convention=conv).eps)}
    d["bn_models"] = bn
    a_r = alpha[alpha < RELU_ALPHA_MAX]
    d["relu"] = {"alpha": a_r.tolist(), "eq25": _clean(gen.relu_exhaustive(a_r, NOISE).eps),
                 "noiseless": _clean(gen.relu_noiseless_bound(a_r))}
    d["bn_shrunk"] = {"c_M": l_f1a.C_M, "eps": _clean(l_f1a.shrunk_min_norm(alpha, l_f1a.C_M))}
    return d


def simulation(cfg: dict) -> dict:
    """BN and WN + decay (zeta = 1/(2M) per sample) by offline SGD at finite N.

    ``bn``: BN's test error with running averages (control-variate mean and SE);
    ``bn_corrected``: less the EMA readout noise and the initial-weight term; ``wn``: WN.
    """
    rows = units("paper_figures.fig1a:simulation_point",
                 [{"cfg": cfg, "alpha": a} for a in cfg["sim_alphas"]])
    return {"N": cfg["sim_N"], "seeds": cfg["sim_seeds"], "batch_size": BATCH,
            "zeta_wn_per_sample": l_f1a.ZETA_WN, "points": rows}


def simulation_point(cfg: dict, alpha: float) -> dict:
    """One load of :func:`simulation` (a unit of the executor and the run store)."""
    o = l_f1a.bn_stats(l_f1a.bn_offline(cfg["sim_N"], alpha, cfg["sim_seeds"], 0,
                                        epochs=cfg["sim_epochs"]))
    return _common.clean({"alpha": alpha, "epochs": o["epochs"], "bn": list(o["eps_cv"]),
                          "bn_corrected": list(o["corrected"]), "wn": list(o["wn_eps"])})


# ------------------------------------------------------------------------------- panels
def panels(d: dict) -> list[plotting.Plot]:
    s = plotting.series
    a = np.asarray(d["alpha"])

    def cap(v):
        v = np.array([np.inf if x is None else x for x in v], dtype=float)
        return np.minimum(v, Y_CAP)

    o = d["optimum"]
    p1 = plotting.Plot(
        title=f"(i) Fig. 1a theory, linear student, S = {NOISE} (clipped at {Y_CAP})",
        xlabel=r"$\alpha = P/N$", ylabel=r"$\epsilon$ (no label noise)",
        series=(s("min-norm (vanilla SGD)", a, cap(d["min_norm"])),
                s(rf"$\zeta = 1/2M$ plug-in (paper), M = {BATCH}", a, cap(d["plug_in"])),
                s(r"$\zeta = \alpha/2M$ (per-sample WN loss)", a, cap(d["per_sample"]),
                  style="dashed"),
                s(rf"$\zeta = S$ = {NOISE}", a, cap(d["zeta_S"])),
                s(r"numerical optimum $\min_\zeta \epsilon$", o["alpha"], cap(o["eps"]),
                  style="points")))
    p2 = plotting.Plot(
        title=r"(ii) optimal decay $\zeta^*(\alpha)$",
        xlabel=r"$\alpha$", ylabel=r"$\zeta^*$",
        series=(s("minimize_scalar (sum convention)", o["alpha"], o["zeta"], style="points"),
                s(r"$S$", o["alpha"], np.full(len(o["alpha"]), NOISE)),
                s(r"per-sample optimum $S/\alpha$ (clipped at 2)", o["alpha"],
                  np.minimum(o["per_sample_zeta"], 2.0), style="dashed")))
    ser = []
    for key, v in d["bn_models"].items():
        model, conv = key.split("/")
        how = "plug-in" if conv == "sum" else "per-sample"
        lab = f"{model}, {how} (zeta_ps={v['zeta_per_sample']:.3g})"
        ser.append(s(lab, a, cap(v["eps"]), style="dashed" if conv == "sum" else "line"))
    p3 = plotting.Plot(title=f"(iii) BN (M = {BATCH}) as gamma decay: three noise models",
                       xlabel=r"$\alpha$", ylabel=r"$\epsilon$", series=tuple(ser))
    r = d["relu"]
    p4 = plotting.Plot(title=f"(iv) Fig. 1b closed forms, ReLU student, S = {NOISE}",
                       xlabel=r"$\alpha$", ylabel=r"$\epsilon$",
                       series=(s("eq. 25 (paper's SGD theory)", r["alpha"], cap(r["eq25"])),
                               s(r"noiseless bound $1 - \alpha/4$", r["alpha"], r["noiseless"],
                                 style="dashed")))
    sim = d["simulation"]
    pts = sim["points"]
    xs = [p["alpha"] for p in pts]
    p5 = plotting.Plot(
        title=f"(v) BN squares: offline SGD, M = {BATCH}, N = {sim['N']} (clipped at {Y_CAP})",
        xlabel=r"$\alpha$", ylabel=r"$\epsilon$ (no label noise)",
        series=(s("min-norm", a, cap(d["min_norm"])),
                s(r"$\zeta = \alpha/2M$ (WN + decay theory)", a, cap(d["per_sample"]),
                  style="dashed"),
                s(rf"$c_M$-shrunk min-norm, $c_M$ = {d['bn_shrunk']['c_M']:.4f}", a,
                  cap(d["bn_shrunk"]["eps"])),
                s("BN (running averages)", xs, cap([p["bn"][0] for p in pts]),
                  yerr=[p["bn"][1] for p in pts], style="points"),
                s(r"WN + decay, $\zeta = 1/2M$ per sample", xs,
                  cap([p["wn"][0] for p in pts]), yerr=[p["wn"][1] for p in pts],
                  style="points")))
    return [p1, p2, p3, p4, p5]


# --------------------------------------------------------------------------------- main
def main(out_dir="paper_figures_out", size: str = "full") -> list[Path]:
    """Compute the curves, draw ``fig1a.png`` and write ``fig1a.json``; return their paths.

    ``size``: ``"tiny"`` uses few alphas and a 20-epoch N = 64 simulation (a smoke
    test); ``"full"`` simulates N = 1024 (several minutes); ``"paper"`` N = 4096, the
    paper's scale (about half an hour on 2 cores; shipped in ``results/fig1a_N4096``).
    ``out_dir`` and the check of ``size``: :func:`paper_figures._common.start`.
    """
    cfg, out = start(out_dir, size, SIZES)
    data = curves(_grid(cfg["n_alpha"]), cfg["n_opt"])
    data["simulation"] = simulation(cfg)
    ps = panels(data)
    paths = [plotting.save(ps, out / FILES["fig"], ncols=2)]
    constants = {"noise": NOISE, "batch_size": BATCH, "alpha_range": ALPHA_RANGE,
                 "relu_alpha_max": RELU_ALPHA_MAX, "y_cap": Y_CAP, **cfg}
    paths.append(write_document(out / FILES["data"], "fig1a", size, constants, data,
                                {"fig1a": ps}))
    return [Path(p) for p in paths]


if __name__ == "__main__":
    run_cli(main, __doc__, SIZES)
