"""Grids shared through a database (``neurodrive compare --storage``): one trial per cell, a queue
that workers on several "machines" (here: processes in separate working folders, so separate run
roots) pull from, a killed worker's cell finished by another, and a report gathered from the study.

Checked against what the runs wrote themselves (their run folders' compare-<condition>.json files)
and Optuna's own view of the study, not against the module's bookkeeping.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments.compare.runner import collect_results
from experiments.compare.shared import prepare_grid_study
from experiments.compare.spec import Cell, load_comparison
from experiments.config import ConfigError
from experiments.distributed.storage import StorageTarget, mask_url
from tests_support import (
    EXPERIMENTS,
    TINY_GRID,
    kill_then_finish,
    postgres_url,
    second_trial_under_way,
    wait_for,
)

SMOKE = EXPERIMENTS / "smoke.yaml"


def write_grid(folder: Path, body: str, name: str) -> Path:
    """A comparison file whose root is relative (``runs``): each working folder is a machine of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"experiment: {SMOKE}\nname: {name}\nroot: runs\n" + textwrap.dedent(body))
    return path


def start(machine: Path, *args: str) -> subprocess.Popen:
    machine.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=machine, env=dict(os.environ))


def run(machine: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    machine.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          cwd=machine, timeout=timeout, env=dict(os.environ))


