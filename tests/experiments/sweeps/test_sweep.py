"""`neurodrive sweep` and `neurodrive dashboard`: Optuna studies over experiment fields.

Checked against what the runs wrote themselves (eval.json, run.json), not against the sweep's own
bookkeeping: objective = mean of the runs' final evaluations, pruning stops a run early, a resumed
study keeps its trials, a killed worker's trial is retried once, passwords never reach a file,
workers launched together on an empty database all run.
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.metadata import EXPERIMENT_TAG, parse_experiment_plugin_data

from agents.registry import get_algorithm
from experiments.config import ConfigError, load_config
from experiments.dashboards import read_session_hparams
from experiments.distributed.storage import StorageTarget, mask_argv, mask_url
from experiments.runs.session import train
from experiments.sweeps.command import add_sweep_commands, dashboard_command, print_report, run_sweep, sweep_command
from experiments.sweeps.report import write_report
from experiments.sweeps.spec import Sweep, load_sweep, sweep_from_raw
from experiments.sweeps.study import BudgetReached, PruningHook, TrialObjective, budget_used, prepare_study
from tests_support import (
    EXPERIMENTS,
    REPO,
    free_port,
    kill_then_finish,
    postgres_url,
    second_trial_under_way,
    wait_for,
)

SMOKE = EXPERIMENTS / "smoke.yaml"
BUDGET, EVAL_EVERY = 300, 150  # smoke.yaml's own: two evaluations per seed

# One choice is sabotaged: one-step episodes earn at most 1 (rewards are normalised to [0, 1]),
# while 30-step episodes earn ~5 at the first evaluation. Enqueued after two good trials.
PRUNING_SWEEP = f"""
parameters:
  agent.hyperparameters.learning_rate: {{float: [1e-4, 1e-3], log: true}}
  env.config.duration: {{categorical: [30, 1]}}
seeds: 2
eval_every: {EVAL_EVERY}
sampler: {{type: random, seed: 0}}
pruner: {{type: median, n_startup_trials: 2}}
n_trials: 3
enqueue:
  - {{agent.hyperparameters.learning_rate: 5.0e-4, env.config.duration: 30}}
  - {{agent.hyperparameters.learning_rate: 2.0e-4, env.config.duration: 30}}
  - {{agent.hyperparameters.learning_rate: 5.0e-4, env.config.duration: 1}}
"""


def write_sweep(folder: Path, body: str, name: str = "study") -> Path:
    """A sweep file in ``folder`` whose experiment is smoke.yaml by a relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    header = f"experiment: {os.path.relpath(SMOKE, folder)}\nroot: {folder / 'runs'}\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def neurodrive(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO, env={**os.environ, **(env or {})})


def journal_study(sweep_dir: Path) -> optuna.Study:
    storage = StorageTarget(journal=sweep_dir / "study.journal").open()
    return optuna.load_study(study_name=sweep_dir.name, storage=storage)


def final_record(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "eval.json").read_text())["final"]




# --- sweep files: checked before any trial -----------------------------------------------------

SHIPPED_SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))


def test_there_are_shipped_sweeps_to_validate():
    assert SHIPPED_SWEEPS  # else the test below would be skipped for want of a file, and checked nothing


