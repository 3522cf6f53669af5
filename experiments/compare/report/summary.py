"""Every statistic the comparison report shows, JSON-ready: per training scenario x condition, across scenarios,
performance profiles and learning curves (the estimators are :mod:`experiments.statistics`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from experiments.sequential import POWER, Verdict, holm_verdicts, seeds_for_power, verdict
from experiments.statistics import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    Estimate,
    aggregate_iqm,
    bootstrap_distribution,
    improvement_estimate,
    iqm_difference_ci,
    location_estimates,
    mean_estimate,
    percentile_interval,
    pooled_median_estimate,
    profile_estimate,
    wilson_ci,
)
from neuro.snn.config import ENERGY_CAVEAT

CLEAN = "clean"
PROFILE_POINTS = 61
CRASH_CI_METHOD = ("crash rate: mean over seeds of each seed's crash rate, 95% Student-t interval over seeds "
                   "(clipped to [0, 1]); crashes/episodes: Wilson 95% interval over all episodes of all seeds pooled")

Entry = dict[str, Any]
CellKey = tuple[str, str, str]  # (variant, scenario, condition)


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, else None (absent, NaN, inf, or not a number at all)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def nan_if_missing(value: Any) -> float:
    number = finite_or_none(value)
    return math.nan if number is None else number


def ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _estimate(value: float | None, low: float | None = None, high: float | None = None) -> dict[str, float | None]:
    """An estimate as JSON-ready numbers; NaN becomes None (no CI, or no value)."""
    return {"value": finite_or_none(value), "low": finite_or_none(low), "high": finite_or_none(high)}


def _json_estimate(estimate: Estimate) -> dict[str, float | None]:
    return _estimate(estimate.value, estimate.low, estimate.high)


def _finite_values(values: Iterable[Any]) -> list[float]:
    return [number for number in map(finite_or_none, values) if number is not None]


def _number_list(values: Iterable[Any]) -> list[float | None]:
    return [finite_or_none(value) for value in values]


# --- condition kinds ------------------------------------------------------------------------------------------


def _dotted_paths(overrides: Any, prefix: str = "") -> list[str]:
    """Every dotted path a (possibly nested) override mapping sets."""
    if not isinstance(overrides, Mapping) or not overrides:
        return [prefix] if prefix else []
    return [path for key, value in overrides.items() for path in _dotted_paths(value, f"{prefix}{key}.")]


def condition_kinds(conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each condition's kind from its overrides (``Comparison.conditions``): none is clean, a new ``env.id`` a
    transfer, any other env change (wrappers, traffic, env.config) robustness."""
    kinds = {}
    for name, overrides in conditions.items():
        paths = [path.rstrip(".") for path in _dotted_paths(overrides or {})]
        kinds[str(name)] = ("transfer" if any(p == "env.id" or p.startswith("env.id.") for p in paths)
                            else "robustness" if paths else CLEAN)
    return kinds


def _resolved_kinds(rows: Sequence[Entry], conditions: Sequence[str], meta: Entry) -> dict[str, str]:
    """Each condition's kind (clean, transfer, robustness): meta["condition_kinds"] (the comparison's, see
    :func:`condition_kinds`) wins over the rows' ``condition_kind``; "other" when nothing says (shown as both)."""
    kinds: dict[str, str] = {condition: CLEAN if condition == CLEAN else "other" for condition in conditions}
    sources = [{str(row["condition"]): str(row["condition_kind"]) for row in rows if row.get("condition_kind")},
               dict(meta.get("condition_kinds") or {})]
    for source in sources:  # later sources win
        kinds.update({condition: kind for condition, kind in source.items() if condition in kinds})
    return kinds


# --- per cell -------------------------------------------------------------------------------------------------


