"""Driving metrics agree with stock SB3's evaluate_policy and with the scenario's rules; the action
statistics agree with hand counts and numpy over the actions a policy was made to take."""

import json
import logging
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from envs import get_scenario, make_vec_env
from envs.evaluation import DrivingMetrics, evaluate_driving
from tests_support import BOTH_BACKENDS

IDLE, FASTER, SLOWER = 1, 3, 4
N_ENVS = {"envpool": 4, "highway-env": 1}  # highway-env runs n_envs > 1 in subprocesses: slow on small machines


class ConstantPolicy:
    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.full(len(observation), self.action), state


class ScriptedPolicy:
    """Returns ``script[t]`` (one action for every env) at its ``t``-th call and remembers what it returned."""

    def __init__(self, script) -> None:
        self.script = list(script)
        self.given: list[np.ndarray] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        action = np.asarray(self.script[len(self.given)])
        actions = np.stack([action] * len(observation))
        self.given.append(actions)
        return actions, state


class FixedLengthEnv(gym.Env):
    """Every episode lasts exactly ``length`` steps, whatever the actions."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def __init__(self, length: int, action_space: spaces.Space) -> None:
        self.length = length
        self.action_space = action_space
        self.t = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= self.length, False, {}


def fixed_length_envs(lengths, action_space) -> DummyVecEnv:
    return DummyVecEnv([lambda length=length: FixedLengthEnv(length, action_space) for length in lengths])


@pytest.mark.parametrize("action", [IDLE, SLOWER])  # IDLE always crashes here, SLOWER never: both flags checked
@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_returns_and_lengths_match_sb3_evaluate_policy(backend, action):
    n_envs = 2 if backend == "envpool" else 1
    policy = ConstantPolicy(action)
    def env():
        return make_vec_env("highway-fast-v0", n_envs, seed=1, backend=backend)

    metrics = evaluate_driving(policy, env(), 4)
    returns, lengths = evaluate_policy(policy, env(), n_eval_episodes=4, return_episode_rewards=True,
                                       warn=False)
    assert sorted(metrics.returns) == pytest.approx(sorted(returns), abs=1e-4)
    assert sorted(metrics.lengths) == sorted(lengths)
    # highway-fast-v0 ends an episode only by a crash or by the 30-step time limit.
    assert metrics.crashed == [length < 30 for length in metrics.lengths]
    summary = metrics.summary()
    assert summary["n_episodes"] == 4
    # Independent of the flags: SB3's episode lengths under the same rule.
    assert summary["crash_rate"] == pytest.approx(np.mean([length < 30 for length in lengths]))
    assert 15.0 < summary["mean_speed"] < 31.0  # m/s; the reward's speed band is [20, 30]
    assert summary["success_rate"] is None


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_always_faster_crashes_every_time(backend):
    """Reference statistics: always-FASTER crashes in 100% of episodes on both backends."""
    def env():
        return make_vec_env("highway-fast-v0", N_ENVS[backend], seed=0, backend=backend)

    metrics = evaluate_driving(ConstantPolicy(FASTER), env(), 12)
    _, lengths = evaluate_policy(ConstantPolicy(FASTER), env(), n_eval_episodes=12, return_episode_rewards=True,
                                 warn=False)
    assert sorted(metrics.lengths) == sorted(lengths)
    assert all(length < 30 for length in lengths)  # every episode ended before the time limit: a crash
    assert metrics.summary()["crash_rate"] == 1.0
    assert metrics.summary()["mean_speed"] > 25.0


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_constant_policy_has_a_one_action_histogram_and_is_warned_about(backend, caplog):
    def env():
        return make_vec_env("highway-fast-v0", N_ENVS[backend], seed=0, backend=backend)

    with caplog.at_level(logging.WARNING, logger="neurodrive.eval"):
        metrics = evaluate_driving(ConstantPolicy(FASTER), env(), 4)
    _, lengths = evaluate_policy(ConstantPolicy(FASTER), env(), n_eval_episodes=4, return_episode_rewards=True,
                                 warn=False)
    summary = json.loads(json.dumps(metrics.summary()))  # eval.json holds it as written
    assert summary["action_counts"] == [0, 0, 0, sum(lengths), 0]  # one decision per step of the 4 episodes
    assert summary["action_fractions"] == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert summary["dominant_action"] == {"action": FASTER, "fraction": 1.0}
    assert summary["action_mean"] is None and summary["action_std"] is None
    (warning,) = [record for record in caplog.records if record.name == "neurodrive.eval"]
    assert warning.levelno == logging.WARNING
    assert "action 3 took 100.0%" in warning.getMessage()


def test_the_histogram_counts_only_the_steps_of_counted_episodes(caplog):
    """Env 0 ends an episode every 2 steps, env 1 every 5; with 2 episodes each env counts one. The
    policy plays 0, 1, 2, 3, 4 on both envs: counted are env 0's first two steps (0, 1) and env 1's
    five (0..4); env 0's second and third episodes (2, 3 and 4) are beyond its share."""
    policy = ScriptedPolicy([0, 1, 2, 3, 4])
    with caplog.at_level(logging.WARNING, logger="neurodrive.eval"):
        metrics = evaluate_driving(policy, fixed_length_envs([2, 5], spaces.Discrete(5)), 2)
    assert metrics.lengths == [2, 5]
    assert metrics.action_counts == [2, 2, 1, 1, 1]
    assert metrics.summary()["action_fractions"] == pytest.approx([2 / 7, 2 / 7, 1 / 7, 1 / 7, 1 / 7])
    assert metrics.summary()["dominant_action"] is None
    assert metrics.describe_actions() == "0:0.29 1:0.29 2:0.14 3:0.14 4:0.14"
    assert not [record for record in caplog.records if record.name == "neurodrive.eval"]  # balanced: no warning


