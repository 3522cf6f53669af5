"""What each hyperparameter and policy keyword may be: checked by name, type and range before anything is built.

``RULES`` holds SB3's documented ranges by name (``gamma`` in [0, 1], ``tau`` in (0, 1], ``train_freq``
an integer >= 1 or ``[n, step | episode]``, ...); an algorithm's constructor signature says which names
it takes and, for a name the table lacks, the type its annotation or default gives. Together they make
one table per algorithm (``hyperparameter_table``). Structured values are checked inside: the buffer
keywords by the buffer's signature, ``policy_kwargs`` by the policy's (``net_arch`` sizes, ``optimizer_kwargs``
by the optimizer's). Sizes that allocate memory are bounded by what the machine has.

A dotted path is loaded only where a class is wanted, and must name a subclass of the expected base
(``activation_fn``: an ``nn.Module``), so ``activation_fn: os:system`` is refused; importing the module
still runs its code, so a config is code, like a pickle.
"""

from __future__ import annotations

import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError
from sb3_contrib import QRDQN, TQC
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer, RolloutBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from neuro.registry import constructor_signature, is_dotted_path, load_object

__all__ = ["CLASS_KWARGS", "RULES", "Rule", "check_combinations", "check_hyperparameter_values",
           "check_policy_kwargs", "hyperparameter_table", "sb3_hyperparameters", "sb3_policy_kwargs"]

# Bytes a stored transition takes at the least (a one-byte observation twice, an action, reward and
# flags); a buffer or batch past memory / this fails to allocate, or swaps, whatever the env.
MIN_TRANSITION_BYTES = 16
# A weight of a layer costs its value, gradient and two Adam moments in float32.
BYTES_PER_WEIGHT = 16


@dataclass(frozen=True)
class Rule:
    """What one value may be: ``allowed`` is what the error says, ``accepts`` the check."""

    allowed: str
    accepts: Callable[[Any], bool]

    def __or__(self, other: Rule) -> Rule:
        return Rule(f"{self.allowed} or {other.allowed}", lambda value: self.accepts(value) or other.accepts(value))


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): ``.nan`` and ``.inf`` are no setting."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int | None = None, why: str = "") -> Rule:
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]{why}"
    return Rule(allowed, lambda value: is_integer(value) and value >= low and (high is None or value <= high))


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Rule:
    """A finite number in an interval (open at an end when asked)."""
    if low is not None and high is not None:
        allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        allowed = "a finite number"

    def accepts(value: Any) -> bool:
        if not is_number(value):
            return False
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return above and below

    return Rule(allowed, accepts)


def literal(*choices: Any) -> Rule:
    return Rule(" or ".join("null" if choice is None else repr(choice) for choice in choices),
                lambda value: any(value == choice and type(value) is type(choice) for choice in choices))


BOOLEAN = Rule("true or false", lambda value: isinstance(value, bool))
NULL = literal(None)
MAPPING = Rule("a mapping", lambda value: isinstance(value, Mapping) and all(isinstance(key, str) for key in value))
SCHEDULE = Rule("a schedule (a Python callable of the remaining progress)", callable)


def _is_train_freq(value: Any) -> bool:
    if is_integer(value):
        return bool(value >= 1)
    return (isinstance(value, list | tuple) and len(value) == 2 and is_integer(value[0]) and value[0] >= 1
            and value[1] in ("step", "episode"))


def _is_auto_ent_coef(value: Any) -> bool:
    """SAC's learned coefficient: ``auto`` or ``auto_<initial value > 0>``."""
    if not isinstance(value, str) or not value.startswith("auto"):
        return False
    if value == "auto":
        return True
    head, _, initial = value.partition("_")
    try:
        return head == "auto" and math.isfinite(float(initial)) and float(initial) > 0
    except ValueError:
        return False


@cache
def machine_memory() -> int | None:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gib(size: int) -> str:
    return f"{size / 2 ** 30:.1f} GiB"


