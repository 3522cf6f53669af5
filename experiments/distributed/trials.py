"""A worker's loop over a study, and how a dead or interrupted worker's trial is found and retried.

A worker killed mid-trial (``kill -9``) leaves a RUNNING trial. On an RDB storage Optuna's heartbeat
finds it (no heartbeat for ``grace_period`` seconds). Optuna 5's ``JournalStorage`` has no heartbeat,
so each journal worker holds an ``flock`` on ``workers/<id>.lock`` for its lifetime and stamps its
trials with that id; the kernel drops the lock when the process dies, however it dies, so a RUNNING
trial whose worker's lock is free belongs to a dead worker. Either way the trial is marked FAIL and
re-queued with the same parameters by Optuna's ``RetryHeartbeatStaleTrialCallback``.

A trial stopped by Ctrl-C carries ``INTERRUPTED_ATTR`` (set by the objective); the worker loop
re-queues it, so running the same command again resumes it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from experiments.distributed.heartbeat import HeartbeatSpec
from experiments.distributed.storage import StorageTarget

logger = logging.getLogger("neurodrive.distributed")

WORKER_ATTR = "worker"  # trial user attribute: the id of the worker process running it
INTERRUPTED_ATTR = "interrupted"  # trial user attribute: stopped by Ctrl-C, failed and re-queued


class TrialObjective(Protocol):
    """An objective the worker loop runs: it records the trial it is on, to re-queue it after Ctrl-C."""

    current: int | None

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]: ...


class WorkerLease:
    """An ``flock`` held on ``<folder>/workers/<id>.lock`` while this worker process lives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "workers"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.folder / f"{self.worker_id}.lock"
        self._handle: IO[str] | None = self.path.open("w")
        fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None
            self.path.unlink(missing_ok=True)

    @staticmethod
    def is_alive(folder: Path, worker_id: str) -> bool:
        """Whether the worker still holds its lock (a missing lock file: it is gone)."""
        path = folder / "workers" / f"{worker_id}.lock"
        try:
            handle = path.open("r")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        path.unlink(missing_ok=True)
        return False


@contextmanager
def worker_identity(target: StorageTarget, folder: Path) -> Iterator[str]:
    """This worker's id, which it stamps on its trials; on a journal storage held as a ``WorkerLease``
    in ``folder`` while the worker lives (an RDB storage has the heartbeat instead)."""
    if not target.is_journal:
        yield f"{socket.gethostname()}-{os.getpid()}"
        return
    lease = WorkerLease(folder)
    try:
        yield lease.worker_id
    finally:
        lease.release()


def fail_dead_trials(study: optuna.Study, target: StorageTarget, folder: Path,
                     heartbeat: HeartbeatSpec) -> list[int]:
    """Mark the RUNNING trials of dead workers FAIL and re-queue them; returns their numbers.

    :param folder: where journal workers hold their leases (``worker_identity``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if not target.is_journal:
            running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            optuna.storages.fail_stale_trials(study)  # the storage's callback re-queues them
            failed_trials = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            return sorted(t.number for t in failed_trials if t.number in running)

        # Optuna offers no public call to fail another worker's trial; fail_stale_trials does the same.
        retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)
        failed = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker_id = trial.user_attrs.get(WORKER_ATTR)
            if worker_id is None:
                # Created a moment ago, its objective not yet started; or its worker died right then.
                started = trial.datetime_start or datetime.now()
                if (datetime.now() - started).total_seconds() < heartbeat.grace_period:
                    continue
            elif WorkerLease.is_alive(folder, worker_id):
                continue
            try:
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                continue  # another worker failed it first, and re-queued it
            retry(study, study._storage.get_trial(trial._trial_id))
            failed.append(trial.number)
        return failed


def requeue_interrupted(study: optuna.Study, number: int | None, max_retry: int) -> None:
    """Queue an interrupted trial's parameters again (its ``INTERRUPTED_ATTR`` is True), so resuming
    the study runs it; ``number`` None: nothing was running."""
    if number is None:
        return
    trial = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
    if trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR) is True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, trial)


def run_trials(study: optuna.Study, objective: TrialObjective, target: StorageTarget, folder: Path,
               heartbeat: HeartbeatSpec, wants_trial: Callable[[list[FrozenTrial]], bool]) -> None:
    """The worker loop: run one trial at a time while ``wants_trial(trials)``; then, while other
    workers run the last ones, wait, so this one can take over a trial whose worker dies; return when
    none is left running.

    Each round first fails (and re-queues) dead workers' trials. A crashed trial is recorded and the
    loop goes on; Ctrl-C re-queues the trial it interrupted and propagates.
    """
    poll_s = min(heartbeat.interval, 5)
    while True:
        for number in fail_dead_trials(study, target, folder, heartbeat):
            logger.warning("trial %d: its worker died; marked failed and re-queued", number)
        trials = study.get_trials(deepcopy=False)
        if wants_trial(trials):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)  # enqueued trials' fixed params
                    study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
            except KeyboardInterrupt:
                requeue_interrupted(study, objective.current, heartbeat.max_retry)
                raise
        elif any(trial.state == TrialState.RUNNING for trial in trials):
            time.sleep(poll_s)
        else:
            return
