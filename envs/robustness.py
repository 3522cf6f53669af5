"""Robustness settings: VecEnv wrappers that take an agent off its training distribution.

Noisy sensors, lost detections, late observations and late actuation, the same on both backends
(they wrap the finished SB3 VecEnv, so EnvPool and highway-env envs get the same treatment). An
experiment file lists them under ``env.wrappers``, applied in order to training and evaluation envs::

    env:
      wrappers:
        - {type: observation_noise, std: 0.05}
        - {type: sensor_dropout, probability: 0.2}
        - {type: observation_delay, steps: 2}
        - {type: action_delay, steps: 1}

``type`` is a name of ``WRAPPERS`` or ``package.module:Class`` for a user's own
``VecEnvWrapper`` subclass, built as ``Class(venv, **params)``. Parameters are checked at config load;
errors name the item (``env.wrappers.1.probability: must be in [0, 1) (got 1.5)``).

Random wrappers draw from one numpy ``Generator`` per env, spawned from ``SeedSequence([seed, kind,
run seed, stream])``: runs are reproducible, env i draws the same whatever ``n_envs`` is, seeds of a
multi-seed comparison draw differently, and so do training and evaluation envs (different streams).

Episode ends: SB3 VecEnvs reset a finished env in the same step and put its last observation in
``info["terminal_observation"]``. The observation wrappers replace it with what the agent would have
seen there (noised, thinned or delayed like every other observation), so a replay buffer's last
transition and PPO's bootstrap at a time limit read the same observation stream as the rest of the
episode. Delay buffers are per env and restart with each env's episode.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from gymnasium import spaces
from pydantic import AfterValidator
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

# The wrappers by their ``type:`` name; experiments.config.wrappers turns them into a checked registry
# (envs imports nothing above it, so the registry and its config checks live there).
WRAPPERS: dict[str, type[VecEnvWrapper]] = {}
WHERE = "env.wrappers"  # the config path errors start with


def register(name: str) -> Callable[[type[VecEnvWrapper]], type[VecEnvWrapper]]:
    def decorator(cls: type[VecEnvWrapper]) -> type[VecEnvWrapper]:
        WRAPPERS[name] = cls
        return cls

    return decorator


def NonNegative() -> AfterValidator:  # noqa: N802  (reads as a type)
    """``[0, inf)``, finite: an infinite noise or seed is no setting."""

    def check(value: float) -> float:
        if not 0 <= value < float("inf"):
            raise ValueError("must be a finite number >= 0")
        return value

    return AfterValidator(check)


# A delay's buffer holds steps x envs x observation; 1e12 steps asked for 182 TiB. A thousand steps is
# over a minute of driving at highway-env's fastest policy frequencies.
MAX_DELAY_STEPS = 1000
MAX_WRAPPER_SEED = 2**63 - 1  # what numpy's SeedSequence mixes


def Bounded(low: int, high: int, why: str = "") -> AfterValidator:  # noqa: N802
    """``[low, high]``; ``why`` says why the upper bound."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be in [{low}, {high}]" + (f" ({why})" if why else ""))
        return value

    return AfterValidator(check)


DelaySteps = Annotated[int, Bounded(0, MAX_DELAY_STEPS, "steps of delay, kept in memory per env")]
WrapperSeed = Annotated[int, Bounded(0, MAX_WRAPPER_SEED)]


