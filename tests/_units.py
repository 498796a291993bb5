"""Unit functions for tests/test_executor.py (importable by worker processes)."""

import os
import signal
from pathlib import Path


def square(x, log=None, crash_marker=None):
    """``x * x``; appends ``x`` to ``log``; the first call that finds no ``crash_marker``
    file creates it and kills its own process (SIGKILL), as a lost machine would."""
    if crash_marker is not None and not Path(crash_marker).exists():
        Path(crash_marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    if log is not None:
        with open(log, "a") as f:
            f.write(f"{x}\n")
    return {"x": x, "y": x * x}


def sleep_forever(pid_file):
    """Write this worker's pid to ``pid_file``, then sleep (a unit that never ends)."""
    Path(pid_file).write_text(str(os.getpid()))
    import time

    while True:
        time.sleep(0.05)
