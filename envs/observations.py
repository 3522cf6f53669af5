"""highway-env's observation types from a config: YAML values as highway-env takes them, its tuple of
observations as a gymnasium Dict (SB3's multi-input policies read Dicts, not Tuples), and pickling of the
pygame render state an image observation carries (a checkpoint saves the envs).

::

    env:
      config:
        observation:
          type: TupleObservation   # -> Dict {Kinematics: (5, 5) float, GrayscaleObservation: (4, 128, 64) uint8}
          observation_configs:
            - {type: Kinematics}
            - {type: GrayscaleObservation, observation_shape: [128, 64], stack_size: 4,
               weights: [0.2989, 0.5870, 0.1140], scaling: 1.75}
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import cloudpickle
import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["IMAGE_TYPES", "KINEMATICS_TYPES", "NATIVE_TYPES", "OBSERVATION_TYPES", "TupleToDict",
           "dump_with_render_state", "highway_observation_config", "is_image_observation", "observation_entries",
           "observation_type", "tuple_keys", "wrap_observation"]

# The single-agent observation types this project trains on, and what each gives (highway-env's docs).
OBSERVATION_TYPES: dict[str, str] = {
    "Kinematics": "vehicles x features table (float)",
    "OccupancyGrid": "features x grid cells around the ego vehicle (float)",
    "GrayscaleObservation": "stack of grayscale top-view images (uint8 0-255, channel first)",
    "TimeToCollision": "speeds x lanes x horizon time-to-collision grid (float in [0, 1])",
    "LidarObservation": "cells x (distance, relative speed) of a LiDAR sweep (float)",
    "TupleObservation": "several of the above at once; given to the agent as a Dict named by type",
}
IMAGE_TYPES = ("GrayscaleObservation",)
KINEMATICS_TYPES = ("Kinematics",)
NATIVE_TYPES = ("Kinematics",)  # what the EnvPool port observes (envs.scenarios.envpool_kwargs)

# Values highway-env concatenates or compares as tuples; YAML (and a saved config.yaml) give lists.
_TUPLE_KEYS = ("observation_shape",)


def highway_observation_config(observation: Mapping[str, Any]) -> dict[str, Any]:
    """``observation`` as highway-env takes it: ``observation_shape`` a tuple, also inside a
    ``TupleObservation``'s ``observation_configs`` (a list there failed deep inside with a TypeError)."""
    converted = {key: tuple(value) if key in _TUPLE_KEYS and isinstance(value, list) else value
                 for key, value in observation.items()}
    configs = converted.get("observation_configs")
    if isinstance(configs, list):
        converted["observation_configs"] = [highway_observation_config(item) if isinstance(item, Mapping) else item
                                            for item in configs]
    return converted


def observation_type(config: Mapping[str, Any] | None, default: str = "Kinematics") -> str:
    """The observation type an ``env.config`` asks for (``default``: the scenario's when it names none)."""
    observation = (config or {}).get("observation")
    kind = observation.get("type") if isinstance(observation, Mapping) else None
    return kind if isinstance(kind, str) else default


def tuple_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Dict keys of a ``TupleObservation``: each part's type, numbered from the second of a type on
    (``Kinematics``, ``Kinematics_2``) so two parts of one type stay apart."""
    keys: list[str] = []
    for config in configs:
        kind = str(config.get("type", "observation"))
        count = sum(1 for key in keys if key == kind or key.startswith(f"{kind}_"))
        keys.append(kind if count == 0 else f"{kind}_{count + 1}")
    return keys


class TupleToDict(gym.ObservationWrapper):
    """highway-env's ``TupleObservation`` (a gymnasium Tuple) as a Dict keyed by ``keys``, in order; each
    part is passed on unchanged (the same arrays, dtypes and bounds)."""

    def __init__(self, env: gym.Env, keys: Sequence[str]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Tuple) or len(space.spaces) != len(keys):
            raise ValueError(f"env.config.observation: expected a tuple of {len(keys)} observations, got {space}")
        self.keys = list(keys)
        self.observation_space = spaces.Dict(dict(zip(self.keys, space.spaces, strict=True)))

    def observation(self, observation: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.keys, observation, strict=True))


def wrap_observation(env: gym.Env, config: Mapping[str, Any] | None) -> gym.Env:
    """``env`` with its ``TupleObservation`` given as a Dict (any other observation as it is)."""
    observation = (config or {}).get("observation")
    if isinstance(observation, Mapping) and observation.get("type") == "TupleObservation" and \
            isinstance(env.observation_space, spaces.Tuple):
        return TupleToDict(env, tuple_keys(observation.get("observation_configs") or []))
    return env


def is_image_observation(space: spaces.Space) -> bool:
    """An image as SB3's ``CnnPolicy`` takes it: a uint8 Box of rank 3 with values in [0, 255] (SB3's
    ``is_image_space`` without its channel test, which SB3 answers by transposing)."""
    from stable_baselines3.common.preprocessing import is_image_space

    return is_image_space(space, check_channels=False)


def _rebuild_viewer(cls: type, env: Any, config: dict[str, Any]) -> Any:
    """A fresh viewer (its pygame surfaces and clock made anew); the pickled attributes are set after."""
    return cls(env, config=config)


# An EnvViewer's pygame objects: a surface does not pickle, and each frame is redrawn from the road anyway.
_RENDER_ATTRIBUTES = ("screen", "sim_surface", "clock", "agent_surface")


class _RenderStatePickler(cloudpickle.Pickler):
    """cloudpickle, with highway-env's ``EnvViewer`` pickled as its config and plain attributes: it is
    rebuilt on load (a grayscale observation draws every frame afresh from the road state, so nothing the
    agent sees is lost; the observation's frame stack is an array and pickles as it is)."""

    def reducer_override(self, obj: Any) -> Any:
        from highway_env.envs.common.graphics import EnvViewer

        if isinstance(obj, EnvViewer):
            state = {key: value for key, value in vars(obj).items() if key not in _RENDER_ATTRIBUTES}
            return _rebuild_viewer, (type(obj), obj.env, obj.config), state
        return super().reducer_override(obj)


def dump_with_render_state(value: Any, handle: BinaryIO) -> None:
    """``cloudpickle.dump(value, handle)`` that also takes envs with image observations (their pygame
    surfaces are rebuilt on load, by plain ``cloudpickle.load``)."""
    buffer = io.BytesIO()  # pickled whole first: a failure leaves ``handle`` untouched
    _RenderStatePickler(buffer, protocol=cloudpickle.DEFAULT_PROTOCOL).dump(value)
    handle.write(buffer.getvalue())


def observation_entries(space: spaces.Space) -> int:
    """How many numbers one observation holds (a Dict's parts summed)."""
    if isinstance(space, spaces.Dict):
        return sum(observation_entries(part) for part in space.spaces.values())
    return int(np.prod(space.shape)) if space.shape else 1
