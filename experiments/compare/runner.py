"""Running a comparison's grid: each cell an ordinary run folder, trained then evaluated under every
condition, K cells at a time in their own processes; and reading the results back as rows.

A cell's folder ``<root>/<name>/<variant>/<scenario>/seed<k>`` is fixed, so a rerun finds it:

- ``finished`` with every condition's file up to date: skipped;
- ``finished`` with a condition file missing, or made with other settings: only those evaluations run;
- interrupted, failed or killed (``running`` left behind) with a checkpoint: resumed from it;
- without a checkpoint, or finished without its ``model.zip``: trained again from scratch.

A cell that trains again (resumed or from scratch) loses its old condition files: they judged
another model. A cell's saved config must equal the one the comparison file gives it now; a
mismatch is an error before anything runs, as a resumed sweep with another search space is.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from experiments.compare.spec import Cell, Comparison
from experiments.config import ConfigError
from experiments.dashboards import VARIANT_COLUMN, refresh_grid_layout, write_hparams_summary
from experiments.files import write_json_atomic
from experiments.runs.errors import RunInterrupted
from experiments.runs.folder import RunFolder
from experiments.workers import Job, JobResult, run_jobs

logger = logging.getLogger("neurodrive.compare")

CellAction = Literal["done", "evaluate", "resume", "retrain", "train"]
CONDITION_FILE = "compare-{}.json"  # a cross-check's: compare-<condition>.<backend>.json (the glob covers both)


def condition_path(run_dir: Path, condition: str, backend: str | None = None) -> Path:
    """A condition's evaluation record; with ``backend``, its cross-check's on that backend."""
    return run_dir / CONDITION_FILE.format(f"{condition}.{backend}" if backend else condition)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's mapping, or ``None`` when it is missing or unreadable (a cell to redo)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_meta(run: RunFolder) -> dict[str, Any] | None:
    """The run's ``run.json``, or ``None`` when it is missing or unreadable (the run died early)."""
    try:
        return run.read_meta()
    except (OSError, ValueError):
        return None


def is_current(comparison: Comparison, condition: str, record: dict[str, Any] | None,
               backend: str | None = None) -> bool:
    """Whether an evaluation record (a cross-check's on ``backend``) was made with the condition's present
    settings."""
    return record is not None and record.get("settings") == comparison.evaluation_settings(condition, backend)


def cross_checks(comparison: Comparison, run_dir: Path) -> dict[str, str]:
    """The conditions a cell is cross-checked under, with the backend: none unless the cell is among its
    variant's first seeds, and not a condition whose own evaluation already runs on that backend."""
    from experiments.runs.build import resolve_backend

    run = RunFolder(run_dir)
    spec = comparison.evaluation.cross_check_spec()
    if spec is None or read_config_seed(run) not in comparison.seeds[:spec.seeds]:
        return {}
    try:
        run_config = run.load_config()
    except (OSError, ValueError):  # a folder the plan retrains: nothing to cross-check yet
        return {}
    return {condition: spec.backend for condition in comparison.conditions
            if resolve_backend(comparison.condition_config(run_config, condition))[1].backend != spec.backend}


def read_config_seed(run: RunFolder) -> int | None:
    """The cell's training seed from its saved config (cheaper than validating it), or None."""
    try:
        seed = yaml.safe_load(run.config_path.read_text())["training"]["seed"]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
    return int(seed)


def stale_conditions(comparison: Comparison, run_dir: Path) -> list[str]:
    """Conditions whose evaluation file, or cross-check file where the cell has one, is missing or was made
    with other settings."""
    checked = cross_checks(comparison, run_dir)
    return [condition for condition in comparison.conditions
            if not is_current(comparison, condition, read_json(condition_path(run_dir, condition)))
            or (condition in checked and not is_current(
                comparison, condition, read_json(condition_path(run_dir, condition, checked[condition])),
                checked[condition]))]


