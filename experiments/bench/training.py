"""Training throughput against the learner-bound limit, and peak memory, of the shipped configs.

For each shipped experiment file, the same model (the one build path, ``experiments.runs.build``:
algorithm, network, hyperparameters, neuro parts, seed, torch threads) is trained on the platform's
env (the backend ``auto`` picks) and on a ``ZeroCostVecEnv`` with the same spaces and ``n_envs``, whose
steps cost nothing: the learner-bound limit. Each (config, env) timing runs in a fresh process,
warmed up past ``learning_starts`` / one rollout, so its peak resident memory is that row's alone;
repeats are interleaved in a shuffled order so load drift on a shared machine hits both alike.
Evaluation and checkpoint cadences are not included: they are the same work on either env.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from rich.console import Console
from rich.table import Table
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from experiments.bench.common import peak_rss_mib
from experiments.bench.section import BenchOptions
from experiments.presets import PRESETS
from experiments.workers import Job, run_jobs

# The shipped configs timed (files under experiments/presets), with the learner-bound target where
# the issue sets one (PPO: P2).
TRAINING_CONFIGS: tuple[str, ...] = (
    "highway_ppo.yaml",
    "highway_dqn.yaml",
    "highway_fast_strong.yaml",
)
CHILD_TIMEOUT_S = 1800  # one timing takes seconds to minutes; a child killed for memory says nothing
MIN_RATIO = {"ppo": 0.80}
ENVS = ("platform", "zero-cost")


class ZeroCostVecEnv(VecEnv):
    """A VecEnv whose steps cost nothing: fixed observations, reward 0, every episode truncated
    after ``episode_length`` steps (a time limit, as highway-fast's 30-step episodes end).

    It stands in for a scenario with the same spaces, so training on it measures the learner alone.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, n_envs: int,
                 episode_length: int = 30, seed: int = 0) -> None:
        super().__init__(n_envs, observation_space, action_space)
        if episode_length < 1:
            raise ValueError(f"episode_length: must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        observation_space.seed(seed)
        self._observations = np.stack([observation_space.sample() for _ in range(n_envs)])
        self._rewards = np.zeros(n_envs, dtype=np.float32)
        self._elapsed = np.zeros(n_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._elapsed[:] = 0
        return self._observations.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        self._elapsed += 1
        dones = self._elapsed >= self.episode_length
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for index in np.flatnonzero(dones):
            infos[index] = {"terminal_observation": self._observations[index], "TimeLimit.truncated": True,
                            "episode": {"r": 0.0, "l": self.episode_length, "t": 0.0}}
        self._elapsed[dones] = 0
        return self._observations.copy(), self._rewards.copy(), dones, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [None for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        return None

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [None for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


@dataclass(frozen=True)
class TrainingSettings:
    """How long each timing runs.

    :param repeats: timed repeats per (config, env), each in a fresh process.
    :param rollouts: timed PPO/A2C rollouts (each ``n_envs * n_steps`` env steps, then an update).
    :param off_policy_steps: timed env steps of off-policy agents (after ``learning_starts``).
    :param seed: seed of every model and env, and of the repeat order.
    """

    repeats: int = 3
    rollouts: int = 4
    off_policy_steps: int = 8000
    seed: int = 0


TRAINING_FULL = TrainingSettings()
TRAINING_QUICK = TrainingSettings(repeats=1, rollouts=1, off_policy_steps=400)


@dataclass
class TrainingRow:
    """One shipped config on one env: training steps/s (median of repeats) and peak memory."""

    config: str
    algo: str
    n_envs: int
    env: str
    backend: str
    warmup_steps: int
    timed_steps: int
    repeats: list[float]
    steps_per_s: float
    peak_rss_mib: float
    ratio_to_limit: float | None = None
    min_ratio: float | None = None
    met: bool | None = None


def step_counts(model: BaseAlgorithm, settings: TrainingSettings) -> tuple[int, int]:
    """(warm-up, timed) env steps: one rollout, then ``rollouts`` more, for on-policy agents;
    ``learning_starts`` plus a little training, then ``off_policy_steps``, for off-policy ones."""
    if isinstance(model, OnPolicyAlgorithm):
        rollout = model.n_steps * model.n_envs
        return rollout, rollout * settings.rollouts
    return model.learning_starts + 20 * model.n_envs, settings.off_policy_steps  # type: ignore[attr-defined]


def time_training(config_name: str, env_kind: str, settings: TrainingSettings) -> dict[str, Any]:
    """In this process: build the config's model on ``env_kind``, warm up, time one ``learn``."""
    from experiments.config import load_config
    from experiments.runs.build import build_run, make_env, resolve_backend

    config, choice = resolve_backend(load_config(PRESETS / config_name, [f"training.seed={settings.seed}"]))
    env: VecEnv = make_env(config)
    backend: str = choice.backend
    if env_kind == "zero-cost":

        observation_space, action_space = env.observation_space, env.action_space
        env.close()
        env = ZeroCostVecEnv(observation_space, action_space, config.env.n_envs, seed=settings.seed)
        backend = "none"
    model = build_run(config, env=env, with_eval_env=False).model
    warmup_steps, timed_steps = step_counts(model, settings)
    model.learn(warmup_steps)
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(timed_steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "algo": config.agent.algo, "n_envs": config.env.n_envs, "backend": backend,
        "warmup_steps": warmup_steps, "timed_steps": model.num_timesteps - before,
        "steps_per_s": (model.num_timesteps - before) / elapsed,
        "peak_rss_mib": peak_rss_mib(),
    }


def time_in_fresh_process(config_path: str, env_kind: str, settings: TrainingSettings,
                          timeout_s: float = CHILD_TIMEOUT_S, target: Any = None) -> dict[str, Any]:
    """Run ``time_training`` in a worker process (``experiments.workers``); a worker that dies without
    reporting (killed for memory, a crash in native code) or overruns ``timeout_s`` is an error naming
    the row, not a hang.

    :param target: the worker's function, called as ``time_training`` is (tests pass one that dies).
    """
    [result] = run_jobs([Job(f"training bench {config_path} on {env_kind}", target or time_training,
                             (config_path, env_kind, settings))], timeout_s=timeout_s)
    if result.timed_out:
        raise RuntimeError(f"{result.job.name}: no result after {timeout_s:.0f} s; the child was stopped")
    if result.error is not None:
        raise RuntimeError(f"{result.job.name}: {result.error}")
    if not result.ok:
        raise RuntimeError(f"{result.job.name}: the child process died without a result "
                           f"(exit code {result.exitcode}; killed for memory?)")
    return result.value


def run_training_section(quick: bool, console: Console, configs: tuple[str, ...] = TRAINING_CONFIGS,
                         repeats: int | None = None) -> dict[str, Any]:
    """Time every shipped config on both envs in interleaved fresh processes; return the figures
    (:func:`print_training_section` prints them)."""
    settings = TRAINING_QUICK if quick else TRAINING_FULL
    if repeats is not None:
        settings = TrainingSettings(repeats, settings.rollouts, settings.off_policy_steps, settings.seed)
    rng = np.random.default_rng(settings.seed)
    pairs = [(config, kind) for config in configs for kind in ENVS]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {pair: [] for pair in pairs}
    orders: list[list[str]] = []
    load_start = os.getloadavg()[0]
    wall_start = time.perf_counter()
    with console.status("training bench") as status:
        for repeat in range(settings.repeats):
            order = [pairs[int(i)] for i in rng.permutation(len(pairs))]
            orders.append([f"{Path(config).stem}/{kind}" for config, kind in order])
            for config, kind in order:
                status.update(f"training bench: repeat {repeat + 1}/{settings.repeats}, {Path(config).stem} on {kind}")
                results[(config, kind)].append(time_in_fresh_process(config, kind, settings))
    rows: list[TrainingRow] = []
    for config in configs:
        limit_rate = statistics.median(r["steps_per_s"] for r in results[(config, "zero-cost")])
        for kind in ENVS:
            runs = results[(config, kind)]
            rate = statistics.median(r["steps_per_s"] for r in runs)
            algo = runs[0]["algo"]
            ratio = rate / limit_rate if kind == "platform" else None
            target = MIN_RATIO.get(algo) if kind == "platform" else None
            rows.append(TrainingRow(
                config, algo, runs[0]["n_envs"], kind, runs[0]["backend"], runs[0]["warmup_steps"],
                runs[0]["timed_steps"], [r["steps_per_s"] for r in runs], rate,
                max(r["peak_rss_mib"] for r in runs), ratio, target,
                None if target is None or ratio is None else ratio >= target,
            ))
    wall_s = time.perf_counter() - wall_start
    judged = [row.met for row in rows if row.met is not None]
    return {
        "settings": asdict(settings),
        "rows": [asdict(row) for row in rows],
        "orders": orders,
        "target": {"metric": "platform steps/s / zero-cost VecEnv steps/s (medians)", "min_ratio": MIN_RATIO,
                   "met": all(judged) if judged else None},
        "load_avg_1min_start_end": [load_start, os.getloadavg()[0]],
        "wall_s": wall_s,
    }


def print_training_report(console: Console, rows: list[TrainingRow], settings: TrainingSettings) -> None:
    table = Table(
        title=f"Training steps/s of the shipped configs vs the learner-bound limit, median of {settings.repeats}",
        caption="zero-cost: the same model on a VecEnv with the same spaces whose steps cost nothing; "
                "peak RSS: the row's own process (imports included)",
    )
    for column in ("config", "algo", "n_envs", "env", "steps/s", "min – max", "of limit", "target",
                   "peak RSS MiB"):
        table.add_column(column, justify="left" if column in ("config", "algo", "env") else "right")
    for row in rows:
        if row.met is None:
            verdict = "-"
        else:
            verdict = f"[green]>= {row.min_ratio:.0%}[/green]" if row.met else f"[red]>= {row.min_ratio:.0%}[/red]"
        table.add_row(
            Path(row.config).stem, row.algo, str(row.n_envs),
            row.env if row.env != "platform" else f"platform ({row.backend})",
            f"{row.steps_per_s:,.0f}", f"{min(row.repeats):,.0f} – {max(row.repeats):,.0f}",
            "-" if row.ratio_to_limit is None else f"{row.ratio_to_limit:.0%}", verdict,
            f"{row.peak_rss_mib:,.0f}",
        )
    console.print(table)


def print_training_section(figures: dict[str, Any], console: Console) -> None:
    print_training_report(console, [TrainingRow(**row) for row in figures["rows"]],
                          TrainingSettings(**figures["settings"]))


class TrainingSection:
    """``training``: the shipped configs' steps/s against the learner-bound limit, and peak memory."""

    name = "training"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_training_section(options.quick, console, repeats=options.repeats)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_training_section(figures, console)


SECTION = TrainingSection()
