"""Worker processes that share the terminal's Ctrl-C: how sweeps and comparisons stop theirs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

INTERRUPT_GRACE_S = 30  # how long interrupted workers get to save (and re-queue) before they are signalled


def stop_workers(processes: Sequence[BaseProcess]) -> None:
    """After a Ctrl-C: wait for the workers to save and exit.

    Ctrl-C in a terminal reaches every worker; workers that did not get it (the parent alone was
    signalled) get a SIGINT after ``INTERRUPT_GRACE_S``. A second Ctrl-C signals them again, so they
    stop at once without saving.
    """
    try:
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0))
        _interrupt_alive(processes)
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        _interrupt_alive(processes)
        for process in processes:
            process.join()


def _interrupt_alive(processes: Sequence[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
