"""Executors: where units of work run -- this process, a local process pool, or Dask.

One interface, :class:`Executor` ``.map(units, on_result)``, three implementations on
existing engines:

``serial``
    In this process, one unit after another (what one worker or a debugger wants).
``local`` (default)
    :class:`concurrent.futures.ProcessPoolExecutor` with fresh (``spawn``) interpreters,
    kept across calls so that torch and numba are imported once per worker, one
    torch/numba/BLAS thread per worker unless told otherwise. A worker that dies (killed,
    out of memory) breaks the pool; the pool is rebuilt and the units that had not
    finished are submitted again (``retries`` times). Workers end when the process that
    started them dies (killed with SIGKILL, say), instead of finishing their unit
    orphaned: at once on Linux (``PR_SET_PDEATHSIG``), else within about a second.
``dask``
    :mod:`distributed`: ``Client(address)`` of a running scheduler, or a ``LocalCluster``
    when no address is given. For a SLURM/PBS cluster, start the scheduler with
    dask-jobqueue (``SLURMCluster(...).scale(jobs=...)``) and pass its address. Dask
    reschedules the units of a worker that died; ``retries`` covers a unit that raised.

A unit is ``Unit(function, config)``: ``function`` names a module-level callable as
``"package.module:name"`` (so that any worker can import it; nothing is pickled but the
name and a JSON-able configuration) called as ``function(**config)``; it returns a
JSON-able result. :func:`run_units` adds the run store: stored units are read back, the
others run on the executor and are stored as each finishes, so an interrupted grid
resumes where it stopped.

Child processes re-import the main module of a script (``spawn``): a script that calls
:func:`run_units` at import time needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from perceptron_theory._io import plain

__all__ = ["Unit", "resolve", "Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor",
           "get_executor", "use", "current", "run_units", "EXECUTORS"]

EXECUTORS = ("local", "serial", "dask")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``function(**config)``.

    ``kind`` is the store folder; ``key`` overrides the default store key (a unit whose
    key is computed elsewhere, such as a deep run); ``code`` says whether the key covers
    the package's source fingerprint (see :mod:`perceptron_theory.store`).
    """

    function: str
    config: dict = field(default_factory=dict)
    kind: str = "unit"
    key: str = ""
    code: bool = True

    def __post_init__(self):
        mod, sep, name = self.function.partition(":")
        if not (mod and sep and name):
            raise ValueError(f"function must be 'package.module:name', got {self.function!r}")
        if not self.key:
            from perceptron_theory.store import unit_key

            object.__setattr__(self, "key", unit_key(self.function, self.config,
                                                     code=self.code))


def resolve(ref: str) -> Callable:
    """``"package.module:name"`` (dotted attributes allowed) -> the object."""
    import importlib

    mod, _, name = ref.partition(":")
    obj = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _set_threads(threads: int | None) -> None:
    """Limit torch and numba to ``threads`` in this process (when they are imported)."""
    import sys

    if not threads:
        return
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numba" in sys.modules:
        import numba

        with contextlib.suppress(ValueError):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def call_unit(function: str, config: dict, threads: int | None = None):
    """Run one unit in this process (what every executor's worker calls)."""
    _set_threads(threads)
    fn = resolve(function)
    out = fn(**config)
    _set_threads(threads)  # the unit may have imported torch / numba just now
    return out


