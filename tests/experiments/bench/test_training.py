"""The training bench: the zero-cost VecEnv's contract and the rows it reports (speeds never asserted)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from rich.console import Console
from stable_baselines3 import A2C, DQN, PPO

from experiments.bench.training import (
    TrainingSettings,
    ZeroCostVecEnv,
    run_training_section,
    step_counts,
    time_training,
)

KINEMATICS = spaces.Box(-1.0, 1.0, (5, 5), dtype=np.float32)


def test_zero_cost_env_truncates_every_episode_at_its_length() -> None:
    env = ZeroCostVecEnv(KINEMATICS, spaces.Discrete(5), n_envs=3, episode_length=4)
    first = env.reset()
    assert first.shape == (3, 5, 5) and first.dtype == np.float32
    assert KINEMATICS.contains(first[0])
    for step in range(1, 9):
        observations, rewards, dones, infos = env.step(np.zeros(3, dtype=np.int64))
        np.testing.assert_array_equal(observations, first)
        np.testing.assert_array_equal(rewards, 0.0)
        assert dones.tolist() == [step % 4 == 0] * 3
        for info in infos:
            assert ("terminal_observation" in info) == (step % 4 == 0)
            assert info.get("TimeLimit.truncated", False) == (step % 4 == 0)
    with pytest.raises(ValueError, match="episode_length: must be >= 1"):
        ZeroCostVecEnv(KINEMATICS, spaces.Discrete(5), n_envs=1, episode_length=0)


def test_sb3_trains_on_the_zero_cost_env() -> None:
    env = ZeroCostVecEnv(KINEMATICS, spaces.Discrete(5), n_envs=2, episode_length=30)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    model.learn(128)
    assert model.num_timesteps == 128
    assert len(model.ep_info_buffer) == 2 * (128 // 2 // 30)  # 64 steps per env: 2 episodes each


def test_step_counts_follow_the_algorithm_kind_not_its_argument_names() -> None:
    env = ZeroCostVecEnv(KINEMATICS, spaces.Discrete(5), n_envs=2)
    settings = TrainingSettings(rollouts=3, off_policy_steps=500)
    assert step_counts(A2C("MlpPolicy", env), settings) == (2 * 5, 3 * 2 * 5)  # A2C's default n_steps is 5
    assert step_counts(PPO("MlpPolicy", env, n_steps=64, batch_size=64), settings) == (128, 384)
    # DQN with n-step returns is still off-policy: warm up past learning_starts.
    assert step_counts(DQN("MlpPolicy", env, n_steps=3, learning_starts=300), settings) == (300 + 40, 500)


def test_time_training_runs_the_config_for_the_stated_steps() -> None:
    settings = TrainingSettings(repeats=1, rollouts=1, off_policy_steps=200)
    result = time_training("highway_dqn.yaml", "zero-cost", settings)
    assert result["algo"] == "dqn" and result["backend"] == "none"
    assert result["warmup_steps"] == 200 + 20  # learning_starts of highway_dqn.yaml, then a little training
    assert result["timed_steps"] == 200
    assert result["steps_per_s"] > 0 and result["peak_rss_mib"] > 50


def test_training_section_rows_pair_the_platform_with_its_limit() -> None:
    report = run_training_section(True, Console(quiet=True), configs=("highway_ppo.yaml",))
    platform, limit = report["rows"]
    assert (platform["env"], limit["env"]) == ("platform", "zero-cost")
    assert platform["backend"] == "envpool" and limit["backend"] == "none"
    assert platform["timed_steps"] == limit["timed_steps"] == 16 * 128  # one rollout of highway_ppo.yaml
    assert platform["ratio_to_limit"] == pytest.approx(platform["steps_per_s"] / limit["steps_per_s"])
    assert platform["min_ratio"] == 0.80
    assert platform["met"] == (platform["ratio_to_limit"] >= 0.80)
    assert report["target"]["met"] == platform["met"]
    assert len(report["orders"]) == 1 and sorted(report["orders"][0]) == ["highway_ppo/platform",
                                                                           "highway_ppo/zero-cost"]
