"""Comparison files: the schema, loading, and every check that runs before any cell does.

A comparison trains a grid of ordinary runs, variant x scenario x seed, then evaluates every final
model under named conditions::

    name: dopamine_dqn                        # folder name
    experiment: ../dopamine/dqn_standard.yaml # base experiment, relative to this file (or a mapping)
    baseline: standard                        # a variant name
    variants:                                 # name -> dotted-path overrides of the base experiment
      standard: {}
      asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
    seeds: 5                                  # n -> 0, 100, 200, ... ; or a list
    scenarios: [highway-fast-v0]              # training scenarios (env.id); default: the experiment's
    fixed: {training.total_timesteps: 20000}  # overrides of every cell, applied after the variant's
    conditions:                               # name -> env overrides of the run's config, evaluation only
      clean: {}
      merge: {env.id: merge-v0}
    evaluation: {episodes: 100, backend: highway-env, n_envs: 1}
    # on a native port (backend auto or envpool) each variant's first seed is also evaluated on highway-env
    # under every condition by default: cross_check: {backend: highway-env, seeds: 1}; false turns it off
    quick: {fixed: {training.total_timesteps: 300}, seeds: 2, evaluation: {episodes: 4}}
    root: runs/compare
    heartbeat: {interval: 30, grace_period: 120, max_retry: 2}  # with --storage: finding a dead worker's cell
    sequential: {max_seeds: 20, batch: 5, alpha: 0.05}  # run until conclusive (experiments.compare.conclusive)

Every cell's experiment is built and validated at load, and so is every condition applied on every
cell (its backend resolved, its spaces equal to the training scenario's), so a bad override fails
before anything trains, naming the field as ``variants.<name>.<path>`` or ``conditions.<name>.<path>``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, ValidationError, field_validator, model_validator

from envs.scenarios import BACKEND_CHOICES, get_scenario
from experiments.config import (
    ConfigError,
    ExperimentConfig,
    StrictModel,
    format_validation_error,
    read_yaml_mapping,
    set_path,
    validate_config,
)
from experiments.config.bounds import MAX_ENVS, MAX_EPISODES, MAX_SEEDS, check_process_envs, check_seeds
from experiments.config.experiment import NAME_PATTERN
from experiments.distributed.heartbeat import HeartbeatSpec

logger = logging.getLogger("neurodrive.compare")

SEED_SPACING = 100  # seeds n -> 0, 100, 200, ...: far apart, so no two runs share a derived env seed
REPORT_FOLDER = "report"  # <root>/<name>/report: so no variant may be called that
QUICK_SUFFIX = "-quick"  # --quick runs go to <root>/<name>-quick, never mixed with the full grid
# Experiment fields the comparison sets in every cell, and the comparison field that sets each.
COMPARE_OWNED = {
    "env.id": "scenarios",
    "training.seed": "seeds",
    "logging.root": "root",
    "logging.name": "the cell folder",
    "logging.run_name": "the cell folder",
}
# What a condition may change: how the trained model is evaluated, never the model itself.
CONDITION_FIELDS = ("env.id", "env.backend", "env.config", "env.wrappers", "env.drivers")


class CrossCheckSpec(StrictModel):
    """``evaluation.cross_check``: each variant's first ``seeds`` seeds (per training scenario) are evaluated
    again on ``backend`` under every condition, so the report can compare the two simulators cell by cell."""

    backend: Literal["highway-env", "envpool"] = "highway-env"  # the reference simulator, by default
    seeds: int = Field(default=1, ge=1, le=MAX_SEEDS)


def _cross_check_switch(value: Any) -> Any:
    """``false``/``null`` turn the cross-check off, ``true`` asks for the default one."""
    if value is False:
        return None
    return {} if value is True else value


class EvaluationSpec(StrictModel):
    """The final evaluation of each cell under each condition (fresh episodes, seed stream 2)."""

    episodes: int = Field(default=100, ge=1, le=MAX_EPISODES)
    # The reference simulator by default: a final score should not depend on a port's fidelity.
    backend: Literal[BACKEND_CHOICES] = "highway-env"  # type: ignore[valid-type]
    n_envs: int = Field(default=1, ge=1, le=MAX_ENVS)  # on highway-env also check_process_envs
    # Left out: the default cross-check when evaluating on a native port (auto or envpool), none on highway-env.
    cross_check: CrossCheckSpec | None = Field(default_factory=CrossCheckSpec)

    @field_validator("cross_check", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return _cross_check_switch(value)

    @model_validator(mode="after")
    def _another_backend(self) -> EvaluationSpec:
        spec = self.cross_check_spec()
        if spec is not None and spec.backend == self.backend:
            other = "envpool" if self.backend == "highway-env" else "highway-env"
            raise ValueError(f"cross_check.backend: {self.backend} is the evaluation's own backend; a cross-check "
                             f"needs the other one (allowed: {other}), or cross_check: false")
        return self

    def cross_check_spec(self) -> CrossCheckSpec | None:
        """The cross-check this evaluation gets (the default resolved by the backend when the file gave none)."""
        if "cross_check" not in self.model_fields_set:
            return None if self.backend == "highway-env" else CrossCheckSpec()
        return self.cross_check

    def settings(self, backend: str | None = None) -> dict[str, Any]:
        """What an evaluation record made on ``backend`` (default: the main one) must have been made with;
        the cross-check's own setting is left out, so turning it on or off keeps the main records."""
        return {**self.model_dump(mode="json", exclude={"cross_check"}), **({"backend": backend} if backend else {})}