class Executor:
    """Run units; subclasses implement :meth:`submit_all`."""

    name = "executor"
    workers = 1

    def map(self, units: Sequence[Unit], on_result: Callable | None = None) -> list:
        """Run ``units``; return their results in order. ``on_result(i, result)`` is
        called as each finishes (in this process), before any other result is awaited."""
        results: list = [None] * len(units)
        for i, res in self.submit_all(units):
            results[i] = res
            if on_result is not None:
                on_result(i, res)
        return results

    def submit_all(self, units: Sequence[Unit]) -> Iterable[tuple[int, object]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (a no-op for the serial executor)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialExecutor(Executor):
    """Units one after another in this process."""

    name = "serial"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def submit_all(self, units):
        import sys

        for i, u in enumerate(units):
            torch = sys.modules.get("torch")
            prev = torch.get_num_threads() if torch is not None else None
            try:
                res = call_unit(u.function, u.config, self.threads)
            finally:  # this process's own setting is restored
                torch = sys.modules.get("torch")
                if torch is not None and self.threads:
                    torch.set_num_threads(prev or os.cpu_count() or 1)
            yield i, res


#: Set while the local pool starts workers: ``"<pid>:main"`` when the starting thread is
#: the main thread (see :func:`_worker_init`).
_SPAWNER_VAR = "PERCEPTRON_THEORY_POOL_SPAWNER"
#: Seconds between a worker's checks that its parent is alive.
PARENT_POLL_S = 1.0


@contextlib.contextmanager
def _spawner_env():
    """Tell the workers spawned inside this block who starts them, and from which thread."""
    import threading

    saved = os.environ.get(_SPAWNER_VAR)
    main = threading.current_thread() is threading.main_thread()
    os.environ[_SPAWNER_VAR] = f"{os.getpid()}:{'main' if main else 'thread'}"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_SPAWNER_VAR, None)
        else:
            os.environ[_SPAWNER_VAR] = saved


