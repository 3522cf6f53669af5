"""``env.config`` values and env counts checked before any env is built.

highway-env checks none of its config values: a string duration is a TypeError deep inside a step, a
``nan`` density fails mid-training, and a billion vehicles hang a run that ignores SIGTERM. Each key
gets a rule here: the highway-env keys by name (type and sane range, an upper bound where a larger
value would hang or exhaust the machine), any other key (a user's scenario) by its default value's
type. An error is one line naming ``env.config.<key>`` and the allowed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from experiments.config.bounds import Rule, rule_of_default
from experiments.config.errors import ConfigError

MAX_VEHICLES = 1000  # every vehicle is simulated each step: 1e9 hung a run that ignored SIGTERM
MAX_DURATION = 3600.0  # seconds of driving per episode; an evaluation runs whole episodes
MAX_FREQUENCY = 1000  # Hz; simulation steps per policy step grow with it
MAX_LANES = 50
MAX_LENGTH = 100_000.0  # metres of road
MAX_PIXELS = 10_000  # a rendered frame's side
MAX_OBSERVED_CELLS = 1_000_000  # an observation array's entries (vehicles x features, grid cells)


def _count(low: int, high: int, why: str = "") -> Rule:
    return Rule("int", low, high, why=why)


def _number(low: float | None = None, high: float | None = None, low_open: bool = False, why: str = "") -> Rule:
    return Rule("number", low, high, low_open, why=why)


_VEHICLES = _count(0, MAX_VEHICLES, "each is simulated every step")
_REWARD = _number()
_FLAG = Rule("bool")
# highway-env 1.x's keys by name; a key not here is checked by its default value's type.
RULES: dict[str, Rule] = {
    "vehicles_count": _VEHICLES,
    "initial_vehicle_count": _VEHICLES,
    "other_vehicles": _VEHICLES,
    "controlled_vehicles": _count(1, 1, "one agent controls one vehicle here"),
    "lanes_count": _count(1, MAX_LANES),
    "no_lanes": _count(0, MAX_LANES, "0: random"),
    "roundabout_lanes": _count(1, MAX_LANES),
    "initial_lane_id": Rule("int", 0, MAX_LANES - 1, optional=True),
    "duration": _number(0, MAX_DURATION, low_open=True, why="seconds per episode"),
    "simulation_frequency": _count(1, MAX_FREQUENCY),
    "policy_frequency": _count(1, MAX_FREQUENCY, "and at most simulation_frequency"),
    "vehicles_density": _number(0, 100, low_open=True),
    "ego_spacing": _number(0, 100, low_open=True),
    "spawn_probability": _number(0, 1),
    "length": _number(0, MAX_LENGTH, why="metres; 0: random"),
    "before_merge_length": _number(0, MAX_LENGTH, low_open=True),
    "after_merge_length": _number(0, MAX_LENGTH, low_open=True),
    "converge_merge_length": _number(0, MAX_LENGTH, low_open=True),
    "parallel_merge_length": _number(0, MAX_LENGTH, low_open=True),
    "roundabout_radius": _number(0, MAX_LENGTH, low_open=True),
    "speed_limit": _number(0, 1000, low_open=True),
    "steering_range": _number(0, math.pi, low_open=True),
    "state_noise": _number(0),
    "derivative_noise": _number(0),
    "success_goal_reward": _number(0, low_open=True),
    "left_lane_constraint": _number(),
    "screen_width": _count(1, MAX_PIXELS),
    "screen_height": _count(1, MAX_PIXELS),
    "scaling": _number(0, 1000, low_open=True),
    "offscreen_rendering": Rule("bool", optional=True),
    "destination": Rule("str", optional=True),
    "incoming_vehicle_destination": Rule("int", 0, 3, optional=True),
    "other_vehicles_type": Rule("str"),
    "observation": Rule("dict"),
    "action": Rule("dict"),
    **{key: _REWARD for key in (
        "collision_reward", "high_speed_reward", "right_lane_reward", "left_lane_reward", "lane_change_reward",
        "merging_speed_reward", "arrived_reward", "action_reward", "goal_reward", "lane_centering_reward",
        "lane_centering_cost")},
    **{key: _FLAG for key in (
        "normalize_reward", "offroad_terminal", "terminate_off_road", "add_walls", "block_lane", "force_decision",
        "neighbour_vehicles_connected_lanes", "manual_control", "real_time_rendering", "render_agent",
        "show_trajectories")},
}
# Lists of numbers by key: (length or None for the default's length, increasing).
NUMBER_LISTS: dict[str, tuple[int | None, bool]] = {
    "reward_speed_range": (2, True),  # [low, high]: rewards interpolate over it, so low < high
    "centering_position": (2, False),
    "reward_weights": (None, False),
}
# highway-env's observation and action types (its factories' names), less the multi-agent ones.
SPACE_TYPES: dict[str, tuple[str, ...]] = {
    "observation": ("Kinematics", "OccupancyGrid", "TimeToCollision", "KinematicsGoal", "GrayscaleObservation",
                    "AttributesObservation", "TupleObservation", "LidarObservation", "ExitObservation"),
    "action": ("DiscreteMetaAction", "DiscreteAction", "ContinuousAction"),
}
# Counts inside ``observation`` / ``action``: an array of that many rows is allocated.
_SPACE_COUNTS = {"vehicles_count": _count(1, MAX_VEHICLES, "rows of the observation array")}


def rule_for(key: str, default: Any) -> Rule:
    """The rule of ``key``: by name, else by the default value's type."""
    return RULES.get(key) or rule_of_default(default)


