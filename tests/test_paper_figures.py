"""Every paper-figure script runs at tiny size, writes real PNGs and finite JSON data,
and its plotted data shows the science it claims (STYLE.md, guideline 11)."""

import importlib
import json
import math

import numpy as np
import pytest

from paper_figures import FIGURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Run each registered figure once at size="tiny"; map name -> returned paths."""
    out = {}
    for name, module in FIGURES.items():
        folder = tmp_path_factory.mktemp(name)
        out[name] = importlib.import_module(module).main(out_dir=folder, size="tiny")
    return out


def _json(paths):
    (path,) = [p for p in paths if p.suffix == ".json"]
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", sorted(FIGURES))
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


def test_main_rejects_unknown_size(tmp_path):
    mod = importlib.import_module(FIGURES["lr_limits"])
    with pytest.raises(ValueError, match="size"):
        mod.main(out_dir=tmp_path, size="huge")


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
