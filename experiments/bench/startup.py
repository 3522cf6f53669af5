"""Start-up cost of the command line: wall time, peak memory and heavy imports of light commands.

Each command runs in a fresh interpreter (``python -m experiments.cli ARGS``, what the
``neurodrive`` script does), repeats interleaved; the figure is the median wall time, interpreter
start included. The child also reports which of torch, SB3, optuna, scipy and highway-env it
imported: the light commands import none of them (``envs`` reads highway-env's registry).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from experiments.bench.section import BenchOptions

COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("sweep", "--help"), ("train", "--help"), ("envs",))
HEAVY_MODULES: tuple[str, ...] = ("torch", "stable_baselines3", "optuna", "scipy", "highway_env")
TARGET_S = 0.5  # `neurodrive --help`
_CHILD = """
import resource, runpy, sys, json
heavy_names = json.loads(sys.argv[2])
sys.argv = ["neurodrive", *json.loads(sys.argv[1])]
try:
    runpy.run_module("experiments.cli", run_name="__main__")
except SystemExit:
    pass
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
heavy = [name for name in heavy_names if name in sys.modules]
print("\\n" + json.dumps({"peak_kib": peak, "heavy": heavy}))
"""


def measure_command(args: tuple[str, ...]) -> dict[str, Any]:
    """One fresh-process run of ``neurodrive ARGS``: wall seconds, peak RSS MiB, heavy imports."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(list(args)), json.dumps(HEAVY_MODULES)],
                            capture_output=True, text=True, timeout=300, check=False)
    wall_s = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"neurodrive {' '.join(args)} failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    peak_mib = report["peak_kib"] / 2**20 if sys.platform == "darwin" else report["peak_kib"] / 2**10
    return {"wall_s": wall_s, "peak_rss_mib": peak_mib, "heavy_imports": report["heavy"]}


def run_startup_section(console: Console, repeats: int = 7) -> dict[str, Any]:
    """Time every light command; return the figures (:func:`print_startup_section` prints them)."""
    runs: dict[tuple[str, ...], list[dict[str, Any]]] = {args: [] for args in COMMANDS}
    for _ in range(repeats):
        for args in COMMANDS:
            runs[args].append(measure_command(args))
    rows = []
    for args, measured in runs.items():
        rows.append({
            "command": "neurodrive " + " ".join(args),
            "wall_s_median": statistics.median(run["wall_s"] for run in measured),
            "wall_s": [run["wall_s"] for run in measured],
            "peak_rss_mib": max(run["peak_rss_mib"] for run in measured),
            "heavy_imports": sorted({name for run in measured for name in run["heavy_imports"]}),
        })
    help_row = rows[0]
    target = {"command": "neurodrive --help", "max_wall_s": TARGET_S, "measured": help_row["wall_s_median"],
              "met": help_row["wall_s_median"] <= TARGET_S}
    return {"rows": rows, "target": target, "repeats": repeats}


def print_startup_section(figures: dict[str, Any], console: Console) -> None:
    table = Table(title=f"command start-up, fresh interpreter, median of {figures['repeats']}")
    for column in ("command", "wall s", "peak RSS MiB", "heavy imports (torch, SB3, optuna, scipy, highway_env)"):
        table.add_column(column, justify="right" if column in ("wall s", "peak RSS MiB") else "left")
    for row in figures["rows"]:
        table.add_row(row["command"], f"{row['wall_s_median']:.2f}", f"{row['peak_rss_mib']:.0f}",
                      ", ".join(row["heavy_imports"]) or "none")
    console.print(table)
    verdict = "[green]MET[/green]" if figures["target"]["met"] else "[red]NOT MET[/red]"
    console.print(f"Target (neurodrive --help <= {TARGET_S} s): {verdict}, {figures['target']['measured']:.2f} s")


class StartupSection:
    """``startup``: wall time and peak memory of ``neurodrive --help`` and friends, in fresh processes."""

    name = "startup"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        default = 3 if options.quick else 7
        return run_startup_section(console, repeats=options.repeats or default)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_startup_section(figures, console)


SECTION = StartupSection()
