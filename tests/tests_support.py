"""Paths and small helpers shared by the tests."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from stable_baselines3.common.logger import KVWriter

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments" / "presets"  # the ready YAML files
# Both backends, for tests showing the platform behaves alike on each: the highway-env twin is 4-10x slower,
# so it runs in the slow lane (CI runs both; `pytest -m "not slow"` is the fast local lane).
BOTH_BACKENDS = ["envpool", pytest.param("highway-env", marks=pytest.mark.slow)]

# A comparison's body without name, experiment or root: two variants x one seed of smoke.yaml, 200 steps
# each (evaluated at 100 and 200), judged clean on 2 native episodes.
TINY_GRID = """
baseline: standard
variants:
  standard: {}
  asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
seeds: 1
fixed: {training.total_timesteps: 200, training.eval_every: 100, training.checkpoint_every: 100}
conditions:
  clean: {}
evaluation: {episodes: 2, backend: envpool}
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def postgres_url() -> str:
    """The test PostgreSQL server's URL (``NEURODRIVE_TEST_PG_URL``, set by ``.ci/run``); skips without it."""
    from experiments.config import ConfigError
    from experiments.distributed.storage import StorageTarget

    url = os.environ.get("NEURODRIVE_TEST_PG_URL")
    if not url:
        pytest.skip("NEURODRIVE_TEST_PG_URL is not set (.ci/run starts PostgreSQL and sets it)")
    try:
        StorageTarget.resolve(url, Path(".")).open()
    except ConfigError as error:  # set but unreachable: CI's server did not start, which must not pass silently
        pytest.fail(f"no PostgreSQL server reachable at NEURODRIVE_TEST_PG_URL: {error}")
    return url


def second_trial_under_way(study_name: str, storage: Any, worker_id: str,
                           started: Callable[[Any], bool]) -> Any:
    """The worker's RUNNING trial whose work ``started`` on disk, once it has completed another; else None."""
    import optuna
    from optuna.trial import TrialState

    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).trials
    except KeyError:  # the study is not made yet
        return None
    mine = [t for t in trials if t.user_attrs.get("worker") == worker_id]
    done = [t for t in mine if t.state == TrialState.COMPLETE]
    running = [t for t in mine if t.state == TrialState.RUNNING and started(t)]
    return running[0] if done and running else None


def kill_then_finish(victim: subprocess.Popen, survivor: subprocess.Popen, killed: Callable[[], Any],
                     timeout: float, what: str, finish_s: float) -> Any:
    """Wait for ``killed()`` to name the victim's trial, ``kill -9`` the victim, and let the survivor
    finish (exit 0); neither process outlives the call. Returns that trial."""
    try:
        trial = wait_for(killed, timeout, what)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        output, _ = survivor.communicate(timeout=finish_s)
        assert survivor.returncode == 0, output
        return trial
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()


class KeyRecorder(KVWriter):
    """The keys of every record the logger writes."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.keys |= set(key_values)

    def close(self) -> None:
        return None
