"""A trial created after other workers met the study's budget is not a failure: recorded PRUNED and skipped,
untrained, with no traceback, and never counted."""

import logging

import optuna
import yaml
from optuna.trial import TrialState

from experiments.distributed.heartbeat import HeartbeatSpec
from experiments.distributed.storage import StorageTarget
from experiments.distributed.trials import run_trials
from experiments.sweeps.spec import sweep_from_raw
from experiments.sweeps.study import SKIPPED_ATTR, TrialObjective, budget_used
from tests_support import EXPERIMENTS

SPACE = """
parameters:
  agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}
"""


def test_a_trial_past_the_budget_is_pruned_not_failed_and_leaves_no_traceback(tmp_path, caplog):
    raw = {"experiment": str(EXPERIMENTS / "smoke.yaml"), "root": str(tmp_path), "eval_every": 150,
           **yaml.safe_load(SPACE)}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    target = StorageTarget(journal=tmp_path / "study.journal")
    study = optuna.create_study(study_name="s", storage=target.open(), direction="maximize")
    other = study.ask()  # another worker's trial 0, running: the whole budget of one trial
    study.tell(other, 1.0)
    # This worker decided to take a trial a moment before the other one's was made: the race, made certain.
    objective = TrialObjective(sweep, n_trials=1, worker_id="late", command=[])
    with caplog.at_level(logging.INFO, logger="optuna"):
        run_trials(study, objective, target, tmp_path, HeartbeatSpec(), wants_trial=lambda trials: len(trials) < 2)
    late = study.trials[1]
    assert late.state == TrialState.PRUNED
    assert "budget of 1 trials" in late.user_attrs[SKIPPED_ATTR] and "error" not in late.user_attrs
    assert late.params == {}  # nothing was sampled: it informs no sampler
    assert not (tmp_path / "s").exists()  # no run folder
    assert budget_used(study.trials) == 1
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not any(record.exc_info or "Traceback" in record.getMessage() for record in caplog.records)


def test_a_skipped_trial_is_never_counted_whatever_its_state():
    study = optuna.create_study()
    for state in (TrialState.PRUNED, TrialState.FAIL):
        trial = study.ask()
        trial.set_user_attr(SKIPPED_ATTR, "the budget of 1 trials was met by other workers")
        study.tell(trial, state=state)
    study.tell(study.ask(), 1.0)
    assert budget_used(study.trials) == 1
