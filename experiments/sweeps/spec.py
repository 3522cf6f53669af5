"""Sweep files: the pydantic schema, loading, and every check that runs before any trial does.

A sweep file names a base experiment, a search space over its fields by dotted path, the objective,
the seeds and budget of each trial, and the sampler and pruner::

    experiment: ../highway_dqn.yaml          # relative to this file, or an inline mapping
    parameters:
      agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}
      neuro.dopamine.type: {categorical: [standard, asymmetric]}
      neuro.dopamine.kappa: {float: [-0.8, 0.8], condition: {neuro.dopamine.type: asymmetric}}
    objective: mean_return                   # or crash_rate, or a list of {metric, direction}
    seeds: 2                                 # objective = mean over seeds
    budget: 20000                            # env steps per seed (training.total_timesteps)
    eval_every: 5000                         # evaluation (and pruning) cadence
    sampler: {type: tpe, seed: 0}
    pruner: {type: median, n_startup_trials: 5}

Every parameter is checked against the experiment schema before a trial runs: each probe value
(low and high, every choice) is applied to the base experiment and the result validated.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from envs.scenarios import get_scenario
from experiments.config import (
    ConfigError,
    ExperimentConfig,
    StrictModel,
    check_env_config_keys,
    did_you_mean,
    format_validation_error,
    read_yaml_mapping,
    set_path,
    validate_config,
)
from experiments.config.bounds import MAX_SEED, MAX_TIMESTEPS, MAX_TRIALS, Rule, check_seeds, rule_of_default
from experiments.config.experiment import NAME_PATTERN
from experiments.distributed.heartbeat import HeartbeatSpec

# Defaults where the better direction is unambiguous; mean_length needs an explicit one.
METRIC_DIRECTIONS: dict[str, str | None] = {
    "mean_return": "maximize",
    "crash_rate": "minimize",
    "mean_speed": "maximize",
    "success_rate": "maximize",
    "mean_length": None,
}
Metric = Literal["mean_return", "crash_rate", "mean_speed", "success_rate", "mean_length"]

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "grid": optuna.samplers.GridSampler,
}
PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
}
# Experiment fields the sweep sets for every trial, and the sweep field that sets each.
SWEEP_OWNED = {
    "training.total_timesteps": "budget",
    "training.eval_every": "eval_every",
    "training.seed": "seeds",
    "logging.root": "root",
    "logging.name": "the trial folder name",
}
STUDY_NAME_PATTERN = NAME_PATTERN  # it names the sweep folder
# Sampler and pruner options by name (one meaning across optuna's classes): type and range.
_FLAG = Rule("bool")
OPTION_RULES: dict[str, Rule] = {
    "n_startup_trials": Rule("int", 0, MAX_TRIALS),
    "n_warmup_steps": Rule("int", 0),
    "interval_steps": Rule("int", 1),
    "n_min_trials": Rule("int", 1),
    "min_resource": Rule("int", 1, words=("auto",)),
    "max_resource": Rule("int", 1, words=("auto",)),
    "reduction_factor": Rule("int", 2),
    "min_early_stopping_rate": Rule("int", 0),
    "bootstrap_count": Rule("int", 0),
    "n_ei_candidates": Rule("int", 1),
    "prior_weight": Rule("number", 0, low_open=True),
    "sigma0": Rule("number", 0, low_open=True, optional=True),
    "popsize": Rule("int", 1, optional=True),
    "inc_popsize": Rule("int", -1),
    "restart_strategy": Rule("str", optional=True, words=("ipop", "bipop")),
    "x0": Rule("dict", optional=True),
    **{name: Rule("object") for name in ("gamma", "weights", "constraints_func", "independent_sampler",
                                         "source_trials")},
    **{name: _FLAG for name in ("consider_prior", "consider_magic_clip", "consider_endpoints", "multivariate",
                                "group", "warn_independent_sampling", "constant_liar", "consider_pruned_trials",
                                "use_separable_cma", "with_margin", "lr_adapt", "deterministic_objective")},
}


class ParameterSpec(StrictModel):
    """One searched field: ``{float: [low, high]}``, ``{int: [low, high]}`` or ``{categorical: [...]}``.

    ``condition: {other.path: value}`` samples it only in trials where that (earlier) parameter
    takes that value; otherwise the base experiment's value stays.
    """

    float_range: list[float] | None = Field(default=None, alias="float")
    int_range: list[int] | None = Field(default=None, alias="int")
    choices: list[Any] | None = Field(default=None, alias="categorical")
    log: bool = False
    step: PositiveFloat | None = None
    condition: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind_and_a_sound_range(self) -> ParameterSpec:
        kinds = [kind for kind, value in (("float", self.float_range), ("int", self.int_range),
                                          ("categorical", self.choices)) if value is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of float, int, categorical (got {', '.join(kinds) or 'none'})")
        if self.choices is not None:
            if not self.choices:
                raise ValueError("categorical: empty list of choices")
            labels = [choice_label(choice) for choice in self.choices]
            if len(set(map(json.dumps, labels))) != len(labels):
                raise ValueError(f"categorical: duplicate choices in {self.choices}")
            if self.log or self.step is not None:
                raise ValueError("categorical: log and step apply to float and int ranges only")
            return self
        low_high = self.float_range if self.float_range is not None else self.int_range
        assert low_high is not None
        if len(low_high) != 2:
            raise ValueError(f"{kinds[0]}: expected [low, high], got {low_high}")
        low, high = low_high
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{kinds[0]}: expected finite [low, high], got {low_high}")
        if low == high:
            raise ValueError(f"{kinds[0]}: empty range [{low}, {high}]; low must be < high "
                             "(fix the value in the experiment or under `fixed` instead)")
        if low > high:
            raise ValueError(f"{kinds[0]}: inverted range [{low}, {high}]; low must be < high")
        if self.log and low <= 0:
            raise ValueError(f"{kinds[0]}: log scale needs low > 0, got {low}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.int_range is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"step: an int range needs a whole step, got {self.step}")
        return self

    @property
    def kind(self) -> str:
        return "float" if self.float_range is not None else "int" if self.int_range is not None else "categorical"

    @property
    def labels(self) -> list[Any]:
        return [choice_label(choice) for choice in self.choices or []]

    def probe_values(self) -> list[Any]:
        """Values validated before any trial: both ends of a range, every choice."""
        if self.choices is not None:
            return list(self.choices)
        low, high = self.float_range if self.float_range is not None else self.int_range  # type: ignore[misc]
        if self.int_range is not None and self.step:
            high = low + (high - low) // int(self.step) * int(self.step)
        return [low, high]

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return choice_label(value) in self.labels
        low, high = self.float_range if self.float_range is not None else self.int_range  # type: ignore[misc]
        number_types = (int,) if self.int_range is not None else (int, float)
        return isinstance(value, number_types) and not isinstance(value, bool) and low <= value <= high

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """Sample through optuna; categorical lists/mappings travel as JSON labels."""
        if self.float_range is not None:
            return trial.suggest_float(name, *self.float_range, log=self.log, step=self.step)
        if self.int_range is not None:
            return trial.suggest_int(name, *self.int_range, step=int(self.step or 1), log=self.log)
        return self.decode(trial.suggest_categorical(name, self.labels))

    def decode(self, optuna_value: Any) -> Any:
        """The config value for an optuna parameter value."""
        if self.choices is None:
            return optuna_value
        return self.choices[self.labels.index(optuna_value)]

    def grid_count(self) -> int:
        """How many values ``grid_values`` lists, without listing them (a range may hold billions)."""
        if self.choices is not None:
            return len(self.choices)
        if self.int_range is not None:
            low, high = self.int_range
            return (high - low) // int(self.step or 1) + 1
        if self.step is None:
            return 0  # grid_values says why
        start, stop = self.float_range  # type: ignore[misc]
        return int(np.floor((stop - start) / self.step + 1e-9)) + 1

    def grid_values(self, path: str) -> list[Any]:
        if self.choices is not None:
            return self.labels
        if self.int_range is not None:
            low, high = self.int_range
            return list(range(low, high + 1, int(self.step or 1)))
        if self.step is None:
            raise ValueError(f"parameters.{path}: the grid sampler needs a step for a float range")
        start, stop = self.float_range  # type: ignore[misc]
        count = int(np.floor((stop - start) / self.step + 1e-9)) + 1
        return [start + index * self.step for index in range(count)]


class ObjectiveSpec(StrictModel):
    """One metric of the run's final evaluation (``eval.json``), averaged over the seeds."""

    metric: Metric
    direction: Literal["maximize", "minimize"] | None = None

    @model_validator(mode="after")
    def _direction(self) -> ObjectiveSpec:
        if self.direction is None:
            self.direction = METRIC_DIRECTIONS[self.metric]  # type: ignore[assignment]
        if self.direction is None:
            raise ValueError(f"{self.metric}: give a direction (maximize or minimize)")
        return self


