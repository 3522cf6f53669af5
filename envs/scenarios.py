"""The driving scenarios, read from highway-env's registry, their native ports, and which ports
are verified faithful.

highway-env (the Python reference) defines every scenario: ``scenarios()`` lists each single-agent
id it registers (multi-agent ones are left out: the platform's agents control one vehicle), with
the EnvPool port of the same id where EnvPool ships one. A port is *verified* when a fidelity run
on fixed policies matched highway-env's statistics (``neurodrive fidelity``, ``docs/fidelity.md``).
``ENVPOOL_VERIFIED`` is the one place in code that list lives; ``backend="auto"`` reads nothing else.
An id that highway-env has superseded (``merge-v0`` beside ``merge-v1``) stays usable; the
command a user starts says so in one line (``note_superseded``) instead of gymnasium's warning per env.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["BACKEND_CHOICES", "BackendConfigError", "ENVPOOL_VERIFIED", "Scenario", "get_scenario",
           "scenarios"]

logger = logging.getLogger("neurodrive.envs")


@dataclass(frozen=True)
class Scenario:
    """One single-agent highway-env scenario and its native port, if any."""

    env_id: str
    description: str
    envpool_id: str | None
    success_key: str | None = None  # dotted path in the step info that marks arrival / success
    newer: str | None = None  # the latest version of the same scenario, where this one is superseded

    def success(self, info: dict[str, Any]) -> bool | None:
        """Arrival/success from a final step's info; ``None`` where this backend does not report it."""
        if self.success_key is None:
            return None
        value: Any = info
        for key in self.success_key.split("."):
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return bool(value)


# Short descriptions of the scenarios most used here; others show their class's docstring.
_DESCRIPTIONS: dict[str, str] = {
    "highway-v0": "4-lane highway, 50 vehicles, 40 s",
    "highway-fast-v0": "3-lane highway, 20 vehicles, 30 s, 5 Hz",
    "merge-v0": "on-ramp merge",
    "roundabout-v0": "roundabout entry and exit",
    "intersection-v0": "unsignalised crossing, longitudinal control",
    "intersection-v1": "unsignalised crossing, continuous steering and acceleration",
    "racetrack-v0": "lateral control on a closed track",
    "parking-v0": "goal-conditioned parking",
    "exit-v0": "reach the highway exit",
    "two-way-v0": "overtake on a two-way road",
    "u-turn-v0": "U-turn with traffic",
    "lane-keeping-v0": "continuous lateral control",
}
# Where a scenario family reports arrival or success in its step info.
_SUCCESS_KEYS: dict[str, str] = {"intersection": "rewards.arrived_reward", "parking": "is_success",
                                 "exit": "is_success"}
_VERSIONED_ID = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


def _env_class(entry_point: Any) -> type[Any]:

    if callable(entry_point):
        return entry_point
    module_name, class_name = str(entry_point).split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _envpool_ids() -> frozenset[str]:
    if not envpool_available():
        return frozenset()
    import envpool

    return frozenset(envpool.list_all_envs())


def _describe(env_id: str, env_cls: type, name: str) -> str:
    if env_id in _DESCRIPTIONS:
        return _DESCRIPTIONS[env_id]
    if f"{name}-v0" in _DESCRIPTIONS:
        return f"{_DESCRIPTIONS[name + '-v0']} (a later version of {name}-v0)"
    doc = (env_cls.__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".:") if doc else env_cls.__name__


