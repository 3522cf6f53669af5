"""``neurodrive compare``: train and evaluate a grid of variants x scenarios x seeds, then report.

The CLI registers it with ``add_compare_command(commands)``; this module imports torch, SB3 and the
simulators only when the command runs.

A comparison's folder ``<root>/<name>/`` holds one ordinary run folder per cell,
``<variant>/<scenario>/seed<k>/``, each with ``compare-<condition>.json`` beside its usual files, and
``report/`` (``experiments.compare.report``). Rerunning the same command continues: finished cells
are skipped, interrupted ones resume from their last checkpoint.

With ``--storage URL`` (or ``$NEURODRIVE_STORAGE``) the grid is a queue in a shared Optuna study that
the same command started on other machines pulls from (``experiments.compare.shared``); the report
then gathers every machine's cells from the study.

With ``--until-conclusive`` (or a ``sequential:`` block in the file) the grid grows look by look, adding
seeds only where a comparison is not settled yet, under a group-sequential design declared up front
(``experiments.compare.conclusive``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from experiments.config.bounds import check_workers
from experiments.config.errors import ConfigError
from experiments.terminal import make_console

if TYPE_CHECKING:  # the heavy imports wait until the command runs: the CLI imports this module
    from experiments.compare.conclusive import SequentialPlan
    from experiments.compare.spec import Cell, Comparison
    from experiments.distributed.storage import StorageTarget

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
    compare.add_argument("--storage", default=None,
                         help="a database URL (postgresql+psycopg://user@host:5432/db) holding the grid as a "
                              "queue of cells that this command on other machines shares; default "
                              "$NEURODRIVE_STORAGE, else none: this machine runs the grid alone")
    compare.add_argument("--study-name", default=None,
                         help="with --storage: the study holding the grid (default compare-<name>, -quick included)")
    compare.add_argument("--until-conclusive", action="store_true",
                         help="add seeds in batches until each variant-vs-baseline comparison is settled, under a "
                              "group-sequential design declared up front (O'Brien-Fleming alpha spending, Bonferroni "
                              "across comparisons); the file's sequential: block sets it, these flags override")
    compare.add_argument("--max-seeds", type=int, default=None,
                         help="with --until-conclusive: the seeds per variant of the last look (default: the file's "
                              "sequential.max_seeds, else 4 x seeds)")
    compare.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from experiments.compare.spec import load_comparison
    from experiments.distributed import STORAGE_ENV
    from experiments.distributed.storage import StorageTarget, mask_argv

    check_workers("--workers", args.workers)
    url = args.storage or os.environ.get(STORAGE_ENV) or None
    if args.study_name is not None and url is None:
        raise ConfigError("--study-name: names the study of a grid shared through --storage; give --storage too "
                          f"(or set ${STORAGE_ENV})")
    comparison = load_comparison(args.compare_file, quick=args.quick)  # every check before any run
    plan = _sequential_plan(comparison, args)
    if not args.report_only:  # said once here, not by each cell's worker process
        from envs.scenarios import note_superseded

        evaluated = (overrides["env.id"] for overrides in comparison.conditions.values() if "env.id" in overrides)
        for env_id in sorted({*comparison.scenarios, *evaluated}):
            note_superseded(env_id)
    target = StorageTarget.resolve(url, comparison.folder) if url else None
    command = ["neurodrive", *mask_argv(sys.argv[1:])]  # saved in every run folder: no password
    held: list[str] = []  # the grid's one summary of its cells' warnings, said last
    sequential = None
    try:
        if plan is not None:
            rows, failed, sequential = _run_sequential(comparison, plan, target, args, command, held)
        elif target is None:
            rows, failed = _run_here(comparison, args, command, held)
        else:
            rows, failed = _run_shared(comparison, target, args, command)
    except KeyboardInterrupt:
        print("interrupted: finished cells are kept; rerun the same command to continue "
              "(interrupted cells resume from their last checkpoint)", file=sys.stderr)
        return 130
    if args.report_only and not rows:
        raise ConfigError(f"--report-only: no evaluation under {comparison.folder if target is None else 'the study'} "
                          "matches the file's conditions and evaluation settings; run the comparison first "
                          "(it redoes outdated evaluations)")
    if rows:
        write_comparison_report(comparison, rows, command, sequential)
    else:
        say("no evaluated cell yet: no report")
    for line in held:
        say(line)
    if failed:
        console.print(f"[red]{len(failed)} cell(s) failed: {', '.join(cell.label for cell in failed)}; "
                      "rerun the same command to retry them[/red]")
        return 1
    return 0


def _run_here(comparison: Comparison, args: argparse.Namespace, command: list[str],
              held: list[str]) -> tuple[list[dict[str, Any]], dict[Cell, str]]:
    """The grid on this machine alone: cells and results in the comparison's folder; ``held`` gets the
    summary of the cells' warnings."""
    from experiments.compare.runner import collect_results, run_grid
    from experiments.runs.folder import FolderLock

    failed: dict[Cell, str] = {}
    if not args.report_only:
        # One command per grid folder (its workers train the cells under it); --storage's queue shares instead.
        with FolderLock(comparison.folder, "comparison folder"):
            outcome = run_grid(comparison, args.workers, command, say=say)
        failed = outcome.failed
        held += outcome.warning_summary()
    return collect_results(comparison), failed