@pytest.mark.parametrize("others, flagged", [(1, False), (0, True)])
def test_dominant_means_over_95_percent(others, flagged, caplog):
    """19 of 20 decisions is exactly 95%: not flagged; 20 of 20 is."""
    policy = ScriptedPolicy([2] * (20 - others) + [0] * others)
    with caplog.at_level(logging.WARNING, logger="neurodrive.eval"):
        metrics = evaluate_driving(policy, fixed_length_envs([20], spaces.Discrete(3)), 1)
    expected = {"action": 2, "fraction": 1.0} if flagged else None
    assert metrics.summary()["dominant_action"] == expected
    assert len([record for record in caplog.records if record.name == "neurodrive.eval"]) == int(flagged)


def test_continuous_actions_report_their_spread_over_counted_episodes():
    """Same episode layout as the histogram test: env 0's calls 0-1 and env 1's calls 0-4 count."""
    script = np.random.default_rng(0).uniform(-1.0, 1.0, (5, 2))
    policy = ScriptedPolicy(script)
    metrics = evaluate_driving(policy, fixed_length_envs([2, 5], spaces.Box(-1.0, 1.0, (2,), np.float32)), 2)
    counted = np.concatenate([script[:2], script[:5]])
    summary = json.loads(json.dumps(metrics.summary()))
    assert summary["action_mean"] == pytest.approx(counted.mean(axis=0).tolist())
    assert summary["action_std"] == pytest.approx(counted.std(axis=0).tolist())
    assert summary["action_counts"] is None and summary["action_fractions"] is None
    assert summary["dominant_action"] is None


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_continuous_actions_on_racetrack(backend):
    """A real Box scenario on each backend: one env, so every action fed belongs to a counted episode."""
    steering = np.sin(np.arange(400))[:, None] * 0.8  # varied, known in advance
    policy = ScriptedPolicy(steering)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # racetrack-v0's version note; envpool's unverified-port note
        env = make_vec_env("racetrack-v0", 1, seed=0, backend=backend, config={"duration": 3})
    metrics = evaluate_driving(policy, env, 2)
    taken = np.concatenate(policy.given)
    assert len(taken) == sum(metrics.lengths)
    assert metrics.summary()["action_mean"] == pytest.approx(taken.mean(axis=0).tolist())
    assert metrics.summary()["action_std"] == pytest.approx(taken.std(axis=0).tolist())


def test_metrics_built_from_episode_lists_alone_have_no_action_statistics():
    """As the fidelity report's tests build them: the summary still works, the action keys are None."""
    summary = DrivingMetrics([1.0, 2.0], [10, 10], [True, False], [25.0, 25.0]).summary()
    assert summary["mean_return"] == 1.5 and summary["crash_rate"] == 0.5
    keys = ("action_counts", "action_fractions", "dominant_action", "action_mean", "action_std")
    assert [summary[key] for key in keys] == [None] * 5


def test_success_rate_where_the_scenario_reports_it():
    class Still:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.zeros((len(observation["observation"]), 2), dtype=np.float32), state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_vec_env("parking-v0", 2, seed=0, backend="envpool", config={"duration": 2})
    metrics = evaluate_driving(Still(), env, 2, success=get_scenario("parking-v0").success)
    assert metrics.summary()["success_rate"] == 0.0  # standing still never parks


def test_success_paths():
    assert get_scenario("intersection-v0").success({"rewards": {"arrived_reward": 1.0}}) is True
    assert get_scenario("intersection-v0").success({"rewards": {"arrived_reward": 0.0}}) is False
    assert get_scenario("intersection-v0").success({"crashed": True}) is None  # native port: unknown
    assert get_scenario("highway-fast-v0").success({"is_success": True}) is None


def test_bad_episode_count():
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_driving(ConstantPolicy(IDLE), make_vec_env("highway-fast-v0", 1), 0)