@cache
def scenarios() -> dict[str, Scenario]:
    """Every single-agent scenario highway-env registers, by id (no env is built)."""
    import gymnasium as gym
    import highway_env

    gym.register_envs(highway_env)
    specs = {env_id: spec for env_id, spec in gym.registry.items()
             if str(getattr(spec.entry_point, "__module__", spec.entry_point)).startswith("highway_env")}
    latest: dict[str, tuple[int, str]] = {}
    for env_id in specs:
        match = _VERSIONED_ID.match(env_id)
        if match and int(match["version"]) >= latest.get(match["name"], (-1, ""))[0]:
            latest[match["name"]] = (int(match["version"]), env_id)
    ports = _envpool_ids()
    found: dict[str, Scenario] = {}
    for env_id, spec in sorted(specs.items()):
        env_cls = _env_class(spec.entry_point)
        config = env_cls.default_config()
        if "MultiAgent" in str(config.get("observation", {}).get("type", "")) or \
                "MultiAgent" in str(config.get("action", {}).get("type", "")):
            continue
        match = _VERSIONED_ID.match(env_id)
        name = match["name"] if match else env_id
        newest = latest.get(name, (0, env_id))[1]
        found[env_id] = Scenario(
            env_id,
            _describe(env_id, env_cls, name),
            env_id if env_id in ports else None,
            success_key=next((key for family, key in _SUCCESS_KEYS.items() if name.startswith(family)), None),
            newer=None if newest == env_id else newest,
        )
    return found


def __getattr__(name: str) -> Any:
    # ``SCENARIOS`` is read from highway-env's registry on first use, so importing this module stays light.
    if name == "SCENARIOS":
        return scenarios()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Native ports whose fixed-policy statistics match highway-env: the verdicts of `neurodrive fidelity`
# in docs/fidelity.md (a test holds the two equal). highway-v0's always-FASTER episodes run ~15%
# longer on the port; roundabout, intersection and most others replay one traffic layout.
ENVPOOL_VERIFIED: frozenset[str] = frozenset({"highway-fast-v0", "merge-v0"})

# highway-env config keys that only change rendering; both backends accept and ignore them here.
_RENDER_KEYS = frozenset(
    {"screen_width", "screen_height", "scaling", "centering_position", "show_trajectories",
     "render_agent", "offscreen_rendering", "real_time_rendering", "manual_control"}
)


# The values of ``env.backend``: a native port, the Python reference, or the verified one of them.
BACKEND_CHOICES: tuple[str, ...] = ("auto", "envpool", "highway-env")


def envpool_available() -> bool:
    try:
        import envpool  # noqa: F401
    except ImportError:
        return False
    return True


class BackendConfigError(ValueError):
    """A backend cannot honour a requested scenario config key."""


def get_scenario(env_id: str) -> Scenario:
    """Look up a scenario, with an error that lists the known ids.

    ``package.module:my-env-v0`` is a user's own scenario: the module is imported (it registers the
    id with gymnasium) and the id must name a highway-env ``AbstractEnv`` subclass.
    """
    known = scenarios()
    if env_id in known:
        return known[env_id]
    if ":" in env_id:
        return _user_scenario(env_id)
    raise ValueError(
        f"env.id: unknown scenario {env_id!r}; allowed: {', '.join(known)}, "
        "or package.module:env-id for your own highway-env scenario"
    )


@cache
def _user_scenario(env_id: str) -> Scenario:
    import gymnasium as gym
    from highway_env.envs.common.abstract import AbstractEnv

    module_name, _, gym_id = env_id.partition(":")
    try:
        importlib.import_module(module_name)
        spec = gym.spec(gym_id)
    except Exception as error:  # an import error or an unregistered id, reported as the field's error
        raise ValueError(f"env.id: cannot load {env_id!r}: {type(error).__name__}: {error}") from None
    env_cls = _env_class(spec.entry_point)
    if not (isinstance(env_cls, type) and issubclass(env_cls, AbstractEnv)):
        raise ValueError(f"env.id: {gym_id!r} is not a highway-env scenario (its class does not subclass "
                         "highway_env.envs.common.abstract.AbstractEnv)")
    doc = (env_cls.__doc__ or "").strip().splitlines()
    return Scenario(env_id, doc[0].rstrip(".:") if doc else env_cls.__name__, None)


@cache
def note_superseded(env_id: str) -> None:
    """Say once per process that ``env_id`` has a newer version (gymnasium's own warning is muted).

    Called by the command a user starts (``train``, ``compare``), not per env: a comparison's worker
    processes and ``--report-only`` would repeat it."""
    newer = get_scenario(env_id).newer
    if newer is not None:
        logger.warning("%s is an older version of a highway-env scenario; the latest is %s "
                       "(both work; results are not comparable across versions)", env_id, newer)