class QuickEvaluationSpec(StrictModel):
    """``quick.evaluation``: the fields given replace the file's."""

    episodes: int | None = Field(default=None, ge=1, le=MAX_EPISODES)
    backend: Literal[BACKEND_CHOICES] | None = None  # type: ignore[valid-type]
    n_envs: int | None = Field(default=None, ge=1, le=MAX_ENVS)
    cross_check: Any = None  # a cross_check mapping, true, or false (off under --quick)

    @field_validator("cross_check")
    @classmethod
    def _cross_check(cls, value: Any) -> Any:
        if value is None or value is False:
            return value  # not given / off
        value = _cross_check_switch(value)
        try:
            CrossCheckSpec.model_validate(value)
        except ValidationError as error:
            detail = error.errors()[0]
            where = ".".join(map(str, detail["loc"]))
            raise ValueError(f"{where + ': ' if where else ''}{detail['msg']} (got {detail['input']!r})") from None
        return value


class SequentialSpec(StrictModel):
    """``sequential:``: the group-sequential design ``--until-conclusive`` runs under (its presence turns it on).
    The first look is the file's ``seeds``; then ``batch`` more seeds per look up to ``max_seeds``."""

    max_seeds: int | None = Field(default=None, ge=1, le=MAX_SEEDS)  # default: 4 x the first look's seeds
    batch: int | None = Field(default=None, ge=1, le=MAX_SEEDS)  # default: the first look's seed count
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)  # family-wise, split over the comparisons
    effect_size: float = Field(default=1.0, gt=0.0)  # Cohen's d at which the report states the design's power


class QuickSequentialSpec(StrictModel):
    """``quick.sequential``: the fields given replace the file's."""

    max_seeds: int | None = Field(default=None, ge=1, le=MAX_SEEDS)
    batch: int | None = Field(default=None, ge=1, le=MAX_SEEDS)


class QuickSpec(StrictModel):
    """What ``--quick`` changes: ``fixed`` and ``evaluation`` merge key by key over the file's,
    ``seeds`` and ``scenarios`` replace them."""

    fixed: dict[str, Any] = Field(default_factory=dict)
    seeds: PositiveInt | list[NonNegativeInt] | None = None
    scenarios: list[str] | None = Field(default=None, min_length=1)
    evaluation: QuickEvaluationSpec = Field(default_factory=QuickEvaluationSpec)
    sequential: QuickSequentialSpec = Field(default_factory=QuickSequentialSpec)

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_seeds(cls, value: Any) -> Any:
        return value if value is None else _check_seeds(value)

    @field_validator("scenarios")
    @classmethod
    def _distinct_scenarios(cls, value: list[str] | None) -> list[str] | None:
        return _check_distinct_scenarios(value)


