"""Wall time of a comparison grid: ``neurodrive compare`` run as a user runs it, split into training,
final evaluation, the cross-check's evaluation, and start-up.

The grid is ``experiments/presets/compare/highway_ppo.yaml`` (P6, issue 23): 4 variants x 10 seeds of the
shipped PPO (200k steps each, intermediate evaluations on the native port), each final model judged over
100 episodes under 3 conditions (clean, observation noise, merge) on the verified native port, and each
variant's first seed judged again on highway-env under every condition (the cross-check); 2 workers. The
command runs in a fresh folder (``--grid-root``, default a temporary one), so no earlier cell is skipped.
Afterwards each cell's own records say where the time went: ``run.json``'s ``wall_time_s`` (training,
with its intermediate evaluations) and each ``compare-<condition>.json``'s ``wall_s`` (the final
evaluation; ``compare-<condition>.<backend>.json`` for a cross-check). Their sums are process-seconds:
with 2 workers the wall time is about half their total.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from experiments.bench.common import fmt_rate
from experiments.bench.section import BenchOptions

GRID_FILE = Path(__file__).resolve().parents[1] / "presets" / "compare" / "highway_ppo.yaml"
TARGET_S = 40 * 60  # the full grid (4 variants x 10 seeds x 3 conditions) with 2 workers on a 2-core machine
WORKERS = 2


def run_grid_section(quick: bool, console: Console, root: Path | None = None,
                     grid_file: Path = GRID_FILE, workers: int = WORKERS) -> dict[str, Any]:
    """Run the grid (its ``quick:`` block under ``--quick``) in a fresh folder; return the split (:func:`print_grid`
    prints it)."""
    with tempfile.TemporaryDirectory(prefix="neurodrive-grid-") as scratch:
        work_dir = Path(root or scratch).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "experiments.cli", "compare", str(grid_file), "--workers", str(workers),
                   *(["--quick"] if quick else [])]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
            str(GRID_FILE.parents[3]), os.environ.get("PYTHONPATH")]))}
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        with console.status(f"grid bench: {' '.join(command[3:])} in {work_dir}"):
            result = subprocess.run(command, cwd=work_dir, env=environment, capture_output=True, text=True,
                                    check=False)
        wall_s = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"neurodrive compare failed (exit {result.returncode}): {result.stderr[-3000:]}")
        cells = read_cell_times(work_dir)
    figures = summarise(cells, wall_s, workers, quick)
    figures.update(load_avg_start=load_start, load_avg_end=os.getloadavg()[0], command=" ".join(command[3:]))
    return figures


def read_cell_times(work_dir: Path) -> list[dict[str, Any]]:
    """Each cell's training and evaluation seconds, from its run folder."""
    cells = []
    for run_json in sorted(work_dir.glob("runs/compare/*/*/*/seed*/run.json")):
        meta = json.loads(run_json.read_text())
        records = [json.loads(path.read_text()) for path in sorted(run_json.parent.glob("compare-*.json"))]
        evaluations = [record for record in records if not record.get("cross_check")]
        checks = [record for record in records if record.get("cross_check")]
        cells.append({
            "cell": str(run_json.parent.relative_to(work_dir)),
            "steps": meta.get("steps"),
            "train_s": float(meta["wall_time_s"]),
            "eval_s": sum(float(record["wall_s"]) for record in evaluations),
            "eval_episodes": sum(int(record["summary"]["n_episodes"]) for record in evaluations),
            "eval_steps": sum(int(sum(record["episodes"]["lengths"])) for record in evaluations),
            "eval_backends": sorted({str(record["backend"]) for record in evaluations}),
            "cross_check_s": sum(float(record["wall_s"]) for record in checks),
            "cross_check_episodes": sum(int(record["summary"]["n_episodes"]) for record in checks),
            "cross_check_steps": sum(int(sum(record["episodes"]["lengths"])) for record in checks),
            "cross_check_backends": sorted({str(record["backend"]) for record in checks}),
            "mean_return": [record["summary"]["mean_return"] for record in evaluations],
        })
    if not cells:
        raise RuntimeError(f"no finished cell under {work_dir}/runs/compare")
    return cells


