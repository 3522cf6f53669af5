"""DQN and PPO wired to TD-error modules: stock parity, GAE on the signal, logging, all modules."""

import gymnasium
import numpy as np
import pytest
import small_mdps
import torch
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from agents.registry import build
from envs import make_vec_env
from neuro.dopamine import AsymmetricTD
from tests_support import BOTH_BACKENDS

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


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
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
    with pytest.raises(ValueError, match="neuro.dopamine: sac takes no dopamine part; algorithms that do: dqn, ppo"):
        build("sac", make_vec_env("racetrack-v0", 1, backend="highway-env"), neuro={"dopamine": {"type": "asymmetric"}})
    with pytest.raises(ValueError, match="clip_range_vf: not supported with a multi-channel distributional"):
        build("ppo", make_vec_env("highway-fast-v0", 1), hyperparameters={"clip_range_vf": 0.2},
              neuro={"dopamine": {"type": "distributional", "n_channels": 5}})


class StepLog(gymnasium.Wrapper):
    """What the env returned at each step, before any VecEnv or SB3 bookkeeping: (observation acted
    on, reward, terminated, truncated, next observation; the final one where an episode ended)."""

    def __init__(self, env):
        super().__init__(env)
        self.log = []
        self._observation = None

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self._observation = observation
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.log.append((self._observation, float(reward), terminated, truncated, observation))
        self._observation = observation
        return observation, reward, terminated, truncated, info


def chain_venv(n_envs=2, length=6, time_limit=3):
    """BernoulliChain episodes under a time limit: starts 0-2 are truncated after 3 steps, starts 3-5
    terminate (start 3 on the limit's own step: a termination)."""
    return DummyVecEnv([lambda: StepLog(TimeLimit(small_mdps.BernoulliChain(length=length), time_limit))
                        for _ in range(n_envs)])


CHAIN_PPO_ARGS = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "gamma": 0.9, "gae_lambda": 0.8,
                  "policy_kwargs": {"net_arch": [16]}, "device": "cpu"}
TAUS_5 = np.array([0.1, 0.3, 0.5, 0.7, 0.9])  # the quantile code's taus for n_channels = 5
ACTING_WEIGHTS_5 = {  # from each statistic's definition, not from the module
    "mean": np.full(5, 0.2),  # quantile code: the average of the channels
    "tau=0.6": np.array([0, 0, 0.5, 0.5, 0]),  # halfway between the 0.5 and 0.7 channels
    "cvar=0.5": np.array([0.4, 0.4, 0.2, 0, 0]),  # the lowest half of 5 atoms of mass 0.2: two, and half the third
}


def channel_values(model, observations):
    with torch.no_grad():
        return model.policy.all_values(torch.as_tensor(np.asarray(observations))).numpy().astype(np.float64)


def quantile_rule(td_error, taus):
    """Channel i's signal on errors (..., samples, channels): 2 tau_i sign(d) if d > 0, else 2 (1 - tau_i) sign(d)."""
    return np.where(td_error > 0, 2 * taus, 2 * (1 - taus)) * np.sign(td_error)


def gae(signal, cut, decay):
    """A_t = signal_t + decay (1 - cut_t) A_{t+1}, A_T = 0; signal (T, ...), cut (T,) or broadcastable."""
    out = np.zeros_like(signal)
    running = np.zeros_like(signal[0])
    for t in reversed(range(len(signal))):
        running = signal[t] + decay * (1 - cut[t]) * running
        out[t] = running
    return out


def all_pairs_reference(values, targets, taus, weights, acting_td_error, cut, decay):
    """Per-channel returns V_i + GAE(mean_j rule_i(target_j - V_i)) and the acting statistic's GAE."""
    signal = quantile_rule(targets[..., :, None] - values[..., None, :], taus).mean(axis=-2)
    return values + gae(signal, cut[..., None], decay), gae(acting_td_error, cut, decay)


def collect_one_rollout(model):
    """One rollout as learn() collects it (after learn() SB3 has flattened the buffer for minibatches);
    returns each env's StepLog entries for it, (steps, envs) of tuples."""
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    callback.on_training_start(locals(), globals())
    for env in model.env.envs:
        env.log.clear()
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    return [[env.log[step] for env in model.env.envs] for step in range(model.n_steps)]


