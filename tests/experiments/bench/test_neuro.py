"""The neuro bench times stock SB3 and each module on the same shipped config, both built through
the one build path."""

from __future__ import annotations

import stable_baselines3
import torch

from agents.dopamine_dqn import DopamineDQN
from experiments.bench.neuro import build_training_model, preset_config


def test_the_reference_is_stock_sb3_on_the_same_config_as_the_modules():
    config = preset_config("highway_dqn.yaml", seed=0, torch_threads=1)
    assert config.env.backend == "envpool" and config.agent.hyperparameters["gamma"] == 0.8  # the preset's
    stock = build_training_model(config, None)
    module = build_training_model(config, {"type": "standard"})
    try:
        assert type(stock) is stable_baselines3.DQN and type(module) is DopamineDQN
        for name in ("learning_rate", "buffer_size", "batch_size", "gamma", "target_update_interval"):
            assert getattr(stock, name) == getattr(module, name) == config.agent.hyperparameters[name]
        for ours, theirs in zip(module.policy.state_dict().values(), stock.policy.state_dict().values(), strict=True):
            assert torch.equal(ours, theirs)  # same seed, same network: the same start
    finally:
        stock.get_env().close()
        module.get_env().close()
