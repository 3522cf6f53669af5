"""The neuromodulated values each run logged to TensorBoard (``neuro/<kind>/<key>`` in its ``tb/`` folder,
:mod:`agents.neuro_logging`), read back for the report's plot of them over training."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from experiments.compare.report.summary import Entry, RunKey

NEURO_PREFIX = "neuro/"
# The TD-error and dopamine-signal statistics every dopamine agent logs: signals, not a modulated value.
NOT_MODULATED = ("neuro/dopamine/",)
# Records this short are parsed whatever they hold: a session START (a resumed run's purge) is one of them.
_SMALL_RECORD = 64
# A shared grid's run_dir is "host:/absolute/path" (experiments.compare.shared).
_HOST_PATH = re.compile(r"^[^/:]+:(/.*)$")


def _records(path: Path) -> Iterator[bytes]:
    """The records of one TFRecord file (each: length as uint64, its masked CRC, the data, the data's masked CRC),
    CRCs not checked: tensorboard checks them in pure Python, which makes its EventAccumulator ~40x slower on an SB3
    run's event file (1.7 s against 0.04 s for 3 MB of histograms and scalars). A truncated last record ends the
    file, as tensorboard treats a file still being written."""
    data = path.read_bytes()
    position = 0
    while position + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, position)
        start, end = position + 12, position + 12 + length
        if end + 4 > len(data):
            return
        yield data[start:end]
        position = end + 4


def read_scalars(tb_dir: Path, prefix: str = NEURO_PREFIX) -> dict[str, list[tuple[float, float]]]:
    """Every scalar under ``prefix`` in the event files of ``tb_dir``, as (step, value) pairs by tag, parsed with
    tensorboard's own Event protobuf. A resumed run's writer starts its file with a session START at its
    ``purge_step`` (``experiments.runs.session``): the points at or after that step are dropped, as TensorBoard
    drops them. Raises FileNotFoundError when the folder or its event files are missing, ValueError when no event
    could be read at all (a corrupt file)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    files = sorted(tb_dir.glob("events.out.tfevents*")) if tb_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{tb_dir}: no TensorBoard event file")
    scalars: dict[str, list[tuple[float, float]]] = {}
    events = 0
    needle = prefix.encode()
    for path in files:
        for record in _records(path):
            events += 1
            if needle not in record and len(record) > _SMALL_RECORD:
                continue  # SB3's own histograms: skipped unparsed, which is most of the file
            event = event_pb2.Event.FromString(record)
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                scalars = {tag: [point for point in points if point[0] < event.step]
                           for tag, points in scalars.items()}
                continue
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if not value.tag.startswith(prefix) or kind not in ("simple_value", "tensor"):
                    continue
                number = value.simple_value if kind == "simple_value" else tensor_util.make_ndarray(value.tensor)
                if kind == "tensor" and number.size != 1:
                    continue  # a histogram or other tensor, not a scalar
                scalars.setdefault(value.tag, []).append((float(event.step), float(number)))
    if not events:
        raise ValueError(f"{tb_dir}: no event could be read from its event files")
    return scalars


def local_run_dir(run_dir: str) -> Path:
    """A row's run folder on this machine: the path itself, or the path part of a shared grid's "host:path"."""
    path = Path(run_dir)
    match = _HOST_PATH.match(run_dir)
    return Path(match.group(1)) if match and not path.exists() else path


def neuro_series(rows: Sequence[Entry]) -> tuple[dict[RunKey, dict[str, list[tuple[float, float]]]], list[str]]:
    """Each run's neuromodulated values (``neuro/`` tags but the dopamine statistics) by (variant, scenario,
    seed), and one note naming the runs whose ``tb/`` folder is missing or unreadable (they are skipped)."""
    runs = {(str(row["variant"]), str(row["scenario"]), int(row["seed"])): str(row.get("run_dir") or "")
            for row in rows}
    series: dict[RunKey, dict[str, list[tuple[float, float]]]] = {}
    skipped: list[str] = []
    for key, run_dir in runs.items():
        tb_dir = local_run_dir(run_dir) / "tb"  # "" (no run folder recorded) is a missing one
        # Any error skips the run: tensorboard raises its own types on a corrupt file, and one bad run must not
        # lose the whole report.
        try:
            tags = read_scalars(tb_dir)
        except Exception as error:
            skipped.append(f"{key[0]} / {key[1]} / seed {key[2]} ({type(error).__name__})")
            continue
        modulated = {tag: points for tag, points in tags.items() if not tag.startswith(NOT_MODULATED)}
        if modulated:
            series[key] = modulated
    notes = []
    if skipped:
        notes.append(f"neuromodulated values: skipped {len(skipped)} of {len(runs)} runs without a readable tb/ "
                     f"folder: {', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}")
    return series, notes