def Probability() -> AfterValidator:  # noqa: N802
    """``[0, 1)``: 1 would blank every vehicle for good."""

    def check(value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError("must be in [0, 1)")
        return value

    return AfterValidator(check)


def _env_generators(venv: VecEnv, seed: int, kind: str) -> list[np.random.Generator]:
    """One generator per env: ``kind`` keeps two random wrappers with the same seed from drawing alike."""
    stream = int(getattr(venv, "stream", 0))  # 0 training, 1 evaluation, 2 post-hoc evaluation
    run_seed = int(getattr(venv, "run_seed", 0))  # set by make_vec_env
    children = np.random.SeedSequence([seed, zlib.crc32(kind.encode()), run_seed, stream]).spawn(venv.num_envs)
    return [np.random.default_rng(child) for child in children]


def _kinematics_shape(space: spaces.Space, kind: str) -> tuple[int, int]:
    """``(vehicles, features)`` of a Kinematics observation space, or a ValueError naming the need."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 2 or not np.issubdtype(space.dtype, np.floating):
        raise ValueError(f"{WHERE}: {kind} needs a Kinematics observation, a float Box of shape "
                         f"(vehicles, features) whose row 0 is the ego vehicle; this env observes {space}")
    return space.shape


@register("observation_noise")
class ObservationNoise(VecEnvWrapper):
    """Additive Gaussian sensor noise: every observation entry gets an independent N(0, std²) draw each step.

    ``std`` is in observation units (Kinematics features are normalised, so 0.05 is 5% of a feature's
    range). On a Kinematics observation (a 2-D float Box, ``(vehicles, features)``) with ``keep_presence``,
    column 0 is highway-env's ``presence`` flag (the first default feature, the only layout of EnvPool's
    ports) and stays exact, and rows of absent vehicles (presence 0) stay all zeros: a noisy sensor blurs
    the vehicles it sees, it does not invent any. Set ``keep_presence: false`` for a 2-D observation
    without that column (Lidar, or Kinematics features not led by presence). Other float Box
    observations get noise on every entry.
    """

    def __init__(self, venv: VecEnv, std: Annotated[float, NonNegative()], seed: WrapperSeed = 0,
                 keep_presence: bool = True) -> None:
        space = venv.observation_space
        if not isinstance(space, spaces.Box) or not np.issubdtype(space.dtype, np.floating):
            raise ValueError(f"{WHERE}: observation_noise needs a float Box observation; "
                             f"this env observes {space}")
        super().__init__(venv)
        self.std = float(std)
        self.keep_presence = bool(keep_presence) and len(space.shape) == 2
        self._generators = _env_generators(venv, int(seed), "observation_noise")

    def _noised(self, observation: np.ndarray, env_index: int) -> np.ndarray:
        noise = self._generators[env_index].standard_normal(observation.shape, dtype=np.float32) * self.std
        if self.keep_presence:
            present = observation[:, :1] != 0  # (vehicles, 1): absent rows stay zero
            noise[:, 0] = 0.0
            noise *= present
        return (observation + noise).astype(observation.dtype, copy=False)

    def reset(self) -> VecEnvObs:
        observations = self.venv.reset()
        return np.stack([self._noised(obs, i) for i, obs in enumerate(observations)])

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        noised = np.stack([self._noised(obs, i) for i, obs in enumerate(observations)])
        for env_index in np.flatnonzero(dones):
            info = infos[env_index]
            if "terminal_observation" in info:  # the last observation, as noisy as the rest
                info["terminal_observation"] = self._noised(np.asarray(info["terminal_observation"]), int(env_index))
        return noised, rewards, dones, infos


@register("sensor_dropout")
class SensorDropout(VecEnvWrapper):
    """Lost detections: each step, every vehicle row but the ego row (row 0) of a Kinematics observation
    is independently blanked (all zeros, highway-env's encoding of "no vehicle") with ``probability``.

    Blanked rows stay where they were (a gap, not compacted), so with highway-env's distance-sorted rows
    a missed close vehicle can leave a zero row before farther ones. Needs a Kinematics observation
    (2-D float Box, ``(vehicles, features)``); others are a ValueError at construction.
    """

    def __init__(self, venv: VecEnv, probability: Annotated[float, Probability()], seed: WrapperSeed = 0) -> None:
        self.vehicles, _ = _kinematics_shape(venv.observation_space, "sensor_dropout")
        super().__init__(venv)
        self.probability = float(probability)
        self._generators = _env_generators(venv, int(seed), "sensor_dropout")

    def _thinned(self, observation: np.ndarray, env_index: int) -> np.ndarray:
        lost = self._generators[env_index].random(self.vehicles - 1) < self.probability
        thinned = np.array(observation, copy=True)
        thinned[1:][lost] = 0
        return thinned

    def reset(self) -> VecEnvObs:
        observations = self.venv.reset()
        return np.stack([self._thinned(obs, i) for i, obs in enumerate(observations)])

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        thinned = np.stack([self._thinned(obs, i) for i, obs in enumerate(observations)])
        for env_index in np.flatnonzero(dones):
            info = infos[env_index]
            if "terminal_observation" in info:  # the last observation, thinned like the rest
                info["terminal_observation"] = self._thinned(np.asarray(info["terminal_observation"]), int(env_index))
        return thinned, rewards, dones, infos


_BOX = ""  # the one key of a Box observation in the delay's per-key history


@register("observation_delay")
class ObservationDelay(VecEnvWrapper):
    """Late sensing: at step t of an episode the agent sees the observation of step max(0, t - ``steps``).

    The reset observation repeats for the first ``steps`` steps of every episode, per env. At an
    episode end ``terminal_observation`` becomes the delayed view of the last step (the observation
    of step T - ``steps``), which is what the agent would have seen. Box and Dict observations.
    """

    def __init__(self, venv: VecEnv, steps: DelaySteps) -> None:
        space = venv.observation_space
        if not isinstance(space, spaces.Box | spaces.Dict):
            raise ValueError(f"{WHERE}: observation_delay needs a Box or Dict observation; "
                             f"this env observes {space}")
        super().__init__(venv)
        self.steps = int(steps)
        subspaces = dict(space.spaces) if isinstance(space, spaces.Dict) else {_BOX: space}
        # history[key][env, j]: the observation j steps after the oldest one kept; the last is the newest.
        self._history = {key: np.zeros((self.num_envs, self.steps + 1, *(sub.shape or ())), dtype=sub.dtype)

                         for key, sub in subspaces.items()}

    def _parts(self, observation: Any) -> dict[str, np.ndarray]:
        return observation if isinstance(observation, dict) else {_BOX: observation}

    def _whole(self, parts: dict[str, np.ndarray]) -> VecEnvObs:
        return parts[_BOX] if _BOX in parts else parts

    def _oldest(self) -> VecEnvObs:
        return self._whole({key: history[:, 0].copy() for key, history in self._history.items()})

    def reset(self) -> VecEnvObs:
        for key, observation in self._parts(self.venv.reset()).items():
            self._history[key][:] = np.asarray(observation)[:, None]
        return self._oldest()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        done_envs = np.flatnonzero(dones)
        for env_index in done_envs:
            info = infos[env_index]
            if "terminal_observation" in info:
                # Were the last observation pushed, the oldest one kept would be the second oldest now.
                terminal = self._parts(info["terminal_observation"])
                info["terminal_observation"] = self._whole(
                    {key: history[env_index, 1].copy() if self.steps else np.array(terminal[key], copy=True)
                     for key, history in self._history.items()})
        for key, observation in self._parts(observations).items():
            history = self._history[key]
            history[:, :-1] = history[:, 1:]
            history[:, -1] = observation
            history[done_envs] = np.asarray(observation)[done_envs, None]  # a new episode starts afresh
        return self._oldest(), rewards, dones, infos


@register("action_delay")
class ActionDelay(VecEnvWrapper):
    """Late actuation: the action applied at step t of an episode is the one chosen at step t - ``steps``.

    For the first ``steps`` steps of every episode (per env) the env gets a default action:
    ``default_action`` on a Discrete action space (1 is IDLE in highway-env's DiscreteMetaAction),
    zeros on other spaces (a continuous action of zeros: no acceleration, no steering). Actions chosen
    in an episode's last ``steps`` steps are dropped with it. Observations, rewards and infos pass
    unchanged.
    """

    def __init__(self, venv: VecEnv, steps: DelaySteps, default_action: int = 1) -> None:
        space = venv.action_space
        if isinstance(space, spaces.Discrete) and not space.start <= default_action < space.start + space.n:
            raise ValueError(f"{WHERE}: action_delay default_action {default_action} is not an "
                             f"action of {space}")
        if space.shape is None:
            raise ValueError(f"{WHERE}: action_delay needs a fixed-shape action space; "
                             f"this env acts in {space}")
        super().__init__(venv)
        self.steps = int(steps)
        self.default_action = np.full(space.shape, default_action if isinstance(space, spaces.Discrete) else 0,
                                      dtype=space.dtype)
        # pending[env, j]: the action to apply j steps from now.
        self._pending = np.empty((self.num_envs, self.steps, *space.shape), dtype=space.dtype)
        self._pending[:] = self.default_action

    def reset(self) -> VecEnvObs:
        self._pending[:] = self.default_action
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        if not self.steps:
            self.venv.step_async(actions)
            return
        chosen = np.asarray(actions).reshape(self._pending[:, -1].shape)
        applied = self._pending[:, 0].copy()
        self._pending[:, :-1] = self._pending[:, 1:]
        self._pending[:, -1] = chosen
        self.venv.step_async(applied)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        self._pending[np.asarray(dones, dtype=bool)] = self.default_action  # the next episode starts afresh
        return observations, rewards, dones, infos


@register("previous_reward")
class PreviousReward(VecEnvWrapper):
    """The reward of the previous step as one more input: the observation is flattened and r(t-1)
    appended (0 at an episode's first step), as Miconi et al. 2019 feed it to a plastic network; a
    policy reads it from the last feature (``agents.recurrent_policies``: the dopamine third factor's
    TD error). ``terminal_observation`` gets the episode's last reward. Float Box observations.
    """

    def __init__(self, venv: VecEnv) -> None:
        space = venv.observation_space
        if not isinstance(space, spaces.Box) or not np.issubdtype(space.dtype, np.floating):
            raise ValueError(f"{WHERE}: previous_reward needs a float Box observation; this env observes {space}")
        size = int(np.prod(space.shape))
        low = np.append(np.broadcast_to(space.low, space.shape).reshape(-1), -np.inf).astype(np.float32)
        high = np.append(np.broadcast_to(space.high, space.shape).reshape(-1), np.inf).astype(np.float32)
        super().__init__(venv, observation_space=spaces.Box(low, high, (size + 1,), np.float32))

    def _with(self, observations: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        flat = np.asarray(observations, dtype=np.float32).reshape(len(rewards), -1)
        return np.concatenate([flat, np.asarray(rewards, dtype=np.float32)[:, None]], axis=1)

    def reset(self) -> VecEnvObs:
        return self._with(self.venv.reset(), np.zeros(self.num_envs))  # type: ignore[arg-type]  # a Box

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        for env_index in np.flatnonzero(dones):
            if "terminal_observation" in infos[env_index]:
                terminal = infos[env_index]["terminal_observation"][None]
                infos[env_index]["terminal_observation"] = self._with(terminal, rewards[env_index:env_index + 1])[0]
        return self._with(observations, np.where(dones, 0.0, rewards)), rewards, dones, infos  # type: ignore[arg-type]