@cache
def highway_env_default_config(env_id: str) -> dict[str, Any]:
    """The config highway-env uses for ``env_id`` when none is given (no env is built)."""
    import gymnasium as gym
    import highway_env

    gym.register_envs(highway_env)
    if ":" in env_id:  # a user's scenario: get_scenario imported its module
        get_scenario(env_id)
        env_id = env_id.partition(":")[2]
    return _env_class(gym.spec(env_id).entry_point).default_config()


@cache
def _envpool_spec_config(envpool_id: str) -> dict[str, Any]:
    import envpool

    return dict(envpool.make_spec(envpool_id).config._asdict())


def envpool_kwargs(env_id: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """Translate a highway-env ``config`` dict into EnvPool ``make`` keyword arguments.

    Raises ``BackendConfigError`` naming the first key the native port cannot honour.
    """
    scenario = get_scenario(env_id)
    if scenario.envpool_id is None:
        raise BackendConfigError(f"env.id: {env_id!r} has no EnvPool port")
    spec = _envpool_spec_config(scenario.envpool_id)
    defaults = highway_env_default_config(env_id)
    kwargs: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if key in _RENDER_KEYS:
            continue
        if key in ("observation", "action"):
            kwargs.update(_translate_space_config(key, value, defaults.get(key, {}), spec))
        elif key == "reward_speed_range" and "reward_speed_low" in spec:
            low, high = value
            kwargs["reward_speed_low"], kwargs["reward_speed_high"] = float(low), float(high)
        elif key == "initial_lane_id" and key in spec:
            kwargs[key] = -1 if value is None else int(value)
        elif key in spec and key in defaults:
            kwargs[key] = _envpool_value(env_id, key, value, spec[key])
        else:
            raise BackendConfigError(
                f"env.config.{key}: the EnvPool port of {env_id} cannot honour this key; "
                f"it supports: {', '.join(_supported_keys(spec, defaults))}"
            )
    if "duration" in kwargs or "policy_frequency" in kwargs:
        # highway-env truncates at time >= duration, one policy step lasting 1/policy_frequency s.
        duration = kwargs.get("duration", spec["duration"])
        policy_frequency = kwargs.get("policy_frequency", spec["policy_frequency"])
        kwargs["max_episode_steps"] = int(round(duration * policy_frequency))
    return kwargs


def _envpool_value(env_id: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the port's typed spec takes it: its int fields refuse a float (``duration: 3.5`` was
    a TypeError inside EnvPool); a whole float becomes an int, a fractional one is a key it cannot honour."""
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
        if not value.is_integer():
            raise BackendConfigError(f"env.config.{key}: the EnvPool port of {env_id} takes whole numbers here "
                                     f"(got {value}); use backend: highway-env for fractional values")
        return int(value)
    return value


def _supported_keys(spec: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    keys = {k for k in spec if k in defaults and k not in _RENDER_KEYS}
    if "reward_speed_low" in spec:
        keys.add("reward_speed_range")
    return sorted(keys | {"observation", "action"})


def _translate_space_config(
    key: str, value: dict[str, Any], default: dict[str, Any], spec: dict[str, Any]
) -> dict[str, Any]:
    """Observation/action configs: only the scenario default (plus the Kinematics count)."""
    if not isinstance(value, dict):
        raise BackendConfigError(f"env.config.{key}: expected a mapping, got {value!r}")
    translated: dict[str, Any] = {}
    for sub_key, sub_value in value.items():
        if default.get(sub_key, object()) == sub_value:
            continue
        if key == "observation" and sub_key == "type":
            raise BackendConfigError(
                f"env.config.observation.type: the EnvPool port observes {default.get('type')} only (got "
                f"{sub_value!r}); use backend: highway-env or auto for other observation types")
        if (
            key == "observation"
            and sub_key == "vehicles_count"
            and default.get("type") == "Kinematics"
            and "observation_vehicles_count" in spec
        ):
            translated["observation_vehicles_count"] = int(sub_value)
            continue
        raise BackendConfigError(
            f"env.config.{key}.{sub_key}: the EnvPool port only supports the scenario's default "
            f"{key} ({default}); use backend: highway-env for other {key} settings"
        )
    return translated
