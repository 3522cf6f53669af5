"""After training: greedy evaluation of a run folder's model on fresh episodes, and videos."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envs.drivers import DriverMix
from envs.evaluation import DrivingMetrics, evaluate_driving
from envs.factory import make_highway_env
from envs.scenarios import get_scenario
from experiments.config import ConfigError, ExperimentConfig
from experiments.files import write_json_atomic
from experiments.runs.build import POSTHOC_EVAL_STREAM, make_env, resolve_backend
from experiments.runs.folder import RunFolder, check_writable
from neuro.snn.config import ENERGY_CAVEAT

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


def evaluate_run(run_dir: str | Path, episodes: int = 20, backend: str | None = None, n_envs: int = 1,
                 seed: int | None = None, which: str = "final") -> tuple[DrivingMetrics, Path, dict[str, float]]:
    """Greedy evaluation of a run's final or best model on either backend; writes
    ``evaluate-<backend>.json`` (``evaluate-best-<backend>.json`` for the best model).

    :return: the driving metrics, the file, and a spiking policy's spike and energy figures per
        decision (``SpikeCounts.stats()``; empty for other policies).
    """
    run = RunFolder(Path(run_dir))
    config, choice = resolve_backend(run.load_config(), backend)
    check_writable(run.path, "evaluate saves its results in the run folder")  # before the episodes, not after
    model = run.load_model(config, which)
    seed = config.training.seed if seed is None else seed
    metrics, spike_stats = evaluate_model(model, config, episodes, n_envs, seed)
    name = f"evaluate-{choice.backend}.json" if which == "final" else f"evaluate-{which}-{choice.backend}.json"
    out = run.path / name
    record = {"backend": choice.backend, "seed": seed, "model": which, **metrics.to_dict()}
    if spike_stats:
        record["snn"] = {**spike_stats, "energy_caveat": ENERGY_CAVEAT}
    write_json_atomic(out, record)
    return metrics, out, spike_stats


def evaluate_model(model: BaseAlgorithm, config: ExperimentConfig, episodes: int, n_envs: int,
                   seed: int) -> tuple[DrivingMetrics, dict[str, float]]:
    """Greedy evaluation of a loaded model on the scenario, backend and wrappers of ``config`` (its
    backend resolved), on the post-hoc seed stream: episodes never seen in training.

    :return: the driving metrics and a spiking policy's spike and energy figures per decision.
    """
    from agents.spiking_policies import separate_spike_counts

    env = make_env(config, POSTHOC_EVAL_STREAM, n_envs=n_envs, seed=seed)
    try:
        with separate_spike_counts(model.policy) as spike_stats:
            metrics = evaluate_driving(model, env, episodes, success=get_scenario(config.env.id).success)
    finally:
        env.close()
    return metrics, spike_stats


def record_run(run_dir: str | Path, episodes: int = 1, seed: int | None = None) -> list[Path]:
    """Render the agent driving to mp4 files in ``<run>/videos`` (highway-env, headless)."""
    import numpy as np
    from gymnasium.wrappers import RecordVideo

    run = RunFolder(Path(run_dir))
    config = run.load_config()
    if episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {episodes}")
    video_dir = run.path / "videos"
    check_writable(video_dir if video_dir.is_dir() else run.path, "record saves its videos in the run folder")
    model = run.load_model(config)
    env = make_highway_env(config.env.id, config.env.config, render_mode="rgb_array")  # videos: the reference
    if config.env.drivers:
        env = DriverMix(env, config.env.drivers)
    prefix = f"{config.env.id}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    env = RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, name_prefix=prefix,
                      disable_logger=True)
    seed = config.training.seed if seed is None else seed
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            state, episode_start, done = None, np.ones(1, dtype=bool), False
            while not done:
                action, state = model.predict(observation, state=state, episode_start=episode_start,
                                              deterministic=True)
                observation, _, terminated, truncated, _ = env.step(action)
                episode_start = np.zeros(1, dtype=bool)
                done = terminated or truncated
    finally:
        env.close()
    return sorted(video_dir.glob(f"{prefix}-episode-*.mp4"))
