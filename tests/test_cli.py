"""The command line: output, --json, --plot, and one-line errors with exit status 2."""

import json

import numpy as np
import pytest

from perceptron_theory.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_integrals_json_matches_library(capsys):
    from perceptron_theory.theory import integrals as I

    rc, out, _ = run(capsys, "integrals", "--activation", "relu", "--Q", "0.8", "--R", "0.5",
                     "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["I2"] == pytest.approx(float(I.I2("relu", 0.8, 0.5)), rel=1e-14)
    assert set(d) >= {"I1", "I2", "I3", "eps", "dI1/dR", "deps/dQ"}


def test_dynamics_plot_and_json(capsys, tmp_path):
    png = tmp_path / "traj.png"
    rc, out, _ = run(capsys, "dynamics", "--method", "wn-decay", "--activation", "relu",
                     "--lr", "0.5", "--zeta", "0.25", "--t-max", "10", "--n-points", "11", "--json",
                     "--plot", str(png))
    assert rc == 0
    d = json.loads(out)
    assert len(d["t"]) == 11 and d["diverged"] is False
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lr_limits_sweep(capsys):
    rc, out, _ = run(capsys, "lr-limits", "--method", "wn-decay", "--activation", "relu",
                     "--zeta-range", "0:1:3", "--fast", "--json")
    assert rc == 0
    rows = json.loads(out)
    # eta_max = 2 (1 + 2 zeta) for ReLU, derived by hand in theory.dynamics
    assert [r["eta_max"] for r in rows] == pytest.approx([2.0, 4.0, 6.0], rel=1e-12)


STORED_CASES = [
    ["lr-limits", "--method", "wn-decay", "--activation", "relu", "--zeta", "0.2", "--fast"],
    ["dynamics", "--method", "wn", "--activation", "relu", "--lr", "0.5", "--t-max", "1",
     "--n-points", "5"],
]


def test_stored_commands_print_what_they_compute(capsys, tmp_path, monkeypatch):
    from perceptron_theory.store import Store
    from perceptron_theory.theory import dynamics as D

    store = ["--cache-dir", str(tmp_path)]
    computed = {}
    for argv in STORED_CASES:
        for fmt in ([], ["--json"]):
            computed[(argv[0], *fmt)] = run(capsys, *argv, *fmt, "--no-cache")
            assert computed[(argv[0], *fmt)][0] == 0
            assert run(capsys, *argv, *fmt, *store) == computed[(argv[0], *fmt)]
    assert Store(tmp_path).count("cli") == 2  # the output format is not part of the key

    def fail(*args, **kwargs):
        raise AssertionError("computed, not read back")

    monkeypatch.setattr(D, "lr_limits", fail)
    monkeypatch.setattr(D, "integrate", fail)
    for argv in STORED_CASES:
        for fmt in ([], ["--json"]):
            assert run(capsys, *argv, *fmt, *store) == computed[(argv[0], *fmt)]
        rc, _, err = run(capsys, *argv, *store, "--rerun")  # --rerun computes again
        assert rc == 1 and "computed, not read back" in err
        rc, _, _ = run(capsys, *argv, *store, "--zeta", "0.3" if argv[0] == "lr-limits"
                       else "0.0", "--L-init" if argv[0] == "dynamics" else "--L0", "2")
        assert rc == 1  # other options: another key


def test_stored_call_warns_as_the_computing_call(capsys, tmp_path, monkeypatch):
    import warnings

    from perceptron_theory.theory import dynamics as D

    argv = ["lr-limits", "--method", "bn", "--activation", "relu", "--zeta", "0.1", "--fast",
            "--json", "--cache-dir", str(tmp_path)]
    outs = []
    for k in range(2):
        if k:
            monkeypatch.setattr(D, "lr_limits", None)  # the second call reads the store
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            outs.append(run(capsys, *argv))
        dep = [w for w in rec if issubclass(w.category, DeprecationWarning)]
        assert len(dep) == 1 and "deprecated alias" in str(dep[0].message)
        assert dep[0].filename.endswith("cli.py")
    assert outs[0] == outs[1] and outs[0][0] == 0


def test_sweep_cells_leave_the_commands_own_store_alone():
    from perceptron_theory import sweep

    args = sweep._parse("lr-limits", {"method": "wn", "activation": "relu"})
    assert args.no_cache and args.json
    with pytest.raises(ValueError, match="no option --cache-dir"):
        sweep.load_spec({"command": "dynamics", "fixed": {"cache-dir": "x"}})


@pytest.mark.parametrize("argv, word", [
    (["integrals", "--activation", "relu", "--Q", "-1", "--R", "0"], "Q"),
    (["integrals", "--activation", "relu", "--Q", "1", "--R", "1.5"], "R"),
    (["integrals", "--activation", "relu", "--Q", "nan", "--R", "0"], "Q"),
    (["dynamics", "--method", "wn-decay", "--activation", "relu", "--lr", "0", "--zeta", "0.1"],
     "lr"),
    (["dynamics", "--method", "wn-decay", "--activation", "relu", "--lr", "1", "--zeta", "-0.1"],
     "zeta"),
    (["lr-limits", "--method", "wn", "--activation", "relu", "--zeta", "0.2"], "zeta"),
    (["integrals", "--activation", "tanh", "--Q", "1", "--R", "0"], "activation"),
    (["dynamics", "--method", "adam", "--activation", "relu", "--lr", "1"], "method"),
    (["reproduce", "--claim", "X-999"], "claims"),
])
def test_bad_input_one_line_exit_2(capsys, argv, word):
    with pytest.raises(SystemExit) as e:
        code = main(argv)
        raise SystemExit(code)
    _, err = capsys.readouterr()
    assert e.value.code == 2
    assert len(err.strip().splitlines()) == 1
    assert word in err


def test_reproduce_one_claim_writes_report(capsys, tmp_path):
    rc, out, _ = run(capsys, "reproduce", "--quick", "--claim", "L-T1", "--out", str(tmp_path))
    assert rc == 0, out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["ok"] and res["n_failed"] == 0
    assert [c["claim"] for c in res["checks"]] == ["L-T1"]
    md = (tmp_path / "report.md").read_text()
    assert "| L-T1 |" in md and "![L-T1](L-T1.png)" in md
    assert (tmp_path / "L-T1.png").read_bytes()[:4] == b"\x89PNG"


def test_curve_json_matches_library(capsys):
    from perceptron_theory.theory import generalization as G

    rc, out, _ = run(capsys, "curve", "--student", "linear", "--method", "wn-decay",
                     "--alpha-range", "0.5:2:4", "--noise", "0.25", "--zeta", "0.25", "--json")
    assert rc == 0
    d = json.loads(out)
    ref = G.learning_curve("linear", "wn-decay", [0.5, 1.0, 1.5, 2.0], noise=0.25, zeta=0.25)
    assert d["eps"] == pytest.approx(list(ref.eps), rel=1e-12)


def test_curve_replica_relu_and_plot(capsys, tmp_path):
    png = tmp_path / "c.png"
    rc, out, _ = run(capsys, "curve", "--student", "relu", "--method", "replica",
                     "--alpha", "1.5", "--noise", "0.25", "--zeta", "0.25", "--json",
                     "--plot", str(png))
    assert rc == 0 and json.loads(out)["converged"] == [True]
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, word", [
    (["curve", "--student", "relu", "--method", "min-norm", "--alpha", "2.5"], "alpha"),
    (["curve", "--student", "linear", "--method", "wn-decay", "--alpha", "1", "--noise", "-1"],
     "noise"),
    (["curve", "--student", "linear", "--method", "wn-decay", "--alpha", "1", "--zeta", "-1"],
     "zeta"),
    (["curve", "--student", "linear", "--method", "wn-decay", "--alpha", "1", "--beta", "0"],
     "beta"),
    (["curve", "--student", "linear", "--method", "wn-decay"], "alpha"),
])
def test_curve_bad_input(capsys, argv, word):
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and word in err