@pytest.mark.parametrize("acting", list(ACTING_WEIGHTS_5))
def test_distributional_ppo_channels_learn_from_all_pairs_of_target_samples(acting):
    """Quantile code, a rollout buffer filled by hand (episode ends are terminations): channel i's
    return is V_i + GAE of mean_j rule_i(r + gamma V_j(s') - V_i(s)) (all pairs: every channel's target
    is a sample), and the policy's advantage is GAE of the acting statistic's plain TD error; numpy from
    the arrays given and the channel values of their observations."""
    model = DopaminePPO("MlpPolicy", chain_venv(), neuro={"dopamine": {"type": "distributional", "code": "quantile",
                                                                       "n_channels": 5, "acting": acting}},
                        seed=1, **CHAIN_PPO_ARGS)
    rng = np.random.default_rng(2)
    steps, n_envs = 16, 2
    observations = rng.integers(6, size=(steps + 1, n_envs))
    rewards = rng.normal(size=(steps, n_envs)).astype(np.float32)
    episode_starts = (rng.random((steps, n_envs)) < 0.25).astype(np.float32)
    episode_starts[0] = 1.0
    last_dones = np.array([True, False])
    values = channel_values(model, observations.reshape(-1)).reshape(steps + 1, n_envs, 5)
    weights = ACTING_WEIGHTS_5[acting]
    buffer = model.rollout_buffer
    buffer.reset()
    for step in range(steps):
        buffer.add(observations[step], np.zeros((n_envs, 1)), rewards[step], episode_starts[step],
                   torch.as_tensor(values[step] @ weights), torch.zeros(n_envs))
    model._last_obs = observations[steps]
    buffer.compute_returns_and_advantage(torch.as_tensor(values[steps] @ weights), last_dones)

    cut = np.concatenate([episode_starts[1:], last_dones[None].astype(np.float32)])  # the episode ended after t
    targets = rewards[..., None] + 0.9 * (1 - cut[..., None]) * values[1:]
    acting_error = rewards + 0.9 * (1 - cut) * (values[1:] @ weights) - values[:-1] @ weights
    returns, advantages = all_pairs_reference(values[:-1], targets, TAUS_5, weights, acting_error, cut, 0.9 * 0.8)
    assert buffer.returns == pytest.approx(returns, abs=1e-4)
    assert buffer.advantages == pytest.approx(advantages, abs=1e-4)
    # The own-channel rule (channel i bootstrapping only from V_i) differs: the test can tell them apart.
    own = values[:-1] + gae(quantile_rule(targets - values[:-1], TAUS_5), cut[..., None], 0.72)
    assert np.abs(own - returns).max() > 0.1
    # SB3's collection sees the acting statistic.
    with torch.no_grad():
        acting_values = model.policy.predict_values(torch.as_tensor(observations[0])).numpy()[:, 0]
    assert acting_values == pytest.approx(values[0] @ weights, abs=1e-5)


def test_distributional_ppo_bootstraps_a_time_limit_from_each_channels_own_final_value():
    """A collected rollout with time-limit truncations and terminations: at a truncation every
    channel's target is r + gamma V_c(final observation) (its own value of the observation the episode
    was cut at, not the acting statistic's, not the reset observation's), at a termination just r;
    the policy's advantage bootstraps the acting statistic of the final observation. Numpy from what
    the env returned (StepLog) and the channel values of those observations."""
    weights = ACTING_WEIGHTS_5["cvar=0.5"]
    model = DopaminePPO("MlpPolicy", chain_venv(), neuro={"dopamine": {"type": "distributional", "code": "quantile",
                                                                       "n_channels": 5, "acting": "cvar=0.5"}},
                        seed=3, **CHAIN_PPO_ARGS)
    log = collect_one_rollout(model)
    rewards = np.array([[entry[1] for entry in row] for row in log])
    terminated = np.array([[entry[2] for entry in row] for row in log], dtype=np.float64)
    truncated = np.array([[entry[3] and not entry[2] for entry in row] for row in log], dtype=np.float64)
    assert terminated.any() and truncated.any()
    values = channel_values(model, [entry[0] for row in log for entry in row]).reshape(16, 2, 5)
    next_values = channel_values(model, [entry[4] for row in log for entry in row]).reshape(16, 2, 5)

    cut = np.maximum(terminated, truncated)
    targets = rewards[..., None] + 0.9 * (1 - terminated[..., None]) * next_values
    acting_error = rewards + 0.9 * (1 - terminated) * (next_values @ weights) - values @ weights
    returns, advantages = all_pairs_reference(values, targets, TAUS_5, weights, acting_error, cut, 0.9 * 0.8)
    buffer = model.rollout_buffer
    assert buffer.returns == pytest.approx(returns, abs=1e-4)
    assert buffer.advantages == pytest.approx(advantages, abs=1e-4)
    assert buffer.values == pytest.approx(values, abs=1e-5)