class _Typed(BaseModel):
    """``{type: name, **options}``; the options are checked against the optuna class's signature."""

    model_config = ConfigDict(extra="allow")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SamplerSpec(_Typed):
    type: Literal["tpe", "random", "cmaes", "gp", "grid"] = "tpe"
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


class PrunerSpec(_Typed):
    type: Literal["median", "halving", "hyperband", "none"] = "median"


class SweepSpec(StrictModel):
    """The schema of a sweep file."""

    experiment: str | dict[str, Any]
    parameters: dict[str, ParameterSpec] = Field(min_length=1)
    objective: list[ObjectiveSpec] = Field(default_factory=lambda: [ObjectiveSpec(metric="mean_return")],
                                           min_length=1)
    seeds: PositiveInt | list[NonNegativeInt] = 1
    budget: int | None = Field(default=None, ge=1, le=MAX_TIMESTEPS)  # env steps per seed; default: the experiment's
    eval_every: NonNegativeInt | None = None  # default: the experiment's training.eval_every
    fixed: dict[str, Any] = Field(default_factory=dict)  # dotted-path overrides of the base experiment
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    n_trials: int = Field(default=20, ge=1, le=MAX_TRIALS)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)  # trials to run first, e.g. a baseline
    heartbeat: HeartbeatSpec = Field(default_factory=HeartbeatSpec)
    study_name: str | None = Field(default=None, pattern=STUDY_NAME_PATTERN)
    root: str | None = None  # folder of sweep folders; default: <experiment logging.root>/sweeps

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_shorthand(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        return [{"metric": item} if isinstance(item, str) else item for item in items]

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _type_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_seeds(cls, value: Any) -> Any:
        return check_seeds(value)


def choice_label(value: Any) -> None | bool | int | float | str:
    """Optuna stores primitive choices only: a list or mapping choice is stored as its JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass
class Sweep:
    """A validated sweep: the spec, the base experiment (``fixed`` applied) and where it lives."""

    spec: SweepSpec
    base: dict[str, Any]
    source: str
    study_name: str
    root: Path
    seeds: list[int]
    budget: int  # env steps per seed
    eval_every: int

    @property
    def sweep_dir(self) -> Path:
        return self.root / self.study_name

    def env_ids(self) -> list[str]:
        """Every scenario a trial may run: the base experiment's and the choices of an ``env.id`` parameter."""
        swept = self.spec.parameters.get("env.id")
        choices = swept.choices if swept is not None and swept.choices else []
        base = self.base.get("env", {}).get("id")
        return sorted({str(env_id) for env_id in (base, *choices) if env_id is not None})

    @property
    def metrics(self) -> list[str]:
        return [objective.metric for objective in self.spec.objective]

    @property
    def directions(self) -> list[str]:
        return [str(objective.direction) for objective in self.spec.objective]

    @property
    def multi_objective(self) -> bool:
        return len(self.spec.objective) > 1

    def raw_experiment(self, params: dict[str, Any], seed: int, trial_name: str | None = None) -> dict[str, Any]:
        """The raw experiment of one trial seed: base, sampled values, then the sweep's own fields."""
        raw = copy.deepcopy(self.base)
        for path, value in params.items():
            set_path(raw, path, value)
        set_path(raw, "training.total_timesteps", self.budget)
        set_path(raw, "training.eval_every", self.eval_every)
        set_path(raw, "training.seed", seed)
        if trial_name is not None:
            set_path(raw, "logging.root", str(self.sweep_dir))
            set_path(raw, "logging.name", trial_name)
            set_path(raw, "logging.progress_bar", False)  # several workers would interleave bars
        return raw

    def experiment(self, params: dict[str, Any], seed: int, trial_name: str | None = None,
                   source: str = "trial") -> ExperimentConfig:
        return validate_config(self.raw_experiment(params, seed, trial_name), source)

    def decode_params(self, optuna_params: dict[str, Any]) -> dict[str, Any]:
        """Config values of a trial's optuna parameters, in the sweep file's order."""
        return {path: spec.decode(optuna_params[path]) for path, spec in self.spec.parameters.items()
                if path in optuna_params}

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every parameter whose condition holds, in the file's order."""
        values: dict[str, Any] = {}
        for path, spec in self.spec.parameters.items():
            if all(path_ in values and choice_label(values[path_]) == choice_label(wanted)
                   for path_, wanted in spec.condition.items()):
                values[path] = spec.suggest(trial, path)
        return values

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed study must share with the one it continues (results stay comparable)."""
        return json.loads(json.dumps({
            "experiment": self.base,
            "parameters": {path: spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
                           for path, spec in self.spec.parameters.items()},
            "objective": [objective.model_dump(mode="json") for objective in self.spec.objective],
            "seeds": self.seeds,
            "budget": self.budget,
            "eval_every": self.eval_every,
        }, sort_keys=True, default=str))

    def grid_space(self) -> dict[str, list[Any]]:
        return {path: spec.grid_values(path) for path, spec in self.spec.parameters.items()}

    def grid_size(self) -> int:
        return int(np.prod([len(values) for values in self.grid_space().values()]))

    def make_sampler(self, entropy: tuple[int, ...] = ()) -> optuna.samplers.BaseSampler:
        """The sampler; a seed is mixed with ``entropy`` (trials so far, worker index) so resumed
        runs and parallel workers do not replay the same random draws."""
        spec = self.spec.sampler
        seed = None
        if spec.seed is not None:
            seed = int(np.random.SeedSequence([spec.seed, *entropy]).generate_state(1)[0])
        options = spec.options
        if spec.type == "tpe":
            options.setdefault("constant_liar", True)  # parallel workers avoid sampling the same point
        if spec.type == "grid":
            return optuna.samplers.GridSampler(self.grid_space(), seed=seed)
        return SAMPLERS[spec.type](seed=seed, **options)  # type: ignore[call-arg]  # each listed sampler takes one


    def make_pruner(self) -> optuna.pruners.BasePruner:
        return PRUNERS[self.spec.pruner.type](**self.spec.pruner.options)


def load_sweep(path: str | Path, study_name: str | None = None) -> Sweep:
    """Read and check a sweep file; every error names the field and the reason, before any trial."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    return sweep_from_raw(raw, str(path), path.parent, default_name=path.stem.removesuffix(".sweep"),
                          study_name=study_name)


