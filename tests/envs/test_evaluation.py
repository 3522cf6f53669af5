"""Driving metrics agree with stock SB3's evaluate_policy and with the scenario's rules."""

import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy

from envs import get_scenario, make_vec_env
from envs.evaluation import evaluate_driving

IDLE, FASTER = 1, 3


class ConstantPolicy:
    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.full(len(observation), self.action), state


@pytest.mark.parametrize("backend", ["envpool", "highway-env"])
def test_returns_and_lengths_match_sb3_evaluate_policy(backend):
    n_envs = 2 if backend == "envpool" else 1
    policy = ConstantPolicy(IDLE)
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
    assert summary["crash_rate"] == pytest.approx(np.mean(metrics.crashed))
    assert 15.0 < summary["mean_speed"] < 31.0  # m/s; the reward's speed band is [20, 30]
    assert summary["success_rate"] is None


def test_always_faster_crashes_every_time():
    """Reference statistics: always-FASTER crashes in 100% of episodes on both backends."""
    metrics = evaluate_driving(ConstantPolicy(FASTER), make_vec_env("highway-fast-v0", 4, seed=0), 12)
    assert metrics.summary()["crash_rate"] == 1.0
    assert metrics.summary()["mean_speed"] > 25.0


def test_success_rate_where_the_scenario_reports_it():
    import warnings

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
