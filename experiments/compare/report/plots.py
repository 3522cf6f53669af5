"""The report's charts as PNG files in ``plots/`` (matplotlib, headless), drawn from the statistics of
:mod:`experiments.compare.report.summary`; the same charts as the page draws, in the same colours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.compare.report.summary import Entry, nan_if_missing

# tab10, so a variant has the same colour in the PNGs and in the HTML charts.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def variant_colours(variants: Sequence[str]) -> dict[str, str]:
    return {variant: PALETTE[i % len(PALETTE)] for i, variant in enumerate(variants)}


def _bounds(estimate: dict[str, float | None] | None) -> tuple[float, float, float]:
    """(value, low, high) with NaN where absent, for plotting."""
    if not estimate:
        return math.nan, math.nan, math.nan
    value, low, high = (nan_if_missing(estimate.get(key)) for key in ("value", "low", "high"))
    return value, low, high


def _float_arrays(series: dict[str, Any], keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The series' lists under ``keys`` as float arrays, ``None`` (a missing interval) as NaN."""
    return tuple(np.array([math.nan if v is None else v for v in series[key]], dtype=float) for key in keys)


def _interval_plot(axis: Any, labels: Sequence[str], estimates: Sequence[dict | None], colours: Sequence[str]) -> None:
    """Dots at the values with horizontal bars for the intervals, first label on top."""
    for position, (estimate, colour) in enumerate(zip(estimates, colours, strict=True)):
        value, low, high = _bounds(estimate)
        y = len(labels) - 1 - position
        if math.isfinite(low) and math.isfinite(high):
            axis.hlines(y, low, high, colors=colour, linewidth=3, alpha=0.6)
        if math.isfinite(value):
            axis.plot([value], [y], "o", color=colour)
    axis.set_yticks(range(len(labels)), list(reversed(labels)))
    axis.set_ylim(-0.7, len(labels) - 0.3)


def write_plots(plot_dir: Path, stats: Entry) -> list[Path]:
    """The PNG versions of the report's charts (those with data)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    variants, conditions, baseline = stats["variants"], stats["conditions"], stats["baseline"]
    colours = variant_colours(variants)
    written: list[Path] = []

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        figure.savefig(plot_dir / name, dpi=100)
        plt.close(figure)
        written.append(plot_dir / name)

    aggregate = stats["aggregate"]

    def interval_figure(names: list[str], key: str, title: str, xlabel: str) -> Any:
        """One row per condition: each variant's estimate of ``key`` with its interval."""
        figure, axes = plt.subplots(len(conditions), 1, figsize=(7, 1 + 0.45 * len(names) * len(conditions)),
                                    sharex=True, squeeze=False)
        for axis, condition in zip(axes[:, 0], conditions, strict=True):
            present = [v for v in names if v in aggregate[condition]]
            _interval_plot(axis, present, [aggregate[condition][v][key] for v in present],
                           [colours[v] for v in present])
            axis.set_title(f"{condition}: {title}", fontsize=9)
        axes[-1, 0].set_xlabel(xlabel)
        return figure, axes

    if any(aggregate.values()):
        figure, _ = interval_figure(variants, "iqm", "IQM of seed mean returns, 95% stratified bootstrap CI",
                                    "mean return")
        save(figure, "iqm_ci.png")

    curves = stats["curves"]
    if curves:
        figure, axes = plt.subplots(len(curves), 1, figsize=(7, 3.2 * len(curves)), squeeze=False)
        for axis, (scenario, by_variant) in zip(axes[:, 0], curves.items(), strict=True):
            for variant, curve in by_variant.items():
                steps = np.array(curve["steps"], dtype=float)
                mean, low, high = _float_arrays(curve, ("mean", "low", "high"))
                axis.plot(steps, mean, color=colours[variant], label=variant)
                axis.fill_between(steps, low, high, color=colours[variant], alpha=0.2, linewidth=0)
            axis.set_title(f"{scenario}: learning curves (mean over seeds, 95% t band)", fontsize=9)
            axis.set_xlabel("environment steps")
            axis.set_ylabel("eval mean return")
            axis.legend(fontsize=8)
        save(figure, "learning_curves.png")

    others = [v for v in variants if v != baseline]
    if others and any(aggregate.values()):
        figure, axes = interval_figure(others, "probability_of_improvement",
                                       f"P(variant > {baseline}), 95% bootstrap CI", "probability of improvement")
        for axis in axes[:, 0]:
            axis.axvline(0.5, color="grey", linestyle="--", linewidth=1)
            axis.set_xlim(0, 1)
        save(figure, "probability_of_improvement.png")

    profiles = stats["profiles"]
    if profiles:
        figure, axes = plt.subplots(len(profiles), 1, figsize=(7, 3 * len(profiles)), squeeze=False)
        for axis, (condition, profile) in zip(axes[:, 0], profiles.items(), strict=True):
            thresholds = np.array(profile["thresholds"], dtype=float)
            for variant, curve in profile["variants"].items():
                fraction, low, high = _float_arrays(curve, ("fraction", "low", "high"))
                axis.step(thresholds, fraction, where="post", color=colours[variant], label=variant)
                axis.fill_between(thresholds, low, high, step="post", color=colours[variant], alpha=0.2, linewidth=0)
            axis.set_title(f"{condition}: performance profile (95% stratified bootstrap band)", fontsize=9)
            axis.set_xlabel("mean return threshold")
            axis.set_ylabel("fraction of runs above")
            axis.set_ylim(-0.02, 1.02)
            axis.legend(fontsize=8)
        save(figure, "performance_profiles.png")

    transfer = stats["transfer_conditions"]
    if transfer and any(aggregate[c] for c in transfer):
        matrix = np.array([[_bounds(aggregate[c].get(v, {}).get("iqm"))[0] for c in transfer] for v in variants])
        figure, axis = plt.subplots(figsize=(1.5 + 1.3 * len(transfer), 1 + 0.5 * len(variants)))
        image = axis.imshow(np.ma.masked_invalid(matrix), cmap="RdYlGn", aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            axis.text(j, i, "-" if math.isnan(value) else f"{value:.3g}", ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(transfer)), transfer)
        axis.set_yticks(range(len(variants)), variants)
        axis.set_title("IQM of seed mean returns per evaluation condition", fontsize=9)
        figure.colorbar(image, ax=axis)
        save(figure, "transfer_matrix.png")
    return written
