"""The one build path: a config's envs and model, as stock SB3 would build them."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3 import DQN

from experiments.config import ConfigError, load_config
from experiments.runs.build import build_run, resolve_backend
from neuro.dopamine import DOPAMINE_MODULES
from tests_support import EXPERIMENTS


def test_the_built_model_is_stock_sb3_with_the_configs_arguments():
    """Independent truth: SB3's own DQN, given the config's hyperparameters by hand, starts from the
    same weights."""
    config, choice = resolve_backend(load_config(EXPERIMENTS / "smoke.yaml", ["training.seed=3"]))
    assert choice.backend == config.env.backend == "envpool"
    built = build_run(config)
    try:
        assert built.env.num_envs == config.env.n_envs
        assert built.eval_env is not None and built.eval_env.num_envs == config.training.eval_n_envs
        stock = DQN("MlpPolicy", built.env, seed=3, device="cpu", policy_kwargs=config.agent.policy_kwargs or None,
                    **config.agent.hyperparameters)
        for ours, theirs in zip(built.model.policy.state_dict().values(), stock.policy.state_dict().values(),
                                strict=True):
            assert torch.equal(ours, theirs)
        assert DOPAMINE_MODULES.name_of(type(built.model.dopamine)) == "standard"
    finally:
        built.close()


def test_building_errors_are_configuration_errors():
    config = load_config(EXPERIMENTS / "smoke.yaml", [
        "env.backend=envpool", "env.config.other_vehicles_type=highway_env.vehicle.behavior.AggressiveVehicle"])
    with pytest.raises(ConfigError, match="env.config.other_vehicles_type: the EnvPool port"):
        resolve_backend(config)
    bad = load_config(EXPERIMENTS / "smoke.yaml", [
        "agent.policy_kwargs={features_extractor_class: agents.extractors.EgoAttention, "
        "features_extractor_kwargs: {embed_dim: 5, heads: 2}}"])
    with pytest.raises(ConfigError, match="embed_dim: must divide by heads=2"):
        build_run(resolve_backend(bad)[0], with_eval_env=False)
