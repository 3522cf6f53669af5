"""``neurodrive sweep`` and ``neurodrive dashboard``: Optuna studies over experiment fields.

``neurodrive dashboard`` on a comparison folder or a folder of run folders hands over to
``experiments.dashboards`` (TensorBoard, the report, and optuna-dashboard for a study there).

The CLI registers both with ``add_sweep_commands(commands)``; this module imports optuna only
when a command runs.

A sweep's folder ``<root>/<study>/`` (root: the sweep file's ``root``, else
``<experiment logging.root>/sweeps``) holds ``sweep.json`` (the resolved sweep and its storage,
password masked), ``study.journal`` (the default storage), one folder per trial
(``trial_0007/<run>/``) and the report (see ``experiments.sweeps.report``). Rerunning the same
command resumes the study: ``--n-trials`` is the total, finished trials included.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from experiments.config.bounds import MAX_TRIALS, check_flag, check_workers
from experiments.config.errors import ConfigError
from experiments.distributed import JOURNAL_NAME, STORAGE_ENV
from experiments.terminal import make_console

if TYPE_CHECKING:  # the heavy imports wait until a command runs: the CLI imports this module
    import optuna
    from optuna.storages import BaseStorage

    from experiments.distributed.storage import StorageTarget
    from experiments.sweeps.report import SweepReport
    from experiments.sweeps.spec import Sweep

logger = logging.getLogger("neurodrive.sweep")
console = make_console()
DASHBOARD_HOST = "127.0.0.1"


def add_sweep_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``sweep`` and ``dashboard`` to the ``neurodrive`` subcommands."""
    sweep = commands.add_parser("sweep", help="tune an experiment with Optuna (resumable, parallel)")
    sweep.add_argument("sweep_file", help="sweep YAML file (experiments/presets/sweeps/*.yaml)")
    sweep.add_argument("--n-trials", type=int, default=None,
                       help="total trials of the study, finished ones included (default: the file's n_trials)")
    sweep.add_argument("--storage", default=None, metavar="URL",
                       help=f"database URL shared by workers on many machines, e.g. postgresql+psycopg://user@host/db "
                            f"(default: ${STORAGE_ENV}, else a journal file in the sweep folder)")
    sweep.add_argument("--study-name", default=None, help="default: the file's study_name, else its file name")
    sweep.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    sweep.add_argument("--report", action="store_true", help="only write the report of the study as it stands")
    sweep.set_defaults(handler=sweep_command)

    dashboard = commands.add_parser(
        "dashboard", help="optuna-dashboard on a sweep or a storage URL; TensorBoard (and the report) on a "
                          "comparison folder or a folder of run folders")
    dashboard.add_argument("target", nargs="?", default=None,
                           help=f"a comparison folder (<root>/<name>), a folder of run folders, a sweep folder, "
                                f"a folder holding one sweep, a journal file, or a database URL "
                                f"(default: ${STORAGE_ENV})")
    dashboard.add_argument("--port", type=int, default=8080,
                           help="port of the first server; the others take the next free ports after it")
    dashboard.add_argument("--storage", default=None, metavar="URL",
                           help="with a comparison folder: the database of its shared grid (compare --storage), "
                                "served by optuna-dashboard beside TensorBoard")
    dashboard.set_defaults(handler=dashboard_command)