def sweep_from_raw(raw: dict[str, Any], source: str, folder: Path, default_name: str,
                   study_name: str | None = None) -> Sweep:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, SweepSpec)) from None
    base = _load_base(spec.experiment, source, folder)
    for path, value in spec.fixed.items():
        _check_owned(path, f"{source}: fixed")
        try:
            set_path(base, path, value)
        except ConfigError as error:
            raise ConfigError(f"{source}: fixed.{error}") from None
    name = study_name or spec.study_name or default_name
    _check_study_name(name)
    base_config = validate_config(base, f"{source}: experiment")
    sweep_root = Path(spec.root or Path(base_config.logging.root) / "sweeps")
    training = base_config.training
    seeds = ([training.seed + index for index in range(spec.seeds)] if isinstance(spec.seeds, int)
             else list(spec.seeds))
    if seeds[-1] > MAX_SEED:
        raise ConfigError(f"{source}: seeds: {spec.seeds} seeds from training.seed {training.seed} reach "
                          f"{seeds[-1]}; seeds must be <= {MAX_SEED} (numpy's seed range)")
    eval_every = training.eval_every if spec.eval_every is None else spec.eval_every
    sweep = Sweep(spec, base, source, name, sweep_root, seeds, spec.budget or training.total_timesteps, eval_every)
    _check_sweep(sweep, base_config)
    return sweep