# ------------------------------------------------------------------------ simulate
def test_simulate_online_json_matches_library(capsys, tmp_path):
    from perceptron_theory.simulate import online

    png = tmp_path / "sim.png"
    rc, out, _ = run(capsys, "simulate", "--method", "bn", "--activation", "relu", "--N", "60",
                     "--batch-size", "4", "--lr", "0.4", "--online", "--t-max", "1",
                     "--seeds", "2", "--n-points", "3", "--json", "--plot", str(png))
    assert rc == 0
    d = json.loads(out)
    ref = online.run("bn", "relu", N=60, batch_size=4, lr=0.4, t_max=1.0, seeds=4, n_points=3)
    # the CLI ran seeds 0, 1: the same streams as the first two of the library run
    assert np.array_equal(np.array(d["R"]), ref.R[:2])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_simulate_offline_table(capsys):
    rc, out, _ = run(capsys, "simulate", "--method", "wn-decay", "--zeta", "0.1", "--activation",
                     "linear", "--N", "40", "--alpha", "1.5", "--epochs", "4", "--lr", "0.2",
                     "--noise", "0.25", "--seeds", "2", "--n-points", "2")
    assert rc == 0
    assert "train_loss" in out and "0 diverged" in out


def test_simulate_reports_divergence(capsys):
    rc, out, _ = run(capsys, "simulate", "--method", "sgd", "--activation", "linear", "--N",
                     "50", "--lr", "3", "--online", "--t-max", "20", "--seeds", "2")
    assert rc == 0 and "2 diverged" in out


