"""Experiment files: a pydantic schema, YAML loading, ``--set`` overrides and clear errors.

Everything is checked before any env or model is built: unknown keys, wrong types, unknown
scenarios, algorithms or hyperparameters all fail with the field's dotted path and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.registry import check_dopamine, check_hyperparameters, get_algorithm
from envs.scenarios import get_scenario


class ConfigError(ValueError):
    """An experiment file or override is invalid; the message names each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvConfig(_Strict):
    """The driving scenario and how it is simulated."""

    id: str = "highway-fast-v0"
    backend: Literal["auto", "envpool", "highway-env"] = "auto"
    n_envs: PositiveInt = 1
    config: dict[str, Any] = Field(default_factory=dict)  # highway-env config overrides

    @field_validator("id")
    @classmethod
    def _known_scenario(cls, env_id: str) -> str:
        get_scenario(env_id)
        return env_id


class AgentConfig(_Strict):
    """The SB3 algorithm; ``hyperparameters`` go to its constructor unchanged."""

    algo: str = "dqn"
    policy: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_algorithm(self) -> AgentConfig:
        check_hyperparameters(get_algorithm(self.algo), self.hyperparameters)
        return self


class NeuroConfig(_Strict):
    """Brain-inspired parts; each entry is ``{type: name or package.module:Class, **params}``."""

    dopamine: dict[str, Any] | None = None  # TD-error module (neuro.dopamine)


class TrainingConfig(_Strict):
    """Budget, seed, evaluation and checkpoint cadence (all counted in env steps)."""

    total_timesteps: PositiveInt
    seed: NonNegativeInt = 0
    eval_every: NonNegativeInt = 10_000  # 0: evaluate only at the end
    eval_episodes: PositiveInt = 10
    eval_n_envs: PositiveInt = 1
    checkpoint_every: NonNegativeInt = 0  # 0: no periodic checkpoints
    device: str = "cpu"
    torch_threads: PositiveInt = 1  # small MLPs run fastest on one thread beside the env threads


class LoggingConfig(_Strict):
    """Where the run folder goes and what is shown while training."""

    root: str = "runs"
    name: str | None = None  # run folder group; defaults to the experiment name
    progress_bar: bool = True
    verbose: NonNegativeInt = 0


class ExperimentConfig(_Strict):
    """One training run: ``config -> env -> agent -> callbacks -> run folder``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    neuro: NeuroConfig = Field(default_factory=NeuroConfig)
    training: TrainingConfig
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _neuro_fits_agent(self) -> ExperimentConfig:
        check_dopamine(get_algorithm(self.agent.algo), self.neuro.dopamine)
        return self


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``3e-4`` as a float (YAML 1.1 wants ``3.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (_Loader is a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: malformed YAML: {error}") from None


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``a.b.c=value`` override (the value is parsed as YAML) to a raw config dict."""
    path, sep, text = assignment.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY.PATH=VALUE")
    keys = path.strip().split(".")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {path}: {'.'.join(keys[: depth + 1])} is not a mapping")
        node = child
    node[keys[-1]] = parse_yaml(text, f"--set {path}")


def validate_config(raw: Any, source: str = "config") -> ExperimentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (an empty file is an empty one)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment file."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    for assignment in overrides:
        apply_override(raw, assignment)
    return validate_config(raw, str(path))


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid experiment config"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_fields(item["loc"][:-1])
            message = f"unknown key; allowed: {', '.join(allowed)}"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] != "value_error":
            message = f"{message} (got {item.get('input')!r})"
        if location and re.match(rf"^{re.escape(location)}[.:]", message):
            lines.append(f"  {message}")
        else:
            lines.append(f"  {location or '(top level)'}: {message}")
    return "\n".join(lines)


def _allowed_fields(location: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = ExperimentConfig
    for part in location:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
