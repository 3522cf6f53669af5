"""``neurodrive dashboard`` on a comparison folder or any folder of run folders, and a grid's TensorBoard layout.

On 127.0.0.1, from ``--port`` up (each port checked free first):

- TensorBoard over the folder: it names runs by their path under it, so a grid's cells read
  ``<variant>/<scenario>/seed<k>/tb``; their HParams records line them up in the HParams tab;
- optuna-dashboard when the folder holds a sweep's study (the storage comes from the caller);
- a static server for the comparison report (``report/report.html``, or each comparison's under a root).

A grid's layout (``<grid>/layout/``, one event file; TensorBoard shows it as the run ``layout``):
custom-scalars charts match tags, not runs, so each cell's curves of ``GRID_METRICS`` are copied there
under ``<grid name>/<metric>/<variant>/<scenario>/seed<k>``; per metric, one chart holds every
variant's seeds and one chart per variant holds that variant's seeds.

A group's HParams summary (``<grid>/events.out.tfevents.*.hparams``, or a sweep's folder; TensorBoard
shows it as the run ``.``): TensorBoard's HParams tab takes its columns from one experiment summary, so
a group's runs write none of their own (TensorBoard would show any one of them) and this one holds the
union of their keys, a grid's ``variant`` column first (``agents.hparams``).

Part of the core below the tools: the ``dashboard`` command (``experiments.sweeps.command``) serves
folders with it, and ``experiments.compare`` writes a grid's layout with it. tensorboard and
optuna-dashboard are imported only when a server starts or a layout is written.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer, ThreadingMixIn
from types import FrameType
from typing import IO, TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from agents.hparams import EVAL_METRICS, HParamValue, experiment_summary
from experiments.config.errors import ConfigError
from experiments.distributed import JOURNAL_NAME
from experiments.runs.folder import RunFolder

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

logger = logging.getLogger("neurodrive.dashboard")

HOST = "127.0.0.1"
GRID_METRICS = ("eval/mean_return", "eval/crash_rate", "rollout/ep_rew_mean")
LAYOUT_DIR = "layout"  # <grid>/layout/: the grid's own TensorBoard run
REPORT_PAGE = Path("report") / "report.html"
CELL_NAME = re.compile(r"seed\d+")  # a comparison cell's folder: <variant>/<scenario>/seed<k>
EVENT_FILES = "events.out.tfevents.*"
STARTUP_TIMEOUT_S = 120.0  # TensorBoard imports a lot; a loaded 2-core machine needs a while


# --- what a folder holds ---------------------------------------------------------------------------------


@dataclass
class RunsFolder:
    """A folder's run folders (outside sweep folders), sweep folders and comparison reports."""

    path: Path
    run_dirs: list[Path] = field(default_factory=list)
    sweep_dirs: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)

    @classmethod
    def scan(cls, path: Path) -> RunsFolder:
        folder = cls(path)
        for current, subdirs, files in _walk(path):
            if JOURNAL_NAME in files or "sweep.json" in files:
                folder.sweep_dirs.append(current)
                subdirs.clear()  # its trials' runs belong to the sweep: optuna-dashboard shows them
            elif RunFolder(current).meta_path.name in files:
                folder.run_dirs.append(current)
                subdirs.clear()  # nothing below a run folder is another run
        top = path / REPORT_PAGE
        folder.reports = [top] if top.is_file() else sorted(path.glob(f"*/{REPORT_PAGE}"))
        return folder

    @property
    def has_runs_or_report(self) -> bool:
        """Whether this is a comparison folder or a folder of run folders (not only sweeps)."""
        return bool(self.run_dirs or self.reports)

    def grids(self) -> list[Path]:
        """Comparison folders: those holding cells ``<variant>/<scenario>/seed<k>/``."""
        return sorted({run_dir.parents[2] for run_dir in self.run_dirs
                       if CELL_NAME.fullmatch(run_dir.name) and len(run_dir.relative_to(self.path).parts) >= 3})


