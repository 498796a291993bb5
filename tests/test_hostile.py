"""Hostile input (issue 16): no traceback, no hang, no silent NaN.

Two parts:

* one named regression test per case the issue lists (tracebacks, hangs, silent NaN or
  inf with exit 0, exit 0 on a bad argument, run folders, strict JSON, messages naming
  the wrong parameter);
* a fuzz test that draws hostile values for every option of every subcommand *from the
  parser itself* (:func:`perceptron_theory.cli.build_parser`, walked action by action,
  so a new option is fuzzed without editing this file), runs the command in-process
  within a time budget and asserts: exit 0 with strict JSON, or exit 2 with one line on
  stderr. The subcommands whose real work is long (train, probe, reproduce, figure) run
  their argument checks and then a stub of the work; the others run for real, with the
  package's work limit (:data:`perceptron_theory._checks.WORK_LIMIT_S`) lowered to the
  budget so that a size estimated to take longer is refused instead of run. The default
  run draws :data:`FUZZ_EXAMPLES` examples per subcommand; ``pytest -m slow`` draws
  :data:`FUZZ_EXAMPLES_SLOW` (>= 500 in all).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceptron_theory import _checks
from perceptron_theory.cli import build_parser, main

FUZZ_EXAMPLES = 10  # per subcommand, default run
#: per subcommand, `pytest -m slow` (the environment variable PT_FUZZ_EXAMPLES overrides it)
FUZZ_EXAMPLES_SLOW = int(os.environ.get("PT_FUZZ_EXAMPLES", "100"))
BUDGET_S = 60.0  # one command, soft (checked after it returns)
HARD_BUDGET_S = 300.0  # one command, hard: a real hang dumps the stacks and exits
WORK_LIMIT_S = 5.0  # the package's work limit while fuzzing


# ----------------------------------------------------------------------------- helpers
class _Overtime(BaseException):
    """Raised by SIGALRM when a command runs past :data:`BUDGET_S`."""


def _strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity (as strict parsers do)."""
    def refuse(const):
        raise ValueError(f"non-finite JSON constant {const}")

    return json.loads(text, parse_constant=refuse)


def run_cli(*argv, budget: float = BUDGET_S):
    """``(exit status, stdout, stderr, seconds)`` of ``perceptron-theory ARGV`` in-process."""
    out, err = io.StringIO(), io.StringIO()

    def overtime(*_):
        raise _Overtime

    old = signal.signal(signal.SIGALRM, overtime)
    signal.setitimer(signal.ITIMER_REAL, budget)
    faulthandler.dump_traceback_later(HARD_BUDGET_S, exit=True)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse
                rc = exc.code
    except _Overtime:
        rc = "overtime"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0


def assert_clean(argv, rc, out, err, seconds) -> None:
    """Exit 0 (strict JSON with --json) or exit 2 with one line, in bounded time."""
    where = f"perceptron-theory {' '.join(map(str, argv))}"
    assert rc != "overtime" and seconds < BUDGET_S, f"{where}: ran {seconds:.1f} s"
    assert "Traceback" not in err, f"{where}: traceback\n{err}"
    assert rc in (0, 2), f"{where}: exit {rc}\n{err}"
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("perceptron-theory"), \
            f"{where}: not one line\n{err}"
    elif "--json" in argv:
        try:
            _strict_json(out)
        except ValueError as exc:
            raise AssertionError(f"{where}: stdout is not strict JSON ({exc})") from None


def one_line_exit_2(*argv, match: str = ""):
    rc, out, err, seconds = run_cli(*argv)
    assert_clean(argv, rc, out, err, seconds)
    assert rc == 2, f"exit {rc}: {out[:300]}"
    assert match in err, err
    return err


def json_exit_0(*argv):
    rc, out, err, seconds = run_cli(*argv, "--json")
    assert_clean((*argv, "--json"), rc, out, err, seconds)
    assert rc == 0, err
    return _strict_json(out)


@pytest.fixture
def regular_file(tmp_path):
    f = tmp_path / "FILE"
    f.write_text("not a folder")
    return f


def _never(*args, **kwargs):
    raise AssertionError("the work started before the arguments were checked")