def test_max_lr_json(capsys):
    rc, out, _ = run(capsys, "max-lr", "--method", "sgd", "--activation", "linear", "--N", "200",
                     "--t-max", "10", "--seeds", "2", "--rel-tol", "0.05", "--json")
    assert rc == 0
    d = json.loads(out)
    assert 1.8 < d["lr_max"] < 2.15 and d["lr_pass"] < d["lr_fail"]


@pytest.mark.parametrize("argv, word", [
    (["simulate", "--method", "bn", "--activation", "relu", "--N", "1", "--lr", "1",
      "--online", "--t-max", "1", "--batch-size", "4"], "N"),
    (["simulate", "--method", "bn", "--activation", "relu", "--N", "10", "--lr", "1",
      "--online", "--t-max", "1"], "batch_size"),
    (["simulate", "--method", "wn", "--activation", "relu", "--N", "10", "--lr", "-1",
      "--online", "--t-max", "1"], "lr"),
    (["simulate", "--method", "bn", "--activation", "relu", "--N", "10", "--lr", "1",
      "--alpha", "1", "--epochs", "1", "--batch-size", "20"], "batch_size"),
    (["simulate", "--method", "wn", "--activation", "relu", "--N", "10", "--lr", "1"], "alpha"),
    (["simulate", "--method", "adam", "--activation", "relu", "--N", "10", "--lr", "1"],
     "method"),
    (["max-lr", "--method", "wn", "--activation", "relu", "--N", "10", "--tol", "2"], "tol"),
])
def test_simulate_bad_input_one_line_exit_2(capsys, argv, word):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    _, err = capsys.readouterr()
    assert e.value.code == 2
    assert len(err.strip().splitlines()) == 1 and word in err


def test_train_tiny_run(capsys, tmp_path):
    pytest.importorskip("torch")
    rc, out, _ = run(capsys, "train", "--model", "mlp", "--model-option", "hidden=16",
                     "--dataset", "synthetic", "--subset", "300", "--epochs", "1",
                     "--batch-size", "32", "--penalty", "embedding-l2=1e-3", "--out",
                     str(tmp_path / "run"), "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["epoch"] == 1 and "penalty/embedding-l2" in d and d["diverged"] is False
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_train_cpu_speed_flags(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    rc, out, _ = run(capsys, "train", "--model", "cnn", "--model-option", "channels=[2,2,4,4]",
                     "--model-option", "hidden=8", "--dataset", "synthetic", "--subset", "200",
                     "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--amp",
                     "--channels-last", "--threads", "1", "--out", str(tmp_path / "run"),
                     "--json")
    assert rc == 0 and json.loads(out)["diverged"] is False
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["amp"] is True and cfg["channels_last"] is True and cfg["threads"] == 1
    assert "compile" not in cfg  # at its default: left out of the dict
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.parametrize("argv, word", [
    (["train", "--threads", "0"], "threads"),
    (["train", "--norm", "bogus"], "norm"),
    (["train", "--model", "vgg"], "model"),
    (["train", "--penalty", "nonsense=1"], "penalt"),
    (["train", "--penalty", "gamma-decay"], "NAME=COEF"),
    (["train", "--batch-size", "1"], "batch_size"),
])
def test_train_bad_input(capsys, tmp_path, argv, word):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv + ["--out", str(tmp_path / "r")]))
    _, err = capsys.readouterr()
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and word in err


def test_probe_on_a_trained_run(capsys, tmp_path):
    pytest.importorskip("torch")
    run_dir = tmp_path / "run"
    rc, _, _ = run(capsys, "train", "--model", "mlp", "--model-option", "hidden=16",
                   "--dataset", "synthetic", "--subset", "200", "--epochs", "1",
                   "--batch-size", "32", "--out", str(run_dir))
    assert rc == 0
    rc, out, _ = run(capsys, "probe", "--checkpoint", str(run_dir), "--probe", "hessian",
                     "--option", "n=32", "--option", "k=3", "--option", "slq_steps=8", "--json",
                     "--plot", str(tmp_path / "h.png"))
    assert rc == 0
    d = json.loads(out)
    assert d["probe"] == "hessian" and (tmp_path / "h.png").exists()
    rc, out, _ = run(capsys, "probe", "--checkpoint", str(run_dir), "--probe", "dropout",
                     "--option", "p=0.5")
    assert rc == 0 and "drop" in out
    rc, out, _ = run(capsys, "probe", "--checkpoint", str(run_dir), "--probe", "bn-finetune",
                     "--option", "steps=4", "--option", "every=2", "--option", "control=true",
                     "--json", "--plot", str(tmp_path / "ft.png"))
    d = json.loads(out)["result"]
    assert rc == 0 and d["step"] == [0, 2, 4] and len(d["control_weight_norm"]) == 3
    assert (tmp_path / "ft.png").stat().st_size > 1000