def _load_base(experiment: str | dict[str, Any], source: str, folder: Path) -> dict[str, Any]:
    if isinstance(experiment, dict):
        return copy.deepcopy(experiment)
    try:
        return read_yaml_mapping(folder / experiment)
    except ConfigError as error:
        raise ConfigError(f"{source}: experiment: {error}") from None


def _check_study_name(name: str) -> None:
    if not re.match(STUDY_NAME_PATTERN, name):
        raise ConfigError(f"--study-name: {name!r} must match {STUDY_NAME_PATTERN} (it names the sweep folder)")


def _check_owned(path: str, where: str) -> None:
    if path in SWEEP_OWNED:
        raise ConfigError(f"{where}.{path}: set by the sweep ({SWEEP_OWNED[path]}), not a searchable or fixed field")


def _check_sweep(sweep: Sweep, base: ExperimentConfig) -> None:
    """Cross-field checks, then every probe value against the experiment schema."""
    spec, source = sweep.spec, sweep.source
    parameters = spec.parameters
    for index, (path, parameter) in enumerate(parameters.items()):
        _check_owned(path, f"{source}: parameters")
        if path in spec.fixed:
            raise ConfigError(f"{source}: parameters.{path}: also under fixed; a field is either searched or fixed")
        _check_env_config_key(path, base.env.id, f"{source}: parameters.{path}")
        earlier = list(parameters)[:index]
        for other, wanted in parameter.condition.items():
            where = f"{source}: parameters.{path}.condition.{other}"
            if other not in earlier:
                raise ConfigError(f"{where}: not a parameter declared before {path}; "
                                  f"allowed: {', '.join(earlier) or 'none (it is the first)'}")
            if not parameters[other].contains(wanted):
                raise ConfigError(f"{where}: {wanted!r} is never sampled (allowed: {_describe(parameters[other])})")
    for path, parameter in parameters.items():
        for value in parameter.probe_values():
            assignment = {**_satisfying(sweep, path), path: value}
            _validate_assignment(sweep, assignment, f"{source}: parameters.{path} = {value!r}")
    _check_objective(sweep, base)
    _check_sampler_and_pruner(sweep)
    for index, entry in enumerate(spec.enqueue):
        for path, value in entry.items():
            where = f"{source}: enqueue.{index}.{path}"
            if path not in parameters:
                raise ConfigError(f"{where}: not a parameter; allowed: {', '.join(parameters)}")
            if not parameters[path].contains(value):
                raise ConfigError(f"{where}: {value!r} is outside the search space ({_describe(parameters[path])})")
        _validate_assignment(sweep, {**_first_values(sweep), **entry}, f"{source}: enqueue.{index}")