# ------------------------------------------------------------------ issue 16: tracebacks
PLOT_COMMANDS = {
    "integrals": (["integrals", "--activation", "relu", "--Q", "1", "--R", "0.5"],
                  "perceptron_theory.theory.integrals", "integrals"),
    "dynamics": (["dynamics", "--method", "bn", "--activation", "relu", "--lr", "0.5"],
                 "perceptron_theory.theory.dynamics", "integrate"),
    "curve": (["curve", "--student", "linear", "--method", "min-norm", "--alpha", "1"],
              "perceptron_theory.theory.generalization", "learning_curve"),
    "simulate": (["simulate", "--method", "bn", "--activation", "relu", "--N", "10",
                  "--online", "--t-max", "1", "--lr", "0.1", "--batch-size", "4"],
                 "perceptron_theory.simulate.online", "run"),
}


@pytest.mark.parametrize("command", sorted(PLOT_COMMANDS))
def test_plot_inside_a_regular_file_is_refused_before_the_work(command, regular_file,
                                                               monkeypatch):
    import importlib

    argv, module, work = PLOT_COMMANDS[command]
    monkeypatch.setattr(importlib.import_module(module), work, _never)
    one_line_exit_2(*argv, "--plot", regular_file / "x.png", match="not a folder")


@pytest.mark.parametrize("bad, match", [("", "non-empty"), ("{dir}", "is a folder"),
                                        ("{dir}/x.nope", "unknown file type"),
                                        ("/proc/no/x.png", "cannot write")])
def test_plot_path_that_cannot_be_written_is_refused(bad, match, tmp_path, monkeypatch):
    from perceptron_theory.theory import integrals

    monkeypatch.setattr(integrals, "integrals", _never)
    one_line_exit_2("integrals", "--activation", "relu", "--Q", "1", "--R", "0.5", "--plot",
                    bad.format(dir=tmp_path), match=match)


def test_reproduce_out_a_regular_file(regular_file):
    one_line_exit_2("reproduce", "--claim", "L-T1", "--out", regular_file,
                    match="not a folder")


def test_train_out_a_regular_file(regular_file):
    pytest.importorskip("torch")
    one_line_exit_2("train", "--dataset", "synthetic", "--out", regular_file,
                    match="not a folder")


def test_dynamics_lr_1e308():
    one_line_exit_2("dynamics", "--method", "bn", "--activation", "relu", "--lr", "1e308",
                    match="lr must be in (0, 1e+06]")


def test_bn_decay_rho_1e308():
    one_line_exit_2("bn-decay", "--batch-size", "8", "--rho", "1e308", match="rho must be in")


def test_lr_limits_zeta_range_of_1e14_points():
    one_line_exit_2("lr-limits", "--method", "bn", "--activation", "relu", "--zeta-range",
                    "0:1:99999999999999", match="N <= 1e+06")


def test_curve_alpha_range_of_1e11_points():
    one_line_exit_2("curve", "--student", "linear", "--method", "min-norm", "--alpha-range",
                    "0.5:2:100000000000", match="N <= 1e+06")


SIM = ["simulate", "--method", "bn", "--activation", "relu", "--lr", "0.1", "--batch-size",
       "4"]
ONLINE = [*SIM, "--online", "--t-max", "1"]


def test_simulate_N_1e12_is_refused_with_the_memory_estimate():
    one_line_exit_2(*ONLINE, "--N", "1000000000000", match="TiB of memory")


def test_simulate_seeds_1e12():
    one_line_exit_2(*ONLINE, "--N", "10", "--seeds", "1000000000000", match="seeds must be")


def test_simulate_n_points_1e12():
    one_line_exit_2(*ONLINE, "--N", "10", "--n-points", "1000000000000", match="n_points")


def test_simulate_online_batch_size_100000():
    # the vector engine no longer allocates the reduced engine's M^2/2 scratch
    rc, out, err, seconds = run_cli(*SIM[:-1], "100000", "--online", "--t-max", "1", "--N",
                                    "10", "--json")
    assert_clean(["--json"], rc, out, err, seconds)
    # the reduced engine needs it, and N - 2 >= M dimensions
    one_line_exit_2(*SIM[:-1], "100000", "--online", "--t-max", "1", "--N", "10",
                    "--engine", "reduced", match="batch_size must be <= N - 2")
    one_line_exit_2(*SIM[:-1], "100000", "--online", "--t-max", "100", "--N", "200000",
                    "--engine", "reduced", match="GiB of memory")


def test_simulate_offline_alpha_1e308():
    one_line_exit_2(*SIM, "--N", "10", "--alpha", "1e308", "--epochs", "1",
                    match="in-memory limit")


