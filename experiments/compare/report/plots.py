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


def padded_limits(values: Sequence[float], include: Sequence[float] = ()) -> tuple[float, float]:
    """Axis limits around every finite value (interval ends, dots, a reference line) with a 6% margin on each
    side, so no interval end sits on or past the frame."""
    finite = [v for v in (*values, *include) if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = 0.06 * (high - low) if high > low else max(abs(high) * 0.1, 0.05)
    return low - margin, high + margin


def _ends(estimates: Sequence[dict | None]) -> list[float]:
    """Every value and interval end of the estimates (NaN where absent)."""
    return [number for estimate in estimates for number in _bounds(estimate)]


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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def _condition_axes(conditions: Sequence[str], rows: int) -> tuple[Any, Any]:
    """One axis per condition, stacked, sharing the x axis (one scale to compare conditions on)."""
    plt = _pyplot()
    figure, axes = plt.subplots(len(conditions), 1, figsize=(7, 1.1 + (0.5 * rows + 0.5) * len(conditions)),
                                sharex=True, squeeze=False)
    return figure, axes[:, 0]


def interval_figure(stats: Entry, names: Sequence[str], key: str, title: str, xlabel: str,
                    include: Sequence[float] = ()) -> Any:
    """One axis per condition: each variant's across-scenario estimate of ``key`` with its interval; the x limits
    hold every interval end and ``include`` (a reference line) with a margin."""
    aggregate, colours = stats["aggregate"], variant_colours(stats["variants"])
    conditions = [c for c in stats["conditions"] if any(v in aggregate[c] for v in names)]
    if not conditions:
        return None
    figure, axes = _condition_axes(conditions, len(names))
    ends: list[float] = []
    for axis, condition in zip(axes, conditions, strict=True):
        present = [v for v in names if v in aggregate[condition]]
        estimates = [aggregate[condition][v][key] for v in present]
        _interval_plot(axis, present, estimates, [colours[v] for v in present])
        ends += _ends(estimates)
        axis.set_title(f"{condition}: {title}", fontsize=9)
    for value in include:
        for axis in axes:
            axis.axvline(value, color="grey", linestyle="--", linewidth=1)
    axes[0].set_xlim(*padded_limits(ends, include))
    axes[-1].set_xlabel(xlabel)
    return figure


def difference_figure(stats: Entry) -> Any:
    """Per condition, each variant's IQM minus the baseline's with its 95% stratified bootstrap interval, and
    the zero line (no difference)."""
    differences, colours = stats.get("differences") or {}, variant_colours(stats["variants"])
    baseline = stats["baseline"]
    conditions = [c for c in stats["conditions"] if differences.get(c)]
    if not conditions:
        return None
    names = [v for v in stats["variants"] if any(v in differences[c] for c in conditions)]
    figure, axes = _condition_axes(conditions, len(names))
    ends: list[float] = []
    for axis, condition in zip(axes, conditions, strict=True):
        present = [v for v in names if v in differences[condition]]
        estimates = [differences[condition][v] for v in present]
        axis.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        _interval_plot(axis, present, estimates, [colours[v] for v in present])
        ends += _ends(estimates)
        axis.set_title(f"{condition}: IQM(variant) - IQM({baseline}), 95% stratified bootstrap CI", fontsize=9)
    axes[0].set_xlim(*padded_limits(ends, [0.0]))
    axes[-1].set_xlabel("difference in mean return")
    return figure


def seed_figure(stats: Entry) -> Any:
    """Per condition and variant, each seed's score as a dot (a cross: its policy collapsed to one action) above
    the across-scenario IQM with its 95% interval."""
    seed_scores, aggregate = stats.get("seed_scores") or {}, stats["aggregate"]
    colours, variants = variant_colours(stats["variants"]), stats["variants"]
    conditions = [c for c in stats["conditions"] if seed_scores.get(c)]
    if not conditions:
        return None
    figure, axes = _condition_axes(conditions, len(variants))
    values: list[float] = []
    jitter = np.random.default_rng(0)  # fixed: the same report draws the same picture
    for axis, condition in zip(axes, conditions, strict=True):
        present = [v for v in variants if v in seed_scores[condition]]
        for position, variant in enumerate(present):
            y = len(present) - 1 - position
            dots = [d for d in seed_scores[condition][variant] if d["score"] is not None]
            for collapsed, marker in ((False, "o"), (True, "x")):
                xs = [d["score"] for d in dots if d["collapsed"] == collapsed]
                if xs:
                    ys = y + 0.18 + jitter.uniform(-0.08, 0.08, len(xs))
                    axis.plot(xs, ys, marker, color=colours[variant], alpha=0.65, markersize=4, linestyle="none")
            values += [d["score"] for d in dots]
            estimate = (aggregate[condition].get(variant) or {}).get("iqm")
            value, low, high = _bounds(estimate)
            if math.isfinite(low) and math.isfinite(high):
                axis.hlines(y - 0.18, low, high, colors=colours[variant], linewidth=3, alpha=0.6)
            if math.isfinite(value):
                axis.plot([value], [y - 0.18], "D", color=colours[variant], markersize=6)
            values += [value, low, high]
        axis.set_yticks(range(len(present)), list(reversed(present)))
        axis.set_ylim(-0.7, len(present) - 0.3)
        axis.set_title(f"{condition}: each seed (dots; x = collapsed to one action), IQM with 95% CI (diamond, bar)",
                       fontsize=9)
    axes[0].set_xlim(*padded_limits(values))
    axes[-1].set_xlabel("seed mean return")
    return figure


def _band_axis(axis: Any, by_variant: dict[str, Entry], colours: dict[str, str]) -> list[float]:
    """IQM lines with their bands, one per variant; every value and band end drawn."""
    drawn: list[float] = []
    for variant, band in by_variant.items():
        steps = np.array(band["steps"], dtype=float)
        iqm, low, high = _float_arrays(band, ("iqm", "low", "high"))
        axis.plot(steps, iqm, color=colours[variant], label=f"{variant} ({band['n_seeds']} seeds)")
        axis.fill_between(steps, low, high, color=colours[variant], alpha=0.2, linewidth=0)
        drawn += [*iqm, *low, *high]
    axis.set_ylim(*padded_limits(drawn))
    axis.legend(fontsize=8)
    return drawn


def sample_efficiency_figure(stats: Entry) -> Any:
    """Per scenario, the IQM over seeds at each training-time evaluation step with its 95% bootstrap band."""
    curves, colours = stats.get("curves") or {}, variant_colours(stats["variants"])
    if not curves:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(len(curves), 1, figsize=(7, 3.2 * len(curves)), squeeze=False)
    for axis, (scenario, by_variant) in zip(axes[:, 0], curves.items(), strict=True):
        _band_axis(axis, by_variant, colours)
        axis.set_title(f"{scenario}: sample efficiency (IQM over seeds, 95% bootstrap band)", fontsize=9)
        axis.set_xlabel("environment steps")
        axis.set_ylabel("eval mean return")
    return figure


def neuro_figure(stats: Entry) -> Any:
    """Per scenario and logged value (``neuro/<kind>/<key>``), each variant's IQM over seeds with its band."""
    values, colours = stats.get("neuro_values") or {}, variant_colours(stats["variants"])
    panels = [(scenario, tag, by_variant) for scenario, by_tag in values.items() for tag, by_variant in by_tag.items()]
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.8 * len(panels)), squeeze=False)
    for axis, (scenario, tag, by_variant) in zip(axes[:, 0], panels, strict=True):
        _band_axis(axis, by_variant, colours)
        axis.set_title(f"{scenario}: {tag} (IQM over seeds, 95% bootstrap band)", fontsize=9)
        axis.set_xlabel("environment steps")
        axis.set_ylabel(tag.rsplit("/", 1)[-1])
    return figure


