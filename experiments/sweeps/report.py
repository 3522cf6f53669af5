"""The sweep report: the best configuration, parameter importances and plots, in the sweep folder.

Files: ``best_config.yaml`` (single objective; ``pareto/trial_NNNN.yaml`` for each Pareto-optimal
trial of a multi-objective study), ``report.json``, ``optimization_history*.png`` and
``param_importances*.png``. A best configuration is the trial's full experiment, ready for
``neurodrive train``; its runs go to ``<root>/<study>_best/``.

A study whose finished trials all score the same is flagged (``warnings``): its "best" trial is
arbitrary and no parameter can be important, and the usual cause is a degenerate agent (one that
always takes the same action), which each run's ``eval.json`` shows in ``action_fractions``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from experiments.config import set_path, validate_config
from experiments.files import write_json_atomic
from experiments.sweeps.spec import Sweep
from experiments.sweeps.study import RUN_DIRS_ATTR, trial_folder_name


@dataclass
class BestTrial:
    number: int
    values: dict[str, float]
    params: dict[str, Any]
    run_dirs: list[str]
    config_path: str


@dataclass
class SweepReport:
    study_name: str
    states: dict[str, int]
    best: list[BestTrial] = field(default_factory=list)
    importances: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> parameter -> share
    notes: list[str] = field(default_factory=list)  # what could not be reported, and why
    warnings: list[str] = field(default_factory=list)  # what makes the results themselves doubtful
    plots: list[str] = field(default_factory=list)


def write_report(study: optuna.Study, sweep: Sweep) -> SweepReport:
    """Write every report file into the sweep folder and return what they hold."""
    folder = sweep.sweep_dir
    folder.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    states = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    report = SweepReport(sweep.study_name, {name: count for name, count in states.items() if count})
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    if not completed:
        report.notes.append("no completed trial yet: no best configuration, importances or plots")
    else:
        best_trials = study.best_trials if sweep.multi_objective else [study.best_trial]
        for trial in best_trials:
            path = (folder / "pareto" / f"{trial_folder_name(trial.number)}.yaml" if sweep.multi_objective
                    else folder / "best_config.yaml")
            write_best_config(sweep, trial, path)
            report.best.append(BestTrial(trial.number, dict(zip(sweep.metrics, trial.values, strict=True)),
                                         sweep.decode_params(trial.params),
                                         list(trial.user_attrs.get(RUN_DIRS_ATTR, [])), str(path)))
        for index, metric in enumerate(sweep.metrics):
            tie = tied_value(completed, index)
            if tie is not None:
                report.warnings.append(
                    f"all {len(completed)} finished trials have the same {metric} ({tie:.6g}): the agents may be "
                    "degenerate (one action?); check action_fractions and dominant_action in their runs' eval.json")
                report.notes.append(f"importance of {metric}: none, every finished trial has the same value")
                report.importances[metric] = {}
            else:
                report.importances[metric] = _importances(study, sweep, index, completed, report.notes)
        report.plots = [str(path) for path in _plot(study, sweep, report.importances)]
    write_json_atomic(folder / "report.json", asdict(report))
    return report


def tied_value(completed: list[FrozenTrial], index: int) -> float | None:
    """The value of objective ``index`` when at least two finished trials all share it, else None."""
    values = [trial.values[index] for trial in completed]
    if len(values) < 2:
        return None
    # Equal up to float rounding (the same episodes' returns summed in another order) is the same value.
    first = values[0]
    return first if all(math.isclose(value, first, rel_tol=1e-9, abs_tol=1e-12) for value in values) else None


def write_best_config(sweep: Sweep, trial: FrozenTrial, path: Path) -> None:
    """The trial's full experiment (first seed), with logging back on the base experiment's root."""
    raw = sweep.raw_experiment(sweep.decode_params(trial.params), sweep.seeds[0])
    set_path(raw, "logging.name", f"{sweep.study_name}_best")
    config = validate_config(raw, f"trial {trial.number}")
    values = ", ".join(f"{metric} {value:.4g}" for metric, value in zip(sweep.metrics, trial.values, strict=True))
    header = [
        f"# Trial {trial.number} of sweep {sweep.study_name}: {values}",
        f"# (mean over seeds {sweep.seeds}, {sweep.budget} env steps each; sweep file {sweep.source})",
        *(f"#   {name}: {value!r}" for name, value in sweep.decode_params(trial.params).items()),
        f"# Train it: neurodrive train {path}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    path.write_text("\n".join(header) + "\n" + body)


def _target(sweep: Sweep, index: int) -> Callable[[FrozenTrial], float] | None:
    return (lambda trial: trial.values[index]) if sweep.multi_objective else None


def _importances(study: optuna.Study, sweep: Sweep, index: int, completed: list[FrozenTrial],
                 notes: list[str]) -> dict[str, float]:
    metric = sweep.metrics[index]
    if len(completed) < 2:
        notes.append(f"importance of {metric}: needs at least 2 completed trials, the study has {len(completed)}")
        return {}
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=_target(sweep, index))
    except (ValueError, RuntimeError) as error:
        notes.append(f"importance of {metric}: not available ({error})")
        return {}
    if not importances:
        notes.append(f"importance of {metric}: no parameter was sampled in every completed trial")
    return {name: float(value) for name, value in importances.items()}


def _plot(study: optuna.Study, sweep: Sweep, importances: dict[str, dict[str, float]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    for index, metric in enumerate(sweep.metrics):
        suffix = f"_{metric}" if sweep.multi_objective else ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            axes = optuna_plots.plot_optimization_history(study, target=_target(sweep, index), target_name=metric)
            written.append(_save(plt, axes, sweep.sweep_dir / f"optimization_history{suffix}.png"))
            if importances.get(metric):
                axes = optuna_plots.plot_param_importances(
                    study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                    target=_target(sweep, index), target_name=metric)
                written.append(_save(plt, axes, sweep.sweep_dir / f"param_importances{suffix}.png"))
    return written


def _save(plt: Any, axes: Any, path: Path) -> Path:
    figure = axes.figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