@pytest.mark.parametrize("path", SHIPPED_SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_validate(path):
    sweep = load_sweep(path)
    assert sweep.study_name == path.stem
    assert sweep.budget > sweep.eval_every > 0


GOOD_SPACE = """
parameters:
  agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}
  neuro.dopamine.type: {categorical: [standard, asymmetric]}
  neuro.dopamine.kappa: {float: [-0.8, 0.8], condition: {neuro.dopamine.type: asymmetric}}
"""


@pytest.mark.parametrize("change, expected", [
    ({"parameters": {"agent.hyperparameters.learning_rat": {"float": [1e-5, 1e-3]}}},
     ["parameters.agent.hyperparameters.learning_rat", "has no such argument", "learning_rate"]),
    ({"parameters": {"training.total_timestep": {"int": [100, 200]}}},
     ["parameters.training.total_timestep", "unknown key", "total_timesteps"]),
    ({"parameters": {"env.config.lanes_cont": {"int": [2, 4]}}},
     ["parameters.env.config.lanes_cont", "lanes_count"]),
    ({"parameters": {"agent.hyperparameters.gamma": {"float": [0.9, 0.9]}}},
     ["parameters.agent.hyperparameters.gamma", "empty range"]),
    ({"parameters": {"agent.hyperparameters.gamma": {"float": [0.99, 0.5]}}},
     ["parameters.agent.hyperparameters.gamma", "inverted range"]),
    ({"parameters": {"agent.hyperparameters.batch_size": {"int": [64, 16]}}},
     ["parameters.agent.hyperparameters.batch_size", "inverted range"]),
    ({"parameters": {"agent.hyperparameters.gamma": {"flaot": [0.5, 0.9]}}},
     ["parameters.agent.hyperparameters.gamma.flaot", "unknown key", "float, int, categorical"]),
    ({"parameters": {"neuro.dopamine.type": {"categorical": []}}}, ["neuro.dopamine.type", "empty"]),
    # The high end of the range breaks the module's own check: found by probing both ends.
    ({"parameters": {"neuro.dopamine.type": {"categorical": ["asymmetric"]},
                     "neuro.dopamine.kappa": {"float": [-0.5, 1.0]}}},
     ["parameters.neuro.dopamine.kappa = 1.0", "kappa"]),
    ({"parameters": {"neuro.learning_rate.type": {"categorical": ["surprise"]},
                     "neuro.learning_rate.lo": {"float": [0.1, 2.0]}}},
     ["parameters.neuro.learning_rate.lo = 2.0", "lo <= 1 <= hi"]),
    ({"parameters": {"neuro.dopamine.type": {"categorical": ["standard", "asymetric"]}}},
     ["parameters.neuro.dopamine.type = 'asymetric'", "unknown dopamine type", "asymmetric"]),
    ({"parameters": {"neuro.dopamine.kappa": {"float": [-0.8, 0.8], "condition": {"neuro.dopamine.type": "x"}}}},
     ["neuro.dopamine.kappa.condition.neuro.dopamine.type", "not a parameter declared before"]),
    ({"parameters": {"training.seed": {"int": [0, 3]}}}, ["parameters.training.seed", "seeds"]),
    ({"sampler": "bayes"}, ["sampler.type", "'tpe', 'random', 'cmaes', 'gp' or 'grid'", "bayes"]),
    ({"sampler": {"type": "tpe", "n_startup": 3}}, ["sampler.n_startup", "n_startup_trials"]),
    ({"pruner": "asha"}, ["pruner.type", "'median', 'halving', 'hyperband' or 'none'"]),
    ({"objective": "reward"}, ["objective.0.metric", "mean_return", "crash_rate", "reward"]),
    ({"objective": "success_rate"}, ["objective.0.metric", "reports no success"]),
    ({"objective": ["mean_return", "crash_rate"]}, ["pruner", "multi-objective", "none"]),
    ({"eval_every": 0}, ["eval_every", "between 1 and budget"]),
    ({"sampler": "grid", "parameters": {"agent.hyperparameters.gamma": {"float": [0.5, 0.9]}}},
     ["agent.hyperparameters.gamma", "grid sampler needs a step"]),
    ({"sampler": "grid"}, ["sampler: grid", "conditional neuro.dopamine.kappa", "tpe"]),
    ({"enqueue": [{"agent.hyperparameters.learning_rate": 0.5}]}, ["enqueue.0", "outside the search space"]),
    ({"seeds": [1, 1]}, ["seeds", "distinct"]),
    ({"budjet": 100}, ["budjet", "unknown key", "budget"]),
])
def test_bad_sweep_files_name_the_field_and_the_reason(tmp_path, change, expected):
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), **yaml.safe_load(GOOD_SPACE), **change}
    with pytest.raises(ConfigError) as error:
        sweep_from_raw(raw, "bad.yaml", tmp_path, "bad")
    message = str(error.value)
    assert message.startswith("bad.yaml")
    for part in expected:
        assert part in message, message


def test_bad_sweep_file_fails_on_the_command_line_before_any_trial(tmp_path):
    path = write_sweep(tmp_path, GOOD_SPACE.replace("[-0.8, 0.8]", "[0.8, -0.8]") + "eval_every: 150\n")
    result = neurodrive("sweep", str(path))
    assert result.returncode == 2
    assert "error:" in result.stderr and "neuro.dopamine.kappa: float: inverted range" in result.stderr
    assert not (tmp_path / "runs").exists()  # no study, no run folder


def test_missing_experiment_file_is_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("experiment: nowhere.yaml\nparameters: {agent.hyperparameters.gamma: {float: [0.5, 0.9]}}\n")
    with pytest.raises(ConfigError, match=r"experiment: .*nowhere.yaml: cannot read"):
        load_sweep(path)


# --- sampling, pruning hook and budget, without training ----------------------------------------

def test_conditional_and_structured_parameters_are_sampled_as_declared(tmp_path):
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), "eval_every": 150, **yaml.safe_load(GOOD_SPACE)}
    raw["parameters"]["agent.policy_kwargs.net_arch"] = {"categorical": [[64, 64], [32]]}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        values = sweep.sample(trial)
        is_asymmetric = values["neuro.dopamine.type"] == "asymmetric"
        assert ("neuro.dopamine.kappa" in values) == is_asymmetric
        assert 1e-5 <= values["agent.hyperparameters.learning_rate"] <= 1e-3
        config = sweep.experiment(values, seed=0, trial_name="trial_0001")
        assert config.agent.policy_kwargs["net_arch"] in ([64, 64], [32])  # a list again, not JSON text
        assert config.training.total_timesteps == BUDGET and config.logging.name == "trial_0001"
        if is_asymmetric:
            assert config.neuro["dopamine"] == {"type": "asymmetric", "kappa": values["neuro.dopamine.kappa"]}
        seen.add((values["neuro.dopamine.type"], json.dumps(config.agent.policy_kwargs["net_arch"])))
        study.tell(trial, 0.0)
    assert len(seen) == 4