def sweep_command(args: argparse.Namespace) -> int:
    from experiments.distributed.storage import StorageTarget, mask_argv
    from experiments.sweeps.spec import load_sweep

    check_flag("--n-trials", args.n_trials, MAX_TRIALS)
    check_workers("--workers", args.workers)
    sweep = load_sweep(args.sweep_file, args.study_name)  # every check before any trial
    if not args.report:  # said once here, not by each trial's envs
        from envs.scenarios import note_superseded

        for scenario in sweep.env_ids():
            note_superseded(scenario)
    target = StorageTarget.resolve(args.storage, sweep.sweep_dir)
    if args.report:
        study = load_existing_study(sweep, target)
        failed_workers = 0
    else:
        command = ["neurodrive", *mask_argv(sys.argv[1:])]  # run.json keeps it: no password
        try:
            study, failed_workers = run_sweep(sweep, target, args.n_trials, args.workers, command)
        except KeyboardInterrupt:
            print("interrupted; the interrupted trials are re-queued: rerun the same command to resume",
                  file=sys.stderr)
            return 130
    from experiments.sweeps.report import write_report

    print_report(write_report(study, sweep), sweep)
    if failed_workers:
        console.print(f"[red]{failed_workers} worker process(es) failed; see the log above[/red]")
        return 1
    return 0


def run_sweep(sweep: Sweep, target: StorageTarget, n_trials: int | None = None, workers: int = 1,
              command: Sequence[str] = ()) -> tuple[optuna.Study, int]:
    """Create or resume the study and run workers until it holds ``n_trials`` trials.

    Returns the study and the number of worker processes that failed.
    """
    import optuna

    from experiments.sweeps.study import budget_used, prepare_study, run_worker, write_sweep_hparams
    from experiments.workers import Job, run_jobs

    study = prepare_study(sweep, target)
    n_trials = n_trials or sweep.spec.n_trials
    if sweep.spec.sampler.type == "grid" and n_trials > sweep.grid_size():
        logger.info("the grid has %d points: running %d trials, not %d", sweep.grid_size(), sweep.grid_size(),
                    n_trials)
        n_trials = sweep.grid_size()
    done = budget_used(study.get_trials(deepcopy=False))
    console.print(f"sweep {sweep.study_name}: {n_trials} trials ({done} already), {workers} worker(s); "
                  f"folder {sweep.sweep_dir}; storage {target.describe()}")
    failed = 0
    if workers == 1:
        run_worker(sweep, target, n_trials, 0, command)
    else:  # on Ctrl-C each worker saves, re-queues its trial and exits
        jobs = [Job(f"sweep-worker-{index}", run_worker, (sweep, target, n_trials, index, list(command)))
                for index in range(workers)]
        failed = sum(not result.ok for result in run_jobs(jobs, workers))
    write_sweep_hparams(sweep.sweep_dir)  # TensorBoard's HParams tab: every trial's keys, a trial column
    return optuna.load_study(study_name=sweep.study_name, storage=target.open(sweep.spec.heartbeat)), failed


def load_existing_study(sweep: Sweep, target: StorageTarget) -> optuna.Study:
    import optuna

    if target.is_journal and not (target.journal and target.journal.is_file()):
        raise ConfigError(f"--report: no study yet: {target.journal} does not exist (run the sweep first)")
    try:
        return optuna.load_study(study_name=sweep.study_name, storage=target.open(sweep.spec.heartbeat))
    except KeyError:
        raise ConfigError(f"--study-name: no study {sweep.study_name!r} in {target.describe()}") from None


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)  # URLs and paths whole, never wrapped


def print_report(report: SweepReport, sweep: Sweep) -> None:
    states = ", ".join(f"{count} {state.lower()}" for state, count in report.states.items())
    console.print(f"study {report.study_name}: {states or 'no trials'}")
    for warning in report.warnings:  # before the tables: they are what it puts in doubt
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}", highlight=False)
    if report.best:
        table = Table(title="best trial" if len(report.best) == 1 else "Pareto-optimal trials")
        for column in ("trial", *sweep.metrics, "parameters", "config"):
            table.add_column(column)
        for best in report.best:
            params = "\n".join(f"{name} = {value!r}" for name, value in best.params.items())
            table.add_row(str(best.number), *(f"{best.values[m]:.4g}" for m in sweep.metrics), params,
                          best.config_path)
        console.print(table)
    for metric, importances in report.importances.items():
        if importances:
            table = Table(title=f"parameter importance for {metric} (fANOVA)")
            table.add_column("parameter")
            table.add_column("importance", justify="right")
            for name, value in importances.items():
                table.add_row(name, f"{value:.3f}")
            console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    for plot in report.plots:
        console.print(f"plot: {plot}")
    console.print(f"report: {sweep.sweep_dir / 'report.json'}")