# The figures of the page's image sections, by file name (page.py shows them in this order).
FIGURES = {
    "difference.png": difference_figure,
    "seeds.png": seed_figure,
    "crash_rate.png": lambda stats: interval_figure(
        stats, stats["variants"], "crash_rate", "crash rate (mean over seeds, 95% t CI)", "crash rate"),
    "neuro_values.png": neuro_figure,
}


def write_plots(plot_dir: Path, stats: Entry) -> list[Path]:
    """The PNG versions of the report's charts (those with data)."""
    plt = _pyplot()
    plot_dir.mkdir(parents=True, exist_ok=True)
    variants, baseline = stats["variants"], stats["baseline"]
    written: list[Path] = []

    def save(figure: Any, name: str) -> None:
        if figure is None:
            return
        figure.tight_layout()
        figure.savefig(plot_dir / name, dpi=100)
        plt.close(figure)
        written.append(plot_dir / name)

    aggregate = stats["aggregate"]
    if any(aggregate.values()):
        save(interval_figure(stats, variants, "iqm", "IQM of seed mean returns, 95% stratified bootstrap CI",
                             "mean return"), "iqm_ci.png")
    save(sample_efficiency_figure(stats), "sample_efficiency.png")
    others = [v for v in variants if v != baseline]
    if others and any(aggregate.values()):
        save(interval_figure(stats, others, "probability_of_improvement",
                             f"P(variant > {baseline}), 95% bootstrap CI", "probability of improvement", [0.5]),
             "probability_of_improvement.png")

    profiles = stats["profiles"]
    if profiles:
        colours = variant_colours(variants)
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
            axis.set_ylim(-0.04, 1.04)
            axis.legend(fontsize=8)
        save(figure, "performance_profiles.png")

    transfer = stats["transfer_conditions"]
    if transfer and any(aggregate[c] for c in transfer):
        matrix = np.array([[_bounds(aggregate[c].get(v, {}).get("iqm"))[0] for c in transfer] for v in variants])
        figure, axis = plt.subplots(figsize=(1.5 + 1.3 * len(transfer), 1 + 0.5 * len(variants)))
        image = axis.imshow(np.ma.masked_invalid(matrix), cmap="RdYlGn", aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            axis.text(j, i, "-" if math.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(transfer)), transfer)
        axis.set_yticks(range(len(variants)), variants)
        axis.set_title("IQM of seed mean returns per evaluation condition", fontsize=9)
        figure.colorbar(image, ax=axis)
        save(figure, "transfer_matrix.png")
    for name, draw in FIGURES.items():
        save(draw(stats), name)
    return written
