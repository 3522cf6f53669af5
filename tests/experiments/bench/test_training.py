"""The training bench: the zero-cost VecEnv's contract, the rows it reports (real speeds never asserted;
the ratio and verdict on hand-made timings), and a child process that dies or hangs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from rich.console import Console
from stable_baselines3 import A2C, DQN, PPO

from experiments.bench import training
from experiments.bench.training import (
    TrainingSettings,
    ZeroCostVecEnv,
    run_training_section,
    step_counts,
    time_in_fresh_process,
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


@pytest.mark.slow
def test_training_section_rows_pair_the_platform_with_its_limit() -> None:
    report = run_training_section(True, Console(quiet=True), configs=("highway_ppo.yaml",))
    platform, limit = report["rows"]
    assert (platform["env"], limit["env"]) == ("platform", "zero-cost")
    assert platform["backend"] == "envpool" and limit["backend"] == "none"
    assert platform["timed_steps"] == limit["timed_steps"] == 16 * 128  # one rollout of highway_ppo.yaml
    assert platform["steps_per_s"] > 0 and limit["steps_per_s"] > 0  # real speeds: the ratio is checked below
    assert platform["min_ratio"] == 0.80 and isinstance(platform["met"], bool)
    assert (limit["ratio_to_limit"], limit["min_ratio"], limit["met"]) == (None, None, None)
    assert report["target"]["met"] == platform["met"]
    assert len(report["orders"]) == 1 and sorted(report["orders"][0]) == ["highway_ppo/platform",
                                                                           "highway_ppo/zero-cost"]


# --- the ratio, target and verdict on hand-made timings ------------------------------------------

# steps/s per repeat, in call order, for each (config, env); medians: 800 / 1000, 350 / 500, 700 / 1000
# (means differ: 930 / 1100, 350 / 513.3, 750 / 1000, so a mean or a wrong pick shows).
FAKE_RATES: dict[tuple[str, str], list[float]] = {
    ("a_ppo.yaml", "platform"): [790.0, 1200.0, 800.0], ("a_ppo.yaml", "zero-cost"): [1000.0, 900.0, 1400.0],
    ("b_dqn.yaml", "platform"): [350.0, 300.0, 400.0], ("b_dqn.yaml", "zero-cost"): [500.0, 560.0, 480.0],
    ("c_ppo.yaml", "platform"): [700.0, 650.0, 900.0], ("c_ppo.yaml", "zero-cost"): [1000.0, 1000.0, 1000.0],
}
FAKE_RSS: list[float] = [300.0, 350.0, 320.0]


@pytest.fixture
def fake_timings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replaces the child processes with the hand-made ``FAKE_RATES``; returns the calls made."""
    calls: list[tuple[str, str]] = []

    def fake(config: str, env_kind: str, settings: TrainingSettings) -> dict[str, Any]:
        repeat = calls.count((config, env_kind))
        calls.append((config, env_kind))
        return {"algo": config.split("_")[1].removesuffix(".yaml"), "n_envs": 4,
                "backend": "envpool" if env_kind == "platform" else "none", "warmup_steps": 64,
                "timed_steps": 256, "steps_per_s": FAKE_RATES[(config, env_kind)][repeat],
                "peak_rss_mib": FAKE_RSS[repeat]}

    monkeypatch.setattr(training, "time_in_fresh_process", fake)
    return calls