def _walk(path: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    for current, subdirs, files in os.walk(path):
        subdirs.sort()
        yield Path(current), subdirs, files


def runs_folder(target: str | None) -> RunsFolder | None:
    """The folder behind ``target`` when it holds run folders outside sweeps or a comparison report, else
    ``None`` (a sweep folder, a journal file, a URL or a bad target: the sweep dashboard's to judge)."""
    if not target or "://" in target:
        return None
    path = Path(target)
    if not path.is_dir():
        return None
    folder = RunsFolder.scan(path)
    return folder if folder.has_runs_or_report else None


# --- a grid's TensorBoard layout -------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    variant: str
    scenario: str
    seed: str  # the folder name, seed<k>
    tb_dir: Path


def grid_cells(grid_dir: Path) -> list[GridCell]:
    """The cells under a comparison folder that have TensorBoard events, by variant, scenario, seed."""
    cells = [GridCell(tb.parents[2].name, tb.parents[1].name, tb.parent.name, tb)
             for tb in grid_dir.glob("*/*/seed*/tb") if CELL_NAME.fullmatch(tb.parent.name) and tb.is_dir()]
    return sorted(cells, key=lambda cell: (cell.variant, cell.scenario, int(cell.seed[len("seed"):])))


def layout_is_current(grid_dir: Path) -> bool:
    """Whether the layout is newer than every cell's events (no need to copy them again)."""
    layouts = list((grid_dir / LAYOUT_DIR).glob(EVENT_FILES))
    if not layouts:
        return False
    written = max(path.stat().st_mtime for path in layouts)
    cell_events = (path for cell in grid_cells(grid_dir) for path in cell.tb_dir.glob(EVENT_FILES))
    return all(path.stat().st_mtime < written for path in cell_events)


def write_grid_layout(grid_dir: Path, variants: Sequence[str] = ()) -> Path | None:
    """Write ``<grid>/layout/``: every cell's ``GRID_METRICS`` under variant-named tags and a custom-scalars
    layout over them; returns the event file, or ``None`` when no cell has events yet.

    :param variants: the order of the variants' charts (the comparison file's); others follow, sorted.
    """
    cells = grid_cells(grid_dir)
    if not cells:
        return None
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    name = grid_dir.resolve().name
    layout_dir = grid_dir / LAYOUT_DIR
    old_files = list(layout_dir.glob(EVENT_FILES))
    writer = EventFileWriter(str(layout_dir))
    only_scalars = {event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 1, event_accumulator.TENSORS: 1,
                    event_accumulator.COMPRESSED_HISTOGRAMS: 1, event_accumulator.IMAGES: 1,
                    event_accumulator.AUDIO: 1}
    tensorboard_logger = logging.getLogger("tensorboard")
    tensorboard_level = tensorboard_logger.level
    tensorboard_logger.setLevel(logging.WARNING)  # its reader says "No path found after ..." for every run
    try:
        for cell in cells:
            # The accumulator drops what a resumed run's purge_step replaced, as TensorBoard does.
            events = event_accumulator.EventAccumulator(str(cell.tb_dir), size_guidance=only_scalars)
            events.Reload()
            present = set(events.Tags()["scalars"])
            for metric in GRID_METRICS:
                if metric not in present:
                    continue
                tag = f"{name}/{metric}/{cell.variant}/{cell.scenario}/{cell.seed}"
                for point in events.Scalars(metric):
                    writer.add_event(Event(wall_time=point.wall_time, step=point.step,
                                           summary=Summary(value=[Summary.Value(tag=tag, simple_value=point.value)])))
        layout = layout_pb2.Layout(category=grid_categories(name, cells, variants, layout_pb2))
        tensor = TensorProto(dtype="DT_STRING", string_val=[layout.SerializeToString()],
                             tensor_shape=TensorShapeProto())
        summary = Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor,
                                               metadata=metadata.create_summary_metadata())])
        writer.add_event(Event(wall_time=time.time(), step=0, summary=summary))
    finally:
        writer.close()
        tensorboard_logger.setLevel(tensorboard_level)
    for old in old_files:  # after the new file is complete: a failed write keeps the old layout
        old.unlink(missing_ok=True)
    written = [path for path in layout_dir.glob(EVENT_FILES) if path not in old_files]
    return written[0] if written else None


def refresh_grid_layout(grid_dir: Path, variants: Sequence[str] = (), only_if_stale: bool = False) -> None:
    """``write_grid_layout``, with a failure logged, not raised: the layout is an extra, and a grid's
    results (or a dashboard's runs) stand without it."""
    try:
        if not (only_if_stale and layout_is_current(grid_dir)):
            write_grid_layout(grid_dir, variants)
    except Exception:
        logger.warning("no TensorBoard custom-scalars layout for %s", grid_dir, exc_info=True)


def grid_categories(name: str, cells: Sequence[GridCell], variants: Sequence[str], layout_pb2: Any) -> list[Any]:
    """One category per metric: a chart of every variant's seeds, then one chart per variant (and
    scenario, when the grid trains on several) with its seeds."""
    found = {cell.variant for cell in cells}
    ordered = [variant for variant in variants if variant in found] + sorted(found - set(variants))
    scenarios = sorted({cell.scenario for cell in cells})
    categories = []
    for metric in GRID_METRICS:
        prefix = f"^{re.escape(f'{name}/{metric}/')}"
        charts = [layout_pb2.Chart(title=f"{metric}: every variant",
                                   multiline=layout_pb2.MultilineChartContent(tag=[prefix]))]
        for variant in ordered:
            for scenario in scenarios:
                if not any(cell.variant == variant and cell.scenario == scenario for cell in cells):
                    continue
                title = f"{metric}: {variant}" + (f" on {scenario}" if len(scenarios) > 1 else "")
                regex = prefix + re.escape(f"{variant}/{scenario}/")
                charts.append(layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[regex])))
        categories.append(layout_pb2.Category(title=f"{name}: {metric}", chart=charts))
    return categories