def test_pruning_hook_reports_nominal_steps_and_stops_a_worse_trial(tmp_path):
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), "budget": 20000, "eval_every": 5000, "seeds": 2,
           **yaml.safe_load(GOOD_SPACE)}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for value in (10.0, 12.0):  # two finished trials that scored 10 and 12 at every step
        study.add_trial(optuna.trial.create_trial(
            value=value, intermediate_values={step: value for step in range(5000, 40001, 5000)}))
    hook = PruningHook(study.ask(), sweep, seed_index=1)
    # PPO-like steps overshoot the cadence by a rollout: the k-th evaluation still lands on k * 5000.
    assert [hook.nominal_step(step) for step in (5008, 10016, 19990, 20480)] == [25000, 30000, 35000, 40000]
    finished = PruningHook(study.ask(), sweep, seed_index=1)
    assert finished({"step": 20480, "mean_return": 1.0}) is None  # a seed's final evaluation: never pruned
    worse = PruningHook(study.ask(), sweep, seed_index=1)
    assert worse({"step": 10016, "mean_return": 1.0}) is False  # below the median (11) at step 30000: stop
    assert worse.stopped_at == 10016
    assert [t.intermediate_values for t in study.trials[2:]] == [{}, {40000: 1.0}, {30000: 1.0}]


def test_budget_counts_finished_running_and_crashed_trials_but_not_retried_or_skipped():
    study = optuna.create_study()
    distribution = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def add(state, value=None, **attrs):
        study.add_trial(optuna.trial.create_trial(state=state, value=value, params={"x": 0.5},
                                                  distributions=distribution, user_attrs=attrs.get("user", {}),
                                                  system_attrs=attrs.get("system", {})))

    add(TrialState.COMPLETE, 1.0)
    add(TrialState.PRUNED)
    add(TrialState.FAIL)  # a crash (e.g. NaN loss): counts
    add(TrialState.FAIL)  # trial 3: its worker died, retried as trial 6 below
    add(TrialState.FAIL, user={"skipped": "budget met"})
    add(TrialState.FAIL, user={"interrupted": True})
    add(TrialState.WAITING, system={"failed_trial": 3, "retry_history": [3]})
    assert budget_used(study.get_trials()) == 3


def test_a_trial_created_after_the_budget_was_met_elsewhere_is_skipped_untrained(tmp_path):
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), "eval_every": 150, **yaml.safe_load(GOOD_SPACE)}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    study = optuna.create_study()
    study.ask()  # another worker's trial 0, running: the whole budget of one trial
    late = study.ask()  # this worker asked at the same moment
    with pytest.raises(BudgetReached):
        TrialObjective(sweep, n_trials=1, worker_id="w", command=[])(late)
    assert "budget of 1 trials" in study.trials[1].user_attrs["skipped"]
    assert "error" not in study.trials[1].user_attrs  # skipped, not crashed
    assert not (tmp_path / "s").exists()  # no run folder
    study.tell(late, state=TrialState.FAIL)
    assert budget_used(study.trials) == 1