def plan_cell(comparison: Comparison, cell: Cell) -> CellAction:
    """What a cell needs, from what its folder holds."""
    from experiments.runs.checkpoints import latest_checkpoint

    run = RunFolder(comparison.cell_dir(cell))
    if not run.path.exists():
        return "train"
    meta = read_meta(run)
    if meta is None or not run.config_path.is_file():
        return "retrain"  # the run died before its folder was complete
    if meta.get("status") in ("finished", "stopped"):  # stopped: ended early by an evaluation hook, model saved
        if not run.model_path.is_file():
            return "retrain"  # a finished run cannot be resumed, and its model is gone
        return "evaluate" if stale_conditions(comparison, run.path) else "done"
    return "resume" if latest_checkpoint(run.checkpoint_dir) is not None else "retrain"


def check_cell_config(comparison: Comparison, cell: Cell) -> None:
    """A cell's saved config must be the one the comparison gives it now (the file may have changed)."""
    from experiments.runs.build import resolve_backend

    run = RunFolder(comparison.cell_dir(cell))
    saved = yaml.safe_load(run.config_path.read_text())
    expected = json.loads(json.dumps(resolve_backend(comparison.cell_config(cell))[0].model_dump(mode="json")))
    changed = sorted(_differences(saved, expected))
    if changed:
        raise ConfigError(
            f"{run.path}: trained with another config than {comparison.source} now gives it "
            f"({', '.join(changed)}); delete that folder to train it again, or set another name or root"
        )


