"""Jobs for the worker runner's tests (``tests/experiments/test_workers.py``): module-level, so a
spawned worker imports them by name, and light (no torch)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from experiments.config import ConfigError


def returns(value: object) -> object:
    return value


def raises() -> None:
    raise ValueError("boom")


def config_error() -> None:
    raise ConfigError("training.total_timesteps: must be > 0")


def killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does: no answer


def interrupted() -> None:
    raise KeyboardInterrupt  # Ctrl-C reached this worker alone


def sleeps(seconds: float) -> None:
    time.sleep(seconds)


def saves_on_interrupt(folder: str, name: str) -> None:
    """Work until SIGINT, then take 0.5 s to save: ``<name>.saved`` holds how many SIGINTs arrived
    before it was written (a second one while saving would cut the save short)."""
    folder_path = Path(folder)
    (folder_path / f"{name}.started").write_text(str(os.getpid()))
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        time.sleep(0.5)  # saving a checkpoint, re-queueing a trial
        (folder_path / f"{name}.saved").write_text("1")
        raise
