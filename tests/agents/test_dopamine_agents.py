"""DQN and PPO wired to TD-error modules: stock parity, GAE on the signal, logging, all modules."""

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.logger import configure

from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from agents.registry import build
from envs import make_vec_env
from neuro.dopamine import AsymmetricTD

DQN_ARGS = {"learning_starts": 32, "buffer_size": 500, "batch_size": 16, "train_freq": 1,
            "target_update_interval": 40, "policy_kwargs": {"net_arch": [32, 32]}}
PPO_ARGS = {"n_steps": 32, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [32]}}
MODULES = [
    {"type": "standard"},
    {"type": "asymmetric", "kappa": 0.3},
    {"type": "saturating", "compression": 0.2, "ceiling": 0.5},
    {"type": "opponent", "gain_positive": 1.0, "gain_negative": 2.0},
    {"type": "average_reward", "eta": 0.05},
    {"type": "distributional", "n_channels": 5},
    {"type": "distributional", "n_channels": 3, "code": "quantile"},
]


def assert_same_parameters(ours, stock):
    for (name, ours_param), stock_param in zip(ours.policy.state_dict().items(),
                                               stock.policy.state_dict().values(), strict=True):
        assert torch.equal(ours_param, stock_param), name


@pytest.mark.parametrize("backend", ["envpool", "highway-env"])
def test_standard_dqn_is_stock_dqn(backend):
    """Same seed, same config: identical parameters after 170 gradient updates."""
    ours = DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=4, backend=backend),
                       neuro={"dopamine": {"type": "standard"}}, seed=4, device="cpu", **DQN_ARGS)
    ours.learn(200)
    stock = DQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=4, backend=backend), seed=4,
                device="cpu", **DQN_ARGS)
    stock.learn(200)
    assert ours._n_updates == stock._n_updates > 150
    assert_same_parameters(ours, stock)


def test_standard_ppo_is_stock_ppo():
    ours = DopaminePPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=4), seed=4, device="cpu",
                       **PPO_ARGS)
    ours.learn(192)
    stock = PPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=4), seed=4, device="cpu", **PPO_ARGS)
    stock.learn(192)
    assert ours._n_updates == stock._n_updates > 0
    assert_same_parameters(ours, stock)


def numpy_gae(rewards, values, episode_starts, last_values, dones, gamma, lam, transform):
    """Textbook GAE over transformed one-step errors, one env column at a time."""
    n_steps, n_envs = rewards.shape
    advantages = np.zeros_like(rewards, dtype=np.float64)
    for env in range(n_envs):
        running = 0.0
        for t in reversed(range(n_steps)):
            if t == n_steps - 1:
                next_value, next_live = last_values[env], 1.0 - dones[env]
            else:
                next_value, next_live = values[t + 1, env], 1.0 - episode_starts[t + 1, env]
            delta = rewards[t, env] + gamma * next_value * next_live - values[t, env]
            running = transform(delta) + gamma * lam * next_live * running
            advantages[t, env] = running
    return advantages


def test_ppo_gae_runs_on_the_transformed_errors():
    model = DopaminePPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=1),
                        neuro={"dopamine": {"type": "asymmetric", "kappa": 0.5}}, seed=1, device="cpu",
                        gamma=0.9, gae_lambda=0.8, **PPO_ARGS)
    # One rollout by hand: after learn() SB3 has flattened the buffer for minibatches.
    _, callback = model._setup_learn(64, None)
    callback.on_training_start(locals(), globals())
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=32)
    buffer = model.rollout_buffer
    last_values = np.random.default_rng(0).normal(size=2).astype(np.float32)
    dones = np.array([True, False])
    buffer.compute_returns_and_advantage(torch.from_numpy(last_values), dones)
    kappa = 0.5
    expected = numpy_gae(buffer.rewards.astype(np.float64), buffer.values.astype(np.float64),
                         buffer.episode_starts, last_values, dones.astype(float), 0.9, 0.8,
                         lambda d: (1 - kappa) * d if d > 0 else (1 + kappa) * d)
    assert buffer.advantages == pytest.approx(expected, abs=1e-4)
    assert buffer.returns == pytest.approx(expected + buffer.values, abs=1e-4)
    assert np.any(buffer.episode_starts[1:])  # the rollout crossed episode boundaries