def test_probe_on_a_missing_run_is_one_line_exit_2(capsys, tmp_path):
    pytest.importorskip("torch")
    rc, _, err = run(capsys, "probe", "--checkpoint", str(tmp_path / "nowhere"), "--probe",
                     "norms")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "config.json" in err


def test_figure_from_the_installed_package(capsys, tmp_path):
    rc, out, _ = run(capsys, "figure", "lr_limits", "--size", "tiny", "--out", str(tmp_path))
    assert rc == 0
    files = out.split()
    assert any(f.endswith("lr_limits.json") for f in files)
    assert all((tmp_path / f.split("/")[-1]).exists() for f in files)


@pytest.mark.parametrize("argv, word", [
    (["figure", "nope"], "invalid choice"),
    (["figure", "lr_limits", "--size", "huge"], "size must be one of"),
])
def test_figure_bad_input(capsys, argv, word):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    _, err = capsys.readouterr()
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and word in err


# ------------------------------------------------------------ registries drive the CLI
def _choices(*path):
    """The ``choices`` of option ``path[-1]`` of sub-command ``path[0]``."""
    import argparse

    from perceptron_theory.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    sp = sub.choices[path[0]]
    return tuple(next(a for a in sp._actions if path[1] in a.option_strings).choices)


def test_cli_choices_are_the_registries():
    from perceptron_theory import vocabulary as V
    from perceptron_theory.deep import names
    from perceptron_theory.simulate.online import ENGINES, METHODS
    from perceptron_theory.theory import dynamics, generalization, integrals
    from validation._deep import SIZES

    assert integrals.ACTIVATIONS is V.ACTIVATIONS
    for cmd in ("integrals", "dynamics", "lr-limits", "simulate", "max-lr"):
        assert _choices(cmd, "--activation") == V.ACTIVATIONS
    for cmd in ("dynamics", "lr-limits"):
        assert _choices(cmd, "--method") == dynamics.METHODS + tuple(V.DEPRECATED["dynamics"])
    assert _choices("curve", "--method") == generalization.METHODS + ("bn", "ridge")
    assert _choices("curve", "--student") == generalization.STUDENTS
    for cmd in ("simulate", "max-lr"):
        assert _choices(cmd, "--method") == tuple(METHODS) == V.methods("simulate")
        assert _choices(cmd, "--engine") == ENGINES
    assert _choices("train", "--norm") == names.NORMS
    assert _choices("train", "--model") == names.MODELS
    assert _choices("train", "--dataset") == names.DATASETS
    assert _choices("train", "--schedule") == names.SCHEDULES
    assert _choices("probe", "--probe") == names.PROBES
    assert _choices("reproduce", "--size") == SIZES


def test_kernel_activation_codes_cover_the_one_activation_list():
    from perceptron_theory import vocabulary as V
    from perceptron_theory.simulate import kernels

    assert tuple(kernels.ACTIVATION_CODES) == V.ACTIVATIONS
    assert sorted(kernels.ACTIVATION_CODES.values()) == list(range(len(V.ACTIVATIONS)))


def test_torch_free_names_match_the_torch_registries():
    pytest.importorskip("torch")
    from perceptron_theory.deep import data, models, names, norms, penalties, probes, train

    assert names.NORMS == norms.norm_names()
    assert names.MODELS == tuple(models.MODELS)
    assert names.DATASETS == tuple(data.DATASETS)
    assert names.SCHEDULES == tuple(train.SCHEDULES)
    assert names.PENALTIES == tuple(penalties.PENALTIES)
    assert names.PROBES == tuple(probes.PROBES)


@pytest.mark.parametrize("argv, new", [
    (["dynamics", "--method", "bn", "--activation", "relu", "--lr", "0.5", "--zeta", "0.1",
      "--t-max", "1", "--n-points", "2", "--json"], "wn-decay"),
    (["curve", "--student", "linear", "--method", "ridge", "--alpha", "1.5", "--zeta", "0.1",
      "--json"], "wn-decay"),
])
def test_deprecated_method_names_work_and_say_so(capsys, argv, new):
    import warnings

    with warnings.catch_warnings(record=True) as rec:
        rc, out, _ = run(capsys, *argv)
    assert rc == 0 and json.loads(out)["method"] == new
    assert any(issubclass(w.category, DeprecationWarning) and "deprecated alias" in
               str(w.message) for w in rec)
