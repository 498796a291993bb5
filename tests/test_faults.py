"""Faults in long work (issue 16): kills, interrupts and two writers on one folder.

A ``train`` run is started as a child process and killed (SIGKILL) at seeded random
moments of its training and at fixed points of a checkpoint write (half the bytes
written; all written but not yet renamed); ``--resume`` must then finish with weights,
optimizer state and log equal, bit for bit, to an uninterrupted run. SIGINT must leave a
resumable run and print one line (exit 130). A second writer on a locked folder is
refused; ``reproduce`` interrupted leaves no ``results.json`` or ``report.md``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perceptron_theory.cli import main

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6
TRAIN = ["train", "--model", "cnn", "--model-option", "channels=[4,4,8,8]", "--model-option",
         "hidden=16", "--dataset", "synthetic", "--subset", "600", "--batch-size", "32",
         "--schedule", "cosine", "--augment", "--device", "cpu", "--threads", "1", "--seed",
         "3", "--epochs", str(EPOCHS)]

#: The child: the CLI, optionally killing itself inside the n-th write of checkpoint.pt.
CHILD = r"""
import os, signal, sys

mode, n = os.environ.get("PT_KILL_MODE", ""), int(os.environ.get("PT_KILL_AT", "0"))
count = [0]


def is_checkpoint_tmp(fd):
    return ".checkpoint.pt." in os.readlink(f"/proc/self/fd/{fd}")


if mode == "before-rename":  # every byte written and synced, not yet renamed
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("checkpoint.pt"):
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    os.replace = replace
elif mode == "mid-write":  # half of the bytes written
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            os.fsync(self.f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        if is_checkpoint_tmp(fd):
            count[0] += 1
            if count[0] == n:
                return Half(f)
        return f

    os.fdopen = fdopen
elif mode == "slow-check":  # reproduce with a check that takes a minute
    import time

    import validation
    from validation import report
    from validation._core import Check, CheckResult

    def slow(quick=True, seed=0):
        time.sleep(60)
        return CheckResult("SLOW", "slow", ())

    report.load_all = lambda: {"SLOW": Check("SLOW", "slow", slow)}

from perceptron_theory.cli import main

sys.exit(main(sys.argv[1:]))
"""


def cli(*argv):
    """In-process ``perceptron-theory ARGV``: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def child(argv, **env):
    """Start the CLI in a child process (stderr captured)."""
    e = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
         **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, "-c", CHILD, *map(str, argv)], env=e,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc, timeout: float = 300.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, f"child ended early: {proc.stderr.read()}"
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.02)


def _drop_time(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "time"}