def dashboard_command(args: argparse.Namespace) -> int:
    from experiments.dashboards import runs_folder, serve_runs_folder

    runs = runs_folder(args.target or os.environ.get(STORAGE_ENV))
    if args.storage is not None and runs is None:
        raise ConfigError("--storage: goes with a comparison folder or a folder of run folders as the target; "
                          "for a study alone, give its URL as the target")
    if runs is not None:  # a comparison folder or a folder of run folders: TensorBoard, the report, any study
        study, notes = None, []
        if args.storage is not None:  # a shared grid's study
            from experiments.distributed.storage import StorageTarget

            target = StorageTarget.resolve(args.storage, runs.path)
            study = (target.open(), target.describe())
        elif any((sweep / JOURNAL_NAME).is_file() for sweep in runs.sweep_dirs):  # a database's sweeps: give its URL
            try:
                study = dashboard_storage(str(runs.path))
            except ConfigError as error:  # e.g. several sweeps: the runs are still worth serving
                notes.append(f"no optuna-dashboard: {error}")
        return serve_runs_folder(runs, args.port, study, say=say, notes=notes)
    storage, description = dashboard_storage(args.target)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port: must be in 1..65535, got {args.port}")
    with socket.socket() as probe:  # fail clearly, not with a server traceback
        try:
            probe.bind((DASHBOARD_HOST, args.port))
        except OSError:
            raise ConfigError(f"--port: {args.port} is in use on {DASHBOARD_HOST}; pick another") from None
    from optuna_dashboard import run_server

    console.print(f"optuna-dashboard on http://{DASHBOARD_HOST}:{args.port}/ ({description}); Ctrl-C stops it")
    try:
        run_server(storage, host=DASHBOARD_HOST, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0


def dashboard_storage(target: str | None) -> tuple[BaseStorage, str]:
    """The storage behind a sweep folder, a folder of sweeps, a journal file or a database URL."""
    import json

    from experiments.distributed.storage import StorageTarget

    target = target or os.environ.get(STORAGE_ENV)
    if not target:
        raise ConfigError(f"dashboard: give a sweep folder, a journal file or a database URL (or set {STORAGE_ENV})")
    if "://" in target:
        resolved = StorageTarget.resolve(target, Path("."))
        return resolved.open(), resolved.describe()
    path = Path(target)
    if path.is_file():
        return StorageTarget(journal=path).open(), f"journal file {path}"
    if not path.is_dir():
        raise ConfigError(f"dashboard: {path}: no such folder, journal file or database URL; give a sweep folder, "
                          "a comparison folder, a folder of run folders, a journal file or a database URL")
    sweep_json = path / "sweep.json"
    if not (path / JOURNAL_NAME).is_file() and sweep_json.is_file():
        storage = json.loads(sweep_json.read_text()).get("storage")
        if storage != "journal":
            raise ConfigError(f"dashboard: the sweep in {path} is stored in {storage}; pass that URL "
                              f"(with its password, or set {STORAGE_ENV} / PGPASSWORD)")
    journals = [path / JOURNAL_NAME] if (path / JOURNAL_NAME).is_file() else sorted(path.rglob(JOURNAL_NAME))
    if not journals:
        raise ConfigError(f"dashboard: no {JOURNAL_NAME} under {path}, nor any run folder or report; give a sweep "
                          "folder, a comparison folder (<root>/<name>/), a folder of run folders or a database URL")
    if len(journals) > 1:
        listed = ", ".join(str(journal.parent) for journal in journals)
        raise ConfigError(f"dashboard: {path} holds {len(journals)} sweeps; pick one: {listed}")
    return StorageTarget(journal=journals[0]).open(), f"journal file {journals[0]}"