def _worker_init(parent: int) -> None:
    """Pool initializer: end this worker when ``parent`` (the pool's process) dies.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills the worker with its
    parent, even inside a long numba kernel that holds the GIL. The signal follows the
    parent *thread* that spawned the worker, so it is set only for workers spawned from
    the main thread (a pool fed from a short-lived thread would otherwise lose its
    workers with that thread). Everywhere: a daemon thread that exits the worker when
    its parent pid changes (checked every :data:`PARENT_POLL_S`; it needs the GIL).
    """
    import sys
    import threading
    import time

    if sys.platform.startswith("linux") and os.environ.get(_SPAWNER_VAR) == f"{parent}:main":
        with contextlib.suppress(OSError, AttributeError):
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(1)

    def watch():
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="perceptron-theory-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _thread_env(threads: int | None):
    """Environment inherited by worker processes spawned inside this block."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    if threads:
        for k in _THREAD_VARS:
            os.environ[k] = str(threads)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalExecutor(Executor):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers`` fresh
    interpreters with ``threads`` threads each (default 1), rebuilt when a worker dies.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default ``os.cpu_count()``).
    threads : int, optional
        torch / numba / BLAS threads per worker (default 1).
    retries : int
        How many times the units of a broken pool are submitted again.
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = 1,
                 retries: int = 2):
        workers = (os.cpu_count() or 1) if workers is None else int(workers)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.workers, self.threads, self.retries = workers, threads, retries
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        return self._pool

    def submit_all(self, units):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        todo = dict(enumerate(units))
        attempts = 0
        while todo:
            with _thread_env(self.threads), _spawner_env():  # workers start on submit
                pool = self._get_pool()
                futures = {pool.submit(call_unit, u.function, u.config, self.threads): i
                           for i, u in todo.items()}
            broken = False
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        res = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    i = futures[fut]
                    del todo[i]
                    yield i, res
            if broken:
                self._shutdown()
                attempts += 1
                if attempts > self.retries:
                    raise RuntimeError(f"a worker process died {attempts} times; "
                                       f"{len(todo)} unit(s) not run")

    def _shutdown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self):
        self._shutdown()


class DaskExecutor(Executor):
    """Units as tasks of a Dask ``distributed`` cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); None starts a
        ``LocalCluster`` of ``workers`` processes with ``threads`` threads each.
    workers, threads : int, optional
        Size of the local cluster (default: ``os.cpu_count()`` workers of 1 thread).
    retries : int
        Times a unit that raised is run again (a dead worker's units are rescheduled by
        Dask itself).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 threads: int | None = 1, retries: int = 2):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("the dask executor needs `pip install 'dask[distributed]'`") \
                from None
        import logging

        for name in ("distributed", "distributed.scheduler", "distributed.core"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no INFO chatter on stderr
        self.threads, self.retries = threads, retries
        self._cluster = None
        if scheduler:
            self._client = Client(scheduler)
        else:
            n = (os.cpu_count() or 1) if workers is None else int(workers)
            if n < 1:
                raise ValueError(f"workers must be >= 1, got {n}")
            with _thread_env(threads):
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1,
                                             processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def submit_all(self, units):
        from distributed import as_completed

        futures = {}
        for i, u in enumerate(units):
            fut = self._client.submit(call_unit, u.function, u.config, self.threads,
                                      key=f"unit-{u.key}-{i}", pure=False,
                                      retries=self.retries)
            futures[fut] = i
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    def close(self):
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def get_executor(kind: str = "local", *, workers: int | None = None, threads: int | None = 1,
                 scheduler: str | None = None) -> Executor:
    """An executor by name (:data:`EXECUTORS`)."""
    if kind == "serial":
        return SerialExecutor(threads)
    if kind == "local":
        return LocalExecutor(workers, threads)
    if kind == "dask":
        return DaskExecutor(scheduler, workers, threads)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {kind!r}")


_CURRENT: list[Executor] = []
_SHARED: dict = {}


def current(workers: int | None = None, threads: int | None = 1) -> Executor:
    """The executor set by :func:`use`, else a shared local pool of ``workers``
    processes (reused while the size matches; serial for one worker)."""
    if _CURRENT:
        return _CURRENT[-1]
    n = min(workers or 1, os.cpu_count() or 1)
    if n <= 1:
        return SerialExecutor(threads)
    ex = _SHARED.get("local")
    if ex is None or ex.workers != n or ex.threads != threads:
        if ex is not None:
            ex.close()
        ex = _SHARED["local"] = LocalExecutor(n, threads)
    return ex


@atexit.register
def _close_shared() -> None:
    ex = _SHARED.pop("local", None)
    if ex is not None:
        ex.close()


@contextlib.contextmanager
def use(executor: Executor | str, **kwargs):
    """Make ``executor`` (or one built by :func:`get_executor`) the one that
    :func:`current` returns inside the block; close it at the end when built here."""
    owned = isinstance(executor, str)
    ex = get_executor(executor, **kwargs) if owned else executor
    _CURRENT.append(ex)
    try:
        yield ex
    finally:
        _CURRENT.pop()
        if owned:
            ex.close()


def run_units(units: Sequence[Unit], *, executor: Executor | None = None, store=None,
              rerun: bool = False, progress: bool = False, desc: str = "units",
              on_result: Callable | None = None) -> list:
    """Results of ``units`` in order: read from ``store`` when held there (unless
    ``rerun``), the others run on ``executor`` (default :func:`current`) and stored as
    each finishes.

    Returns
    -------
    list
        One result per unit; :attr:`run_units.last_stats` holds how many were stored and
        how many ran.
    """
    units = list(units)
    results: list = [None] * len(units)
    missing = []
    for i, u in enumerate(units):
        hit = None if store is None or rerun else store.get(u.kind, u.key)
        if hit is None:
            missing.append(i)
        else:
            results[i] = hit
    bar = None
    if progress and missing:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc=desc)

    def keep(j, res):
        i = missing[j]
        u = units[i]
        if store is not None:
            store.put(u.kind, u.key, res, function=u.function, config=u.config)
        # what a later call reads from the store: JSON types, whether stored or not
        res = json.loads(json.dumps(plain(res)))
        results[i] = res
        if bar is not None:
            bar.update()
        if on_result is not None:
            on_result(i, res)

    try:
        if missing:
            ex = executor or current()
            ex.map([units[i] for i in missing], keep)
    finally:
        if bar is not None:
            bar.close()
    run_units.last_stats = {"stored": len(units) - len(missing), "ran": len(missing)}
    return results


run_units.last_stats = {"stored": 0, "ran": 0}
