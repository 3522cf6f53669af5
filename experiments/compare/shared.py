"""A comparison grid shared through a database (``--storage URL``): the grid's cells as the jobs of
an ``experiments.distributed.queue.WorkQueue``, pulled by ``neurodrive compare`` started on as many
machines as there are.

- The study (``compare-<name>``, or ``--study-name``) holds the grid's fingerprint (a digest of every
  cell's experiment, and the conditions with their evaluation settings) and one enqueued trial per
  cell, whose params are ``variant``, ``scenario`` and ``seed``. A later start enqueues again each cell
  with no trial waiting, running or complete: rerunning the command retries failed cells.
- A trial whose worker stays silent for ``heartbeat.grace_period`` seconds (killed, machine gone) is
  failed and re-queued with the same cell (up to ``heartbeat.max_retry`` times), as the sweeps' are.
  Ctrl-C re-queues the interrupted cell.
- A cell is an ordinary run folder under this machine's root, brought up to date by ``run_cell`` as
  without a storage: retried on the machine that began it, it resumes from its checkpoint; elsewhere
  it trains from scratch. Its results (each condition's record and the training curve) go into the
  trial, so a report gathers every machine's cells from the study alone.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from experiments.compare.runner import (
    cell_records,
    is_current,
    result_rows,
    run_cell,
    training_curve,
    warn_missing,
    write_grid_hparams,
)
from experiments.compare.spec import Cell, Comparison
from experiments.config import ConfigError
from experiments.dashboards import refresh_grid_layout
from experiments.distributed.queue import NothingWaiting, WorkQueue, job_params
from experiments.distributed.storage import StorageTarget
from experiments.distributed.trials import INTERRUPTED_ATTR, WORKER_ATTR
from experiments.runs.errors import RunInterrupted
from experiments.workers import Job, JobResult, run_jobs

logger = logging.getLogger("neurodrive.compare")

STUDY_PREFIX = "compare-"
FINGERPRINT_ATTR = "neurodrive:compare"  # what every worker's comparison file must share with the study
RESULTS_ATTR = "results"  # condition -> its compare-<condition>.json record
CURVE_ATTR = "curve"  # [step, mean_return] of each training-time evaluation
RUN_DIR_ATTR = "run_dir"  # host:path of the cell's run folder
ERROR_ATTR = "error"
SKIPPED_ATTR = "skipped"  # asked for a cell when other workers had just taken the last one


def default_study_name(comparison: Comparison) -> str:
    return STUDY_PREFIX + comparison.name


def trial_cell(trial: FrozenTrial) -> Cell | None:
    """The cell a trial runs (its params, or the params it was enqueued with)."""
    params = job_params(trial)
    try:
        return Cell(str(params["variant"]), str(params["scenario"]), int(params["seed"]))
    except KeyError:
        return None  # a trial that found no cell waiting


def grid_queue(comparison: Comparison, target: StorageTarget, study_name: str) -> WorkQueue:
    return WorkQueue(target, study_name, comparison.spec.heartbeat, comparison.folder)


def prepare_grid_study(comparison: Comparison, target: StorageTarget, study_name: str) -> Study:
    """Create the study or join it, and enqueue each cell that has no trial waiting, running or complete."""
    expected = comparison.fingerprint()

    def mismatch(saved: dict[str, Any]) -> ConfigError:
        return ConfigError(f"--study-name: study {study_name!r} in {target.describe()} holds another grid "
                           f"({_grid_changes(saved, expected)}); its cells would not be comparable. Pass another "
                           "--study-name, or delete that study (optuna delete-study) to start again.")

    cells = [{"variant": cell.variant, "scenario": cell.scenario, "seed": cell.seed} for cell in comparison.cells()]
    return grid_queue(comparison, target, study_name).fill(
        cells, FINGERPRINT_ATTR, expected, mismatch,
        study_attrs={"objective": f"mean_return under {next(iter(comparison.conditions))}"})


def _grid_changes(saved: dict[str, Any], expected: dict[str, Any]) -> str:
    changes = []
    for key in ("cells", "conditions"):
        old, new = saved.get(key, {}), expected[key]
        changes += [f"{key} {name} added" for name in new if name not in old]
        changes += [f"{key} {name} removed" for name in old if name not in new]
        changes += [f"{key} {name} changed" for name in new if name in old and old[name] != new[name]]
    return ", ".join(changes[:6]) + (", ..." if len(changes) > 6 else "")


class CellObjective:
    """Bring the trial's cell up to date (``run_cell``) and save its results in the trial."""

    def __init__(self, comparison: Comparison, worker_id: str, command: Sequence[str]) -> None:
        self.comparison = comparison
        self.worker_id = worker_id
        self.command = list(command)
        self.current: int | None = None  # the trial being run, for re-queueing it after Ctrl-C

    def __call__(self, trial: optuna.Trial) -> float:
        comparison = self.comparison
        self.current = trial.number
        trial.set_user_attr(WORKER_ATTR, self.worker_id)
        try:
            cell = Cell(trial.suggest_categorical("variant", list(comparison.variants)),
                        trial.suggest_categorical("scenario", comparison.scenarios),
                        trial.suggest_categorical("seed", comparison.seeds))
        except NothingWaiting as empty:
            trial.set_user_attr(SKIPPED_ATTR, str(empty))
            raise optuna.TrialPruned(str(empty)) from None
        if trial.user_attrs.get(INTERRUPTED_ATTR):
            trial.set_user_attr(INTERRUPTED_ATTR, False)  # a re-queued trial may inherit it
        logger.info("trial %d: %s on %s", trial.number, cell.label, self.worker_id)
        try:
            run_dir = run_cell(comparison, cell, self.command)
        except RunInterrupted as stop:  # a checkpoint was saved: stop this worker, re-queue the cell
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise KeyboardInterrupt(str(stop)) from stop
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        except Exception as error:  # a crashed cell: recorded, and the worker goes on with the next one
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}")
            raise
        records = cell_records(comparison, run_dir)
        trial.set_user_attr(RESULTS_ATTR, records)
        trial.set_user_attr(CURVE_ATTR, training_curve(run_dir))
        trial.set_user_attr(RUN_DIR_ATTR, f"{socket.gethostname()}:{run_dir.resolve()}")
        return float(records[next(iter(comparison.conditions))]["summary"]["mean_return"])