@pytest.mark.parametrize("spec", MODULES, ids=lambda s: f"{s['type']}-{s.get('code', '')}")
def test_each_module_trains_dqn_without_nan(spec, tmp_path):
    model = build("dqn", make_vec_env("highway-fast-v0", 2, seed=0), hyperparameters=
                  {k: v for k, v in DQN_ARGS.items() if k != "policy_kwargs"},
                  policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu", neuro={"dopamine": spec})
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(300)
    for parameter in model.policy.parameters():
        assert torch.isfinite(parameter).all()
    logged = open(tmp_path / "progress.csv").readline()
    for key in ("neuro/dopamine/td_error_mean", "neuro/dopamine/td_error_std", "neuro/dopamine/fraction_positive",
                "neuro/dopamine/signal_mean", "neuro/dopamine/signal_std"):
        assert key in logged
    extra = {"opponent": ["neuro/dopamine/dopamine", "neuro/dopamine/serotonin"],
             "average_reward": ["neuro/dopamine/reward_rate"],
             "distributional": ["neuro/dopamine/value_spread", "neuro/dopamine/channel_value/tau_0.500"]}
    for key in extra.get(spec["type"], []):
        assert key in logged


@pytest.mark.parametrize("spec", MODULES, ids=lambda s: f"{s['type']}-{s.get('code', '')}")
def test_each_module_trains_ppo_without_nan(spec):
    model = build("ppo", make_vec_env("highway-fast-v0", 2, seed=0),
                  hyperparameters={k: v for k, v in PPO_ARGS.items() if k != "policy_kwargs"},
                  policy_kwargs={"net_arch": [32]}, seed=0, device="cpu", neuro={"dopamine": spec})
    model.learn(192)
    for parameter in model.policy.parameters():
        assert torch.isfinite(parameter).all()


def test_distributional_dqn_acts_on_the_tau_half_head():
    model = DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=0),
                        neuro={"dopamine": {"type": "distributional", "taus": [0.1, 0.5, 0.9]}}, seed=0,
                        device="cpu", **DQN_ARGS)
    observations = torch.as_tensor(make_vec_env("highway-fast-v0", 2, seed=0).reset())
    channels = model.q_net.all_channels(observations)
    assert channels.shape == (2, 3, 5)
    assert torch.equal(model.q_net(observations), channels[:, 1])
    actions, _ = model.predict(observations.numpy(), deterministic=True)
    assert np.array_equal(actions, channels[:, 1].argmax(dim=1).numpy())


def test_module_state_survives_save_and_load(tmp_path):
    model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0),
                  hyperparameters={"learning_starts": 20, "buffer_size": 200},
                  seed=0, device="cpu", neuro={"dopamine": {"type": "average_reward", "eta": 0.1}})
    model.learn(100)
    rate = model.dopamine.reward_rate
    assert rate != 0.0
    model.save(tmp_path / "model.zip")
    assert DopamineDQN.load(tmp_path / "model.zip").dopamine.reward_rate == rate


def test_module_object_passes_through():
    module = AsymmetricTD(-0.4)
    model = build("dqn", make_vec_env("highway-fast-v0", 1), seed=0, device="cpu", neuro={"dopamine": module})
    assert model.dopamine is module


def test_errors_for_algorithms_without_a_module():
    with pytest.raises(ValueError, match="neuro.dopamine: SAC takes no dopamine part; algorithms that do: dqn, ppo"):
        build("sac", make_vec_env("racetrack-v0", 1, backend="highway-env"), neuro={"dopamine": {"type": "asymmetric"}})
    with pytest.raises(ValueError, match="clip_range_vf: not supported with a multi-channel distributional"):
        build("ppo", make_vec_env("highway-fast-v0", 1), hyperparameters={"clip_range_vf": 0.2},
              neuro={"dopamine": {"type": "distributional", "n_channels": 5}})


