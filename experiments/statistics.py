"""Confidence intervals for means, proportions and their differences (fidelity), and the statistics of
multi-seed agent comparisons after Agarwal et al. (2021): IQM, stratified bootstrap intervals, probability of
improvement, performance profiles and learning-curve bands. Checked against scipy, hand counts and simulated
coverage in the tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Student-t interval for a mean; a sample without spread gives a zero-width interval."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"mean_ci: need at least 2 values, got {x.size}")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Estimate(mean, mean - half, mean + half)


def wilson_ci(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Wilson score interval for a proportion (sound at 0 and 1, unlike the Wald interval)."""
    if n < 1:
        raise ValueError(f"wilson_ci: need at least 1 trial, got {n}")
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return Estimate(successes / n, float(interval.low), float(interval.high))


def welch_diff_ci(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Welch t-interval for ``mean(a) - mean(b)`` (unequal variances, Welch-Satterthwaite df)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"welch_diff_ci: need at least 2 values per sample, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if vx + vy == 0.0:
        return Estimate(diff, diff, diff)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(vx + vy))
    return Estimate(diff, diff - half, diff + half)


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE) -> Estimate:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (method 10, Newcombe 1998)."""
    p1, p2 = wilson_ci(k1, n1, confidence), wilson_ci(k2, n2, confidence)
    diff = p1.value - p2.value
    low = diff - math.hypot(p1.value - p1.low, p2.high - p2.value)
    high = diff + math.hypot(p1.high - p1.value, p2.value - p2.low)
    return Estimate(diff, low, high)


# --- multi-seed agent comparisons -----------------------------------------------------------------------------
# Agarwal, Schwarzer, Castro, Courville & Bellemare (2021), "Deep Reinforcement Learning at the Edge of the
# Statistical Precipice", NeurIPS. The conventions follow their library rliable (which does not import with
# pandas 3): scores are a (runs x tasks) array, and intervals are percentile intervals of a bootstrap that
# resamples runs with replacement within each task ("stratified"), so every resample keeps each task's run count.

Scores = ArrayLike | Mapping[str, ArrayLike]
"""A (runs x tasks) array, a 1-D array (the runs of one task), or a mapping task -> that task's run scores."""

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
# Elements of one bootstrap chunk (~32 MB of float64): bounds memory whatever n_resamples, runs and tasks are.
_CHUNK_ELEMENTS = 1 << 22


def _as_scores(scores: Scores, name: str, min_runs: int = 1) -> NDArray[np.float64]:
    """``scores`` as a finite float (runs x tasks) array; errors name the argument ``name``."""
    try:
        if isinstance(scores, Mapping):
            if not scores:
                raise ValueError("is empty (no tasks)")
            columns = {task: np.asarray(runs, dtype=float) for task, runs in scores.items()}
            not_1d = [task for task, column in columns.items() if column.ndim != 1]
            if not_1d:
                raise ValueError(f"needs a 1-D sequence of run scores per task; tasks {not_1d!r} are not")
            run_counts = {task: column.size for task, column in columns.items()}
            if len(set(run_counts.values())) > 1:
                raise ValueError(f"needs the same number of runs in every task, got {run_counts}")
            array = np.stack(list(columns.values()), axis=1)
        else:
            array = np.asarray(scores, dtype=float)
            if array.ndim == 1:
                array = array[:, None]
    except ValueError as error:  # numpy's own messages (ragged lists, text) do not say which argument
        raise ValueError(f"{name}: {error}") from error
    if array.ndim != 2:
        raise ValueError(f"{name}: must be (runs x tasks) or 1-D (the runs of one task), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: is empty (shape {array.shape})")
    if array.shape[0] < min_runs:
        raise ValueError(f"{name}: needs at least {min_runs} runs per task for an interval, got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: must be finite (no NaN or inf)")
    return array


