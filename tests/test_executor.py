"""The run store, the executors (serial, local pool, Dask) and the sweep command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from perceptron_theory import executor as ex
from perceptron_theory.store import Store, unit_key

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _importable_units(monkeypatch):
    """Worker processes import ``_units`` from this folder."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), path) if p))
    monkeypatch.syspath_prepend(str(HERE))


def _sim_units(n_lr=2, seeds=(0, 1)):
    """A small grid of real simulation cells (online BN, erf)."""
    units = []
    for lr in [0.5, 1.0, 1.5][:n_lr]:
        for s in seeds:
            opts = {"method": "bn", "activation": "erf", "online": True, "N": 100,
                    "t-max": 0.5, "n-points": 3, "lr": lr, "batch-size": 4, "seed": s,
                    "seeds": 1}
            units.append(ex.Unit("perceptron_theory.sweep:run_command",
                                 {"command": "simulate", "options": opts}, kind="sweep"))
    return units


def _log_lines(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


# ----------------------------------------------------------------------------- store
def test_store_roundtrip_and_corrupt_entries(tmp_path):
    st = Store(tmp_path)
    key = unit_key("m:f", {"a": 1})
    assert key != unit_key("m:f", {"a": 2}) and key != unit_key("m:g", {"a": 1})
    assert st.get("unit", key) is None
    st.put("unit", key, {"y": [1.0, float("nan")]}, config={"a": 1})
    got = st.get("unit", key)
    assert got["y"][0] == 1.0 and got["y"][1] != got["y"][1]  # NaN kept
    path = st.path("unit", key)
    path.write_text(path.read_text()[:40])  # truncated: a kill mid-write
    assert st.get("unit", key) is None
    st.put("unit", key, {"y": 1})
    entry = json.loads(path.read_text())
    entry["payload"]["y"] = 2  # edited: the checksum no longer matches
    path.write_text(json.dumps(entry))
    assert st.get("unit", key) is None


def test_run_units_serves_the_store_and_recomputes_a_truncated_entry(tmp_path):
    log = tmp_path / "log"
    units = [ex.Unit("_units:square", {"x": x, "log": str(log)}) for x in range(5)]
    st = Store(tmp_path / "store")
    first = ex.run_units(units, store=st, executor=ex.SerialExecutor())
    assert [r["y"] for r in first] == [0, 1, 4, 9, 16]
    assert ex.run_units.last_stats == {"stored": 0, "ran": 5}
    again = ex.run_units(units, store=st, executor=ex.SerialExecutor())
    assert again == first and ex.run_units.last_stats == {"stored": 5, "ran": 0}
    p = st.path("unit", units[2].key)
    p.write_text(p.read_text()[: len(p.read_text()) // 2])
    third = ex.run_units(units, store=st, executor=ex.SerialExecutor())
    assert third == first and ex.run_units.last_stats == {"stored": 4, "ran": 1}
    assert sorted(_log_lines(log)) == [0, 1, 2, 2, 3, 4]
    ex.run_units(units, store=st, executor=ex.SerialExecutor(), rerun=True)
    assert ex.run_units.last_stats == {"stored": 0, "ran": 5}


def test_unit_names_are_checked():
    with pytest.raises(ValueError, match="package.module:name"):
        ex.Unit("no_colon")
    with pytest.raises(ValueError, match="executor must be"):
        ex.get_executor("threads")
    with pytest.raises(ValueError, match="workers must be"):
        ex.LocalExecutor(0)


# ----------------------------------------------------------------------------- executors
def test_local_pool_equals_serial_bit_for_bit():
    units = _sim_units()
    serial = ex.run_units(units, executor=ex.SerialExecutor(threads=1))
    with ex.LocalExecutor(2) as pool:
        par = ex.run_units(units, executor=pool)
    assert json.dumps(par) == json.dumps(serial)


def test_local_pool_survives_a_killed_worker(tmp_path):
    log, marker = tmp_path / "log", tmp_path / "crashed"
    units = [ex.Unit("_units:square", {"x": x, "log": str(log),
                                       **({"crash_marker": str(marker)} if x == 3 else {})})
             for x in range(8)]
    st = Store(tmp_path / "store")
    with ex.LocalExecutor(2) as pool:
        res = ex.run_units(units, executor=pool, store=st)
    assert marker.exists()  # the worker running x = 3 was killed
    assert [r["y"] for r in res] == [x * x for x in range(8)]
    assert st.count("unit") == 8
    ran = _log_lines(log)
    assert sorted(set(ran)) == list(range(8))
    assert len(ran) - 8 <= 2  # only units in flight when the pool broke ran twice


_ORPHAN_SCRIPT = """
import sys, threading
from perceptron_theory import executor as ex

def main():
    ex.LocalExecutor(1).map([ex.Unit("_units:sleep_forever", {"pid_file": sys.argv[1]})])

if __name__ == "__main__":
    if sys.argv[2] == "thread":  # workers spawned from another thread: no PDEATHSIG
        t = threading.Thread(target=main)
        t.start()
        t.join()
    else:
        main()
"""


def _alive(pid: int) -> bool:
    """Running (a zombie that no one reaps counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.parametrize("spawner", ["main", "thread"])
def test_local_pool_workers_end_with_their_parent(tmp_path, spawner):
    """SIGKILL of the process that runs a pool ends its workers within seconds, from
    the main thread (PR_SET_PDEATHSIG on Linux) or another one (the parent watch)."""
    import signal
    import subprocess
    import sys
    import time

    script, pid_file = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file), spawner])
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None and time.monotonic() < deadline, "no worker started"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.monotonic()
        while _alive(worker) and time.monotonic() - t0 < 5.0:
            time.sleep(0.05)
        assert not _alive(worker), f"worker {worker} outlived its parent by 5 s"
    finally:
        if parent.poll() is None:
            parent.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_dask_local_cluster_equals_local_pool_and_survives_a_killed_worker(tmp_path):
    pytest.importorskip("distributed")
    units = _sim_units()
    with ex.LocalExecutor(2) as pool:
        local = ex.run_units(units, executor=pool)
    log, marker = tmp_path / "log", tmp_path / "crashed"
    crashy = [ex.Unit("_units:square", {"x": x, "log": str(log),
                                        **({"crash_marker": str(marker)} if x == 2 else {})})
              for x in range(6)]
    with ex.DaskExecutor(workers=2) as dask:
        dres = ex.run_units(units, executor=dask)
        assert json.dumps(dres) == json.dumps(local)
        st = Store(tmp_path / "store")
        res = ex.run_units(crashy, executor=dask, store=st)
    assert marker.exists()
    assert [r["y"] for r in res] == [x * x for x in range(6)]
    assert st.count("unit") == 6 and sorted(set(_log_lines(log))) == list(range(6))


# ----------------------------------------------------------------------------- sweep
SPEC = """
command = "simulate"
seeds = 2

[fixed]
method = "bn"
activation = "erf"
online = true
N = 100
t-max = 0.5
n-points = 3

[grid]
lr = [0.5, 1.0, 1.5]
batch-size = "4:12:3"

[plot]
x = "t"
y = "R"
"""


def test_sweep_command_writes_the_table_and_reruns_from_the_store(tmp_path, capsys):
    import csv

    from perceptron_theory.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    cache = tmp_path / "cache"
    args = ["sweep", str(spec), "--cache-dir", str(cache), "--executor", "serial", "--json"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cells"] == 18 and info["ran"] == 18 and info["stored"] == 0
    rows = list(csv.DictReader(open(tmp_path / "a" / "table.csv")))
    assert len(rows) == 18 * 3  # 3 x 3 x 2 cells, 3 recorded times each
    assert {r["batch_size"] for r in rows} == {"4", "8", "12"}
    assert {r["seed"] for r in rows} == {"0", "1"} and (tmp_path / "a" / "sweep.png").exists()
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    info2 = json.loads(capsys.readouterr().out)
    assert info2["stored"] == 18 and info2["ran"] == 0
    assert (tmp_path / "a" / "table.csv").read_text() == (tmp_path / "b" / "table.csv").read_text()


@pytest.mark.parametrize("doc, match", [
    ({"command": "train"}, "command must be one of"),
    ({"command": "simulate", "grid": {"lr": []}}, "must not be empty"),
    ({"command": "simulate", "grid": {"nope": [1]}}, "has no option --nope"),
    ({"command": "curve", "seeds": 2}, "takes no --seed"),
    ({"command": "simulate", "fixed": {"lr": 1}, "grid": {"lr": [1]}}, "both fixed and swept"),
    ({"command": "simulate", "grid": {"lr": "1:2"}}, "list or a range"),
    ({"command": "simulate", "extra": 1}, "unknown spec keys"),
])
def test_bad_specs_are_refused_before_any_work(doc, match):
    from perceptron_theory.sweep import load_spec

    with pytest.raises(ValueError, match=match):
        load_spec(doc)


def test_a_bad_cell_value_is_refused_before_any_cell_runs(tmp_path):
    from perceptron_theory.sweep import load_spec, run_sweep

    spec = load_spec({"command": "simulate", "fixed": {"method": "bn", "activation": "erf",
                                                       "N": 100, "online": True,
                                                       "t-max": 0.5},
                      "grid": {"lr": [0.5, 1.0], "engine": ["vector", "warp"]}})
    with pytest.raises(ValueError, match="engine"):
        run_sweep(spec, tmp_path / "o", executor=ex.SerialExecutor())
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- reproduce
def test_reproduce_reads_checks_back_from_the_store(tmp_path):
    from validation.report import run

    a = run(tmp_path / "a", claims=["R-B"], cache_dir=tmp_path / "c", progress=False)
    b = run(tmp_path / "b", claims=["R-B"], cache_dir=tmp_path / "c", progress=False)
    ja = json.loads((tmp_path / "a" / "results.json").read_text())
    jb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert not ja["checks"][0]["stored"] and jb["checks"][0]["stored"]
    for j in (ja, jb):
        for c in j["checks"]:
            c.pop("elapsed_s"), c.pop("stored")
    assert ja["claims"] == jb["claims"] and ja["checks"] == jb["checks"]
    assert a.results[0].verdict == b.results[0].verdict == "pass"
