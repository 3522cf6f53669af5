"""``experiments.api``: a config from a file, a mapping or a model, with overrides in either form, is the
experiment ``neurodrive train --set`` would validate; a bad one is the same one-line ``ConfigError``."""

from __future__ import annotations

import pytest

from experiments import ConfigError, ExperimentConfig, experiment_config, load_config, load_run
from tests_support import EXPERIMENTS

PRESET = EXPERIMENTS / "highway_dqn.yaml"


def test_a_file_with_set_strings_is_what_load_config_reads():
    overrides = ["training.seed=3", "neuro.dopamine={type: asymmetric, kappa: 0.3}"]
    assert experiment_config(PRESET, overrides) == load_config(PRESET, overrides)


def test_a_mapping_with_dotted_overrides_equals_the_edited_file(tmp_path):
    raw = {"name": "tiny", "agent": {"algo": "ppo"}, "training": {"total_timesteps": 100}}
    built = experiment_config(raw, {"training.seed": 3, "neuro.dopamine": {"type": "asymmetric", "kappa": 0.3}})
    edited = tmp_path / "edited.yaml"
    edited.write_text("name: tiny\nagent: {algo: ppo}\ntraining: {total_timesteps: 100, seed: 3}\n"
                      "neuro: {dopamine: {type: asymmetric, kappa: 0.3}}\n")
    assert built == load_config(edited)
    assert raw == {"name": "tiny", "agent": {"algo": "ppo"}, "training": {"total_timesteps": 100}}  # not changed


def test_a_config_object_round_trips_and_takes_overrides():
    config = load_config(PRESET)
    assert experiment_config(config) == config
    assert experiment_config(config, {"training.seed": 5}).training.seed == 5
    assert config.training.seed == 0
    assert isinstance(config, ExperimentConfig)


@pytest.mark.parametrize("overrides, message", [
    ({"neuro.dopamine.kappa": 1.5, "neuro.dopamine.type": "asymmetric"}, "neuro.dopamine.kappa: must be in (-1, 1)"),
    ({"training.total_timestep": 10}, "training.total_timestep"),
    ("training.seed=3", "overrides: expected a mapping or a list"),
])
def test_bad_input_is_a_config_error(overrides, message):
    with pytest.raises(ConfigError) as error:
        experiment_config(PRESET, overrides)
    assert message in str(error.value)


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match="no such run folder"):
        load_run(tmp_path / "absent")
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run(tmp_path)
