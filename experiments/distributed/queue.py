"""A queue of jobs in an Optuna study, pulled by workers started on as many machines as there are.

A job is a fixed set of parameters (a comparison's cell: ``variant``, ``scenario``, ``seed``), enqueued
as one trial. ``WorkQueue.fill`` creates the study or joins it under the storage's set-up lock, one
starting worker at a time: it checks that the study holds the same work (a fingerprint saved with it)
and enqueues each job that has no trial waiting, running or complete, so running the command again
retries failed jobs. ``WorkQueue.work`` takes waiting trials until none is left waiting or running
(``experiments.distributed.trials.run_trials``: a dead worker's trial is failed and re-queued, an
interrupted one re-queued). The ``QueueSampler`` samples nothing: a trial runs the job it was
enqueued with, and one that finds none waiting (other workers took the last) raises ``NothingWaiting``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from experiments.distributed.heartbeat import HeartbeatSpec
from experiments.distributed.storage import StorageTarget
from experiments.distributed.trials import TrialObjective, run_trials, worker_identity

LIVE_STATES = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)


class NothingWaiting(Exception):
    """Other workers took the last waiting jobs while this one asked for a trial."""


class QueueSampler(BaseSampler):
    """Samples nothing: a trial runs the job it was enqueued with, or none."""

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        raise NothingWaiting(f"trial {trial.number}: no job left in the queue")


def job_params(trial: FrozenTrial) -> dict[str, Any]:
    """The job a trial runs: its params, or the params it was enqueued with (empty: it found none)."""
    return dict(trial.params or trial.system_attrs.get("fixed_params") or {})


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


@dataclass(frozen=True)
class WorkQueue:
    """The study ``study_name`` in ``target`` as a queue of jobs.

    :param folder: this machine's folder for the work; journal workers hold their leases there.
    """

    target: StorageTarget
    study_name: str
    heartbeat: HeartbeatSpec
    folder: Path

    def fill(self, jobs: Sequence[Mapping[str, Any]], fingerprint_attr: str, fingerprint: Any,
             mismatch: Callable[[Any], Exception], study_attrs: Mapping[str, Any] | None = None) -> Study:
        """Create the study or join it, and enqueue each job with no trial waiting, running or complete.

        :param fingerprint: what defines the work, saved with a new study under ``fingerprint_attr``; a
            study that holds another raises ``mismatch(saved)``.
        :param study_attrs: further user attributes of a new study.
        """
        with self.target.setup_lock():
            # The direction orders nothing here (every job runs); a comparison's value is its mean return.
            study = optuna.create_study(study_name=self.study_name, storage=self.target.open(self.heartbeat),
                                        direction="maximize", load_if_exists=True)
            saved = study.user_attrs.get(fingerprint_attr)
            if saved is None:
                study.set_user_attr(fingerprint_attr, fingerprint)
                for name, value in (study_attrs or {}).items():
                    study.set_user_attr(name, value)
            elif saved != fingerprint:
                raise mismatch(saved)
            queued = {_key(job_params(trial)) for trial in study.get_trials(deepcopy=False, states=LIVE_STATES)}
            for job in jobs:
                if _key(job) not in queued:
                    study.enqueue_trial(dict(job))
        return study

    def work(self, make_objective: Callable[[str], TrialObjective]) -> None:
        """Take waiting jobs until none is waiting or running (waiting on the last ones, to take over a
        dead worker's); ``make_objective(worker_id)`` runs each."""
        study = optuna.load_study(study_name=self.study_name, storage=self.target.open(self.heartbeat),
                                  sampler=QueueSampler())
        with worker_identity(self.target, self.folder) as worker_id:
            run_trials(study, make_objective(worker_id), self.target, self.folder, self.heartbeat,
                       wants_trial=lambda trials: any(trial.state == TrialState.WAITING for trial in trials))