def transitions() -> Rule:
    """A count of stored transitions (a buffer, a rollout, a batch): >= 1 and within memory."""
    memory = machine_memory()
    if memory is None:
        return integer(1)
    return integer(1, memory // MIN_TRANSITION_BYTES,
                   f" (a transition takes at least {MIN_TRANSITION_BYTES} bytes; this machine has {_gib(memory)})")


def layer_width() -> Rule:
    """A layer's width: >= 1 and a square layer of it fits in memory."""
    memory = machine_memory()
    if memory is None:
        return integer(1)
    return integer(1, math.isqrt(memory // BYTES_PER_WEIGHT),
                   f" (a square layer of it must fit this machine's {_gib(memory)})")


# SB3's documented ranges by name (the same name means the same thing in every SB3 algorithm).
RULES: dict[str, Rule] = {
    "learning_rate": number(0, low_open=True) | SCHEDULE,
    "gamma": number(0, 1),
    "gae_lambda": number(0, 1),
    "tau": number(0, 1, low_open=True),
    "n_steps": transitions(),
    "batch_size": transitions(),
    "buffer_size": transitions(),
    "learning_starts": integer(0),
    "train_freq": Rule("an integer >= 1 or a pair [n >= 1, step | episode]", _is_train_freq),
    "gradient_steps": integer(1) | literal(-1),
    "target_update_interval": integer(1),
    "exploration_fraction": number(0, 1),
    "exploration_initial_eps": number(0, 1),
    "exploration_final_eps": number(0, 1),
    "max_grad_norm": number(0, low_open=True),
    "stats_window_size": integer(1),
    "n_epochs": integer(1),
    "clip_range": number(0, low_open=True) | SCHEDULE,
    "clip_range_vf": NULL | number(0, low_open=True) | SCHEDULE,
    "target_kl": NULL | number(0, low_open=True),
    "ent_coef": number(0),
    "vf_coef": number(0),
    "sde_sample_freq": integer(-1),
    "rms_prop_eps": number(0, low_open=True),
    "normalize_advantage": BOOLEAN,
    "use_sde": BOOLEAN,
    "use_sde_at_warmup": BOOLEAN,
    "use_rms_prop": BOOLEAN,
    "optimize_memory_usage": BOOLEAN,
    "replay_buffer_kwargs": NULL | MAPPING,
    "rollout_buffer_kwargs": NULL | MAPPING,
    "action_noise": NULL | Rule("an ActionNoise object (Python API)", lambda value: isinstance(value, ActionNoise)),
    "target_entropy": literal("auto") | number(),
    "policy_delay": integer(1),
    "target_policy_noise": number(0),
    "target_noise_clip": number(0),
    "top_quantiles_to_drop_per_net": integer(0),
    # policy_kwargs
    "n_critics": integer(1, 64),
    "n_quantiles": integer(1, 10_000),
    "n_channels": integer(1, 10_000),
    "lstm_hidden_size": layer_width(),
    "n_lstm_layers": integer(1, 64),
    "log_std_init": number(),
    "clip_mean": number(0, low_open=True),
    "features_extractor_kwargs": NULL | MAPPING,
    "optimizer_kwargs": NULL | MAPPING,
    "lstm_kwargs": NULL | MAPPING,
    # optimizer_kwargs
    "eps": number(0, low_open=True),
    "weight_decay": number(0),
    "momentum": number(0),
    "alpha": number(0, 1),
    "betas": Rule("a pair of numbers in [0, 1)", lambda value: isinstance(value, list | tuple) and len(value) == 2
                  and all(number(0, 1, high_open=True).accepts(beta) for beta in value)),
}
# An algorithm whose default ent_coef is learned ("auto": SAC, TQC) also takes auto_<initial value>.
AUTO_ENT_COEF = number(0) | Rule("'auto' or 'auto_<initial value > 0>'", _is_auto_ent_coef)
# Classes by dotted path, each where a subclass of one base is wanted.
CLASS_KWARGS: dict[str, tuple[type, str]] = {
    "activation_fn": (torch.nn.Module, "a torch.nn.Module subclass"),
    "features_extractor_class": (BaseFeaturesExtractor, "an SB3 BaseFeaturesExtractor subclass"),
    "optimizer_class": (torch.optim.Optimizer, "a torch.optim.Optimizer subclass"),
    "replay_buffer_class": (ReplayBuffer, "an SB3 ReplayBuffer subclass"),
    "rollout_buffer_class": (RolloutBuffer, "an SB3 RolloutBuffer subclass"),
}
# Keywords the algorithm or policy passes itself (given again they clash, or are overwritten), and
# where a config sets them.
_RUN = "the env and the run"
_SET_BY_SB3: dict[str, dict[str, str]] = {
    "replay_buffer_kwargs": {"buffer_size": "agent.hyperparameters.buffer_size", "observation_space": _RUN,
                             "action_space": _RUN, "device": "training.device", "n_envs": "env.n_envs",
                             "optimize_memory_usage": "agent.hyperparameters.optimize_memory_usage", "env": _RUN},
    "rollout_buffer_kwargs": {"buffer_size": "agent.hyperparameters.n_steps", "observation_space": _RUN,
                              "action_space": _RUN, "device": "training.device",
                              "gae_lambda": "agent.hyperparameters.gae_lambda", "gamma": "agent.hyperparameters.gamma",
                              "n_envs": "env.n_envs"},
    "optimizer_kwargs": {"params": _RUN, "lr": "agent.hyperparameters.learning_rate"},
    "features_extractor_kwargs": {"observation_space": _RUN},
    "policy_kwargs": {"observation_space": _RUN, "action_space": _RUN,
                      "lr_schedule": "agent.hyperparameters.learning_rate", "use_sde": "agent.hyperparameters.use_sde"},
}
# SB3's own n-step buffer (n_steps > 1, no replay_buffer_class) takes these from the hyperparameters.
_N_STEP_SET = {"n_steps": "agent.hyperparameters.n_steps", "gamma": "agent.hyperparameters.gamma"}


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


_PLAIN: dict[Any, Rule] = {bool: BOOLEAN, int: Rule("an integer", is_integer), float: number(),
                           str: Rule("a string", lambda value: isinstance(value, str))}


def signature_rule(parameter: inspect.Parameter) -> Rule | None:
    """The rule an annotation (or, without one, the default's type) gives; None when it says nothing."""
    annotation = parameter.annotation
    if annotation in (Any, inspect.Parameter.empty):
        default = parameter.default
        if isinstance(default, bool):
            return BOOLEAN
        annotation = {int: int, float: float, str: str}.get(type(default))
        if annotation is None:
            return None
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    plain = [member for member in members if member is not type(None)]
    if annotation in _PLAIN or (len(plain) == 1 and plain[0] in _PLAIN and len(members) == 2):
        rule = _PLAIN[annotation if annotation in _PLAIN else plain[0]]
        return rule if annotation in _PLAIN else NULL | rule
    adapter = None
    if not _has_model(annotation):
        try:
            adapter = TypeAdapter(annotation, config=ConfigDict(strict=True, arbitrary_types_allowed=True))
        except Exception:  # an annotation pydantic cannot read (a user's class) says nothing checkable
            return None

    def accepts(value: Any) -> bool:
        if adapter is None:
            return True
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return _finite(value)

    return Rule(f"of type {_type_name(annotation)}", accepts)


def _has_model(annotation: Any) -> bool:
    """A config model inside (``SnnConfig | dict``): its own schema checks it."""
    from pydantic import BaseModel

    members = [annotation, *typing.get_args(annotation)]
    return any(inspect.isclass(member) and issubclass(member, BaseModel) for member in members)


def _type_name(annotation: Any) -> str:
    if inspect.isclass(annotation) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(map(_finite, value))
    if isinstance(value, Mapping):
        return all(map(_finite, value.values()))
    return True


@cache
def hyperparameter_table(cls: type[BaseAlgorithm]) -> dict[str, Rule | None]:
    """Each constructor argument of ``cls`` a config may set, with its rule (None: any value)."""
    table: dict[str, Rule | None] = {}
    for parameter in constructor_signature(cls)[0]:
        rule = RULES.get(parameter.name) or signature_rule(parameter)
        if parameter.name == "ent_coef" and isinstance(parameter.default, str) and parameter.default.startswith("auto"):
            rule = AUTO_ENT_COEF
        if parameter.default is None and rule is not None and not rule.accepts(None):
            rule = NULL | rule  # None is a setting where it is the default (QR-DQN's max_grad_norm: no clipping)
        table[parameter.name] = rule
    return table


def check_value(where: str, value: Any, rule: Rule | None) -> None:
    if rule is not None and not rule.accepts(value):
        raise ValueError(f"{where}: must be {rule.allowed} (got {short(value)})")


def load_class(where: str, value: Any, key: str) -> type:
    """The class a value names (a class, or a dotted path loaded only now), checked against its base."""
    base, what = CLASS_KWARGS[key]
    if isinstance(value, str) and is_dotted_path(value):
        try:
            value = load_object(value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}; must be {what}") from None
    elif not inspect.isclass(value):
        raise ValueError(f"{where}: must be {what}, as a dotted path package.module:Class (got {short(value)})")
    if not (inspect.isclass(value) and issubclass(value, base)):
        raise ValueError(f"{where}: must be {what} (got {short(value)})")
    return value


def check_keywords(where: str, target: type, given: Mapping[str, Any], set_by: Mapping[str, str] | None = None) -> None:
    """Keyword arguments for ``target``'s constructor: names it takes, values of their type and range."""
    set_by = set_by or {}
    parameters, open_ended = constructor_signature(target)
    known = {parameter.name: parameter for parameter in parameters}
    allowed = [name for name in known if name not in set_by]
    for key, value in given.items():
        if key in set_by:
            raise ValueError(f"{where}.{key}: set by the run from {set_by[key]}, not here")
        if key not in known:
            if open_ended:
                continue
            raise ValueError(f"{where}.{key}: {target.__name__} has no such argument; "
                             f"allowed: {', '.join(allowed) or 'none'}")
        if key in CLASS_KWARGS:
            load_class(f"{where}.{key}", value, key)
        else:
            check_value(f"{where}.{key}", value, RULES.get(key) or signature_rule(known[key]))


def check_hyperparameter_values(cls: type[BaseAlgorithm], hyperparameters: Mapping[str, Any]) -> None:
    """Each hyperparameter's value by the algorithm's table (names are checked before: ``check_hyperparameters``),
    the buffer classes and their keywords included."""
    table = hyperparameter_table(cls)
    for name, value in hyperparameters.items():
        where = f"agent.hyperparameters.{name}"
        if name in CLASS_KWARGS:
            if value is not None:
                load_class(where, value, name)
            continue
        check_value(where, value, table.get(name))
    for kind in ("replay", "rollout"):
        kwargs = hyperparameters.get(f"{kind}_buffer_kwargs")
        if not kwargs:
            continue
        set_by = _SET_BY_SB3[f"{kind}_buffer_kwargs"]
        given_class = hyperparameters.get(f"{kind}_buffer_class")
        if given_class is not None:
            buffer = load_class("", given_class, f"{kind}_buffer_class")
        elif kind == "rollout":
            buffer = RolloutBuffer
        elif hyperparameters.get("n_steps", 1) > 1:  # SB3's choice: n-step returns, n_steps and gamma its own
            buffer, set_by = NStepReplayBuffer, {**set_by, **_N_STEP_SET}
        else:
            buffer = ReplayBuffer
        check_keywords(f"agent.hyperparameters.{kind}_buffer_kwargs", buffer, kwargs, set_by)


def check_policy_kwargs(policy_cls: type, policy_kwargs: Mapping[str, Any], on_policy: bool) -> None:
    """``agent.policy_kwargs`` for ``policy_cls``: names it takes, classes of the right base, ``net_arch``
    of positive widths (a list, or a mapping of the actor's and critic's lists), keyword mappings by
    their target's signature."""
    where = "agent.policy_kwargs"
    check_keywords(where, policy_cls, {key: value for key, value in policy_kwargs.items()
                                       if key not in ("net_arch", "optimizer_kwargs", "features_extractor_kwargs")},
                   _SET_BY_SB3["policy_kwargs"])
    if policy_kwargs.get("net_arch") is not None:  # None: the policy's default layers
        check_net_arch(f"{where}.net_arch", policy_kwargs["net_arch"], _takes_mapping(policy_cls),
                       ("pi", "vf") if on_policy else ("pi", "qf"))
    parameters = {parameter.name: parameter.default for parameter in constructor_signature(policy_cls)[0]}
    for key, class_key in (("optimizer_kwargs", "optimizer_class"), ("features_extractor_kwargs",
                                                                      "features_extractor_class")):
        given = policy_kwargs.get(key)
        if key not in policy_kwargs or given is None:
            continue
        check_value(f"{where}.{key}", given, MAPPING)
        # The run picks the extractor of a Dict observation itself: keywords are checked against a named one.
        target = policy_kwargs.get(class_key, parameters.get(class_key) if key == "optimizer_kwargs" else None)
        if inspect.isclass(target) or isinstance(target, str):
            target = load_class(f"{where}.{class_key}", target, class_key)
            check_keywords(f"{where}.{key}", target, given, _SET_BY_SB3[key])


def _takes_mapping(policy_cls: type) -> bool:
    """Whether the policy's ``net_arch`` may be a mapping (actor-critic policies) or only a list (DQN's)."""
    for parameter in constructor_signature(policy_cls)[0]:
        if parameter.name == "net_arch":
            return "dict" in str(parameter.annotation) or parameter.annotation is Any
    return False


def check_net_arch(where: str, net_arch: Any, mapping: bool, keys: tuple[str, ...]) -> None:
    width = layer_width()
    allowed = f"a list of layer widths ({width.allowed})"
    if mapping:
        allowed += f" or a mapping of {' and '.join(keys)} to such lists"
    if isinstance(net_arch, Mapping) and mapping:
        for key, layers in net_arch.items():
            if key not in keys:
                raise ValueError(f"{where}.{key}: unknown network; allowed: {', '.join(keys)}")
            check_net_arch(f"{where}.{key}", layers, False, keys)
        return
    if not isinstance(net_arch, list | tuple):
        raise ValueError(f"{where}: must be {allowed} (got {short(net_arch)})")
    for index, layer in enumerate(net_arch):
        check_value(f"{where}.{index}", layer, width)


# The action spaces of each family (SB3 hands them to BaseAlgorithm inside __init__, so no class attribute says):
# Q-learning picks among discrete actions; the deterministic and entropy-regularised actor-critics output
# continuous ones (DDPG is a TD3); PPO and A2C take both.
DISCRETE_ONLY: tuple[type[BaseAlgorithm], ...] = (DQN, QRDQN)
CONTINUOUS_ONLY: tuple[type[BaseAlgorithm], ...] = (SAC, TD3, TQC)
HIGHWAY_ACTION_KINDS = {"DiscreteMetaAction": "discrete", "DiscreteAction": "discrete",
                        "ContinuousAction": "continuous"}


def check_action_type(cls: type[BaseAlgorithm], action_type: str | None, scenario: str | None = None) -> None:
    """A highway-env action type the algorithm can act in: ``env.config.action.type``, or with ``scenario`` set,
    that scenario's default (named in the error)."""
    kind = HIGHWAY_ACTION_KINDS.get(action_type or "")
    takes = ("discrete" if issubclass(cls, DISCRETE_ONLY) else "continuous" if issubclass(cls, CONTINUOUS_ONLY)
             else None)
    if kind is None or takes is None or kind == takes:
        return
    allowed = [name for name, name_kind in HIGHWAY_ACTION_KINDS.items() if name_kind == takes]
    given = f"{action_type} ({scenario}'s default)" if scenario else action_type
    raise ValueError(f"env.config.action.type: {given} gives {kind} actions, which {cls.__name__} cannot take; "
                     f"allowed with it: {', '.join(allowed)} (or an algorithm that takes {kind} actions)")


def check_combinations(cls: type[BaseAlgorithm], hyperparameters: Mapping[str, Any],
                       policy_kwargs: Mapping[str, Any] | None = None, n_envs: int = 1) -> None:
    """Settings fine alone that SB3 refuses together (or that train on nothing), with ``n_envs`` envs."""
    defaults = {parameter.name: parameter.default for parameter in constructor_signature(cls)[0]}

    def value(name: str) -> Any:
        return hyperparameters.get(name, defaults.get(name))

    where = "agent.hyperparameters"
    if issubclass(cls, OnPolicyAlgorithm) and "batch_size" in defaults and value("normalize_advantage"):
        if value("batch_size") == 1:
            raise ValueError(f"{where}.batch_size: must be > 1 with normalize_advantage: true (a mini-batch "
                             "of one has no spread to normalise by)")
        if value("n_steps") == 1 and n_envs == 1:
            raise ValueError(f"{where}.n_steps: n_steps x env.n_envs must be > 1 with normalize_advantage: true "
                             f"(got n_steps={value('n_steps')}, n_envs={n_envs})")
    if issubclass(cls, OffPolicyAlgorithm):
        train_freq = value("train_freq")
        if isinstance(train_freq, list | tuple) and train_freq[1] == "episode" and n_envs > 1:
            raise ValueError(f"{where}.train_freq: an episode unit needs env.n_envs: 1 (got {n_envs}); "
                             "use [n, step] with several envs")
        buffer_kwargs = value("replay_buffer_kwargs") or {}
        if value("optimize_memory_usage") and buffer_kwargs.get("handle_timeout_termination", True):
            raise ValueError(f"{where}.optimize_memory_usage: true needs replay_buffer_kwargs: "
                             "{handle_timeout_termination: false} (SB3 cannot do both)")
    if issubclass(cls, TQC):
        n_quantiles = (policy_kwargs or {}).get("n_quantiles", 25)
        if is_integer(n_quantiles) and value("top_quantiles_to_drop_per_net") >= n_quantiles:
            raise ValueError(f"{where}.top_quantiles_to_drop_per_net: must be below policy_kwargs.n_quantiles "
                             f"({n_quantiles}), or no quantile is left to learn from "
                             f"(got {value('top_quantiles_to_drop_per_net')})")


def sb3_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Checked hyperparameters as SB3 takes them: a YAML ``train_freq`` list as the tuple SB3 reads,
    buffer classes by dotted path loaded."""
    converted = dict(hyperparameters)
    if isinstance(converted.get("train_freq"), list):
        converted["train_freq"] = tuple(converted["train_freq"])
    for key in ("replay_buffer_class", "rollout_buffer_class"):
        if converted.get(key) is not None:
            converted[key] = load_class(f"agent.hyperparameters.{key}", converted[key], key)
    return converted


def sb3_policy_kwargs(policy_kwargs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Checked policy keywords as SB3 takes them: the classes named by dotted path loaded."""
    if not policy_kwargs:
        return None
    return {key: load_class(f"agent.policy_kwargs.{key}", value, key)
            if key in CLASS_KWARGS and isinstance(value, str) else value
            for key, value in policy_kwargs.items()}