def _index_rows(rows: Sequence[Entry], notes: list[str]) -> dict[CellKey, dict[int, Entry]]:
    """Rows by (variant, scenario, condition) then seed; rows without a finite score are left out, with a note."""
    index: dict[CellKey, dict[int, Entry]] = {}
    for row in rows:
        key = (str(row["variant"]), str(row["scenario"]), str(row["condition"]))
        seed = int(row["seed"])
        if finite_or_none(row.get("mean_return")) is None:
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
    estimates = location_estimates(scores, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
    return {name: _json_estimate(e) for name, e in estimates.items()}


def _scenario_location(scores: NDArray[np.float64]) -> dict[str, dict[str, float | None]]:
    """:func:`_location` of one scenario's seeds, with the median of the seeds' scores (rliable's median would be
    their mean here). The same bootstrap seed and shape give the same resamples as the mean and IQM intervals."""
    location = _location(scores)
    location["median"] = _json_estimate(pooled_median_estimate(scores, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED))
    return location


def _improvement(scores: NDArray[np.float64], baseline_scores: NDArray[np.float64]) -> dict[str, float | None]:
    """P(variant > baseline) over aligned tasks, with its bootstrap interval when both sides have 2 seeds."""
    return _json_estimate(improvement_estimate(scores, baseline_scores, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED))


def _seed_mean_ci(values: Sequence[float], low_bound: float = -math.inf,
                  high_bound: float = math.inf) -> dict[str, float | None]:
    """Mean over seeds with a Student-t interval (clipped to the quantity's range); no interval under 2 seeds."""
    return _json_estimate(mean_estimate(values, low_bound, high_bound))


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
        values = [float(s[key]) for s in snn_stats if finite_or_none(s.get(key)) is not None]
        return float(np.mean(values)) if values else None

    snn, ann = mean_of("energy_pj_per_decision"), mean_of("ann_energy_pj_per_decision")
    ratio = mean_of("energy_ratio")
    if ratio is None and snn is not None and ann:
        ratio = snn / ann
    layers = ordered_unique(key for s in snn_stats for key in s if key.startswith("firing_rate/"))
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
        "collapsed_seeds": [seed for seed in seeds if cell[seed].get("dominant_action") is not None],
    }
    if baseline_cell and not is_baseline:
        baseline_scores = np.array([[float(baseline_cell[seed]["mean_return"])] for seed in sorted(baseline_cell)])
        entry["probability_of_improvement"] = _improvement(scores, baseline_scores)
    return entry


