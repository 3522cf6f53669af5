"""The one path from a validated config to envs and a model.

``train``, ``train --resume``, ``evaluate``, ``bench`` (the stock SB3 reference included, as
``agent.algo: stable_baselines3:DQN``) and sweeps build their envs and models here, and ``record``
and ``fidelity --run`` load their model here, so a run is built the same way whoever starts it
(``record`` renders one highway-env env of the config's scenario with ``envs.make_highway_env``)::

    config = load_config("experiments/presets/highway_dqn.yaml")   # validated, nothing built
    config, choice = resolve_backend(config)                        # `auto` made concrete
    built = build_run(config)                                       # envs, then the model
    built.model.learn(1000)

A ``ValueError`` raised while building from a config is a configuration error (``ConfigError``:
the CLI prints it and exits with status 2); an error later, while training, is a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.factory import BackendChoice, check_highway_env_config, choose_backend, make_highway_env, make_vec_env
from envs.observations import observation_type
from experiments.config import ConfigError, ExperimentConfig
from experiments.config.bounds import check_process_envs
from experiments.config.wrappers import robustness_wrappers

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["BuiltRun", "build_model", "build_run", "load_model", "make_env", "resolve_backend"]

TRAIN_STREAM = 0  # seed stream of the training envs
EVAL_STREAM = 1  # seed stream of evaluation envs during training
POSTHOC_EVAL_STREAM = 2  # seed stream of `neurodrive evaluate`, unseen during training


@contextmanager
def config_errors(where: str | None = None) -> Iterator[None]:
    """Report a ``ValueError`` raised while building from a config as the ``ConfigError`` it is.

    :param where: the config section being built; its ``AssertionError`` is a config error too (SB3
        asserts what it checks of a policy, as ``CnnPolicy`` on a vector observation), named by its first line.
    """
    try:
        yield
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from error
    except AssertionError as error:
        if where is None:
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "refused by the algorithm"
        raise ConfigError(f"{where}: {first_line}") from error


def resolve_backend(config: ExperimentConfig, backend: str | None = None) -> tuple[ExperimentConfig, BackendChoice]:
    """The backend ``env.backend`` (or ``backend``) resolves to, checked before any work, and a copy
    of the config with it written in (what a run folder saves)."""
    with config_errors():
        choice = choose_backend(config.env.id, backend or config.env.backend, config.env.config, config.env.drivers)
        if choice.backend == "highway-env":
            check_highway_env_config(config.env.id, config.env.config)
            check_observation_policy(config)
    check_process_envs("env.n_envs", config.env.n_envs, choice.backend)  # `auto` may have chosen processes
    check_process_envs("training.eval_n_envs", config.training.eval_n_envs, choice.backend)
    resolved = config.model_copy(deep=True)
    resolved.env.backend = choice.backend
    return resolved, choice


def check_observation_policy(config: ExperimentConfig) -> None:
    """An image or multi-modal observation (``env.config.observation``) against ``agent.policy``, before any
    folder: a CNN policy needs an image, the spiking MLP takes none (``agents.registry.check_policy_space``).
    Kinematics-like vectors need no check (every policy reads them), so the usual run builds no agent here."""
    if observation_type(config.env.config) in ("Kinematics", "OccupancyGrid", "TimeToCollision", "LidarObservation") \
            and not (config.agent.policy or "").startswith("Cnn"):
        return
    from agents.registry import check_policy_space, get_algorithm, resolve_policy

    cls = get_algorithm(config.agent.algo)
    policy_kwargs = config.agent.policy_kwargs or {}
    check_policy_space(cls, resolve_policy(cls, config.agent.policy, policy_kwargs), policy_kwargs,
                       observation_space(config.env.id, config.env.config), config.agent.snn_settings())


def observation_space(env_id: str, config: dict[str, Any] | None) -> Any:
    """The observation space one highway-env env of ``env_id`` with ``config`` gives the agent (a tuple as
    its Dict), built once per scenario and config, then closed."""
    return _built_space(env_id, json.dumps(config or {}, sort_keys=True))


@cache
def _built_space(env_id: str, config_json: str) -> Any:
    env = make_highway_env(env_id, json.loads(config_json))
    try:
        return env.observation_space
    finally:
        env.close()


def make_env(config: ExperimentConfig, stream: int = TRAIN_STREAM, n_envs: int | None = None,
             seed: int | None = None, render_mode: str | None = None) -> VecEnv:
    """The config's scenario as a VecEnv on its (resolved) backend, under its ``env.wrappers`` (training
    and evaluation envs alike); ``stream`` separates training, evaluation and post-hoc evaluation episodes."""
    with config_errors():
        return make_vec_env(
            config.env.id, n_envs or config.env.n_envs,
            config.training.seed if seed is None else seed,
            config.env.backend, config.env.config, wrappers=robustness_wrappers(config.env.wrappers),
            render_mode=render_mode, stream=stream, drivers=config.env.drivers,
        )


def set_torch_numerics(config: ExperimentConfig) -> None:
    """torch's process-wide settings of a run: its threads and denormal flushing."""
    import torch

    torch.set_num_threads(config.training.torch_threads)
    torch.set_flush_denormal(config.training.flush_denormal)


def build_model(config: ExperimentConfig, env: VecEnv) -> BaseAlgorithm:
    """The agent of ``config.agent`` with the parts of ``config.neuro``, on ``env``."""
    from agents.registry import build

    set_torch_numerics(config)
    with config_errors(where=f"agent (algo {config.agent.algo}, policy {config.agent.policy or 'default'})"):
        return build(
            config.agent.algo, env, config.agent.policy, config.agent.hyperparameters,
            config.agent.policy_kwargs, seed=config.training.seed, device=config.training.device,
            neuro=config.neuro, snn=config.agent.snn_settings(),
        )


def load_model(config: ExperimentConfig, path: Path, env: VecEnv | None = None) -> BaseAlgorithm:
    """A saved model of the config's algorithm (its neuro parts come back from the zip)."""
    from agents.registry import get_algorithm

    set_torch_numerics(config)
    return get_algorithm(config.agent.algo).load(path, env=env, device=config.training.device)


@dataclass
class BuiltRun:
    """What ``build_run`` made: training envs, evaluation envs (optional) and the model."""

    env: VecEnv
    eval_env: VecEnv | None
    model: BaseAlgorithm

    def close(self) -> None:
        self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()


def build_run(config: ExperimentConfig, env: VecEnv | None = None, with_eval_env: bool = True) -> BuiltRun:
    """Envs and model of a config whose backend is resolved (``resolve_backend``).

    :param env: train on this VecEnv instead of the config's scenario (the bench's zero-cost env).
    :param with_eval_env: also build the evaluation envs (``training.eval_n_envs``, seed stream 1).
    """
    env = env if env is not None else make_env(config)
    eval_env = None
    try:
        if with_eval_env:
            eval_env = make_env(config, EVAL_STREAM, n_envs=config.training.eval_n_envs)
        model = build_model(config, env)
    except BaseException:
        env.close()
        if eval_env is not None:
            eval_env.close()
        raise
    return BuiltRun(env, eval_env, model)
