"""``bench --section env``'s observation types, side by side on a tiny budget."""

import io

import numpy as np
import pytest
from rich.console import Console

from experiments.bench import env as env_bench
from experiments.bench.env import OBSERVATIONS, ObservationRow, Settings, observation_rows, print_env_section
from experiments.runs.build import observation_space

TINY = Settings(highway_env_steps=2, highway_env_repeats=2)


@pytest.fixture(scope="module")
def rows() -> list[ObservationRow]:
    return observation_rows(TINY, np.random.default_rng(0))


def test_every_type_is_timed_on_highway_env_and_kinematics_on_the_native_port(rows):
    assert [(row.observation, row.backend) for row in rows] == \
        [(name, "highway-env") for name in OBSERVATIONS] + [("Kinematics", "envpool")]
    for row in rows:
        assert len(row.repeats) == TINY.highway_env_repeats and row.steps_per_s > 0
    shapes = {row.observation: row.shape for row in rows}
    assert shapes["GrayscaleObservation"] == "(4, 128, 64) uint8"
    space = observation_space("highway-fast-v0", {"observation": OBSERVATIONS["TupleObservation"]})
    assert shapes["TupleObservation"] == " + ".join(f"{key} {part.shape}" for key, part in space.spaces.items())


def test_a_rate_is_the_steps_over_the_seconds_they_took(monkeypatch):
    """2 steps timed at 0.5 s each repeat: 4 steps/s for every type, by hand."""
    monkeypatch.setattr(env_bench.VecEnvRunner, "run", lambda self, actions: (0.5, 0))
    for row in observation_rows(TINY, np.random.default_rng(0), native=False):
        assert row.repeats == [4.0, 4.0] and row.steps_per_s == 4.0


def test_the_table_prints_each_type_against_kinematics(rows):
    out = io.StringIO()
    figures = {"rows": [], "ratios": [], "target": {"measured": None}, "observations": [vars(row) for row in rows]}
    print_env_section(figures, Console(file=out, width=200))
    text = out.getvalue()
    for name in OBSERVATIONS:
        assert name in text
    assert "1.00x" in text  # Kinematics against itself
