"""Multi-seed comparison statistics (Agarwal et al. 2021) against independent truth: hand-counted IQMs,
probabilities of improvement and profiles, t-table bands, scipy's own bootstrap, analytic bootstrap spread and
simulated coverage of known population values; and bad input named in the error."""

import warnings

import numpy as np
import pytest
from scipy import stats

from experiments.statistics import (
    aggregate_estimates,
    aggregate_iqm,
    aggregate_mean,
    improvement_estimate,
    iqm,
    location_estimates,
    mean_curve_band,
    mean_estimate,
    performance_profile,
    pooled_median,
    pooled_median_estimate,
    probability_of_improvement,
    probability_of_improvement_ci,
    profile_estimate,
    stratified_bootstrap_ci,
)

# --- interquartile mean ----------------------------------------------------------------------------------------


def test_iqm_of_eight_values_is_the_mean_of_the_middle_four():
    # sorted: 1 2 | 3 4 5 6 | 7 100 -> (3 + 4 + 5 + 6) / 4 = 4.5; the outlier 100 has no say
    assert iqm([7, 1, 100, 3, 5, 2, 6, 4]) == pytest.approx(4.5)


def test_iqm_trims_whole_scores_when_a_quarter_does_not_split_evenly():
    # n = 10: a quarter is 2.5 scores; rliable (scipy.stats.trim_mean) drops floor(2.5) = 2 from each end:
    # sorted -50 1 | 2 4 8 16 32 64 | 128 1000 -> 126 / 6 = 21.
    # (dropping 3 per end would give (4 + 8 + 16 + 32) / 4 = 15; interpolating the quartiles, something else)
    assert iqm([64, -50, 2, 1000, 8, 1, 32, 4, 128, 16]) == pytest.approx(21.0)


def test_iqm_pools_runs_and_tasks():
    # 4 runs x 2 tasks pooled and sorted: 1 2 | 3 4 10 20 | 30 40 -> 37 / 4 = 9.25
    # (the mean of per-task IQMs would be (2.5 + 25) / 2 = 13.75)
    scores = [[1, 10], [2, 20], [3, 30], [4, 40]]
    assert iqm(scores) == pytest.approx(9.25)
    assert iqm({"merge": [1, 2, 3, 4], "exit": [10, 20, 30, 40]}) == pytest.approx(9.25)
    assert float(aggregate_iqm(np.array(scores, dtype=float))) == pytest.approx(9.25)


# --- probability of improvement ------------------------------------------------------------------------------


def test_probability_of_improvement_counts_pairs_with_ties_as_half():
    # x = [1, 2, 3] vs y = [2, 2, 0], all 9 pairs:
    #   x=1: loses to 2, loses to 2, beats 0 -> 1
    #   x=2: ties 2 (1/2), ties 2 (1/2), beats 0 -> 2
    #   x=3: beats all three -> 3
    # P(X > Y) = 6 / 9 = 2/3; from y's side: y=2 vs (1, 2, 3) -> 1 + 1/2 twice, y=0 -> 0: 3 / 9 = 1/3
    x, y = [1, 2, 3], [2, 2, 0]
    assert probability_of_improvement(x, y) == pytest.approx(2 / 3)
    assert probability_of_improvement(y, x) == pytest.approx(1 / 3)


def test_probability_of_improvement_allows_unequal_run_counts():
    # x = [1, 3] vs y = [0, 1, 2]: x=1 beats 0, ties 1, loses to 2 -> 1.5; x=3 beats all -> 3; 4.5 / 6
    assert probability_of_improvement([1, 3], [0, 1, 2]) == pytest.approx(0.75)


