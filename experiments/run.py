"""The run loop: ``config -> env -> agent -> callbacks -> run folder``, and what reads run folders.

A run folder ``<root>/<name>/<timestamp>-seed<seed>/`` holds:
``config.yaml`` (resolved, reloadable), ``run.json`` (status, seed, backend choice, library
versions, command line, platform commit), ``tb/`` (TensorBoard events and progress.csv),
``checkpoints/``, ``eval.json`` (every periodic evaluation, rewritten after each),
``best_model.zip`` (the model at its best evaluation so far) and ``model.zip`` (the last one).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, Logger, TensorBoardOutputFormat

from agents.callbacks import DrivingEvalCallback, HParamsCallback
from agents.registry import algorithm_name, build, get_algorithm
from envs.evaluation import DrivingMetrics, evaluate_driving
from envs.factory import choose_backend, make_highway_env, make_vec_env
from envs.scenarios import get_scenario
from experiments.checkpoints import (
    InterruptFlag,
    ResumableCheckpointCallback,
    RunInterrupted,
    latest_checkpoint,
    restore_rng,
)
from experiments.config import ConfigError, ExperimentConfig, load_config, save_config
from experiments.files import library_versions, write_json_atomic

logger = logging.getLogger("neurodrive.run")

EVAL_STREAM = 1  # seed stream of evaluation envs during training
POSTHOC_EVAL_STREAM = 2  # seed stream of `neurodrive evaluate`, unseen during training
MODELS = ("final", "best")  # which model of a run folder `neurodrive evaluate --model` loads
LIBRARIES = ("neurodrive", "stable-baselines3", "sb3-contrib", "gymnasium", "highway-env",
             "envpool", "torch", "numpy", "optuna", "pydantic")


def platform_commit() -> str | None:
    """The git commit of the NeuroDrive checkout, when it runs from one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def create_run_dir(config: ExperimentConfig) -> Path:
    """A new, unique run folder; an unwritable root is a clear error before any work."""
    group = Path(config.logging.root) / (config.logging.name or config.name)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        group.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            suffix = "" if attempt == 0 else f"-{attempt}"
            run_dir = group / f"{stamp}-seed{config.training.seed}{suffix}"
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as error:
        raise ConfigError(
            f"logging.root: cannot create a run folder under {group}: {error.strerror}"
        ) from None
    raise ConfigError(f"logging.root: no free run folder name under {group}")


