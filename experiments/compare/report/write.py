"""The report's entry point: the statistics, then every file of the report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.compare.report.files import json_safe, write_csv
from experiments.compare.report.page import render_html
from experiments.compare.report.plots import write_plots
from experiments.compare.report.scalars import neuro_series
from experiments.compare.report.summary import compute_statistics, neuro_values
from experiments.files import write_json_atomic


def write_report(out_dir: Path, rows: list[dict], baseline: str, meta: dict) -> dict[str, Any]:
    """Write results.csv, results.json, plots/*.png and report.html into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = compute_statistics(rows, baseline, meta)
    series, skipped = neuro_series(rows)  # each run's tb/ folder: kept out of the pure statistics
    stats["neuro_values"] = neuro_values(series, stats["variants"], stats["notes"])
    stats["notes"].extend(skipped)
    csv_path, json_path, html_path = out_dir / "results.csv", out_dir / "results.json", out_dir / "report.html"
    write_csv(csv_path, rows)
    write_json_atomic(json_path, json_safe({"rows": rows, "statistics": stats, "meta": meta}))
    plots = write_plots(out_dir / "plots", stats)
    html_path.write_text(render_html(stats, meta, rows, plots), encoding="utf-8")
    return {"html": html_path, "csv": csv_path, "json": json_path, "plots": plots, "headline": stats["headline"]}