class CompareSpec(StrictModel):
    """The schema of a comparison file."""

    name: str = Field(pattern=NAME_PATTERN)
    experiment: str | dict[str, Any]
    baseline: str
    variants: dict[str, dict[str, Any] | None] = Field(min_length=1)
    seeds: PositiveInt | list[NonNegativeInt] = 5
    scenarios: list[str] | None = Field(default=None, min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    conditions: dict[str, dict[str, Any] | None] = Field(
        default_factory=lambda: {"clean": {}}, min_length=1)  # type: ignore[arg-type]  # {}: dict[Never, Never]

    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    quick: QuickSpec | None = None
    root: str = "runs/compare"  # relative to the working directory, like logging.root
    heartbeat: HeartbeatSpec = Field(default_factory=HeartbeatSpec)  # grids shared through --storage
    sequential: SequentialSpec | None = None  # --until-conclusive's design

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_seeds(cls, value: Any) -> Any:
        return _check_seeds(value)

    @field_validator("scenarios")
    @classmethod
    def _distinct_scenarios(cls, value: list[str] | None) -> list[str] | None:
        return _check_distinct_scenarios(value)


def _check_distinct_scenarios(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError(f"a scenario is listed twice ({', '.join(value)})")
    return value


def _check_seeds(value: Any) -> Any:
    """One sentence instead of pydantic's error per union member (bounded: each seed is a run)."""
    return check_seeds(value)


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    variant: str
    scenario: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.scenario}/seed{self.seed}"


@dataclass
class Comparison:
    """A validated comparison: the spec with ``--quick`` applied, the base experiment and its folder."""

    spec: CompareSpec
    source: str  # the file, for error messages
    text: str  # the file as written (the report keeps it)
    base: dict[str, Any]  # the base experiment, raw
    name: str  # the folder name (``spec.name``, plus ``-quick`` under --quick)
    root: Path
    seeds: list[int]
    scenarios: list[str]
    fixed: dict[str, Any]
    evaluation: EvaluationSpec
    quick: bool = False
    sequential: SequentialSpec | None = None  # the file's, with quick.sequential applied under --quick

    @property
    def folder(self) -> Path:
        return self.root / self.name

    @property
    def report_dir(self) -> Path:
        return self.folder / REPORT_FOLDER

    @property
    def baseline(self) -> str:
        return self.spec.baseline

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        return {name: overrides or {} for name, overrides in self.spec.variants.items()}

    @property
    def conditions(self) -> dict[str, dict[str, Any]]:
        return {name: overrides or {} for name, overrides in self.spec.conditions.items()}

    def cells(self) -> list[Cell]:
        """Every cell, variant by variant, then scenario, then seed."""
        return [Cell(variant, scenario, seed) for variant in self.variants for scenario in self.scenarios
                for seed in self.seeds]

    def cell_dir(self, cell: Cell) -> Path:
        """``<root>/<name>/<variant>/<scenario>/seed<k>``: fixed, so a rerun finds every cell again."""
        return self.folder / cell.variant / scenario_folder(cell.scenario) / f"seed{cell.seed}"

    def raw_cell(self, cell: Cell) -> dict[str, Any]:
        """The raw experiment of a cell: base, the variant's overrides, ``fixed``, then the cell's own fields."""
        raw = copy.deepcopy(self.base)
        for path, value in self.variants[cell.variant].items():
            set_path(raw, path, value)
        for path, value in self.fixed.items():
            set_path(raw, path, value)
        set_path(raw, "env.id", cell.scenario)
        set_path(raw, "training.seed", cell.seed)
        set_path(raw, "logging.root", str(self.folder))
        set_path(raw, "logging.name", f"{cell.variant}/{scenario_folder(cell.scenario)}")
        set_path(raw, "logging.run_name", f"seed{cell.seed}")
        set_path(raw, "logging.progress_bar", False)  # several workers would interleave bars
        return raw

    def cell_config(self, cell: Cell) -> ExperimentConfig:
        """The validated experiment of a cell; errors name ``variants.<name>.<field>``."""
        where = f"variants.{cell.variant}"
        try:
            raw = self.raw_cell(cell)
        except ConfigError as error:
            raise ConfigError(f"{self.source}: {where}.{error}") from None
        return _validated(raw, f"{self.source}: {where} ({cell.scenario}, seed {cell.seed})", f"{where}.")

    def condition_config(self, run_config: ExperimentConfig, condition: str,
                         backend: str | None = None) -> ExperimentConfig:
        """The run's config as a condition evaluates it: ``evaluation.backend`` (or ``backend``, a cross-check's),
        then the condition's overrides (a condition's own ``env.backend`` wins); errors name
        ``conditions.<name>.<field>``."""
        where = f"conditions.{condition}"
        raw = run_config.model_dump(mode="json")
        set_path(raw, "env.backend", backend or self.evaluation.backend)
        try:
            for path, value in self.conditions[condition].items():
                set_path(raw, path, value)
        except ConfigError as error:
            raise ConfigError(f"{self.source}: {where}.{error}") from None
        return _validated(raw, f"{self.source}: {where} (on {run_config.logging.name}/{run_config.logging.run_name})",
                          f"{where}.")

    def fingerprint(self) -> dict[str, Any]:
        """What defines the grid: each cell's experiment (a digest; where a machine keeps its runs,
        ``logging``, is its own business) and each condition with the evaluation settings. A shared grid's
        study holds it, and a report records it, so results can be traced to the file that made them."""
        cells = {}
        for cell in self.cells():
            experiment = self.cell_config(cell).model_dump(mode="json", exclude={"logging"})
            cells[cell.label] = hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()[:16]
        return {"cells": cells,
                "conditions": {condition: self.evaluation_settings(condition) for condition in self.conditions}}

    def evaluation_settings(self, condition: str, backend: str | None = None) -> dict[str, Any]:
        """What a condition's evaluation file (on ``backend``: a cross-check's) must have been made with to
        count as done."""
        return json.loads(json.dumps({"overrides": self.conditions[condition],
                                      "evaluation": self.evaluation.settings(backend)}, default=str))

    def cross_check_backend(self, cell: Cell) -> str | None:
        """The backend a cell is cross-checked on, or None: each variant's first ``cross_check.seeds`` seeds
        of each training scenario are (a condition whose main evaluation already runs there is skipped by the
        runner)."""
        spec = self.evaluation.cross_check_spec()
        return spec.backend if spec is not None and cell.seed in self.seeds[:spec.seeds] else None


def scenario_folder(scenario: str) -> str:
    """A scenario id as a folder name (a user's ``pkg.mod:my-env-v0`` holds a colon)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", scenario)


def load_comparison(path: str | Path, quick: bool = False) -> Comparison:
    """Read and check a comparison file (with its ``quick:`` block applied under ``--quick``)."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    return comparison_from_raw(raw, str(path), path.parent, path.read_text(), quick)


def comparison_from_raw(raw: dict[str, Any], source: str, folder: Path, text: str = "",
                        quick: bool = False) -> Comparison:
    """Validate a comparison's raw mapping; ``folder`` anchors a relative ``experiment`` path."""
    try:
        spec = CompareSpec.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, CompareSpec)) from None
    _check_names(spec, source)
    base = _load_base(spec.experiment, source, folder)
    seeds_spec, scenarios, fixed, evaluation = spec.seeds, spec.scenarios, dict(spec.fixed), spec.evaluation
    sequential = spec.sequential
    if quick:
        if spec.quick is None:
            raise ConfigError(f"--quick: {source} has no quick: block (what a short smoke run replaces)")
        seeds_spec = spec.quick.seeds if spec.quick.seeds is not None else seeds_spec
        scenarios = spec.quick.scenarios or scenarios
        fixed.update(spec.quick.fixed)
        evaluation = _quick_evaluation(evaluation, spec.quick.evaluation, source)
        if sequential is not None:
            sequential = sequential.model_copy(update=spec.quick.sequential.model_dump(exclude_none=True))
    seeds = ([SEED_SPACING * index for index in range(seeds_spec)] if isinstance(seeds_spec, int)
             else list(seeds_spec))
    _check_overrides(spec, fixed, quick, source)
    cross_check = evaluation.cross_check_spec()
    with _named(f"{source}: "):  # the cross-check evaluates with the same n_envs on its own backend
        for backend in (evaluation.backend, *((cross_check.backend,) if cross_check is not None else ())):
            check_process_envs("evaluation.n_envs", evaluation.n_envs, backend)
    base_config = _validated_base(base, fixed, spec, quick, source)
    comparison = Comparison(spec, source, text, base, spec.name + (QUICK_SUFFIX if quick else ""),
                            Path(spec.root), seeds, list(scenarios or [base_config.env.id]), fixed, evaluation,
                            quick, sequential)
    _check_cells(comparison)
    return comparison