def report_rows(machine: Path, name: str) -> list[dict]:
    with (machine / "runs" / name / "report" / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def condition_record(machine: Path, name: str, cell: Cell, condition: str = "clean") -> dict:
    path = machine / "runs" / name / cell.variant / cell.scenario / f"seed{cell.seed}" / f"compare-{condition}.json"
    return json.loads(path.read_text())


def cell_of(trial) -> Cell:
    return Cell(trial.params["variant"], trial.params["scenario"], int(trial.params["seed"]))





@pytest.mark.slow
def test_a_grid_in_a_sqlite_study_reports_what_its_cells_wrote(tmp_path, monkeypatch):
    """One machine, a file database: the study's rows are the run folders' own evaluation files."""
    path = write_grid(tmp_path, TINY_GRID, "solo")
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    result = run(tmp_path, "compare", str(path), "--storage", url)
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name="compare-solo", storage=url)
    assert sorted((t.params["variant"], t.state) for t in study.trials) == [
        ("asymmetric", TrialState.COMPLETE), ("standard", TrialState.COMPLETE)]
    rows = {row["variant"]: row for row in report_rows(tmp_path, "solo")}
    for trial in study.trials:
        written = condition_record(tmp_path, "solo", cell_of(trial))
        assert float(rows[trial.params["variant"]]["mean_return"]) == pytest.approx(written["summary"]["mean_return"])
        assert trial.value == pytest.approx(written["summary"]["mean_return"])
    # The folder-based reading of the same grid agrees row for row.
    monkeypatch.chdir(tmp_path)
    local = {row["variant"]: row for row in collect_results(load_comparison(path))}
    assert {variant: row["returns"] for variant, row in local.items()} == {
        trial.params["variant"]: condition_record(tmp_path, "solo", cell_of(trial))["episodes"]["returns"]
        for trial in study.trials}
    # Rerunning finds every cell complete: nothing is enqueued or trained again.
    again = run(tmp_path, "compare", str(path), "--storage", url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(optuna.load_study(study_name="compare-solo", storage=url).trials) == 2


def test_study_name_needs_a_storage(tmp_path):
    path = write_grid(tmp_path, TINY_GRID, "solo")
    result = run(tmp_path, "compare", str(path), "--study-name", "x")
    assert result.returncode == 2
    assert "--study-name" in result.stderr and "--storage" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_study_holding_another_grid_is_refused_before_any_run(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    first = write_grid(tmp_path / "a", TINY_GRID, "grid")
    monkeypatch.chdir(tmp_path)
    prepare_grid_study(load_comparison(first), StorageTarget.resolve(url, tmp_path), "shared")
    changed = write_grid(tmp_path / "b", TINY_GRID.replace("seeds: 1", "seeds: 2"), "grid")
    with pytest.raises(ConfigError) as error:
        prepare_grid_study(load_comparison(changed), StorageTarget.resolve(url, tmp_path), "shared")
    message = str(error.value)
    assert message.startswith("--study-name: study 'shared'")
    assert "cells standard/highway-fast-v0/seed100 added" in message
    study = optuna.load_study(study_name="shared", storage=url)
    assert [t.state for t in study.trials] == [TrialState.WAITING] * 2  # the first grid's two cells, untouched


@pytest.mark.slow
def test_postgres_grid_a_killed_workers_cell_is_finished_by_another_machine(tmp_path):
    """Two machines share a 2 x 2 grid; the first is killed (-9) mid-cell after finishing one. The
    other finishes every remaining cell, the killed one included, and reports all four; a third
    machine with no run folder at all reports the same rows from the study."""
    url = postgres_url()
    name = f"pg_{uuid.uuid4().hex[:8]}"
    study_name = f"compare-{name}"
    path = write_grid(tmp_path, """
        baseline: standard
        variants:
          standard: {}
          asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
        seeds: 2
        fixed: {training.total_timesteps: 2500, training.eval_every: 0, training.checkpoint_every: 250}
        conditions:
          clean: {}
        evaluation: {episodes: 2, backend: envpool}
        heartbeat: {interval: 1, grace_period: 3}
    """, name)
    storage = StorageTarget.resolve(url, tmp_path).open()
    machine_a, machine_b, machine_c = tmp_path / "machine_a", tmp_path / "machine_b", tmp_path / "machine_c"
    victim = start(machine_a, "compare", str(path), "--storage", url)
    survivor = start(machine_b, "compare", str(path), "--storage", url)
    victim_id = f"{socket.gethostname()}-{victim.pid}"

    def checkpointed(trial) -> bool:  # the cell's run folder on machine A has a checkpoint (seed: its last param)
        params = trial.params
        return "seed" in params and bool(list((machine_a / "runs" / name / params["variant"]).glob(
            f"*/seed{params['seed']}/checkpoints/*")))

    killed = kill_then_finish(victim, survivor, lambda: second_trial_under_way(study_name, storage, victim_id,
                                                                                 checkpointed),
                              180, "machine A to be training its second cell", 300)

    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    assert trials[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["worker"] == f"{socket.gethostname()}-{survivor.pid}"
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    cells = {cell_of(t) for t in complete}
    assert len(complete) == len(cells) == 4  # every cell once
    # The killed cell was left mid-training on machine A and trained whole on machine B.
    killed_cell = cell_of(killed)
    folder = Path("runs") / name / killed_cell.variant / killed_cell.scenario / f"seed{killed_cell.seed}"
    assert json.loads((machine_a / folder / "run.json").read_text())["status"] == "running"
    finished = json.loads((machine_b / folder / "run.json").read_text())
    assert finished["status"] == "finished" and finished["steps"] >= 2500
    assert url not in (machine_b / folder / "run.json").read_text()  # the password is never saved
    assert mask_url(url) in (machine_b / folder / "run.json").read_text()
    # Each machine's report holds all four cells, each value the one its own machine's run wrote.
    by_machine = {t.user_attrs["worker"]: machine_a if t.user_attrs["worker"] == victim_id else machine_b
                  for t in complete}
    assert set(by_machine.values()) == {machine_a, machine_b}  # both machines finished cells
    expected = {(c.variant, str(c.seed)): condition_record(by_machine[t.user_attrs["worker"]], name, c)
                for t in complete for c in [cell_of(t)]}
    rows = report_rows(machine_b, name)
    assert len(rows) == 4
    for row in rows:
        record = expected[(row["variant"], row["seed"])]
        assert float(row["mean_return"]) == pytest.approx(record["summary"]["mean_return"])
        assert float(row["crash_rate"]) == pytest.approx(record["summary"]["crash_rate"])
    gathered = run(machine_c, "compare", str(path), "--storage", url, "--report-only")
    assert gathered.returncode == 0, gathered.stdout + gathered.stderr
    assert sorted(map(str, report_rows(machine_c, name))) == sorted(map(str, rows))
    # machine C ran no cell (its report holds plots/seeds.png, no cell folder)
    assert not list((machine_c / "runs" / name).glob("*/*/seed[0-9]*"))
    optuna.delete_study(study_name=study_name, storage=storage)


@pytest.mark.slow
def test_ctrl_c_requeues_the_running_cell_and_a_rerun_resumes_it(tmp_path):
    path = write_grid(tmp_path, """
        baseline: standard
        variants:
          standard: {}
        seeds: 1
        fixed: {training.total_timesteps: 3000, training.eval_every: 0, training.checkpoint_every: 250}
        conditions:
          clean: {}
        evaluation: {episodes: 2, backend: envpool}
    """, "stop")
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    cell_dir = tmp_path / "runs" / "stop" / "standard" / "highway-fast-v0" / "seed0"
    worker = start(tmp_path, "compare", str(path), "--storage", url)
    wait_for(lambda: list((cell_dir / "checkpoints").glob("*")), 120, "the cell's first checkpoint")
    worker.send_signal(signal.SIGINT)  # as Ctrl-C: the run saves a checkpoint and stops
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 130, output
    interrupted = json.loads((cell_dir / "run.json").read_text())
    assert interrupted["status"] == "interrupted" and 0 < interrupted["steps"] < 3000
    stopped, queued = optuna.load_study(study_name="compare-stop", storage=url).trials
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["interrupted"] is True
    assert queued.state == TrialState.WAITING and queued.system_attrs["fixed_params"] == {
        "variant": "standard", "scenario": "highway-fast-v0", "seed": 0}
    result = run(tmp_path, "compare", str(path), "--storage", url)
    assert result.returncode == 0, result.stdout + result.stderr
    stopped, resumed = optuna.load_study(study_name="compare-stop", storage=url).trials
    assert resumed.state == TrialState.COMPLETE
    finished = json.loads((cell_dir / "run.json").read_text())
    assert finished["status"] == "finished" and finished["steps"] >= 3000
    assert [entry["from_step"] for entry in finished["resumed"]] == [interrupted["steps"]]  # continued, not redone
