"""RecurrentPPO with a backpropamine network part (``agents.recurrent_policies``): it trains, its per-env
states round-trip through sb3-contrib's rollout buffer (the replayed sequences give the rollout's values
and log-probabilities), a saved model acts as the one saved, the non-plastic twin's A stays zero, its
trace statistics are logged, and the refusals are one line naming the field."""

import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from agents.callbacks import SpikeLogCallback
from agents.recurrent_policies import NetworkRecurrentPolicy, rollout_state_bytes
from agents.registry import build, get_algorithm
from envs import make_vec_env
from envs.robustness import PreviousReward
from experiments.config import load_config
from experiments.runs.session import resume, train
from neuro.backpropamine import BackpropamineLayer
from tests_support import EXPERIMENTS

HYPERPARAMETERS = {"n_steps": 48, "batch_size": 32, "n_epochs": 2}


def model(network: dict, seed: int = 0, n_envs: int = 2, hyperparameters: dict | None = None, **policy_kwargs):
    env = make_vec_env("highway-fast-v0", n_envs, seed=seed, backend="envpool")
    if network.get("modulation") == "dopamine":
        env = PreviousReward(env)
    return build("recurrent_ppo", env, None, {**HYPERPARAMETERS, **(hyperparameters or {})},
                 {"net_arch": [8], "network": {"type": "backpropamine", **network}, **policy_kwargs},
                 seed=seed, device="cpu")


@pytest.mark.parametrize(("mode", "modulation"), [("simple", "network"), ("retroactive", "network"),
                                                  ("retroactive", "dopamine")])
def test_stored_states_replay_to_the_rollouts_values_and_log_probs(mode, modulation):
    agent = model({"mode": mode, "modulation": modulation})
    assert type(agent.policy) is NetworkRecurrentPolicy
    assert isinstance(agent.policy.lstm_actor.part, BackpropamineLayer)
    state_size = 8 + (1 if mode == "simple" else 2) * 64 + (modulation == "dopamine")  # + V(s_{t-1})
    assert agent.rollout_buffer.hidden_states_pi.shape == (48, 1, 2, (state_size + 1) // 2)
    _, callback = agent._setup_learn(96, None)
    callback.on_training_start(locals(), globals())
    agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    buffer = agent.rollout_buffer
    assert buffer.episode_starts[1:].sum() > 0  # episodes end inside the rollout: resets are replayed too
    assert np.abs(buffer.hidden_states_pi[-1]).max() > 0.01  # traces are not all zero
    agent.policy.set_training_mode(False)
    checked = zero_state_changed = 0
    for data in buffer.get(16):  # short sequences: most start from a stored mid-episode state
        mask = data.mask > 1e-8
        with torch.no_grad():
            values, log_prob, _ = agent.policy.evaluate_actions(
                data.observations, data.actions.long().flatten(), data.lstm_states, data.episode_starts)
            zeroed = type(data.lstm_states)(*(tuple(torch.zeros_like(s) for s in pair) for pair in data.lstm_states))
            _, log_prob_from_zero, _ = agent.policy.evaluate_actions(
                data.observations, data.actions.long().flatten(), zeroed, data.episode_starts)
        torch.testing.assert_close(values.flatten()[mask], data.old_values[mask], rtol=0, atol=1e-5)
        torch.testing.assert_close(log_prob[mask], data.old_log_prob[mask], rtol=0, atol=1e-5)
        zero_state_changed += int(not torch.allclose(log_prob_from_zero[mask], data.old_log_prob[mask], atol=1e-5))
        checked += int(mask.sum())
    assert checked == 48 * 2
    assert zero_state_changed > 0  # the check sees the stored state: without it the values differ


def test_trains_saves_and_loads_to_the_same_actions(tmp_path):
    agent = model({"mode": "retroactive"})
    agent.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    agent.learn(192, callback=SpikeLogCallback())
    logged = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"neuro/network/hebb_norm", "neuro/network/eligibility_norm", "neuro/network/modulation_mean",
            "neuro/network/weight_change", "neuro/network/parameter_change"} <= set(logged)
    agent.save(tmp_path / "model.zip")
    loaded = get_algorithm("recurrent_ppo").load(tmp_path / "model.zip", device="cpu")
    assert type(loaded.policy) is NetworkRecurrentPolicy
    env = make_vec_env("highway-fast-v0", 2, seed=5, backend="envpool")
    observation, states, starts = env.reset(), None, np.ones(2, dtype=bool)
    other_states = None
    for _ in range(6):  # states carried step to step: the traces, not just one decision
        action, states = agent.predict(observation, states, starts, deterministic=True)
        other, other_states = loaded.predict(observation, other_states, starts, deterministic=True)
        assert np.array_equal(action, other)
        assert all(np.array_equal(a, b) for a, b in zip(states, other_states, strict=True))
        observation, _, starts, _ = env.step(action)


def test_the_non_plastic_twin_keeps_a_at_zero_and_stores_only_its_activations():
    agent = model({"plastic": False})
    part = agent.policy.lstm_actor.part
    assert part.state_size == 8 and "alpha" not in dict(agent.policy.named_parameters())
    agent.learn(96)
    assert torch.count_nonzero(part.alpha) == 0 and torch.count_nonzero(agent.policy.lstm_critic.part.alpha) == 0


def test_rollout_state_memory():
    # n_steps x n_envs x state floats x 4 B x (actor + critic); the shipped presets: hidden 32, simple
    assert rollout_state_bytes(32 + 32 * 32, 128, 4) == 128 * 4 * 1056 * 4 * 2 == 4_325_376
    assert rollout_state_bytes(32, 128, 4) == 131_072


