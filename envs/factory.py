"""``make_vec_env``: one SB3 VecEnv for any scenario, on the native or the Python backend."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from envs.drivers import DriverMix, check_scenario
from envs.observations import highway_observation_config, wrap_observation
from envs.scenarios import (
    BACKEND_CHOICES,
    ENVPOOL_VERIFIED,
    BackendConfigError,
    envpool_available,
    envpool_kwargs,
    get_scenario,
)
from envs.seeding import env_seeds

__all__ = ["BackendChoice", "choose_backend", "make_highway_env", "make_vec_env"]

Backend = Literal["auto", "envpool", "highway-env"]
VecEnvTransform = Callable[[VecEnv], VecEnv]  # a VecEnv wrapper class or any function of a VecEnv

logger = logging.getLogger("neurodrive.envs")


@dataclass(frozen=True)
class BackendChoice:
    """The backend a scenario runs on, and why."""

    backend: Literal["envpool", "highway-env"]
    reason: str


def choose_backend(env_id: str, backend: str = "auto", config: dict | None = None,
                   drivers: Mapping[str, float] | None = None) -> BackendChoice:
    """Resolve ``backend`` for ``env_id``; errors name the field and the allowed values. A drivers' mix
    (``envs.drivers``) needs highway-env: the native port builds its own traffic."""
    scenario = get_scenario(env_id)
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"env.backend: {backend!r} is not a backend; allowed: {', '.join(BACKEND_CHOICES)}")
    if backend == "highway-env":
        return BackendChoice("highway-env", "requested")
    if drivers:
        if backend == "envpool":
            raise ValueError("env.backend: envpool cannot draw other drivers' behaviour (env.drivers); "
                             "allowed with env.drivers: highway-env, auto")
        return BackendChoice("highway-env", "auto: the native port cannot honour env.drivers")
    if backend == "envpool":
        if not envpool_available():
            raise ValueError("env.backend: envpool is not installed on this platform")
        envpool_kwargs(env_id, config)  # raises BackendConfigError naming the key
        if env_id not in ENVPOOL_VERIFIED:
            warnings.warn(
                f"the EnvPool port of {env_id} is not verified against highway-env "
                f"(verified: {', '.join(sorted(ENVPOOL_VERIFIED))}); its statistics may differ",
                stacklevel=2,
            )
            return BackendChoice("envpool", "requested (unverified port)")
        return BackendChoice("envpool", "requested")
    if scenario.envpool_id is None or env_id not in ENVPOOL_VERIFIED:
        return BackendChoice("highway-env", "auto: no verified native port")
    if not envpool_available():
        return BackendChoice("highway-env", "auto: envpool not installed")
    try:
        envpool_kwargs(env_id, config)
    except BackendConfigError as error:
        return BackendChoice("highway-env", f"auto: native port cannot honour config ({error})")
    return BackendChoice("envpool", "auto: verified native port")


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int = 0,
    backend: Backend = "auto",
    config: dict[str, Any] | None = None,
    wrappers: Sequence[VecEnvTransform] = (),
    render_mode: str | None = None,
    num_threads: int | None = None,
    stream: int = 0,
    drivers: Mapping[str, float] | None = None,
) -> VecEnv:
    """Build an SB3 VecEnv for a highway-env scenario.

    :param env_id: a highway-env scenario id (``neurodrive envs`` lists them).
    :param n_envs: parallel envs.
    :param seed: run seed; env i gets ``env_seeds(seed, n_envs)[i]``.
    :param backend: ``envpool`` (native), ``highway-env`` (Python reference) or ``auto``.
    :param config: highway-env config overrides; translated for EnvPool or rejected by key.
    :param wrappers: VecEnv wrappers applied in order on top, the same on both backends.
    :param render_mode: ``rgb_array`` for videos (highway-env backend only).
    :param num_threads: EnvPool threads; default ``min(n_envs, cpu count)``.
    :param stream: seed stream (0 training, 1 evaluation) so eval episodes are not training ones.
    :param drivers: other drivers' behaviour mix drawn per episode (``envs.drivers``); highway-env only.
    """
    if n_envs < 1:
        raise ValueError(f"env.n_envs: must be >= 1, got {n_envs}")
    choice = choose_backend(env_id, backend, config, drivers)
    if drivers:
        check_scenario(env_id)
    # debug: a run names its backend once (experiments.runs.session); per env it would repeat, and say
    # "requested" for the backend `auto` had already resolved
    logger.debug("env %s: backend %s (%s)", env_id, choice.backend, choice.reason)
    if choice.backend == "envpool":
        if render_mode is not None:
            raise ValueError("render_mode: rendering needs backend highway-env")
        from envs.envpool_vec_env import EnvPoolVecEnv

        threads = num_threads if num_threads is not None else min(n_envs, os.cpu_count() or 1)
        envpool_id = get_scenario(env_id).envpool_id
        assert envpool_id is not None  # choose_backend picks envpool only for scenarios with a port
        vec_env: VecEnv = EnvPoolVecEnv(
            envpool_id, env_seeds(seed, n_envs, stream),
            envpool_kwargs(env_id, config), threads, stream,
        )
    else:
        env_fns = [_highway_env_fn(env_id, config, render_mode, drivers) for _ in range(n_envs)]
        vec_env = SeededDummyVecEnv(env_fns) if n_envs == 1 else SeededSubprocVecEnv(env_fns)
        vec_env.stream = stream
        vec_env.seed(seed)  # SB3 models reseed the same way when given a seed
    vec_env.run_seed = seed  # type: ignore[attr-defined]  # robustness wrappers draw per run seed (envs.robustness)

    try:
        for wrap in wrappers:
            vec_env = wrap(vec_env)
    except BaseException:
        vec_env.close()  # a wrapper that does not fit the env must not leave its subprocesses behind
        raise
    return vec_env


def make_highway_env(env_id: str, config: dict[str, Any] | None = None,
                     render_mode: str | None = None) -> gym.Env:
    """One highway-env (Python reference) env; registers the ids, so it works in subprocesses."""
    import highway_env

    gym.register_envs(highway_env)
    kwargs: dict[str, Any] = {}
    if config:
        kwargs["config"] = highway_env_config(config)
    if render_mode is not None:  # lane-keeping-v0's constructor takes no render_mode
        kwargs["render_mode"] = render_mode
    _ensure_runtime_dir()  # videos and image observations (GrayscaleObservation) render
    own = dict(_PRISTINE_IDM)
    with _own_idm_parameters(own), warnings.catch_warnings():  # construction already resets the env
        warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading")
        try:
            env = gym.make(env_id, **kwargs)
        except Exception as error:
            if not config:
                raise
            # highway-env checks no config value: a bad one fails anywhere inside with any type
            raise ValueError(f"env.config: highway-env cannot build {env_id} with this config: "
                             f"{type(error).__name__}: {error}") from None
    return wrap_observation(OwnVehicleDefaults(env, own), config)  # a tuple of observations as a Dict


def highway_env_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as highway-env takes it: the observation's lists made tuples where it needs tuples
    (``envs.observations.highway_observation_config``)."""
    converted = dict(config)
    if isinstance(converted.get("observation"), dict):
        converted["observation"] = highway_observation_config(converted["observation"])
    return converted


