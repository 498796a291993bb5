"""Every paper-figure script runs at tiny size, writes real PNGs and finite JSON data,
and its plotted data shows the science it claims (STYLE.md, guideline 11).

Figures in :data:`paper_figures.TORCH_FIGURES` carry the ``deep`` marker and are skipped
when torch is missing; their extra tests check structure only (outcomes at tiny size are
meaningless)."""

import importlib
import json
import math

import numpy as np
import pytest

from paper_figures import FIGURES, TORCH_FIGURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _param(name):
    """``name`` as a test parameter, marked ``deep`` when the figure needs torch."""
    return pytest.param(name, marks=pytest.mark.deep) if name in TORCH_FIGURES else name


NAMES = [_param(n) for n in sorted(FIGURES)]


def _numbers(obj):
    """Yield every number (not bool) in a JSON document."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


class _Outputs(dict):
    """name -> paths returned by ``main(size="tiny")``, each figure run once, on first use
    (a torch figure is skipped, not run, when torch is missing)."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.tmp_path_factory = tmp_path_factory

    def __missing__(self, name):
        if name in TORCH_FIGURES:
            pytest.importorskip("torch")
        folder = self.tmp_path_factory.mktemp(name)
        self[name] = importlib.import_module(FIGURES[name]).main(out_dir=folder, size="tiny")
        return self[name]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Map name -> returned paths of each registered figure at size="tiny" (lazily)."""
    return _Outputs(tmp_path_factory)


def _json(paths):
    (path,) = [p for p in paths if p.suffix == ".json"]
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", NAMES)
def test_figure_writes_pngs_and_finite_json(outputs, name):
    paths = outputs[name]
    pngs = [p for p in paths if p.suffix == ".png"]
    assert pngs, f"{name} returned no PNG"
    for p in pngs:
        assert p.is_file() and p.stat().st_size > 1000, p
        assert p.read_bytes()[:8] == PNG_MAGIC, p
    doc = _json(paths)
    nums = list(_numbers(doc))
    assert len(nums) > 100
    assert all(math.isfinite(x) for x in nums)
    # every drawn series has matching, non-empty coordinates
    for panels in doc["panels"].values():
        for panel in panels:
            for s in panel["series"]:
                assert len(s["x"]) == len(s["y"]) > 0, (panel["title"], s["label"])


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_main_rejects_unknown_size(tmp_path, name):
    """Before any work (no torch needed, nothing written)."""
    mod = importlib.import_module(FIGURES[name])
    with pytest.raises(ValueError, match="size"):
        mod.main(out_dir=tmp_path / "out", size="huge")
    assert not (tmp_path / "out").exists()


def test_torch_figures_are_registered():
    assert TORCH_FIGURES <= set(FIGURES)


def test_lr_limits_bn_eta_max_respects_prop4(outputs):
    """Luo et al. Prop. 4: eta_max(BN) >= eta_max(WN) + 2 zeta. Our derived Table-1 formula
    satisfies it (strictly for ReLU and erf at zeta > 0, with equality for the linear
    student, 2 (1 + zeta)); the formula as printed in the paper violates it for ReLU."""
    data = _json(outputs["lr_limits"])["data"]["eta_max"]
    for act, d in data.items():
        zeta = np.array(d["zeta"])
        bn, bound = np.array(d["bn"]), np.array(d["prop4_bound"])
        assert np.all(bn >= bound - 1e-12), act
        assert bn[0] == pytest.approx(d["wn"], rel=1e-12), act  # BN at zeta = 0 is WN
        pos = zeta > 0
        if act == "linear":
            np.testing.assert_allclose(bn, 2.0 * (1.0 + zeta), rtol=1e-12)
        else:
            assert np.all(bn[pos] > bound[pos]), act
    relu = data["relu"]
    zeta = np.array(relu["zeta"])
    np.testing.assert_allclose(relu["bn"], 2.0 * (1.0 + 2.0 * zeta), rtol=1e-12)
    pos = zeta > 0
    assert np.all(np.array(relu["bn_paper"])[pos] < np.array(relu["prop4_bound"])[pos])


def test_lr_limits_wn_loses_stability_at_2_bn_does_not(outputs):
    """Quasi-static branch: WN's R = 1 has max Re(lambda) crossing 0 at eta_eff = 2 (within
    one grid step); BN's branch (zeta > 0) stays stable and slides below R = 1."""
    d = _json(outputs["lr_limits"])["data"]["branch"]
    by_zeta = {b["zeta"]: b for b in d["branches"]}
    wn = by_zeta[0.0]
    e, m = np.array(wn["eta_eff"]), np.array(wn["max_real_eig"])
    step = float(np.max(np.diff(e)))
    np.testing.assert_allclose(wn["R"], 1.0, atol=1e-9)
    first_unstable = e[np.argmax(m >= 0)]
    assert np.any(m >= 0) and np.all(m[e < first_unstable] < 0)
    assert abs(first_unstable - 2.0) <= step
    for z, b in by_zeta.items():
        if z == 0:
            continue
        R = np.array(b["R"])
        assert np.all(np.array(b["max_real_eig"]) < 0), z
        assert np.all(np.diff(R) < 0) and R[-1] < 0.6, z  # slides continuously below 1
    # past eta_eff = 2 WN's stable state is the R* < 1 branch, which BN at small zeta follows
    lower = d["wn_lower"]
    assert lower["R"] and all(r < 1 for r in lower["R"])
    # (an imperfect transcritical bifurcation: the imperfection is O(zeta))
    z_small = min(z for z in by_zeta if z > 0)
    small = by_zeta[z_small]
    np.testing.assert_allclose(lower["R"], np.interp(lower["eta_eff"], small["eta_eff"],
                                                     small["R"]), atol=z_small)


