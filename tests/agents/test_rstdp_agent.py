"""An on-policy agent whose spiking actor's readout learns by reward-modulated STDP while it drives:
the rule's dopamine is the critic's TD error through the dopamine module (checked by hand on one step),
the readout moves by the rule only, and the traces travel with the model (save/load, resume)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.plasticity import PlasticityStep, plastic_actor
from agents.registry import build, get_algorithm
from envs import make_vec_env
from experiments.config import ConfigError, load_config
from tests_support import EXPERIMENTS, KeyRecorder

PLASTICITY = {"type": "rstdp", "learning_rate": 0.05, "tau_plus": 3.0, "tau_minus": 3.0, "tau_eligibility": 10.0}
SNN = {"timesteps": 3, "plasticity": PLASTICITY}
PPO_SMALL = {"n_steps": 16, "batch_size": 32, "n_epochs": 2}


def plastic_ppo(env: Any, plasticity: dict[str, Any] | None = None, neuro: dict[str, Any] | None = None,
                seed: int = 0):
    snn = {**SNN, "plasticity": {**PLASTICITY, **(plasticity or {})}}
    return build("ppo", env, "spiking", PPO_SMALL, {"net_arch": [16]}, seed=seed, device="cpu", snn=snn, neuro=neuro)


def cartpole(n_envs: int = 2) -> DummyVecEnv:
    return DummyVecEnv([lambda: gymnasium.make("CartPole-v1") for _ in range(n_envs)])


@pytest.mark.slow
def test_an_rstdp_agent_drives_on_highway_and_its_readout_moves_by_the_rule_only():
    model = plastic_ppo(make_vec_env("highway-fast-v0", 2, seed=0, backend="envpool"))
    network = plastic_actor(model)
    assert network is not None and not network.readout.weight.requires_grad
    readout, trunk = network.readout.weight.clone(), network.layers[0].weight.clone()
    model.learn(160)
    assert not torch.equal(network.readout.weight, readout)  # the rule moved it
    assert not torch.equal(network.layers[0].weight, trunk)  # surrogate gradients moved the trunk


def test_with_the_rules_learning_rate_zero_the_readout_never_moves_while_the_trunk_learns():
    frozen = plastic_ppo(cartpole(), {"learning_rate": 0.0})
    network = plastic_actor(frozen)
    readout, trunk = network.readout.weight.clone(), network.layers[0].weight.clone()
    frozen.learn(96)
    assert torch.equal(network.readout.weight, readout)  # PPO's gradient steps never touch it
    assert not torch.equal(network.layers[0].weight, trunk)


def test_the_rules_dopamine_is_the_modules_signal_of_the_critics_td_error_by_hand():
    """One step: env 0 goes on (reward 1), env 1 terminates (reward -1); asymmetric kappa = 0.3."""
    model = plastic_ppo(cartpole(), neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})
    network = plastic_actor(model)
    obs = torch.as_tensor(model.env.reset(), dtype=torch.float32)
    new_obs = obs.numpy() * 0.5
    with torch.no_grad():
        values = model.policy.predict_values(obs)
        next_values = model.policy.predict_values(torch.as_tensor(new_obs)).flatten()
    delta = np.array([1.0 + model.gamma * next_values[0].item() - values[0].item(), -1.0 - values[1].item()])
    signal = np.where(delta > 0, 0.7 * delta, 1.3 * delta)
    replay = copy.deepcopy(network)  # the eligibility the step will see, replayed apart
    actions = np.array([1, 0])
    replay.record_decision(obs, torch.nn.functional.one_hot(torch.as_tensor(actions), 2))
    eligibility = replay.plasticity_rules[0].eligibility
    before = network.readout.weight.clone()
    step = PlasticityStep(model, None, network)  # type: ignore[arg-type]  # no callback needed here
    step.plasticity_step({"obs_tensor": obs, "actions": actions, "values": values, "rewards": np.array([1.0, -1.0]),
                          "new_obs": new_obs, "dones": np.array([False, True]), "infos": [{}, {}]})
    np.testing.assert_allclose(step._signals[0].numpy(), signal, rtol=1e-5)
    expected = before + 0.05 * (torch.as_tensor(signal, dtype=torch.float32).reshape(2, 1, 1) * eligibility).mean(0)
    assert torch.allclose(network.readout.weight, expected, atol=1e-6)
    rule = network.plasticity_rules[0]
    # env 1's episode ended: its traces start over; env 0's go on
    assert rule.eligibility[1].abs().sum() == 0 and torch.equal(rule.eligibility[0], eligibility[0])


def test_save_and_load_keep_the_traces_and_the_actions(tmp_path: Path):
    model = plastic_ppo(cartpole())
    model.learn(64)
    model.save(tmp_path / "model.zip")
    loaded = get_algorithm("ppo").load(tmp_path / "model.zip", device="cpu")
    ours, theirs = plastic_actor(model), plastic_actor(loaded)
    assert ours.plasticity_rules[0].eligibility.abs().sum() > 0
    assert {"plasticity_rules.0.eligibility", "plasticity_rules.0.pre_trace"} <= theirs.state_dict().keys()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, theirs.state_dict()[name]), name
    observations = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    assert np.array_equal(model.predict(observations, deterministic=True)[0],
                          loaded.predict(observations, deterministic=True)[0])


def test_a_resumed_run_equals_the_uninterrupted_one():
    """Three rollouts in one go, or two, a save, a load (envs, last observation and RNG carried as the
    run's checkpoints carry them) and the third: the same parameters and traces."""
    uninterrupted = plastic_ppo(cartpole())
    uninterrupted.learn(96)

    first = plastic_ppo(cartpole())
    first.learn(64)
    buffer = io.BytesIO()
    first.save(buffer)
    env_state = cloudpickle.dumps(first.env)
    last_obs, starts = first._last_obs.copy(), first._last_episode_starts.copy()
    rng, np_rng = torch.get_rng_state(), np.random.get_state()  # SB3 shuffles minibatches with numpy's
    buffer.seek(0)
    resumed = get_algorithm("ppo").load(buffer, env=cloudpickle.loads(env_state), device="cpu")
    resumed._last_obs, resumed._last_episode_starts = last_obs, starts
    torch.set_rng_state(rng)
    np.random.set_state(np_rng)
    resumed.learn(32, reset_num_timesteps=False)
    ours, theirs = resumed.policy.state_dict(), uninterrupted.policy.state_dict()
    assert any("eligibility" in name for name in ours)
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name


def test_plasticity_is_logged_under_neuro_plasticity():
    model = plastic_ppo(cartpole())
    recorder = KeyRecorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(64, log_interval=1)
    expected = {"neuro/plasticity/td_error_mean", "neuro/plasticity/dopamine_mean", "neuro/plasticity/weight_change",
                "neuro/plasticity/readout/eligibility_norm", "neuro/plasticity/readout/pre_trace_norm",
                "neuro/plasticity/readout/post_trace_norm"}
    assert expected <= recorder.keys, expected - recorder.keys


def test_the_presets_sweep_by_dotted_path_and_bad_values_are_one_line():
    preset = EXPERIMENTS / "plasticity" / "ppo_rstdp.yaml"
    config = load_config(preset, ["agent.snn.plasticity.learning_rate=0.01", "agent.snn.plasticity.layers=all"])
    assert config.agent.snn.plasticity.model_extra["learning_rate"] == 0.01
    assert config.agent.snn.plasticity.layers == "all"
    twin = load_config(EXPERIMENTS / "plasticity" / "ppo_spiking_surrogate.yaml")
    assert twin.agent.snn.plasticity is None
    assert twin.agent.policy_kwargs == config.agent.policy_kwargs
    with pytest.raises(ConfigError, match=r"agent\.snn\.plasticity.*tau_plus") as error:
        load_config(preset, ["agent.snn.plasticity.tau_plus=-1"])
    assert "\n" not in str(error.value).strip()


def test_an_agent_that_would_not_drive_the_rule_refuses_it():
    env = make_vec_env("highway-fast-v0", 1, seed=0, backend="envpool")
    with pytest.raises(ValueError, match=r"agent\.snn\.plasticity: .* on-policy"):
        build("dqn", env, "spiking", {"learning_starts": 10}, {"net_arch": [16]}, seed=0, device="cpu",
              snn={"plasticity": PLASTICITY})


def test_the_network_part_shape_takes_the_same_plasticity():
    """``policy_kwargs.network: {type: spiking, plasticity: ...}`` (no ``agent.policy: spiking``) is the same agent."""
    model = build("ppo", cartpole(), None, PPO_SMALL, {"net_arch": [16], "network": {"type": "spiking", **SNN}},
                  seed=0, device="cpu")
    network = plastic_actor(model)
    assert network is not None and network.plasticity_rules[0].learning_rate == PLASTICITY["learning_rate"]
    readout = network.readout.weight.clone()
    model.learn(96)
    twin = plastic_ppo(cartpole())  # built after: the same seeded start for its learning
    twin.learn(96)
    assert not torch.equal(network.readout.weight, readout)
    assert torch.equal(network.readout.weight, plastic_actor(twin).readout.weight)
