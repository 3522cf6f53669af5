"""Greedy evaluation with driving metrics: return, crash rate, speed, length, success, and the
actions the policy took (a histogram for discrete actions, mean and spread for continuous ones)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

__all__ = ["DrivingMetrics", "evaluate_driving"]

logger = logging.getLogger("neurodrive.eval")

DOMINANT_SHARE = 0.95  # an action taking more than this share of decisions is flagged and warned about
ACTION_KEYS = ("action_counts", "action_fractions", "dominant_action", "action_mean", "action_std")


class Predictor(Protocol):
    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]: ...


@dataclass
class DrivingMetrics:
    """Per-episode driving statistics and their means.

    The action statistics cover every step of the counted episodes (and only those): ``action_counts``
    for a discrete action space, ``continuous_actions`` for a Box one; the other stays ``None``.
    """

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    crashed: list[bool] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)  # each episode's mean speed, m/s
    successes: list[bool] = field(default_factory=list)  # only where the scenario reports one
    drivers: list[str] = field(default_factory=list)  # each episode's drawn behaviour, under env.drivers only
    action_counts: list[int] | None = None  # discrete: decisions per action index
    # Box: one flattened action per row, shape (decisions, dims); not compared (== on arrays is elementwise).
    continuous_actions: np.ndarray | None = field(default=None, compare=False)

    @property
    def n_episodes(self) -> int:
        return len(self.returns)

    @property
    def action_fractions(self) -> list[float] | None:
        """Share of decisions per action index (discrete actions only)."""
        if self.action_counts is None or sum(self.action_counts) == 0:
            return None
        total = sum(self.action_counts)
        return [count / total for count in self.action_counts]

    @property
    def dominant_action(self) -> dict[str, int | float] | None:
        """``{"action": index, "fraction": share}`` when one action took over ``DOMINANT_SHARE`` of the
        decisions (a policy collapsed to one action), else ``None``."""
        fractions = self.action_fractions
        if fractions is None:
            return None
        action = int(np.argmax(fractions))
        return {"action": action, "fraction": fractions[action]} if fractions[action] > DOMINANT_SHARE else None

    def describe_actions(self) -> str | None:
        """One line for a table: ``0:0.02 1:0.95 ...`` (discrete) or ``0: mean +0.10 sd 0.30`` per dimension."""
        fractions = self.action_fractions
        if fractions is not None:
            return " ".join(f"{action}:{fraction:.2f}" for action, fraction in enumerate(fractions))
        actions = self.continuous_actions
        if actions is None or len(actions) == 0:
            return None
        return " ".join(f"{dim}: mean {column.mean():+.2f} sd {column.std():.2f}"
                        for dim, column in enumerate(actions.T))

    def summary(self) -> dict[str, Any]:
        """Means, plus the action keys (``ACTION_KEYS``; ``None`` where they do not apply); JSON-ready."""
        actions = self.continuous_actions
        taken = actions if actions is not None and len(actions) > 0 else None
        return {
            "n_episodes": self.n_episodes,
            "mean_return": float(np.mean(self.returns)),
            "std_return": float(np.std(self.returns)),
            "crash_rate": float(np.mean(self.crashed)),
            "mean_speed": float(np.mean(self.speeds)) if self.speeds else None,
            "mean_length": float(np.mean(self.lengths)),
            "success_rate": float(np.mean(self.successes)) if self.successes else None,
            "action_counts": list(self.action_counts) if self.action_counts is not None else None,
            "action_fractions": self.action_fractions,
            "dominant_action": self.dominant_action,
            # Population spread (ddof=0) of the actions taken, per action dimension.
            "action_mean": np.mean(taken, axis=0).tolist() if taken is not None else None,
            "action_std": np.std(taken, axis=0).tolist() if taken is not None else None,
            "by_driver": self.by_driver(),
        }

    def by_driver(self) -> dict[str, dict[str, float | int]] | None:
        """Episodes, mean return and crash rate per drawn behaviour (``env.drivers``); ``None`` without a mix."""
        if len(self.drivers) != self.n_episodes or not self.drivers:
            return None
        names = np.array(self.drivers)
        returns, crashed = np.array(self.returns), np.array(self.crashed, dtype=float)
        return {str(name): {"n_episodes": int((names == name).sum()),
                            "mean_return": float(returns[names == name].mean()),
                            "crash_rate": float(crashed[names == name].mean())}
                for name in sorted(set(self.drivers))}

    def to_dict(self) -> dict[str, Any]:
        episodes = {"returns": self.returns, "lengths": self.lengths, "crashed": self.crashed,
                    "speeds": self.speeds, "successes": self.successes, "drivers": self.drivers}
        return {"summary": self.summary(), "episodes": episodes}


def evaluate_driving(
    model: Predictor, vec_env: VecEnv, n_episodes: int, deterministic: bool = True,
    success: Callable[[dict[str, Any]], bool | None] | None = None, warn_dominant: bool = True,
) -> DrivingMetrics:
    """Run ``n_episodes`` episodes spread evenly over the envs (as SB3's ``evaluate_policy``,
    so short episodes are not over-counted) and collect driving metrics from the env infos, and
    the actions taken in the counted episodes (an env's extra episodes beyond its share count nowhere).

    :param success: reads arrival/success from an episode's last info (``Scenario.success``).
    :param warn_dominant: log a warning on ``neurodrive.eval`` when one action takes over
        ``DOMINANT_SHARE`` of the decisions (off for policies constant by design).
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
    # Actions are kept per env until its episode ends, then added only if that episode is counted.
    space = vec_env.action_space
    discrete = isinstance(space, spaces.Discrete)
    continuous = isinstance(space, spaces.Box)
    episode_action_counts = np.zeros((n_envs, int(space.n) if isinstance(space, spaces.Discrete) else 0), dtype=int)
    total_action_counts = np.zeros(episode_action_counts.shape[1], dtype=int)
    episode_actions: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
    counted_actions: list[np.ndarray] = []
    metrics = DrivingMetrics()
    observations = vec_env.reset()
    state = None
    episode_starts = np.ones(n_envs, dtype=bool)
    while (counts < targets).any():
        actions, state = model.predict(observations, state=state, episode_start=episode_starts,
                                       deterministic=deterministic)
        if discrete:
            episode_action_counts[np.arange(n_envs), np.asarray(actions).reshape(n_envs).astype(int)] += 1
        elif continuous:
            for env_idx, action in enumerate(np.asarray(actions, dtype=float).reshape(n_envs, -1)):
                episode_actions[env_idx].append(action)
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
            if "driver" in info:  # the behaviour drawn for this episode (envs.drivers)
                metrics.drivers.append(str(info["driver"]))
            reached = success(info) if success is not None else None
            if reached is not None:
                metrics.successes.append(reached)
            total_action_counts += episode_action_counts[env_idx]
            counted_actions.extend(episode_actions[env_idx])
            counts[env_idx] += 1
        episode_return[dones] = 0.0
        episode_length[dones] = 0
        speed_sum[dones] = 0.0
        speed_steps[dones] = 0
        episode_action_counts[dones] = 0
        for env_idx in np.flatnonzero(dones).tolist():
            episode_actions[env_idx] = []

        episode_starts = dones
    if discrete:
        metrics.action_counts = total_action_counts.tolist()
    elif continuous:
        metrics.continuous_actions = np.array(counted_actions)
    dominant = metrics.dominant_action
    if warn_dominant and dominant is not None:
        logger.warning("action %d took %.1f%% of %d decisions in %d episodes (over %.0f%%): "
                       "the policy may have collapsed to one action", dominant["action"], 100 * dominant["fraction"],
                       sum(metrics.action_counts or ()), metrics.n_episodes, 100 * DOMINANT_SHARE)
    return metrics
