"""`neurodrive dashboard` on a comparison folder: TensorBoard over its cells (HParams and the grid's
custom-scalars layout), the report, optuna-dashboard for a study beside it, ports, Ctrl-C; and the
layout itself, read back from its event file.

Real servers on 127.0.0.1, each checked through its own HTTP API; the dashboard runs as a subprocess
in its own process group, killed whole in a ``finally``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import types
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from experiments.cli import main
from experiments.config import ConfigError
from experiments.dashboards import (
    GRID_METRICS,
    LAYOUT_DIR,
    RunsFolder,
    allocate_ports,
    port_is_free,
    runs_folder,
)
from experiments.sweeps.command import dashboard_command
from tests_support import EXPERIMENTS, REPO, TINY_GRID, free_port, wait_for

TINY = "name: tiny\n" + TINY_GRID
CELLS = ("standard/highway-fast-v0/seed0", "asymmetric/highway-fast-v0/seed0")
URL_LINE = re.compile(r"^(tensorboard|optuna-dashboard|report)\s+(http://127\.0\.0\.1:(\d+)/\S*)", re.MULTILINE)




def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def get_json(url: str) -> Any:
    return json.loads(get(url)[1])


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """The tiny grid trained and reported by `neurodrive compare` (which also writes its layout)."""
    folder = tmp_path_factory.mktemp("dashboard")
    path = folder / "tiny.yaml"
    path.write_text(f"experiment: {EXPERIMENTS / 'smoke.yaml'}\nroot: {folder / 'runs'}\n" + textwrap.dedent(TINY))
    assert main(["compare", str(path)]) == 0
    grid_dir = folder / "runs" / "tiny"
    assert (grid_dir / "report" / "report.html").is_file()
    return types.SimpleNamespace(root=folder / "runs", dir=grid_dir)


class Dashboard:
    """``neurodrive dashboard`` as a subprocess in its own process group, its output read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "experiments.cli", "dashboard", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                        start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def urls(self, expected: set[str], timeout: float = 90) -> dict[str, list[str]]:
        """The printed URLs by server, once every expected server has printed one."""
        def printed() -> dict[str, list[str]] | None:
            assert self.process.poll() is None, self.output
            found: dict[str, list[str]] = {}
            for what, url, _ in URL_LINE.findall(self.output):
                found.setdefault(what, []).append(url)
            return found if set(found) == expected and "Ctrl-C stops them" in self.output else None

        return wait_for(printed, timeout, f"the dashboard's URLs ({', '.join(sorted(expected))})")

    def group_is_gone(self) -> bool:
        """No live process left in the group (zombies waiting for a reaper do not count)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended while being read
                continue
            if fields[0] != "Z" and int(fields[2]) == self.process.pid:  # state, then ppid, then pgrp
                return False
        return True

    def kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


@contextmanager
def dashboard(*args: str) -> Iterator[Dashboard]:
    server = Dashboard(*args)
    try:
        yield server
    finally:  # whatever failed above: nothing of it (TensorBoard, its data server) outlives the test
        server.kill_group()


def ports_of(urls: dict[str, list[str]]) -> set[int]:
    return {urllib.parse.urlsplit(url).port for found in urls.values() for url in found}


# --- which folders are a dashboard of runs; bad targets; ports --------------------------------------------


def make_run(path: Path) -> Path:
    (path / "tb").mkdir(parents=True)
    (path / "run.json").write_text("{}")
    return path


def test_runs_folders_are_told_from_sweeps_files_and_urls(tmp_path):
    grid = tmp_path / "runs" / "tiny"
    cells = [make_run(grid / variant / "highway-fast-v0" / "seed0") for variant in ("a", "b")]
    make_run(tmp_path / "runs" / "sweeps" / "s" / "trial_0000" / "run")  # a sweep's trial: the sweep's, not ours
    (tmp_path / "runs" / "sweeps" / "s" / "study.journal").write_text("")
    folder = runs_folder(str(tmp_path / "runs"))
    assert folder is not None and sorted(folder.run_dirs) == sorted(cells)
    assert folder.sweep_dirs == [tmp_path / "runs" / "sweeps" / "s"] and folder.grids() == [grid]
    assert runs_folder(str(tmp_path / "runs" / "sweeps" / "s")) is None  # a sweep folder: optuna-dashboard alone
    assert runs_folder(str(tmp_path / "runs" / "sweeps")) is None  # a folder holding one sweep: the same
    assert runs_folder("postgresql+psycopg://u@h/db") is None and runs_folder(str(tmp_path / "nope")) is None
    report_only = tmp_path / "other" / "report"
    report_only.mkdir(parents=True)
    (report_only / "report.html").write_text("<html></html>")
    assert RunsFolder.scan(tmp_path / "other").reports == [report_only / "report.html"]
    assert runs_folder(str(tmp_path / "other")) is not None


@pytest.mark.parametrize("target, expected", [
    ("nope", ["dashboard: ", "nope: no such folder, journal file or database URL",
              "a comparison folder, a folder of run folders"]),
    ("", ["no study.journal under", "nor any run folder or report", "a comparison folder (<root>/<name>/)"]),
])
def test_a_bad_target_is_named_with_what_is_expected(tmp_path, target, expected):
    with pytest.raises(ConfigError) as error:
        dashboard_command(argparse.Namespace(target=str(tmp_path / target), port=free_port(), storage=None))
    for part in expected:
        assert part in str(error.value)


def test_a_port_in_use_is_a_clear_error_naming_port(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.html").write_text("<html></html>")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^--port: {port} is in use on 127.0.0.1; pick another$"):
            dashboard_command(argparse.Namespace(target=str(tmp_path), port=port, storage=None))
        with pytest.raises(ConfigError, match=r"^--port: must be in 1..65535, got 0$"):
            dashboard_command(argparse.Namespace(target=str(tmp_path), port=0, storage=None))


def test_the_next_servers_take_the_next_free_ports():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        first = port - 1 if port_is_free(port - 1) else None
        if first is None:
            pytest.skip("the port below a free one is taken")
        ports = allocate_ports(first, 3)
        assert ports[0] == first and port not in ports and ports == sorted(set(ports))
        assert all(candidate > port for candidate in ports[1:])


# --- the grid's layout --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_layout_puts_each_variants_seeds_on_one_chart(grid):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    (event_file,) = (grid.dir / LAYOUT_DIR).glob("events.out.tfevents.*")  # written by `neurodrive compare`
    events = event_accumulator.EventAccumulator(str(event_file.parent), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    layout = layout_pb2.Layout.FromString(events.Tensors(metadata.CONFIG_SUMMARY_TAG)[0].tensor_proto.string_val[0])
    assert [category.title for category in layout.category] == [f"tiny: {metric}" for metric in GRID_METRICS]
    tags = set(events.Tags()["scalars"])
    for category, metric in zip(layout.category, GRID_METRICS, strict=True):
        titles = [chart.title for chart in category.chart]
        # The comparison file's order: the baseline first.
        assert titles == [f"{metric}: every variant", f"{metric}: standard", f"{metric}: asymmetric"]
        for chart in category.chart:
            (regex,) = chart.multiline.tag
            matched = {tag for tag in tags if re.match(regex, tag)}
            variants = ("standard", "asymmetric") if "every" in chart.title else (chart.title.split(": ")[1],)
            assert matched == {f"tiny/{metric}/{variant}/highway-fast-v0/seed0" for variant in variants}
    for cell in CELLS:  # the copied curve is the cell's own
        history = json.loads((grid.dir / cell / "eval.json").read_text())["evaluations"]
        copied = events.Scalars(f"tiny/eval/mean_return/{cell}")
        assert [(point.step, point.value) for point in copied] == [
            (record["step"], pytest.approx(record["mean_return"], rel=1e-6)) for record in history]


# --- the served dashboard -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dashboard_serves_the_grid_its_hparams_layout_and_report(grid):
    port = free_port()
    with dashboard(str(grid.dir), "--port", str(port)) as server:
        urls = server.urls({"tensorboard", "report"})
        (board,), (report,) = urls["tensorboard"], urls["report"]
        assert board == f"http://127.0.0.1:{port}/"  # --port: the first server's
        assert report.endswith("/report.html") and urllib.parse.urlsplit(report).port > port

        # TensorBoard names runs by their path under the folder.
        # "." is the grid's own HParams summary, LAYOUT_DIR its custom-scalars layout.
        runs = wait_for(lambda: set(get_json(board + "data/runs")) - {LAYOUT_DIR, "."} or None, 60,
                        "TensorBoard to list the runs")
        assert runs == {f"{cell}/tb" for cell in CELLS}
        plugins = get_json(board + "data/plugins_listing")
        assert plugins["hparams"]["enabled"] and plugins["custom_scalars"]["enabled"]

        # HParams: one session per cell, with the variant's own dopamine rule.
        def sessions() -> dict[str, dict[str, Any]] | None:
            body = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
                    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}
            groups = post_json(board + "data/plugin/hparams/session_groups", body)["sessionGroups"]
            return {group["name"]: group["hparams"] for group in groups} if len(groups) == len(CELLS) else None

        hparams = wait_for(sessions, 30, "the HParams sessions")
        assert set(hparams) == runs
        assert hparams["asymmetric/highway-fast-v0/seed0/tb"]["neuro.dopamine.type"] == "asymmetric"
        assert "neuro.dopamine.type" not in hparams["standard/highway-fast-v0/seed0/tb"]
        assert hparams["standard/highway-fast-v0/seed0/tb"]["variant"] == "standard"
        # One summary over the grid: the variant column first, and the keys only one variant has.
        experiment = post_json(board + "data/plugin/hparams/experiment", {"experimentName": ""})
        columns = [info["name"] for info in experiment["hparamInfos"]]
        assert columns[0] == "variant" and "neuro.dopamine.type" in columns

        # Custom scalars: the grid's layout names the variants; a variant's chart draws that variant only.
        layout = wait_for(lambda: get_json(board + "data/plugin/custom_scalars/layout") or None, 30, "the layout")
        charts = [chart for category in layout["category"] for chart in category["chart"]]
        assert {"eval/mean_return: standard", "eval/mean_return: asymmetric"} <= {chart["title"] for chart in charts}
        (standard,) = [chart for chart in charts if chart["title"] == "eval/mean_return: standard"]
        query = urllib.parse.urlencode({"run": LAYOUT_DIR, "tag": standard["multiline"]["tag"][0]})
        scalars = get_json(board + f"data/plugin/custom_scalars/scalars?{query}")
        assert list(scalars["tag_to_events"]) == ["tiny/eval/mean_return/standard/highway-fast-v0/seed0"]
        assert [step for _, step, _ in scalars["tag_to_events"]["tiny/eval/mean_return/standard/highway-fast-v0/seed0"]
                ] == [100, 200]

        # The report, as a static page.
        status, page = get(report)
        assert status == 200 and b"tiny" in page and b"<html" in page.lower()

        # Ctrl-C from a terminal reaches the whole group: the dashboard stops everything and exits 0.
        os.killpg(server.process.pid, signal.SIGINT)
        assert server.process.wait(timeout=30) == 0, server.output
        assert "Traceback" not in server.output, server.output
        wait_for(server.group_is_gone, 15, "TensorBoard and its data server to exit")
        assert all(port_is_free(used) for used in ports_of(urls))


@pytest.mark.slow
def test_dashboard_on_a_root_adds_the_study_beside_the_grid(grid):
    import optuna

    from experiments.distributed.storage import StorageTarget

    sweep_dir = grid.root / "sweeps" / "beside"
    sweep_dir.mkdir(parents=True)
    storage = StorageTarget(journal=sweep_dir / "study.journal").open()
    optuna.create_study(study_name="beside", storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1),
                                                                       n_trials=1)
    port = free_port()
    with dashboard(str(grid.root), "--port", str(port)) as server:
        urls = server.urls({"tensorboard", "optuna-dashboard", "report"})
        (board,), (studies,), (report,) = urls["tensorboard"], urls["optuna-dashboard"], urls["report"]
        assert board == f"http://127.0.0.1:{port}/" and len(ports_of(urls)) == 3
        names = wait_for(lambda: set(get_json(board + "data/runs")) or None, 60, "TensorBoard to list the runs")
        assert {f"tiny/{cell}/tb" for cell in CELLS} | {f"tiny/{LAYOUT_DIR}", "tiny"} == names  # the sweep is optuna's
        data = get_json(studies + "api/studies")
        assert [study["study_name"] for study in data["study_summaries"]] == ["beside"]
        # The one comparison's report folder is served alone; the line names the file.
        assert report.endswith("/report.html") and get(report)[0] == 200
        assert f"{report}  ({grid.dir / 'report' / 'report.html'})" in server.output

        server.process.send_signal(signal.SIGINT)  # the dashboard alone: it must stop TensorBoard itself
        assert server.process.wait(timeout=30) == 0, server.output
        wait_for(server.group_is_gone, 15, "TensorBoard and its data server to exit")
        assert all(port_is_free(used) for used in ports_of(urls))


@pytest.mark.slow
def test_dashboard_storage_adds_a_shared_grids_study(grid, tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="compare-tiny", storage=url)
    with dashboard(str(grid.dir), "--port", str(free_port()), "--storage", url) as server:
        urls = server.urls({"tensorboard", "optuna-dashboard", "report"})
        data = get_json(urls["optuna-dashboard"][0] + "api/studies")
        assert [study["study_name"] for study in data["study_summaries"]] == ["compare-tiny"]
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=30) == 0, server.output


def test_dashboard_storage_needs_a_folder_of_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "experiments.cli", "dashboard", "sqlite:///x.db", "--storage",
                             "sqlite:///x.db"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "--storage: goes with a comparison folder" in result.stderr
