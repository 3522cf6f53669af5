"""The grid's run loop without training: progress lines and their ETA (a fake clock, hand-computed
schedules), one summary of the cells' warnings, and the workers line."""

from __future__ import annotations

import logging
import os
import textwrap
import warnings
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.compare import runner
from experiments.compare.runner import GridProgress, format_duration, run_grid, workers_line
from experiments.compare.spec import Cell, load_comparison
from tests_support import EXPERIMENTS

GRID = """
name: stub
baseline: standard
variants:
  standard: {}
  asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
seeds: 2
fixed: {training.total_timesteps: 200}
conditions:
  clean: {}
"""


def write_grid(folder: Path, body: str = GRID) -> Path:
    path = folder / "stub.yaml"
    path.write_text(f"experiment: {os.path.relpath(EXPERIMENTS / 'smoke.yaml', folder)}\nroot: {folder / 'runs'}\n"
                    + textwrap.dedent(body))
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_and_eta_follow_the_finished_cells_durations():
    # 4 cells, 2 workers: A and B start at 0; A ends at 10 and C starts; B ends at 16 and D starts.
    clock = Clock()
    progress = GridProgress(4, 2, clock)
    progress.start("A")
    progress.start("B")
    clock.now = 10
    # mean 10 s; 3 cells left need 30 s, of which B (10 s in) has done 10: 20 s over 2 workers.
    assert progress.finish("A", "done") == "[1/4] A: done in 10s; 1 running, 2 queued; ETA 10s"
    progress.start("C")
    clock.now = 16
    # mean 13 s; 2 left need 26 s, C has done 6: 20 s over 2 workers.
    assert progress.finish("B", "done") == "[2/4] B: done in 16s; 1 running, 1 queued; ETA 10s"
    progress.start("D")
    clock.now = 20
    # C failed after 10 s: no measure of a cell's cost, the mean stays 13 s; D is 4 s in: 9 s left.
    line = progress.finish("C", "failed (boom)", done=False)
    assert line == "[3/4] C: failed (boom) in 10s; 1 running, 0 queued; ETA 9s"
    clock.now = 134
    assert progress.finish("D", "done") == "[4/4] D: done in 1m58s"  # the last cell: no ETA


def test_a_running_cell_past_the_mean_counts_the_mean():
    clock = Clock()
    progress = GridProgress(3, 2, clock)
    progress.start("A")
    progress.start("B")
    clock.now = 10
    progress.finish("A", "done")
    progress.start("C")
    clock.now = 40
    # mean 10 s; B is 40 s in but counts 10, C 30 s in counts 10: 2 cells x 10 s - 20 s = nothing left.
    assert progress.eta_s(clock.now) == 0.0
    clock.now = 41
    assert progress.finish("B", "done").endswith("ETA 0s")


def test_no_eta_before_a_cell_is_done():
    clock = Clock()
    progress = GridProgress(3, 1, clock)
    progress.start("A")
    assert progress.finish("A", "failed (boom)", done=False).endswith("; 0 running, 2 queued; ETA after a cell is done")


def test_eta_on_one_worker_is_the_mean_times_the_cells_left():
    clock = Clock()
    progress = GridProgress(5, 1, clock)
    progress.start("A")
    clock.now = 60
    assert progress.finish("A", "done").endswith("; 0 running, 4 queued; ETA 4m00s")


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (3720, "1h02m")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("asked", "pending", "line"), [
    (1, 4, "1 worker"), (2, 4, "2 workers"), (2, 1, "1 worker: only 1 cell to run"),
    (4, 3, "3 workers: only 3 cells to run"), (2, 0, "1 worker: no cell to run")])
def test_the_workers_line_explains_fewer_workers_than_asked(asked, pending, line):
    assert workers_line(asked, pending) == line


def test_two_workers_asked_for_one_cell_say_why_one_runs(tmp_path, monkeypatch):
    comparison = load_comparison(write_grid(tmp_path, GRID.replace("seeds: 2", "seeds: 1").replace(
        "  asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}\n", "")))
    monkeypatch.setattr(runner, "_run_in_processes", lambda *args: None)
    said: list[str] = []
    run_grid(comparison, workers=2, say=said.append)
    assert "1 cells (1 train); 1 worker: only 1 cell to run;" in said[0]


def stub_cell(comparison, cell: Cell, command=()) -> Path:
    """A cell that trains nothing and warns as cells do: the same messages in every cell, one of its own."""
    warnings.warn("the same deprecation", DeprecationWarning, stacklevel=1)
    logging.getLogger("neurodrive.eval").warning("action 1 took 99.0%% of %d decisions", 500)
    logging.getLogger("neurodrive.eval").warning("only in %s", cell.label)
    logging.getLogger("neurodrive.compare").info("%s: evaluated", cell.label)  # info still prints
    return comparison.cell_dir(cell)


def test_the_cells_warnings_end_in_one_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_cell", stub_cell)
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # shown once per place, as outside pytest
        assert main(["compare", str(write_grid(tmp_path))]) == 0
    out, err = capsys.readouterr()
    assert "took 99.0%" not in err and "the same deprecation" not in err and "only in" not in err
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("[")] == [
        f"[{index}/4] {label}: done in 0s" + (f"; 0 running, {4 - index} queued; ETA 0s" if index < 4 else "")
        for index, label in enumerate(["standard/highway-fast-v0/seed0", "standard/highway-fast-v0/seed100",
                                       "asymmetric/highway-fast-v0/seed0", "asymmetric/highway-fast-v0/seed100"], 1)]
    summary = lines[lines.index("warnings: 6 kinds, held back while the cells ran"):]
    assert len(summary) == 7  # the title and one line per kind, at the very end
    assert summary[1].startswith("  4x in standard/highway-fast-v0/seed0, standard/highway-fast-v0/seed100, "
                                 "asymmetric/highway-fast-v0/seed0, ... (4 cells): ")
    assert {line.split(": ", 1)[1] for line in summary[1:3]} == {
        "neurodrive.eval: action 1 took 99.0% of 500 decisions", "DeprecationWarning: the same deprecation"}
    assert "  1x in asymmetric/highway-fast-v0/seed100: neurodrive.eval: only in asymmetric/highway-fast-v0/seed100" \
        in summary