def _fail(key: str, allowed: str, value: Any) -> ConfigError:
    return ConfigError(f"env.config.{key}: must be {allowed} (got {value!r})")


def check_env_config_values(env_id: str, config: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Fail on the first ``env.config`` value of the wrong type or out of range (keys are known)."""
    for key, value in config.items():
        rule = rule_for(key, defaults.get(key))
        if not rule.accepts(value):
            raise _fail(key, rule.allowed(), value)
        if key in NUMBER_LISTS:
            _check_number_list(key, value, defaults.get(key))
        if key in ("observation", "action"):
            _check_space(key, value)
        if key == "other_vehicles_type":
            _check_vehicle_class(value)
    merged = {**defaults, **config}
    simulation, policy = merged.get("simulation_frequency"), merged.get("policy_frequency")
    if isinstance(simulation, int) and isinstance(policy, int) and policy > simulation:
        if "policy_frequency" in config:
            allowed, got = f"an int in [1, {simulation}] (at most simulation_frequency)", policy
            key = "policy_frequency"
        else:
            allowed, got = f"an int in [{policy}, {MAX_FREQUENCY}] (at least policy_frequency)", simulation
            key = "simulation_frequency"
        raise ConfigError(f"env.config.{key}: must be {allowed}: a decision lasts at least one simulation step "
                          f"on {env_id} (got {got})")
    lanes, lane = merged.get("lanes_count"), merged.get("initial_lane_id")
    if "initial_lane_id" in config and isinstance(lanes, int) and isinstance(lane, int) and lane >= lanes:
        raise ConfigError(f"env.config.initial_lane_id: must be null or an int in [0, {lanes - 1}] "
                          f"(lanes_count is {lanes}; got {lane})")


def _check_number_list(key: str, value: list[Any], default: Any) -> None:
    length, increasing = NUMBER_LISTS[key]
    length = length if length is not None else len(default) if isinstance(default, list | tuple) else None
    shape = f"a list of {length} finite numbers" if length is not None else "a list of finite numbers"
    shape += ", increasing" if increasing else ""
    numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) != len(value) or (length is not None and len(value) != length) or \
            (increasing and any(a >= b for a, b in zip(value, value[1:], strict=False))):
        raise _fail(key, shape, value)


def _check_space(key: str, value: dict[str, Any], path: str | None = None) -> None:
    """``observation`` / ``action``: a ``type`` name and bounded counts (highway-env checks the rest when
    ``resolve_backend`` builds one env); a ``TupleObservation``'s parts each the same way.

    :param path: where ``value`` sits under ``env.config`` (a tuple's part), default ``key``."""
    path = path or key
    kind, known = value.get("type"), SPACE_TYPES[key]
    if kind not in known:  # highway-env replaces the whole mapping, so its type is required
        raise ConfigError(f"env.config.{path}.type: " + ("required" if "type" not in value else f"got {kind!r}") +
                          f"; allowed: {', '.join(known)}")
    for name, item in value.items():
        rule = _SPACE_COUNTS.get(name)
        if rule is not None and not rule.accepts(item):
            raise _fail(f"{path}.{name}", rule.allowed(), item)
        if isinstance(item, float) and not math.isfinite(item):
            raise _fail(f"{path}.{name}", "a finite number", item)
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_OBSERVED_CELLS:
            raise _fail(f"{path}.{name}", f"at most {MAX_OBSERVED_CELLS:,} in size", item)
    _check_grid(path, value)
    if kind == "GrayscaleObservation":
        _check_image(path, value)
    if kind == "TupleObservation":
        parts = value.get("observation_configs")
        if not isinstance(parts, list) or not parts or not all(isinstance(part, dict) for part in parts):
            raise _fail(f"{path}.observation_configs", "a non-empty list of observation mappings, e.g. "
                        "[{type: Kinematics}, {type: GrayscaleObservation, ...}]", parts)
        for index, part in enumerate(parts):
            if part.get("type") == "TupleObservation":
                raise _fail(f"{path}.observation_configs[{index}].type", "a single observation type (tuples do "
                            "not nest)", part.get("type"))
            _check_space(key, part, f"{path}.observation_configs[{index}]")


def _check_image(path: str, value: dict[str, Any]) -> None:
    """A grayscale image's ``observation_shape`` (width, height) and ``stack_size``: positive whole
    numbers, the stack allocatable."""
    shape, stack = value.get("observation_shape", [84, 84]), value.get("stack_size", 4)
    if not (isinstance(shape, list | tuple) and len(shape) == 2 and
            all(isinstance(side, int) and not isinstance(side, bool) and side >= 1 for side in shape)):
        raise _fail(f"{path}.observation_shape", "[width, height], two whole numbers >= 1", shape)
    if not (isinstance(stack, int) and not isinstance(stack, bool) and stack >= 1):
        raise _fail(f"{path}.stack_size", "a whole number >= 1", stack)
    if shape[0] * shape[1] * stack > MAX_OBSERVED_CELLS:
        raise _fail(f"{path}.observation_shape", f"at most {MAX_OBSERVED_CELLS:,} pixels with the stack "
                    f"(width x height x stack_size; stack_size is {stack})", shape)


def _check_grid(key: str, value: dict[str, Any]) -> None:
    """An occupancy grid's cells (``grid_size`` / ``grid_step`` per axis) stay allocatable."""
    size, step = value.get("grid_size"), value.get("grid_step")
    if size is None and step is None:
        return
    try:
        cells = 1.0
        for (low, high), width in zip(size or [[-27.5, 27.5], [-27.5, 27.5]], step or [5, 5], strict=True):
            if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(width) and width > 0 and low < high):
                raise ValueError
            cells *= (high - low) / width
    except (TypeError, ValueError):
        raise ConfigError(f"env.config.{key}: grid_size must be [[low, high], [low, high]] with low < high and "
                          f"grid_step [width, width] with widths > 0, all finite (got {size!r}, {step!r})") from None
    if cells > MAX_OBSERVED_CELLS:
        raise ConfigError(f"env.config.{key}.grid_step: the grid would have {cells:.3g} cells; at most "
                          f"{MAX_OBSERVED_CELLS:,} (make grid_step larger or grid_size smaller)")


def _check_vehicle_class(path: str) -> None:
    """highway-env imports ``other_vehicles_type`` by dotted path: it must name a Vehicle class."""
    import importlib

    from highway_env.vehicle.kinematics import Vehicle

    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name) if module_name else None
    except (ImportError, AttributeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, Vehicle)):
        raise ConfigError(f"env.config.other_vehicles_type: must be the dotted path of a highway-env Vehicle "
                          f"class, e.g. highway_env.vehicle.behavior.IDMVehicle (got {path!r})")