@pytest.mark.parametrize("lr_start", ["1e300", "1e-300"])
def test_max_lr_lr_start_out_of_range(lr_start):
    one_line_exit_2("max-lr", "--method", "bn", "--activation", "relu", "--N", "10",
                    "--batch-size", "4", "--lr-start", lr_start, match="lr_start must be in")


def test_max_lr_seeds_1e12():
    one_line_exit_2("max-lr", "--method", "bn", "--activation", "relu", "--N", "10",
                    "--batch-size", "4", "--seeds", "1000000000000", match="seeds must be")


def test_max_lr_without_a_bracket_is_reported_not_raised():
    from perceptron_theory.simulate.max_lr import empirical_max_lr

    res = empirical_max_lr("sgd", "linear", N=20, t_max=1.0, seeds=1, max_evaluations=2,
                           lr_start=1e-6)
    assert not res.converged and "no pass/fail bracket" in res.message
    assert math.isnan(res.lr_max)


def test_train_subset_1e20():
    pytest.importorskip("torch")
    one_line_exit_2("train", "--dataset", "synthetic", "--out", "x", "--subset",
                    "99999999999999999999", match="--subset")


def test_train_subset_too_large_for_memory(tmp_path):
    pytest.importorskip("torch")
    one_line_exit_2("train", "--dataset", "synthetic", "--out", tmp_path / "r", "--subset",
                    "9999999999999999", match="of memory")


def test_probe_unknown_option(tiny_run):
    one_line_exit_2("probe", "--checkpoint", tiny_run, "--probe", "norms", "--option",
                    "foo=1", match="unknown key 'foo'")


def test_probe_on_cuda_without_cuda(tiny_run):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    one_line_exit_2("probe", "--checkpoint", tiny_run, "--probe", "norms", "--device", "cuda",
                    match="CUDA is not available")


def test_train_on_cuda_without_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    one_line_exit_2("train", "--dataset", "synthetic", "--out", tmp_path / "r", "--device",
                    "cuda", match="CUDA is not available")


def test_reproduce_seed_minus_1(tmp_path):
    one_line_exit_2("reproduce", "--claim", "L-prior", "--seed", "-1", "--out", tmp_path,
                    match="seed must be")
    assert not (tmp_path / "results.json").exists()


# ------------------------------------------------------------------------ issue 16: hangs
DYN = ["dynamics", "--method", "bn", "--activation", "relu", "--lr", "0.5"]


@pytest.mark.parametrize("extra, match", [(["--zeta", "1e308"], "zeta must be in"),
                                          (["--t-max", "1e308"], "t_max must be in")])
def test_dynamics_that_hung_is_refused_at_once(extra, match):
    t0 = time.perf_counter()
    one_line_exit_2(*DYN, *extra, match=match)
    assert time.perf_counter() - t0 < 5.0


def test_max_lr_N_1e12_is_refused_with_the_time_estimate():
    t0 = time.perf_counter()
    one_line_exit_2("max-lr", "--method", "bn", "--activation", "relu", "--N",
                    "1000000000000", "--batch-size", "4", match="would take about")
    assert time.perf_counter() - t0 < 5.0


def test_dynamics_solver_budget_is_a_one_line_error(monkeypatch):
    from perceptron_theory.theory import dynamics

    monkeypatch.setattr(dynamics, "MAX_EVALUATIONS", 50)
    one_line_exit_2(*DYN, "--t-max", "1e6", match="gave up after 50 evaluations")


# ------------------------------------------------------- issue 16: silent NaN with exit 0
def test_integrals_Q_1e308():
    one_line_exit_2("integrals", "--activation", "relu", "--Q", "1e308", "--R", "0.5",
                    match="Q must be in")


def test_lr_limits_reversed_zeta_range():
    rows = json_exit_0("lr-limits", "--method", "bn", "--activation", "relu", "--zeta-range",
                       "1:0:5")
    assert [r["zeta"] for r in rows] == [1.0, 0.75, 0.5, 0.25, 0.0]
    for r in rows:  # inf is not JSON: null, with its meaning in exact_status
        assert (r["eta_max_exact"] is None) == (r["exact_status"] != "found")


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_lr_limits_zeta_1e6(activation):
    d = json_exit_0("lr-limits", "--method", "bn", "--activation", activation, "--zeta", "1e6")
    assert d["exact_status"] in ("found", "never", "not converged")
    assert (d["eta_max_exact"] is None) == (d["exact_status"] != "found")


