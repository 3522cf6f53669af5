"""``neurodrive compare``: train and evaluate a grid of variants x scenarios x seeds, then report.

The CLI registers it with ``add_compare_command(commands)``; this module imports torch, SB3 and the
simulators only when the command runs.

A comparison's folder ``<root>/<name>/`` holds one ordinary run folder per cell,
``<variant>/<scenario>/seed<k>/``, each with ``compare-<condition>.json`` beside its usual files, and
``report/`` (``experiments.compare.report``). Rerunning the same command continues: finished cells
are skipped, interrupted ones resume from their last checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from experiments.config.errors import ConfigError
from experiments.terminal import make_console

if TYPE_CHECKING:  # the heavy imports wait until the command runs: the CLI imports this module
    from experiments.compare.spec import Cell, Comparison

console = make_console()


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``neurodrive`` subcommands."""
    compare = commands.add_parser("compare", help="train and evaluate variants x scenarios x seeds, then report")
    compare.add_argument("compare_file", help="comparison YAML file (experiments/presets/compare/*.yaml)")
    compare.add_argument("--workers", type=int, default=1, help="cells trained at once, each in its own process")
    compare.add_argument("--report-only", action="store_true",
                         help="run nothing: write the report of the cells evaluated so far")
    compare.add_argument("--quick", action="store_true",
                         help="the file's quick: block (a short smoke run), in <root>/<name>-quick")
    compare.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from experiments.compare.runner import collect_results, run_grid
    from experiments.compare.spec import load_comparison

    if args.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {args.workers}")
    comparison = load_comparison(args.compare_file, quick=args.quick)  # every check before any run
    command = ["neurodrive", *sys.argv[1:]]
    failed: dict[Cell, str] = {}
    if not args.report_only:
        try:
            outcome = run_grid(comparison, args.workers, command, say=say)
        except KeyboardInterrupt:
            print("interrupted: finished cells are kept; rerun the same command to continue "
                  "(interrupted cells resume from their last checkpoint)", file=sys.stderr)
            return 130
        failed = outcome.failed
    rows = collect_results(comparison)
    if args.report_only and not rows:
        raise ConfigError(f"--report-only: no evaluation under {comparison.folder} matches the file's conditions and "
                          "evaluation settings; run the comparison first (it redoes outdated evaluations)")
    if rows:
        write_comparison_report(comparison, rows, command)
    else:
        say("no evaluated cell yet: no report")
    if failed:
        console.print(f"[red]{len(failed)} cell(s) failed: {', '.join(cell.label for cell in failed)}; "
                      "rerun the same command to retry them[/red]")
        return 1
    return 0


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False)  # cell labels and errors hold brackets


def write_comparison_report(comparison: Comparison, rows: list[dict[str, Any]], command: Sequence[str]) -> None:
    """Hand the rows to ``experiments.compare.report.write_report`` with what the report records."""
    from experiments.files import library_versions
    from experiments.runs.build import resolve_backend
    from experiments.runs.folder import LIBRARIES, platform_commit

    first = {variant: next(cell for cell in comparison.cells() if cell.variant == variant)
             for variant in comparison.variants}
    meta = {
        "name": comparison.name,
        "compare_file": comparison.text,
        # Each variant's full experiment, as its first cell (first scenario, first seed) trains it.
        "configs": {variant: resolve_backend(comparison.cell_config(cell))[0].model_dump(mode="json")
                    for variant, cell in first.items()},
        "commit": platform_commit(),
        "versions": library_versions(LIBRARIES),
        "command": list(command),
    }
    try:
        from experiments.compare.report import write_report
    except ModuleNotFoundError as error:
        if error.name != "experiments.compare.report":
            raise
        console.print(f"no report module (experiments.compare.report); {len(rows)} result rows collected")
        return
    out_dir = comparison.report_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_report(out_dir, rows, comparison.baseline, meta)
    page = written.get("html") if isinstance(written, dict) else None  # the report's own paths, if it says
    console.print(f"{len(rows)} results; report: {page or out_dir}")