def test_probability_of_improvement_is_the_mean_over_tasks_and_aligns_named_tasks():
    # task "merge": the 2/3 above; task "exit": x = 5, 5, 5 vs y = 5, 6, 7 -> each x ties once -> 1.5 / 9 = 1/6.
    # Average over tasks (5/12), not over the pooled pairs.
    x = {"merge": [1, 2, 3], "exit": [5, 5, 5]}
    y = {"exit": [5, 6, 7], "merge": [2, 2, 0]}  # other order: matched by name
    assert probability_of_improvement(x, y) == pytest.approx(5 / 12)
    assert probability_of_improvement(np.array([[1, 5], [2, 5], [3, 5]]), [[2, 5], [2, 6], [0, 7]]) == pytest.approx(
        5 / 12
    )


def test_probability_of_improvement_is_complementary():
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 4, size=(6, 3)), rng.integers(0, 4, size=(9, 3))  # small integers: plenty of ties
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)
    assert probability_of_improvement(x, x) == pytest.approx(0.5)


# --- performance profile ---------------------------------------------------------------------------------------


def test_performance_profile_counts_runs_strictly_above_each_threshold():
    # 2 runs x 3 tasks, pooled: 0.1 0.3 0.5 0.5 0.9 1.2
    # > 0: 6/6;  > 0.3: 0.5 0.5 0.9 1.2 -> 4/6;  > 0.5 (strict): 0.9 1.2 -> 2/6;  > 1: 1.2 -> 1/6;  > 2: 0
    scores = [[0.1, 0.5, 0.9], [0.3, 0.5, 1.2]]
    profile = performance_profile(scores, [0.0, 0.3, 0.5, 1.0, 2.0], n_resamples=500)
    np.testing.assert_allclose(profile.fraction, [1, 4 / 6, 2 / 6, 1 / 6, 0])
    np.testing.assert_allclose(profile.thresholds, [0.0, 0.3, 0.5, 1.0, 2.0])
    assert np.all(profile.low <= profile.fraction) and np.all(profile.fraction <= profile.high)
    assert np.all(profile.low >= 0) and np.all(profile.high <= 1)


def test_performance_profile_band_falls_with_the_threshold():
    # Every resample's profile is non-increasing in tau, so are its pointwise quantiles.
    scores = np.random.default_rng(3).normal(size=(10, 5))
    profile = performance_profile(scores, np.linspace(-3, 3, 61), n_resamples=500, seed=1)
    for band in (profile.fraction, profile.low, profile.high):
        assert np.all(np.diff(band) <= 0)


# --- stratified bootstrap: exact cases, scipy, analytic spread ------------------------------------------------


def test_bootstrap_resamples_within_tasks():
    # Each task's runs agree, so a resample that keeps every task's run count has mean (0 + 10) / 2 exactly;
    # a bootstrap pooling the 10 scores would mix 0s and 10s freely and give a wide interval.
    scores = np.tile([0.0, 10.0], (5, 1))
    estimate = stratified_bootstrap_ci(scores, aggregate_mean, n_resamples=500)
    assert (estimate.value, estimate.low, estimate.high) == (5.0, 5.0, 5.0)
    profile = performance_profile(scores, [5.0], n_resamples=500)
    assert (profile.fraction[0], profile.low[0], profile.high[0]) == (0.5, 0.5, 0.5)