def test_curve_min_norm_alpha_1e308():
    one_line_exit_2("curve", "--student", "linear", "--method", "min-norm", "--alpha",
                    "1e308", match="alpha must be in")


def _curve_is_honest(d):
    for eps, ok in zip(d["eps"], d["converged"], strict=True):
        assert ok == (eps is not None) or not ok, d  # no null eps reported as converged


@pytest.mark.parametrize("argv", [
    ["--student", "relu", "--method", "min-norm", "--alpha", "1", "--noise", "1"],
    ["--student", "relu", "--method", "bn", "--alpha", "2", "--batch-size", "2"],
    ["--student", "relu", "--method", "replica", "--alpha", "0.01"],
    ["--student", "relu", "--method", "replica", "--alpha", "1000"],
    ["--student", "linear", "--method", "ridge", "--alpha", "1e6", "--zeta", "1e-12"],
    ["--student", "linear", "--method", "replica", "--alpha", "1", "--zeta", "0.1",
     "--beta", "1e12"],
    ["--student", "linear", "--method", "min-norm", "--alpha", "1", "--noise", "1"],
], ids=["relu-min-norm-noise", "relu-bn-M2", "relu-replica-0.01", "relu-replica-1000",
        "ridge-tiny-zeta", "replica-beta-1e12", "interpolation-peak"])
def test_curve_never_reports_nan_as_converged(argv):
    d = json_exit_0("curve", *argv)
    _curve_is_honest(d)


def test_curve_replica_beta_1e308():
    one_line_exit_2("curve", "--student", "linear", "--method", "replica", "--alpha", "1",
                    "--zeta", "0.1", "--beta", "1e308", match="beta must be inf or in")


def test_curve_interpolation_peak_is_reported():
    d = json_exit_0("curve", "--student", "linear", "--method", "min-norm", "--alpha", "1",
                    "--noise", "1")
    assert d["eps"] == [None] and d["converged"] == [False] and "alpha = 1" in d["note"]


def test_simulate_gamma_init_0_is_strict_json():
    json_exit_0(*ONLINE, "--N", "10", "--gamma-init", "0")


def test_simulate_offline_alpha_1e_320():
    one_line_exit_2(*SIM, "--N", "10", "--alpha", "1e-320", "--epochs", "1",
                    match="batch_size must be <= P")
    d = json_exit_0("simulate", "--method", "wn", "--activation", "relu", "--lr", "0.1",
                    "--N", "10", "--alpha", "1e-320", "--epochs", "1", "--seeds", "2")
    assert d["P"] == 1


def test_dynamics_gamma_leaving_its_domain_is_reported():
    d = json_exit_0("dynamics", "--method", "bn", "--activation", "linear", "--lr", "3.99",
                    "--zeta", "0.1", "--R-init", "-1")
    assert d["status"] == -1 and "left (0, inf)" in d["message"] and None in d["eps"]


# ----------------------------------------------------- issue 16: exit 0 on a bad argument
@pytest.mark.parametrize("argv", [
    ["integrals", "--activation", "relu", "--Q", "1", "--R", "0.5", "--plot", ""],
    ["reproduce", "--claim", "L-T1", "--out", ""],
    ["figure", "lr_limits", "--size", "tiny", "--out", ""],
    ["train", "--dataset", "synthetic", "--out", ""],
    ["probe", "--checkpoint", "", "--probe", "norms"],
], ids=["plot", "reproduce-out", "figure-out", "train-out", "checkpoint"])
def test_empty_path_is_refused(argv):
    if argv[0] in ("train", "probe"):
        pytest.importorskip("torch")
    one_line_exit_2(*argv, match="non-empty path")


@pytest.mark.parametrize("holds", [(), ("config.json",)], ids=["empty", "config-only"])
def test_probe_on_a_folder_without_a_run(holds, tiny_run, tmp_path):
    for name in holds:
        (tmp_path / name).write_bytes((Path(tiny_run) / name).read_bytes())
    one_line_exit_2("probe", "--checkpoint", tmp_path, "--probe", "norms", match="not found")


def test_figure_size_is_checked_for_every_figure_before_the_first(tmp_path, monkeypatch):
    import importlib

    from paper_figures import FIGURES

    for module in FIGURES.values():
        monkeypatch.setattr(importlib.import_module(module), "main", _never)
    one_line_exit_2("figure", "all", "--size", "quick", "--out", tmp_path, match="--size")