def _run_shared(comparison: Comparison, target: StorageTarget, args: argparse.Namespace,
                command: list[str]) -> tuple[list[dict[str, Any]], dict[Cell, str]]:
    """The grid as a shared study: this machine's workers pull cells; results come from the study."""
    from experiments.compare.shared import (
        collect_study_results,
        default_study_name,
        load_grid_study,
        run_shared_grid,
    )

    study_name = args.study_name or default_study_name(comparison)
    failed: dict[Cell, str] = {}
    if not args.report_only:
        failed = run_shared_grid(comparison, target, study_name, args.workers, command, say=say).failed
    return collect_study_results(comparison, load_grid_study(comparison, target, study_name)), failed


def _sequential_plan(comparison: Comparison, args: argparse.Namespace) -> SequentialPlan | None:
    """The design of ``--until-conclusive`` or the file's ``sequential:`` block; None for a plain grid."""
    from experiments.compare.conclusive import check_design_record, plan_until_conclusive

    if args.max_seeds is not None and args.max_seeds < 1:
        raise ConfigError(f"--max-seeds: must be >= 1, got {args.max_seeds}")
    plan = plan_until_conclusive(comparison, args.until_conclusive, args.max_seeds)
    if plan is not None:
        check_design_record(plan, comparison.folder, write=not args.report_only)
    return plan


def _run_sequential(comparison: Comparison, plan: SequentialPlan, target: StorageTarget | None,
                    args: argparse.Namespace, command: list[str],
                    held: list[str]) -> tuple[list[dict[str, Any]], dict[Cell, str], dict[str, Any]]:
    """Look after look until every comparison is settled (``experiments.compare.conclusive``); ``held`` gets
    each look's summary of its cells' warnings (this machine's)."""
    from experiments.compare.conclusive import LocalLooks, LookRunner, SharedLooks, run_until_conclusive

    say(plan.describe())
    runner: LookRunner
    if target is None:
        runner = LocalLooks(args.workers, command, say, held)
    else:
        from experiments.compare.shared import default_study_name

        runner = SharedLooks(target, args.study_name or default_study_name(comparison), args.workers, command, say)
    run = run_until_conclusive(comparison, plan, runner, report_only=args.report_only, say=say)
    return run.rows, run.failed, run.to_dict()


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False)  # cell labels and errors hold brackets


def write_comparison_report(comparison: Comparison, rows: list[dict[str, Any]], command: Sequence[str],
                            sequential: dict[str, Any] | None = None) -> None:
    """Hand the rows to ``experiments.compare.report.write_report`` with what the report records (and, under
    ``--until-conclusive``, the design and each comparison's outcome as ``meta["sequential"]``)."""
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
        # Each reported cell's config digest (a later look's seeds included): docs/results.md is checked against it.
        "fingerprint": dataclasses.replace(
            comparison, seeds=sorted(set(comparison.seeds) | {int(row["seed"]) for row in rows})).fingerprint(),
    }
    if sequential is not None:
        meta["sequential"] = sequential
    try:
        from experiments.compare.report import condition_kinds, write_report
    except ModuleNotFoundError as error:
        if error.name != "experiments.compare.report":
            raise
        console.print(f"no report module (experiments.compare.report); {len(rows)} result rows collected")
        return
    meta["condition_kinds"] = condition_kinds(comparison.conditions)  # from the parsed file, not its text
    out_dir = comparison.report_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_report(out_dir, rows, comparison.baseline, meta)
    page = written.get("html") if isinstance(written, dict) else None  # the report's own paths, if it says
    for sentence in written.get("headline", []) if isinstance(written, dict) else []:
        console.print(sentence, markup=False, highlight=False)  # the verdicts (and a sequential design)
    console.print(f"{len(rows)} results; report: {page or out_dir}")