def test_average_reward_ppo_learns_its_rate_from_raw_rewards_and_centres_terminations():
    """``average_reward`` PPO on a collected rollout with truncations and terminations: the rate is
    updated from the env's raw one-step rewards in time order (r_bar += eta (r - r_bar), steps then
    envs), not from SB3's rewards with a time limit's bootstrap folded in; each TD error subtracts the
    rate from before this rollout, divided by 1 - gamma where the episode terminated; a truncation
    bootstraps V of the final observation. Numpy from what the env returned (StepLog)."""
    eta, rate, gamma = 0.1, 0.5, 0.9
    model = DopaminePPO("MlpPolicy", chain_venv(), neuro={"dopamine": {"type": "average_reward", "eta": eta,
                                                                       "initial_rate": rate}},
                        seed=4, **CHAIN_PPO_ARGS)
    log = collect_one_rollout(model)
    rewards = np.array([[entry[1] for entry in row] for row in log])
    terminated = np.array([[entry[2] for entry in row] for row in log], dtype=np.float64)
    truncated = np.array([[entry[3] and not entry[2] for entry in row] for row in log], dtype=np.float64)
    assert terminated.any() and truncated.any()
    values = channel_values(model, [entry[0] for row in log for entry in row]).reshape(16, 2)
    next_values = channel_values(model, [entry[4] for row in log for entry in row]).reshape(16, 2)

    expected_rate = rate
    for reward in rewards.reshape(-1):  # steps, then envs: the order they were collected in
        expected_rate += eta * (reward - expected_rate)
    assert model.dopamine.reward_rate == pytest.approx(expected_rate, abs=1e-6)
    folded = model.rollout_buffer.rewards.astype(np.float64)
    assert not np.allclose(folded, rewards)  # SB3 folded gamma V(final) into truncated steps' rewards
    folded_rate = rate
    for reward in folded.reshape(-1):
        folded_rate += eta * (reward - folded_rate)
    assert abs(folded_rate - expected_rate) > 1e-4  # so the check above can tell the two apart

    baseline = np.where(terminated == 1, rate / (1 - gamma), rate)
    td_error = rewards + gamma * (1 - terminated) * next_values - values - baseline
    advantages = gae(td_error, np.maximum(terminated, truncated), gamma * 0.8)
    assert model.rollout_buffer.advantages == pytest.approx(advantages, abs=1e-4)
    assert model.rollout_buffer.returns == pytest.approx(advantages + values, abs=1e-4)


@pytest.mark.parametrize(("spec", "weights"), [
    ({"code": "quantile", "n_channels": 5, "acting": "mean"}, ACTING_WEIGHTS_5["mean"]),
    ({"code": "quantile", "n_channels": 5, "acting": "tau=0.6"}, ACTING_WEIGHTS_5["tau=0.6"]),
    ({"code": "quantile", "n_channels": 5, "acting": "cvar=0.5"}, ACTING_WEIGHTS_5["cvar=0.5"]),
    ({"code": "expectile", "taus": [0.1, 0.25, 0.5, 0.9], "acting": "mean"}, np.array([0, 0, 1.0, 0])),
    ({"code": "expectile", "taus": [0.1, 0.25, 0.5, 0.9], "acting": "tau=0.2"}, np.array([1 / 3, 2 / 3, 0, 0])),
], ids=["quantile-mean", "quantile-tau=0.6", "quantile-cvar=0.5", "expectile-mean", "expectile-tau=0.2"])
def test_agents_act_on_the_acting_statistic(spec, weights):
    """DQN's Q-values (and greedy actions) and PPO's value (what SB3's rollout sees) are the channels
    weighted by the acting statistic's definition."""
    neuro = {"dopamine": {"type": "distributional", **spec}}
    observations = torch.arange(6)
    dqn = DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(length=6, n_actions=3), neuro=neuro,
                      policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")
    with torch.no_grad():
        channels = dqn.q_net.all_channels(observations).numpy()
        q_values = dqn.q_net(observations).numpy()
    assert q_values == pytest.approx(np.einsum("bca,c->ba", channels, weights), abs=1e-6)
    actions, _ = dqn.predict(observations.numpy(), deterministic=True)
    assert np.array_equal(actions, q_values.argmax(axis=1))
    ppo = DopaminePPO("MlpPolicy", chain_venv(), neuro=neuro, seed=0, **CHAIN_PPO_ARGS)
    with torch.no_grad():
        acting = ppo.policy.predict_values(observations).numpy()[:, 0]
    assert acting == pytest.approx(channel_values(ppo, observations) @ weights, abs=1e-6)


def test_average_reward_refuses_gamma_one_and_n_step_dqn():
    neuro = {"dopamine": {"type": "average_reward"}}
    with pytest.raises(ValueError, match="gamma"):
        DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(), neuro=neuro, gamma=1.0, device="cpu")
    with pytest.raises(ValueError, match="gamma"):
        DopaminePPO("MlpPolicy", chain_venv(), neuro=neuro, **{**CHAIN_PPO_ARGS, "gamma": 1.0})
    with pytest.raises(ValueError, match="n_steps"):
        DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(), neuro=neuro, n_steps=3, device="cpu")


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


def test_policies_saved_with_an_acting_channel_act_on_that_channel():
    """Zips from before acting statistics name one ``acting_channel`` in the policy's arguments."""
    from gymnasium import spaces

    from agents.dopamine_dqn import ChannelDQNPolicy
    from agents.dopamine_ppo import ChannelActorCriticPolicy

    observation_space, action_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(2)
    dqn_policy = ChannelDQNPolicy(observation_space, action_space, lambda _: 1e-3, n_channels=3, acting_channel=2)
    assert dqn_policy.q_net.acting_weights == (0.0, 0.0, 1.0)
    ppo_policy = ChannelActorCriticPolicy(observation_space, action_space, lambda _: 1e-3, n_channels=3,
                                          acting_channel=0)
    observations = torch.rand(5, 4)
    assert torch.equal(ppo_policy.predict_values(observations), ppo_policy.all_values(observations)[:, :1])