# -------------------------------------------------------------- issue 16: strict JSON etc.
def test_simulate_json_has_no_nan():
    d = json_exit_0(*ONLINE, "--N", "10")
    assert d["t_diverged"] == [None] * 4 and d["diverged"] == [False] * 4


def test_lr_limits_zeta_1e308_names_zeta():
    one_line_exit_2("lr-limits", "--method", "bn", "--activation", "relu", "--zeta", "1e308",
                    match="zeta must be in [0, 1e+06]")


def test_simulate_seed_minus_1_names_seed():
    err = one_line_exit_2(*ONLINE, "--N", "10", "--seed", "-1", match="seed must be")
    assert "seeds" not in err


def test_non_finite_float_options_are_refused_by_name():
    one_line_exit_2(*DYN, "--zeta", "nan", match="--zeta must be a finite number")
    one_line_exit_2("bn-decay", "--batch-size", "8", "--sigma-P=-inf",
                    match="--sigma-P must be a finite number")


def test_an_internal_error_is_one_line_with_exit_1(monkeypatch):
    from perceptron_theory.theory import integrals

    def boom(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(integrals, "integrals", boom)
    rc, out, err, _ = run_cli("integrals", "--activation", "relu", "--Q", "1", "--R", "0")
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "internal error" in err


def test_keyboard_interrupt_is_one_line_exit_130(monkeypatch):
    from perceptron_theory.theory import integrals

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(integrals, "integrals", interrupted)
    rc, out, err, _ = run_cli("integrals", "--activation", "relu", "--Q", "1", "--R", "0")
    assert rc == 130 and err.strip().splitlines() == ["perceptron-theory: interrupted"]


# ------------------------------------------------------------------ issue 16: run folders
TRAIN = ["train", "--model", "cnn", "--model-option", "channels=[4,4,8,8]", "--model-option",
         "hidden=16", "--dataset", "synthetic", "--subset", "200", "--batch-size", "32",
         "--schedule", "constant", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished two-epoch run folder (a few seconds)."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("tiny") / "run"
    rc, _, err, _ = run_cli(*TRAIN, "--epochs", "2", "--out", out)
    assert rc == 0, err
    return str(out)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    import shutil

    return shutil.copytree(tiny_run, tmp_path / "run")


def test_second_writer_is_refused_naming_the_holder(run_copy):
    import socket

    from perceptron_theory.deep._runfolder import RunLock

    with RunLock(run_copy):
        err = one_line_exit_2(*TRAIN, "--epochs", "3", "--resume", "--out", run_copy,
                              match="is in use by")
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in err
    assert not (run_copy / ".lock").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(run_copy, caplog):
    (run_copy / ".lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": "gone",
                                                "since": "2020-01-01T00:00:00"}))
    rc, _, err, _ = run_cli(*TRAIN, "--epochs", "2", "--resume", "--out", run_copy)
    assert rc == 0, err
    assert "taking over the lock left by pid 4206649 on host gone" in caplog.text
    assert not (run_copy / ".lock").exists()


def test_resume_with_config_json_deleted_compares_the_checkpoint(run_copy):
    (run_copy / "config.json").unlink()
    one_line_exit_2(*TRAIN, "--epochs", "2", "--resume", "--lr", "0.05", "--out", run_copy,
                    match="config differs from the one stored in")


def test_resume_with_fewer_epochs_than_done_is_refused(run_copy):
    before = (run_copy / "config.json").read_text()
    one_line_exit_2(*TRAIN, "--epochs", "1", "--resume", "--out", run_copy,
                    match="fewer than the 2 epochs already done")
    assert (run_copy / "config.json").read_text() == before


def test_stale_temporary_files_are_removed(run_copy):
    for name in (".checkpoint.pt.k1ll3d.tmp", ".log.jsonl.x.tmp"):
        (run_copy / name).write_bytes(b"partial")
    rc, _, err, _ = run_cli(*TRAIN, "--epochs", "2", "--resume", "--out", run_copy)
    assert rc == 0, err
    assert not list(run_copy.glob(".*.tmp"))


def test_checkpoint_without_the_expected_keys(run_copy):
    import torch

    ckpt = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    del ckpt["rng"], ckpt["optimizer"]
    torch.save(ckpt, run_copy / "checkpoint.pt")
    one_line_exit_2(*TRAIN, "--epochs", "3", "--resume", "--out", run_copy,
                    match="incomplete checkpoint, missing or malformed optimizer, rng")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "pickle"])
