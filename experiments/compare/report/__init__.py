"""The comparison report: every variant's seeds under every evaluation condition, summarised with the statistics of
Agarwal et al. (2021) from :mod:`experiments.statistics`, written as ``results.csv``, ``results.json``,
matplotlib plots in ``plots/`` and one self-contained ``report.html`` (inline CSS and JS, the data embedded, no
external reference, so it opens offline).

Modules: ``write`` (:func:`write_report`, the entry point), ``summary`` (the statistics, JSON-ready), ``files``
(results.csv and strict JSON), ``scalars`` (each run's neuromodulated values from its TensorBoard files), ``plots``
(the PNGs), ``page`` (report.html, with the CSS and JavaScript of ``assets/`` and the PNG figures inlined). Names
load on first use, so the statistics import without matplotlib.

Conventions. A seed is a run; its score under a condition is its ``mean_return`` there. Each condition is treated
separately. Per training scenario x condition the summary gives the mean, median and IQM of the seeds' scores with
95% percentile intervals of the bootstrap over seeds, and the probability of improvement over the baseline with its
bootstrap interval. Across training scenarios (the charts) the same statistics use the stratified bootstrap with the
training scenarios as tasks, over the seeds that every scenario has (the median there is rliable's: over scenarios,
of each scenario's mean). Crash rate: the mean over seeds of each seed's crash rate with a Student-t interval over
seeds (seeds are the replicates; episodes of one seed share its policy), and beside it a Wilson interval over all
episodes pooled (episode noise only). Sample-efficiency curves: the IQM over seeds at each training-time
evaluation step every seed has, with a pointwise percentile bootstrap band over seeds; the difference from the
baseline: IQM(variant) - IQM(baseline) with the stratified bootstrap resampling each side. Intervals need at least
2 seeds; with fewer they are None in the JSON and "-" in the report. The bootstrap seed is fixed, so a report is
reproducible.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "write_report": "experiments.compare.report.write",
    "render_html": "experiments.compare.report.page",
    **dict.fromkeys(("compute_statistics", "condition_kinds"), "experiments.compare.report.summary"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'experiments.compare.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