# ----------------------------------------------------------------- deep-network figures
# structure only: outcomes at tiny size are meaningless
def _in_unit_interval(values, lo=-1.0):
    v = np.array([x for x in np.ravel(np.array(values, dtype=object)) if x is not None],
                 float)
    return v.size > 0 and np.all((v >= lo - 1e-9) & (v <= 1.0 + 1e-9))


@pytest.mark.deep
def test_r_f1_layers_and_correlations(outputs):
    """Positions = D slots + embedding + logits, weight layers = D + 1; cosines in [-1, 1];
    every normalizer is a registry name; BN's and LN's records are the R-F1 check's."""
    d = _json(outputs["r_f1"])["data"]  # skips without torch
    from perceptron_theory.deep.norms import NORMS
    from validation import _deep, r_f1f3

    D = d["depth"]
    assert D == r_f1f3.SETTINGS["tiny"]["depth"]
    assert len(d["layers"]) == D + 2 and d["layers"][-2:] == ["embedding", "logits"]
    assert len(d["weight_layers"]) == D + 1 and d["weight_layers"][-1] == "classifier"
    assert set(d["norms"]) <= set(NORMS) and {"none", "bn", "ln"} <= set(d["norms"])
    n_seeds = _deep.SCALES["tiny"].n_seeds
    for nm, rec in d["norms"].items():
        assert len(rec["rep_corr"]) == len(rec["grad_corr"]) == n_seeds, nm
        assert all(len(r) == D + 2 for r in rec["rep_corr"] + rec["rep_pearson"]), nm
        assert all(len(g) == D + 1 for g in rec["grad_corr"] + rec["grad_norm"]), nm
        for key in ("rep_corr", "rep_pearson", "grad_corr"):
            assert _in_unit_interval(rec[key]), (nm, key)
        assert np.all(np.array(rec["grad_norm"]) > 0), nm
    check = r_f1f3.data("tiny", 0)
    for nm in r_f1f3.NORMS:
        want = [r["propagation"][0]["rep_corr"] for r in check[nm]]
        np.testing.assert_allclose(d["norms"][nm]["rep_corr"], want, rtol=0, atol=0)


@pytest.mark.deep
def test_r_f3_steps_and_ranges(outputs):
    """Records at steps 0, every, ..., steps; per-seed lists of that length; accuracies in
    [0, 1], cosines in [-1, 1], gradient ratios > 0."""
    from validation import r_f1f3

    d = _json(outputs["r_f3"])["data"]
    s = r_f1f3.SETTINGS["tiny"]
    assert d["step"] == list(range(0, s["steps"] + 1, s["every"]))
    assert set(r_f1f3.NORMS) <= set(d["norms"])
    n = len(d["step"])
    for nm, seeds in d["norms"].items():
        for r in seeds:
            assert all(len(r[k]) == n for k in ("val_acc", "grad_ratio", "rep_corr",
                                                 "grad_corr")), nm
            assert r["batch_loss"][0] is None and len(r["batch_loss"]) == n, nm
            assert _in_unit_interval(r["val_acc"], lo=0.0), nm
            assert _in_unit_interval(r["rep_corr"]) and _in_unit_interval(r["grad_corr"]), nm
            assert all(len(c) == len(d["layers"]) for c in r["rep_corr"]), nm
            assert all(len(c) == len(d["weight_layers"]) for c in r["grad_corr"]), nm
            assert all(g is None or g > 0 for g in r["grad_ratio"]), nm


