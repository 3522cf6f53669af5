import warnings
from pathlib import Path

import pytest

from tests_support import EXPERIMENTS


@pytest.fixture(autouse=True)
def _quiet_highway_env():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="highway_env")
        warnings.filterwarnings("ignore", message=".*env.configure.*")
        yield


@pytest.fixture
def smoke_config() -> Path:
    return EXPERIMENTS / "smoke.yaml"