def _quick_evaluation(evaluation: EvaluationSpec, quick: QuickEvaluationSpec, source: str) -> EvaluationSpec:
    """The file's evaluation with ``quick.evaluation``'s given fields over it; a cross-check left to its
    default follows the backend ``--quick`` may change (hence ``exclude_unset``)."""
    try:
        return EvaluationSpec.model_validate({**evaluation.model_dump(exclude_unset=True),
                                              **quick.model_dump(exclude_none=True)})
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"])
        raise ConfigError(f"{source}: quick.evaluation{'.' + where if where else ''}: "
                          f"{detail['msg'].removeprefix('Value error, ')}") from None


def _check_names(spec: CompareSpec, source: str) -> None:
    """Variant and condition names become folder and file names; the baseline must be a variant."""
    for field, names in (("variants", spec.variants), ("conditions", spec.conditions)):
        for name in names:
            if not re.match(NAME_PATTERN, name):
                raise ConfigError(f"{source}: {field}.{name}: a name must match {NAME_PATTERN} "
                                  "(it names a folder or a file)")
    if REPORT_FOLDER in spec.variants:
        raise ConfigError(f"{source}: variants.{REPORT_FOLDER}: reserved for the report folder; pick another name")
    if spec.baseline not in spec.variants:
        raise ConfigError(f"{source}: baseline: {spec.baseline!r} is not a variant; "
                          f"allowed: {', '.join(spec.variants)}")