def _first_values(sweep: Sweep) -> dict[str, Any]:
    """The first value of every parameter whose condition holds under the first values."""
    values: dict[str, Any] = {}
    for path, parameter in sweep.spec.parameters.items():
        if all(other in values and choice_label(values[other]) == choice_label(wanted)
               for other, wanted in parameter.condition.items()):
            values[path] = parameter.probe_values()[0]
    return values


def _satisfying(sweep: Sweep, path: str) -> dict[str, Any]:
    """First values, with the conditions of ``path`` (and of those they depend on) made true."""
    parameters = sweep.spec.parameters
    forced: dict[str, Any] = {}
    pending = [path]
    while pending:
        for other, wanted in parameters[pending.pop()].condition.items():
            forced[other] = wanted
            pending.append(other)
    values: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name == path:
            break
        if all(other in values and choice_label(values[other]) == choice_label(wanted)
               for other, wanted in parameter.condition.items()):
            values[name] = forced.get(name, parameter.probe_values()[0])
    return values


def _validate_assignment(sweep: Sweep, assignment: dict[str, Any], where: str) -> None:
    try:
        sweep.experiment(assignment, sweep.seeds[0], trial_name="trial_probe", source=where)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(where) else f"{where}: {message}") from None


def _check_env_config_key(path: str, env_id: str, where: str) -> None:
    """A parameter under ``env.config`` must name a key of the scenario (``check_env_config_keys``)."""
    keys = path.split(".")
    if keys[:2] != ["env", "config"] or len(keys) < 3:
        return
    try:
        check_env_config_keys(env_id, {keys[2]: None})
    except ConfigError as error:
        raise ConfigError(f"{where}: {str(error).partition(': ')[2]}") from None


def _check_objective(sweep: Sweep, base: ExperimentConfig) -> None:
    source = sweep.source
    scenario = get_scenario(base.env.id)
    for index, objective in enumerate(sweep.spec.objective):
        if objective.metric == "success_rate" and scenario.success_key is None:
            raise ConfigError(f"{source}: objective.{index}.metric: {base.env.id} reports no success; "
                              f"allowed: {', '.join(m for m in METRIC_DIRECTIONS if m != 'success_rate')}")
    if len(set(sweep.metrics)) != len(sweep.metrics):
        raise ConfigError(f"{source}: objective: a metric is listed twice ({', '.join(sweep.metrics)})")