def test_one_task_bootstrap_agrees_with_scipys_percentile_bootstrap():
    sample = np.random.default_rng(11).normal(10.0, 3.0, size=12)
    ours = stratified_bootstrap_ci(sample, aggregate_mean, n_resamples=20_000, seed=1)
    reference = stats.bootstrap(
        (sample,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(2)
    ).confidence_interval
    # Different seeds: the endpoints differ by Monte Carlo error only, a few hundredths of the standard error.
    standard_error = sample.std() / np.sqrt(sample.size)
    assert ours.value == pytest.approx(sample.mean())
    assert ours.low == pytest.approx(reference.low, abs=0.05 * standard_error)
    assert ours.high == pytest.approx(reference.high, abs=0.05 * standard_error)


def test_stratified_bootstrap_spread_of_the_mean_matches_its_analytic_variance():
    # Resampling n runs within each of T tasks, the bootstrap variance of the mean over tasks of the task means is
    # sum_t sigma_t^2 / n / T^2 (sigma_t: task t's spread, ddof 0); 50 resampled scores make the bootstrap
    # distribution close to normal, so the 95% percentile interval is about the mean -+ 1.96 of its sd.
    scores = np.random.default_rng(5).normal(0.0, [1.0, 2.0, 4.0, 0.5, 3.0], size=(10, 5))
    runs, tasks = scores.shape
    bootstrap_sd = np.sqrt(np.sum(scores.var(axis=0) / runs)) / tasks
    estimate = stratified_bootstrap_ci(scores, aggregate_mean, n_resamples=20_000, seed=2)
    assert estimate.high - estimate.low == pytest.approx(2 * 1.959964 * bootstrap_sd, rel=0.05)
    assert (estimate.low + estimate.high) / 2 == pytest.approx(scores.mean(), abs=0.1 * bootstrap_sd)


def test_unvectorized_statistic_sees_each_resample_alone():
    scores = np.random.default_rng(4).normal(size=(8, 3))
    batched = stratified_bootstrap_ci(scores, aggregate_iqm, n_resamples=300, seed=9)
    one_by_one = stratified_bootstrap_ci(
        scores, lambda resample: stats.trim_mean(resample.ravel(), 0.25), n_resamples=300, seed=9, vectorized=False
    )
    assert one_by_one == batched


def test_aggregate_estimates_values_by_hand():
    # 4 runs x 3 tasks; task means 2.5, 25, 1 -> mean 28.5 / 3 = 9.5, median over tasks 2.5.
    # Pooled and sorted: 0 0 1 | 1 2 3 3 4 10 | 20 30 40 -> IQM 23 / 6.
    # Optimality gap to 5: scores capped at 5 sum to 10 + 20 + 4 = 34 over 12 -> 5 - 34 / 12.
    scores = [[1, 10, 0], [2, 20, 0], [3, 30, 3], [4, 40, 1]]
    estimates = aggregate_estimates(scores, n_resamples=500, optimality_target=5.0)
    assert {name: e.value for name, e in estimates.items()} == pytest.approx(
        {"mean": 9.5, "median": 2.5, "iqm": 23 / 6, "optimality_gap": 5 - 34 / 12}
    )
    for estimate in estimates.values():
        assert estimate.low <= estimate.value <= estimate.high
    assert set(aggregate_estimates(scores, n_resamples=100)) == {"mean", "median", "iqm"}


def test_same_seed_same_interval_other_seed_other_interval():
    scores = np.random.default_rng(6).normal(size=(10, 5))
    first = aggregate_estimates(scores, seed=3)
    assert aggregate_estimates(scores, seed=3) == first
    assert aggregate_estimates(scores, seed=np.random.default_rng(3)) == first
    assert aggregate_estimates(scores, seed=4)["iqm"] != first["iqm"]
    x, y = scores, scores + 0.2
    assert probability_of_improvement_ci(x, y, seed=1) == probability_of_improvement_ci(x, y, seed=1)


# --- coverage of known population values -----------------------------------------------------------------------
# 400 samples of 10 runs, 500 resamples each. The percentile bootstrap undercovers at n = 10: for the mean it is
# about mean -+ 1.96 s_(ddof 0) / sqrt(n), whose coverage is P(|t_9| < 1.96 sqrt(9/10)) = 0.904, not 0.95
# (simulated: IQM ~0.93, probability of improvement ~0.93). With 400 samples the binomial sd of the coverage is
# ~0.015, so [0.85, 0.98] holds the expected coverage -+ 3 sd, while an interval that is too narrow (or aimed at
# the wrong quantity) falls below and one that is much too wide rises above it. Seeds are fixed: no flakes.
SAMPLES, RUNS, RESAMPLES = 400, 10, 500


def coverage(interval_of_sample, truth: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for index in range(SAMPLES):
        estimate = interval_of_sample(rng, index)
        hits += estimate.low <= truth <= estimate.high
    return hits / SAMPLES


def test_percentile_bootstrap_of_the_mean_covers_at_the_expected_rate():
    expected = stats.t.cdf(1.959964 * np.sqrt(0.9), RUNS - 1) - stats.t.cdf(-1.959964 * np.sqrt(0.9), RUNS - 1)
    rate = coverage(
        lambda rng, i: stratified_bootstrap_ci(
            rng.normal(3.0, 2.0, RUNS), aggregate_mean, n_resamples=RESAMPLES, seed=i
        ),
        truth=3.0,
        seed=100,
    )
    assert expected == pytest.approx(0.904, abs=0.002)
    assert abs(rate - expected) < 3 * np.sqrt(expected * (1 - expected) / SAMPLES)


def test_iqm_interval_covers_the_population_iqm():
    # Population IQM of N(3, 2): E[X | q25 < X < q75], which symmetry puts at the mean.
    normal = stats.norm(3.0, 2.0)
    truth = normal.expect(lambda v: v, lb=normal.ppf(0.25), ub=normal.ppf(0.75), conditional=True)
    assert truth == pytest.approx(3.0)
    rate = coverage(
        lambda rng, i: stratified_bootstrap_ci(
            rng.normal(3.0, 2.0, RUNS), aggregate_iqm, n_resamples=RESAMPLES, seed=i
        ),
        truth,
        seed=200,
    )
    assert 0.85 <= rate <= 0.98


def test_iqm_interval_covers_a_skewed_population_iqm_not_its_mean():
    # Exponential(1): the IQM (0.738) lies well below the mean (1), so an interval aimed at the mean would miss it.
    # 20 runs: a quarter is 5 whole scores, so the sample IQM trims exactly the population's quartiles.
    exponential = stats.expon()
    truth = exponential.expect(lambda v: v, lb=exponential.ppf(0.25), ub=exponential.ppf(0.75), conditional=True)
    assert truth == pytest.approx(0.7384, abs=1e-4)
    rate = coverage(
        lambda rng, i: stratified_bootstrap_ci(rng.exponential(1.0, 20), aggregate_iqm, n_resamples=RESAMPLES, seed=i),
        truth,
        seed=300,
    )
    assert 0.85 <= rate <= 0.98


def test_probability_of_improvement_interval_covers_the_true_probability():
    # Two tasks. merge: X ~ N(1, 1), Y ~ N(0, 1); exit: X ~ N(0, 1), Y ~ N(0.5, 2).
    # P(X > Y) = Phi((mu_x - mu_y) / sqrt(sx^2 + sy^2)) per task, averaged over tasks.
    truth = (stats.norm.cdf(1 / np.sqrt(2)) + stats.norm.cdf(-0.5 / np.sqrt(5))) / 2

    def interval(rng, index):
        x = np.column_stack([rng.normal(1.0, 1.0, RUNS), rng.normal(0.0, 1.0, RUNS)])
        y = np.column_stack([rng.normal(0.0, 1.0, RUNS), rng.normal(0.5, 2.0, RUNS)])
        return probability_of_improvement_ci(x, y, n_resamples=RESAMPLES, seed=index)

    assert 0.85 <= coverage(interval, truth, seed=400) <= 0.98


# --- learning-curve band -----------------------------------------------------------------------------------------


def test_mean_curve_band_by_hand_with_missing_points():
    curves = [
        [1.0, 2.0, np.nan, np.nan, np.nan],
        [3.0, 4.0, 5.0, np.nan, np.nan],
        [5.0, 9.0, 7.0, 8.0, np.nan],
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # missing points must not trip numpy's empty-slice warnings
        band = mean_curve_band(curves)
    # t table, two-sided 95%: t(0.975, 2) = 4.302653, t(0.975, 1) = 12.706205
    # point 0: 1 3 5 -> mean 3, s = 2,            half = 4.302653 * 2 / sqrt(3)
    # point 1: 2 4 9 -> mean 5, s^2 = 26 / 2 = 13, half = 4.302653 * sqrt(13 / 3)
    # point 2:   5 7 -> mean 6, s = sqrt(2),       half = 12.706205 * sqrt(2) / sqrt(2)
    # point 3:     8 -> mean 8, one seed: no band;  point 4: no seed at all
    half = np.array([4.302653 * 2 / np.sqrt(3), 4.302653 * np.sqrt(13 / 3), 12.706205])
    np.testing.assert_allclose(band.mean[:4], [3, 5, 6, 8])
    np.testing.assert_allclose(band.low[:3], [3, 5, 6] - half, rtol=1e-6)
    np.testing.assert_allclose(band.high[:3], [3, 5, 6] + half, rtol=1e-6)
    np.testing.assert_array_equal(band.seeds, [3, 3, 2, 1, 0])
    assert np.isnan(band.low[3]) and np.isnan(band.high[3])
    assert np.isnan(band.mean[4]) and np.isnan(band.low[4])


def test_mean_curve_band_without_spread_has_zero_width():
    band = mean_curve_band([[1.0, 2.0], [1.0, 2.0]], confidence=0.9)
    np.testing.assert_array_equal(band.low, [1.0, 2.0])
    np.testing.assert_array_equal(band.high, [1.0, 2.0])


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: iqm([]), "scores"),
        (lambda: iqm([1.0, np.nan]), "scores"),
        (lambda: stratified_bootstrap_ci(np.empty((0, 3)), aggregate_mean), "scores_by_task"),
        (lambda: stratified_bootstrap_ci([[1.0, 2.0]], aggregate_mean), "scores_by_task"),  # one run: no interval
        (lambda: stratified_bootstrap_ci(np.ones((2, 2, 2)), aggregate_mean), "scores_by_task"),
        (lambda: stratified_bootstrap_ci([[1, 2], [3]], aggregate_mean), "scores_by_task"),  # ragged
        (lambda: stratified_bootstrap_ci([1.0, 2.0], np.mean), "statistic"),  # reduces the resample axis too
        (lambda: stratified_bootstrap_ci([1.0, 2.0], aggregate_mean, confidence=1.0), "confidence"),
        (lambda: stratified_bootstrap_ci([1.0, 2.0], aggregate_mean, confidence=0.0), "confidence"),
        (lambda: stratified_bootstrap_ci([1.0, 2.0], aggregate_mean, n_resamples=0), "n_resamples"),
        (lambda: aggregate_estimates({"merge": [1, 2, 3], "exit": [1, 2]}), "scores"),
        (lambda: aggregate_estimates({}), "scores"),
        (lambda: aggregate_estimates([[1.0, np.inf], [2.0, 3.0]]), "scores"),
        (lambda: aggregate_estimates([[1.0], [2.0]], confidence=95), "confidence"),
        (lambda: probability_of_improvement(np.ones((3, 3)), np.ones((3, 2))), "y_scores"),
        (lambda: probability_of_improvement([], [1.0]), "x_scores"),
        (lambda: probability_of_improvement({"merge": [1]}, {"exit": [1]}), "y_scores"),
        (lambda: probability_of_improvement_ci([1.0, 2.0], [1.0, 2.0], confidence=-0.5), "confidence"),
        (lambda: performance_profile([1.0, 2.0], []), "thresholds"),
        (lambda: performance_profile([1.0, 2.0], [[0.5]]), "thresholds"),
        (lambda: mean_curve_band([1.0, 2.0, 3.0]), "curves"),
        (lambda: mean_curve_band(np.empty((0, 4))), "curves"),
        (lambda: mean_curve_band([[1.0, np.inf]]), "curves"),
        (lambda: mean_curve_band([[1.0, 2.0]], confidence=1.5), "confidence"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}\b"):
        call()


# --- estimates that fall back to the value alone under 2 runs (the comparison report) --------------------------


def test_pooled_median_is_a_median_of_runs_not_of_task_means():
    scores = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    # runs pooled: 1 2 3 10 20 30 -> (3 + 10) / 2; the median of task means (2, 20) would be 11
    assert float(pooled_median(scores)) == pytest.approx(6.5)
    assert float(pooled_median(np.array([[5.0], [1.0], [9.0]]))) == pytest.approx(5.0)  # one task: median run
    e = pooled_median_estimate(scores, n_resamples=500)
    assert e.value == pytest.approx(6.5) and 1.0 <= e.low <= e.value <= e.high <= 30.0
    single = pooled_median_estimate(np.array([[4.0, 8.0]]))
    assert single.value == pytest.approx(6.0) and np.isnan(single.low) and np.isnan(single.high)


def test_mean_estimate_clips_its_t_interval_and_has_none_under_two_values():
    # 0 0 0 1: mean 1/4, s = 1/2, t_{0.975, 3} = 3.182 -> 0.25 -+ 0.795, clipped to the rate's range [0, 1]
    half = stats.t.ppf(0.975, 3) * 0.5 / 2
    e = mean_estimate([0.0, 0.0, 0.0, 1.0], 0.0, 1.0)
    assert (e.value, e.low, e.high) == (pytest.approx(0.25), 0.0, 1.0)
    unclipped = mean_estimate([0.0, 0.0, 0.0, 1.0])
    assert (unclipped.low, unclipped.high) == (pytest.approx(0.25 - half), pytest.approx(0.25 + half))
    # one side clipped: 0 0.1 0.2 -> 0.1 -+ t_{0.975, 2} * 0.1 / sqrt(3); only the low end passes 0.05
    low_only = mean_estimate([0.0, 0.1, 0.2], 0.05, 1.0)
    assert (low_only.low, low_only.high) == (0.05, pytest.approx(0.1 + stats.t.ppf(0.975, 2) * 0.1 / 3**0.5))
    one = mean_estimate([3.0])
    assert one.value == 3.0 and np.isnan(one.low) and np.isnan(one.high)
    assert np.isnan(mean_estimate([]).value)


def test_location_estimates_of_one_run_are_the_values_alone():
    # one run over 4 tasks: mean 106 / 4, median of task means (2 + 3) / 2, IQM drops 1 and 100 -> 2.5
    estimates = location_estimates(np.array([[1.0, 2.0, 3.0, 100.0]]))
    assert {name: e.value for name, e in estimates.items()} == pytest.approx({"mean": 26.5, "median": 2.5,
                                                                               "iqm": 2.5})
    assert all(np.isnan(e.low) and np.isnan(e.high) for e in estimates.values())
    two = location_estimates(np.array([[1.0, 2.0], [3.0, 4.0]]), n_resamples=200)
    assert two["mean"].value == pytest.approx(2.5) and two["mean"].low <= 2.5 <= two["mean"].high
    assert two["mean"].high - two["mean"].low > 0  # the bootstrap interval, not the value alone


def test_improvement_and_profile_of_one_run_have_no_interval():
    # X's one run 2 against Y's 1 and 3: one win, one loss -> 1/2
    e = improvement_estimate(np.array([[2.0]]), np.array([[1.0], [3.0]]))
    assert e.value == pytest.approx(0.5) and np.isnan(e.low) and np.isnan(e.high)
    both = improvement_estimate(np.array([[5.0], [6.0]]), np.array([[1.0], [2.0]]), n_resamples=200)
    assert (both.value, both.low, both.high) == (1.0, 1.0, 1.0)  # every pair won in every resample
    profile = profile_estimate(np.array([[1.0, 3.0]]), [0.0, 2.0, 4.0])
    assert profile.fraction.tolist() == [1.0, 0.5, 0.0] and np.isnan(profile.low).all() and np.isnan(profile.high).all()