def test_corrupt_checkpoint_is_one_clear_line(damage, run_copy):
    import pickle

    path = run_copy / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "garbage": os.urandom(512),
                      "empty": b"", "pickle": pickle.dumps({"format": 1, "x": os.urandom})
                      }[damage])
    err = one_line_exit_2(*TRAIN, "--epochs", "3", "--resume", "--out", run_copy,
                          match="not a usable checkpoint")
    assert "weights_only=False" not in err
    one_line_exit_2("probe", "--checkpoint", run_copy, "--probe", "norms",
                    match="not a usable checkpoint")


# ---------------------------------------------------------------------------- the fuzz
FLOATS = ["nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e400", "1e-320", "-1e-320",
          "0", "-0.0", "-1", "1e300", "1e-300", "1e30", "1e15", "1e9", "1e6", "0.5", "2",
          "3.99", "", "1,5", "0x10", "one"]
INTS = ["-1", "0", "1", "2", "3", "7", "2147483647", "2147483648", "9007199254740993",
        "9223372036854775807", "9223372036854775808", "99999999999999999999", "-2" + "0" * 20,
        "", "1.5", "1e3", "x"]
STRINGS = ["", " ", "-", "--", "x" * 300, "\u00fc\u00e9/\u00df", "a b", "../up", "/proc/x",
           "FILE/x.png", "FILE", "nan", "1e308", "-1", "k=v", "=", "x=nan", "x=1e308",
           "x=[1,2", "gamma-decay=nan", "embedding-l2=-1", "bn", "cuda", "cpu", "out.png",
           "dir/out.svg", "x.nope"]


def _float_text():
    return st.one_of(st.sampled_from(FLOATS), st.floats().map(repr),
                     st.floats(-10, 10).map(repr))


def _int_text():
    return st.one_of(st.sampled_from(INTS), st.integers(-3, 40).map(str),
                     st.integers().map(str))


def _text():
    return st.one_of(st.sampled_from(STRINGS), st.text(max_size=12).filter(
        lambda s: "\x00" not in s))


def _hostile(action):
    if action.choices:
        return st.one_of(st.sampled_from(sorted(map(str, action.choices))), _text())
    if action.type is float:
        return _float_text()
    if action.type is int:
        return _int_text()
    if action.type is None:
        return _text()
    # any other type (e.g. the A:B:N ranges): compose from the hostile pieces
    return st.one_of(_text(), st.builds("{}:{}:{}".format, _float_text(), _float_text(),
                                        _int_text()))


def _registry_names(dest: str) -> list:
    """Valid values of free-text options, from the package's registries (STYLE.md 5)."""
    if dest == "claim":
        import validation

        return sorted(validation.load_all())
    try:
        if dest == "probe":
            from perceptron_theory.deep.probes import PROBES as names
        elif dest == "model":
            from perceptron_theory.deep.models import MODELS as names
        elif dest == "norm":
            from perceptron_theory.deep.norms import NORMS as names
        elif dest == "dataset":
            from perceptron_theory.deep.data import DATASETS as names
        elif dest == "schedule":
            from perceptron_theory.deep.train import SCHEDULES as names
        else:
            return []
    except ImportError:  # no torch
        return []
    return sorted(names)


def _sane(action, tiny_run):
    """A plausible value: the default, a valid choice, or a small number or a path."""
    if action.choices:
        return st.sampled_from(sorted(map(str, action.choices)))
    names = _registry_names(action.dest)
    if names:
        return st.sampled_from(names)
    if action.dest in _checks.OUTPUT_FILE_OPTIONS:
        return st.just("plot.png")
    if action.dest in _checks.OUTPUT_DIR_OPTIONS:
        return st.just("outdir")
    if action.dest == "checkpoint":
        return st.just(tiny_run or "no-run")
    if action.default is not None and not isinstance(action.default, bool | list):
        return st.just(str(action.default))
    if action.type is float:
        return st.sampled_from(["0.5", "1", "0.1"])
    if action.type is int:
        return st.sampled_from(["4", "8", "16"])
    if action.type not in (None, str):
        return st.sampled_from(["0:1:3", "0.5:2:2"])
    return st.sampled_from(["x", "1"])


def subcommands() -> dict:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