def _check_sampler_and_pruner(sweep: Sweep) -> None:
    spec, source = sweep.spec, sweep.source
    sampler_cls, pruner_cls = SAMPLERS[spec.sampler.type], PRUNERS[spec.pruner.type]
    _check_options(sampler_cls, spec.sampler.options, f"{source}: sampler", reserved=("seed", "search_space"))
    _check_options(pruner_cls, spec.pruner.options, f"{source}: pruner", reserved=("args", "kwargs"))
    if sweep.multi_objective and spec.pruner.type != "none":
        raise ConfigError(f"{source}: pruner: {spec.pruner.type!r} cannot prune a multi-objective study "
                          "(optuna reports one value per step); allowed: none")
    if sweep.multi_objective and spec.sampler.type == "cmaes":
        raise ConfigError(f"{source}: sampler: cmaes is single-objective; allowed with several "
                          "objectives: tpe, random, gp, grid")
    if spec.pruner.type != "none" and not 0 < sweep.eval_every < sweep.budget:
        raise ConfigError(f"{source}: eval_every: pruner {spec.pruner.type!r} needs evaluations during "
                          f"training; eval_every must be between 1 and budget - 1 ({sweep.budget - 1}), "
                          f"got {sweep.eval_every}")
    conditional = [path for path, parameter in spec.parameters.items() if parameter.condition]
    if spec.sampler.type == "grid" and conditional:
        raise ConfigError(f"{source}: sampler: grid enumerates every combination, so the conditional "
                          f"{', '.join(conditional)} would repeat configurations; allowed with conditions: "
                          "tpe, random, cmaes, gp")
    if spec.sampler.type == "grid":
        counts = {path: parameter.grid_count() for path, parameter in spec.parameters.items()}
        if math.prod(counts.values()) > MAX_TRIALS:
            raise ConfigError(f"{source}: sampler: the grid has {math.prod(counts.values()):.3g} points "
                              f"({', '.join(f'{path}: {count:.3g}' for path, count in counts.items())}); at most "
                              f"{MAX_TRIALS} (use a larger step or fewer values)")
    try:
        if spec.sampler.type == "grid":
            sweep.grid_space()
        sweep.make_sampler()
        sweep.make_pruner()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {error}") from None


def _check_options(cls: type, options: dict[str, Any], where: str, reserved: tuple[str, ...]) -> None:
    """Each option a name of ``cls``'s signature, of its type and range (``OPTION_RULES``; else the
    annotation, else the default's type): optuna checks few, and a bad one failed a trial, not the sweep."""
    signature = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    accepted = [name for name in signature if name != "self" and name not in reserved]
    for key, value in options.items():
        if key not in accepted:
            raise ConfigError(f"{where}.{key}: {cls.__name__} has no such option; "
                              f"allowed: {', '.join(accepted) or 'none'}{did_you_mean(key, accepted)}")
        rule = _option_rule(signature[key])
        if not rule.accepts(value):
            raise ConfigError(f"{where}.{key}: must be {rule.allowed()} (got {value!r})")
    low, high = options.get("min_resource"), options.get("max_resource")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        raise ConfigError(f"{where}.max_resource: must be 'auto' or an int >= min_resource ({low}) (got {high})")


def _option_rule(parameter: inspect.Parameter) -> Rule:
    """The rule of one optuna option: by name, or by an ``int``/``float``/``bool`` annotation, or by its default."""
    rule = OPTION_RULES.get(parameter.name)
    annotation = parameter.annotation
    if rule is not None:
        # "auto" only where the signature takes a string (SuccessiveHalving's min_resource, not Hyperband's)
        return replace(rule, words=()) if annotation in (int, "int") else rule
    if annotation in (int, "int"):
        return Rule("int")
    if annotation in (float, "float"):
        return Rule("number")
    if annotation in (bool, "bool"):
        return Rule("bool")
    return rule_of_default(None if parameter.default is inspect.Parameter.empty else parameter.default)


def _describe(parameter: ParameterSpec) -> str:
    if parameter.choices is not None:
        return ", ".join(map(repr, parameter.choices))
    return f"{parameter.kind} in {parameter.float_range or parameter.int_range}"