@dataclass
class RunFolder:
    """Reads and writes the files of one run folder."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def model_path(self) -> Path:
        return self.path / "model.zip"

    @property
    def best_model_path(self) -> Path:
        return self.path / "best_model.zip"

    def read_meta(self) -> dict[str, Any]:
        return json.loads((self.path / "run.json").read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.path / "run.json", meta)

    def load_config(self) -> ExperimentConfig:
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: no such run folder")
        if not self.config_path.is_file():
            raise ConfigError(f"{self.path}: not a run folder (config.yaml is missing)")
        return load_config(self.config_path)

    def load_model(self, config: ExperimentConfig, which: str = "final") -> BaseAlgorithm:
        """The last model (``final``) or the one at the best evaluation (``best``)."""
        if which not in MODELS:
            raise ConfigError(f"--model: unknown model {which!r}; allowed: {', '.join(MODELS)}")
        path = self.model_path if which == "final" else self.best_model_path
        if not path.is_file():
            hint = "did the run finish?" if which == "final" else "the run has made no evaluation yet"
            raise ConfigError(f"{self.path}: {path.name} is missing ({hint})")
        algo_cls = get_algorithm(config.agent.algo)
        # SB3 zips hold pickled objects: only load run folders you trust.
        try:
            return algo_cls.load(path, device=config.training.device)
        except Exception as error:  # SB3 raises many types for a foreign or corrupt zip
            raise ConfigError(
                f"{path}: cannot load as agent.algo={config.agent.algo!r} "
                f"({algo_cls.__name__}, from config.yaml): {type(error).__name__}: {error}"
            ) from None


def train(
    config: ExperimentConfig,
    command: list[str] | None = None,
    evaluation_hooks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
    callbacks: Sequence[BaseCallback] = (),
) -> Path:
    """Train one agent and fill its run folder; returns the folder.

    :param evaluation_hooks: called with each evaluation record; one returning ``False`` stops the
        run early (status ``stopped``), as a sweep's pruner does.
    :param callbacks: extra SB3 callbacks, run after the platform's own.
    """
    choice = choose_backend(config.env.id, config.env.backend, config.env.config)
    resolved = config.model_copy(deep=True)
    resolved.env.backend = choice.backend
    run = RunFolder(create_run_dir(config))
    save_config(resolved, run.config_path)
    meta: dict[str, Any] = {
        "status": "running",
        "experiment": config.name,
        "seed": config.training.seed,
        "algo": config.agent.algo,
        "env_id": config.env.id,
        "backend": {"requested": config.env.backend, "chosen": choice.backend, "reason": choice.reason},
        "versions": library_versions(LIBRARIES),
        "platform_commit": platform_commit(),
        "command": command or sys.argv,
        "started": datetime.now(UTC).isoformat(),
    }
    run.write_meta(meta)
    logger.info("run folder %s; env %s on %s (%s)", run.path, config.env.id, choice.backend, choice.reason)

    torch.set_num_threads(config.training.torch_threads)
    training = config.training
    try:
        env = make_vec_env(config.env.id, config.env.n_envs, training.seed, choice.backend, config.env.config)
        eval_env = make_vec_env(config.env.id, training.eval_n_envs, training.seed, choice.backend,
                                config.env.config, stream=EVAL_STREAM)
        model = build(config.agent.algo, env, config.agent.policy, config.agent.hyperparameters,
                      config.agent.policy_kwargs, seed=training.seed, device=training.device,
                      dopamine=config.neuro.dopamine)
    except BaseException as error:  # the folder exists: say why it holds no training
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        run.write_meta({**meta, "status": status, "steps": 0, "error": f"{type(error).__name__}: {error}"})
        raise
    session = TrainingSession(run, resolved, meta, model, eval_env)
    return session.run(evaluation_hooks, callbacks)


def resume(
    run_dir: str | Path,
    command: list[str] | None = None,
    evaluation_hooks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
    callbacks: Sequence[BaseCallback] = (),
) -> Path:
    """Continue a run from its latest checkpoint, up to its ``total_timesteps``."""
    run = RunFolder(Path(run_dir))
    config = run.load_config()
    meta = run.read_meta()
    if meta.get("status") in ("finished", "stopped"):
        raise ConfigError(f"{run.path}: the run is already {meta['status']}; nothing to resume")
    checkpoint = latest_checkpoint(run.path / "checkpoints")
    if checkpoint is None:
        raise ConfigError(f"{run.path}: no checkpoint to resume from (checkpoints/latest.json is missing); "
                          "set training.checkpoint_every to make runs resumable")
    state = checkpoint.load_state()
    torch.set_num_threads(config.training.torch_threads)
    training = config.training
    # Pickled highway-env envs continue mid-episode; native pools restart their episodes.
    env = state["env"] or make_vec_env(config.env.id, config.env.n_envs, training.seed, config.env.backend,
                                       config.env.config)
    eval_env = state["eval_env"] or make_vec_env(config.env.id, training.eval_n_envs, training.seed,
                                                 config.env.backend, config.env.config, stream=EVAL_STREAM)
    model = get_algorithm(config.agent.algo).load(checkpoint.model_path, env=env, device=training.device)
    if checkpoint.replay_buffer_path.is_file():
        model.load_replay_buffer(checkpoint.replay_buffer_path)
    if state["env"] is not None:
        model._last_obs = state["last_obs"]
        model._last_episode_starts = state["last_episode_starts"]
        model._last_original_obs = state["last_original_obs"]
    meta = {**meta, "status": "running",
            "resumed": [*meta.get("resumed", []), {"from_step": checkpoint.step,
                                                   "at": datetime.now(UTC).isoformat()}]}
    run.write_meta(meta)
    logger.info("resuming %s from step %d", run.path, checkpoint.step)
    session = TrainingSession(run, config, meta, model, eval_env, evaluations=state["evaluations"],
                              start_step=checkpoint.step, rng_state=checkpoint.load_rng())
    return session.run(evaluation_hooks, callbacks)


class BestModelKeeper:
    """Evaluation hook: save the model whenever its greedy mean return beats every earlier evaluation
    (SB3's ``EvalCallback`` best model). Written to a temp file and renamed, so a crash mid-save
    keeps the previous best. Selection uses the training-time eval episodes (seed stream 1); judge
    the kept model on fresh ones (``neurodrive evaluate --model best``, stream 2)."""

    def __init__(self, model: BaseAlgorithm, path: Path, history: Sequence[dict[str, Any]] = ()) -> None:
        self.model = model
        self.path = path
        self.best: dict[str, Any] | None = max(history, key=lambda record: record["mean_return"], default=None)

    def __call__(self, record: dict[str, Any]) -> None:
        if self.best is not None and record["mean_return"] <= self.best["mean_return"]:
            return
        temp = self.path.with_name(f".{self.path.name}.tmp")
        self.model.save(temp)
        os.replace(temp, self.path)
        self.best = record


class TrainingSession:
    """One ``learn`` call over a run folder: logger, callbacks, checkpoints and the final status."""

    def __init__(self, run: RunFolder, config: ExperimentConfig, meta: dict[str, Any], model: BaseAlgorithm,
                 eval_env: Any, evaluations: list[dict[str, Any]] | None = None, start_step: int = 0,
                 rng_state: dict[str, Any] | None = None) -> None:
        self.run_folder = run
        self.config = config
        self.meta = meta
        self.model = model
        self.eval_env = eval_env
        self.evaluations = list(evaluations or [])
        self.start_step = start_step
        self.rng_state = rng_state

    def _save_evaluation(self, record: dict[str, Any]) -> None:
        # self.evaluations is the eval callback's history: it already holds the record.
        best = max(self.evaluations, key=lambda entry: entry["mean_return"])
        write_json_atomic(self.run_folder.path / "eval.json",
                          {"evaluations": self.evaluations, "final": record, "best": best})

    def run(self, evaluation_hooks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
            callbacks: Sequence[BaseCallback] = ()) -> Path:
        run, config, model, training = self.run_folder, self.config, self.model, self.config.training
        resuming = self.start_step > 0
        model.set_logger(make_logger(run.path / "tb", self.start_step, config.logging.verbose))
        keep_best = BestModelKeeper(model, run.best_model_path, self.evaluations)
        evaluation = DrivingEvalCallback(
            self.eval_env, training.eval_every, training.eval_episodes, self._save_evaluation,
            get_scenario(config.env.id).success, verbose=config.logging.verbose,
            hooks=[keep_best, *evaluation_hooks], history=self.evaluations,
        )
        if resuming and self.evaluations:
            self._save_evaluation(self.evaluations[-1])
        interrupt = InterruptFlag()
        checkpoint_dir = run.path / "checkpoints"
        checkpoint_dir.mkdir(exist_ok=True)
        checkpoints = ResumableCheckpointCallback(checkpoint_dir, training.checkpoint_every, interrupt, evaluation,
                                                  self.eval_env, first_step=self.start_step)
        run_callbacks: list[BaseCallback] = [] if resuming else [HParamsCallback(hparams(config, config.env.backend))]
        run_callbacks += [evaluation, checkpoints, *callbacks]
        # A run saves on SIGINT/SIGTERM even before its first checkpoint: the flag needs a checkpoint cadence.
        interrupt.install()
        started = time.perf_counter()
        try:
            if self.rng_state is not None:
                restore_rng(self.rng_state, model)  # last, so nothing above draws from the restored streams
            model.learn(training.total_timesteps - model.num_timesteps, callback=CallbackList(run_callbacks),
                        progress_bar=config.logging.progress_bar, reset_num_timesteps=not resuming)
        except RunInterrupted as stop:
            stop.run_dir = run.path
            run.write_meta({**self.meta, "status": "interrupted", "steps": stop.step,
                            "resume": f"neurodrive train --resume {run.path}"})
            raise
        except BaseException as error:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            last = latest_checkpoint(checkpoint_dir)
            run.write_meta({**self.meta, "status": status, "steps": model.num_timesteps,
                            "error": f"{type(error).__name__}: {error}",
                            "last_checkpoint_step": last.step if last else None})
            raise
        finally:
            interrupt.restore()
            model.get_env().close()
            self.eval_env.close()
        model.save(run.model_path)
        run.write_meta({
            **self.meta, "status": "finished" if evaluation.stopped_early is None else "stopped",
            "steps": model.num_timesteps,
            "wall_time_s": round(time.perf_counter() - started, 2),
            "finished": datetime.now(UTC).isoformat(),
        })
        return run.path


class _TensorBoardFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard writer with ``purge_step``: a resumed run's events replace, in TensorBoard,
    whatever the interrupted run logged after its checkpoint, so no step is shown twice."""

    def __init__(self, folder: str, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=folder, purge_step=purge_step)
        self._is_closed = False


def make_logger(folder: Path, start_step: int, verbose: int) -> Logger:
    folder.mkdir(parents=True, exist_ok=True)
    csv_name = "progress.csv" if start_step == 0 else f"progress.resumed-{start_step}.csv"
    formats: list[Any] = [_TensorBoardFormat(str(folder), start_step or None),
                          CSVOutputFormat(str(folder / csv_name))]
    if verbose:
        formats.append(HumanOutputFormat(sys.stdout))
    return Logger(str(folder), formats)


def hparams(config: ExperimentConfig, backend: str) -> dict[str, bool | str | float | int | None]:
    """The HParams record: algorithm, env, backend, seed and the scalar hyperparameters."""
    record: dict[str, bool | str | float | int | None] = {
        "algo": algorithm_name(get_algorithm(config.agent.algo)),
        "env": config.env.id,
        "backend": backend,
        "n_envs": config.env.n_envs,
        "seed": config.training.seed,
        "total_timesteps": config.training.total_timesteps,
    }
    for key, value in config.agent.hyperparameters.items():
        record[key] = value if isinstance(value, (bool, str, int, float)) else str(value)
    if config.agent.policy_kwargs:
        record["policy_kwargs"] = json.dumps(config.agent.policy_kwargs, sort_keys=True)
    for part, spec in config.neuro.model_dump(exclude_none=True).items():
        for key, value in spec.items():
            record[f"neuro.{part}.{key}"] = value if isinstance(value, (bool, str, int, float)) else str(value)
    return record


def evaluate_run(run_dir: str | Path, episodes: int = 20, backend: str | None = None,
                 n_envs: int = 1, seed: int | None = None, which: str = "final") -> tuple[DrivingMetrics, Path]:
    """Greedy evaluation of a run's final or best model on either backend; writes
    ``evaluate-<backend>.json`` (``evaluate-best-<backend>.json`` for the best model)."""
    run = RunFolder(Path(run_dir))
    config = run.load_config()
    backend = backend or config.env.backend
    choice = choose_backend(config.env.id, backend, config.env.config)
    model = run.load_model(config, which)
    seed = config.training.seed if seed is None else seed
    env = make_vec_env(config.env.id, n_envs, seed, choice.backend, config.env.config,
                       stream=POSTHOC_EVAL_STREAM)
    try:
        metrics = evaluate_driving(model, env, episodes, success=get_scenario(config.env.id).success)
    finally:
        env.close()
    name = f"evaluate-{choice.backend}.json" if which == "final" else f"evaluate-{which}-{choice.backend}.json"
    out = run.path / name
    write_json_atomic(out, {"backend": choice.backend, "seed": seed, "model": which, **metrics.to_dict()})
    return metrics, out


def record_run(run_dir: str | Path, episodes: int = 1, seed: int | None = None) -> list[Path]:
    """Render the agent driving to mp4 files in ``<run>/videos`` (highway-env, headless)."""
    import numpy as np
    from gymnasium.wrappers import RecordVideo

    run = RunFolder(Path(run_dir))
    config = run.load_config()
    model = run.load_model(config)
    if episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {episodes}")
    video_dir = run.path / "videos"
    env = make_highway_env(config.env.id, config.env.config, render_mode="rgb_array")
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
