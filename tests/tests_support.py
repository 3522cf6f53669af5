"""Paths and small helpers shared by the tests."""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments" / "presets"  # the ready YAML files

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
    import pytest

    from experiments.config import ConfigError
    from experiments.sweeps.storage import StorageTarget

    url = os.environ.get("NEURODRIVE_TEST_PG_URL")
    if not url:
        pytest.skip("NEURODRIVE_TEST_PG_URL is not set (.ci/run starts PostgreSQL and sets it)")
    try:
        StorageTarget.resolve(url, Path(".")).open()
    except ConfigError as error:  # set but unreachable: CI's server did not start, which must not pass silently
        pytest.fail(f"no PostgreSQL server reachable at NEURODRIVE_TEST_PG_URL: {error}")
    return url
