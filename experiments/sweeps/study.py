"""Running a study: one trial's objective, pruning from inside training, and the worker loop.

A trial trains one run per seed, each an ordinary run folder
``<sweep folder>/trial_0007/<timestamp>-seed<seed>/``; the study records them in the trial's
``run_dirs`` user attribute. The objective is each metric of the run's final evaluation
(``eval.json``), averaged over the seeds.

Pruning with several seeds: the seeds train one after another, and every evaluation is reported at
the nominal step ``seed_index * budget + k * eval_every`` (``budget`` for a seed's final
evaluation). A step therefore means the same seed at the same point of training in every trial, so
the pruner compares like with like, and the step counts the env steps the trial has used, the
resource that successive halving and Hyperband budget. Nominal steps (not the exact
``num_timesteps``) line up trials whose ``n_envs`` or rollout length differ. A trial is pruned
during any seed's training, or between seeds; never at the last seed's final evaluation.

``--n-trials`` is the study's total: finished, pruned, running and crashed trials count; a trial
failed because its worker died or was interrupted (and so re-queued), or one created after other
workers had already met the budget (recorded PRUNED and never trained: no failure), does not.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from experiments.config import ConfigError
from experiments.dashboards import refresh_runs_hparams
from experiments.distributed.storage import StorageTarget
from experiments.distributed.trials import INTERRUPTED_ATTR, WORKER_ATTR, run_trials, worker_identity
from experiments.files import write_json_atomic
from experiments.runs.errors import RunInterrupted
from experiments.runs.folder import RunFolder
from experiments.sweeps.spec import Sweep, choice_label

logger = logging.getLogger("neurodrive.sweep")

RUN_DIRS_ATTR = "run_dirs"
SEED_VALUES_ATTR = "seed_values"
SKIPPED_ATTR = "skipped"  # a trial created after other workers had met the budget; never trained
ERROR_ATTR = "error"  # why a trial crashed, for the dashboard
FINGERPRINT_ATTR = "neurodrive:sweep"  # what a resumed study must share with the first run
TRIAL_COLUMN = "trial"  # each trial's runs carry its number in their HParams record


def trial_folder_name(number: int) -> str:
    return f"trial_{number:04d}"


class BudgetReached(optuna.TrialPruned):
    """Other workers took the study's last trials while this one was being created.

    A ``TrialPruned``: Optuna records the trial PRUNED, without a traceback, never as a crash; its
    ``SKIPPED_ATTR`` keeps it out of the budget, and having no parameters it informs no sampler's model.
    """


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Trials that were re-queued (their retries carry Optuna's ``retry_history``)."""
    return {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}


def counts_toward_budget(trial: FrozenTrial, retried: set[int]) -> bool:
    if trial.state == TrialState.WAITING or trial.user_attrs.get(SKIPPED_ATTR):
        return False
    if trial.state == TrialState.FAIL:
        return not (trial.number in retried or trial.user_attrs.get(INTERRUPTED_ATTR) is True)
    return True


def budget_used(trials: Sequence[FrozenTrial]) -> int:
    retried = retried_numbers(trials)
    return sum(counts_toward_budget(trial, retried) for trial in trials)


class PruningHook:
    """An evaluation hook: reports each evaluation to the trial; returns False when it is pruned."""

    def __init__(self, trial: optuna.Trial, sweep: Sweep, seed_index: int) -> None:
        self.trial = trial
        self.metric = sweep.metrics[0]
        self.budget = sweep.budget
        self.eval_every = sweep.eval_every
        self.offset = seed_index * sweep.budget
        self.reported: set[int] = set()
        self.stopped_at: int | None = None  # env step at which the pruner stopped the run

    def nominal_step(self, step: int) -> int:
        if self.eval_every == 0 or step >= self.budget:
            return self.offset + self.budget
        return self.offset + step // self.eval_every * self.eval_every

    def __call__(self, record: dict[str, Any]) -> bool | None:
        value = record.get(self.metric)
        step = self.nominal_step(int(record["step"]))
        if value is None or step in self.reported:
            return None
        self.trial.report(float(value), step)
        self.reported.add(step)
        if record["step"] < self.budget and self.trial.should_prune():
            self.stopped_at = int(record["step"])
            return False
        return None


