"""Experiment files: a pydantic schema, YAML loading, ``--set`` overrides and clear errors.

Everything is checked before any env or model is built: unknown keys, wrong types, unknown
scenarios, algorithms or hyperparameters all fail with the field's dotted path and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from envs.drivers import check_drivers, check_scenario
from envs.scenarios import BACKEND_CHOICES, get_scenario, highway_env_default_config
from experiments.config.bounds import MAX_ENVS, MAX_EPISODES, MAX_SEED, MAX_TIMESTEPS, check_process_envs
from experiments.config.env_values import check_env_config_values
from experiments.config.toolkit import (
    ConfigError,
    StrictModel,
    apply_override,
    did_you_mean,
    format_validation_error,
    printable,
    read_yaml_mapping,
)
from neuro.snn.config import SnnConfig


class EnvConfig(StrictModel):
    """The driving scenario and how it is simulated."""

    id: str = "highway-fast-v0"
    backend: Literal[BACKEND_CHOICES] = "auto"  # type: ignore[valid-type]
    n_envs: int = Field(default=1, ge=1, le=MAX_ENVS)  # highway-env's processes: also check_process_envs
    config: dict[str, Any] = Field(default_factory=dict)  # highway-env config overrides
    # Robustness wrappers on training and evaluation envs, in order: {type: name or package.module:Class, **params}.
    wrappers: list[dict[str, Any]] = Field(default_factory=list)
    # Other drivers' behaviour drawn per episode, {name: probability} (envs.drivers); None: the scenario's own.
    drivers: dict[str, Any] | None = None

    @field_validator("id")
    @classmethod
    def _known_scenario(cls, env_id: str) -> str:
        get_scenario(env_id)
        return env_id

    @model_validator(mode="after")
    def _known_config_keys(self) -> EnvConfig:
        check_env_config_keys(self.id, self.config)
        check_env_config_values(self.id, self.config, highway_env_default_config(self.id))
        check_process_envs("env.n_envs", self.n_envs, self.backend)
        return self

    @field_validator("wrappers")
    @classmethod
    def _known_wrappers(cls, wrappers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from experiments.config.wrappers import check_wrappers  # SB3: imported only when a config has wrappers

        check_wrappers(wrappers)  # errors start with the item's path: env.wrappers.1.probability: ...
        return wrappers

    @field_validator("drivers")
    @classmethod
    def _known_drivers(cls, drivers: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if drivers is None else check_drivers(drivers)

    @model_validator(mode="after")
    def _drivers_fit_scenario(self) -> EnvConfig:
        if self.drivers is None:
            return self
        if self.backend == "envpool":
            raise ConfigError("env.backend: envpool cannot draw other drivers' behaviour (env.drivers); "
                              "allowed with env.drivers: highway-env, auto")
        if "other_vehicles_type" in self.config:
            raise ConfigError("env.drivers: sets other_vehicles_type at every episode; leave "
                              "env.config.other_vehicles_type out, or env.drivers")
        check_scenario(self.id)
        return self


def check_env_config_keys(env_id: str, config: Mapping[str, Any]) -> None:
    """Fail on a key highway-env's ``env_id`` does not have: pydantic sees ``env.config`` as free-form,
    highway-env ignores keys it does not know, and EnvPool cannot honour them, so under ``backend:
    auto`` a misspelt key would quietly move the run to highway-env and change nothing else."""
    known = highway_env_default_config(env_id)
    for key in config:
        if key not in known:
            raise ConfigError(f"env.config.{printable(key)}: {env_id} has no config key {key!r}; "
                              f"allowed: {', '.join(sorted(known))}{did_you_mean(key, known)}")


class AgentConfig(StrictModel):
    """The SB3 algorithm; ``hyperparameters`` go to its constructor unchanged."""

    algo: str = "dqn"
    policy: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    snn: SnnConfig | None = None  # a spiking policy's settings (policy: spiking); layer sizes: policy_kwargs.net_arch

    @model_validator(mode="after")
    def _known_algorithm(self) -> AgentConfig:
        from agents.registry import check_hyperparameters, check_policy, get_algorithm

        algo_cls = get_algorithm(self.algo)
        check_hyperparameters(algo_cls, self.hyperparameters)
        check_policy(algo_cls, self.policy, self.snn_settings(), self.policy_kwargs)
        return self

    def snn_settings(self) -> dict[str, Any] | None:
        """``snn`` as the policy takes it; a spiking policy without an ``snn`` section gets the defaults."""
        return None if self.snn is None else self.snn.model_dump()


# torch's device strings a run can use (checked without importing torch).
DEVICE_PATTERN = r"cpu|cuda|cuda:\d+|mps|auto"
THREADS_PER_CPU = 4  # more threads than this only contend (and a million of them crash torch)


def max_torch_threads() -> int:
    """The most ``training.torch_threads`` this machine allows."""
    return (os.cpu_count() or 1) * THREADS_PER_CPU


class TrainingConfig(StrictModel):
    """Budget, seed, evaluation and checkpoint cadence (all counted in env steps)."""

    total_timesteps: int = Field(ge=1, le=MAX_TIMESTEPS)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)  # numpy's seed range
    eval_every: NonNegativeInt = 10_000  # 0: evaluate only at the end
    eval_episodes: int = Field(default=10, ge=1, le=MAX_EPISODES)
    eval_n_envs: int = Field(default=1, ge=1, le=MAX_ENVS)  # highway-env's processes: also check_process_envs
    checkpoint_every: NonNegativeInt = 0  # 0: no periodic checkpoints
    device: str = "cpu"
    torch_threads: PositiveInt = 1  # small MLPs run fastest on one thread beside the env threads
    # Flush denormal floats to zero: Adam's moment estimates of rarely-moved weights decay into denormals,
    # whose arithmetic is many times slower on x86 CPUs (figures: docs/benchmarks.md). Process-wide.
    flush_denormal: bool = True

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, device):
            raise ValueError(f"training.device: must be cpu, cuda, cuda:N (N a GPU index), mps or auto "
                             f"(got {device!r})")
        return device

    @field_validator("torch_threads")
    @classmethod
    def _threads_fit_machine(cls, threads: int) -> int:
        limit = max_torch_threads()
        if threads > limit:
            raise ValueError(f"training.torch_threads: must be an integer in [1, {limit}]: this machine has "
                             f"{os.cpu_count() or 1} CPUs (allowed: up to {THREADS_PER_CPU} threads each), "
                             f"got {threads}")
        return threads


# A name that becomes a folder: letters, digits, '_', '.' and '-', not dots alone ('.' and '..' would put the
# folder outside its root). A group (logging.name) may be a path of such names.
NAME_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
GROUP_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"


class LoggingConfig(StrictModel):
    """Where the run folder goes and what is shown while training."""

    root: str = "runs"
    name: str | None = Field(default=None, pattern=GROUP_PATTERN)  # run folder group; default: the experiment name
    # The run folder's own name; default <timestamp>-seed<seed>. A fixed name makes the folder known in
    # advance (a comparison's cells), so a second run with it is refused rather than mixed in.
    run_name: str | None = Field(default=None, pattern=NAME_PATTERN)
    progress_bar: bool = True
    verbose: NonNegativeInt = 0


class ExperimentConfig(StrictModel):
    """One training run: ``config -> env -> agent -> callbacks -> run folder``."""

    name: str = Field(pattern=NAME_PATTERN)
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    # Brain-inspired parts by kind (neuro.parts.NEURO_PARTS): {type: name or package.module:Class, **params}.
    neuro: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    training: TrainingConfig
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _neuro_fits_agent(self) -> ExperimentConfig:
        from agents.registry import check_neuro, get_algorithm

        check_neuro(get_algorithm(self.agent.algo), self.neuro, self.agent.hyperparameters)
        return self

    @model_validator(mode="after")
    def _agent_fits_envs(self) -> ExperimentConfig:
        """Hyperparameters SB3 refuses together, or with ``env.n_envs`` envs, and an action type the algorithm
        cannot take (``agents.hyperparameters``)."""
        from agents.hyperparameters import check_action_type, check_combinations
        from agents.registry import get_algorithm
        from envs.scenarios import highway_env_default_config

        algorithm = get_algorithm(self.agent.algo)
        check_combinations(algorithm, self.agent.hyperparameters, self.agent.policy_kwargs, self.env.n_envs)
        given = (self.env.config or {}).get("action")
        action = given or highway_env_default_config(self.env.id).get("action")
        check_action_type(algorithm, action.get("type") if isinstance(action, dict) else None,
                          None if given else self.env.id)
        return self


def validate_config(raw: Any, source: str | Callable[[str], str] = "config",
                    prefix: str | Callable[[str], str] = "") -> ExperimentConfig:
    """The checked experiment of a raw mapping; a ``ConfigError`` names the field (``prefix`` and
    ``source`` as in ``format_validation_error``)."""
    if not isinstance(raw, dict):
        where = source if isinstance(source, str) else source("")
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, ExperimentConfig, prefix)) from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment file; an error names the file or ``--set`` as its source."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    for assignment in overrides:
        apply_override(raw, assignment)
    set_paths = [assignment.partition("=")[0].strip() for assignment in overrides]

    def source(field: str) -> str:
        """``--set`` when an override wrote the field (or a field inside or around it), else the file."""
        if any(field == set_path or field.startswith(f"{set_path}.") or set_path.startswith(f"{field}.")
               for set_path in set_paths):
            return "--set"
        return str(path)

    return validate_config(raw, source)


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