def _as_score_pair(
    x_scores: Scores, y_scores: Scores, min_runs: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both algorithms' scores with their task columns aligned (by name where both are mappings)."""
    if isinstance(x_scores, Mapping) and isinstance(y_scores, Mapping):
        if set(x_scores) != set(y_scores):
            raise ValueError(
                f"y_scores: must name the same tasks as x_scores, got {sorted(map(str, y_scores))} "
                f"vs {sorted(map(str, x_scores))}"
            )
        y_scores = {task: y_scores[task] for task in x_scores}
    x, y = _as_scores(x_scores, "x_scores", min_runs), _as_scores(y_scores, "y_scores", min_runs)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y_scores: must have as many tasks as x_scores, got {y.shape[1]} vs {x.shape[1]}")
    return x, y


def check_bootstrap_arguments(confidence: float, n_resamples: int) -> None:
    """Refuse a confidence outside (0, 1) or a resample count below 1, naming the argument."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise ValueError(f"n_resamples: must be a positive integer, got {n_resamples!r}")


def _resample_runs_within_tasks(
    scores: NDArray[np.float64], n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n_resamples`` stratified resamples, shape (n_resamples, runs, tasks): each task's runs drawn with
    replacement from that task's own runs, independently across tasks."""
    runs, tasks = scores.shape
    run_index = rng.integers(0, runs, size=(n_resamples, runs, tasks))
    return scores[run_index, np.arange(tasks)]


def bootstrap_distribution(
    samples: Sequence[NDArray[np.float64]],
    batch_statistic: Callable[..., NDArray[np.float64]],
    n_resamples: int,
    seed: int | np.random.Generator,
    elements_per_resample: int,
) -> NDArray[np.float64]:
    """The statistic over ``n_resamples`` stratified resamples of every sample (resampled independently), in
    chunks so memory stays bounded; ``batch_statistic`` maps resample batches to (batch, ...) values."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, elements_per_resample))
    values = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        values.append(np.asarray(batch_statistic(*(_resample_runs_within_tasks(s, size, rng) for s in samples))))
    return np.concatenate(values, axis=0)


def percentile_interval(
    distribution: NDArray[np.float64], confidence: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Percentile bootstrap interval along the resample axis (rliable's default method)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(distribution, [tail, 1.0 - tail], axis=0)
    return low, high


def iqm(scores: Scores) -> float:
    """Interquartile mean (Agarwal et al. 2021): the mean of the middle 50% of all scores pooled over runs and
    tasks, ``scipy.stats.trim_mean(scores.ravel(), 0.25)`` as in rliable; it drops ``floor(n / 4)`` scores from
    each end, so with n = 10 it averages the middle 6."""
    if isinstance(scores, Mapping):
        flat = _as_scores(scores, "scores").ravel()
    else:
        flat = np.asarray(scores, dtype=float).ravel()
        if flat.size == 0:
            raise ValueError("scores: is empty")
        if not np.isfinite(flat).all():
            raise ValueError("scores: must be finite (no NaN or inf)")
    return float(stats.trim_mean(flat, 0.25))


# Aggregate statistics of (..., runs, tasks) arrays, reducing the last two axes so that one call scores a whole
# batch of bootstrap resamples; each matches rliable's metric of the same name.


def aggregate_mean(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean over tasks of each task's mean score (Agarwal et al. 2021)."""
    return np.mean(np.mean(scores, axis=-2), axis=-1)


def aggregate_median(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over tasks of each task's mean score (Agarwal et al. 2021)."""
    return np.median(np.mean(scores, axis=-2), axis=-1)


def aggregate_iqm(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Interquartile mean of all runs x tasks scores pooled (see :func:`iqm`)."""
    return stats.trim_mean(scores.reshape(*scores.shape[:-2], -1), 0.25, axis=-1)


def optimality_gap(scores: NDArray[np.float64], target: float = 1.0) -> NDArray[np.float64]:
    """How far the scores fall short of ``target``, ``target - mean(min(score, target))`` (Agarwal et al.
    2021); scores above the target earn nothing. ``target`` is 1 for human- or expert-normalised scores."""
    return target - np.mean(np.minimum(scores, target), axis=(-2, -1))


ScoreStatistic = Callable[[NDArray[np.float64]], NDArray[np.float64] | float]


def stratified_bootstrap_ci(
    scores_by_task: Scores,
    statistic: ScoreStatistic,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
    vectorized: bool = True,
) -> Estimate:
    """``statistic`` of the (runs x tasks) scores with a percentile interval from the stratified bootstrap of
    Agarwal et al. (2021): runs are resampled with replacement within each task. With ``vectorized`` the
    statistic must reduce the last two axes of a (..., runs, tasks) array (as :func:`aggregate_iqm` does) and is
    called once per chunk of resamples; otherwise it is called once per resample with one (runs x tasks) array."""
    scores = _as_scores(scores_by_task, "scores_by_task", min_runs=2)
    check_bootstrap_arguments(confidence, n_resamples)

    def batch_statistic(resamples: NDArray[np.float64]) -> NDArray[np.float64]:
        if not vectorized:
            return np.array([float(statistic(resample)) for resample in resamples])
        values = np.asarray(statistic(resamples), dtype=float)
        if values.shape != resamples.shape[:1]:
            raise ValueError(
                f"statistic: given resamples of shape {resamples.shape} it returned shape {values.shape}, not "
                f"{resamples.shape[:1]}; a vectorized statistic reduces the (runs, tasks) axes, else pass "
                "vectorized=False"
            )
        return values

    distribution = bootstrap_distribution([scores], batch_statistic, n_resamples, seed, scores.size)
    low, high = percentile_interval(distribution, confidence)
    return Estimate(float(statistic(scores)), float(low), float(high))


def aggregate_estimates(
    scores: Scores,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
    optimality_target: float | None = None,
) -> dict[str, Estimate]:
    """Mean, median and IQM of the scores (plus the optimality gap to ``optimality_target`` when given), each with
    its stratified-bootstrap percentile interval (Agarwal et al. 2021). All share one set of resamples, as in
    rliable, so the intervals are mutually consistent."""
    array = _as_scores(scores, "scores", min_runs=2)
    check_bootstrap_arguments(confidence, n_resamples)
    metrics: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
        "mean": aggregate_mean,
        "median": aggregate_median,
        "iqm": aggregate_iqm,
    }
    if optimality_target is not None:
        target = float(optimality_target)
        metrics["optimality_gap"] = lambda batch: optimality_gap(batch, target)

    def all_metrics(resamples: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack([metric(resamples) for metric in metrics.values()], axis=-1)

    distribution = bootstrap_distribution([array], all_metrics, n_resamples, seed, array.size)
    low, high = percentile_interval(distribution, confidence)
    values = all_metrics(array)
    return {name: Estimate(float(values[i]), float(low[i]), float(high[i])) for i, name in enumerate(metrics)}


def _improvement_probability(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(X > Y) of (..., n, tasks) and (..., m, tasks) scores: per task the share of the n*m run pairs in which
    X wins, a tie counting 1/2, then the mean over tasks."""
    x_runs, y_runs = x[..., :, None, :], y[..., None, :, :]
    pair_outcome = (x_runs > y_runs) + 0.5 * (x_runs == y_runs)  # (..., n, m, tasks)
    return np.mean(np.mean(pair_outcome, axis=(-3, -2)), axis=-1)


def probability_of_improvement(x_scores: Scores, y_scores: Scores) -> float:
    """Average probability of improvement P(X > Y) (Agarwal et al. 2021): for each task, the Mann-Whitney U
    statistic over n*m, i.e. the fraction of (run of X, run of Y) pairs in which X scores higher, ties counting
    1/2; then the mean over tasks. P(X > Y) + P(Y > X) = 1."""
    x, y = _as_score_pair(x_scores, y_scores)
    return float(_improvement_probability(x, y))


def probability_of_improvement_ci(
    x_scores: Scores,
    y_scores: Scores,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> Estimate:
    """:func:`probability_of_improvement` with a percentile interval from a stratified bootstrap that resamples
    the runs of X and of Y independently, each within task (Agarwal et al. 2021; rliable's
    StratifiedIndependentBootstrap)."""
    x, y = _as_score_pair(x_scores, y_scores, min_runs=2)
    check_bootstrap_arguments(confidence, n_resamples)
    pairs_per_resample = x.shape[0] * y.shape[0] * x.shape[1]
    distribution = bootstrap_distribution([x, y], _improvement_probability, n_resamples, seed, pairs_per_resample)
    low, high = percentile_interval(distribution, confidence)
    return Estimate(float(_improvement_probability(x, y)), float(low), float(high))


def iqm_difference_ci(
    x_scores: Scores,
    y_scores: Scores,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> Estimate:
    """``IQM(X) - IQM(Y)`` (:func:`aggregate_iqm` of each side's runs x tasks) with a percentile interval from the
    stratified bootstrap that resamples the runs of X and of Y independently, each within task."""
    x, y = _as_score_pair(x_scores, y_scores, min_runs=2)
    check_bootstrap_arguments(confidence, n_resamples)

    def difference(xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(aggregate_iqm(xs) - aggregate_iqm(ys), dtype=float)

    distribution = bootstrap_distribution([x, y], difference, n_resamples, seed, x.size + y.size)
    low, high = percentile_interval(distribution, confidence)
    return Estimate(float(difference(x, y)), float(low), float(high))


@dataclass(frozen=True)
class PerformanceProfile:
    """Score distribution with its pointwise confidence band: ``fraction[i]`` of runs score above
    ``thresholds[i]``, within [``low[i]``, ``high[i]``]."""

    thresholds: NDArray[np.float64]
    fraction: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]


def _fraction_above(scores: NDArray[np.float64], thresholds: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of the (..., runs, tasks) scores strictly above each threshold -> (..., thresholds)."""
    return np.mean(scores[..., None] > thresholds, axis=(-3, -2))


def performance_profile(
    scores: Scores,
    thresholds: ArrayLike,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> PerformanceProfile:
    """Performance profile (score distribution) of Agarwal et al. (2021): for each threshold tau the fraction of
    all runs x tasks with score > tau, and a pointwise percentile band from the stratified bootstrap. With equal
    run counts per task this equals rliable's mean over tasks of the per-task fractions."""
    array = _as_scores(scores, "scores", min_runs=2)
    taus = np.asarray(thresholds, dtype=float)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"thresholds: must be a non-empty 1-D sequence, got shape {taus.shape}")
    if np.isnan(taus).any():
        raise ValueError("thresholds: must not contain NaN")
    check_bootstrap_arguments(confidence, n_resamples)
    distribution = bootstrap_distribution(
        [array], lambda resamples: _fraction_above(resamples, taus), n_resamples, seed, array.size * taus.size
    )
    low, high = percentile_interval(distribution, confidence)
    return PerformanceProfile(taus, _fraction_above(array, taus), low, high)


@dataclass(frozen=True)
class CurveBand:
    """Per-point mean of learning curves over seeds and its confidence band; ``seeds[i]`` is how many seeds have
    point i. ``low``/``high`` are NaN where fewer than 2 seeds have the point, ``mean`` where none has it."""

    mean: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    seeds: NDArray[np.int64]


def mean_curve_band(curves: ArrayLike, confidence: float = CONFIDENCE) -> CurveBand:
    """Mean learning curve over seeds with a pointwise Student-t band, ``mean +- t_{(1+c)/2, k-1} s / sqrt(k)``
    over the k seeds that have the point (NaN marks a missing point). The t band, not a bootstrap, because a
    percentile bootstrap undercovers at the few (3-10) seeds of a run and cannot widen past the sampled range.
    Missing points are taken as missing at random: seeds that stop early because they did badly bias the mean."""
    try:
        array = np.asarray(curves, dtype=float)
    except ValueError as error:
        raise ValueError(f"curves: {error} (pad shorter curves with NaN)") from error
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"curves: must be a non-empty (seeds x points) array, got shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError("curves: must not contain inf (NaN marks a missing point)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence}")
    present = ~np.isnan(array)
    seeds = present.sum(axis=0)
    filled = np.where(present, array, 0.0)
    mean = np.divide(filled.sum(axis=0), seeds, out=np.full(seeds.shape, np.nan), where=seeds > 0)
    squared_deviation = np.where(present, (filled - mean) ** 2, 0.0).sum(axis=0)
    spread = seeds >= 2
    variance = np.divide(squared_deviation, seeds - 1, out=np.full(seeds.shape, np.nan), where=spread)
    t_quantile = np.full(seeds.shape, np.nan)
    t_quantile[spread] = stats.t.ppf((1.0 + confidence) / 2.0, seeds[spread] - 1)
    half_width = np.full(seeds.shape, np.nan)
    half_width[spread] = t_quantile[spread] * np.sqrt(variance[spread] / seeds[spread])
    return CurveBand(mean, mean - half_width, mean + half_width, seeds.astype(np.int64))


# Estimates that degrade to the point value alone (NaN interval) when there are too few runs for an interval, as a
# report over few seeds needs.


def pooled_median(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median of all (..., runs, tasks) scores pooled; of one task, the median run. Unlike
    :func:`aggregate_median` (the median over tasks of task means), it is a median of runs."""
    return np.median(scores.reshape(*scores.shape[:-2], -1), axis=-1)


def _point(value: float) -> Estimate:
    return Estimate(float(value), math.nan, math.nan)


def mean_estimate(values: Sequence[float], low_bound: float = -math.inf, high_bound: float = math.inf,
                  confidence: float = CONFIDENCE) -> Estimate:
    """:func:`mean_ci` with its interval clipped to the quantity's range [``low_bound``, ``high_bound``]; under 2
    values the mean alone (NaN interval), and NaN throughout for none."""
    if len(values) == 0:
        return _point(math.nan)
    if len(values) < 2:
        return _point(float(np.mean(values)))
    e = mean_ci(values, confidence)
    return Estimate(e.value, max(e.low, low_bound), min(e.high, high_bound))


def location_estimates(
    scores: NDArray[np.float64],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> dict[str, Estimate]:
    """:func:`aggregate_estimates` (mean, median, IQM) of (runs x tasks) scores; under 2 runs the values alone."""
    if scores.shape[0] >= 2:
        return aggregate_estimates(scores, confidence, n_resamples, seed)
    return {"mean": _point(float(aggregate_mean(scores))), "median": _point(float(aggregate_median(scores))),
            "iqm": _point(iqm(scores))}


def pooled_median_estimate(
    scores: NDArray[np.float64],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> Estimate:
    """:func:`pooled_median` with its stratified-bootstrap interval; under 2 runs the value alone."""
    if scores.shape[0] >= 2:
        return stratified_bootstrap_ci(scores, pooled_median, confidence, n_resamples, seed)
    return _point(float(pooled_median(scores)))


def improvement_estimate(
    x_scores: NDArray[np.float64],
    y_scores: NDArray[np.float64],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> Estimate:
    """:func:`probability_of_improvement_ci` when both sides have 2 runs, else the probability alone."""
    if x_scores.shape[0] >= 2 and y_scores.shape[0] >= 2:
        return probability_of_improvement_ci(x_scores, y_scores, confidence, n_resamples, seed)
    return _point(probability_of_improvement(x_scores, y_scores))


def profile_estimate(
    scores: NDArray[np.float64],
    thresholds: ArrayLike,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = BOOTSTRAP_SEED,
) -> PerformanceProfile:
    """:func:`performance_profile`; under 2 runs the step function alone (NaN band)."""
    if scores.shape[0] >= 2:
        return performance_profile(scores, thresholds, confidence, n_resamples, seed)
    taus = np.asarray(thresholds, dtype=float)
    nan = np.full(taus.shape, np.nan)
    return PerformanceProfile(taus, _fraction_above(np.asarray(scores, dtype=float), taus), nan, nan.copy())