def summarise(cells: list[dict[str, Any]], wall_s: float, workers: int, quick: bool) -> dict[str, Any]:
    train_s = sum(cell["train_s"] for cell in cells)
    eval_s = sum(cell["eval_s"] for cell in cells)
    check_s = sum(cell["cross_check_s"] for cell in cells)
    steps = sum(cell["steps"] or 0 for cell in cells)
    eval_steps = sum(cell["eval_steps"] for cell in cells)
    check_steps = sum(cell["cross_check_steps"] for cell in cells)
    return {
        "mode": "quick" if quick else "full",
        "workers": workers,
        "cells": len(cells),
        "wall_s": wall_s,
        "train_process_s": train_s,
        "eval_process_s": eval_s,  # the final evaluation on the file's backend (the native port for P6)
        "cross_check_process_s": check_s,  # the same models again on the reference simulator
        "overhead_s": wall_s - (train_s + eval_s + check_s) / workers,  # start-up, model loading, report
        "train_steps_per_s_per_cell": steps / train_s if train_s else None,
        "eval_steps_per_s_per_cell": eval_steps / eval_s if eval_s else None,
        "cross_check_steps_per_s": check_steps / check_s if check_s else None,
        "eval_episodes": sum(cell["eval_episodes"] for cell in cells),
        "cross_check_episodes": sum(cell["cross_check_episodes"] for cell in cells),
        "cross_checked_cells": sum(bool(cell["cross_check_episodes"]) for cell in cells),
        "eval_backends": sorted({backend for cell in cells for backend in cell["eval_backends"]}),
        "cross_check_backends": sorted({backend for cell in cells for backend in cell["cross_check_backends"]}),
        "target_s": None if quick else TARGET_S,
        "met": None if quick else wall_s <= TARGET_S,
        "per_cell": cells,
    }


def print_grid(figures: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Comparison grid ({figures['command']}), {figures['cells']} cells, "
                        f"{figures['workers']} workers")
    for column in ("", "seconds", "share", "per cell"):
        table.add_column(column, justify="right")
    process_total = figures["train_process_s"] + figures["eval_process_s"] + figures["cross_check_process_s"]
    checked = figures["cross_checked_cells"]
    lines = (("training (process-s)", "train_process_s", figures["cells"]),
             (f"final evaluation on {'+'.join(figures['eval_backends']) or '-'} (process-s)", "eval_process_s",
              figures["cells"]),
             (f"cross-check on {'+'.join(figures['cross_check_backends']) or '-'}, {checked} cells (process-s)",
              "cross_check_process_s", checked))
    for label, key, cells in lines:
        table.add_row(label, f"{figures[key]:,.0f}", f"{figures[key] / process_total:.0%}" if process_total else "-",
                      f"{figures[key] / cells:,.1f}" if cells else "-")
    table.add_row("start-up, loading, report (wall)", f"{figures['overhead_s']:,.0f}", "", "")
    table.add_row("wall time", f"{figures['wall_s']:,.0f}", "", "")
    console.print(table)
    train_rate, eval_rate = figures["train_steps_per_s_per_cell"], figures["eval_steps_per_s_per_cell"]
    console.print(f"training {fmt_rate(train_rate)} env steps/s per cell; final evaluation {fmt_rate(eval_rate)} "
                  f"env steps/s per cell over {figures['eval_episodes']} episodes; cross-check "
                  f"{fmt_rate(figures['cross_check_steps_per_s'])} env steps/s over {figures['cross_check_episodes']} "
                  "episodes")
    if figures["target_s"] is not None:
        verdict = "met" if figures["met"] else "not met"
        console.print(f"Target: the grid in <= {figures['target_s'] / 60:.0f} min wall: {verdict}, "
                      f"{figures['wall_s'] / 60:.1f} min (1-min load {figures['load_avg_start']:.2f} at start)")


class GridSection:
    """``grid``: wall time of the PPO comparison grid with 2 workers: training, final evaluation, cross-check."""

    name = "grid"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_grid_section(options.quick, console, root=options.grid_root)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_grid(figures, console)


SECTION = GridSection()
