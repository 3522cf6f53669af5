"""The training session: ``config -> envs -> agent -> callbacks -> run folder``, and resume.

``train`` builds through ``experiments.runs.build`` (the one build path), ``TrainingSession`` runs
one ``learn`` over the run folder: logger, evaluation history, checkpoints, the final status.
A failure anywhere leaves ``run.json`` saying why (``status: failed`` and the error) and keeps
every file already written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv

from agents.callbacks import DrivingEvalCallback, HParamsCallback, SpikeLogCallback
from agents.hparams import HParamValue
from agents.registry import algorithm_name, get_algorithm
from envs.scenarios import get_scenario
from experiments.config import ConfigError, ExperimentConfig, save_config
from experiments.files import library_versions
from experiments.runs.build import EVAL_STREAM, BuiltRun, build_run, load_model, make_env, resolve_backend
from experiments.runs.checkpoints import (
    Checkpoint,
    CheckpointDamaged,
    InterruptFlag,
    ResumableCheckpointCallback,
    latest_checkpoint,
    restore_rng,
    resumable_checkpoints,
)
from experiments.runs.errors import RunInterrupted
from experiments.runs.folder import LIBRARIES, RunFolder, check_writable, create_run_dir, platform_commit
from experiments.runs.history import EvaluationHistory

__all__ = ["TrainingSession", "resume", "train"]

logger = logging.getLogger("neurodrive.run")

EvaluationHook = Callable[[dict[str, Any]], bool | None]


def train(
    config: ExperimentConfig,
    command: list[str] | None = None,
    evaluation_hooks: Sequence[EvaluationHook] = (),
    callbacks: Sequence[BaseCallback] = (),
    group: Mapping[str, HParamValue] | None = None,
) -> Path:
    """Train one agent and fill its run folder; returns the folder.

    :param evaluation_hooks: called with each evaluation record; one returning ``False`` stops the
        run early (status ``stopped``), as a sweep's pruner does.
    :param callbacks: extra SB3 callbacks, run after the platform's own.
    :param group: the run is one of a group (a grid's ``variant``, a sweep's ``trial``): these columns join
        its HParams record, and it writes no experiment summary of its own (the group's folder holds one).
    """
    resolved, choice = resolve_backend(config)  # a config the backend cannot honour fails here, before any folder
    run = RunFolder(create_run_dir(config))
    with run.lock():  # a `train --resume` of this folder started meanwhile waits its turn
        save_config(resolved, run.config_path)
        meta = new_meta(config, {"requested": config.env.backend, "chosen": choice.backend, "reason": choice.reason},
                        command)
        run.write_meta(meta)
        logger.info("run folder %s; env %s on %s (%s)", run.path, config.env.id, choice.backend, choice.reason)
        try:
            built = build_run(resolved)
        except BaseException as error:  # the folder exists: say why it holds no training
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            run.write_meta({**meta, "status": status, "steps": 0, "error": f"{type(error).__name__}: {error}"})
            raise
        history = EvaluationHistory(run.eval_path, run.best_model_path, log_each=not config.logging.progress_bar)
        session = TrainingSession(run, resolved, meta, built, history, group=group)
        return session.run(evaluation_hooks, callbacks)


def new_meta(config: ExperimentConfig, backend: dict[str, Any], command: list[str] | None) -> dict[str, Any]:
    """A new ``run.json``: status ``running``, what runs, with which libraries and command."""
    return {
        "status": "running",
        "experiment": config.name,
        "seed": config.training.seed,
        "algo": config.agent.algo,
        "env_id": config.env.id,
        "backend": backend,
        "versions": library_versions(LIBRARIES),
        "platform_commit": platform_commit(),
        "command": command or sys.argv,
        "started": datetime.now(UTC).isoformat(),
    }


def resume(
    run_dir: str | Path,
    command: list[str] | None = None,
    evaluation_hooks: Sequence[EvaluationHook] = (),
    callbacks: Sequence[BaseCallback] = (),
) -> Path:
    """Continue a run from its newest intact checkpoint, up to its ``total_timesteps``.

    Damaged checkpoints (a truncated file, a ``latest.json`` naming none) are skipped, each named with
    why; a damaged ``run.json`` is written anew. A read-only folder, a folder another process is
    writing, or a config.yaml whose ``env.n_envs`` differs from the checkpoint's is one line before any work.
    """
    run = RunFolder(Path(run_dir))
    config = run.load_config()
    with run.lock():  # also proves the folder writable
        check_writable(run.checkpoint_dir if run.checkpoint_dir.is_dir() else run.path,
                       "a resumed run writes its checkpoints there")
        meta = _meta_to_resume(run, config, command)
        if meta.get("status") in ("finished", "stopped"):
            raise ConfigError(f"{run.path}: the run is already {meta['status']}; nothing to resume")
        checkpoint, state, rng_state, built, skipped = _newest_intact(run, config)
        record: dict[str, Any] = {"from_step": checkpoint.step, "at": datetime.now(UTC).isoformat()}
        if skipped:
            record["skipped"] = skipped
        meta = {**meta, "status": "running", "resumed": [*meta.get("resumed", []), record]}
        run.write_meta(meta)
        logger.info("resuming %s from step %d", run.path, checkpoint.step)
        history = EvaluationHistory(run.eval_path, run.best_model_path, state["evaluations"],
                                    log_each=not config.logging.progress_bar)
        history.restore_best_model(checkpoint.best_model_path)
        session = TrainingSession(run, config, meta, built, history,
                                  start_step=checkpoint.step, rng_state=rng_state)
        return session.run(evaluation_hooks, callbacks)


def _meta_to_resume(run: RunFolder, config: ExperimentConfig, command: list[str] | None) -> dict[str, Any]:
    """``run.json``, or a new one when it is missing or damaged (the checkpoints hold the training)."""
    try:
        meta = run.read_meta()
        if isinstance(meta, dict):
            return meta
        problem = "holds no record"
    except FileNotFoundError:
        problem = "is missing"
    except (OSError, ValueError) as error:
        problem = f"is damaged ({type(error).__name__})"
    logger.warning("%s: run.json %s; resuming with a new one", run.path, problem)
    backend = {"requested": config.env.backend, "chosen": config.env.backend,
               "reason": f"from config.yaml: run.json {problem} when the run was resumed"}
    return new_meta(config, backend, command)


def _newest_intact(run: RunFolder, config: ExperimentConfig) -> tuple[Checkpoint, dict[str, Any], dict[str, Any],
                                                                       BuiltRun, list[str]]:
    """The newest checkpoint whose files load: it, its state, its RNG state, its envs and model loaded, and
    what was skipped and why."""
    candidates, skipped = resumable_checkpoints(run.checkpoint_dir)
    for note in skipped:
        logger.warning("%s: %s", run.path, note)
    for checkpoint in candidates:
        try:
            state, rng_state = checkpoint.load_checked()
            saved = checkpoint.saved_n_envs()
            if saved is not None and saved != config.env.n_envs:
                raise ConfigError(f"env.n_envs: config.yaml of {run.path} says {config.env.n_envs} but the run was "
                                  f"trained with {saved}; a resumed run keeps its n_envs (set it back to {saved})")
            return checkpoint, state, rng_state, _load_checkpoint(config, checkpoint, state), skipped
        except CheckpointDamaged as damage:
            skipped.append(f"{checkpoint.path.name}: {damage}")
            logger.warning("%s: skipped checkpoint %s: %s", run.path, checkpoint.path.name, damage)
    if not candidates and not skipped:
        raise ConfigError(f"{run.path}: no checkpoint to resume from (checkpoints/ holds none); "
                          "set training.checkpoint_every to make runs resumable")
    raise ConfigError(f"{run.path}: no intact checkpoint to resume from: {'; '.join(skipped)}")


def _load_checkpoint(config: ExperimentConfig, checkpoint: Checkpoint, state: dict[str, Any]) -> BuiltRun:
    """Envs (the pickled ones, else new) and the model with its replay buffer, as the checkpoint left them."""
    # Pickled highway-env envs continue mid-episode; native pools restart their episodes.
    env: VecEnv = state["env"] or make_env(config)
    eval_env: VecEnv = state["eval_env"] or make_env(config, EVAL_STREAM, n_envs=config.training.eval_n_envs)
    try:
        try:
            # model.zip passed its checksums: a model that does not load is the config's, not the file's
            model = load_model(config, checkpoint.model_path, env=env)
        except Exception as error:  # SB3 raises many types for a foreign zip
            raise ConfigError(f"{checkpoint.path}: cannot resume as agent.algo={config.agent.algo!r} "
                              f"(from config.yaml): {type(error).__name__}: {error}") from None
        if checkpoint.replay_buffer_path.is_file():
            try:
                model.load_replay_buffer(checkpoint.replay_buffer_path)  # type: ignore[attr-defined]  # off-policy
            except Exception as error:  # a truncated pickle
                raise CheckpointDamaged(f"replay_buffer.pkl is damaged ({type(error).__name__})") from None
    except BaseException:
        env.close()
        eval_env.close()
        raise
    if state["env"] is not None:
        model._last_obs = state["last_obs"]
        model._last_episode_starts = state["last_episode_starts"]
        model._last_original_obs = state["last_original_obs"]
        if state.get("last_lstm_states") is not None:  # mid-episode recurrent state (traces, LSTM cells)
            model._last_lstm_states = state["last_lstm_states"]  # type: ignore[attr-defined]  # RecurrentPPO
    return BuiltRun(env, eval_env, model)


class TrainingSession:
    """One ``learn`` call over a run folder: logger, callbacks, checkpoints and the final status."""

    def __init__(self, run: RunFolder, config: ExperimentConfig, meta: dict[str, Any], built: BuiltRun,
                 history: EvaluationHistory, start_step: int = 0, rng_state: dict[str, Any] | None = None,
                 group: Mapping[str, HParamValue] | None = None) -> None:
        self.run_folder = run
        self.group = group
        self.config = config
        self.meta = meta
        self.model = built.model
        assert built.eval_env is not None  # train and resume build evaluation envs
        self.eval_env = built.eval_env
        self.history = history
        self.start_step = start_step
        self.rng_state = rng_state

    def run(self, evaluation_hooks: Sequence[EvaluationHook] = (), callbacks: Sequence[BaseCallback] = ()) -> Path:
        run, config, model, training = self.run_folder, self.config, self.model, self.config.training
        resuming = self.start_step > 0
        model.set_logger(make_logger(run.path / "tb", self.start_step, config.logging.verbose))
        evaluation = DrivingEvalCallback(
            self.eval_env, training.eval_every, training.eval_episodes,
            lambda record: self.history.add(record, model),
            get_scenario(config.env.id).success, verbose=config.logging.verbose,
            hooks=evaluation_hooks, last_step=self.history.last_step,
        )
        interrupt = InterruptFlag()
        checkpoint_dir = run.checkpoint_dir
        checkpoint_dir.mkdir(exist_ok=True)
        checkpoints = ResumableCheckpointCallback(checkpoint_dir, training.checkpoint_every, interrupt, self.history,
                                                  self.eval_env, first_step=self.start_step)
        # A resumed run wrote its HParams record when it started.
        run_callbacks: list[BaseCallback] = [] if resuming else [
            HParamsCallback({**hparams(config, config.env.backend), **(self.group or {})}, summary=self.group is None)]
        run_callbacks += [SpikeLogCallback(), evaluation, checkpoints, *callbacks]
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
            if (env := model.get_env()) is not None:
                env.close()

            if self.eval_env is not None:
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


def hparams(config: ExperimentConfig, backend: str) -> dict[str, HParamValue | None]:
    """The HParams record: algorithm, env, backend, seed, the scalar hyperparameters, neuro parts and
    a spiking policy's settings. A grid's or a sweep's summary takes the union of its runs' keys
    (``agents.hparams.experiment_summary``)."""
    record: dict[str, HParamValue | None] = {
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
    for part, spec in config.neuro.items():
        for key, value in (spec or {}).items():
            record[f"neuro.{part}.{key}"] = value if isinstance(value, (bool, str, int, float)) else str(value)
    if config.agent.policy is not None:
        record["policy"] = config.agent.policy
    for key, value in (config.agent.snn_settings() or {}).items():  # a spiking policy's settings, to compare runs
        record[f"agent.snn.{key}"] = value if isinstance(value, (bool, str, int, float)) else json.dumps(value)
    return record
