"""A group's HParams summary, read by a real TensorBoard through its HTTP API: two hand-made runs whose
keys differ (the dopamine rule's parameters) both show their keys, and the ``variant`` column."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agents.hparams import EVAL_METRICS, experiment_summary, session_start_summary
from experiments.dashboards import (
    HPARAMS_SUFFIX,
    Dashboard,
    read_session_hparams,
    refresh_runs_hparams,
    write_hparams_summary,
)
from tests_support import free_port, wait_for

RECORDS = {  # run -> its record, as a grid's cells write them
    "standard/highway-fast-v0/seed0/tb": {"algo": "dqn", "seed": 0, "variant": "standard"},
    "asymmetric/highway-fast-v0/seed0/tb": {"algo": "dqn", "seed": 0, "variant": "asymmetric",
                                            "neuro.dopamine.type": "asymmetric", "neuro.dopamine.kappa": 0.3},
}


def write_run(tb_dir: Path, record: dict[str, Any], own_summary: bool) -> None:
    """A run's events: its session-start record (and, as runs wrote before, a summary of its own) and
    one evaluation scalar."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tb_dir))
    if own_summary:
        writer.add_event(Event(wall_time=time.time(), step=0, summary=experiment_summary([record])))
    writer.add_event(Event(wall_time=time.time(), step=0, summary=session_start_summary(record)))
    writer.add_event(Event(wall_time=time.time(), step=100, summary=Summary(
        value=[Summary.Value(tag="eval/mean_return", simple_value=float(len(record)))])))
    writer.close()


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def make_grid(folder: Path, own_summary: bool = False, variant: bool = True) -> Path:
    for run, record in RECORDS.items():
        write_run(folder / run, {key: value for key, value in record.items() if variant or key != "variant"},
                  own_summary)
    return folder


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    return make_grid(tmp_path / "grid")


def test_session_records_read_back_as_written(grid):
    for run, record in RECORDS.items():
        assert read_session_hparams(grid / run) == pytest.approx(record)
    assert read_session_hparams(grid) is None  # no record at the top


def test_rewriting_the_summary_keeps_one_file(grid):
    write_hparams_summary(grid, RECORDS.values())
    write_hparams_summary(grid, RECORDS.values())
    assert len(list(grid.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"))) == 1


def served_experiment(logdir: Path) -> tuple[dict[str, Any], list[str], dict[str, dict[str, Any]]]:
    """TensorBoard's HParams columns (by name, in its order), metrics and sessions' values, through its HTTP API
    (tensorboard/plugins/hparams/http_api.md: POST /experiment, /session_groups)."""
    port = free_port()
    board = Dashboard()
    try:
        board.start_tensorboard(logdir, port)
        url = f"http://127.0.0.1:{port}/data/plugin/hparams/"
        body = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
                "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}

        def groups() -> list[dict[str, Any]] | None:
            found = post_json(url + "session_groups", body)["sessionGroups"]
            return found if len(found) == len(RECORDS) else None

        sessions = {group["name"]: group["hparams"] for group in wait_for(groups, 60, "TensorBoard's sessions")}
        experiment = post_json(url + "experiment", {"experimentName": ""})
    finally:
        board.stop()
    metrics = [info["name"]["tag"] for info in experiment.get("metricInfos", [])]
    return {info["name"]: info for info in experiment["hparamInfos"]}, metrics, sessions


@pytest.mark.slow
def test_tensorboard_shows_every_runs_keys_and_the_variant_column(tmp_path):
    grid = make_grid(tmp_path / "grid")
    write_hparams_summary(grid, RECORDS.values())
    columns, metrics, sessions = served_experiment(grid)

    assert set(columns) == {"algo", "seed", "variant", "neuro.dopamine.type", "neuro.dopamine.kappa"}
    assert list(columns)[0] == "variant"
    assert sorted(columns["variant"]["domainDiscrete"]) == ["asymmetric", "standard"]
    assert columns["neuro.dopamine.kappa"]["domainDiscrete"] == [0.3]
    assert columns["neuro.dopamine.type"]["type"] == "DATA_TYPE_STRING"
    assert metrics == list(EVAL_METRICS)  # the evaluation's scalars, not every training scalar
    assert sessions["asymmetric/highway-fast-v0/seed0/tb"]["neuro.dopamine.kappa"] == pytest.approx(0.3)
    assert sessions["asymmetric/highway-fast-v0/seed0/tb"]["variant"] == "asymmetric"
    assert sessions["standard/highway-fast-v0/seed0/tb"]["variant"] == "standard"
    assert "neuro.dopamine.type" not in sessions["standard/highway-fast-v0/seed0/tb"]


@pytest.mark.slow
def test_a_summary_from_the_runs_events_unites_their_keys(tmp_path):
    """A sweep's way: the records read back from the runs' events, with a column given beside them."""
    grid = make_grid(tmp_path / "grid", variant=False)
    refresh_runs_hparams(grid, {grid / run: {"variant": record["variant"]} for run, record in RECORDS.items()})
    columns, _, _ = served_experiment(grid)
    assert sorted(columns["variant"]["domainDiscrete"]) == ["asymmetric", "standard"]
    assert {"neuro.dopamine.type", "neuro.dopamine.kappa"} <= set(columns)


@pytest.mark.slow
def test_without_the_group_summary_one_runs_own_summary_hides_the_others_keys(tmp_path):
    """Why a group's runs write no summary of their own: TensorBoard shows one run's, and the columns
    of the other run's keys vanish (what every grid showed before)."""
    grid = make_grid(tmp_path / "grid", own_summary=True)
    columns, _, _ = served_experiment(grid)
    shown = [set(record) for record in RECORDS.values()]
    assert set(columns) in shown and set(columns) != set().union(*shown)