def test_ratio_is_the_median_platform_rate_over_the_median_limit_rate(fake_timings: list[tuple[str, str]]) -> None:
    report = run_training_section(True, Console(quiet=True), configs=("a_ppo.yaml", "b_dqn.yaml", "c_ppo.yaml"),
                                  repeats=3)
    assert sorted(fake_timings) == sorted(list(FAKE_RATES) * 3)  # each (config, env) once per repeat
    rows = {(row["config"], row["env"]): row for row in report["rows"]}
    assert list(rows) == [("a_ppo.yaml", "platform"), ("a_ppo.yaml", "zero-cost"), ("b_dqn.yaml", "platform"),
                          ("b_dqn.yaml", "zero-cost"), ("c_ppo.yaml", "platform"), ("c_ppo.yaml", "zero-cost")]
    a_ppo, a_limit = rows[("a_ppo.yaml", "platform")], rows[("a_ppo.yaml", "zero-cost")]
    assert a_ppo["repeats"] == [790.0, 1200.0, 800.0] and a_ppo["steps_per_s"] == 800.0
    assert a_limit["steps_per_s"] == 1000.0 and a_ppo["peak_rss_mib"] == 350.0
    assert (a_ppo["ratio_to_limit"], a_ppo["min_ratio"], a_ppo["met"]) == (pytest.approx(0.8), 0.80, True)
    b_dqn = rows[("b_dqn.yaml", "platform")]
    assert (b_dqn["ratio_to_limit"], b_dqn["min_ratio"], b_dqn["met"]) == (pytest.approx(0.7), None, None)
    c_ppo = rows[("c_ppo.yaml", "platform")]
    assert (c_ppo["ratio_to_limit"], c_ppo["min_ratio"], c_ppo["met"]) == (pytest.approx(0.7), 0.80, False)
    assert all(rows[(config, "zero-cost")]["ratio_to_limit"] is None for config in ("a_ppo.yaml", "b_dqn.yaml"))
    assert report["target"]["met"] is False  # c_ppo misses its target
    assert len(report["orders"]) == 3 and all(len(order) == 6 for order in report["orders"])


def test_target_is_met_when_every_judged_row_meets_it_and_unjudged_without_one(
        fake_timings: list[tuple[str, str]]) -> None:
    console = Console(quiet=True)
    assert run_training_section(True, console, configs=("a_ppo.yaml", "b_dqn.yaml"), repeats=3)["target"]["met"]
    fake_timings.clear()  # the next run starts its repeats again
    assert run_training_section(True, console, configs=("b_dqn.yaml",), repeats=3)["target"]["met"] is None


# --- a child that dies or hangs is an error naming the row, not a hang ----------------------------
# Spawned children unpickle these by module name: they must be module-level.


def _killed_child(config_path: str, env_kind: str, settings: TrainingSettings) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer does: no report


def _hanging_child(config_path: str, env_kind: str, settings: TrainingSettings) -> None:
    time.sleep(120)


def _reporting_child(config_path: str, env_kind: str, settings: TrainingSettings) -> dict[str, Any]:
    return {"config": config_path, "env": env_kind, "rollouts": settings.rollouts}


def error_within(seconds: float, call: Callable[[], Any]) -> BaseException:
    """What ``call`` raises, run in a daemon thread so that a hang fails the test instead of stalling it."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting on the child after {seconds} s"
    assert raised, "returned a result instead of an error"
    return raised[0]


@pytest.mark.slow
def test_a_child_killed_without_reporting_is_an_error_naming_the_row_at_once() -> None:
    start = time.monotonic()
    error = error_within(30, lambda: time_in_fresh_process("highway_ppo.yaml", "platform", TrainingSettings(),
                                                           timeout_s=120, target=_killed_child))
    assert time.monotonic() - start < 30  # not the 120 s timeout: the death itself is noticed
    assert isinstance(error, RuntimeError)
    assert str(error) == ("training bench highway_ppo.yaml on platform: the child process died without a result "
                          "(exit code -9; killed for memory?)")
    assert not multiprocessing.active_children()


@pytest.mark.slow
def test_a_child_past_its_timeout_is_stopped_and_an_error() -> None:
    start = time.monotonic()
    error = error_within(20, lambda: time_in_fresh_process("highway_dqn.yaml", "zero-cost", TrainingSettings(),
                                                           timeout_s=3, target=_hanging_child))
    assert 3 <= time.monotonic() - start < 20
    assert isinstance(error, RuntimeError)
    assert str(error) == "training bench highway_dqn.yaml on zero-cost: no result after 3 s; the child was stopped"
    assert not multiprocessing.active_children()  # killed, not left sleeping


@pytest.mark.slow
def test_a_child_that_reports_and_exits_gives_its_result() -> None:
    result = time_in_fresh_process("highway_ppo.yaml", "platform", TrainingSettings(rollouts=7), timeout_s=60,
                                   target=_reporting_child)
    assert result == {"config": "highway_ppo.yaml", "env": "platform", "rollouts": 7}