def _load_base(experiment: str | dict[str, Any], source: str, folder: Path) -> dict[str, Any]:
    if isinstance(experiment, dict):
        return copy.deepcopy(experiment)
    try:
        return read_yaml_mapping(folder / experiment)
    except ConfigError as error:
        raise ConfigError(f"{source}: experiment: {error}") from None


def _validated(raw: dict[str, Any], header: str, prefix: str | Callable[[str], str]) -> ExperimentConfig:
    """``validate_config`` whose error names the field from the comparison file's top
    (``variants.asymmetric.neuro.dopamine.kappa: ...``); ``prefix`` may depend on the field's path."""
    return validate_config(raw, header, prefix)


def _validated_base(base: dict[str, Any], fixed: dict[str, Any], spec: CompareSpec, quick: bool,
                    source: str) -> ExperimentConfig:
    """The base experiment with ``fixed`` applied must be an experiment by itself; an error line names
    ``fixed.<path>`` (or ``quick.fixed.<path>``) when an override set that field, else ``experiment.<path>``."""
    owners = {path: "fixed" for path in spec.fixed}
    if quick and spec.quick is not None:
        owners.update({path: "quick.fixed" for path in spec.quick.fixed})
    raw = copy.deepcopy(base)
    for path, value in fixed.items():
        with _named(f"{source}: {owners[path]}."):
            set_path(raw, path, value)

    def owner(field: str) -> str:
        for path, where in owners.items():
            if field == path or field.startswith(f"{path}.") or path.startswith(f"{field}."):
                return f"{where}."
        return "experiment."

    return _validated(raw, f"{source}: experiment", owner)


def _check_overrides(spec: CompareSpec, fixed: dict[str, Any], quick: bool, source: str) -> None:
    """Paths the comparison sets itself, a path both a variant and ``fixed`` set, and condition paths."""
    variants = {name: overrides or {} for name, overrides in spec.variants.items()}
    fixed_sources = [("fixed", spec.fixed)] + ([("quick.fixed", spec.quick.fixed)] if quick and spec.quick else [])
    for where, overrides in [*fixed_sources, *((f"variants.{name}", o) for name, o in variants.items())]:
        for path in overrides:
            if path in COMPARE_OWNED:
                raise ConfigError(f"{source}: {where}.{path}: set by the comparison ({COMPARE_OWNED[path]}), "
                                  "not by an override")
    for name, overrides in variants.items():
        for path in overrides:
            if path in fixed:
                raise ConfigError(f"{source}: variants.{name}.{path}: also under fixed, which would override it "
                                  "in every cell; a field is either varied or fixed")
    for name, condition in spec.conditions.items():
        for path in condition or {}:
            if not any(path == field or path.startswith(f"{field}.") for field in CONDITION_FIELDS):
                raise ConfigError(f"{source}: conditions.{name}.{path}: a condition changes how the trained model "
                                  f"is evaluated, not the model; allowed: {', '.join(CONDITION_FIELDS)} "
                                  "(and paths under env.config)")


