"""The grid bench: a real (tiny) comparison run as a user runs it, and its time split read back from
the cells' own records."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from experiments.bench.grid import print_grid, run_grid_section
from tests_support import EXPERIMENTS, TINY_GRID


@pytest.mark.slow
def test_the_grid_section_splits_a_real_grid_into_training_evaluation_and_cross_check(tmp_path):
    grid_file = tmp_path / "tiny.yaml"
    grid_file.write_text(f"experiment: {EXPERIMENTS / 'smoke.yaml'}\nname: tiny\nroot: runs/compare\n" + TINY_GRID)
    out = io.StringIO()
    console = Console(file=out, width=120)
    figures = run_grid_section(False, console, root=tmp_path / "work", grid_file=grid_file)
    print_grid(figures, console)  # the section measures, then prints from its figures
    assert figures["cells"] == 2 and figures["workers"] == 2
    cells = sorted((tmp_path / "work" / "runs" / "compare" / "tiny").glob("*/*/seed0"))
    assert len(cells) == 2
    train_s = sum(json.loads((cell / "run.json").read_text())["wall_time_s"] for cell in cells)
    eval_records = [json.loads(path.read_text()) for cell in cells for path in cell.glob("compare-clean.json")]
    assert len(eval_records) == 2 and all(record["backend"] == "envpool" for record in eval_records)
    # Each variant's first seed again on highway-env (the default cross-check of a native evaluation).
    checks = [json.loads(path.read_text()) for cell in cells for path in cell.glob("compare-clean.highway-env.json")]
    assert len(checks) == 2 and all(record["backend"] == "highway-env" for record in checks)
    assert figures["train_process_s"] == pytest.approx(train_s)
    assert figures["eval_process_s"] == pytest.approx(sum(record["wall_s"] for record in eval_records))
    assert figures["cross_check_process_s"] == pytest.approx(sum(record["wall_s"] for record in checks))
    assert figures["eval_episodes"] == figures["cross_check_episodes"] == 4 and figures["cross_checked_cells"] == 2
    # Two workers: the wall time covers the longest cell, and no more than the cells' total plus start-up.
    longest = max(json.loads((cell / "run.json").read_text())["wall_time_s"] for cell in cells)
    assert longest < figures["wall_s"] < train_s + figures["eval_process_s"] + figures["cross_check_process_s"] + 120
    printed = out.getvalue()
    assert "final evaluation on envpool (process-s)" in printed and "cross-check on highway-env, 2 cells" in printed
    assert "Target: the grid in <= 40 min wall" in printed