def assert_same_run(a: Path, b: Path) -> None:
    """Weights, optimizer state, schedule, RNG states and log of two run folders equal."""
    import torch

    from perceptron_theory.deep.train import load_checkpoint

    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert ca["epoch"] == cb["epoch"] == EPOCHS
    assert ca["schedule"] == cb["schedule"]
    assert ca["model"].keys() == cb["model"].keys()
    for key in ca["model"]:
        assert torch.equal(ca["model"][key], cb["model"][key]), key
    for sa, sb in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values(),
                      strict=True):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
    la = [_drop_time(json.loads(s)) for s in (a / "log.jsonl").read_text().splitlines()]
    lb = [_drop_time(json.loads(s)) for s in (b / "log.jsonl").read_text().splitlines()]
    assert la == lb and [x["epoch"] for x in la] == list(range(1, EPOCHS + 1))
    assert json.loads((a / "config.json").read_text()) == json.loads(
        (b / "config.json").read_text())
    assert not list(b.glob(".*.tmp")) and not (b / ".lock").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, and its training time in seconds (the epochs' times)."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("reference") / "run"
    rc, _, err = cli(*TRAIN, "--out", out)
    assert rc == 0, err
    log = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    return out, sum(line["time"] for line in log)


linux_only = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
deep = pytest.mark.deep


def _kill_resume(reference, tmp_path, kill, **env):
    ref, _ = reference
    out = tmp_path / "run"
    proc = child([*TRAIN, "--out", out], **env)
    kill(proc, out)
    rc = proc.wait(timeout=600)
    assert rc == -signal.SIGKILL, f"exit {rc}: {proc.stderr.read()}"
    done = [p for p in out.iterdir() if p.name == "checkpoint.pt"]
    print(f"killed with {len(done) and __import__('torch').load(done[0])['epoch']} epochs "
          f"checkpointed; left {sorted(p.name for p in out.glob('.*'))}")
    rc, _, err = cli(*TRAIN, "--out", out, "--resume")
    assert rc == 0, err
    assert_same_run(ref, out)
    return out


@deep
@linux_only
@pytest.mark.parametrize("mode, at", [("mid-write", 2), ("before-rename", 4)])
def test_kill_during_a_checkpoint_write_then_resume_is_bit_identical(mode, at, reference,
                                                                    tmp_path):
    def let_it_kill_itself(proc, out):
        pass

    _kill_resume(reference, tmp_path, let_it_kill_itself, PT_KILL_MODE=mode, PT_KILL_AT=at)


def _random_kill(seed):
    def kill(proc, out):
        wait_for(out / "config.json", proc)  # written just before the first epoch
        time.sleep(random.Random(seed).uniform(0.0, 1.0) * kill.train_seconds)
        proc.send_signal(signal.SIGKILL)
    return kill


@deep
@linux_only
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(seed, reference, tmp_path):
    kill = _random_kill(seed)
    kill.train_seconds = reference[1] * 0.9  # a moment inside the training
    _kill_resume(reference, tmp_path, kill)


@deep
@linux_only
def test_sigint_prints_one_line_and_leaves_a_resumable_run(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    proc = child([*TRAIN, "--out", out])
    wait_for(out / "checkpoint.pt", proc)  # one epoch done
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=600)
    err = proc.stderr.read()
    assert rc == 130, err
    assert err.strip().splitlines() == ["perceptron-theory: interrupted; the run folder "
                                        "resumes with the same command and --resume"]
    assert not (out / ".lock").exists() and not list(out.glob(".*.tmp"))
    rc, _, err = cli(*TRAIN, "--out", out, "--resume")
    assert rc == 0, err
    assert_same_run(ref, out)


@deep
@linux_only
def test_a_second_writer_on_the_same_folder_is_refused(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    proc = child([*TRAIN, "--out", out])
    wait_for(out / ".lock", proc)
    holder = json.loads((out / ".lock").read_text())
    assert holder["pid"] == proc.pid
    rc, _, err = cli(*TRAIN, "--out", out, "--resume")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"is in use by pid {proc.pid} on host {holder['host']}" in err
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert_same_run(ref, out)  # the first writer's run is intact
    ckpt_config = json.loads(__import__("torch").load(out / "checkpoint.pt",
                                                      weights_only=True)["config"])
    assert json.loads((out / "config.json").read_text()) == ckpt_config


# ------------------------------------------------------------------------------ reproduce
@linux_only
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_reproduce_leaves_no_partial_report(sig, tmp_path):
    out = tmp_path / "rep"
    proc = child(["reproduce", "--out", out, "--no-cache"], PT_KILL_MODE="slow-check")
    wait_for(out, proc)  # created when the checks start
    time.sleep(0.5)
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    err = proc.stderr.read()
    if sig == signal.SIGINT:
        assert rc == 130 and err.strip().splitlines() == [
            "perceptron-theory: interrupted; results.json and report.md were left as they "
            "were"], err
    else:
        assert rc == -signal.SIGKILL
    assert sorted(p.name for p in out.iterdir()) == []


def test_reproduce_removes_temporary_files_of_a_killed_writer(tmp_path, monkeypatch):
    from validation import report
    from validation._core import Check, CheckResult

    monkeypatch.setattr(report, "load_all", lambda: {"X": Check(
        "X", "x", lambda quick=True, seed=0: CheckResult("X", "x", ()))})
    out = tmp_path / "rep"
    out.mkdir()
    stale, fresh = out / ".results.json.old.tmp", out / ".report.md.new.tmp"
    for p in (stale, fresh):
        p.write_text("partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    rc, _, err = cli("reproduce", "--out", out, "--no-cache")
    assert rc == 0, err
    assert not stale.exists() and fresh.exists()  # a fresh one may be another writer's
    assert json.loads((out / "results.json").read_text())["checks"][0]["claim"] == "X"