# --- across scenarios -----------------------------------------------------------------------------------------


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
    values = [[nan_if_missing(cell[seed].get(field)) for cell in cells if cell] for seed in shared]
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
        profile = profile_estimate(scores, thresholds, n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
        curves[variant] = {"fraction": _number_list(profile.fraction), "low": _number_list(profile.low),
                           "high": _number_list(profile.high), "n_seeds": int(scores.shape[0])}
    return {"thresholds": _number_list(thresholds), "variants": curves}


# --- the plots' statistics: sample efficiency, differences, seeds, neuromodulated values ---------------------

CURVE_BAND_METHOD = ("IQM over seeds at each training-time evaluation step, on the steps every seed has, with a 95% "
                     "pointwise percentile bootstrap over seeds")
NEURO_BAND_METHOD = ("IQM over seeds of each seed's logged value, linearly interpolated onto common steps inside the "
                     "range every seed covers, with a 95% pointwise percentile bootstrap over seeds")
NEURO_POINTS = 100  # at most this many steps per neuromodulated-value curve: a PNG has no use for more

RunKey = tuple[str, str, int]  # (variant, scenario, seed)
Series = Sequence[tuple[float, float]]  # (step, value), as TensorBoard logs a scalar


def iqm_band(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per column (a step) of a finite (seeds x steps) matrix: the IQM over seeds and its 95% percentile bootstrap
    interval (seeds resampled with replacement at each step); NaN intervals under 2 seeds."""
    values = np.asarray(scipy_stats.trim_mean(matrix, 0.25, axis=0), dtype=float)
    if matrix.shape[0] < 2:
        return values, np.full_like(values, math.nan), np.full_like(values, math.nan)
    distribution = bootstrap_distribution(
        [matrix], lambda resamples: scipy_stats.trim_mean(resamples, 0.25, axis=-2), N_RESAMPLES, BOOTSTRAP_SEED,
        matrix.size)
    low, high = percentile_interval(distribution, CONFIDENCE)
    return values, low, high


def _band_entry(steps: Iterable[float], matrix: NDArray[np.float64], seeds: Sequence[int]) -> Entry:
    values, low, high = iqm_band(matrix)
    return {"steps": _number_list(steps), "iqm": _number_list(values), "low": _number_list(low),
            "high": _number_list(high), "seeds": list(seeds), "n_seeds": len(seeds)}


def _finite_points(curve: Iterable[Sequence[Any]]) -> dict[float, float]:
    """A curve's ``[step, value]`` pairs as {step: value}, leaving out any with a missing or non-finite number."""
    pairs = ((finite_or_none(step), finite_or_none(value)) for step, value in curve)
    return {step: value for step, value in pairs if step is not None and value is not None}


def _sample_efficiency(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
                       conditions: Sequence[str], notes: list[str]) -> dict[str, dict[str, Entry]]:
    """Per scenario and variant, the IQM over seeds of the training-time evaluations (``curve``) with its
    bootstrap band, on the steps every seed evaluated at (a step one seed lacks, or logged as non-finite, is
    dropped, and counted in ``dropped_steps``)."""
    result: dict[str, dict[str, Entry]] = {}
    for scenario in scenarios:
        for variant in variants:
            # A run's curve is the same under every condition: each seed's first one found.
            by_seed: dict[int, dict[float, float]] = {}
            for condition in conditions:
                for seed, row in sorted((index.get((variant, scenario, condition)) or {}).items()):
                    if seed not in by_seed and row.get("curve"):
                        by_seed[seed] = _finite_points(row["curve"])
            if not by_seed:
                continue
            seeds = sorted(by_seed)
            every = set.intersection(*(set(curve) for curve in by_seed.values()))
            steps = sorted(every)
            if not steps:
                notes.append(f"{scenario} / {variant}: no training-time evaluation step that every seed has; "
                             "no sample-efficiency curve")
                continue
            matrix = np.array([[by_seed[seed][step] for step in steps] for seed in seeds])
            entry = _band_entry(steps, matrix, seeds)
            entry["dropped_steps"] = len(set().union(*by_seed.values()) - every)
            result.setdefault(scenario, {})[variant] = entry
    return result


def iqm_difference(x: NDArray[np.float64], y: NDArray[np.float64]) -> Estimate:
    """IQM(x) - IQM(y) of (seeds x scenarios) scores with its stratified bootstrap interval
    (``experiments.statistics.iqm_difference_ci``; of one scenario, the verdicts' interval). The value alone under
    2 seeds a side."""
    if x.shape[0] < 2 or y.shape[0] < 2:
        return Estimate(float(aggregate_iqm(x) - aggregate_iqm(y)), math.nan, math.nan)
    return iqm_difference_ci(x, y)


def _differences(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
                 conditions: Sequence[str], baseline: str) -> dict[str, dict[str, Entry]]:
    """Per condition and variant other than the baseline: the IQM difference from the baseline across the
    scenarios both have (seeds every scenario has), with its stratified bootstrap interval."""
    result: dict[str, dict[str, Entry]] = {}
    for condition in conditions:
        for variant in variants:
            if variant == baseline:
                continue
            shared = [s for s in scenarios
                      if index.get((variant, s, condition)) and index.get((baseline, s, condition))]
            ours = _score_table(index, variant, condition, shared)
            theirs = _score_table(index, baseline, condition, shared)
            if ours is None or theirs is None:
                continue
            result.setdefault(condition, {})[variant] = {
                **_json_estimate(iqm_difference(ours[1], theirs[1])), "scenarios": shared,
                "n_seeds": len(ours[0]), "n_baseline_seeds": len(theirs[0])}
    return result


def _seed_scores(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
                 conditions: Sequence[str]) -> dict[str, dict[str, list[Entry]]]:
    """Per condition and variant, each seed's score at each scenario (the dots beside the IQM), and whether that
    seed's policy collapsed to one action."""
    result: dict[str, dict[str, list[Entry]]] = {}
    for condition in conditions:
        for variant in variants:
            dots = [{"scenario": scenario, "seed": seed, "score": finite_or_none(run["mean_return"]),
                     "collapsed": run.get("dominant_action") is not None}
                    for scenario in scenarios
                    for seed, run in sorted((index.get((variant, scenario, condition)) or {}).items())]
            if dots:
                result.setdefault(condition, {})[variant] = dots
    return result


def plot_statistics(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
                    conditions: Sequence[str], baseline: str, notes: list[str]) -> Entry:
    """The statistics only the plots show: sample-efficiency curves (``curves``), IQM differences from the
    baseline and each seed's score."""
    return {"curves": _sample_efficiency(index, variants, scenarios, conditions, notes),
            "differences": _differences(index, variants, scenarios, conditions, baseline),
            "seed_scores": _seed_scores(index, variants, scenarios, conditions)}


def _common_grid(series: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Steps inside the range every series covers (their own logged steps there, at most NEURO_POINTS)."""
    start, stop = max(s[0, 0] for s in series), min(s[-1, 0] for s in series)
    steps = np.unique(np.concatenate([s[(s[:, 0] >= start) & (s[:, 0] <= stop), 0] for s in series]))
    if steps.size > NEURO_POINTS:
        steps = steps[np.unique(np.linspace(0, steps.size - 1, NEURO_POINTS).round().astype(int))]
    return steps


def neuro_values(series: Mapping[RunKey, Mapping[str, Series]], variants: Sequence[str],
                 notes: list[str]) -> dict[str, dict[str, dict[str, Entry]]]:
    """Per scenario, logged tag (``neuro/<kind>/<key>``) and variant: the IQM over seeds of the value over
    training with its bootstrap band. Seeds log at different steps, so each seed's values are interpolated
    linearly onto common steps within the range every seed of the variant covers."""
    grouped: dict[tuple[str, str, str], dict[int, NDArray[np.float64]]] = {}
    for (variant, scenario, seed), tags in series.items():
        for tag, points in tags.items():
            array = np.array(sorted(_finite_points(points).items()), dtype=float)
            if array.size:
                grouped.setdefault((scenario, tag, variant), {})[seed] = array
    scenarios = ordered_unique(scenario for scenario, _, _ in grouped)
    result: dict[str, dict[str, dict[str, Entry]]] = {}
    for scenario in scenarios:
        for tag in sorted({t for s, t, _ in grouped if s == scenario}):
            for variant in variants:
                by_seed = grouped.get((scenario, tag, variant))
                if not by_seed:
                    continue
                seeds = sorted(by_seed)
                steps = _common_grid([by_seed[seed] for seed in seeds])
                if steps.size == 0:
                    notes.append(f"{scenario} / {variant} / {tag}: the seeds' logged steps do not overlap; not drawn")
                    continue
                matrix = np.array([np.interp(steps, by_seed[seed][:, 0], by_seed[seed][:, 1]) for seed in seeds])
                result.setdefault(scenario, {}).setdefault(tag, {})[variant] = _band_entry(steps, matrix, seeds)
    return result


def _verdicts(index: dict[CellKey, dict[int, Entry]], variants: Sequence[str], scenarios: Sequence[str],
              conditions: Sequence[str], baseline: str, notes: list[str]) -> list[Entry]:
    """Each variant against the baseline at each training scenario under each condition: a verdict from the
    per-seed scores (``experiments.sequential.verdict``), Holm-corrected across all of them, and for a comparison
    not separated the seeds per variant that would give it 80% power at the observed effect."""
    keyed: list[tuple[Entry, Verdict, NDArray[np.float64], NDArray[np.float64]]] = []
    for scenario in scenarios:
        for condition in conditions:
            theirs = index.get((baseline, scenario, condition))
            for variant in variants:
                ours = index.get((variant, scenario, condition))
                if variant == baseline or not ours or not theirs:
                    continue
                if len(ours) < 2 or len(theirs) < 2:
                    notes.append(f"{scenario} / {condition} / {variant}: no verdict from fewer than 2 seeds a side")
                    continue
                # Seeds in order, as the cell summary takes them: the same bootstrap draws, the same interval.
                x = np.array([float(ours[seed]["mean_return"]) for seed in sorted(ours)])
                y = np.array([float(theirs[seed]["mean_return"]) for seed in sorted(theirs)])
                keyed.append(({"variant": variant, "scenario": scenario, "condition": condition}, verdict(x, y), x, y))
    corrected = holm_verdicts([v for _, v, _, _ in keyed])
    result = []
    for (where, _, x, y), final in zip(keyed, corrected, strict=True):
        entry = {**where, **final.to_dict(), "seeds_for_power": None}
        cells = (index[(where["variant"], where["scenario"], where["condition"])],
                 index[(baseline, where["scenario"], where["condition"])])
        entry["backend"] = _backend_of(row for cell in cells for row in cell.values())  # where the numbers come from
        if final.outcome == "not_separated" and all(_collapsed(cell) for cell in cells):
            entry["outcome"] = "both_collapsed"  # two degenerate policies: no evidence either way, and no seeds help
        elif final.outcome == "not_separated":
            entry["seeds_for_power"] = seeds_for_power(x, y)
        entry["sentence"] = _verdict_sentence(entry, baseline) + _backend_clause(entry)
        result.append(entry)
    return result


def _collapsed(cell: dict[int, Entry]) -> bool:
    """Every seed's policy took one action over 95% of its decisions (the evaluation's ``dominant_action``)."""
    return all(run.get("dominant_action") is not None for run in cell.values())


def _collapse_notes(index: dict[CellKey, dict[int, Entry]]) -> list[str]:
    """A note per cell with collapsed seeds, so a degenerate policy is named where its scores are read."""
    notes = []
    for (variant, scenario, condition), cell in index.items():
        collapsed = [seed for seed, run in sorted(cell.items()) if run.get("dominant_action") is not None]
        if collapsed:
            actions = sorted({int(cell[seed]["dominant_action"]["action"]) for seed in collapsed})
            notes.append(f"{scenario} / {condition} / {variant}: {len(collapsed)} of {len(cell)} seeds collapsed to "
                         f"one action (action {', '.join(map(str, actions))} over 95% of decisions; seeds {collapsed})")
    return notes


def _backend_clause(entry: Entry) -> str:
    """Which simulator the verdict's scores come from, said in its sentence (the native port or the reference)."""
    return f"; scores on {entry['backend']}" if entry.get("backend") else ""


def _verdict_sentence(entry: Entry, baseline: str) -> str:
    """One line of the headline: the verdict, the numbers behind it and, when not separated, the seeds it needs."""
    improvement, difference = entry["probability_of_improvement"], entry["iqm_difference"]
    if entry["outcome"] == "both_collapsed":
        return (f"{entry['variant']} and {baseline} both collapsed to one action on every seed on {entry['scenario']} "
                f"/ {entry['condition']}: no verdict on their returns ({entry['seeds_x']} vs {entry['seeds_y']} seeds)")
    words = {"better": "better than", "worse": "worse than", "not_separated": "not separated from"}[entry["outcome"]]
    sentence = (f"{entry['variant']} is {words} {baseline} on {entry['scenario']} / {entry['condition']}: "
                f"P(improvement) {improvement['value']:.2f} [{improvement['low']:.2f}, {improvement['high']:.2f}], "
                f"IQM difference {difference['value']:+.2f} [{difference['low']:+.2f}, {difference['high']:+.2f}], "
                f"{entry['seeds_x']} vs {entry['seeds_y']} seeds, p {entry['p_adjusted']:.3f} "
                f"({entry['test']}; {entry['correction']})")
    if entry["outcome"] == "not_separated":
        needed = entry["seeds_for_power"]
        sentence += (f"; about {needed} seeds a side would give {POWER:.0%} power at the observed effect "
                     "(a noisy pilot estimate)" if needed is not None else "; no observed difference to power")
    return sentence


def _sequential_verdicts(index: dict[CellKey, dict[int, Entry]], baseline: str, sequential: Entry) -> list[Entry]:
    """The verdicts of a grid run ``--until-conclusive`` (``meta["sequential"]``, from
    ``experiments.compare.conclusive``): each comparison's group-sequential decision at the look it stopped at,
    with its repeated confidence interval of the mean difference (adjusted for the looks and the comparisons), and
    the probability of improvement and IQM difference on the same seeds (unadjusted, descriptive)."""
    design = sequential["design"]
    result = []
    for record in sequential["comparisons"]:
        where = {"variant": record["variant"], "scenario": record["scenario"], "condition": record["condition"]}
        seeds = [int(seed) for seed in record["seeds"]]
        ours = index.get((record["variant"], record["scenario"], record["condition"])) or {}
        theirs = index.get((baseline, record["scenario"], record["condition"])) or {}
        entry: Entry = {**where, **record, "outcome": record["decision"], "seeds_x": len(seeds),
                        "seeds_y": len(seeds), "alpha": design["alpha_per_comparison"], "p_adjusted": None,
                        "test": f"Welch's z against the {design['spending']} boundary of look {record['look']}",
                        "correction": design["multiplicity"], "probability_of_improvement": None,
                        "iqm_difference": None, "seeds_for_power": None}
        if len(seeds) >= 2 and all(seed in ours and seed in theirs for seed in seeds):
            x = np.array([float(ours[seed]["mean_return"]) for seed in seeds])
            y = np.array([float(theirs[seed]["mean_return"]) for seed in seeds])
            described = verdict(x, y)  # the descriptive numbers only; the decision is the design's
            entry["probability_of_improvement"] = described.probability_of_improvement.to_dict()
            entry["iqm_difference"] = described.iqm_difference.to_dict()
            if record["decision"] == "not_separated":
                entry["seeds_for_power"] = seeds_for_power(x, y)
        entry["backend"] = _backend_of(row for cell in (ours, theirs) for row in cell.values())  # the numbers' source
        entry["sentence"] = _sequential_sentence(entry, baseline, design) + _backend_clause(entry)
        result.append(entry)
    return result


def _sequential_sentence(entry: Entry, baseline: str, design: Entry) -> str:
    """One line of the headline for a sequential verdict: the decision, the look and seeds, the adjusted interval."""
    where = f"{entry['scenario']} / {entry['condition']}"
    looks = f"look {entry['look']} of {entry['looks']}"
    if entry["outcome"] == "open":
        return (f"{entry['variant']} vs {baseline} on {where}: not settled yet (" +
                (f"continuing after {looks}, {entry['n_seeds']} seeds a side" if entry["look"] else "no look complete")
                + "); rerun the same command to continue")
    difference = entry["mean_difference"]
    confidence = 1.0 - design["alpha_per_comparison"]
    numbers = (f"mean difference {difference['value']:+.2f} [{difference['low']:+.2f}, {difference['high']:+.2f}] "
               f"(repeated {confidence:.1%} CI, adjusted for the looks and the {design['comparisons']} comparisons)")
    improvement, iqm_difference = entry["probability_of_improvement"], entry["iqm_difference"]
    if improvement and iqm_difference:
        numbers += (f"; P(improvement) {improvement['value']:.2f} [{improvement['low']:.2f}, "
                    f"{improvement['high']:.2f}], IQM difference {iqm_difference['value']:+.2f} "
                    f"[{iqm_difference['low']:+.2f}, {iqm_difference['high']:+.2f}] (unadjusted)")
    relation = ">=" if entry["outcome"] in ("better", "worse") else "<"
    crossing = f"|z| {abs(entry['z']):.2f} {relation} {entry['boundary']:.2f}"
    if entry["outcome"] == "both_collapsed":
        return (f"{entry['variant']} and {baseline} both collapsed to one action on every seed on {where}: no verdict "
                f"on their returns, stopped at {looks} ({entry['n_seeds']} seeds a side)")
    words = {"better": "better than", "worse": "worse than", "not_separated": "not separated from"}[entry["outcome"]]
    sentence = (f"{entry['variant']} is {words} {baseline} on {where} at {looks} ({entry['n_seeds']} seeds a side; "
                f"{crossing}): {numbers}")
    if entry["outcome"] == "not_separated":
        needed = entry["seeds_for_power"]
        sentence += (f"; about {needed} seeds a side would give {POWER:.0%} power at the observed effect "
                     "(a noisy pilot estimate)" if needed is not None
                     else f"; no seed count up to 10000 a side would give {POWER:.0%} power at the observed effect")
    return sentence


# --- cross-check: the native port against the reference simulator ---------------------------------------------

CROSS_CHECK_METHOD = (
    "each cross-checked cell (a variant's first seeds) is evaluated twice under each condition, on the main backend "
    "and on the reference; per condition the paired difference (main - reference) of mean return and of crash rate "
    "over those cells, with a 95% Student-t interval over cells; per cell a Welch interval over episodes (return) "
    "and Newcombe's interval (crash rate); a condition is flagged when a paired interval excludes 0 (with one "
    "cell: when that cell's interval does). Intervals are uncorrected: a flag asks for a look at that condition")


def _backend_of(runs: Iterable[Entry]) -> str | None:
    """The backend a set of rows' numbers come from ("a+b" when they mix), None when the rows do not say."""
    backends = sorted({str(row["backend"]) for row in runs if row.get("backend")})
    return "+".join(backends) if backends else None


def _cross_check_cell(row: Entry) -> Entry:
    """One cell's two evaluations side by side, with the per-episode intervals of their differences."""
    from scipy import stats

    from experiments.statistics import newcombe_diff_ci, welch_diff_ci

    reference = row["cross_check"]
    returns, reference_returns = _finite_values(row.get("returns") or []), _finite_values(reference["returns"])
    crashes, episodes = _episode_crashes(row)
    reference_crashes, reference_episodes = _episode_crashes(reference)
    enough = len(returns) >= 2 and len(reference_returns) >= 2
    welch = welch_diff_ci(returns, reference_returns) if enough else None
    with warnings.catch_warnings():  # identical episodes: scipy warns of precision loss and the p is NaN (None)
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_ind(returns, reference_returns, equal_var=False).pvalue) if enough else None
    crash = (newcombe_diff_ci(crashes, episodes, reference_crashes, reference_episodes)
             if episodes and reference_episodes else None)
    return {
        "variant": row["variant"], "scenario": row["scenario"], "seed": int(row["seed"]),
        "backend": row.get("backend"), "reference_backend": reference.get("backend"),
        "mean_return": finite_or_none(row["mean_return"]),
        "reference_mean_return": finite_or_none(reference["mean_return"]),
        "crash_rate": finite_or_none(row.get("crash_rate")),
        "reference_crash_rate": finite_or_none(reference["crash_rate"]),
        "return_difference": _json_estimate(welch) if welch else _estimate(math.nan),
        "welch_p": finite_or_none(p_value),
        "crash_rate_difference": _json_estimate(crash) if crash else _estimate(math.nan),
    }


def _excludes_zero(estimate: Entry) -> bool:
    low, high = estimate.get("low"), estimate.get("high")
    return low is not None and high is not None and (low > 0.0 or high < 0.0)


def _cross_check_condition(condition: str, runs: Sequence[Entry]) -> Entry:
    """The paired comparison of one condition over its cross-checked cells, and whether it is flagged."""
    cells = [_cross_check_cell(row) for row in runs]
    return_gaps = [float(row["mean_return"]) - float(row["cross_check"]["mean_return"]) for row in runs]
    crash_gaps = [float(row["crash_rate"]) - float(row["cross_check"]["crash_rate"]) for row in runs]
    paired = {"return_difference": _json_estimate(mean_estimate(return_gaps)),
              "crash_rate_difference": _json_estimate(mean_estimate(crash_gaps))}
    sources = [paired] if len(runs) >= 2 else cells  # one cell: its own episode intervals decide
    off = [key.removesuffix("_difference").replace("_", " ") for key in ("return_difference", "crash_rate_difference")
           if any(_excludes_zero(source[key]) for source in sources)]
    return {
        "condition": condition,
        "backend": _backend_of(runs),
        "reference_backend": _backend_of(row["cross_check"] for row in runs),
        "cells": len(runs),
        **paired,
        "flagged": bool(off),
        "sentence": (f"{condition}: {_backend_of(runs)} and {_backend_of(row['cross_check'] for row in runs)} "
                     f"{'disagree on ' + ' and '.join(off) if off else 'agree within their intervals'} "
                     f"over {len(runs)} cross-checked cell(s)"),
        "per_cell": cells,
    }


def cross_check_statistics(rows: Sequence[Entry], conditions: Sequence[str]) -> Entry:
    """Per condition, the main backend's scores against the reference's on the cells evaluated on both (rows
    whose ``cross_check`` is set); ``flagged`` lists the conditions where they disagree beyond their intervals."""
    by_condition: dict[str, list[Entry]] = {}
    for row in rows:
        if isinstance(row.get("cross_check"), dict) and finite_or_none(row.get("mean_return")) is not None:
            by_condition.setdefault(str(row["condition"]), []).append(row)
    checked = {condition: _cross_check_condition(condition, by_condition[condition])
               for condition in conditions if condition in by_condition}
    return {
        "method": CROSS_CHECK_METHOD,
        "backends": {condition: _backend_of(row for row in rows if row["condition"] == condition)
                     for condition in conditions},
        "conditions": checked,
        "flagged": [condition for condition, entry in checked.items() if entry["flagged"]],
    }


def compute_statistics(rows: Sequence[Entry], baseline: str, meta: Entry | None = None) -> Entry:
    """Every statistic the report shows, JSON-ready (NaN as None). Condition kinds come from
    ``meta["condition_kinds"]`` (see :func:`condition_kinds`)."""
    meta = meta or {}
    notes: list[str] = []
    variants = ordered_unique(str(row["variant"]) for row in rows)
    if rows and baseline not in variants:
        raise ValueError(f"baseline: {baseline!r} is not among the variants {variants}")
    scenarios = ordered_unique(str(row["scenario"]) for row in rows)
    conditions = ordered_unique(str(row["condition"]) for row in rows)
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
    sequential = meta.get("sequential")  # a grid run --until-conclusive: its design's verdicts replace Holm's
    if sequential:
        verdicts = _sequential_verdicts(index, baseline, sequential)
        headline = [sequential["design"]["sentence"], *(entry["sentence"] for entry in verdicts)]
    else:
        verdicts = _verdicts(index, variants, scenarios, conditions, baseline, notes)
        headline = [entry["sentence"] for entry in verdicts]
    notes.extend(_collapse_notes(index))
    kinds = _resolved_kinds(rows, conditions, meta)
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
                     "learning_curve_band": CURVE_BAND_METHOD,
                     "neuro_value_band": NEURO_BAND_METHOD,
                     "energy": ENERGY_CAVEAT},
        "summary": summary,
        "aggregate": aggregate,
        "profiles": profiles,
        **plot_statistics(index, variants, scenarios, conditions, baseline, notes),
        "verdicts": verdicts,
        "sequential": {key: value for key, value in sequential.items() if key != "comparisons"} if sequential else None,
        "headline": headline,
        "cross_check": cross_check_statistics(rows, conditions),
        "notes": notes,
    }