def test_distributional_ppo_channel_targets_follow_each_channels_rule():
    """Each channel's target is V_i + GAE of its own transformed errors a_i(+/-) delta_i (numpy
    reference); the policy's advantage is the tau = 0.5 channel's plain GAE."""
    taus = [0.1, 0.5, 0.9]
    model = DopaminePPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=1),
                        neuro={"dopamine": {"type": "distributional", "taus": taus}}, seed=1, device="cpu",
                        gamma=0.9, gae_lambda=0.8, **PPO_ARGS)
    _, callback = model._setup_learn(64, None)
    callback.on_training_start(locals(), globals())
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=32)
    buffer = model.rollout_buffer
    assert buffer.values.shape == (32, 2, 3) and buffer.returns.shape == (32, 2, 3)
    with torch.no_grad():
        last_values = model.policy.all_values(torch.as_tensor(model._last_obs)).numpy()
    dones = model._last_episode_starts.astype(float)  # the rollout's last dones, as SB3 passed them
    for channel, tau in enumerate(taus):
        def rule(delta, tau=tau):
            return 2 * tau * delta if delta > 0 else 2 * (1 - tau) * delta

        expected = numpy_gae(buffer.rewards.astype(np.float64), buffer.values[..., channel].astype(np.float64),
                             buffer.episode_starts, last_values[:, channel], dones, 0.9, 0.8, rule)
        assert buffer.returns[..., channel] == pytest.approx(expected + buffer.values[..., channel], abs=1e-4)
    acting = numpy_gae(buffer.rewards.astype(np.float64), buffer.values[..., 1].astype(np.float64),
                       buffer.episode_starts, last_values[:, 1], dones, 0.9, 0.8, lambda d: d)
    assert buffer.advantages == pytest.approx(acting, abs=1e-4)
    # The acting channel is what SB3's collection stored and what the policy reports.
    observations = torch.as_tensor(buffer.observations[0])
    assert torch.allclose(model.policy.predict_values(observations), model.policy.all_values(observations)[:, 1:2])


def test_distributional_ppo_trains_and_saves(tmp_path):
    model = build("ppo", make_vec_env("highway-fast-v0", 2, seed=0),
                  hyperparameters={k: v for k, v in PPO_ARGS.items() if k != "policy_kwargs"},
                  policy_kwargs={"net_arch": [32]}, seed=0, device="cpu",
                  neuro={"dopamine": {"type": "distributional", "n_channels": 5}})
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(192)
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    assert "neuro/dopamine/value_spread" in open(tmp_path / "progress.csv").readline()
    model.save(tmp_path / "model.zip")
    loaded = DopaminePPO.load(tmp_path / "model.zip")
    assert loaded.policy.value_net.out_features == 5
    assert loaded.rollout_buffer.channel_values is not None


def test_saved_zip_holds_the_parts_once_and_no_logging_buffers(tmp_path):
    from stable_baselines3.common.save_util import load_from_zip_file

    model = build("dqn", make_vec_env("highway-fast-v0", 1), hyperparameters={"learning_starts": 20},
                  seed=0, device="cpu", neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})
    model.learn(60)
    model.save(tmp_path / "model.zip")
    data, _, _ = load_from_zip_file(tmp_path / "model.zip", device="cpu")
    assert "neuro" in data and "dopamine" not in data
    assert "_neuro_log" not in data  # the recent TD errors are logging state, not model state


def test_a_zip_saved_before_parts_were_grouped_loads_its_module(tmp_path):
    """Zips written before ``neuro`` held the parts carry the module as ``dopamine``: loading one
    (a resume of an older run) must keep that module, not fall back to standard TD."""
    from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file

    model = build("dqn", make_vec_env("highway-fast-v0", 1), seed=0, device="cpu",
                  neuro={"dopamine": {"type": "distributional", "n_channels": 5}})
    model.save(tmp_path / "new.zip")
    data, params, variables = load_from_zip_file(tmp_path / "new.zip", device="cpu")
    data["dopamine"] = data.pop("neuro")["dopamine"]  # the earlier layout
    save_to_zip_file(tmp_path / "old.zip", data=data, params=params, pytorch_variables=variables)
    loaded = DopamineDQN.load(tmp_path / "old.zip", device="cpu")
    assert type(loaded.dopamine).__name__ == "DistributionalTD" and loaded.dopamine.n_channels == 5
    assert "dopamine" not in vars(loaded)
    assert loaded.q_net.q_net[-1].out_features == 5 * 5  # channels x actions, as saved