#: A cheap valid command per subcommand, which the fuzz mutates option by option (so that
#: examples get past the parser and the checks); options are still read from the parser,
#: and a subcommand without a base is fuzzed from nothing.
BASES = {
    "integrals": {"--activation": "relu", "--Q": "1", "--R": "0.5"},
    "dynamics": {"--method": "bn", "--activation": "relu", "--lr": "0.5", "--t-max": "5",
                 "--n-points": "11"},
    "lr-limits": {"--method": "bn", "--activation": "relu", "--zeta": "0.25", "--fast": True},
    "bn-decay": {"--batch-size": "8"},
    "curve": {"--student": "linear", "--method": "ridge", "--alpha": "1.5", "--zeta": "0.1"},
    "simulate": {"--method": "bn", "--activation": "relu", "--N": "16", "--lr": "0.1",
                 "--batch-size": "4", "--online": True, "--t-max": "2", "--seeds": "2"},
    "max-lr": {"--method": "sgd", "--activation": "linear", "--N": "16", "--t-max": "2",
               "--seeds": "2"},
    "train": {"--dataset": "synthetic", "--out": "run", "--epochs": "1", "--subset": "64",
              "--batch-size": "16"},
    "probe": {"--checkpoint": "TINY", "--probe": "norms"},
    "reproduce": {"--size": "tiny", "--out": "rep", "--claim": "L-T1"},
    "figure": {None: "lr_limits", "--size": "tiny", "--out": "figs"},
}


