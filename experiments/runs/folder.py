"""A run folder: where it goes, what it holds, and reading it back.

``<root>/<name>/<timestamp>-seed<seed>/`` holds ``config.yaml`` (resolved, reloadable),
``run.json`` (status, seed, backend choice, library versions, command line, platform commit),
``tb/`` (TensorBoard events and progress.csv), ``checkpoints/``, ``eval.json`` (every periodic
evaluation, the last and the best), ``best_model.zip`` (the model at the best evaluation) and
``model.zip`` (the last one). While a process writes a run folder (``train``, ``train --resume``) it
holds ``.lock`` there (``FolderLock``): one writer per folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.config import ConfigError, ExperimentConfig, load_config
from experiments.files import write_json_atomic

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["FolderLock", "RunFolder", "create_run_dir", "check_writable"]

logger = logging.getLogger("neurodrive.run")
LOCK_NAME = ".lock"  # in a folder being written: the writer's PID, under its flock
MODELS = ("final", "best")  # which model of a run folder `neurodrive evaluate --model` loads
LIBRARIES = ("neurodrive", "stable-baselines3", "sb3-contrib", "gymnasium", "highway-env",
             "envpool", "torch", "numpy", "optuna", "pydantic")


def platform_commit() -> str | None:
    """The git commit of the NeuroDrive checkout, when it runs from one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def create_run_dir(config: ExperimentConfig) -> Path:
    """A new, unique run folder (``logging.run_name``, else ``<timestamp>-seed<seed>``); an unwritable
    root, or a named folder that already exists, is a clear error before any work."""
    group = Path(config.logging.root) / (config.logging.name or config.name)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        group.mkdir(parents=True, exist_ok=True)
        if config.logging.run_name is not None:
            run_dir = group / config.logging.run_name
            try:
                run_dir.mkdir()
            except FileExistsError:
                raise ConfigError(f"logging.run_name: {run_dir} already exists; continue it with "
                                  f"`neurodrive train --resume {run_dir}` or pick another name") from None
            return run_dir
        for attempt in range(1000):
            suffix = "" if attempt == 0 else f"-{attempt}"
            run_dir = group / f"{stamp}-seed{config.training.seed}{suffix}"
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as error:
        raise ConfigError(
            f"logging.root: cannot create a run folder under {group}: {error.strerror}"
        ) from None
    raise ConfigError(f"logging.root: no free run folder name under {group}")


def check_writable(folder: Path, why: str) -> None:
    """A folder a command will write in, probed by writing there: a read-only one is one line before any work."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"{folder}: cannot write in this folder ({error.strerror or error}); {why}") from None


class FolderLock:
    """One writer per folder: an exclusive ``flock`` on ``<folder>/.lock``, which holds the writer's PID.

    The kernel drops the lock when its process ends, however it ends (``kill -9`` included), so a stale
    lock file never blocks anyone. A process that finds it held gets one line naming the holder's PID.

    :param what: what the folder is, for the message ("run folder", "comparison folder").
    """

    def __init__(self, folder: Path, what: str) -> None:
        self.folder = folder
        self.what = what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> FolderLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # no O_TRUNC: the holder's PID stays
        except OSError as error:
            raise ConfigError(f"{self.folder}: cannot write in this {self.what} "
                              f"({error.strerror or error}); it must be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise ConfigError(f"{self.folder}: another process (PID {holder}) is writing this {self.what}; "
                              "wait for it to end, or stop it") from None
        except OSError as error:  # a file system without locks (some network mounts): go on, unguarded
            os.close(fd)
            logger.warning("%s: cannot lock this %s (%s); nothing keeps a second writer out", self.folder,
                           self.what, error.strerror or error)
            return self
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file stays, so no two processes lock two files
            self._fd = None

    @staticmethod
    def _holder(fd: int) -> str:
        """The PID the holder wrote (it writes it right after locking: wait a moment for it)."""
        for _ in range(20):
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if text:
                return text
            time.sleep(0.05)
        return "unknown"

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class RunFolder:
    """Reads and writes the files of one run folder."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def model_path(self) -> Path:
        return self.path / "model.zip"

    @property
    def best_model_path(self) -> Path:
        return self.path / "best_model.zip"

    @property
    def eval_path(self) -> Path:
        return self.path / "eval.json"

    @property
    def meta_path(self) -> Path:
        return self.path / "run.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text())

    def lock(self) -> FolderLock:
        """The run folder's writer lock (``with run.lock(): ...``)."""
        return FolderLock(self.path, "run folder")

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.meta_path, meta)

    def read_evaluations(self) -> dict[str, Any]:
        """``eval.json``: ``evaluations`` (every record), ``final`` and ``best``."""
        return json.loads(self.eval_path.read_text())

    def load_config(self) -> ExperimentConfig:
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: no such run folder")
        if not self.config_path.is_file():
            raise ConfigError(f"{self.path}: not a run folder (config.yaml is missing)")
        return load_config(self.config_path)

    def load_model(self, config: ExperimentConfig, which: str = "final") -> BaseAlgorithm:
        """The last model (``final``) or the one at the best evaluation (``best``)."""
        from experiments.runs.build import load_model

        if which not in MODELS:
            raise ConfigError(f"--model: unknown model {which!r}; allowed: {', '.join(MODELS)}")
        path = self.model_path if which == "final" else self.best_model_path
        if not path.is_file():
            hint = "did the run finish?" if which == "final" else "the run has made no evaluation yet"
            raise ConfigError(f"{self.path}: {path.name} is missing ({hint})")
        # SB3 zips hold pickled objects: only load run folders you trust.
        try:
            return load_model(config, path)
        except Exception as error:  # SB3 raises many types for a foreign or corrupt zip
            raise ConfigError(
                f"{path}: cannot load as agent.algo={config.agent.algo!r} (from config.yaml): "
                f"{type(error).__name__}: {error}"
            ) from None
