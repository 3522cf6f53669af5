"""``env.config`` values, bounded counts and sweep sampler/pruner options: each bad value is one line
naming the field and what is allowed, before any env is built; each good one still loads."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from experiments.compare.spec import comparison_from_raw
from experiments.config import ConfigError, bounds, load_config, validate_config
from experiments.config.bounds import check_process_envs, max_process_envs
from experiments.config.toolkit import read_yaml_mapping
from experiments.sweeps.spec import sweep_from_raw

PRESETS = Path(__file__).resolve().parents[3] / "experiments" / "presets"
SMOKE = PRESETS / "smoke.yaml"  # highway-fast-v0


def _error(overrides: list[str], preset: Path = SMOKE) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(preset, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("override", "expected"), [
    ("env.config.duration=abc", r"env\.config\.duration: must be a finite number > 0 and <= 3600"),
    ("env.config.duration=0", r"env\.config\.duration: must be a finite number > 0"),
    ("env.config.vehicles_density=.nan", r"env\.config\.vehicles_density: must be a finite number > 0"),
    ("env.config.vehicles_density=.inf", r"env\.config\.vehicles_density: .*\(got inf\)"),
    ("env.config.vehicles_count=1000000000", r"env\.config\.vehicles_count: must be an int in \[0, 1000\]"),
    ("env.config.vehicles_count=2.5", r"env\.config\.vehicles_count: must be an int"),
    ("env.config.lanes_count=true", r"env\.config\.lanes_count: must be an int in \[1, 50\] .*got True"),
    ("env.config.policy_frequency=0", r"env\.config\.policy_frequency: must be an int in \[1, 1000\]"),
    ("env.config.policy_frequency=10", r"env\.config\.policy_frequency: must be an int in \[1, 5\] "
                                       r"\(at most simulation_frequency\)"),
    ("env.config.normalize_reward=1", r"env\.config\.normalize_reward: must be true or false"),
    ("env.config.collision_reward=.nan", r"env\.config\.collision_reward: must be a finite number"),
    ("env.config.reward_speed_range=[30, 20]", r"env\.config\.reward_speed_range: must be a list of 2 finite "
                                               r"numbers, increasing"),
    ("env.config.reward_speed_range=[20, .inf]", r"env\.config\.reward_speed_range: "),
    ("env.config.initial_lane_id=3", r"env\.config\.initial_lane_id: must be null or an int in \[0, 2\]"),
    ("env.config.observation={type: 5}", r"env\.config\.observation\.type: got 5; allowed: Kinematics, "),
    ("env.config.observation={vehicles_count: 5}", r"env\.config\.observation\.type: required; allowed: "
                                                    r"Kinematics, "),
    ("env.config.action={type: MultiAgentAction}", r"env\.config\.action\.type: got 'MultiAgentAction'; "
                                                   r"allowed: DiscreteMetaAction, DiscreteAction, ContinuousAction"),
    ("env.config.observation={type: Kinematics, vehicles_count: 1000000000}",
     r"env\.config\.observation\.vehicles_count: must be an int in \[1, 1000\]"),
    ("env.config.observation={type: OccupancyGrid, grid_step: [0.0001, 0.0001]}",
     r"env\.config\.observation\.grid_step: the grid would have 3\.02e\+11 cells"),
    ("env.config.other_vehicles_type=os.system", r"env\.config\.other_vehicles_type: must be the dotted path of a "
                                                 r"highway-env Vehicle class"),
    ("env.n_envs=100000", r"env\.n_envs: Input should be less than or equal to 1024"),
    ("training.eval_n_envs=1000000000", r"training\.eval_n_envs: Input should be less than or equal to 1024"),
    ("training.total_timesteps=1e15", r"training\.total_timesteps: "),
    ("training.seed=4294967296", r"training\.seed: Input should be less than or equal to 4294967295"),
    ("training.eval_episodes=1000000000", r"training\.eval_episodes: Input should be less than or equal to"),
    ("env.wrappers=[{type: observation_delay, steps: 1000000000000}]",
     r"env\.wrappers\.0\.steps: must be in \[0, 1000\]"),
    ("env.wrappers=[{type: observation_noise, std: .inf}]", r"env\.wrappers\.0\.std: must be a finite number >= 0"),
])
def test_bad_env_values_and_counts_are_one_line_naming_the_field(override: str, expected: str) -> None:
    assert re.search(expected, _error([override])), _error([override])


@pytest.mark.parametrize("override", [
    "env.config.duration=40.5",  # seconds: a float is a duration too
    "env.config.collision_reward=-0.5",  # an int default, a real reward
    "env.config.vehicles_count=0",
    "env.config.vehicles_density=0.5",
    "env.config.reward_speed_range=[15, 30]",
    "env.config.initial_lane_id=null",
    "env.config.initial_lane_id=2",
    "env.config.other_vehicles_type=highway_env.vehicle.behavior.AggressiveVehicle",
    "env.config.observation={type: Kinematics, vehicles_count: 10}",
    "env.wrappers=[{type: observation_delay, steps: 1000}]",
    "training.seed=4294967295",
])
def test_good_values_still_load(override: str) -> None:
    load_config(SMOKE, [override])


def test_a_user_scenario_key_is_checked_by_its_default_type() -> None:
    """A key outside the table (none of highway-env's known ones here): by its default's type."""
    from experiments.config.env_values import check_env_config_values

    defaults = {"my_count": 3, "my_gain": 0.5, "my_flag": False, "my_name": "a"}
    check_env_config_values("mine", {"my_count": 4, "my_gain": 2, "my_flag": True, "my_name": "b"}, defaults)
    for key, value, allowed in [("my_count", 4.5, "an int"), ("my_gain", float("nan"), "a finite number"),
                                ("my_flag", "yes", "true or false"), ("my_name", 3, "a string")]:
        with pytest.raises(ConfigError, match=rf"^env\.config\.{key}: must be {allowed} \(got"):
            check_env_config_values("mine", {key: value}, defaults)


def test_highway_env_processes_are_bounded_by_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 per CPU, and 4 open files each below the soft limit (less 64 for the rest of the process)."""
    monkeypatch.setattr(bounds.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(bounds.resource, "getrlimit", lambda kind: (100_000, 100_000))
    assert max_process_envs() == 16
    monkeypatch.setattr(bounds.resource, "getrlimit", lambda kind: (128, 128))
    assert max_process_envs() == 16  # (128 - 64) // 4
    monkeypatch.setattr(bounds.resource, "getrlimit", lambda kind: (96, 96))
    assert max_process_envs() == 8
    with pytest.raises(ConfigError, match=r"^env\.n_envs: must be an int in \[1, 8\] on highway-env, where each env "
                                          r"is a process: this machine has 2 CPUs and an open-file limit of 96"):
        check_process_envs("env.n_envs", 9, "highway-env")
    check_process_envs("env.n_envs", 8, "highway-env")
    check_process_envs("env.n_envs", 1000, "envpool")  # threads, not processes


def test_auto_resolving_to_highway_env_checks_the_process_count() -> None:
    """``backend: auto`` on a scenario without a verified port runs processes: refused before any folder."""
    from experiments.runs.build import resolve_backend

    config = load_config(PRESETS / "racetrack_ppo.yaml", [f"env.n_envs={max_process_envs() + 1}"])
    with pytest.raises(ConfigError, match=r"^env\.n_envs: must be an int in \[1, \d+\] on highway-env"):
        resolve_backend(config)


SWEEP = PRESETS / "sweeps" / "highway_ppo.yaml"


def _sweep_error(**changes: Any) -> str:
    raw = copy.deepcopy(read_yaml_mapping(SWEEP))
    raw.update(changes)
    with pytest.raises(ConfigError) as caught:
        sweep_from_raw(raw, str(SWEEP), SWEEP.parent, default_name="x")
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"pruner": {"type": "hyperband", "min_resource": "abc"}}, r"pruner\.min_resource: must be an int >= 1 "
                                                                r"\(got 'abc'\)"),
    ({"pruner": {"type": "hyperband", "min_resource": "auto"}}, r"pruner\.min_resource: must be an int >= 1"),
    ({"pruner": {"type": "median", "n_startup_trials": -5}}, r"pruner\.n_startup_trials: must be an int in "
                                                             r"\[0, 1000000\] \(got -5\)"),
    ({"pruner": {"type": "halving", "reduction_factor": 1}}, r"pruner\.reduction_factor: must be an int >= 2"),
    ({"pruner": {"type": "hyperband", "min_resource": 5, "max_resource": 2}},
     r"pruner\.max_resource: must be 'auto' or an int >= min_resource \(5\)"),
    ({"pruner": {"type": "median", "n_startup": 2}}, r"pruner\.n_startup: MedianPruner has no such option; .*"
                                                     r"did you mean n_startup_trials\?"),
    ({"sampler": {"type": "tpe", "n_startup_trials": 2.5}}, r"sampler\.n_startup_trials: must be an int"),
    ({"sampler": {"type": "tpe", "multivariate": "yes"}}, r"sampler\.multivariate: must be true or false"),
    ({"sampler": {"type": "tpe", "gamma": 0.5}}, r"sampler\.gamma: must be a Python object, which a file cannot give"),
    ({"sampler": {"type": "cmaes", "sigma0": -1}}, r"sampler\.sigma0: must be a finite number > 0 or null"),
    ({"sampler": {"type": "tpe", "seed": -1}}, r"sampler\.seed: Input should be greater than or equal to 0"),
    ({"seeds": 1_000_000_000_000}, r"seeds: give a count in \[1, 10000\] or a list of at most 10000 distinct "
                                   r"seeds in \[0, 4294967295\]"),
    ({"seeds": [0, 2**40]}, r"seeds: give a count in \[1, 10000\]"),
    ({"n_trials": 10**12}, r"n_trials: Input should be less than or equal to 1000000"),
    ({"budget": 10**15}, r"budget: Input should be less than or equal to 1000000000000"),
    ({"parameters": {"agent.hyperparameters.n_epochs": {"int": [1, 10**12]}}, "sampler": "grid"},
     r"sampler: the grid has 1e\+12 points \(agent\.hyperparameters\.n_epochs: 1e\+12\); at most 1000000"),
    ({"parameters": {"agent.hyperparameters.gamma": {"float": [0.5, 0.9], "step": 1e-9}}, "sampler": "grid"},
     r"sampler: the grid has 4e\+08 points"),
    ({"parameters": {"agent.hyperparameters.gamma": {"float": [0.5, float("inf")]}}},
     r"parameters\.agent\.hyperparameters\.gamma: float: expected finite \[low, high\]"),
])
def test_bad_sweep_options_and_counts_are_one_line(changes: dict[str, Any], expected: str) -> None:
    message = _sweep_error(**changes)
    assert re.search(expected, message), message