@pytest.mark.deep
def test_d_f2f3_sweep_and_histories(outputs):
    """The sweep is 0 < EL2_SMALL < EL2_COEF, starting from the baseline; every run has
    one record per epoch; norms are >= 0."""
    from validation import d_f2f3, d_t3

    d = _json(outputs["d_f2f3"])["data"]
    coefs = [p["coef"] for p in d["sweep"]]
    assert coefs == [0.0, d_f2f3.EL2_SMALL, d_t3.EL2_COEF]
    assert d["sweep"][0]["label"] == d_t3.BASE
    epochs = d_t3.SETTINGS["tiny"]["epochs"]
    for lab, seeds in d["epochs"].items():
        assert len(seeds) == len(d["seeds"]), lab
        for h in seeds.values():
            for key in ("embedding_sq", "output_sq"):
                assert len(h[key]) == epochs and min(h[key]) >= 0, (lab, key)


@pytest.mark.deep
def test_d_t3_drop_is_clean_minus_dropout_accuracy(outputs):
    """drop = acc - acc_dropout per run (to 1e-12); accuracies in [0, 1]; Table 3 as in
    the check."""
    from validation import d_t3

    d = _json(outputs["d_t3"])["data"]
    for lab, f in d["final"].items():
        clean, drop, acc = (np.array(f[k], float) for k in ("clean_acc", "dropout_drop",
                                                             "dropout_acc"))
        np.testing.assert_allclose(drop, clean - acc, rtol=0, atol=1e-12, err_msg=lab)
        assert _in_unit_interval(f["clean_acc"], lo=0.0) and _in_unit_interval(
            f["dropout_acc"], lo=0.0), lab
        assert d["paper_drop"][lab][0] == d_t3.PAPER_DROP[lab]


@pytest.mark.deep
def test_l_f2ef_batch_sizes_are_the_checks(outputs):
    """Batch sizes are the check's settings; each final gamma^2 is its run's last epoch."""
    from validation import l_f2ef

    d = _json(outputs["l_f2ef"])["data"]
    assert d["batch_sizes"] == list(l_f2ef.SETTINGS["tiny"]["batch_sizes"])
    for m in d["batch_sizes"]:
        final = d["final"][str(m)]["gamma_sq_mean"]
        last = [h["gamma_sq_mean"][-1] for h in d["epochs"][str(m)].values()]
        assert final == last and all(g > 0 for g in final), m


@pytest.mark.deep
def test_l_f4_starts_from_the_fold_and_both_arms_share_step_0(outputs):
    """Folded SGD and BN continued start from the same eval function: equal losses and
    (BN's effective vs the folded) weight norms at step 0; steps follow the check's."""
    from validation import l_f4

    d = _json(outputs["l_f4"])["data"]
    s = l_f4.SETTINGS["tiny"]
    assert d["finetune"] and len(d["finetune"]) == len(d["seeds"])
    for ft in d["finetune"]:
        assert ft["step"] == list(range(0, s["steps"] + 1, s["every"]))
        assert ft["fold_max_rel_err"] < l_f4.FOLD_RTOL
        np.testing.assert_allclose(ft["control_weight_norm"][0], ft["weight_norm"][0],
                                   rtol=1e-5)
        assert ft["control_val_loss"][0] == pytest.approx(ft["val_loss"][0], rel=1e-5)
        assert len(ft["weight_norm"][0]) == len(ft["weight_layers"])


@pytest.mark.deep
def test_r_f4f6_spectra_are_ordered_and_densities_normalized(outputs):
    """Top eigenvalues come sorted (descending) with lambda_1 = the first and the ratio
    lambda_1 / lambda_K; each SLQ density integrates to about 1 on its grid."""
    from validation import r_f4f6

    d = _json(outputs["r_f4f6"])["data"]
    assert d["norms"] == list(r_f4f6.NORMS) and d["k"] == r_f4f6.K
    for nm, runs in d["runs"].items():
        for r in runs:
            for eig, l1, ratio, dens in zip(r["eigenvalues"], r["lambda_1"], r["lambda_ratio"],
                                            r["density"], strict=True):
                assert len(eig) == r_f4f6.K and np.all(np.diff(eig) <= 1e-9 * abs(eig[0]))
                assert l1 == eig[0] and ratio == pytest.approx(eig[0] / eig[-1], rel=1e-12)
                area = np.trapezoid(dens["density"], dens["grid"])
                assert area == pytest.approx(1.0, abs=0.05), nm