def check_highway_env_config(env_id: str, config: dict[str, Any] | None) -> None:
    """Build one env of ``env_id`` with ``config`` and close it: a bad value fails here with a
    ``ValueError`` naming ``env.config``, not later in a worker process (several envs run in subprocesses).
    Once per scenario and config (a comparison checks every cell)."""
    if config:
        _check_built(env_id, json.dumps(config, sort_keys=True))


@cache
def _check_built(env_id: str, config_json: str) -> None:
    make_highway_env(env_id, json.loads(config_json)).close()


def _ensure_runtime_dir() -> None:
    """SDL (pygame's renderer) prints "Error: XDG_RUNTIME_DIR is invalid or not set" on a headless
    machine, then renders fine: give it a private folder so a user is not told of an error."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current):
        return
    folder = os.path.join(tempfile.gettempdir(), f"neurodrive-runtime-{os.getuid()}")  # one per user, reused
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = folder


@contextmanager
def _own_idm_parameters(own: dict[str, float]) -> Iterator[None]:
    """Inside, IDMVehicle's class parameters are ``own`` (which records any change); outside, as before."""
    from highway_env.vehicle.behavior import IDMVehicle

    outside = {name: getattr(IDMVehicle, name) for name in own}
    for name, value in own.items():
        setattr(IDMVehicle, name, value)
    try:
        yield
    finally:
        own.update({name: getattr(IDMVehicle, name) for name in own})
        for name, value in outside.items():
            setattr(IDMVehicle, name, value)


class OwnVehicleDefaults(gym.Wrapper):
    """Give each env its own copy of the IDM class parameters highway-env mutates process-wide.

    intersection-v0 sets ``IDMVehicle.DISTANCE_WANTED`` and ``COMFORT_ACC_MAX/MIN`` on the class,
    so every highway-env scenario built later in the same process would drive differently. This
    wrapper swaps the env's own values in around each ``reset``/``step``.
    """

    def __init__(self, env: gym.Env, own: dict[str, float]) -> None:
        super().__init__(env)
        self._own = own

    def reset(self, **kwargs: Any) -> Any:
        with _own_idm_parameters(self._own):
            return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        with _own_idm_parameters(self._own):
            return self.env.step(action)


def _pristine_idm_parameters() -> dict[str, float]:
    from highway_env.vehicle.behavior import IDMVehicle

    return {name: getattr(IDMVehicle, name) for name in ("DISTANCE_WANTED", "COMFORT_ACC_MAX", "COMFORT_ACC_MIN")}


_PRISTINE_IDM = _pristine_idm_parameters()  # read at import, before any env has run


def _highway_env_fn(
    env_id: str, config: dict[str, Any] | None, render_mode: str | None,
    drivers: Mapping[str, float] | None = None,
) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = make_highway_env(env_id, config, render_mode)
        return Monitor(DriverMix(env, drivers) if drivers else env)

    return make


class _SpacedSeeds:
    """``VecEnv.seed`` that derives per-env seeds with ``env_seeds`` instead of ``seed + i``."""

    num_envs: int
    _seeds: list[int | None]
    stream: int = 0

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.int32).max))
        self._seeds = list(env_seeds(seed, self.num_envs, self.stream))
        return self._seeds


class SeededDummyVecEnv(_SpacedSeeds, DummyVecEnv):
    """DummyVecEnv with independent per-env seed streams."""


class SeededSubprocVecEnv(_SpacedSeeds, SubprocVecEnv):
    """SubprocVecEnv with independent per-env seed streams."""
