"""``env.drivers`` in experiment and comparison files: one-line errors naming the field and the allowed
values, ``backend: auto`` moved to highway-env, and a comparison's condition that swaps the mix is the mix
its evaluation episodes are drawn from."""

import numpy as np
import pytest
import yaml

from envs.evaluation import evaluate_driving
from experiments.compare.spec import load_comparison
from experiments.config import ConfigError, load_config
from experiments.config.experiment import save_config
from experiments.runs.build import POSTHOC_EVAL_STREAM, make_env, resolve_backend
from tests_support import EXPERIMENTS

SMOKE = EXPERIMENTS / "smoke.yaml"
BASE = EXPERIMENTS / "plasticity" / "drivers_recurrent_ppo.yaml"
PLASTICITY = EXPERIMENTS / "compare" / "plasticity.yaml"
ALLOWED = r"allowed: idm, linear, aggressive, defensive or package.module:Class"


@pytest.mark.parametrize(("overrides", "expected"), [
    (["env.drivers={idm: 0.5, agressive: 0.5}"],
     rf"^--set: env.drivers.agressive: unknown behaviour; {ALLOWED} .*; did you mean aggressive\?$"),
    (["env.drivers={idm: 1.2, defensive: -0.2}"],
     r"^--set: env.drivers.defensive: a probability must be a finite number >= 0 \(got -0.2\)$"),
    (["env.drivers={idm: 0.5, defensive: 0.3}"], r"^--set: env.drivers: probabilities must sum to 1 \(got 0.8 "),
    (["env.drivers={idm: 1}", "env.backend=envpool"],
     r"^--set: env.backend: envpool cannot draw other drivers' behaviour \(env.drivers\); allowed with "
     r"env.drivers: highway-env, auto$"),
    (["env.drivers={idm: 1}", "env.id=racetrack-v0", "env.config={}"],
     r"^--set: env.drivers: racetrack-v0 builds its other vehicles without highway-env's other_vehicles_type"),
    (["env.drivers={idm: 1}", "env.config.other_vehicles_type=highway_env.vehicle.behavior.IDMVehicle"],
     r"env.drivers: sets other_vehicles_type at every episode; leave env.config.other_vehicles_type out"),
])
def test_a_bad_mix_is_one_line_naming_the_field(overrides, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(SMOKE, overrides)
    assert "\n" not in str(error.value)


def test_absent_by_default_and_kept_in_the_saved_config(tmp_path):
    assert load_config(SMOKE).env.drivers is None
    config = load_config(BASE)
    assert config.env.drivers == {"idm": 0.5, "aggressive": 0.25, "defensive": 0.25}
    save_config(config, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["env"]["drivers"] == config.env.drivers


def test_auto_resolves_to_highway_env_and_says_why():
    resolved, choice = resolve_backend(load_config(SMOKE, ["env.drivers={aggressive: 1}"]))
    assert (choice.backend, resolved.env.backend) == ("highway-env", "highway-env")
    assert "env.drivers" in choice.reason


def test_a_condition_swaps_the_mix_and_its_evaluation_draws_from_it():
    comparison = load_comparison(PLASTICITY, quick=True)
    run_config = comparison.cell_config(comparison.cells()[0])
    assert run_config.env.drivers == {"idm": 0.5, "aggressive": 0.25, "defensive": 0.25}
    for condition, env_id, driver in [("aggressive", "highway-fast-v0", "aggressive"),
                                      ("defensive", "highway-fast-v0", "defensive"),
                                      ("merge", "merge-v0", "aggressive")]:
        config, _ = resolve_backend(comparison.condition_config(run_config, condition))
        assert (config.env.id, config.env.drivers) == (env_id, {driver: 1.0})  # replaced, not merged
        env = make_env(config, POSTHOC_EVAL_STREAM, n_envs=1)

        class Idle:
            def predict(self, observation, state=None, episode_start=None, deterministic=False):
                return np.ones(len(observation), dtype=int), state

        try:
            metrics = evaluate_driving(Idle(), env, 2)
        finally:
            env.close()
        assert metrics.drivers == [driver, driver], condition
        assert metrics.summary()["by_driver"][driver]["n_episodes"] == 2
