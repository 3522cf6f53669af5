"""The comparison report: every variant's seeds under every evaluation condition, summarised with the statistics of
Agarwal et al. (2021) from :mod:`experiments.analysis.statistics`, written as ``results.csv``, ``results.json``,
matplotlib plots in ``plots/`` and one self-contained ``report.html`` (inline CSS and JS, the data embedded, no
external reference, so it opens offline).

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

import csv
import html
import json
import math
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from experiments.analysis.statistics import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    aggregate_estimates,
    aggregate_mean,
    aggregate_median,
    iqm,
    mean_ci,
    mean_curve_band,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
    wilson_ci,
)
from experiments.files import write_json_atomic
from neuro.snn.config import ENERGY_CAVEAT

CLEAN = "clean"
PROFILE_POINTS = 61
# tab10, so a variant has the same colour in the PNGs and in the HTML charts.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
ROW_FIELDS = ["variant", "scenario", "seed", "condition", "run_dir", "mean_return", "crash_rate", "mean_speed",
              "n_episodes"]
LIST_FIELDS = ["returns", "crashed", "curve"]
CRASH_CI_METHOD = ("crash rate: mean over seeds of each seed's crash rate, 95% Student-t interval over seeds "
                   "(clipped to [0, 1]); crashes/episodes: Wilson 95% interval over all episodes of all seeds pooled")

Entry = dict[str, Any]
CellKey = tuple[str, str, str]  # (variant, scenario, condition)


# --- statistics -----------------------------------------------------------------------------------------------


def _estimate(value: float | None, low: float | None = None, high: float | None = None) -> dict[str, float | None]:
    """An estimate as JSON-ready numbers; NaN becomes None (no CI, or no value)."""
    return {"value": _finite_or_none(value), "low": _finite_or_none(low), "high": _finite_or_none(high)}


def _finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, else None (absent, NaN, inf, or not a number at all)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _finite_values(values: Iterable[Any]) -> list[float]:
    return [number for number in map(_finite_or_none, values) if number is not None]


def _ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _index_rows(rows: Sequence[Entry], notes: list[str]) -> dict[CellKey, dict[int, Entry]]:
    """Rows by (variant, scenario, condition) then seed; rows without a finite score are left out, with a note."""
    index: dict[CellKey, dict[int, Entry]] = {}
    for row in rows:
        key = (str(row["variant"]), str(row["scenario"]), str(row["condition"]))
        seed = int(row["seed"])
        if _finite_or_none(row.get("mean_return")) is None:
            notes.append(f"left out {key[0]} / {key[1]} / {key[2]} seed {seed}: mean_return is not a finite number")
            continue
        cell = index.setdefault(key, {})
        if seed in cell:
            raise ValueError(f"rows: two rows for variant {key[0]!r}, scenario {key[1]!r}, condition {key[2]!r}, "
                             f"seed {seed}")
        cell[seed] = row
    return index


def _location(scores: NDArray[np.float64]) -> dict[str, dict[str, float | None]]:
    """Mean, median and IQM of (seeds x tasks) scores with stratified-bootstrap intervals (None under 2 seeds).
    The median is rliable's: the median over tasks of each task's mean score (of one task, its mean)."""
    if scores.shape[0] >= 2:
        estimates = aggregate_estimates(scores, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
        return {name: _estimate(e.value, e.low, e.high) for name, e in estimates.items()}
    return {"mean": _estimate(float(aggregate_mean(scores))), "median": _estimate(float(aggregate_median(scores))),
            "iqm": _estimate(iqm(scores))}


def _median_of_runs(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median of all (..., runs, tasks) scores pooled; of one task, the median seed score."""
    return np.median(scores.reshape(*scores.shape[:-2], -1), axis=-1)