# --- a group's HParams summary ---------------------------------------------------------------------------

HPARAMS_SUFFIX = ".hparams"  # the summary's event file: events.out.tfevents.<time>.<host>.hparams
VARIANT_COLUMN = "variant"  # a grid's cells carry their variant, a sweep's trials their "trial"


def write_hparams_summary(folder: Path, records: Iterable[Mapping[str, HParamValue | None]],
                          first: Sequence[str] = (VARIANT_COLUMN,)) -> Path:
    """Write the one HParams experiment summary of a group of runs at its top folder: the union of the
    runs' record keys (``agents.hparams.experiment_summary``), ``first`` in front; replaces an older one."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    summary = experiment_summary(list(records), EVAL_METRICS, first)
    old_files = list(folder.glob(EVENT_FILES + HPARAMS_SUFFIX))
    writer = EventFileWriter(str(folder), filename_suffix=HPARAMS_SUFFIX)
    try:
        writer.add_event(Event(wall_time=time.time(), step=0, summary=summary))
    finally:
        writer.close()
    written = [path for path in folder.glob(EVENT_FILES + HPARAMS_SUFFIX) if path not in old_files]
    for old in old_files:  # after the new file is complete, as the layout's
        old.unlink(missing_ok=True)
    return written[0]


def read_session_hparams(tb_dir: Path) -> dict[str, HParamValue] | None:
    """A run's HParams values from its session-start record, or ``None`` when it wrote none (yet)."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    guidance = {event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 1, event_accumulator.HISTOGRAMS: 1,
                event_accumulator.COMPRESSED_HISTOGRAMS: 1, event_accumulator.IMAGES: 1, event_accumulator.AUDIO: 1}
    events = event_accumulator.EventAccumulator(str(tb_dir), size_guidance=guidance)
    events.Reload()
    try:
        content = events.PluginTagToContent(metadata.PLUGIN_NAME).get(metadata.SESSION_START_INFO_TAG)
    except KeyError:  # no HParams record at all
        content = None
    if content is None:
        return None
    start = metadata.parse_session_start_info_plugin_data(content)
    values: dict[str, HParamValue] = {}
    for name, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        if kind in ("bool_value", "number_value", "string_value"):
            values[name] = getattr(value, kind)
    return values


def refresh_runs_hparams(folder: Path, tb_dirs: Mapping[Path, Mapping[str, HParamValue]],
                         first: Sequence[str] = (VARIANT_COLUMN,)) -> None:
    """The summary over runs' own records, read back from their events (a sweep's trials, whose keys are
    known only once sampled); ``tb_dirs`` maps each run's ``tb`` to columns its record may lack. Logged,
    not raised, on failure: the runs stand without it.

    Runs written before groups had a summary hold one each, and TensorBoard shows any one of them: such
    a group keeps showing one run's keys."""
    try:
        records = [{**extra, **(read_session_hparams(tb) or {})} for tb, extra in tb_dirs.items()]
        if records:
            write_hparams_summary(folder, records, first)
    except Exception:
        logger.warning("no TensorBoard HParams summary for %s", folder, exc_info=True)


# --- ports -----------------------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a connection closed a moment ago (TIME_WAIT) does not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def allocate_ports(first: int, count: int) -> list[int]:
    """``first`` (which must be free) and the next ``count - 1`` free ports after it."""
    if not 0 < first < 65536:
        raise ConfigError(f"--port: must be in 1..65535, got {first}")
    if not port_is_free(first):
        raise ConfigError(f"--port: {first} is in use on {HOST}; pick another")
    ports = [first]
    candidate = first + 1
    while len(ports) < count:
        if candidate > 65535:
            raise ConfigError(f"--port: no {count} free ports from {first} up on {HOST}; pick a lower port")
        if port_is_free(candidate):
            ports.append(candidate)
        candidate += 1
    return ports


# --- the servers -----------------------------------------------------------------------------------------


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # a line per file fetched would bury the URLs


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # optuna-dashboard's page polls its API every few seconds


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection must not hold up Ctrl-C


