"""Other drivers' behaviour drawn per episode: ``env.drivers``, a mix of highway-env vehicle classes.

An experiment names a mix of behaviours and their probabilities; at every episode start one is drawn
and every other vehicle of that episode drives by it (highway-env's ``other_vehicles_type``)::

    env:
      drivers: {idm: 0.5, aggressive: 0.25, defensive: 0.25}

A policy that adapts within an episode can read who it shares the road with; one that cannot
(no memory) must drive for the mix. A held-out mix (``{aggressive: 1}``) is a comparison's condition.

Names: ``idm`` (highway-env's default ``IDMVehicle``, Treiber et al. 2000, with MOBIL lane changes),
``linear`` (``LinearVehicle``: the IDM/MOBIL controls linear in their features, Leurent et al. 2018),
``aggressive`` and ``defensive`` (``LinearVehicle`` with highway-env's aggressive and defensive
parameters, kept through the scenario's ``randomize_behavior``: ``envs.driver_styles``); or
``package.module:Class``, a user's subclass of ``IDMVehicle``.

The draw comes from the env's own generator, seeded with the env's reset seed (``SeedSequence([seed,
DRIVERS_STREAM])``): a run is reproducible by its seed, each env of a VecEnv draws its own stream
(``envs.seeding.env_seeds``), and highway-env's traffic generator is left as it was. The behaviour of the
running episode is ``info["driver"]`` at every step (``envs.evaluation`` breaks its metrics down by it).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping
from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["DRIVERS", "DriverMix", "check_drivers", "check_scenario", "driver_class_path", "reads_other_vehicles_type"]

WHERE = "env.drivers"  # the config path errors start with
# The behaviours by name: highway-env's class paths as its config's other_vehicles_type takes them.
DRIVERS: dict[str, str] = {
    "idm": "highway_env.vehicle.behavior.IDMVehicle",
    "linear": "highway_env.vehicle.behavior.LinearVehicle",
    # highway-env's own two drive alike once a scenario randomises them (envs.driver_styles says why)
    "aggressive": "envs.driver_styles.AggressiveDriver",
    "defensive": "envs.driver_styles.DefensiveDriver",
}
DRIVERS_STREAM = 0xD21  # the draw's own seed stream beside the reset seed (any fixed word)
SUM_TOLERANCE = 1e-6  # probabilities written as decimals (1/3 three times) still sum to 1


def _allowed() -> str:
    return f"{', '.join(DRIVERS)} or package.module:Class (an IDMVehicle subclass)"


def _field(name: str) -> str:
    """The error's path for a behaviour: ``env.drivers.aggressive``; a dotted path after a colon, since its
    own colon is no path separator (``env.drivers: mypkg.cars:Calm``)."""
    return f"{WHERE}: {name}" if ":" in name else f"{WHERE}.{name}"


def driver_class_path(name: str) -> str:
    """The ``other_vehicles_type`` of a behaviour name or ``package.module:Class``; a ``ValueError``
    names ``env.drivers`` and the allowed names."""
    if name in DRIVERS:
        return DRIVERS[name]
    if ":" not in name:
        raise ValueError(f"{WHERE}.{name}: unknown behaviour; allowed: {_allowed()}")
    from highway_env.vehicle.behavior import IDMVehicle

    module_name, _, class_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as error:  # an import error or a missing name, reported as the field's error
        raise ValueError(f"{_field(name)}: cannot load it: {type(error).__name__}: {error}") from None
    # highway-env's scenarios build their traffic with IDMVehicle's constructors and randomize_behavior
    if not (isinstance(cls, type) and issubclass(cls, IDMVehicle)):
        raise ValueError(f"{_field(name)}: not a subclass of highway_env.vehicle.behavior.IDMVehicle")
    return f"{cls.__module__}.{cls.__qualname__}"  # highway-env's utils.class_from_path form


def check_drivers(drivers: Mapping[str, float]) -> dict[str, float]:
    """The mix, checked: known names, finite probabilities >= 0 summing to 1. One-line ``ValueError``."""
    if not drivers:
        raise ValueError(f"{WHERE}: an empty mix; give behaviour: probability pairs, names: {_allowed()}")
    for name, probability in drivers.items():
        driver_class_path(name)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) \
                or not 0 <= probability < math.inf:
            raise ValueError(f"{_field(name)}: a probability must be a finite number >= 0 (got {probability!r})")
    total = sum(drivers.values())
    if abs(total - 1) > SUM_TOLERANCE:
        raise ValueError(f"{WHERE}: probabilities must sum to 1 (got {total:g} over {', '.join(drivers)})")
    return {name: float(probability) for name, probability in drivers.items()}


@cache
def reads_other_vehicles_type(env_cls: type) -> bool:
    """Whether a highway-env scenario class builds its traffic from ``config["other_vehicles_type"]``
    (its own code or a parent's below ``AbstractEnv``, which only declares the default). racetrack builds
    ``IDMVehicle`` by name, parking and lane-keeping have no other vehicles."""
    from highway_env.envs.common.abstract import AbstractEnv

    for cls in env_cls.__mro__:
        if cls is AbstractEnv or not issubclass(cls, AbstractEnv):
            continue
        try:
            if "other_vehicles_type" in inspect.getsource(cls):
                return True
        except (OSError, TypeError):  # no source (a class built at run time): assume it reads the config
            return True
    return False


def check_scenario(env_id: str) -> None:
    """A ``ValueError`` naming ``env.drivers`` when ``env_id`` ignores ``other_vehicles_type`` (a mix there
    would change nothing and say nothing)."""
    import highway_env
    from gymnasium.envs.registration import load_env_creator

    from envs.scenarios import get_scenario

    get_scenario(env_id)  # a user's scenario: imports its module, so gymnasium knows the id
    gym.register_envs(highway_env)
    entry_point = gym.spec(env_id.partition(":")[2] or env_id).entry_point
    env_cls = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    if isinstance(env_cls, type) and not reads_other_vehicles_type(env_cls):
        raise ValueError(f"{WHERE}: {env_id} builds its other vehicles without highway-env's other_vehicles_type "
                         "(or has none), so a mix cannot change them; leave env.drivers out there")


class DriverMix(gym.Wrapper):
    """Draw the other vehicles' behaviour at each reset and set it as highway-env's ``other_vehicles_type``
    before the scenario builds its traffic; the drawn name is ``info["driver"]`` at reset and every step."""

    def __init__(self, env: gym.Env, drivers: Mapping[str, float]) -> None:
        super().__init__(env)
        mix = check_drivers(drivers)
        self.names = list(mix)
        self.paths = [driver_class_path(name) for name in self.names]
        weights = np.array([mix[name] for name in self.names])
        self.probabilities = weights / weights.sum()  # exactly 1 for numpy's choice
        self._rng: np.random.Generator | None = None
        self.driver: str | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None or self._rng is None:  # a reset seed restarts the stream; none continues it
            self._rng = np.random.default_rng(None if seed is None else [seed, DRIVERS_STREAM])
        index = int(self._rng.choice(len(self.names), p=self.probabilities))
        self.driver = self.names[index]
        self.env.unwrapped.config["other_vehicles_type"] = self.paths[index]  # type: ignore[attr-defined]
        observation, info = self.env.reset(seed=seed, options=options)
        return observation, {**info, "driver": self.driver}

    def step(self, action: Any) -> Any:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, {**info, "driver": self.driver}