def _scenario_location(scores: NDArray[np.float64]) -> dict[str, dict[str, float | None]]:
    """:func:`_location` of one scenario's seeds, with the median of the seeds' scores (rliable's median would be
    their mean here). The same bootstrap seed and shape give the same resamples as the mean and IQM intervals."""
    location = _location(scores)
    if scores.shape[0] >= 2:
        e = stratified_bootstrap_ci(scores, _median_of_runs, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
        location["median"] = _estimate(e.value, e.low, e.high)
    else:
        location["median"] = _estimate(float(_median_of_runs(scores)))
    return location


def _improvement(scores: NDArray[np.float64], baseline_scores: NDArray[np.float64]) -> dict[str, float | None]:
    """P(variant > baseline) over aligned tasks, with its bootstrap interval when both sides have 2 seeds."""
    if scores.shape[0] >= 2 and baseline_scores.shape[0] >= 2:
        e = probability_of_improvement_ci(scores, baseline_scores, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
        return _estimate(e.value, e.low, e.high)
    return _estimate(probability_of_improvement(scores, baseline_scores))


def _seed_mean_ci(values: Sequence[float], low_bound: float = -math.inf,
                  high_bound: float = math.inf) -> dict[str, float | None]:
    """Mean over seeds with a Student-t interval (clipped to the quantity's range); no interval under 2 seeds."""
    if not values:
        return _estimate(None)
    if len(values) < 2:
        return _estimate(float(np.mean(values)))
    e = mean_ci(values)
    return _estimate(e.value, max(e.low, low_bound), min(e.high, high_bound))


def _episode_crashes(row: Entry) -> tuple[int, int]:
    """(crashes, episodes) of one run; from the per-episode flags, else from its crash rate and episode count."""
    crashed = row.get("crashed") or []
    if crashed:
        return int(sum(bool(flag) for flag in crashed)), len(crashed)
    episodes = int(row.get("n_episodes") or 0)
    return int(round(float(row.get("crash_rate") or 0.0) * episodes)), episodes


def _energy(runs: Sequence[Entry]) -> Entry | None:
    """Mean per-decision energy of a spiking variant and of its ANN twin over the seeds that report them."""
    snn_stats = [run["snn"] for run in runs if isinstance(run.get("snn"), dict)]
    if not snn_stats:
        return None

    def mean_of(key: str) -> float | None:
        values = [float(s[key]) for s in snn_stats if _finite_or_none(s.get(key)) is not None]
        return float(np.mean(values)) if values else None

    snn, ann = mean_of("energy_pj_per_decision"), mean_of("ann_energy_pj_per_decision")
    ratio = mean_of("energy_ratio")
    if ratio is None and snn is not None and ann:
        ratio = snn / ann
    layers = _ordered_unique(key for s in snn_stats for key in s if key.startswith("firing_rate/"))
    return {"snn_pj": snn, "ann_pj": ann, "ratio": ratio, "seeds": len(snn_stats),
            "firing_rates": {key.removeprefix("firing_rate/"): mean_of(key) for key in layers}}


def _cell_summary(cell: dict[int, Entry], baseline_cell: dict[int, Entry] | None, is_baseline: bool) -> Entry:
    """Every statistic of one variant at one training scenario under one condition."""
    seeds = sorted(cell)
    runs = [cell[seed] for seed in seeds]
    scores = np.array([[float(run["mean_return"])] for run in runs])
    crashes, episodes = map(sum, zip(*(_episode_crashes(run) for run in runs), strict=True))
    entry: Entry = {
        "seeds": seeds,
        "n_seeds": len(seeds),
        **_scenario_location(scores),
        "crash_rate": _seed_mean_ci(_finite_values(run.get("crash_rate") for run in runs), 0.0, 1.0),
        "crash_episodes": {"crashes": crashes, "episodes": episodes,
                           **(wilson_ci(crashes, episodes).to_dict() if episodes else _estimate(None))},
        "mean_speed": _seed_mean_ci(_finite_values(run.get("mean_speed") for run in runs)),
        "energy": _energy(runs),
        "is_baseline": is_baseline,
        "probability_of_improvement": None,
    }
    if baseline_cell and not is_baseline:
        baseline_scores = np.array([[float(baseline_cell[seed]["mean_return"])] for seed in sorted(baseline_cell)])
        entry["probability_of_improvement"] = _improvement(scores, baseline_scores)
    return entry


def _score_table(index: dict[CellKey, dict[int, Entry]], variant: str, condition: str, scenarios: Sequence[str],
                 field: str = "mean_return") -> tuple[list[int], NDArray[np.float64]] | None:
    """(seeds x scenarios) values of one variant under one condition over the seeds every scenario has (the
    statistics need equal run counts per task); None when a scenario is missing or no seed is shared."""
    cells = [index.get((variant, scenario, condition)) for scenario in scenarios]
    if not scenarios or not all(cells):
        return None
    shared = sorted(set.intersection(*(set(cell) for cell in cells if cell)))
    if not shared:
        return None
    values = [[_nan_if_missing(cell[seed].get(field)) for cell in cells if cell] for seed in shared]
    return shared, np.array(values, dtype=float)


def _aggregate(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
               condition: str, baseline: str, notes: list[str]) -> dict[str, Entry]:
    """Per variant, the statistics across training scenarios (stratified by scenario) under one condition."""
    result: dict[str, Entry] = {}
    for variant in variants:
        tasks = [s for s in scenarios if index.get((variant, s, condition))]
        table = _score_table(index, variant, condition, tasks)
        if table is None:
            continue
        seeds, scores = table
        all_seeds = set().union(*(index[(variant, s, condition)] for s in tasks))
        if len(all_seeds) > len(seeds):
            notes.append(f"{condition} / {variant}: across scenarios only seeds {seeds} (those every scenario has) "
                         f"count; left out {sorted(all_seeds - set(seeds))}")
        crash_table = _score_table(index, variant, condition, tasks, "crash_rate")
        crash_by_seed = _finite_values(crash_table[1].mean(axis=1)) if crash_table else []  # NaN: a rate missing
        entry: Entry = {"seeds": seeds, "n_seeds": len(seeds), "scenarios": tasks, **_location(scores),
                        "crash_rate": _seed_mean_ci(crash_by_seed, 0.0, 1.0), "is_baseline": variant == baseline,
                        "probability_of_improvement": None}
        if variant != baseline:
            # Both sides on the scenarios both have, so the tasks line up.
            shared_tasks = [s for s in tasks if index.get((baseline, s, condition))]
            ours = _score_table(index, variant, condition, shared_tasks)
            theirs = _score_table(index, baseline, condition, shared_tasks)
            if ours and theirs:
                entry["probability_of_improvement"] = _improvement(ours[1], theirs[1])
                entry["improvement_scenarios"] = shared_tasks
        result[variant] = entry
    return result


def _profiles(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
              condition: str) -> Entry | None:
    """Performance profiles of every variant under one condition on a shared grid of score thresholds."""
    tables: dict[str, NDArray[np.float64]] = {}
    for variant in variants:
        table = _score_table(index, variant, condition, [s for s in scenarios if index.get((variant, s, condition))])
        if table is not None:
            tables[variant] = table[1]
    if not tables:
        return None
    pooled = np.concatenate([scores.ravel() for scores in tables.values()])
    low, high = float(pooled.min()), float(pooled.max())
    margin = 0.05 * (high - low) if high > low else max(1.0, abs(low) * 0.1)
    thresholds = np.linspace(low - margin, high + margin, PROFILE_POINTS)
    curves: dict[str, Entry] = {}
    for variant, scores in tables.items():
        if scores.shape[0] >= 2:
            profile = performance_profile(scores, thresholds, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
            fraction, band_low, band_high = profile.fraction, profile.low, profile.high
        else:  # one seed: the step function alone, no band
            fraction = np.mean(scores.ravel()[:, None] > thresholds, axis=0)
            band_low = band_high = np.full(thresholds.shape, np.nan)
        curves[variant] = {"fraction": _number_list(fraction), "low": _number_list(band_low),
                           "high": _number_list(band_high), "n_seeds": int(scores.shape[0])}
    return {"thresholds": _number_list(thresholds), "variants": curves}


def _number_list(values: Iterable[Any]) -> list[float | None]:
    return [_finite_or_none(value) for value in values]


def _nan_if_missing(value: Any) -> float:
    number = _finite_or_none(value)
    return math.nan if number is None else number


def _curves(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
            conditions: Sequence[str]) -> dict[str, dict[str, Entry]]:
    """Per scenario and variant, the mean training-time evaluation curve over seeds with its t band."""
    result: dict[str, dict[str, Entry]] = {}
    for scenario in scenarios:
        for variant in variants:
            # A run's curve is the same under every condition: take each seed's first one found.
            curve_by_seed: dict[int, dict[float, float]] = {}
            for condition in conditions:
                for seed, row in (index.get((variant, scenario, condition)) or {}).items():
                    if seed in curve_by_seed or not row.get("curve"):
                        continue
                    # A missing or non-finite evaluation is a gap (NaN), which mean_curve_band skips.
                    curve_by_seed[seed] = {float(step): _nan_if_missing(value) for step, value in row["curve"]}
            if not curve_by_seed:
                continue
            steps = sorted(set().union(*curve_by_seed.values()))
            matrix = [[curve.get(step, math.nan) for step in steps] for curve in curve_by_seed.values()]
            band = mean_curve_band(matrix)
            result.setdefault(scenario, {})[variant] = {
                "steps": steps, "mean": _number_list(band.mean), "low": _number_list(band.low),
                "high": _number_list(band.high), "seeds": [int(n) for n in band.seeds]}
    return result


def _dotted_paths(overrides: Any, prefix: str = "") -> list[str]:
    """Every dotted path a (possibly nested) override mapping sets."""
    if not isinstance(overrides, dict) or not overrides:
        return [prefix] if prefix else []
    return [path for key, value in overrides.items() for path in _dotted_paths(value, f"{prefix}{key}.")]


def _kinds_from_compare_file(text: str) -> dict[str, str]:
    """Condition kinds read off the comparison file's ``conditions``: no override is clean, a new ``env.id`` a
    transfer, any other env change (wrappers, traffic, env.config) robustness. Empty when the text does not parse."""
    try:
        spec = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return {}
    conditions = spec.get("conditions") if isinstance(spec, dict) else None
    if not isinstance(conditions, dict):
        return {}
    kinds = {}
    for name, overrides in conditions.items():
        paths = [path.rstrip(".") for path in _dotted_paths(overrides or {})]
        kinds[str(name)] = ("transfer" if any(p == "env.id" or p.startswith("env.id.") for p in paths)
                            else "robustness" if paths else CLEAN)
    return kinds


def _condition_kinds(rows: Sequence[Entry], conditions: Sequence[str], meta: Entry) -> dict[str, str]:
    """Each condition's kind (clean, transfer, robustness): meta["condition_kinds"] wins over the rows'
    ``condition_kind``, which wins over the comparison file; "other" when nothing says (shown as both)."""
    kinds: dict[str, str] = {condition: CLEAN if condition == CLEAN else "other" for condition in conditions}
    sources = [_kinds_from_compare_file(str(meta.get("compare_file") or "")),
               {str(row["condition"]): str(row["condition_kind"]) for row in rows if row.get("condition_kind")},
               dict(meta.get("condition_kinds") or {})]
    for source in sources:  # later sources win
        kinds.update({condition: kind for condition, kind in source.items() if condition in kinds})
    return kinds


def compute_statistics(rows: Sequence[Entry], baseline: str, meta: Entry | None = None) -> Entry:
    """Every statistic the report shows, JSON-ready (NaN as None)."""
    meta = meta or {}
    notes: list[str] = []
    variants = _ordered_unique(str(row["variant"]) for row in rows)
    if rows and baseline not in variants:
        raise ValueError(f"baseline: {baseline!r} is not among the variants {variants}")
    scenarios = _ordered_unique(str(row["scenario"]) for row in rows)
    conditions = _ordered_unique(str(row["condition"]) for row in rows)
    conditions.sort(key=lambda condition: condition != CLEAN)  # clean first, the rest as they came
    index = _index_rows(rows, notes)
    summary: dict[str, dict[str, dict[str, Entry]]] = {}
    for scenario in scenarios:
        for condition in conditions:
            baseline_cell = index.get((baseline, scenario, condition))
            for variant in variants:
                cell = index.get((variant, scenario, condition))
                if cell:
                    summary.setdefault(scenario, {}).setdefault(condition, {})[variant] = _cell_summary(
                        cell, baseline_cell, variant == baseline)
    aggregate = {condition: _aggregate(index, variants, scenarios, condition, baseline, notes)
                 for condition in conditions}
    profiles = {condition: profile for condition in conditions
                if (profile := _profiles(index, variants, scenarios, condition)) is not None}
    kinds = _condition_kinds(rows, conditions, meta)
    transfer = [c for c in conditions if kinds[c] in (CLEAN, "transfer", "other")]
    robustness = [c for c in conditions if c != CLEAN and kinds[c] in ("robustness", "other")]
    return {
        "baseline": baseline,
        "variants": variants,
        "scenarios": scenarios,
        "conditions": conditions,
        "condition_kinds": kinds,
        "transfer_conditions": transfer,
        "robustness_conditions": robustness,
        "settings": {"confidence": CONFIDENCE, "n_resamples": N_RESAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
                     "score": "mean_return of each seed under the condition",
                     "stratification": "training scenarios are the tasks, seeds the runs",
                     "crash_rate_ci": CRASH_CI_METHOD,
                     "learning_curve_band": "pointwise Student-t band over seeds (mean_curve_band)",
                     "energy": ENERGY_CAVEAT},
        "summary": summary,
        "aggregate": aggregate,
        "profiles": profiles,
        "curves": _curves(index, variants, scenarios, conditions),
        "notes": notes,
    }


# --- files ----------------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None, tuples as lists and unknown objects as text, so strict JSON accepts it."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        return _finite_or_none(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return str(value)


def _write_csv(path: Path, rows: Sequence[Entry]) -> None:
    """One line per row: scalars as they are, lists JSON-encoded, the snn figures flattened to ``snn/<key>``."""
    snn_keys = _ordered_unique(key for row in rows if isinstance(row.get("snn"), dict) for key in row["snn"])
    known = set(ROW_FIELDS) | set(LIST_FIELDS) | {"snn"}
    extra = sorted({key for row in rows for key in row if key not in known})
    header = ROW_FIELDS + extra + [f"snn/{key}" for key in snn_keys] + LIST_FIELDS
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            snn: dict[str, Any] = row["snn"] if isinstance(row.get("snn"), dict) else {}

            values = [row.get(key) for key in ROW_FIELDS + extra] + [snn.get(key) for key in snn_keys]
            values += [json.dumps(_json_safe(row.get(key))) for key in LIST_FIELDS]
            writer.writerow(["" if value is None else json.dumps(_json_safe(value))
                             if isinstance(value, dict | list) else value for value in values])


def _colours(variants: Sequence[str]) -> dict[str, str]:
    return {variant: PALETTE[i % len(PALETTE)] for i, variant in enumerate(variants)}


def _bounds(estimate: dict[str, float | None] | None) -> tuple[float, float, float]:
    """(value, low, high) with NaN where absent, for plotting."""
    if not estimate:
        return math.nan, math.nan, math.nan
    value, low, high = (_nan_if_missing(estimate.get(key)) for key in ("value", "low", "high"))
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


def _write_plots(plot_dir: Path, stats: Entry) -> list[Path]:
    """The PNG versions of the report's charts (those with data)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    variants, conditions, baseline = stats["variants"], stats["conditions"], stats["baseline"]
    colours = _colours(variants)
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


# --- html -----------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """HTML-escaped text; "://" written as an entity so no URL-looking reference appears in the file's source."""
    return html.escape(str(value)).replace("://", "&#58;//")


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _fmt_estimate(estimate: dict[str, float | None] | None) -> str:
    """``value [low, high]``; "-" for an absent value or interval."""
    if not estimate or estimate.get("value") is None:
        return "-"
    low, high = estimate.get("low"), estimate.get("high")
    interval = f"[{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else "[-]"
    return f"{_fmt(estimate['value'])} {interval}"


def _energy_cell(energy: Entry | None) -> tuple[str, str]:
    """(cell text, tooltip) for the per-decision energy of a spiking variant."""
    if not energy or energy.get("snn_pj") is None:
        return "-", "not a spiking agent, or no energy figures"
    text = f"{_fmt(energy['snn_pj'])} vs ANN {_fmt(energy['ann_pj'])} (x{_fmt(energy['ratio'])})"
    rates = ", ".join(f"{layer} {_fmt(rate)}" for layer, rate in energy["firing_rates"].items())
    return text, f"mean over {energy['seeds']} seeds; firing rates: {rates or '-'}; {ENERGY_CAVEAT}"


SUMMARY_HEADER = ["variant", "seeds", "mean [95% CI]", "median [95% CI]", "IQM [95% CI]", "P(> baseline) [95% CI]",
                  "crash rate [95% t CI, seeds]", "crashes / episodes [Wilson 95% CI]", "mean speed",
                  "energy / decision (pJ): SNN vs ANN"]


def _summary_row(variant: str, entry: Entry) -> str:
    crashes = entry["crash_episodes"]
    energy_text, energy_tip = _energy_cell(entry["energy"])
    poi = "(baseline)" if entry["is_baseline"] else _fmt_estimate(entry["probability_of_improvement"])
    speed = entry["mean_speed"]
    cells = [
        (f"{_text(variant)}" + (' <span class="badge">baseline</span>' if entry["is_baseline"] else ""), "", True),
        (str(entry["n_seeds"]), f"seeds {entry['seeds']}", False),
        (_fmt_estimate(entry["mean"]), "", False),
        (_fmt_estimate(entry["median"]), "", False),
        (_fmt_estimate(entry["iqm"]), "", False),
        (poi, "", False),
        (_fmt_estimate(entry["crash_rate"]), "", False),
        (f"{crashes['crashes']}/{crashes['episodes']} [{_fmt(crashes.get('low'))}, {_fmt(crashes.get('high'))}]", "",
         False),
        (_fmt(speed.get("value")), f"95% t CI over seeds: {_fmt_estimate(speed)}", False),
        (energy_text, energy_tip, False),
    ]
    tds = "".join(f'<td{f" title={_attr(tip)}" if tip else ""}>{cell if raw else _text(cell)}</td>'
                  for cell, tip, raw in cells)
    row_class = ' class="baseline"' if entry["is_baseline"] else ""
    return f"<tr{row_class}>{tds}</tr>"


def _listing(names: Sequence[str]) -> str:
    return _text(", ".join(names) or "-")


def _attr(value: Any) -> str:
    return f'"{_text(value)}"'


def _summary_tables(stats: Entry) -> str:
    """One table per training scenario x condition, variants as rows; and across scenarios when there are several."""
    parts = []
    head = "".join(f"<th>{_text(name)}</th>" for name in SUMMARY_HEADER)
    for scenario, by_condition in stats["summary"].items():
        for condition, by_variant in by_condition.items():
            body = "".join(_summary_row(variant, by_variant[variant]) for variant in stats["variants"]
                           if variant in by_variant)
            parts.append(f'<h3>trained on {_text(scenario)}, evaluated: {_text(condition)}</h3>'
                         f'<div class="scroll"><table class="summary"><thead><tr>{head}</tr></thead>'
                         f'<tbody>{body}</tbody></table></div>')
    if len(stats["scenarios"]) > 1:
        parts.append("<h3>across training scenarios (stratified bootstrap, scenarios as tasks)</h3>")
        cross_head = "".join(f"<th>{_text(name)}</th>" for name in ["condition", "variant", "seeds", "mean [95% CI]",
                                                                    "median of scenario means [95% CI]",
                                                                    "IQM [95% CI]", "P(> baseline) [95% CI]",
                                                                    "crash rate [95% CI]"])
        rows = []
        for condition, by_variant in stats["aggregate"].items():
            for variant, entry in by_variant.items():
                poi = "(baseline)" if entry["is_baseline"] else _fmt_estimate(entry["probability_of_improvement"])
                cells = [condition, variant, entry["n_seeds"], _fmt_estimate(entry["mean"]),
                         _fmt_estimate(entry["median"]), _fmt_estimate(entry["iqm"]), poi,
                         _fmt_estimate(entry["crash_rate"])]
                rows.append("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in cells) + "</tr>")
        parts.append(f'<div class="scroll"><table class="summary"><thead><tr>{cross_head}</tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table></div>')
    return "\n".join(parts) or "<p>No rows: nothing was evaluated.</p>"


def _configs_text(configs: Any) -> str:
    try:
        return yaml.safe_dump(_json_safe(configs), sort_keys=False)
    except yaml.YAMLError:
        return json.dumps(_json_safe(configs), indent=2)


def _embedded_json(data: Any) -> str:
    """Strict JSON safe inside a <script> element: "<" escaped (no "</script>"), "/" of "://" escaped."""
    text = json.dumps(_json_safe(data), allow_nan=False, separators=(",", ":"))
    # "://" only ever occurs inside JSON strings, where "\/" is a valid escape of "/".
    return text.replace("<", "\\u003c").replace("://", ":\\/\\/")


CHART_SECTIONS = [
    ("chart-curves", "Learning curves", "Training-time evaluations: mean over seeds with a 95% pointwise Student-t "
     "band. Hover a point for exact values; click a legend entry to hide or show a variant everywhere."),
    ("chart-iqm", "IQM with 95% CIs", "Per condition, IQM of the seeds' mean returns across training scenarios, "
     "with 95% stratified bootstrap intervals (percentile)."),
    ("chart-poi", "Probability of improvement over the baseline", "P(variant > baseline): the share of (seed, "
     "baseline seed) pairs the variant wins, ties half, averaged over training scenarios; 95% bootstrap interval."),
    ("chart-profiles", "Performance profiles", "Fraction of runs (seeds x scenarios) scoring above each threshold, "
     "with a 95% pointwise stratified bootstrap band."),
    ("chart-transfer", "Transfer matrix", "IQM of seed mean returns per variant and evaluation condition, coloured "
     "from the lowest (red) to the highest (green) value in the matrix."),
    ("table-robustness", "Robustness", "Per variant, IQM under each robustness condition, its change from clean and "
     "the crash rate (mean over seeds, 95% t interval)."),
]


def _command_text(command: Any) -> str:
    """The command line as a shell would take it (the runner passes argv as a list)."""
    if isinstance(command, list | tuple):
        return shlex.join(str(part) for part in command)
    return str(command or "-")


def _provenance(meta: Entry) -> str:
    versions = meta.get("versions") or {}
    version_rows = "".join(f"<tr><td>{_text(name)}</td><td>{_text(version if version is not None else '-')}</td></tr>"
                           for name, version in versions.items())
    return (f'<dl><dt>commit</dt><dd><code>{_text(meta.get("commit") or "-")}</code></dd>'
            f'<dt>command</dt><dd><code>{_text(_command_text(meta.get("command")))}</code></dd></dl>'
            f'<h3>library versions</h3><table class="versions"><tbody>{version_rows}</tbody></table>'
            f'<h3>comparison file</h3><pre id="compare-file">{_text(meta.get("compare_file") or "")}</pre>'
            f'<h3>resolved experiment configs</h3><pre id="configs">{_text(_configs_text(meta.get("configs") or {}))}'
            "</pre>")


def render_html(stats: Entry, meta: Entry, rows: Sequence[Entry]) -> str:
    """The whole report page: static tables, chart containers, the embedded data and the drawing script."""
    data = {"statistics": stats, "colours": _colours(stats["variants"]), "name": meta.get("name")}
    charts = "\n".join(f'<section><h2>{_text(title)}</h2><p class="caption">{_text(caption)}</p>'
                       f'<div class="chart" id="{chart_id}"></div></section>'
                       for chart_id, title, caption in CHART_SECTIONS)
    settings = stats["settings"]
    notes = "".join(f"<li>{_text(note)}</li>" for note in stats["notes"])
    name = meta.get("name") or "comparison"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NeuroDrive comparison: {_text(name)}</title>
<style>{CSS}</style>
</head>
<body>
<svg id="svg-namespace" width="0" height="0" aria-hidden="true"></svg>
<h1>NeuroDrive comparison: {_text(name)}</h1>
<p>Baseline: <strong>{_text(stats["baseline"])}</strong>. Variants: {_listing(stats["variants"])}.
Training scenarios: {_listing(stats["scenarios"])}. Conditions: {_listing(stats["conditions"])}.
{len(rows)} evaluations.</p>
<section id="method"><h2>How to read it</h2><ul>
<li>A seed is a run; its score is its mean return under the condition. Each condition is summarised separately.</li>
<li>Intervals are {settings["confidence"]:.0%}: mean, median and IQM use the percentile stratified bootstrap
({settings["n_resamples"]} resamples, seed {settings["bootstrap_seed"]}; {_text(settings["stratification"])}).</li>
<li>Per training scenario, the median is that of the seeds' scores; across scenarios, the median over
scenarios of each scenario's mean (rliable). The IQM pools seeds x scenarios and averages the middle half.</li>
<li>{_text(settings["crash_rate_ci"])}.</li>
<li>Energy per decision: {_text(settings["energy"])}.</li>
<li>"-": not available (an interval needs at least 2 seeds).</li>
</ul>{f'<h3>notes</h3><ul class="notes">{notes}</ul>' if notes else ""}</section>
<section id="summary"><h2>Summary</h2>
{_summary_tables(stats)}
</section>
{charts}
<section id="provenance"><h2>Provenance</h2>
{_provenance(meta)}
</section>
<script type="application/json" id="report-data">{_embedded_json(data)}</script>
<script>
{JAVASCRIPT}
</script>
</body>
</html>
"""


def write_report(out_dir: Path, rows: list[dict], baseline: str, meta: dict) -> dict[str, Any]:
    """Write results.csv, results.json, plots/*.png and report.html into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = compute_statistics(rows, baseline, meta)
    csv_path, json_path, html_path = out_dir / "results.csv", out_dir / "results.json", out_dir / "report.html"
    _write_csv(csv_path, rows)
    write_json_atomic(json_path, _json_safe({"rows": rows, "statistics": stats, "meta": meta}))
    plots = _write_plots(out_dir / "plots", stats)
    html_path.write_text(render_html(stats, meta, rows), encoding="utf-8")
    return {"html": html_path, "csv": csv_path, "json": json_path, "plots": plots}


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1200px;
       padding: 0 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
tr.baseline td { background: #f7f7e8; }
.badge { font-size: 11px; background: #444; color: #fff; border-radius: 3px; padding: 0 4px; margin-left: 4px; }
.scroll { overflow-x: auto; }
.caption { color: #555; margin: 4px 0 8px; }
pre { background: #f6f6f6; padding: 8px; overflow: auto; max-height: 420px; font-size: 12px; }
svg.plot { display: block; margin: 6px 0; max-width: 100%; height: auto; font-size: 11px; }
svg.plot .grid { stroke: #eee; } svg.plot .frame { fill: none; stroke: #999; }
svg.plot .plot-title { font-weight: 600; font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 12px; }
.legend-item { border: 1px solid #ccc; background: #fff; border-radius: 3px; padding: 2px 8px; cursor: pointer;
               font: inherit; }
.legend-item.off { opacity: 0.4; text-decoration: line-through; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }
.empty { color: #888; font-style: italic; }
td.worse { color: #b2182b; } td.better { color: #1a7837; }
"""

# Plain ES5-style JavaScript, no library: draws every chart from the embedded JSON. The SVG namespace is read from an
# inline <svg> so the file holds no URL. Each chart is drawn in its own try block: one failure shows in its container
# (and the console) without blanking the others.
JAVASCRIPT = r"""
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var STATS = DATA.statistics;
  var SVG_NS = document.getElementById("svg-namespace").namespaceURI;
  var hiddenSeries = {};

  function isNum(x) { return typeof x === "number" && isFinite(x); }
  function fmt(x) { return isNum(x) ? String(Number(x.toPrecision(4))) : "-"; }
  function fmtCi(e) {
    if (!e) { return "-"; }
    return fmt(e.value) + " [" + (isNum(e.low) && isNum(e.high) ? fmt(e.low) + ", " + fmt(e.high) : "-") + "]";
  }
  function colour(name) { return (DATA.colours && DATA.colours[name]) || "#555555"; }

  function svgEl(parent, tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs, text);
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function htmlEl(parent, tag, attrs, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs, text);
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function setAttrs(node, attrs, text) {
    if (attrs) { Object.keys(attrs).forEach(function (key) { node.setAttribute(key, String(attrs[key])); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
  }
  function tooltip(node, text) { svgEl(node, "title", null, text); }
  function note(container, text) { htmlEl(container, "p", {"class": "empty"}, text); }

  function extent(values) {
    var low = Infinity, high = -Infinity;
    values.forEach(function (v) { if (isNum(v)) { low = Math.min(low, v); high = Math.max(high, v); } });
    if (low > high) { return [0, 1]; }
    if (low === high) { var pad = Math.abs(low) * 0.1 || 1; return [low - pad, high + pad]; }
    return [low, high];
  }
  function linear(d0, d1, r0, r1) {
    var span = (d1 - d0) || 1;
    return function (v) { return r0 + (v - d0) / span * (r1 - r0); };
  }
  function ticks(low, high, count) {
    var span = high - low;
    if (!isNum(span) || span <= 0) { return isNum(low) ? [low] : []; }
    var step = Math.pow(10, Math.floor(Math.log(span / count) / Math.LN10));
    var error = span / count / step;
    if (error >= 7.5) { step *= 10; } else if (error >= 3.5) { step *= 5; } else if (error >= 1.5) { step *= 2; }
    var out = [];
    for (var v = Math.ceil(low / step) * step; v <= high + step * 1e-9 && out.length < 50; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }

  // An SVG with a frame, grid, axis ticks and labels; yTicks false for a categorical y axis.
  function frame(container, opts) {
    var width = opts.width || 720, height = opts.height || 320;
    var m = {left: opts.left || 64, right: 16, top: 28, bottom: 44};
    var svg = svgEl(null, "svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                                  "class": "plot", role: "img"});
    container.appendChild(svg);
    svgEl(svg, "text", {x: 8, y: 16, "class": "plot-title"}, opts.title);
    var x = linear(opts.xDomain[0], opts.xDomain[1], m.left, width - m.right);
    var y = linear(opts.yDomain[0], opts.yDomain[1], height - m.bottom, m.top);
    var axes = svgEl(svg, "g", {"class": "axes"});
    ticks(opts.xDomain[0], opts.xDomain[1], 6).forEach(function (t) {
      svgEl(axes, "line", {x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom, "class": "grid"});
      svgEl(axes, "text", {x: x(t), y: height - m.bottom + 14, "text-anchor": "middle"}, fmt(t));
    });
    if (opts.yTicks !== false) {
      ticks(Math.min(opts.yDomain[0], opts.yDomain[1]), Math.max(opts.yDomain[0], opts.yDomain[1]), 5)
        .forEach(function (t) {
          svgEl(axes, "line", {x1: m.left, x2: width - m.right, y1: y(t), y2: y(t), "class": "grid"});
          svgEl(axes, "text", {x: m.left - 6, y: y(t) + 4, "text-anchor": "end"}, fmt(t));
        });
    }
    svgEl(axes, "rect", {x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom,
                         "class": "frame"});
    svgEl(axes, "text", {x: (m.left + width - m.right) / 2, y: height - 8, "text-anchor": "middle"}, opts.xLabel || "");
    if (opts.yLabel) {
      svgEl(axes, "text", {transform: "translate(14," + (m.top + height - m.bottom) / 2 + ") rotate(-90)",
                           "text-anchor": "middle"}, opts.yLabel);
    }
    return {svg: svg, x: x, y: y, left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom};
  }

  function legend(container, names) {
    if (!names.length) { return; }
    var box = htmlEl(container, "div", {"class": "legend"});
    names.forEach(function (name) {
      var item = htmlEl(box, "button", {type: "button", "class": "legend-item", "data-legend": name,
                                        title: "click to hide or show " + name + " in every chart"});
      var swatch = htmlEl(item, "span", {"class": "swatch"});
      swatch.style.background = colour(name);
      htmlEl(item, "span", null, name);
      item.addEventListener("click", function () {
        hiddenSeries[name] = !hiddenSeries[name];
        applyVisibility();
      });
    });
  }
  function applyVisibility() {
    var nodes = document.querySelectorAll("[data-series]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].style.display = hiddenSeries[nodes[i].getAttribute("data-series")] ? "none" : "";
    }
    var items = document.querySelectorAll("[data-legend]");
    for (var j = 0; j < items.length; j++) {
      items[j].classList.toggle("off", !!hiddenSeries[items[j].getAttribute("data-legend")]);
    }
  }

  // Lines with CI bands: series [{name, x, mean, low, high, tip(i)}].
  function lineChart(container, title, series, xLabel, yLabel, yDomain) {
    var xs = [], ys = [];
    series.forEach(function (s) { xs = xs.concat(s.x); ys = ys.concat(s.mean, s.low, s.high); });
    if (!xs.some(isNum) || !ys.some(isNum)) { note(container, title + ": no data"); return; }
    var f = frame(container, {title: title, xDomain: extent(xs), yDomain: yDomain || extent(ys), xLabel: xLabel,
                              yLabel: yLabel});
    series.forEach(function (s) {
      var group = svgEl(f.svg, "g", {"data-series": s.name});
      var run = [];
      var flushBand = function () {
        if (run.length > 1) {
          var upper = run.map(function (i) { return f.x(s.x[i]).toFixed(1) + "," + f.y(s.high[i]).toFixed(1); });
          var lower = run.slice().reverse().map(function (i) {
            return f.x(s.x[i]).toFixed(1) + "," + f.y(s.low[i]).toFixed(1);
          });
          svgEl(group, "polygon", {points: upper.concat(lower).join(" "), fill: colour(s.name), "fill-opacity": 0.18,
                                   stroke: "none"});
        }
        run = [];
      };
      var i;
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.low[i]) && isNum(s.high[i])) { run.push(i); } else { flushBand(); }
      }
      flushBand();
      var path = "", penDown = false;
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.mean[i])) {
          path += (penDown ? "L" : "M") + f.x(s.x[i]).toFixed(1) + "," + f.y(s.mean[i]).toFixed(1);
          penDown = true;
        } else { penDown = false; }
      }
      if (path) { svgEl(group, "path", {d: path, fill: "none", stroke: colour(s.name), "stroke-width": 2}); }
      for (i = 0; i < s.x.length; i++) {
        if (isNum(s.x[i]) && isNum(s.mean[i])) {
          var dot = svgEl(group, "circle", {cx: f.x(s.x[i]).toFixed(1), cy: f.y(s.mean[i]).toFixed(1), r: 3,
                                            fill: colour(s.name)});
          tooltip(dot, s.name + "\n" + xLabel + ": " + fmt(s.x[i]) + "\n" + yLabel + ": " +
                  fmtCi({value: s.mean[i], low: s.low[i], high: s.high[i]}) + (s.tip ? s.tip(i) : ""));
        }
      }
    });
    legend(container, series.map(function (s) { return s.name; }));
  }

  // Dot-and-whisker rows: [{label, series, estimate, tip}] on a shared x domain, optional reference line.
  function intervalChart(container, title, rows, xDomain, reference, xLabel) {
    if (!rows.length) { note(container, title + ": no data"); return; }
    var longest = Math.max.apply(null, rows.map(function (r) { return r.label.length; }));
    var f = frame(container, {title: title, xDomain: xDomain, yDomain: [rows.length, 0], xLabel: xLabel,
                              yTicks: false, height: 72 + 24 * rows.length, left: Math.min(260, 16 + 7 * longest)});
    if (isNum(reference)) {
      svgEl(f.svg, "line", {x1: f.x(reference), x2: f.x(reference), y1: f.top, y2: f.bottom, stroke: "#888",
                            "stroke-dasharray": "4 3"});
    }
    rows.forEach(function (r, i) {
      var group = svgEl(f.svg, "g", {"data-series": r.series});
      var cy = f.y(i + 0.5), e = r.estimate || {};
      svgEl(group, "text", {x: f.left - 6, y: cy + 4, "text-anchor": "end"}, r.label);
      if (isNum(e.low) && isNum(e.high)) {
        svgEl(group, "line", {x1: f.x(e.low), x2: f.x(e.high), y1: cy, y2: cy, stroke: colour(r.series),
                              "stroke-width": 3, "stroke-opacity": 0.6});
      }
      if (isNum(e.value)) {
        var dot = svgEl(group, "circle", {cx: f.x(e.value), cy: cy, r: 5, fill: colour(r.series)});
        tooltip(dot, r.label + ": " + fmtCi(e) + (r.tip ? "\n" + r.tip : ""));
      }
    });
  }

  function drawCurves(container) {
    var scenarios = Object.keys(STATS.curves || {});
    if (!scenarios.length) { note(container, "no learning curves in the rows"); return; }
    scenarios.forEach(function (scenario) {
      var byVariant = STATS.curves[scenario];
      var series = STATS.variants.filter(function (v) { return byVariant[v]; }).map(function (v) {
        var c = byVariant[v];
        return {name: v, x: c.steps, mean: c.mean, low: c.low, high: c.high,
                tip: function (i) { return "\nseeds: " + c.seeds[i]; }};
      });
      lineChart(container, scenario + ": learning curves", series, "environment steps", "eval mean return");
    });
  }

  function aggregateRows(condition, metric, variants) {
    var byVariant = (STATS.aggregate || {})[condition] || {};
    return variants.filter(function (v) { return byVariant[v] && byVariant[v][metric]; }).map(function (v) {
      var entry = byVariant[v];
      return {label: v === STATS.baseline ? v + " (baseline)" : v, series: v, estimate: entry[metric],
              tip: "seeds: " + entry.n_seeds + "; scenarios: " + (entry.scenarios || []).join(", ")};
    });
  }

  function drawIqm(container) {
    var values = [];
    STATS.conditions.forEach(function (condition) {
      aggregateRows(condition, "iqm", STATS.variants).forEach(function (r) {
        values.push(r.estimate.value, r.estimate.low, r.estimate.high);
      });
    });
    if (!values.some(isNum)) { note(container, "no scores"); return; }
    var domain = extent(values);
    STATS.conditions.forEach(function (condition) {
      intervalChart(container, condition + ": IQM of seed mean returns",
                    aggregateRows(condition, "iqm", STATS.variants), domain, null, "mean return");
    });
    legend(container, STATS.variants);
  }

  function drawImprovement(container) {
    var others = STATS.variants.filter(function (v) { return v !== STATS.baseline; });
    if (!others.length) { note(container, "only the baseline: nothing to compare"); return; }
    STATS.conditions.forEach(function (condition) {
      intervalChart(container, condition + ": P(variant > " + STATS.baseline + ")",
                    aggregateRows(condition, "probability_of_improvement", others), [0, 1], 0.5,
                    "probability of improvement");
    });
    legend(container, others);
  }

  function drawProfiles(container) {
    var conditions = Object.keys(STATS.profiles || {});
    if (!conditions.length) { note(container, "no scores"); return; }
    conditions.forEach(function (condition) {
      var profile = STATS.profiles[condition];
      var series = STATS.variants.filter(function (v) { return profile.variants[v]; }).map(function (v) {
        var c = profile.variants[v];
        return {name: v, x: profile.thresholds, mean: c.fraction, low: c.low, high: c.high,
                tip: function () { return "\nseeds: " + c.n_seeds; }};
      });
      lineChart(container, condition + ": performance profile", series, "score threshold",
                "fraction of runs above", [0, 1]);
    });
  }

  // Diverging red (low) - yellow - green (high) colour for t in [0, 1].
  function heat(t) {
    var stops = [[215, 48, 39], [255, 255, 191], [26, 152, 80]];
    var u = Math.max(0, Math.min(1, t)) * 2, k = Math.min(1, Math.floor(u)), w = u - k;
    var rgb = [0, 1, 2].map(function (c) { return Math.round(stops[k][c] + (stops[k + 1][c] - stops[k][c]) * w); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function drawTransfer(container) {
    var conditions = STATS.transfer_conditions || [], variants = STATS.variants || [];
    var cell = function (v, c) { var byVariant = (STATS.aggregate || {})[c] || {}; return byVariant[v]; };
    var values = [];
    variants.forEach(function (v) {
      conditions.forEach(function (c) { var e = cell(v, c); if (e && e.iqm) { values.push(e.iqm.value); } });
    });
    if (!values.some(isNum)) { note(container, "no scores"); return; }
    var range = extent(values), cellWidth = 120, cellHeight = 30;
    var left = Math.min(260, 16 + 7 * Math.max.apply(null, variants.map(function (v) { return v.length; })));
    var width = left + cellWidth * conditions.length + 16, height = 48 + cellHeight * variants.length;
    var svg = svgEl(container, "svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                                       "class": "plot", role: "img"});
    svgEl(svg, "text", {x: 8, y: 16, "class": "plot-title"}, "IQM per variant (rows) and condition (columns)");
    conditions.forEach(function (c, j) {
      svgEl(svg, "text", {x: left + cellWidth * (j + 0.5), y: 40, "text-anchor": "middle"}, c);
    });
    variants.forEach(function (v, i) {
      var group = svgEl(svg, "g", {"data-series": v}), y = 48 + cellHeight * i;
      svgEl(group, "text", {x: left - 6, y: y + cellHeight / 2 + 4, "text-anchor": "end"}, v);
      conditions.forEach(function (c, j) {
        var e = cell(v, c), value = e && e.iqm ? e.iqm.value : null;
        var t = isNum(value) ? (value - range[0]) / ((range[1] - range[0]) || 1) : null;
        var rect = svgEl(group, "rect", {x: left + cellWidth * j + 1, y: y + 1, width: cellWidth - 2,
                                         height: cellHeight - 2, fill: t === null ? "#eeeeee" : heat(t)});
        tooltip(rect, v + " under " + c + "\nIQM " + (e ? fmtCi(e.iqm) + "\nseeds: " + e.n_seeds : "-"));
        var label = svgEl(group, "text", {x: left + cellWidth * (j + 0.5), y: y + cellHeight / 2 + 4,
                                          "text-anchor": "middle", "pointer-events": "none"}, fmt(value));
        label.setAttribute("fill", "#111");
      });
    });
    legend(container, variants);
  }

  function drawRobustness(container) {
    var conditions = STATS.robustness_conditions || [], variants = STATS.variants || [];
    if (!conditions.length || !variants.length) { note(container, "no robustness condition was evaluated"); return; }
    var aggregate = STATS.aggregate || {}, clean = aggregate.clean || {};
    var table = htmlEl(container, "table", {"class": "robustness"});
    var head = htmlEl(htmlEl(table, "thead"), "tr");
    htmlEl(head, "th", null, "variant");
    htmlEl(head, "th", null, "clean IQM [95% CI]");
    conditions.forEach(function (c) {
      htmlEl(head, "th", null, c + " IQM [95% CI]");
      htmlEl(head, "th", null, c + ": change from clean");
      htmlEl(head, "th", null, c + ": crash rate [95% CI]");
    });
    var body = htmlEl(table, "tbody");
    variants.forEach(function (v) {
      var tr = htmlEl(body, "tr", {"data-series": v});
      htmlEl(tr, "td", null, v + (v === STATS.baseline ? " (baseline)" : ""));
      var cleanIqm = clean[v] ? clean[v].iqm : null;
      htmlEl(tr, "td", null, fmtCi(cleanIqm));
      conditions.forEach(function (c) {
        var e = (aggregate[c] || {})[v];
        htmlEl(tr, "td", null, e ? fmtCi(e.iqm) : "-");
        var change = e && cleanIqm && isNum(e.iqm.value) && isNum(cleanIqm.value) ? e.iqm.value - cleanIqm.value : null;
        var td = htmlEl(tr, "td", {title: "IQM under " + c + " minus IQM clean (point estimates)"}, fmt(change));
        if (isNum(change)) { td.className = change < 0 ? "worse" : "better"; }
        htmlEl(tr, "td", null, e ? fmtCi(e.crash_rate) : "-");
      });
    });
    legend(container, variants);
  }

  var charts = {"chart-curves": drawCurves, "chart-iqm": drawIqm, "chart-poi": drawImprovement,
                "chart-profiles": drawProfiles, "chart-transfer": drawTransfer, "table-robustness": drawRobustness};
  Object.keys(charts).forEach(function (id) {
    var container = document.getElementById(id);
    if (!container) { return; }
    try {
      charts[id](container);
    } catch (error) {
      note(container, "this chart could not be drawn: " + error);
      console.error(error);
    }
  });
  applyVisibility();
})();
"""