@dataclass
class Dashboard:
    """The servers started for one folder; ``stop`` ends them all."""

    tensorboard: subprocess.Popen[bytes] | None = None
    tensorboard_log: IO[bytes] | None = None
    servers: list[BaseServer] = field(default_factory=list)
    urls: list[tuple[str, str, str]] = field(default_factory=list)  # (what, url, about)

    def start_tensorboard(self, logdir: Path, port: int) -> None:
        self.tensorboard_log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", HOST,
                   "--port", str(port)]
        # SIGINT ignored in the child: a terminal's Ctrl-C reaches the whole process group, and this
        # process stops TensorBoard itself (no traceback from it, one orderly shutdown). It stays in the
        # group, so killing the group still takes it down.
        self.tensorboard = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.tensorboard_log,
                                            stderr=subprocess.STDOUT,
                                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _accepts(port):
            if self.tensorboard.poll() is not None or time.monotonic() > deadline:
                raise DashboardFailed(f"TensorBoard did not start on {HOST}:{port}:\n{self.tensorboard_output()}")
            time.sleep(0.2)

    def tensorboard_output(self, lines: int = 20) -> str:
        if self.tensorboard_log is None:
            return ""
        self.tensorboard_log.seek(0)
        return "\n".join(self.tensorboard_log.read().decode(errors="replace").splitlines()[-lines:])

    def start_thread_server(self, server: BaseServer, name: str) -> None:
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, name=name, daemon=True).start()

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.tensorboard is not None and self.tensorboard.poll() is None:
            self.tensorboard.terminate()
            try:
                self.tensorboard.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.tensorboard.kill()
                self.tensorboard.wait()
        if self.tensorboard_log is not None:
            self.tensorboard_log.close()


class DashboardFailed(Exception):
    """A server that did not start or that died while serving."""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def serve_runs_folder(folder: RunsFolder, first_port: int, study: tuple[BaseStorage, str] | None = None,
                      say: Callable[[str], None] = print, notes: Sequence[str] = ()) -> int:
    """Serve ``folder`` until Ctrl-C (or SIGTERM): exit status 0 then, 1 when a server fails.

    :param study: optuna-dashboard's storage and its description, when the folder holds a study.
    """
    planned = [what for what, wanted in (("tensorboard", bool(folder.run_dirs)), ("optuna-dashboard", study),
                                         ("report", folder.reports)) if wanted]
    ports = dict(zip(planned, allocate_ports(first_port, len(planned)), strict=True))
    dashboard = Dashboard()
    restore = _stop_on_signals()
    try:
        for grid in folder.grids():  # before TensorBoard reads the folder; a grid still training: its curves so far
            refresh_grid_layout(grid, only_if_stale=True)
        if "tensorboard" in ports:
            dashboard.start_tensorboard(folder.path, ports["tensorboard"])
            dashboard.urls.append(("tensorboard", f"http://{HOST}:{ports['tensorboard']}/",
                                   f"{len(folder.run_dirs)} runs under {folder.path}"))
        if study is not None:
            from optuna_dashboard import wsgi

            app = wsgi(study[0])
            server = make_server(HOST, ports["optuna-dashboard"], app, server_class=_ThreadingWSGIServer,
                                 handler_class=_QuietWSGIHandler)
            dashboard.start_thread_server(server, "optuna-dashboard")
            dashboard.urls.append(("optuna-dashboard", f"http://{HOST}:{ports['optuna-dashboard']}/", study[1]))
        if folder.reports:
            # One report: serve its folder alone; several comparisons under a root: serve the root.
            root = folder.reports[0].parent if len(folder.reports) == 1 else folder.path
            handler = functools.partial(_QuietFiles, directory=str(root))
            dashboard.start_thread_server(ThreadingHTTPServer((HOST, ports["report"]), handler), "report")
            for page in folder.reports:
                dashboard.urls.append(("report", f"http://{HOST}:{ports['report']}/{page.relative_to(root).as_posix()}",
                                       str(page)))
        for what, url, about in dashboard.urls:
            say(f"{what:<17} {url}  ({about})")
        for note in notes:
            say(f"note: {note}")
        say("Ctrl-C stops them")
        while dashboard.tensorboard is None or dashboard.tensorboard.poll() is None:
            time.sleep(0.5)
        raise DashboardFailed(f"TensorBoard exited ({dashboard.tensorboard.returncode}):\n"
                              f"{dashboard.tensorboard_output()}")
    except KeyboardInterrupt:
        return 0
    except DashboardFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    finally:
        _ignore_sigint()  # a second Ctrl-C must not cut the shutdown short and leave TensorBoard behind
        try:
            dashboard.stop()
        finally:
            restore()


def _stop_on_signals() -> Callable[[], None]:
    """SIGTERM stops the dashboard as Ctrl-C does (servers shut, TensorBoard ended); returns the undo.

    Ctrl-C's own handler is set too: a process started with SIGINT ignored (a background job of a
    script) would otherwise serve on after Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous_term, previous_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)

    return restore


def _ignore_sigint() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