@pytest.mark.parametrize("pruner", [{"type": "halving", "min_resource": "auto"},
                                    {"type": "hyperband", "min_resource": 2, "max_resource": "auto"},
                                    {"type": "median", "n_startup_trials": 0, "n_warmup_steps": 3}])
def test_good_pruner_options_load(pruner: dict[str, Any]) -> None:
    raw = copy.deepcopy(read_yaml_mapping(SWEEP))
    raw["pruner"] = pruner
    sweep_from_raw(raw, str(SWEEP), SWEEP.parent, default_name="x").make_pruner()


COMPARISON = PRESETS / "compare" / "highway_ppo.yaml"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"seeds": 1_000_000_000_000}, r"seeds: give a count in \[1, 10000\]"),
    ({"evaluation": {"n_envs": 1_000_000_000}}, r"evaluation\.n_envs: Input should be less than or equal to 1024"),
    ({"evaluation": {"episodes": 10**12}}, r"evaluation\.episodes: Input should be less than or equal to 1000000"),
    ({"heartbeat": {"interval": 10**9, "grace_period": 10**10}},
     r"heartbeat\.interval: Input should be less than or equal to 3600"),
    ({"heartbeat": {"max_retry": 10**9}}, r"heartbeat\.max_retry: Input should be less than or equal to 100"),
])
def test_bad_comparison_counts_are_one_line(changes: dict[str, Any], expected: str) -> None:
    raw = copy.deepcopy(read_yaml_mapping(COMPARISON))
    raw.update(changes)
    with pytest.raises(ConfigError, match=expected):
        comparison_from_raw(raw, str(COMPARISON), COMPARISON.parent)


