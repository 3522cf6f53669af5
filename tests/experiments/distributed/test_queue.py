"""The cross-machine queue on a journal file: each job enqueued once, a failed job enqueued again by the
next start, a study holding other work refused, and a worker that takes every waiting job."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments.distributed.heartbeat import HeartbeatSpec
from experiments.distributed.queue import WorkQueue, job_params
from experiments.distributed.storage import StorageTarget
from experiments.distributed.trials import WORKER_ATTR

JOBS = [{"name": "a", "seed": 0}, {"name": "b", "seed": 0}]


class Refused(Exception):
    pass


class Objective:
    """Runs job ``a``; job ``b`` crashes."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        trial.set_user_attr(WORKER_ATTR, self.worker_id)
        name = trial.suggest_categorical("name", ["a", "b"])
        trial.suggest_categorical("seed", [0])
        if name == "b":
            raise RuntimeError("b crashed")
        return 1.0


def make_queue(tmp_path: Path) -> WorkQueue:
    return WorkQueue(StorageTarget(journal=tmp_path / "study.journal"), "q", HeartbeatSpec(), tmp_path)


def fill(queue: WorkQueue, fingerprint: str = "v1") -> optuna.Study:
    return queue.fill(JOBS, "work", fingerprint, lambda saved: Refused(f"holds {saved}"))


def states(study: optuna.Study) -> list[tuple[str, TrialState]]:
    return [(job_params(trial)["name"], trial.state) for trial in study.get_trials(deepcopy=False)]


def test_each_job_is_enqueued_once_and_a_failed_one_again_by_the_next_start(tmp_path: Path) -> None:
    queue = make_queue(tmp_path)
    fill(queue)
    study = fill(queue)  # a second machine joining: nothing enqueued twice
    assert states(study) == [("a", TrialState.WAITING), ("b", TrialState.WAITING)]
    queue.work(Objective)
    assert states(study) == [("a", TrialState.COMPLETE), ("b", TrialState.FAIL)]
    assert not list((tmp_path / "workers").iterdir())  # the worker's lease is released
    study = fill(queue)  # rerunning the command retries the failed job only
    assert states(study) == [("a", TrialState.COMPLETE), ("b", TrialState.FAIL), ("b", TrialState.WAITING)]


def test_a_study_holding_other_work_is_refused(tmp_path: Path) -> None:
    queue = make_queue(tmp_path)
    fill(queue)
    with pytest.raises(Refused, match="holds v1"):
        fill(queue, fingerprint="v2")