@st.composite
def argv_for(draw, name: str, tiny_run):
    """``[name, options...]`` for every action of the subcommand's parser: an option of
    :data:`BASES` is kept (8/10), dropped (1/10) or given a hostile value (1/10); any
    other option is left out (16/20) or given a plausible (3/20) or hostile (1/20) value:
    about one hostile value per example, so that most examples test it deep inside."""
    base = BASES.get(name, {})
    argv = [name]
    for action in subcommands()[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            key = next((f for f in action.option_strings if f in base), "missing")
        else:  # a positional: BASES keys it None
            key = None if None in base else "missing"
        roll = draw(st.integers(0, 19))
        if key != "missing":
            if roll <= 15 or (roll <= 17 and action.required):
                op = "keep"
            else:
                op = "drop" if roll <= 17 else "hostile"
        else:
            op = "absent" if roll <= 15 else ("sane" if roll <= 18 else "hostile")
            if op == "absent" and (action.required or not action.option_strings):
                op = "sane"
        if op in ("drop", "absent"):
            continue
        if op == "keep":
            value = base[key]
            value = tiny_run if value == "TINY" else value
        elif action.nargs == 0:
            value = True
        elif op == "sane":
            value = draw(_sane(action, tiny_run))
        else:
            value = draw(_hostile(action))
        if not action.option_strings:
            argv.append(value)
            continue
        flag = key if op == "keep" else draw(st.sampled_from(action.option_strings))
        n = draw(st.integers(1, 2)) if isinstance(action, argparse._AppendAction) else 1
        for _ in range(n):
            argv += [flag] if value is True else [flag, value]
    return argv


def _stub_long_work(monkeypatch, name: str) -> None:
    """Replace the work of train, probe, reproduce and figure by a quick stub that runs
    after their argument checks."""
    if name == "train":
        from perceptron_theory.deep import train as T

        def stub_train(config, out_dir, *args, **kwargs):
            return T.TrainResult(final={"epoch": 0}, history=(), out_dir=str(out_dir),
                                 epochs_done=0)

        monkeypatch.setattr(T, "_train", stub_train)
    elif name == "probe":
        from perceptron_theory.deep import probes as P

        def stub_probe(run_dir, probe, *, options=None, device="cpu"):
            P.load_run(run_dir, device)  # the checkpoint and its config are read
            return {"probe": probe, "run_dir": str(run_dir), "epoch": 0, "options": options,
                    "result": {"x": 1.0}}

        monkeypatch.setattr(P, "run_probe", stub_probe)
    elif name == "reproduce":
        import validation
        from validation import report
        from validation._core import Check, CheckResult

        def quick(claim, title):
            return lambda quick=True, seed=0: CheckResult(claim, title, ())

        real = validation.load_all()
        fake = {k: Check(k, c.title, quick(k, c.title)) for k, c in real.items()}
        monkeypatch.setattr(report, "load_all", lambda: fake)
    elif name == "figure":
        import importlib

        from paper_figures import FIGURES

        for module in FIGURES.values():
            monkeypatch.setattr(importlib.import_module(module), "main",
                                lambda out_dir, size="full": [])


FUZZ_STATS: dict = {}
#: Keys of a result that explain a ``null`` (a quantity that could not be computed).
EXPLAINING_FLAGS = {"converged", "diverged", "status", "exact_status", "t_diverged",
                    "epoch_diverged", "message"}


def _has_nonfinite(obj) -> bool:
    if isinstance(obj, float | np.floating):
        return not math.isfinite(obj)
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind == "f" and not np.all(np.isfinite(obj))
    if isinstance(obj, dict):
        return any(_has_nonfinite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_has_nonfinite(v) for v in obj)
    if hasattr(obj, "to_dict"):
        return _has_nonfinite(obj.to_dict())
    return False


def _flags(obj) -> set:
    """Every dict key anywhere in ``obj``."""
    if isinstance(obj, dict):
        return set(obj).union(*(_flags(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_flags(v) for v in obj)) if obj else set()
    return set()


def _fuzz(name: str, n_examples: int, tmp_path, monkeypatch, tiny_run, derandomize: bool):
    if name in ("train", "probe"):
        pytest.importorskip("torch")
    _stub_long_work(monkeypatch, name)
    monkeypatch.setattr(_checks, "WORK_LIMIT_S", WORK_LIMIT_S)
    counter = iter(range(10**9))
    errors: dict = {}
    # NaN/inf turned into null in the JSON must come with a flag that explains it
    replaced = []
    real_finite_or_none = _checks.finite_or_none

    depth = [0]

    def watching(obj):  # finite_or_none recurses through its module's name: top level only
        depth[0] += 1
        try:
            clean = real_finite_or_none(obj)
        finally:
            depth[0] -= 1
        if depth[0] == 0 and _has_nonfinite(obj):
            replaced.append(clean)
        return clean

    monkeypatch.setattr(_checks, "finite_or_none", watching)
    stats = FUZZ_STATS.setdefault(name, {"examples": 0, "exit 0": 0, "exit 2": 0,
                                         "seconds": 0.0, "slowest": 0.0})

    @settings(max_examples=n_examples, deadline=None, derandomize=derandomize,
              database=None, suppress_health_check=list(HealthCheck))
    @given(argv=argv_for(name, tiny_run))
    def one(argv):
        box = tmp_path / f"ex{next(counter)}"  # a fresh working folder per example
        box.mkdir()
        (box / "FILE").write_text("a regular file")
        monkeypatch.chdir(box)
        replaced.clear()
        rc, out, err, seconds = run_cli(*argv)
        assert_clean(argv, rc, out, err, seconds)
        for obj in replaced:
            assert _flags(obj) & EXPLAINING_FLAGS, \
                f"{argv}: NaN/inf turned into null without a flag saying why: {obj}"
        if rc == 2:
            why = err.split("error: ", 1)[-1]
            errors[why[:40]] = errors.get(why[:40], 0) + 1
        stats["examples"] += 1
        stats[f"exit {rc}"] += 1
        stats["seconds"] += seconds
        stats["slowest"] = max(stats["slowest"], seconds)

    one()
    top = sorted(errors.items(), key=lambda kv: -kv[1])[:4]
    print(f"fuzz {name}: {stats}; most frequent refusals: {top}")


SUBCOMMANDS = sorted(subcommands())


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_fuzz_every_option_of_every_subcommand(name, tmp_path, monkeypatch, request):
    tiny = request.getfixturevalue("tiny_run") if name == "probe" else None
    _fuzz(name, FUZZ_EXAMPLES, tmp_path, monkeypatch, tiny, derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_fuzz_every_option_of_every_subcommand_slow(name, tmp_path, monkeypatch, request):
    tiny = request.getfixturevalue("tiny_run") if name == "probe" else None
    _fuzz(name, FUZZ_EXAMPLES_SLOW, tmp_path, monkeypatch, tiny, derandomize=False)


def test_fuzz_covers_every_subcommand():
    """The fuzz reads its subcommands from the parser: all of them are parametrized."""
    assert len(SUBCOMMANDS) * FUZZ_EXAMPLES_SLOW >= 500 or "PT_FUZZ_EXAMPLES" in os.environ
    assert {"integrals", "dynamics", "simulate", "train", "reproduce"} <= set(SUBCOMMANDS)
