"""The driving scenarios, their native ports, and which ports are verified faithful.

highway-env (the Python reference) defines every scenario. EnvPool ships native C++ ports of
most of them; a port is *verified* when a fidelity run on fixed policies matched highway-env's
statistics (``../shared/reference/backend_fidelity.md``). ``ENVPOOL_VERIFIED`` is the one place
in code that list lives; ``backend="auto"`` reads nothing else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class Scenario:
    """One single-agent highway-env scenario and its native port, if any."""

    env_id: str
    description: str
    envpool_id: str | None
    success_key: str | None = None  # dotted path in the step info that marks arrival / success

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


SCENARIOS: dict[str, Scenario] = {
    s.env_id: s
    for s in (
        Scenario("highway-v0", "4-lane highway, 50 vehicles, 40 s", "highway-v0"),
        Scenario("highway-fast-v0", "3-lane highway, 20 vehicles, 30 s, 5 Hz", "highway-fast-v0"),
        Scenario("merge-v0", "on-ramp merge", "merge-v0"),
        Scenario("roundabout-v0", "roundabout entry and exit", "roundabout-v0"),
        Scenario("intersection-v0", "unsignalised crossing, longitudinal control", "intersection-v0",
                 success_key="rewards.arrived_reward"),
        Scenario("racetrack-v0", "lateral control on a closed track", "racetrack-v0"),
        Scenario("parking-v0", "goal-conditioned parking", "parking-v0", success_key="is_success"),
        Scenario("exit-v0", "reach the highway exit", "exit-v0", success_key="is_success"),
        Scenario("two-way-v0", "overtake on a two-way road", "two-way-v0"),
        Scenario("u-turn-v0", "U-turn with traffic", "u-turn-v0"),
        Scenario("lane-keeping-v0", "continuous lateral control", "lane-keeping-v0"),
    )
}

# Native ports whose fixed-policy statistics match highway-env: the verdicts of `neurodrive fidelity`
# in docs/fidelity.md (a test holds the two equal). highway-v0's always-FASTER episodes run ~15%
# longer on the port; roundabout, intersection and most others replay one traffic layout.
ENVPOOL_VERIFIED: frozenset[str] = frozenset({"highway-fast-v0", "merge-v0"})

# highway-env config keys that only change rendering; both backends accept and ignore them here.
_RENDER_KEYS = frozenset(
    {"screen_width", "screen_height", "scaling", "centering_position", "show_trajectories",
     "render_agent", "offscreen_rendering", "real_time_rendering", "manual_control"}
)


class BackendConfigError(ValueError):
    """A backend cannot honour a requested scenario config key."""


def get_scenario(env_id: str) -> Scenario:
    """Look up a scenario, with an error that lists the known ids."""
    try:
        return SCENARIOS[env_id]
    except KeyError:
        raise ValueError(
            f"env.id: unknown scenario {env_id!r}; allowed: {', '.join(SCENARIOS)}"
        ) from None


@cache
def highway_env_default_config(env_id: str) -> dict[str, Any]:
    """The config highway-env uses for ``env_id`` when none is given (no env is built)."""
    import highway_env  # noqa: F401  (registers the ids)

    entry_point = gym.spec(env_id).entry_point
    if callable(entry_point):
        env_cls = entry_point
    else:
        module_name, class_name = str(entry_point).split(":")
        env_cls = getattr(importlib.import_module(module_name), class_name)
    return env_cls.default_config()


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
            kwargs[key] = value
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