class TrialObjective:
    """Train every seed of one trial and return the objective (mean over seeds)."""

    def __init__(self, sweep: Sweep, n_trials: int, worker_id: str, command: Sequence[str]) -> None:
        self.sweep = sweep
        self.n_trials = n_trials
        self.worker_id = worker_id
        self.command = list(command)
        self.current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.current = trial.number
        trial.set_user_attr(WORKER_ATTR, self.worker_id)
        self._check_budget(trial)
        # A re-queued trial inherits the attributes of the attempt that died; start clean.
        trial.set_user_attr(RUN_DIRS_ATTR, [])
        if INTERRUPTED_ATTR in trial.user_attrs:
            trial.set_user_attr(INTERRUPTED_ATTR, False)
        try:
            return self._train_seeds(trial)
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        except RunInterrupted as stop:
            # The run saved a checkpoint and stopped on SIGINT/SIGTERM. It is an Exception, which the
            # worker's optimize() would record as a crashed trial and go on; stop the worker instead.
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise KeyboardInterrupt(str(stop)) from stop
        except optuna.TrialPruned:
            raise  # an Exception too, but no crash: the pruner stopped the trial
        except Exception as error:  # a crashed trial (NaN guard, bad combination): say why in the study
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}")
            raise

    def _check_budget(self, trial: optuna.Trial) -> None:
        """Trial numbers order the study: the first ``n_trials`` counted trials run, later ones not."""
        trials = trial.study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        ahead = sum(counts_toward_budget(other, retried) for other in trials if other.number < trial.number)
        if ahead >= self.n_trials:
            trial.set_user_attr(SKIPPED_ATTR, f"the budget of {self.n_trials} trials was met by other workers")
            raise BudgetReached(f"trial {trial.number} not run: {self.n_trials} trials already taken")

    def _train_seeds(self, trial: optuna.Trial) -> float | list[float]:
        from experiments.runs.session import train

        sweep = self.sweep
        params = sweep.sample(trial)
        name = trial_folder_name(trial.number)
        run_dirs: list[str] = []
        finals: list[dict[str, Any]] = []
        for index, seed in enumerate(sweep.seeds):
            config = sweep.experiment(params, seed, name, source=f"trial {trial.number}")
            hooks = [] if sweep.multi_objective else [PruningHook(trial, sweep, index)]
            run_dir = train(config, command=self.command, evaluation_hooks=hooks, group={TRIAL_COLUMN: trial.number})
            run_dirs.append(str(run_dir.resolve()))
            trial.set_user_attr(RUN_DIRS_ATTR, run_dirs)
            if hooks and hooks[0].stopped_at is not None:
                raise optuna.TrialPruned(f"stopped at step {hooks[0].stopped_at} of seed {seed} ({run_dir})")
            finals.append(read_final_evaluation(run_dir))
            last_seed = index == len(sweep.seeds) - 1
            if hooks and not last_seed and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after seed {seed}")
        values = []
        for metric in sweep.metrics:
            per_seed = [final.get(metric) for final in finals]
            if any(value is None for value in per_seed):
                raise ValueError(f"objective: the runs of trial {trial.number} report no {metric}")
            values.append(float(np.mean([final[metric] for final in finals])))
        trial.set_user_attr(SEED_VALUES_ATTR, {m: [final[m] for final in finals] for m in sweep.metrics})
        return values[0] if len(values) == 1 else values


def write_sweep_hparams(sweep_dir: Path) -> None:
    """The sweep's one TensorBoard HParams summary at its folder: the union of its trials' keys (their
    runs' own records, each with its ``trial`` number), so a key that only some trials have still shows."""
    refresh_runs_hparams(sweep_dir, {tb: {} for tb in sorted(sweep_dir.glob("trial_*/*/tb"))}, first=(TRIAL_COLUMN,))


def read_final_evaluation(run_dir: Path) -> dict[str, Any]:
    return RunFolder(run_dir).read_evaluations()["final"]


def prepare_study(sweep: Sweep, target: StorageTarget) -> optuna.Study:
    """Create the study, or load it to resume; a resumed study must match this sweep.

    Workers launched together all get here at once: under the storage's set-up lock one at a time
    creates the tables, the study, its fingerprint and its enqueued trials, and the others find them
    (unlocked, ``create_study(load_if_exists=True)`` and ``skip_if_exists`` race, and fail or duplicate).
    """
    with target.setup_lock():
        storage = target.open(sweep.spec.heartbeat)
        study = optuna.create_study(study_name=sweep.study_name, storage=storage,
                                    directions=sweep.directions,  # type: ignore[arg-type]  # maximize or minimize

                                    load_if_exists=True)
        fingerprint = sweep.fingerprint()
        saved = study.user_attrs.get(FINGERPRINT_ATTR)
        if saved is None:
            study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
            study.set_user_attr("objective", dict(zip(sweep.metrics, sweep.directions, strict=True)))
        elif saved != fingerprint:
            changed = sorted(key for key in fingerprint if saved.get(key) != fingerprint[key])
            raise ConfigError(
                f"--study-name: study {sweep.study_name!r} in {target.describe()} was created with a different "
                f"{', '.join(changed)}; a resumed study must keep them (its trials would not be comparable). "
                "Pass another --study-name to start a new study."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            for entry in sweep.spec.enqueue:
                study.enqueue_trial({path: choice_label(value) for path, value in entry.items()},
                                    skip_if_exists=True)
    sweep.sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep.sweep_dir / "sweep.json", {
        "study_name": sweep.study_name,
        "storage": "journal" if target.is_journal else target.describe(),
        "journal": target.journal.name if target.journal else None,
        "sweep_file": sweep.source,
        "sweep": {**sweep.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
                  "experiment": sweep.base, "fixed": {}},
    })
    return study


def run_worker(sweep: Sweep, target: StorageTarget, n_trials: int, worker_index: int = 0,
               command: Sequence[str] = ()) -> None:
    """Run trials until the study holds ``n_trials`` counted trials and none is still running.

    While others run the last trials this worker waits, so it can take over one whose worker dies.
    """
    storage = target.open(sweep.spec.heartbeat)
    with worker_identity(target, sweep.sweep_dir) as worker_id:
        existing = len(optuna.load_study(study_name=sweep.study_name, storage=storage).trials)
        # Mixed into a fixed sampler seed: a resumed or parallel worker must not replay the same draws.
        entropy = (existing, worker_index) if target.is_journal else (existing, worker_index, os.getpid())
        study = optuna.load_study(study_name=sweep.study_name, storage=storage,
                                  sampler=sweep.make_sampler(entropy), pruner=sweep.make_pruner())
        run_trials(study, TrialObjective(sweep, n_trials, worker_id, command), target, sweep.sweep_dir,
                   sweep.spec.heartbeat, wants_trial=lambda trials: budget_used(trials) < n_trials)
