"""Resumable checkpoints, written atomically at rollout boundaries.

A checkpoint is ``checkpoints/step_<N>/`` with ``model.zip`` (parameters, optimizer, counters and the
neuro modules, pickled by SB3), ``replay_buffer.pkl`` (off-policy agents), ``rng.pt`` (torch,
numpy, random and action-space generator states; tensors only, read with ``weights_only=True``),
``state.pkl`` (the envs where they can be pickled, an image observation's render state rebuilt on load
(``envs.observations.dump_with_render_state``), the last observation, the evaluation history) and
``best_model.zip`` (the run's best model as it stood then, a hard link). It is assembled in a temp folder
and renamed into place; ``checkpoints/latest.json`` is replaced last, so a crash mid-save never leaves a
broken "latest".

A resume takes the newest intact checkpoint (``resumable_checkpoints``): a damaged ``latest.json``, a
missing folder or a truncated file (``CheckpointDamaged``) makes it fall back on an older one, saying why.

Checkpoints are taken in ``on_rollout_start``: there SB3 has stored every transition and finished
the previous gradient update, so a resumed run continues exactly where the saved one stood.
SIGINT/SIGTERM only raise a flag that is honoured at the next such point.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from envs.observations import dump_with_render_state
from experiments.files import write_json_atomic
from experiments.runs.errors import CheckpointError, RunInterrupted
from experiments.runs.history import EvaluationHistory


@dataclass
class InterruptFlag:
    """SIGINT/SIGTERM set the flag; a second signal interrupts at once."""

    requested: bool = False
    _previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def _rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    space_state = model.action_space.np_random.bit_generator.state
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),

        "numpy_rest": [int(position), int(has_gauss), float(cached_gaussian)],
        "random": json.dumps(random.getstate()),
        "action_space": json.dumps(space_state),
    }


def restore_rng(state: dict[str, Any], model: BaseAlgorithm) -> None:
    torch.set_rng_state(state["torch"])
    position, has_gauss, cached_gaussian = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), position, has_gauss,
                         cached_gaussian))
    version, internal, gauss = json.loads(state["random"])
    random.setstate((version, tuple(internal), gauss))
    model.action_space.np_random.bit_generator.state = json.loads(state["action_space"])


def picklable_env(vec_env: VecEnv | None) -> VecEnv | None:
    """highway-env's Python envs pickle with their full state; native EnvPool pools do not."""
    return vec_env if isinstance(vec_env, DummyVecEnv) else None


