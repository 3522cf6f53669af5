"""The neuromodulated values each run logged to TensorBoard (``neuro/<kind>/<key>`` in its ``tb/`` folder,
:mod:`agents.neuro_logging`), read back for the report's plot of them over training."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from experiments.compare.report.summary import Entry, RunKey

NEURO_PREFIX = "neuro/"
# The TD-error and dopamine-signal statistics every dopamine agent logs: signals, not a modulated value.
NOT_MODULATED = ("neuro/dopamine/",)
# A shared grid's run_dir is "host:/absolute/path" (experiments.compare.shared).
_HOST_PATH = re.compile(r"^[^/:]+:(/.*)$")


def read_scalars(tb_dir: Path, prefix: str = NEURO_PREFIX) -> dict[str, list[tuple[float, float]]]:
    """Every scalar under ``prefix`` in the event files of ``tb_dir``, as (step, value) pairs by tag. Raises
    FileNotFoundError when the folder or its event files are missing, ValueError when no scalar at all could be
    read (a run always logs SB3's own; tensorboard skips a corrupt file with a warning only)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not tb_dir.is_dir() or not any(tb_dir.glob("events.out.tfevents*")):
        raise FileNotFoundError(f"{tb_dir}: no TensorBoard event file")
    # 0 keeps every scalar (the default samples 10,000); images, audio and histograms are not needed.
    accumulator = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "images": 1, "audio": 1,
                                                                "histograms": 1, "tensors": 1})
    accumulator.Reload()
    if not accumulator.Tags()["scalars"]:
        raise ValueError(f"{tb_dir}: no scalar could be read from its event files")
    return {tag: [(float(event.step), float(event.value)) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"] if tag.startswith(prefix)}


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