@pytest.mark.parametrize(("policy_kwargs", "message"), [
    ({"network": {"type": "backpropamine", "modulation": "dopamine"}},
     r"agent\.policy_kwargs\.network\.modulation: 'dopamine' reads r\(t-1\) .* previous_reward"),
    ({"network": {"type": "backpropamine"}, "dopamine": {"type": "standard"}},
     r"agent\.policy_kwargs\.dopamine: only read with network\.modulation: dopamine"),
    ({"network": {"type": "backpropamine"}, "lstm_hidden_size": 16}, r"agent\.policy_kwargs\.lstm_hidden_size"),
    ({"network": {"type": "backpropamine"}, "net_arch": [8, 8]}, r"agent\.policy_kwargs\.net_arch: one size"),
    ({"network": {"type": "mlp"}}, r"agent\.policy_kwargs\.network: recurrent_ppo takes a recurrent network part"),
])
def test_refusals_name_the_field(policy_kwargs, message):
    env = make_vec_env("highway-fast-v0", 1, seed=0, backend="envpool")
    with pytest.raises(ValueError, match=message):
        build("recurrent_ppo", env, None, HYPERPARAMETERS, policy_kwargs, seed=0, device="cpu")


class CrashAfter(BaseCallback):
    """Fails the run once it passes ``step`` (after a checkpoint), as a crash would."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_timesteps > self.step:
            raise RuntimeError("crash")
        return True


@pytest.mark.slow
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    # The checkpoint carries RecurrentPPO's per-env state (here the mid-episode traces), which sb3-contrib's
    # own save leaves out: without it the resumed rollout would start from zero traces.
    overrides = [f"logging.root={tmp_path}", "env.backend=highway-env", "env.n_envs=1", "agent.algo=recurrent_ppo",
                 "agent.hyperparameters={n_steps: 24, batch_size: 24, n_epochs: 1, gamma: 0.8}",
                 "agent.policy_kwargs={net_arch: [8], network: {type: backpropamine, mode: retroactive}}",
                 "training.total_timesteps=96", "training.checkpoint_every=24", "training.eval_every=0"]
    reference = train(load_config(EXPERIMENTS / "smoke.yaml", [*overrides, "name=reference"]))
    with pytest.raises(RuntimeError, match="crash"):
        train(load_config(EXPERIMENTS / "smoke.yaml", [*overrides, "name=crashed"]), callbacks=[CrashAfter(60)])
    (crashed,) = (tmp_path / "crashed").iterdir()
    resumed = resume(crashed)
    assert json.loads((resumed / "run.json").read_text())["resumed"][0]["from_step"] == 48
    ours, theirs = (get_algorithm("recurrent_ppo").load(folder / "model.zip", device="cpu").policy.state_dict()
                    for folder in (resumed, reference))
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def test_a_sweep_reaches_the_part_by_dotted_path(tmp_path):
    from experiments.config import ConfigError
    from experiments.sweeps.spec import load_sweep

    preset = EXPERIMENTS / "plasticity" / "recurrent_ppo_backpropamine.yaml"
    body = (f"experiment: {preset}\nparameters:\n  agent.policy_kwargs.network.clip: {{float: [{{low}}, 2.0]}}\n"
            "  agent.policy_kwargs.network.mode: {categorical: [simple, retroactive]}\n"
            "objective: mean_return\nseeds: 1\nbudget: 2000\neval_every: 1000\nn_trials: 2\n")
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(body.replace("{low}", "0.2"))
    bad.write_text(body.replace("{low}", "-1.0"))
    load_sweep(good)
    with pytest.raises(ConfigError, match=r"agent\.policy_kwargs\.network\.clip: must be > 0"):
        load_sweep(bad)


def test_the_dopamine_third_factor_is_the_modules_transform_of_the_online_td_error():
    # M(t) = D(r(t-1) + gamma V(s_t) - V(s_{t-1})), D asymmetric (Mihatsch & Neuneier 2002):
    # d' = (1 - k) d for d > 0, (1 + k) d otherwise; 0 at an episode's first step. Checked by hand from the
    # rollout's stored observations (r(t-1) is their last feature), values and episode starts.
    kappa, gamma = 0.5, 0.7
    agent = model({"modulation": "dopamine"}, hyperparameters={"gamma": gamma},
                  dopamine={"type": "asymmetric", "kappa": kappa})
    assert agent.policy.gamma == gamma and agent.policy.lstm_critic is None
    part = agent.policy.lstm_actor.part
    seen = []
    original = part.sequence

    def spy(inputs, state, starts, modulation=None):
        seen.append(modulation.clone())
        return original(inputs, state, starts, modulation)

    part.sequence = spy
    _, callback = agent._setup_learn(96, None)
    callback.on_training_start(locals(), globals())
    agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    buffer = agent.rollout_buffer
    rollout = seen[:48]  # the rollout's decisions: one (1, n_envs) signal per step
    assert buffer.episode_starts[1:].sum() > 0
    for t in range(1, 48):
        delta = buffer.observations[t, :, -1] + gamma * buffer.values[t] - buffer.values[t - 1]
        expected = np.where(delta > 0, (1 - kappa) * delta, (1 + kappa) * delta) * (1 - buffer.episode_starts[t])
        np.testing.assert_allclose(rollout[t][0].numpy(), expected, atol=1e-5)
    assert np.abs(np.concatenate([m.numpy().ravel() for m in rollout])).max() > 0.05