class PruneEverything(optuna.pruners.BasePruner):
    """Prunes every trial at its first report: a pruned trial without a study to compare it with."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_a_pruned_trial_is_not_recorded_as_a_crash(tmp_path):
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), "eval_every": EVAL_EVERY, "seeds": 2,
           "parameters": {"agent.hyperparameters.learning_rate": {"float": [1e-4, 1e-3], "log": True}}}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    study = optuna.create_study(direction="maximize", pruner=PruneEverything())
    objective = TrialObjective(sweep, n_trials=1, worker_id="w", command=[])
    study.optimize(objective, n_trials=1, catch=(Exception,))  # as a worker runs it
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    (run_dir,) = trial.user_attrs["run_dirs"]  # stopped at its first evaluation: the second seed never ran
    meta = json.loads((Path(run_dir) / "run.json").read_text())
    assert meta["status"] == "stopped" and meta["steps"] == EVAL_EVERY
    assert "error" not in trial.user_attrs  # the dashboard would list it among the crashes


def test_resuming_with_a_changed_search_space_is_refused(tmp_path):
    path = write_sweep(tmp_path, GOOD_SPACE + "eval_every: 150\n")
    sweep = load_sweep(path)
    target = StorageTarget.resolve(None, sweep.sweep_dir)
    prepare_study(sweep, target)
    prepare_study(load_sweep(path), target)  # same file: resumes
    path.write_text(path.read_text().replace("[1e-5, 1e-3]", "[1e-5, 1e-2]"))
    with pytest.raises(ConfigError, match="different parameters"):
        prepare_study(load_sweep(path), target)


# --- the report, on studies scored without training -------------------------------------------

REPORT_SPACE = {"agent.hyperparameters.learning_rate": {"float": [1e-4, 1e-3], "log": True},
                "env.config.duration": {"categorical": [30, 1]}}


def scored_study(tmp_path: Path, score, finished: int = 12) -> tuple[optuna.Study, Sweep]:
    """``finished`` trials scored ``score(params)``, then a pruned and a crashed one that scored otherwise."""
    raw = {"experiment": str(SMOKE), "root": str(tmp_path), "eval_every": EVAL_EVERY, "parameters": REPORT_SPACE}
    sweep = sweep_from_raw(raw, "s.yaml", tmp_path, "s")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(finished):
        trial = study.ask()
        study.tell(trial, score(sweep.sample(trial)))
    for state in (TrialState.PRUNED, TrialState.FAIL):
        trial = study.ask()
        sweep.sample(trial)
        trial.report(-5.0, 150)
        study.tell(trial, state=state)
    return study, sweep


def test_a_study_whose_finished_trials_all_tie_is_flagged_as_degenerate(tmp_path, capsys):
    study, sweep = scored_study(tmp_path, lambda params: 4.25)  # what agents that always brake would score
    report = write_report(study, sweep)
    assert report.warnings == [
        "all 12 finished trials have the same mean_return (4.25): the agents may be degenerate (one action?); "
        "check action_fractions and dominant_action in their runs' eval.json"]
    assert report.importances == {"mean_return": {}}  # no parameter can matter
    assert report.notes == ["importance of mean_return: none, every finished trial has the same value"]
    assert json.loads((sweep.sweep_dir / "report.json").read_text())["warnings"] == report.warnings
    print_report(report, sweep)
    shown = capsys.readouterr().out
    assert "warning: all 12 finished trials have the same mean_return (4.25)" in shown
    assert shown.index("warning:") < shown.index("best trial")  # said before the table it puts in doubt


def test_a_parameter_that_decides_the_objective_is_the_important_one_and_nothing_is_flagged(tmp_path, capsys):
    study, sweep = scored_study(tmp_path, lambda params: 10.0 if params["env.config.duration"] == 30 else 1.0)
    assert {t.params["env.config.duration"] for t in study.get_trials(states=(TrialState.COMPLETE,))} == {30, 1}
    report = write_report(study, sweep)
    assert report.warnings == [] and report.notes == []
    importances = report.importances["mean_return"]
    assert set(importances) == {"env.config.duration", "agent.hyperparameters.learning_rate"}
    # fANOVA's forest leaves the learning rate a small share; the duration must dominate.
    assert importances["env.config.duration"] > 0.75 > importances["agent.hyperparameters.learning_rate"]
    assert [Path(plot).name for plot in report.plots] == ["optimization_history.png", "param_importances.png"]
    print_report(report, sweep)
    assert "warning:" not in capsys.readouterr().out


def test_a_single_finished_trial_is_no_tie(tmp_path):
    study, sweep = scored_study(tmp_path, lambda params: 4.25, finished=1)
    report = write_report(study, sweep)
    assert report.states == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1}
    assert report.warnings == []
    assert report.notes == ["importance of mean_return: needs at least 2 completed trials, the study has 1"]


# --- storage URLs and passwords -------------------------------------------------------------

def test_passwords_are_masked_in_urls_and_command_lines(monkeypatch):
    url = "postgresql+psycopg://alice:s3cret@db.lab:5432/sweeps"
    assert mask_url(url) == "postgresql+psycopg://alice:***@db.lab:5432/sweeps"
    masked = mask_argv(["sweep", "f.yaml", "--storage", url, f"--storage={url}"])
    assert "s3cret" not in " ".join(masked) and masked[3] == mask_url(url)
    monkeypatch.setenv("NEURODRIVE_STORAGE", "postgresql://alice:s3cret@db.lab/sweeps")
    target = StorageTarget.resolve(None, Path("unused"))
    assert target.url == "postgresql+psycopg://alice:s3cret@db.lab/sweeps"  # psycopg 3, not psycopg2
    assert "s3cret" not in target.describe()


def test_unreachable_database_is_a_clear_error_without_the_password():
    target = StorageTarget.resolve("postgresql+psycopg://alice:s3cret@127.0.0.1:1/sweeps", Path("unused"))
    with pytest.raises(ConfigError) as error:
        target.open()
    assert str(error.value).startswith("--storage: cannot open postgresql+psycopg://alice:***@127.0.0.1:1/sweeps")
    assert "s3cret" not in str(error.value)


def test_cli_registration_wires_both_commands():
    parser = argparse.ArgumentParser(prog="neurodrive")
    add_sweep_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", "s.yaml", "--n-trials", "7", "--workers", "2", "--study-name", "a",
                              "--storage", "sqlite:///x.db", "--report"])
    assert args.handler is sweep_command
    assert (args.sweep_file, args.n_trials, args.workers, args.study_name, args.storage, args.report) == (
        "s.yaml", 7, 2, "a", "sqlite:///x.db", True)
    args = parser.parse_args(["dashboard", "runs/sweeps/a", "--port", "9000"])
    assert args.handler is dashboard_command and (args.target, args.port) == ("runs/sweeps/a", 9000)


# --- a real sweep on smoke.yaml ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pruned_sweep(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("sweep")
    path = write_sweep(folder, PRUNING_SWEEP, name="prune")
    result = neurodrive("sweep", str(path))
    assert result.returncode == 0, result.stderr
    return path, folder / "runs" / "prune", result


@pytest.mark.slow
def test_trials_are_run_folders_and_the_objective_is_the_mean_of_their_final_evaluations(pruned_sweep):
    _, sweep_dir, _ = pruned_sweep
    study = journal_study(sweep_dir)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert [t.number for t in complete] == [0, 1]
    for trial in complete:
        run_dirs = trial.user_attrs["run_dirs"]
        assert [Path(d).parent for d in run_dirs] == [sweep_dir / f"trial_{trial.number:04d}"] * 2
        assert [json.loads((Path(d) / "run.json").read_text())["seed"] for d in run_dirs] == [0, 1]
        finals = [final_record(d) for d in run_dirs]
        assert trial.value == pytest.approx(np.mean([f["mean_return"] for f in finals]))
        # Every evaluation was reported: seed 0 at 150 and 300, seed 1 at 300 + 150 and 300 + 300.
        reported = {}
        for index, run_dir in enumerate(run_dirs):
            for record in json.loads((Path(run_dir) / "eval.json").read_text())["evaluations"]:
                reported[index * BUDGET + record["step"]] = record["mean_return"]
        assert trial.intermediate_values == pytest.approx(reported)
        assert load_config(Path(run_dirs[0]) / "config.yaml").agent.hyperparameters["learning_rate"] == \
            pytest.approx(trial.params["agent.hyperparameters.learning_rate"])


@pytest.mark.slow
def test_the_sabotaged_trial_is_pruned_and_its_run_stopped_early(pruned_sweep):
    _, sweep_dir, _ = pruned_sweep
    trial = journal_study(sweep_dir).trials[2]
    assert trial.params["env.config.duration"] == 1
    assert trial.state == TrialState.PRUNED
    (run_dir,) = trial.user_attrs["run_dirs"]  # its second seed never started
    meta = json.loads((Path(run_dir) / "run.json").read_text())
    assert meta["status"] == "stopped" and meta["steps"] == EVAL_EVERY < BUDGET
    assert trial.intermediate_values == {EVAL_EVERY: pytest.approx(final_record(run_dir)["mean_return"])}
    assert trial.intermediate_values[EVAL_EVERY] <= 1.0
    assert "error" not in trial.user_attrs  # pruned, not crashed


@pytest.mark.slow
def test_best_config_is_ready_to_train_and_the_report_is_written(pruned_sweep, tmp_path):
    _, sweep_dir, result = pruned_sweep
    study = journal_study(sweep_dir)
    config = load_config(sweep_dir / "best_config.yaml", [f"logging.root={tmp_path}"])
    best = study.best_trial
    learning_rate = best.params["agent.hyperparameters.learning_rate"]
    assert config.agent.hyperparameters["learning_rate"] == pytest.approx(learning_rate)
    assert config.env.config == {"duration": 30}
    assert config.logging.name == "prune_best" and config.training.total_timesteps == BUDGET
    meta = json.loads((train(config) / "run.json").read_text())
    assert meta["status"] == "finished" and meta["steps"] >= BUDGET
    report = json.loads((sweep_dir / "report.json").read_text())
    assert report["states"] == {"COMPLETE": 2, "PRUNED": 1}
    assert report["best"][0]["number"] == best.number and report["best"][0]["run_dirs"] == best.user_attrs["run_dirs"]
    # The two finished trials differ only in their learning rate (both ran 30-step episodes), so what
    # the report must say follows from their runs' own evaluations.
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert {t.params["env.config.duration"] for t in complete} == {30}
    returns = [np.mean([final_record(d)["mean_return"] for d in t.user_attrs["run_dirs"]]) for t in complete]
    if returns[0] == pytest.approx(returns[1], rel=1e-9):  # both agents scored alike (degenerate at 300 steps)
        assert report["warnings"] == [
            f"all 2 finished trials have the same mean_return ({returns[0]:.6g}): the agents may be degenerate "
            "(one action?); check action_fractions and dominant_action in their runs' eval.json"]
        assert report["importances"] == {"mean_return": {}}
        assert report["notes"] == ["importance of mean_return: none, every finished trial has the same value"]
        assert "warning: all 2 finished trials have the same mean_return" in result.stdout
        plots = ["optimization_history.png"]
    else:  # the learning rate alone tells them apart: it carries the whole importance
        assert report["warnings"] == [] and report["notes"] == []
        assert report["importances"]["mean_return"] == pytest.approx(
            {"agent.hyperparameters.learning_rate": 1.0, "env.config.duration": 0.0})
        plots = ["optimization_history.png", "param_importances.png"]
    assert report["plots"] == [str(sweep_dir / name) for name in plots]
    for png in report["plots"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best trial" in result.stdout


@pytest.mark.slow
def test_rerunning_resumes_the_study(pruned_sweep):
    path, sweep_dir, _ = pruned_sweep
    before = journal_study(sweep_dir).trials
    again = neurodrive("sweep", str(path))  # same command: the budget of 3 is met, nothing runs
    assert again.returncode == 0, again.stderr
    assert "3 trials (3 already)" in again.stdout
    assert journal_study(sweep_dir).trials == before
    more = neurodrive("sweep", str(path), "--n-trials", "4")
    assert more.returncode == 0, more.stderr
    after = journal_study(sweep_dir).trials
    assert after[:3] == before and len(after) == 4 and after[3].state.is_finished()
    assert after[3].state in (TrialState.COMPLETE, TrialState.PRUNED)  # finished, and not by a crash
    report = neurodrive("sweep", str(path), "--report")
    assert report.returncode == 0 and "study prune: " in report.stdout


@pytest.mark.slow
def test_dashboard_serves_the_study(pruned_sweep):
    _, sweep_dir, _ = pruned_sweep
    port = free_port()
    server = start("dashboard", str(sweep_dir.parent), "--port", str(port))  # a folder holding one sweep
    try:
        def studies():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    return json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.stdout.read()
                return None

        data = wait_for(studies, timeout=60, what="optuna-dashboard to answer")
        assert [s["study_name"] for s in data["study_summaries"]] == ["prune"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_dashboard_refuses_a_folder_without_a_study(tmp_path):
    with pytest.raises(ConfigError, match="no study.journal under"):
        dashboard_command(argparse.Namespace(target=str(tmp_path), port=free_port(), storage=None))


def test_a_value_the_algorithm_refuses_is_a_config_error_before_any_trial(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.learning_rate: {categorical: [5.0e-4, fast]}
        n_trials: 2
    """, name="refused")
    with pytest.raises(ConfigError, match=r"parameters\.agent\.hyperparameters\.learning_rate = 'fast': "
                                          r"agent\.hyperparameters\.learning_rate: must be a number > 0"):
        load_sweep(path)
    assert not (tmp_path / "runs").exists()