def _differences(saved: Any, expected: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(expected, dict):
        return [difference for key in sorted(set(saved) | set(expected))
                for difference in _differences(saved.get(key), expected.get(key), f"{path}{key}.")]
    return [] if saved == expected else [path.rstrip(".")]


def plan_cells(comparison: Comparison) -> dict[Cell, CellAction]:
    """Every cell's plan; a cell folder trained with another config than the file gives it now is an error."""
    plans = {cell: plan_cell(comparison, cell) for cell in comparison.cells()}
    for cell, action in plans.items():
        if action in ("done", "evaluate", "resume"):
            check_cell_config(comparison, cell)
    return plans


def run_cell(comparison: Comparison, cell: Cell, command: Sequence[str] = ()) -> Path:
    """Bring one cell up to date: train, resume or retrain it as needed, then evaluate the conditions
    whose files are missing or stale."""
    from experiments.runs.session import resume, train

    action = plan_cell(comparison, cell)
    run_dir = comparison.cell_dir(cell)
    if action in ("resume", "retrain", "train"):
        for stale in run_dir.glob(CONDITION_FILE.format("*")):
            stale.unlink()  # they judged the model this training replaces
        if action == "retrain":
            meta = read_meta(RunFolder(run_dir)) or {}
            logger.info("%s: training again from scratch (was %s%s)", cell.label, meta.get("status", "incomplete"),
                        f": {meta['error']}" if meta.get("error") else "")
            shutil.rmtree(run_dir)
        if action == "resume":
            resume(run_dir, command=list(command))
        else:
            train(comparison.cell_config(cell), command=list(command), group=cell_group(cell))
    evaluate_conditions(comparison, cell, stale_conditions(comparison, run_dir))
    return run_dir


def evaluate_conditions(comparison: Comparison, cell: Cell, conditions: Sequence[str]) -> list[Path]:
    """Evaluate a cell's final model under each condition: ``compare-<condition>.json`` on the evaluation's
    backend, and ``compare-<condition>.<backend>.json`` where the cell is cross-checked; a record already up to
    date is kept (a condition is listed when either of its records is stale)."""
    if not conditions:
        return []
    run = RunFolder(comparison.cell_dir(cell))
    run_config = run.load_config()
    model = run.load_model(run_config)
    checked = cross_checks(comparison, run.path)
    written = []
    for condition in conditions:
        for backend in [None, *([checked[condition]] if condition in checked else [])]:
            path = condition_path(run.path, condition, backend)
            if is_current(comparison, condition, read_json(path), backend):
                continue  # the condition's other record was the stale one
            write_json_atomic(path, _evaluation_record(comparison, cell, model, run_config, condition, backend))
            written.append(path)
    return written


def _evaluation_record(comparison: Comparison, cell: Cell, model: Any, run_config: Any, condition: str,
                       backend: str | None) -> dict[str, Any]:
    """One final evaluation of the model under a condition (on ``backend`` for a cross-check), as its record."""
    from experiments.runs.build import resolve_backend
    from experiments.runs.evaluate import evaluate_model
    from neuro.snn.config import ENERGY_CAVEAT

    evaluation = comparison.evaluation
    config, choice = resolve_backend(comparison.condition_config(run_config, condition, backend))
    started = time.perf_counter()
    metrics, spike_stats = evaluate_model(model, config, evaluation.episodes, evaluation.n_envs,
                                          run_config.training.seed)
    wall_s = time.perf_counter() - started
    summary = metrics.summary()
    logger.info("%s under %s (%s on %s%s): return %.2f, crash rate %.2f", cell.label, condition, config.env.id,
                choice.backend, ", cross-check" if backend else "", summary["mean_return"], summary["crash_rate"])
    return {
        "condition": condition,
        "settings": comparison.evaluation_settings(condition, backend),
        "env_id": config.env.id,
        "backend": choice.backend,
        "backend_reason": choice.reason,
        "cross_check": backend is not None,  # True: the same model again on the reference, for the report's check
        "seed": run_config.training.seed,
        "model": "final",
        "wall_s": round(wall_s, 4),  # envs built, episodes played and closed
        **metrics.to_dict(),  # summary and per-episode returns, lengths, crashes, speeds
        "snn": {**spike_stats, "energy_caveat": ENERGY_CAVEAT} if spike_stats else None,
    }


@dataclass
class GridOutcome:
    """What a grid run did: cells already done, cells brought up to date, cells that failed (why), and the
    warnings the cells raised (each message: the label of the cell, once per time it was raised)."""

    done: list[Cell] = field(default_factory=list)
    ran: list[Cell] = field(default_factory=list)
    failed: dict[Cell, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def add_warnings(self, cell: Cell, messages: Sequence[str]) -> None:
        for message in messages:
            self.warnings.setdefault(message, []).append(cell.label)

    def warning_summary(self) -> list[str]:
        """One summary of the cells' warnings, identical messages counted once (empty when there were none)."""
        if not self.warnings:
            return []
        kinds = len(self.warnings)
        lines = [f"warnings: {kinds} kind{'s' if kinds > 1 else ''}, held back while the cells ran"]
        for message, labels in sorted(self.warnings.items(), key=lambda item: -len(item[1])):
            cells = list(dict.fromkeys(labels))
            where = ", ".join(cells[:3]) + (f", ... ({len(cells)} cells)" if len(cells) > 3 else "")
            lines.append(f"  {len(labels)}x in {where}: {message}")
        return lines


@dataclass(frozen=True)
class CellRun:
    """What a cell's job hands back: its folder and the warnings it held back."""

    run_dir: Path
    warnings: list[str]


class HeldWarnings:
    """While a cell runs, hold back its Python warnings and WARNING log records (as one line each) instead
    of printing them, so a grid prints one summary, not the same warning per cell. Errors still print;
    a cell that raises prints what it held, beside its error."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._catch = warnings.catch_warnings(record=True)  # the filters in force still apply
        self._caught: list[warnings.WarningMessage] = []
        self._holder = _WarningHolder(self.messages)
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> HeldWarnings:
        caught = self._catch.__enter__()
        assert caught is not None  # record=True hands over its list
        self._caught = caught
        root = logging.getLogger()
        self._handlers = list(root.handlers)
        for handler in self._handlers:
            handler.addFilter(_not_a_warning)
        root.addHandler(self._holder)  # one holder: a record reaching several handlers is held once
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        root = logging.getLogger()
        root.removeHandler(self._holder)
        for handler in self._handlers:
            handler.removeFilter(_not_a_warning)
        self._catch.__exit__(kind, *rest)
        self.messages += [f"{caught.category.__name__}: {caught.message}" for caught in self._caught]
        if kind is not None:
            for message in self.messages:
                print(f"warning: {message}", file=sys.stderr)


class _WarningHolder(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.messages.append(f"{record.name}: {record.getMessage()}")


def _not_a_warning(record: logging.LogRecord) -> bool:
    return record.levelno != logging.WARNING


def run_cell_held(comparison: Comparison, cell: Cell, command: Sequence[str] = ()) -> CellRun:
    """``run_cell`` with its warnings held back (``HeldWarnings``): a grid's job."""
    with HeldWarnings() as held:
        run_dir = run_cell(comparison, cell, command)
    return CellRun(run_dir, held.messages)


class GridProgress:
    """A grid's progress lines: cells finished of those to run, running and queued, and the ETA.

    The ETA takes the mean duration of the cells done so far (a failed cell's time says nothing of a
    cell's cost) as every cell's: the cells left need that much each, less what the running ones have
    already spent (at most the mean each), shared by the workers.
    """

    def __init__(self, total: int, workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.workers = max(1, min(workers, total))
        self.clock = clock
        self.running: dict[str, float] = {}  # label: start time
        self.finished = 0
        self.durations: list[float] = []  # of the cells done

    def start(self, label: str) -> None:
        self.running[label] = self.clock()

    def finish(self, label: str, status: str, done: bool = True) -> str:
        """The line for a cell that ended: ``status`` says how (done, failed and why)."""
        now = self.clock()
        duration = now - self.running.pop(label, now)
        self.finished += 1
        if done:
            self.durations.append(duration)
        line = f"[{self.finished}/{self.total}] {label}: {status} in {format_duration(duration)}"
        if self.finished == self.total:
            return line
        queued = self.total - self.finished - len(self.running)
        eta = self.eta_s(now)
        return (f"{line}; {len(self.running)} running, {queued} queued; "
                + ("ETA after a cell is done" if eta is None else f"ETA {format_duration(eta)}"))

    def eta_s(self, now: float) -> float | None:
        """Seconds until every cell is done, or ``None`` before any cell is."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        spent = sum(min(now - started, mean) for started in self.running.values())
        return max(left * mean - spent, 0.0) / min(self.workers, left)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def workers_line(asked: int, pending: int) -> str:
    """How many workers run the cells, and why fewer than asked."""
    used = min(asked, max(pending, 1))
    plural = "s" if used > 1 else ""
    if used == asked:
        return f"{used} worker{plural}"
    return f"{used} worker{plural}: " + (f"only {pending} cell{'s' if pending > 1 else ''} to run" if pending
                                         else "no cell to run")


def grid_hparams(comparison: Comparison) -> list[dict[str, Any]]:
    """Each cell's HParams record as its run writes it (``experiments.runs.session.hparams``), with its variant."""
    from experiments.runs.build import resolve_backend
    from experiments.runs.session import hparams

    records = []
    for cell in comparison.cells():
        config = resolve_backend(comparison.cell_config(cell))[0]
        records.append({**hparams(config, config.env.backend), **cell_group(cell)})
    return records


def cell_group(cell: Cell) -> dict[str, str]:
    """The column a cell's HParams record carries beside its config's (``VARIANT_COLUMN``)."""
    return {VARIANT_COLUMN: cell.variant}


def write_grid_hparams(comparison: Comparison) -> None:
    """The grid's one HParams summary at its folder, over every cell (trained or not): logged, not raised,
    on failure, as the layout."""
    try:
        comparison.folder.mkdir(parents=True, exist_ok=True)
        write_hparams_summary(comparison.folder, grid_hparams(comparison))
    except Exception:
        logger.warning("no TensorBoard HParams summary for %s", comparison.folder, exc_info=True)


def run_grid(comparison: Comparison, workers: int = 1, command: Sequence[str] = (),
             say: Callable[[str], None] = print) -> GridOutcome:
    """Bring every cell up to date, ``workers`` at a time (1: in this process), saying each cell's end with
    the progress and ETA (``GridProgress``); the cells' warnings are held back into ``outcome.warnings``.

    Ctrl-C (SIGINT to the process group, as a terminal sends it) lets each running cell save a
    checkpoint and stop; ``KeyboardInterrupt`` is then raised here, with every finished cell kept.
    """
    outcome = GridOutcome()
    plans = plan_cells(comparison)
    outcome.done = [cell for cell, action in plans.items() if action == "done"]
    pending = [cell for cell, action in plans.items() if action != "done"]
    counts = {action: sum(planned == action for planned in plans.values())
              for action in ("done", "evaluate", "resume", "retrain", "train")}
    say(f"comparison {comparison.name}: {len(plans)} cells ({', '.join(f'{n} {a}' for a, n in counts.items() if n)}); "
        f"{workers_line(workers, len(pending))}; folder {comparison.folder}")
    write_grid_hparams(comparison)  # before the cells: TensorBoard shows every column while they train
    progress = GridProgress(len(pending), workers)
    if workers == 1:
        _run_here(comparison, pending, command, outcome, say, progress)
    else:
        _run_in_processes(comparison, pending, workers, command, outcome, say, progress)
    refresh_grid_layout(comparison.folder, list(comparison.variants))  # TensorBoard: each variant's seeds on one chart
    return outcome


def _run_here(comparison: Comparison, cells: Sequence[Cell], command: Sequence[str], outcome: GridOutcome,
              say: Callable[[str], None], progress: GridProgress) -> None:
    for cell in cells:
        progress.start(cell.label)
        try:
            ran = run_cell_held(comparison, cell, command)
        except RunInterrupted as stop:
            raise KeyboardInterrupt(str(stop)) from stop  # the run saved a checkpoint: stop the grid
        except Exception as error:  # a crashed cell (NaN guard, a model that cannot be built): go on
            logger.exception("%s failed", cell.label)
            outcome.failed[cell] = f"{type(error).__name__}: {error}"
            say(progress.finish(cell.label, f"failed ({outcome.failed[cell]})", done=False))
            continue
        outcome.ran.append(cell)
        outcome.add_warnings(cell, ran.warnings)
        say(progress.finish(cell.label, "done"))


def _run_in_processes(comparison: Comparison, cells: Sequence[Cell], workers: int, command: Sequence[str],
                      outcome: GridOutcome, say: Callable[[str], None], progress: GridProgress) -> None:
    """One worker process per cell, at most ``workers`` at once: a crash, even a hard one, takes down
    its own cell only, and the exit status says how each ended (``experiments.workers``: a cell
    interrupted by Ctrl-C stops the grid)."""
    by_label = {cell.label: cell for cell in cells}
    queue = list(cells)  # run_jobs starts them in this order, the next one as soon as a worker is free
    for cell in queue[:workers]:
        progress.start(cell.label)
    started = min(workers, len(queue))

    def record(result: JobResult) -> None:
        nonlocal started
        cell = by_label[result.job.name]
        if result.ok:
            outcome.ran.append(cell)
            outcome.add_warnings(cell, result.value.warnings)
            say(progress.finish(cell.label, "done"))
        else:
            outcome.failed[cell] = result.reason()
            say(progress.finish(cell.label, f"failed ({outcome.failed[cell]}; see the log above)", done=False))
        if started < len(queue):
            progress.start(queue[started].label)
            started += 1

    run_jobs([Job(cell.label, run_cell_held, (comparison, cell, list(command))) for cell in cells], workers,
             on_exit=record)


def collect_results(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per (variant, scenario, seed, condition) whose evaluation file is up to date (``result_rows``).
    A cell with results must have trained with the config the file gives it now (``check_cell_config``), so a
    report (``--report-only`` too) never puts a run trained on another config under the file's name and digest."""
    rows = []
    missing = []
    for cell in comparison.cells():
        run_dir = comparison.cell_dir(cell)
        records = cell_records(comparison, run_dir)
        if records:
            check_cell_config(comparison, cell)
        missing += [f"{cell.label}:{condition}" for condition in comparison.conditions if condition not in records]
        rows += result_rows(cell, records, training_curve(run_dir), str(run_dir))
    warn_missing(missing, len(missing) + len(rows))
    return rows


def cell_records(comparison: Comparison, run_dir: Path) -> dict[str, dict[str, Any]]:
    """A cell's up-to-date evaluation records (``compare-<condition>.json``), by condition; a record whose
    cross-check is up to date carries it as ``cross_check_record``."""
    records = {condition: read_json(condition_path(run_dir, condition)) for condition in comparison.conditions}
    current = {condition: record for condition, record in records.items()
               if record is not None and is_current(comparison, condition, record)}
    for condition, backend in cross_checks(comparison, run_dir).items():
        checked = read_json(condition_path(run_dir, condition, backend))
        if condition in current and is_current(comparison, condition, checked, backend):
            current[condition]["cross_check_record"] = checked
    return current


def training_curve(run_dir: Path) -> list[list[float]]:
    """``[step, mean_return]`` of each training-time evaluation (``eval.json``)."""
    try:
        history = RunFolder(run_dir).read_evaluations()
    except (OSError, ValueError):
        history = {}  # no evaluation yet
    return [[int(record["step"]), float(record["mean_return"])] for record in history.get("evaluations", [])]


def result_rows(cell: Cell, records: dict[str, dict[str, Any]], curve: list[list[float]],
                run_dir: str) -> list[dict[str, Any]]:
    """A cell's rows, one per condition.

    Row keys: variant, scenario, seed, condition, run_dir, mean_return, crash_rate, mean_speed,
    n_episodes, returns (per episode), crashed (per episode), dominant_action (``{action, fraction}`` when
    one action took over 95% of the decisions: a collapsed policy; else None), snn (the spiking figures per
    decision, or None), curve ([step, mean_return] of each training-time evaluation in eval.json).
    """
    rows = []
    for condition, saved in records.items():
        summary, episodes = saved["summary"], saved["episodes"]
        rows.append({
            "variant": cell.variant,
            "scenario": cell.scenario,
            "seed": cell.seed,
            "condition": condition,
            "run_dir": run_dir,
            "mean_return": summary["mean_return"],
            "crash_rate": summary["crash_rate"],
            "mean_speed": summary["mean_speed"],
            "n_episodes": summary["n_episodes"],
            "returns": list(episodes["returns"]),
            "crashed": [bool(crashed) for crashed in episodes["crashed"]],
            "dominant_action": summary.get("dominant_action"),
            "backend": saved.get("backend"),
            "cross_check": _cross_check_row(saved.get("cross_check_record")),
            "snn": saved.get("snn"),
            "curve": curve,
        })
    return rows


def _cross_check_row(saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """The figures of a cross-check record the report compares with the main ones."""
    if saved is None:
        return None
    summary, episodes = saved["summary"], saved["episodes"]
    return {"backend": saved.get("backend"), "mean_return": summary["mean_return"], "crash_rate": summary["crash_rate"],
            "n_episodes": summary["n_episodes"], "returns": list(episodes["returns"]),
            "crashed": [bool(crashed) for crashed in episodes["crashed"]]}


def warn_missing(missing: Sequence[str], total: int) -> None:
    if missing:
        logger.warning("%d of %d evaluations have no up-to-date result yet (%s%s)", len(missing), total,
                       ", ".join(missing[:5]), ", ..." if len(missing) > 5 else "")
