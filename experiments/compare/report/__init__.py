"""The comparison report: every variant's seeds under every evaluation condition, summarised with the statistics of
Agarwal et al. (2021) from :mod:`experiments.analysis.statistics`, written as ``results.csv``, ``results.json``,
matplotlib plots in ``plots/`` and one self-contained ``report.html`` (inline CSS and JS, the data embedded, no
external reference, so it opens offline).

Modules: ``summary`` (the statistics, JSON-ready), ``files`` (results.csv and strict JSON), ``plots`` (the PNGs),
``page`` (report.html, with the CSS and JavaScript of ``assets/`` inlined).

Conventions. A seed is a run; its score under a condition is its ``mean_return`` there. Each condition is treated
separately. Per training scenario x condition the summary gives the mean, median and IQM of the seeds' scores with
95% percentile intervals of the bootstrap over seeds, and the probability of improvement over the baseline with its
bootstrap interval. Across training scenarios (the charts) the same statistics use the stratified bootstrap with the
training scenarios as tasks, over the seeds that every scenario has (the median there is rliable's: over scenarios,
of each scenario's mean). Crash rate: the mean over seeds of each seed's crash rate with a Student-t interval over
seeds (seeds are the replicates; episodes of one seed share its policy), and beside it a Wilson interval over all
episodes pooled (episode noise only). Intervals need at least 2 seeds; with
fewer they are None in the JSON and "-" in the report. The bootstrap seed is fixed, so a report is reproducible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.compare.report.files import json_safe, write_csv
from experiments.compare.report.page import render_html
from experiments.compare.report.plots import write_plots
from experiments.compare.report.summary import compute_statistics, condition_kinds
from experiments.files import write_json_atomic

__all__ = ["compute_statistics", "condition_kinds", "render_html", "write_report"]


def write_report(out_dir: Path, rows: list[dict], baseline: str, meta: dict) -> dict[str, Any]:
    """Write results.csv, results.json, plots/*.png and report.html into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = compute_statistics(rows, baseline, meta)
    csv_path, json_path, html_path = out_dir / "results.csv", out_dir / "results.json", out_dir / "report.html"
    write_csv(csv_path, rows)
    write_json_atomic(json_path, json_safe({"rows": rows, "statistics": stats, "meta": meta}))
    plots = write_plots(out_dir / "plots", stats)
    html_path.write_text(render_html(stats, meta, rows), encoding="utf-8")
    return {"html": html_path, "csv": csv_path, "json": json_path, "plots": plots}