def _check_cells(comparison: Comparison) -> None:
    """Build and validate every cell, then every condition on every cell, before anything runs; say once per
    condition where ``auto`` evaluates on highway-env instead of a native port, and why."""
    from experiments.runs.build import resolve_backend

    source = comparison.source
    for index, scenario in enumerate(comparison.scenarios):
        try:
            get_scenario(scenario)
        except ValueError as error:
            raise ConfigError(f"{source}: scenarios.{index}: {str(error).removeprefix('env.id: ')}") from None
    _check_cross_check_names(comparison)
    fallbacks: dict[str, str] = {}
    checked: set[tuple[str, str, str | None]] = set()
    for cell in comparison.cells():
        # Seeds differ in training.seed alone (check_seeds bounds it): one seed per variant, scenario and
        # cross-check stands for the rest, so 10,000 seeds validate in the time of one.
        kind = (cell.variant, cell.scenario, comparison.cross_check_backend(cell))
        if kind in checked:
            continue
        checked.add(kind)
        where = f"variants.{cell.variant}"
        config = comparison.cell_config(cell)  # env.config keys too (check_env_config_keys)
        with _named(f"{source}: {where}.", f" ({cell.label})"):
            resolve_backend(config)
        trained_spaces = _spaces(config, f"{source}: {where}.")
        for condition in comparison.conditions:
            where = f"conditions.{condition}"
            evaluated = comparison.condition_config(config, condition)
            with _named(f"{source}: {where}.", f" ({cell.label})"):
                _, choice = resolve_backend(evaluated)
            if comparison.evaluation.backend == "auto" and choice.backend != "envpool":
                fallbacks.setdefault(condition, f"{evaluated.env.id}, {choice.reason}")
            checked_on = comparison.cross_check_backend(cell)
            if checked_on is not None and choice.backend != checked_on:  # the runner evaluates it there too
                with _named(f"{source}: {where}.", f" (its cross-check on {checked_on}, {cell.label})"):
                    resolve_backend(comparison.condition_config(config, condition, checked_on))
            spaces = _spaces(evaluated, f"{source}: {where}.")
            if spaces != trained_spaces:
                raise ConfigError(
                    f"{source}: {where}.env: {evaluated.env.id} observes {spaces[0]} and acts in {spaces[1]}, but "
                    f"{cell.label} trained on {cell.scenario}, which observes {trained_spaces[0]} and acts in "
                    f"{trained_spaces[1]}; a condition must keep both (match env.config.observation and action)")
    for condition, why in fallbacks.items():
        logger.info("%s: conditions.%s is evaluated on highway-env, not a native port (%s)", source, condition, why)


def _check_cross_check_names(comparison: Comparison) -> None:
    """A cross-check record is ``compare-<condition>.<backend>.json``: no condition may be named so."""
    spec = comparison.evaluation.cross_check_spec()
    if spec is None:
        return
    for condition in comparison.conditions:
        if f"{condition}.{spec.backend}" in comparison.conditions:
            raise ConfigError(f"{comparison.source}: conditions.{condition}.{spec.backend}: this name is taken by "
                              f"the cross-check of condition {condition} (evaluation.cross_check); rename it")


@contextmanager
def _named(prefix: str, suffix: str = "") -> Iterator[None]:
    """Report a ``ConfigError`` raised inside with the comparison's field prefix in front."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError(f"{prefix}{error}{suffix}") from None


def _spaces(config: ExperimentConfig, prefix: str) -> tuple[Any, Any]:
    try:
        return _scenario_spaces(config.env.id, json.dumps(config.env.config, sort_keys=True))
    except ValueError as error:
        raise ConfigError(f"{prefix}env.config: {error}") from None


@cache
def _scenario_spaces(env_id: str, config_json: str) -> tuple[Any, Any]:
    """Observation and action spaces of a scenario with a config (one highway-env env, built and closed)."""
    from envs.factory import make_highway_env

    try:
        env = make_highway_env(env_id, json.loads(config_json))
    except Exception as error:  # highway-env raises many types for a bad config value
        raise ValueError(f"{env_id} cannot be built with {config_json}: {type(error).__name__}: {error}") from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
