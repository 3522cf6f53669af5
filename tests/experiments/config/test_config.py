"""Experiment files: shipped ones validate; bad ones fail with the field path and allowed values."""

import textwrap

import pytest

from experiments.config import ConfigError, apply_override, load_config, save_config
from tests_support import EXPERIMENTS

GOOD = """
name: t
env: {id: highway-fast-v0, n_envs: 2}
agent: {algo: ppo, hyperparameters: {learning_rate: 3e-4, n_steps: 64}}
training: {total_timesteps: 1000}
"""


def write(tmp_path, text: str):
    path = tmp_path / "experiment.yaml"
    path.write_text(textwrap.dedent(text))
    return path


EXPERIMENT_FILES = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if not {"sweeps", "compare"} & set(p.parts))


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.name)
def test_shipped_experiments_validate(path):
    config = load_config(path)
    assert config.name == path.stem


def test_shipped_set_has_the_required_experiments():
    pairs = {(c.agent.algo, c.env.id) for c in map(load_config, EXPERIMENT_FILES)}
    assert {("dqn", "highway-fast-v0"), ("ppo", "highway-fast-v0"), ("ppo", "merge-v0")} <= pairs
    assert any(env_id.startswith("racetrack-") for _, env_id in pairs)


def test_defaults_and_scientific_notation(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.agent.hyperparameters["learning_rate"] == 3e-4  # a float, not the string "3e-4"
    assert config.env.backend == "auto"
    assert config.training.seed == 0


def test_overrides_by_dotted_path(tmp_path):
    config = load_config(write(tmp_path, GOOD), [
        "agent.hyperparameters.learning_rate=1e-5", "env.n_envs=4", "training.seed=7",
        "env.config.lanes_count=4", "agent.policy_kwargs.net_arch=[32, 32]",
    ])
    assert config.agent.hyperparameters["learning_rate"] == 1e-5
    assert config.env.n_envs == 4 and config.training.seed == 7
    assert config.env.config == {"lanes_count": 4}
    assert config.agent.policy_kwargs == {"net_arch": [32, 32]}


def test_saved_config_reloads_equal(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


@pytest.mark.parametrize("text, overrides, expected", [
    ("name: t\ntraining: {total_timesteps: 10\n", [], r"malformed YAML"),
    ("- a\n- b\n", [], r"expected a mapping at the top level"),
    (GOOD + "trainer: {}\n", [], r"trainer: unknown key; allowed: name, env, agent, neuro, training, logging"),
    (GOOD, ["env.lanes=3"], r"env.lanes: unknown key; allowed: id, backend, n_envs, config"),
    (GOOD, ["env.config.lanes_cont=3"],
     r"env.config.lanes_cont: highway-fast-v0 has no config key 'lanes_cont'; allowed: .*; "
     r"did you mean lanes_count\?$"),
    (GOOD.replace("n_envs: 2}", "n_envs: 2, config: {vehicles_density: 2}}").replace("highway-fast-v0", "merge-v0"), [],
     r"env.config.vehicles_density: merge-v0 has no config key"),  # highway-fast-v0 has it; merge-v0 does not
    (GOOD, ["training.total_timestep=5"], r"training.total_timestep: unknown key; .*did you mean total_timesteps\?"),
    (GOOD, ["training.total_timesteps=lots"], r"training.total_timesteps: .*valid integer.*'lots'"),
    (GOOD, ["env.n_envs=0"], r"env.n_envs: Input should be greater than or equal to 1"),
    (GOOD, ["env.backend=gpu"], r"env.backend: Input should be 'auto', 'envpool' or 'highway-env'"),
    (GOOD, ["env.id=highway-v9"], r"env.id: unknown scenario 'highway-v9'; allowed: .*highway-fast-v0, highway-v0"),
    (GOOD, ["agent.algo=dqm"], r"agent.algo: unknown algorithm 'dqm'; allowed: dqn, ppo"),
    (GOOD, ["agent.hyperparameters.n_step=5"], r"agent.hyperparameters.n_step: DopaminePPO has no such argument"),
    (GOOD, ["training.seed=-1"], r"training.seed: Input should be greater than or equal to 0"),
    ("name: t\n", [], r"training: required field is missing"),
    (GOOD, ["name=a b"], r"name: String should match pattern"),
])
def test_bad_files_name_the_field(tmp_path, text, overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text), overrides)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_override({}, "agent.algo")
    with pytest.raises(ConfigError, match="env.id is not a mapping"):
        apply_override({"env": {"id": "x"}}, "env.id.sub=1")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_dopamine_experiments_ship_the_rules_of_the_papers():
    """The presets run every rule of docs/architecture.md's table with DQN (a rule added later needs
    no preset: issue 22), and each names a registered module."""
    from neuro.dopamine import DOPAMINE_MODULES

    configs = [load_config(path) for path in (EXPERIMENTS / "dopamine").glob("*.yaml")]
    dqn_modules = {c.neuro["dopamine"]["type"] for c in configs if c.agent.algo == "dqn"}
    assert dqn_modules == {"standard", "asymmetric", "saturating", "biased_saturating", "opponent", "average_reward",
                           "distributional"}
    assert dqn_modules <= set(DOPAMINE_MODULES.entries)
    assert {"asymmetric", "distributional"} <= {c.neuro["dopamine"]["type"] for c in configs if c.agent.algo == "ppo"}


@pytest.mark.parametrize("overrides, expected", [
    (["neuro.dopamine={type: asymmetric, kappa: 1.2}"], r"neuro.dopamine.kappa: must be in \(-1, 1\)"),
    (["neuro.dopamine={type: dopa}"], r"neuro.dopamine.type: unknown dopamine type 'dopa'; allowed: standard"),
    (["neuro.serotonin={}"], r"neuro.serotonin: unknown neuro part; allowed: dopamine"),
    (["agent.algo=sac", "env.id=racetrack-v0", "neuro.dopamine={type: standard}"],
     r"neuro.dopamine: sac takes no dopamine part"),
])
def test_bad_neuro_sections_fail_before_training(tmp_path, overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, GOOD), overrides)


def test_overrides_and_sweeps_set_paths_through_a_null_mapping_alike(tmp_path):
    """One dotted-path setter: ``neuro.dopamine: null`` in the file is filled in by ``--set``, as a
    sweep's parameters fill it (the two used to disagree)."""
    from experiments.sweeps.spec import sweep_from_raw

    path = write(tmp_path, GOOD + "neuro: {dopamine: null}\n")
    config = load_config(path, ["neuro.dopamine.type=asymmetric", "neuro.dopamine.kappa=0.25"])
    assert config.neuro == {"dopamine": {"type": "asymmetric", "kappa": 0.25}}
    sweep = sweep_from_raw({"experiment": path.name, "parameters": {
        "neuro.dopamine.kappa": {"float": [-0.5, 0.5]}}, "fixed": {"neuro.dopamine.type": "asymmetric"},
        "pruner": "none"},
        "sweep.yaml", tmp_path, default_name="s")
    assert sweep.experiment({"neuro.dopamine.kappa": 0.25}, seed=0).neuro == config.neuro
    with pytest.raises(ConfigError, match=r"--set env.n_envs.x: env.n_envs is not a mapping \(it is 2\)"):
        load_config(path, ["env.n_envs.x=1"])