def test_a_crashing_trial_is_recorded_with_its_error_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """A trial whose training raises (a stand-in for a run that crashes mid-training: its values are valid, so
    nothing before the run can catch it) is FAIL with its error, and the next trial runs."""
    from experiments.runs import session

    real_train = session.train

    def crash_at_1e_3(config, *args, **kwargs):
        if config.agent.hyperparameters["learning_rate"] == 1.0e-3:
            raise RuntimeError("the simulated crash of a trial")
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(session, "train", crash_at_1e_3)
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.learning_rate: {categorical: [5.0e-4, 1.0e-3]}
        eval_every: 150
        pruner: none
        n_trials: 2
        enqueue: [{agent.hyperparameters.learning_rate: 1.0e-3}, {agent.hyperparameters.learning_rate: 5.0e-4}]
    """, name="crash")
    sweep = load_sweep(path)
    study, failed_workers = run_sweep(sweep, StorageTarget.resolve(None, sweep.sweep_dir))
    crashed, finished = study.trials
    assert failed_workers == 0 and budget_used(study.trials) == 2  # a crash uses up its trial
    assert crashed.state == TrialState.FAIL and "the simulated crash of a trial" in crashed.user_attrs["error"]
    assert finished.state == TrialState.COMPLETE
    assert finished.value == pytest.approx(final_record(finished.user_attrs["run_dirs"][0])["mean_return"])


def test_a_grid_sweep_runs_each_point_once_and_stops_there(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.batch_size: {int: [16, 48], step: 16}
          env.config.duration: {categorical: [5, 10]}
        budget: 100
        eval_every: 0
        pruner: none
        sampler: grid
        n_trials: 10
    """, name="grid")
    sweep = load_sweep(path)
    study, _ = run_sweep(sweep, StorageTarget.resolve(None, sweep.sweep_dir))
    points = sorted((t.params["agent.hyperparameters.batch_size"], t.params["env.config.duration"])
                    for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert points == [(b, d) for b in (16, 32, 48) for d in (5, 10)]  # 6 points, not 10 trials
    assert len(study.trials) == 6
    # TensorBoard's HParams: each trial's run carries its number and values; the sweep's folder one summary.
    for trial in study.trials:
        record = read_session_hparams(Path(trial.user_attrs["run_dirs"][0]) / "tb")
        assert record is not None and record["trial"] == trial.number
        assert record["batch_size"] == trial.params["agent.hyperparameters.batch_size"]
    events = EventAccumulator(str(sweep.sweep_dir), size_guidance={"tensors": 0})
    events.Reload()
    experiment = parse_experiment_plugin_data(events.PluginTagToContent("hparams")[EXPERIMENT_TAG])
    assert experiment.hparam_infos[0].name == "trial"
    assert sorted(experiment.hparam_infos[0].domain_discrete) == [0, 1, 2, 3, 4, 5]
    assert {"batch_size", "env", "seed"} <= {info.name for info in experiment.hparam_infos}


def test_a_sweep_over_spiking_settings_builds_each_trial_with_them(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.snn.timesteps: {categorical: [2, 3]}
        fixed:
          agent.policy: spiking
          agent.snn.encoder: poisson
        budget: 100
        eval_every: 0
        pruner: none
        sampler: grid
        n_trials: 2
    """, name="spiking")
    sweep = load_sweep(path)
    study, failed_workers = run_sweep(sweep, StorageTarget.resolve(None, sweep.sweep_dir))
    assert failed_workers == 0
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        run_dir = Path(trial.user_attrs["run_dirs"][0])
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())["agent"]
        assert saved["policy"] == "spiking" and saved["snn"]["encoder"] == "poisson"
        assert saved["snn"]["timesteps"] == trial.params["agent.snn.timesteps"]
        model = get_algorithm("dqn").load(run_dir / "model.zip")
        assert model.policy.decision_network().timesteps == trial.params["agent.snn.timesteps"]
    assert sorted(t.params["agent.snn.timesteps"] for t in study.trials) == [2, 3]


# --- workers, killed workers ---------------------------------------------------------------

@pytest.mark.slow
def test_two_local_workers_share_one_journal(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.learning_rate: {float: [1e-4, 1e-3], log: true}
        budget: 600
        eval_every: 300
        pruner: none
        n_trials: 4
    """, name="pair")
    result = neurodrive("sweep", str(path), "--workers", "2")
    assert result.returncode == 0, result.stderr
    study = journal_study(tmp_path / "runs" / "pair")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert budget_used(study.trials) == 4 and len(complete) == 4
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers ran trials
    run_dirs = [d for t in complete for d in t.user_attrs["run_dirs"]]
    assert len(set(run_dirs)) == 4 and all(final_record(d)["step"] >= 600 for d in run_dirs)


@pytest.mark.slow
def test_a_killed_journal_worker_leaves_a_trial_that_the_next_run_retries(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.learning_rate: {float: [1e-4, 1e-3], log: true}
        budget: 1500
        eval_every: 500
        pruner: none
        n_trials: 2
    """, name="killed")
    sweep_dir = tmp_path / "runs" / "killed"
    worker = start("sweep", str(path))
    try:
        wait_for(lambda: list((sweep_dir / "trial_0000").glob("*/run.json")), 60, "trial 0 to start training")
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait()
    killed = journal_study(sweep_dir).trials[0]
    assert killed.state == TrialState.RUNNING  # nobody is left to finish or fail it
    result = neurodrive("sweep", str(path))
    assert result.returncode == 0, result.stderr
    assert "trial 0: its worker died; marked failed and re-queued" in result.stderr
    trials = journal_study(sweep_dir).trials
    assert trials[0].state == TrialState.FAIL
    retry = trials[1]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == killed.params
    assert retry.state == TrialState.COMPLETE
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 2  # the budget of 2 trials, met


@pytest.mark.slow
def test_an_interrupted_sweep_requeues_its_trial_and_resumes(tmp_path):
    path = write_sweep(tmp_path, """
        parameters:
          agent.hyperparameters.learning_rate: {float: [1e-4, 1e-3], log: true}
        budget: 1500
        eval_every: 500
        pruner: none
        n_trials: 2
    """, name="ctrl_c")
    sweep_dir = tmp_path / "runs" / "ctrl_c"
    worker = start("sweep", str(path))
    (evaluations,) = wait_for(lambda: list((sweep_dir / "trial_0000").glob("*/eval.json")), 60,
                              "trial 0 to be training")
    worker.send_signal(signal.SIGINT)  # as Ctrl-C: the run saves a checkpoint and stops
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 130, output
    assert json.loads((evaluations.parent / "run.json").read_text())["status"] == "interrupted"
    interrupted, queued = journal_study(sweep_dir).trials
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["interrupted"] is True
    assert queued.state == TrialState.WAITING and queued.params == interrupted.params
    result = neurodrive("sweep", str(path))
    assert result.returncode == 0, result.stderr
    trials = journal_study(sweep_dir).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[1].params == interrupted.params


# --- PostgreSQL: workers on "several machines" ------------------------------------------------

@pytest.mark.slow
def test_postgres_workers_share_a_study_and_a_killed_workers_trial_is_retried(tmp_path):
    url = postgres_url()
    name = f"pg_{uuid.uuid4().hex[:8]}"
    path = write_sweep(tmp_path, f"""
        parameters:
          agent.hyperparameters.learning_rate: {{float: [1e-4, 1e-3], log: true}}
        budget: 900
        eval_every: 300
        pruner: none
        n_trials: 5
        heartbeat: {{interval: 1, grace_period: 3}}
        study_name: {name}
    """, name="pg")
    storage = StorageTarget.resolve(url, Path(".")).open()
    # One worker takes the URL on its command line, the other from the environment.
    victim = start("sweep", str(path), "--storage", url)
    survivor = start("sweep", str(path), env={"NEURODRIVE_STORAGE": url})
    victim_id = f"{socket.gethostname()}-{victim.pid}"
    def training(trial) -> bool:  # the trial's run folder exists
        return bool(list((tmp_path / "runs" / name / f"trial_{trial.number:04d}").glob("*/run.json")))

    killed = kill_then_finish(victim, survivor, lambda: second_trial_under_way(name, storage, victim_id, training),
                              120, "the first worker to be training its second trial", 240)

    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert trials[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["worker"] != victim_id
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 5 == budget_used(trials)
    assert {t.user_attrs["worker"] for t in finished} >= {victim_id}  # both workers contributed
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    run_dirs = [d for t in finished for d in t.user_attrs["run_dirs"]]
    assert len(set(run_dirs)) == len(run_dirs) == 5  # each finished trial once, with its own run
    saved = [(Path(d) / "run.json").read_text() for d in run_dirs]
    saved.append((tmp_path / "runs" / name / "sweep.json").read_text())
    assert all(url not in text for text in saved)  # the full URL, password included, is never saved
    assert any(mask_url(url) in text for text in saved)
    optuna.delete_study(study_name=name, storage=storage)


# --- PostgreSQL: workers launched together on an empty database ----------------------------------

@contextlib.contextmanager
def empty_schemas(url: str, count: int) -> Iterator[list[str]]:
    """``count`` new, empty schemas in the test database (each a database Optuna has never seen), as
    URLs whose connections use them; dropped afterwards."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    names = [f"race_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    admin = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            for name in names:
                connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{name}"'))
        base = sqlalchemy.engine.make_url(url)
        yield [base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
               for name in names]
        with admin.connect() as connection:  # Optuna's tables went where the URLs said
            for name in names:
                tables = set(connection.execute(sqlalchemy.text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"),
                    {"schema": name}).scalars())
                assert {"studies", "trials", "alembic_version"} <= tables, (name, tables)
    finally:
        with admin.begin() as connection:
            for name in names:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def run_gated(processes: list[subprocess.Popen], gate: Path, rounds: int) -> list[str]:
    """Start ``rounds`` rounds of gated processes together (each round once all finished the last); their output."""
    try:
        for index in range(rounds):
            previous = "ready-*" if index == 0 else f"done-{index - 1}-*"
            wait_for(lambda pattern=previous: len(list(gate.glob(pattern))) == len(processes)
                     or any(process.poll() is not None for process in processes), 120, f"round {index}")
            (gate / f"go-{index}").touch()
        return [process.communicate(timeout=180)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# Processes that do their slow imports, say they are ready, then start each round when the test says go:
# so they reach the database within a millisecond of each other, as a launcher's workers on many machines
# may, and not spread over the seconds their imports take on a loaded machine.
GATE = """
import os, sys, time
from pathlib import Path

def wait_to_go(gate: Path, index: int) -> None:
    if index == 0:
        (gate / f"ready-{os.getpid()}").touch()
    else:
        (gate / f"done-{index - 1}-{os.getpid()}").touch()
    while not (gate / f"go-{index}").exists():
        time.sleep(0.001)
"""
GATED_WORKER = GATE + """
import experiments.cli, experiments.runs.session, experiments.sweeps.report, experiments.sweeps.study
wait_to_go(Path(sys.argv[1]), 0)
sys.exit(experiments.cli.main(sys.argv[2:]))
"""
GATED_PREPARE = GATE + """
from experiments.sweeps.spec import load_sweep
from experiments.distributed.storage import StorageTarget
from experiments.sweeps.study import prepare_study
sweep = load_sweep(sys.argv[2])
failures = []
for index, url in enumerate(sys.argv[3:]):
    wait_to_go(Path(sys.argv[1]), index)
    try:
        prepare_study(sweep, StorageTarget.resolve(url, sweep.sweep_dir))
    except Exception as error:
        failures.append(f"round {index}: {type(error).__name__}: {error}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""
RACE_SWEEP = """
    parameters:
      agent.hyperparameters.learning_rate: {{float: [1e-4, 1e-3], log: true}}
    budget: 100
    eval_every: 0
    pruner: none
    n_trials: {n_trials}
    enqueue: [{{agent.hyperparameters.learning_rate: 5.0e-4}}]
    study_name: race
"""


@pytest.mark.slow
def test_postgres_studies_prepared_at_once_on_empty_databases_are_made_once(tmp_path):
    url = postgres_url()
    workers, rounds = 6, 8
    path = write_sweep(tmp_path, RACE_SWEEP.format(n_trials=1), name="race")
    gate = tmp_path / "gate"
    gate.mkdir()
    with empty_schemas(url, rounds) as urls:
        processes = [subprocess.Popen([sys.executable, "-c", GATED_PREPARE, str(gate), str(path), *urls],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
                     for _ in range(workers)]
        outputs = run_gated(processes, gate, rounds)
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output[-3000:]
        for fresh in urls:
            (study,) = optuna.get_all_study_summaries(StorageTarget.resolve(fresh, Path(".")).open())
            assert study.study_name == "race" and study.user_attrs["neurodrive:sweep"]
            assert study.n_trials == 1  # the enqueued point, once: not once per worker that found no study


@pytest.mark.slow
def test_postgres_workers_launched_together_on_an_empty_database_all_run(tmp_path):
    url = postgres_url()
    workers = 5
    path = write_sweep(tmp_path, RACE_SWEEP.format(n_trials=workers), name="race")
    gate = tmp_path / "gate"
    gate.mkdir()
    with empty_schemas(url, 1) as (fresh,):
        processes = [subprocess.Popen([sys.executable, "-c", GATED_WORKER, str(gate), "sweep", str(path),
                                       "--storage", fresh], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, cwd=REPO) for _ in range(workers)]
        outputs = run_gated(processes, gate, rounds=1)
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output[-3000:]
        trials = optuna.load_study(study_name="race", storage=StorageTarget.resolve(fresh, Path(".")).open()).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * workers
    assert budget_used(trials) == workers
    assert [t.params["agent.hyperparameters.learning_rate"] for t in trials].count(5.0e-4) == 1
    assert len({d for t in trials for d in t.user_attrs["run_dirs"]}) == workers



def test_a_sweep_says_once_which_of_its_scenarios_are_superseded_and_its_report_says_nothing(
        tmp_path, monkeypatch, caplog):
    import experiments.sweeps.command as command
    from envs.scenarios import note_superseded

    path = write_sweep(tmp_path, """
        parameters:
          env.id: {categorical: [roundabout-v0, highway-fast-v0]}
        n_trials: 1
        """)
    assert load_sweep(path).env_ids() == ["highway-fast-v0", "roundabout-v0"]  # smoke.yaml's and the choices

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for the trials: only what is said before them matters

    monkeypatch.setattr(command, "run_sweep", interrupted)
    parser = argparse.ArgumentParser()
    add_sweep_commands(parser.add_subparsers(dest="command"))
    notes = []
    for extra in ([], ["--report"]):
        note_superseded.cache_clear()
        caplog.clear()
        with caplog.at_level("WARNING", logger="neurodrive.envs"), contextlib.suppress(Exception):
            sweep_command(parser.parse_args(["sweep", str(path), *extra]))
        notes.append([r.getMessage() for r in caplog.records if "is an older version" in r.getMessage()])
    assert len(notes[0]) == 1 and notes[0][0].startswith("roundabout-v0 is an older version")
    assert notes[1] == []  # --report builds no env and runs no trial
