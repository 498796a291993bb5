"""A run folder's safety: one writer at a time, stale temp files, checked checkpoints.

:func:`~perceptron_theory.deep.train.train` writes ``config.json``, ``log.jsonl``,
``checkpoint.pt`` and ``result.json`` into its folder (atomically: a temporary
``.NAME.XXXX.tmp`` beside the file, then a rename). This module keeps that safe when
runs are killed, interrupted or started twice:

* :class:`RunLock` -- the folder's ``.lock`` file names its holder (pid, host, start
  time) and is held with :func:`fcntl.flock`, which the kernel releases when the
  holder dies, however it dies. A second ``train`` on the same folder is refused with
  the holder's name; a lock left by a killed process (its flock gone) is taken over.
* :func:`clean_stale_temp_files` -- a kill during an atomic write leaves its temporary
  file; whoever takes the lock next removes them (no one else can be writing).
* :func:`check_checkpoint` -- a loaded checkpoint must hold every key a resume reads,
  and :func:`check_resume` compares its *stored* configuration with the one asked for
  (``config.json`` can be edited or deleted; the checkpoint is what the weights came
  from). Only ``epochs`` may change, and never below the epochs already done.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["LOCK_FILE", "RunLock", "RunFolderBusy", "check_checkpoint", "check_resume",
           "clean_stale_temp_files", "describe_load_error", "load", "rank_is_main"]

LOCK_FILE = ".lock"
#: Keys :func:`train` reads from a checkpoint when resuming, with their types.
CHECKPOINT_KEYS = {"format": int, "epoch": int, "model": dict, "optimizer": dict,
                   "schedule": dict, "rng": dict, "history": str, "config": str}
#: Files of a run folder written atomically (their temporaries are ``.NAME.*.tmp``).
RUN_FILES = ("config.json", "log.jsonl", "checkpoint.pt", "result.json")


class RunFolderBusy(ValueError):
    """Another live process holds the run folder's lock."""


def rank_is_main() -> bool:
    """Whether this process is rank 0 of a ``torchrun`` job (or not distributed): only
    rank 0 writes the folder, so only rank 0 locks it."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


class RunLock:
    """Exclusive lock on ``out_dir`` for one process (a context manager).

    Entering creates the folder if needed, opens ``out_dir/.lock`` and takes an
    exclusive non-blocking :func:`fcntl.flock` on it. If another process holds it,
    :class:`RunFolderBusy` names the holder. Otherwise the lock file is rewritten with
    this process's pid, host and start time (a previous holder that died is reported
    in the log as taken over) and stale temporary files are removed. Leaving removes
    the lock file and releases the lock. ``enabled=False`` (ranks other than 0) does
    nothing.
    """

    def __init__(self, out_dir, *, enabled: bool = True):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_FILE
        self.enabled = enabled
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl

        self.out_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # retry if the file was replaced between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise RunFolderBusy(f"run folder {self.out_dir} is in use by "
                                    f"{_describe_holder(self.path)}; wait for it to finish "
                                    "or choose another folder") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we opened it: try again
        else:  # pragma: no cover - needs a pathological race
            raise RunFolderBusy(f"could not lock run folder {self.out_dir}")
        previous = os.read(fd, 4096).decode("utf-8", "replace").strip()
        if previous:
            log.warning("run folder %s: taking over the lock left by %s", self.out_dir,
                        _holder_text(previous))
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.datetime.now().isoformat(timespec="seconds")}
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd
        removed = clean_stale_temp_files(self.out_dir)
        if removed:
            log.info("run folder %s: removed stale temporary files %s", self.out_dir,
                     ", ".join(removed))

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # before unlocking: a waiter re-checks the inode
        os.close(self._fd)
        self._fd = None


def _holder_text(text: str) -> str:
    try:
        d = json.loads(text)
        return f"pid {d['pid']} on host {d['host']} (since {d['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def _describe_holder(path: Path) -> str:
    try:
        return _holder_text(path.read_text(encoding="utf-8", errors="replace").strip())
    except OSError:
        return "another process"


def clean_stale_temp_files(out_dir) -> list[str]:
    """Remove ``.NAME.*.tmp`` left by killed atomic writes of :data:`RUN_FILES`, whatever
    their age: call it only while holding the folder's lock. Returns the names removed."""
    from perceptron_theory._io import remove_stale_temp_files

    return remove_stale_temp_files(out_dir, RUN_FILES, older_than_s=-1.0)


def load(path, map_location, fmt: int) -> dict:
    """``torch.load(path, weights_only=True)`` checked by :func:`check_checkpoint`; a
    file that does not load gives one line (:func:`describe_load_error`) in a ValueError,
    and torch's warnings about the file are not shown."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # any unpickling failure means a bad file
        raise ValueError(describe_load_error(path, exc)) from None
    return check_checkpoint(ckpt, path, fmt)


def describe_load_error(path, exc: BaseException) -> str:
    """One line saying why ``torch.load(path, weights_only=True)`` failed."""
    import pickle

    text = str(exc)
    detail = " ".join(text.split("WeightsUnpickler error:")[-1].split("Check the doc")[0]
                      .split()) if "WeightsUnpickler error:" in text else (
        (text.strip().splitlines() or [type(exc).__name__])[0].split(". ")[0])
    if isinstance(exc, pickle.UnpicklingError):
        why = ("corrupt, or not written by perceptron_theory (safe loading with "
               f"weights_only=True refused it: {detail})")
    else:
        why = f"truncated or corrupt ({type(exc).__name__}: {detail or 'empty file'})"
    return (f"{path}: not a usable checkpoint: {why}; delete it (and resume from scratch) "
            "or restore a copy")


def check_checkpoint(ckpt, path, fmt: int) -> dict:
    """``ckpt`` if it is a complete checkpoint of format ``fmt``, else ValueError."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise ValueError(f"{path}: not a perceptron_theory checkpoint (format {fmt})")
    missing = [k for k, t in CHECKPOINT_KEYS.items() if not isinstance(ckpt.get(k), t)]
    if missing:
        raise ValueError(f"{path}: incomplete checkpoint, missing or malformed "
                         f"{', '.join(missing)}; delete it (and resume from scratch) or "
                         "restore a copy")
    if not isinstance(ckpt["schedule"].get("step"), int) or ckpt["epoch"] < 0:
        raise ValueError(f"{path}: incomplete checkpoint, malformed schedule or epoch")
    return ckpt


def check_resume(ckpt: dict, config, path) -> None:
    """Refuse to resume ``ckpt`` (loaded from ``path``) with a different ``config``.

    The configuration stored *in* the checkpoint is compared, field by field, with
    ``config.to_dict()``; only ``epochs`` may differ, and not below the epochs done.
    """
    from perceptron_theory._io import _jsonable

    try:
        saved = json.loads(ckpt["config"])
    except ValueError:
        raise ValueError(f"{path}: incomplete checkpoint, unreadable config") from None
    with contextlib.suppress(ValueError, TypeError):  # fill in fields added since
        saved = json.loads(json.dumps(type(config).from_dict(saved).to_dict(),
                                      default=_jsonable))
    now = json.loads(json.dumps(config.to_dict(), default=_jsonable))
    diff = sorted(k for k in set(saved) | set(now)
                  if k != "epochs" and saved.get(k) != now.get(k))
    if diff:
        raise ValueError(f"resume: config differs from the one stored in {path} in {diff}; "
                         "only epochs may change when resuming")
    if config.epochs < ckpt["epoch"]:
        raise ValueError(f"resume: epochs={config.epochs} is fewer than the "
                         f"{ckpt['epoch']} epochs already done in {path}")