def test_comparison_evaluation_processes_fit_the_machine() -> None:
    raw = copy.deepcopy(read_yaml_mapping(COMPARISON))
    raw["evaluation"] = {"n_envs": max_process_envs() + 1, "backend": "highway-env"}
    with pytest.raises(ConfigError, match=r": evaluation\.n_envs: must be an int in \[1, \d+\] on highway-env"):
        comparison_from_raw(raw, str(COMPARISON), COMPARISON.parent)


@pytest.mark.parametrize("section", ["training", "env.config"])
def test_an_unknown_key_with_a_line_break_is_named_on_one_line(section: str) -> None:
    """A key is named quoted where it holds a newline, so the error stays one line."""
    raw = read_yaml_mapping(SMOKE)
    node = raw
    for part in section.split("."):
        node = node.setdefault(part, {})
    node["a\nb"] = 1
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, "config")
    assert "\n" not in str(caught.value)
    assert f"{section}.'a\\nb': " in str(caught.value)


def test_a_dotted_path_of_a_lone_dot_is_a_config_error() -> None:
    """Found by the fuzzer: ``type: .`` reached importlib as a relative import (a TypeError)."""
    with pytest.raises(ConfigError, match=r"neuro\.exploration\.type: cannot load '\.'"):
        load_config(PRESETS / "modulation" / "dqn_exploration_surprise.yaml", ["neuro.exploration.type=."])