def run_shared_worker(comparison: Comparison, target: StorageTarget, study_name: str,
                      command: Sequence[str] = ()) -> None:
    """Take waiting cells until none is waiting or running (waiting on the last ones, to take over a
    dead worker's)."""
    grid_queue(comparison, target, study_name).work(lambda worker_id: CellObjective(comparison, worker_id, command))


@dataclass
class SharedOutcome:
    """Where the shared grid stands once this machine's workers stop."""

    complete: list[Cell] = field(default_factory=list)
    failed: dict[Cell, str] = field(default_factory=dict)  # cells with no complete trial, and why
    by_this_machine: int = 0


def run_shared_grid(comparison: Comparison, target: StorageTarget, study_name: str, workers: int = 1,
                    command: Sequence[str] = (), say: Callable[[str], None] = print) -> SharedOutcome:
    """Join (or create) the grid's study and run ``workers`` workers here until the queue is empty."""
    from experiments.compare.runner import plan_cells

    plan_cells(comparison)  # this machine's cell folders must match the file before any work
    study = prepare_grid_study(comparison, target, study_name)
    states = _cell_states(study, comparison)
    say(f"comparison {comparison.name}: {len(states)} cells in study {study_name} on {target.describe()} "
        f"({', '.join(f'{n} {s}' for s, n in Counter(states.values()).items())}); {workers} worker(s) here; "
        f"folder {comparison.folder}")
    host = socket.gethostname()
    if workers == 1:
        run_shared_worker(comparison, target, study_name, command)
    else:  # each saves a checkpoint and re-queues its cell on Ctrl-C; its cells outlive a failed worker
        run_jobs([Job(f"compare-worker-{index}", run_shared_worker, (comparison, target, study_name, list(command)))
                  for index in range(workers)], workers, on_exit=_log_failure)
    outcome = SharedOutcome()
    trials = study.get_trials(deepcopy=False)
    for cell in comparison.cells():
        mine = [trial for trial in trials if trial_cell(trial) == cell]
        complete = [trial for trial in mine if trial.state == TrialState.COMPLETE]
        if complete:
            outcome.complete.append(cell)
            outcome.by_this_machine += str(complete[-1].user_attrs.get(RUN_DIR_ATTR, "")).startswith(f"{host}:")
        else:
            errors = [trial.user_attrs.get(ERROR_ATTR) for trial in mine if trial.user_attrs.get(ERROR_ATTR)]
            outcome.failed[cell] = str(errors[-1]) if errors else "not run"

    say(f"study {study_name}: {len(outcome.complete)} of {len(states)} cells complete "
        f"({outcome.by_this_machine} on this machine)")
    write_grid_hparams(comparison)  # TensorBoard's HParams tab: every cell's keys and its variant
    refresh_grid_layout(comparison.folder, list(comparison.variants))
    return outcome


def _log_failure(result: JobResult) -> None:
    if not result.ok:
        logger.error("%s failed (%s)", result.job.name, result.reason())


def _cell_states(study: Study, comparison: Comparison) -> dict[Cell, str]:
    """Each cell's furthest state: complete, running, waiting, or failed."""
    rank = {TrialState.COMPLETE: 3, TrialState.RUNNING: 2, TrialState.WAITING: 1}
    states: dict[Cell, str] = {cell: "failed" for cell in comparison.cells()}
    best: dict[Cell, int] = {}
    for trial in study.get_trials(deepcopy=False):
        cell = trial_cell(trial)
        if cell in states and rank.get(trial.state, 0) > best.get(cell, 0):
            best[cell] = rank[trial.state]
            states[cell] = trial.state.name.lower()
    return states


def load_grid_study(comparison: Comparison, target: StorageTarget, study_name: str) -> Study:
    """The grid's existing study (``--report-only``); a missing one is a ConfigError."""
    try:
        return optuna.load_study(study_name=study_name, storage=target.open(comparison.spec.heartbeat))
    except KeyError:
        raise ConfigError(f"--study-name: no study {study_name!r} in {target.describe()}; "
                          "run the comparison with --storage first") from None


def collect_study_results(comparison: Comparison, study: Study) -> list[dict[str, Any]]:
    """One row per cell and condition from the study's complete trials, whichever machine ran them
    (a cell run twice: its latest trial)."""
    latest: dict[Cell, FrozenTrial] = {}
    for done in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cell = trial_cell(done)
        if cell is not None:
            latest[cell] = done  # trials come in creation order
    rows, missing = [], []
    for cell in comparison.cells():
        trial = latest.get(cell)
        saved = trial.user_attrs.get(RESULTS_ATTR, {}) if trial else {}
        records = {condition: saved[condition] for condition in comparison.conditions
                   if is_current(comparison, condition, saved.get(condition))}
        missing += [f"{cell.label}:{condition}" for condition in comparison.conditions if condition not in records]
        if trial is not None:
            rows += result_rows(cell, records, trial.user_attrs.get(CURVE_ATTR, []),
                                str(trial.user_attrs.get(RUN_DIR_ATTR, "")))
    warn_missing(missing, len(missing) + len(rows))
    return rows
