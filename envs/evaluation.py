"""Greedy evaluation with driving metrics: return, crash rate, speed, length, success."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


class Predictor(Protocol):
    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]: ...


@dataclass
class DrivingMetrics:
    """Per-episode driving statistics and their means."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    crashed: list[bool] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)  # each episode's mean speed, m/s
    successes: list[bool] = field(default_factory=list)  # only where the scenario reports one

    @property
    def n_episodes(self) -> int:
        return len(self.returns)

    def summary(self) -> dict[str, float | int | None]:
        return {
            "n_episodes": self.n_episodes,
            "mean_return": float(np.mean(self.returns)),
            "std_return": float(np.std(self.returns)),
            "crash_rate": float(np.mean(self.crashed)),
            "mean_speed": float(np.mean(self.speeds)) if self.speeds else None,
            "mean_length": float(np.mean(self.lengths)),
            "success_rate": float(np.mean(self.successes)) if self.successes else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "episodes": asdict(self)}


def evaluate_driving(
    model: Predictor, vec_env: VecEnv, n_episodes: int, deterministic: bool = True,
    success: Callable[[dict[str, Any]], bool | None] | None = None,
) -> DrivingMetrics:
    """Run ``n_episodes`` episodes spread evenly over the envs (as SB3's ``evaluate_policy``,
    so short episodes are not over-counted) and collect driving metrics from the env infos.

    :param success: reads arrival/success from an episode's last info (``Scenario.success``).
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes: must be >= 1, got {n_episodes}")
    n_envs = vec_env.num_envs
    targets = np.array([(n_episodes + i) // n_envs for i in range(n_envs)])
    counts = np.zeros(n_envs, dtype=int)
    episode_return = np.zeros(n_envs)
    episode_length = np.zeros(n_envs, dtype=int)
    speed_sum = np.zeros(n_envs)
    speed_steps = np.zeros(n_envs, dtype=int)
    metrics = DrivingMetrics()
    observations = vec_env.reset()
    state = None
    episode_starts = np.ones(n_envs, dtype=bool)
    while (counts < targets).any():
        actions, state = model.predict(observations, state=state, episode_start=episode_starts,
                                       deterministic=deterministic)
        observations, rewards, dones, infos = vec_env.step(actions)
        episode_return += rewards
        episode_length += 1
        for env_idx, info in enumerate(infos):
            if "speed" in info:
                speed_sum[env_idx] += info["speed"]
                speed_steps[env_idx] += 1
            if not dones[env_idx] or counts[env_idx] >= targets[env_idx]:
                continue
            metrics.returns.append(float(episode_return[env_idx]))
            metrics.lengths.append(int(episode_length[env_idx]))
            metrics.crashed.append(bool(info.get("crashed", False)))
            if speed_steps[env_idx]:
                metrics.speeds.append(float(speed_sum[env_idx] / speed_steps[env_idx]))
            reached = success(info) if success is not None else None
            if reached is not None:
                metrics.successes.append(reached)
            counts[env_idx] += 1
        episode_return[dones] = 0.0
        episode_length[dones] = 0
        speed_sum[dones] = 0.0
        speed_steps[dones] = 0
        episode_starts = dones
    return metrics