def test_a_cross_check_on_highway_env_counts_its_processes_too() -> None:
    """The main evaluation on the native port, its cross-check on highway-env with the same n_envs."""
    raw = copy.deepcopy(read_yaml_mapping(COMPARISON))
    raw["evaluation"] = {"n_envs": max_process_envs() + 1, "backend": "envpool",
                         "cross_check": {"backend": "highway-env"}}
    with pytest.raises(ConfigError, match=r": evaluation\.n_envs: must be an int in \[1, \d+\] on highway-env"):
        comparison_from_raw(raw, str(COMPARISON), COMPARISON.parent)
    raw["evaluation"]["cross_check"] = False
    comparison_from_raw(raw, str(COMPARISON), COMPARISON.parent)


def test_the_most_seeds_a_comparison_takes_validate_quickly() -> None:
    """10,000 seeds x 4 variants: one cell per variant stands for its seeds (they differ in the seed alone)."""
    import time

    raw = copy.deepcopy(read_yaml_mapping(COMPARISON))
    comparison_from_raw(copy.deepcopy(raw), str(COMPARISON), COMPARISON.parent)  # imports and scenario builds
    raw["seeds"] = bounds.MAX_SEEDS
    start = time.monotonic()
    comparison = comparison_from_raw(raw, str(COMPARISON), COMPARISON.parent)
    assert len(comparison.seeds) == 10_000 and time.monotonic() - start < 10


@pytest.mark.parametrize(("override", "expected"), [
    ("agent.snn.timesteps=1000000", r"agent\.snn\.timesteps: Input should be less than or equal to 1000"),
    ("agent.snn.encoder={type: population, population_size: 1000000}", r"agent\.snn\.encoder: .*population_size"),
])
def test_spiking_counts_are_bounded(override: str, expected: str) -> None:
    """Each decision costs T layer passes over population_size x inputs neurons: both have a ceiling."""
    assert re.search(expected, _error([override], PRESETS / "spiking" / "dqn_spiking.yaml"))