@dataclass
class Checkpoint:
    """One saved checkpoint folder."""

    path: Path
    step: int

    @property
    def model_path(self) -> Path:
        return self.path / "model.zip"

    @property
    def replay_buffer_path(self) -> Path:
        return self.path / "replay_buffer.pkl"

    @property
    def best_model_path(self) -> Path | None:
        """The run's best model at this checkpoint; ``None`` before its first evaluation."""
        path = self.path / "best_model.zip"
        return path if path.is_file() else None

    def load_rng(self) -> dict[str, Any]:
        return torch.load(self.path / "rng.pt", weights_only=True)

    def load_state(self) -> dict[str, Any]:
        with open(self.path / "state.pkl", "rb") as handle:
            return cloudpickle.load(handle)  # trusted: written by this run

    def saved_n_envs(self) -> int | None:
        """How many envs the model was trained with (SB3's ``n_envs`` in ``model.zip``)."""
        with zipfile.ZipFile(self.model_path) as archive:
            value = json.loads(archive.read("data")).get("n_envs")
        return value if isinstance(value, int) else None

    def load_checked(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(state, rng state)``, once ``model.zip`` has passed its checksums; ``CheckpointDamaged`` names
        the file that is missing, truncated or unreadable."""
        try:
            with zipfile.ZipFile(self.model_path) as archive:
                bad = archive.testzip()
                json.loads(archive.read("data"))  # SB3's attributes: a cut archive may lack them
        except (OSError, zipfile.BadZipFile, EOFError, KeyError, ValueError) as error:
            raise CheckpointDamaged(f"model.zip is missing or damaged ({_reason(error)})") from None
        if bad is not None:
            raise CheckpointDamaged(f"model.zip is damaged ({bad} fails its checksum)")
        loaded = []
        for name, load in (("state.pkl", self.load_state), ("rng.pt", self.load_rng)):
            try:
                loaded.append(load())
            except Exception as error:  # pickle and torch raise many types for a truncated file
                raise CheckpointDamaged(f"{name} is missing or damaged ({_reason(error)})") from None
        state, rng = loaded
        if not isinstance(state, dict) or not isinstance(rng, dict):
            raise CheckpointDamaged("state.pkl or rng.pt holds something else than a checkpoint's state")
        return state, rng


class CheckpointDamaged(Exception):
    """A checkpoint folder a resume cannot use; the message says which file and why."""


def _reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


STEP_FOLDER = re.compile(r"step_(\d+)")  # a checkpoint's folder; temp folders start with a dot


def read_latest(checkpoint_dir: Path) -> tuple[Checkpoint | None, str | None]:
    """The checkpoint ``latest.json`` names, or ``None`` and what is wrong with it (``None``: no file)."""
    pointer = checkpoint_dir / "latest.json"
    if not pointer.is_file():
        return None, None
    try:
        data = json.loads(pointer.read_text())
    except (OSError, ValueError) as error:
        return None, f"latest.json is unreadable ({_reason(error)})"
    folder = data.get("folder") if isinstance(data, dict) else None
    match = STEP_FOLDER.fullmatch(folder) if isinstance(folder, str) else None
    if match is None:
        return None, f"latest.json names no checkpoint folder (it holds {json.dumps(data)[:80]})"
    if not (checkpoint_dir / match[0]).is_dir():
        return None, f"latest.json names {match[0]}, which is missing"
    return Checkpoint(checkpoint_dir / match[0], int(match[1])), None


def latest_checkpoint(checkpoint_dir: Path) -> Checkpoint | None:
    """The checkpoint ``latest.json`` names, if it names one that exists."""
    return read_latest(checkpoint_dir)[0]


def resumable_checkpoints(checkpoint_dir: Path) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint folder, newest first, and what is wrong with ``latest.json`` (if anything).

    The folders are listed, not only the one ``latest.json`` names: a crash between renaming a new
    checkpoint into place and updating the pointer leaves the newest one unnamed, and a damaged pointer
    must not hide the intact folders beside it.
    """
    _, problem = read_latest(checkpoint_dir)
    found = []
    if checkpoint_dir.is_dir():
        for path in checkpoint_dir.iterdir():
            match = STEP_FOLDER.fullmatch(path.name)
            if match and path.is_dir():
                found.append(Checkpoint(path, int(match[1])))
    return sorted(found, key=lambda checkpoint: checkpoint.step, reverse=True), [problem] if problem else []


def save_checkpoint(model: BaseAlgorithm, checkpoint_dir: Path, eval_env: VecEnv | None,
                    evaluations: list[dict[str, Any]], best_model: Path | None = None) -> Checkpoint:
    """Write a complete checkpoint next to the others, then point ``latest.json`` at it.

    :param best_model: the run's ``best_model.zip``, linked in so a resume restores it as it was.
    """
    step = model.num_timesteps
    name = f"step_{step:09d}"
    final = checkpoint_dir / name
    temp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=checkpoint_dir))
    try:
        model.save(temp / "model.zip")
        if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            model.save_replay_buffer(temp / "replay_buffer.pkl")
        torch.save(_rng_state(model), temp / "rng.pt")
        state = {
            "step": step,
            "env": picklable_env(model.get_env()),
            "eval_env": picklable_env(eval_env) if eval_env is not None else None,
            "last_obs": model._last_obs,
            "last_episode_starts": model._last_episode_starts,
            "last_original_obs": model._last_original_obs,
            "last_lstm_states": getattr(model, "_last_lstm_states", None),  # RecurrentPPO's per-env state
            "evaluations": evaluations,
        }
        with open(temp / "state.pkl", "wb") as handle:
            dump_with_render_state(state, handle)  # image observations: their pygame surfaces rebuilt on load
        if best_model is not None and best_model.is_file():
            _link_or_copy(best_model, temp / "best_model.zip")
        if final.exists():  # an interrupt right after a resume saves the step it resumed from again
            shutil.rmtree(final)
        os.replace(temp, final)
        write_json_atomic(checkpoint_dir / "latest.json", {"step": step, "folder": name})
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        previous = latest_checkpoint(checkpoint_dir)
        kept = f"the previous checkpoint (step {previous.step}) is kept" if previous else "no earlier checkpoint"
        raise CheckpointError(f"checkpoint at step {step}: cannot write {error.filename or checkpoint_dir}: "
                              f"{error.strerror or error}; {kept}") from error
    return Checkpoint(final, step)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs no space; the run replaces ``best_model.zip`` by rename, never in place."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class ResumableCheckpointCallback(BaseCallback):
    """Every ``every`` env steps, and on an interrupt request, save a resumable checkpoint.

    :param first_step: the step the run starts from (a resume must not re-save it).
    """

    def __init__(self, checkpoint_dir: Path, every: int, interrupt: InterruptFlag,
                 history: EvaluationHistory, eval_env: VecEnv | None, first_step: int = 0) -> None:
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self.every = every
        self.interrupt = interrupt
        self.history = history
        self.eval_env = eval_env
        self.last_saved = first_step

    def _on_rollout_start(self) -> None:
        if self.interrupt.requested:
            self.save()
            raise RunInterrupted(self.num_timesteps)
        if self.every and self.num_timesteps // self.every > self.last_saved // self.every:
            self.save()

    def save(self) -> Checkpoint:
        checkpoint = save_checkpoint(self.model, self.checkpoint_dir, self.eval_env, self.history.records,
                                     self.history.best_model_path)
        self.last_saved = checkpoint.step
        return checkpoint

    def _on_step(self) -> bool:
        return True
