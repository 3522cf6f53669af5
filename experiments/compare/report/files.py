"""The report's data files: rows and statistics as strict JSON values, and ``results.csv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.compare.report.summary import Entry, finite_or_none, ordered_unique

ROW_FIELDS = ["variant", "scenario", "seed", "condition", "run_dir", "mean_return", "crash_rate", "mean_speed",
              "n_episodes"]
LIST_FIELDS = ["returns", "crashed", "curve"]


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None, tuples as lists and unknown objects as text, so strict JSON accepts it."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        return finite_or_none(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return str(value)


def write_csv(path: Path, rows: Sequence[Entry]) -> None:
    """One line per row: scalars as they are, lists JSON-encoded, the snn figures flattened to ``snn/<key>``."""
    snn_keys = ordered_unique(key for row in rows if isinstance(row.get("snn"), dict) for key in row["snn"])
    known = set(ROW_FIELDS) | set(LIST_FIELDS) | {"snn"}
    extra = sorted({key for row in rows for key in row if key not in known})
    header = ROW_FIELDS + extra + [f"snn/{key}" for key in snn_keys] + LIST_FIELDS
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            snn: dict[str, Any] = row["snn"] if isinstance(row.get("snn"), dict) else {}

            values = [row.get(key) for key in ROW_FIELDS + extra] + [snn.get(key) for key in snn_keys]
            values += [json.dumps(json_safe(row.get(key))) for key in LIST_FIELDS]
            writer.writerow(["" if value is None else json.dumps(json_safe(value))
                             if isinstance(value, dict | list) else value for value in values])
