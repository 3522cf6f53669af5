"""Conclusions from multi-seed comparisons against independent truth: scipy's Mann-Whitney and Welch tests,
hand-worked Holm tables, the textbook two-sample sample sizes and simulated power, published Lan-DeMets
O'Brien-Fleming boundaries and a Monte-Carlo of Brownian motion, and simulated grids in which the sequential
design keeps its false-positive rate where stopping at the first significant look does not."""

import math

import numpy as np
import pytest
from scipy import stats

from experiments.sequential import (
    Holm,
    SequentialDesign,
    Verdict,
    holm,
    holm_verdicts,
    iqm_difference_ci,
    mann_whitney_p,
    obrien_fleming_spending,
    seeds_for_effect,
    seeds_for_power,
    sequential_z,
    sequential_z_batch,
    verdict,
    welch_power,
)
from experiments.statistics import iqm, probability_of_improvement


def binomial_bounds(p: float, trials: int, tail: float = 1e-4) -> tuple[float, float]:
    """Rates a seeded simulation of ``trials`` Bernoulli(p) lands within but for probability ``2 * tail``."""
    return stats.binom.ppf(tail, trials, p) / trials, stats.binom.isf(tail, trials, p) / trials


# --- verdicts ------------------------------------------------------------------------------------------------------


def test_every_variant_seed_beating_every_baseline_seed_is_better_at_five_seeds():
    v = verdict([10, 11, 12, 13, 14], [0, 1, 2, 3, 4])
    # exact Mann-Whitney: the most extreme of C(10, 5) = 252 orderings, either way -> 2 / 252
    assert v.p_value == pytest.approx(2 / 252)
    assert v.outcome == "better"
    assert v.probability_of_improvement.value == 1.0
    assert v.iqm_difference.value == pytest.approx(10.0)
    assert (v.seeds_x, v.seeds_y, v.correction, v.p_adjusted) == (5, 5, "none", v.p_value)


def test_the_swapped_comparison_is_worse_with_the_same_p_value():
    v = verdict([0, 1, 2, 3, 4], [10, 11, 12, 13, 14])
    assert v.outcome == "worse"
    assert v.p_value == pytest.approx(2 / 252)
    assert v.probability_of_improvement.value == 0.0
    assert v.iqm_difference.value == pytest.approx(-10.0)


def test_three_seeds_cannot_separate_even_a_clean_sweep():
    # 2 / C(6, 3) = 0.1: the smallest p-value 3 vs 3 seeds allows
    v = verdict([10, 11, 12], [0, 1, 2])
    assert v.p_value == pytest.approx(0.1)
    assert v.outcome == "not_separated"


def test_the_verdict_reports_scipy_mann_whitney_and_the_probability_of_improvement():
    rng = np.random.default_rng(5)
    for _ in range(20):
        x, y = rng.normal(0.5, 1, 8), np.round(rng.normal(0, 1, 6), 1)  # rounding makes some ties
        v = verdict(x, y, n_resamples=200)
        u = stats.mannwhitneyu(x, y, alternative="two-sided")
        assert v.p_value == pytest.approx(u.pvalue)
        assert v.probability_of_improvement.value == pytest.approx(u.statistic / (8 * 6))
        assert v.probability_of_improvement.value == pytest.approx(probability_of_improvement(x, y))
        expected = "not_separated" if u.pvalue >= 0.05 else ("better" if u.statistic > 24 else "worse")
        assert v.outcome == expected


def test_all_scores_tied_is_not_separated_with_p_one():
    assert mann_whitney_p([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0
    assert verdict([1.0, 1.0, 1.0], [1.0, 1.0]).outcome == "not_separated"


def test_the_iqm_difference_is_the_difference_of_iqms_inside_its_interval():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 10), rng.normal(0, 1, 7)
    e = iqm_difference_ci(x, y, n_resamples=500)
    assert e.value == pytest.approx(iqm(x) - iqm(y))
    assert e.low < e.value < e.high
    assert iqm_difference_ci(x, y, n_resamples=500) == e  # seeded


def test_verdict_to_dict_carries_every_field():
    d = verdict([3, 4, 5], [1, 2, 3], n_resamples=100).to_dict()
    assert set(d) == {field for field in Verdict.__dataclass_fields__}
    improvement = d["probability_of_improvement"]
    assert isinstance(improvement, dict) and set(improvement) == {"value", "low", "high"}


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [([[1, 2], [3, 4]], [1, 2], "x_scores: must be 1-D"), ([1, 2, 3], [1.0], "y_scores: needs at least 2"),
     ([1, math.nan], [1, 2], "x_scores: must be finite")],
)
def test_bad_scores_are_named(x, y, message):
    with pytest.raises(ValueError, match=message):
        verdict(x, y)


def test_alpha_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        verdict([1, 2], [3, 4], alpha=1.5)


# --- Holm --------------------------------------------------------------------------------------------------------


def test_holm_hand_worked_example():
    # sorted 0.005 0.01 0.03 0.04 x (4 3 2 1) -> 0.02 0.03 0.06 0.04; running maximum 0.02 0.03 0.06 0.06
    result = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert result.adjusted == pytest.approx((0.03, 0.06, 0.06, 0.02))
    assert result.rejected == (True, False, False, True)
    rejected, adjusted = result  # unpacks as the pair it is
    assert isinstance(result, Holm) and rejected == result.rejected and adjusted == result.adjusted


# p-values, alpha -> Holm-adjusted p-values, rejected; worked by hand as in the test above
HOLM_TABLE = [
    # step-down goes further than Bonferroni (which rejects 0.01 only: 0.015 x 4 = 0.06)
    ([0.01, 0.015, 0.02, 0.5], 0.05, [0.04, 0.045, 0.045, 0.5], [True, True, True, False]),
    # capped at 1, order of input kept
    ([0.2, 0.6, 0.01], 0.05, [0.4, 0.6, 0.03], [False, False, True]),
    ([0.7, 0.9], 0.05, [1.0, 1.0], [False, False]),
    # the first not rejected stops the procedure: 0.03 x 2 = 0.06 > 0.05 keeps 0.04 (x 1) too
    ([0.04, 0.03], 0.05, [0.06, 0.06], [False, False]),
    ([0.04, 0.03], 0.1, [0.06, 0.06], [True, True]),
    # ties keep their adjusted values equal
    ([0.01, 0.01, 0.01], 0.05, [0.03, 0.03, 0.03], [True, True, True]),
    ([0.3], 0.05, [0.3], [False]),
]


@pytest.mark.parametrize(("p", "alpha", "adjusted", "rejected"), HOLM_TABLE)
def test_holm_matches_the_hand_computed_table(p, alpha, adjusted, rejected):
    result = holm(p, alpha)
    assert result.adjusted == pytest.approx(tuple(adjusted))
    assert result.rejected == tuple(rejected)


def test_holm_matches_statsmodels_when_it_is_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(2)
    for _ in range(50):
        p = rng.uniform(0, 0.2, rng.integers(1, 12))
        reject, adjusted, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
        result = holm(p, 0.05)
        assert result.adjusted == pytest.approx(tuple(adjusted))
        assert result.rejected == tuple(bool(r) for r in reject)


def test_holm_of_nothing_is_nothing_and_bad_p_values_are_refused():
    assert holm([]) == Holm((), ())
    with pytest.raises(ValueError, match="p_values"):
        holm([0.5, 1.2])


def test_holm_verdicts_decide_on_the_adjusted_p_values():
    one = verdict([10, 11, 12, 13, 14], [0, 1, 2, 3, 4], n_resamples=100)  # p = 0.0079
    other = verdict([1, 2, 3, 4, 5], [0, 1, 2, 3, 4], n_resamples=100)  # p = 0.40
    corrected = holm_verdicts([one, other, other, other, other, other, other, other])
    assert [v.p_adjusted for v in corrected] == pytest.approx(list(holm([v.p_value for v in corrected]).adjusted))
    assert corrected[0].correction == "Holm over 8 comparisons"
    assert corrected[0].p_adjusted == pytest.approx(8 * 2 / 252)
    assert corrected[0].outcome == "not_separated"  # 0.063: the eighth comparison costs the first its verdict
    assert holm_verdicts([one])[0].outcome == "better"
    assert holm_verdicts([one], alpha=2 / 252)[0].outcome == "better"  # p at alpha rejects, as in holm()
    assert holm_verdicts([]) == []


# --- how many seeds --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "textbook"), [(0.5, 64), (0.8, 26), (0.2, 394), (1.0, 17)])
def test_seeds_for_an_effect_are_the_textbook_two_sample_t_test_sizes(d, textbook):
    # two-sided alpha 0.05, power 0.8, equal SDs (Cohen 1988, G*Power): the smallest n per group reaching 0.8
    assert seeds_for_effect(d, 1.0, 1.0) == textbook
    assert welch_power(d, 1.0, 1.0, textbook) >= 0.8 > welch_power(d, 1.0, 1.0, textbook - 1)


def test_welch_power_matches_a_simulation_of_the_welch_test():
    rng = np.random.default_rng(3)
    trials = 20_000
    for effect, sd_x, sd_y, n in [(0.5, 1.0, 1.0, 64), (1.0, 1.0, 2.0, 15), (0.3, 0.5, 0.5, 20)]:
        x = rng.normal(effect, sd_x, (trials, n))
        y = rng.normal(0.0, sd_y, (trials, n))
        rate = np.mean(stats.ttest_ind(x, y, axis=1, equal_var=False).pvalue < 0.05)
        low, high = binomial_bounds(welch_power(effect, sd_x, sd_y, n), trials)
        assert low <= rate <= high, (effect, sd_x, sd_y, n, rate)


def test_seeds_for_power_uses_the_pilot_difference_and_spreads():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.0, 2.5, 3.0, 3.5]
    expected = seeds_for_effect(np.mean(x) - np.mean(y), np.std(x, ddof=1), np.std(y, ddof=1))
    assert seeds_for_power(x, y) == expected
    assert seeds_for_power(y, x) == expected  # the direction does not matter
    assert seeds_for_power(x, y, power=0.9) > expected


def test_no_observed_difference_needs_more_seeds_than_any_count():
    assert seeds_for_power([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) is None
    assert seeds_for_effect(0.01, 1.0, 1.0, max_seeds=1000) is None
    assert seeds_for_effect(0.01, 1.0, 1.0, max_seeds=200_000) == pytest.approx(156_978, abs=5)  # 2 (2.8 / .01)^2


def test_welch_power_stays_finite_where_scipy_noncentral_t_fails():
    assert all(math.isfinite(welch_power(0.5, 1.0, 1.0, n)) for n in (5000, 7000, 10_000))
    assert welch_power(0.5, 1.0, 1.0, 5000) == pytest.approx(1.0)


# --- the sequential statistic --------------------------------------------------------------------------------------


def test_sequential_z_is_the_normal_quantile_of_scipy_welch_p_value():
    rng = np.random.default_rng(4)
    for _ in range(20):
        x, y = rng.normal(0.7, 1, 6), rng.normal(0, 2, 9)
        result = stats.ttest_ind(x, y, equal_var=False)
        assert sequential_z(x, y) == pytest.approx(np.sign(result.statistic) * stats.norm.isf(result.pvalue / 2))
    batch_x, batch_y = rng.normal(0, 1, (3, 5)), rng.normal(0, 1, (3, 5))
    assert sequential_z_batch(batch_x, batch_y) == pytest.approx([sequential_z(a, b) for a, b in
                                                                  zip(batch_x, batch_y, strict=True)])


def test_sequential_z_without_spread():
    assert sequential_z([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert sequential_z([2.0, 2.0], [1.0, 1.0]) == math.inf
    assert sequential_z([0.0, 0.0], [1.0, 1.0]) == -math.inf
    # far in the tail the upper-tail route keeps z finite and exact (the cdf would round to 1 and give inf)
    x, y = [40.0, 40.1, 39.9], [0.0, 0.1, -0.1]
    assert sequential_z(x, y) == pytest.approx(stats.norm.isf(stats.ttest_ind(x, y, equal_var=False).pvalue / 2))


# --- the group-sequential design ---------------------------------------------------------------------------------


def test_the_spending_function_spends_alpha_by_the_end_and_little_early():
    assert float(obrien_fleming_spending(1.0, 0.05)) == pytest.approx(0.05)
    assert float(obrien_fleming_spending(0.5, 0.05)) == pytest.approx(2 - 2 * stats.norm.cdf(1.959964 / 0.5**0.5))
    assert np.all(np.diff(obrien_fleming_spending([0.1, 0.3, 0.6, 1.0], 0.05)) > 0)


def test_the_first_boundary_is_the_spending_at_that_look():
    design = SequentialDesign((10, 20))
    assert design.boundaries[0] == pytest.approx(stats.norm.isf(obrien_fleming_spending(0.5, 0.025)))
    assert design.spent[-1] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("looks", "published"),
    [
        # gsDesign sfLDOF / R ldbounds (iuse=1, two-sided alpha 0.05, symmetric), equally spaced looks
        ((5, 10, 15, 20), (4.3326, 2.9631, 2.3590, 2.0141)),
        ((10, 20), (2.9626, 1.9686)),
        ((4, 8, 12, 16, 20), (4.8769, 3.3569, 2.6803, 2.2898, 2.0310)),
    ],
)
def test_boundaries_match_published_lan_demets_obrien_fleming_values(looks, published):
    assert SequentialDesign(looks).boundaries == pytest.approx(published, abs=2e-4)


def test_two_looks_come_close_to_the_classical_obrien_fleming_boundaries():
    # classical O'Brien-Fleming (1979) at t = 0.5, 1: 2.797, 1.977; the spending version is close, not equal
    boundaries = SequentialDesign((10, 20)).boundaries
    assert boundaries == pytest.approx((2.797, 1.977), abs=0.17)
    assert boundaries[1] == pytest.approx(1.977, abs=0.01)


def test_boundaries_spend_alpha_in_a_monte_carlo_of_brownian_motion():
    # independent of the integration: 4 x 10^5 seeded paths with independent increments, unequal look spacing
    design = SequentialDesign((3, 7, 12, 20))
    t = np.asarray(design.fractions)
    rng = np.random.default_rng(6)
    paths = 400_000
    score = np.cumsum(rng.normal(size=(paths, t.size)) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    crossed = np.abs(score / np.sqrt(t)) >= np.asarray(design.boundaries)
    cumulative = np.cumsum(np.bincount(crossed.argmax(axis=1)[crossed.any(axis=1)], minlength=t.size)) / paths
    for rate, spent in zip(cumulative, design.spent, strict=True):
        low, high = binomial_bounds(spent, paths)
        assert low <= rate <= high, (rate, spent)
    assert design.operating_characteristics(0.0).power == pytest.approx(0.05, abs=1e-6)


def test_the_integrated_power_matches_a_simulation_of_z_tests_with_known_variance():
    # the model the integration solves, simulated directly: normal scores, z = difference / sqrt(2 / n)
    design = SequentialDesign((5, 10, 15, 20))
    rng = np.random.default_rng(7)
    grids, d = 20_000, 0.8
    x, y = rng.normal(d, 1, (grids, 20)), rng.normal(0, 1, (grids, 20))
    z = np.stack([(x[:, :n].mean(1) - y[:, :n].mean(1)) / np.sqrt(2 / n) for n in design.looks], axis=1)
    crossed = np.abs(z) >= np.asarray(design.boundaries)
    stopped = crossed.any(axis=1)
    seeds = np.where(stopped, np.asarray(design.looks)[crossed.argmax(axis=1)], 20)
    integrated = design.operating_characteristics(d)
    low, high = binomial_bounds(integrated.power, grids)
    assert low <= stopped.mean() <= high
    assert seeds.mean() == pytest.approx(integrated.expected_seeds, abs=4 * seeds.std() / grids**0.5)


def test_decisions_at_each_look():
    design = SequentialDesign((5, 10, 15, 20))
    c = design.boundaries
    assert design.decide(0, c[0] + 0.01) == "better"
    assert design.decide(0, -c[0] - 0.01) == "worse"
    assert design.decide(0, c[0] - 0.01) == "continue"
    assert design.decide(1, 3.0) == "better" and design.decide(1, 2.9) == "continue"
    assert design.decide(3, 2.0) == "not_separated"
    assert design.decide(3, -2.1) == "worse"
    with pytest.raises(ValueError, match="look_index"):
        design.decide(4, 0.0)


def test_decide_scores_looks_up_the_look_by_seed_count():
    design = SequentialDesign((3, 6))
    assert design.decide_scores([10, 11, 12], [0, 1, 2]) == "better"
    assert design.decide_scores([0, 1, 2, 1, 0, 2], [0, 1, 2, 2, 1, 0]) == "not_separated"
    with pytest.raises(ValueError, match="seed counts"):
        design.decide_scores([1, 2, 3, 4], [1, 2, 3, 4])


@pytest.mark.parametrize("looks", [(), (5, 5), (10, 5), (1, 4)])
def test_looks_must_be_increasing_seed_counts(looks):
    with pytest.raises(ValueError, match="looks"):
        SequentialDesign(looks)


def test_the_design_states_itself():
    text = SequentialDesign((5, 10)).describe()
    assert "[5, 10]" in text and "O'Brien-Fleming" in text and "2.963" in text


# --- the known-answer tests of the issue: synthetic grids, no training --------------------------------------------


def test_with_no_true_difference_the_design_keeps_alpha_and_naive_stopping_does_not():
    design = SequentialDesign((5, 10, 15, 20), alpha=0.05)
    rng = np.random.default_rng(8)
    grids = 20_000
    x, y = rng.normal(0, 1, (grids, 20)), rng.normal(0, 1, (grids, 20))
    z = np.stack([sequential_z_batch(x[:, :n], y[:, :n]) for n in design.looks], axis=1)

    def first_decision(row: np.ndarray) -> str:
        for look, value in enumerate(row):
            decision = design.decide(look, float(value))
            if decision != "continue":
                return decision
        raise AssertionError("the last look always decides")

    decisions = [first_decision(row) for row in z]
    design_rate = np.mean([d in ("better", "worse") for d in decisions])
    # the naive rule: a Welch test at alpha after every batch, stopping at the first p < alpha
    naive_rate = np.mean((np.abs(z) >= stats.norm.isf(0.025)).any(axis=1))
    low, high = binomial_bounds(0.05, grids)  # +-0.006 at 20000 grids
    assert low <= design_rate <= high, design_rate
    assert naive_rate > high, naive_rate  # about 0.12 (Armitage et al. 1969): four looks, four chances
    assert abs(decisions.count("better") - decisions.count("worse")) < 4 * (grids * 0.025) ** 0.5  # symmetric


@pytest.mark.slow
def test_with_a_known_effect_the_design_power_and_seeds_match_a_direct_simulation():
    # the procedure run grid by grid through decide_scores (scipy per look) against the vectorised simulation
    design = SequentialDesign((5, 10, 15, 20))
    d, grids = 1.0, 2000
    rng = np.random.default_rng(9)
    stopped, seeds = 0, []
    for _ in range(grids):
        x, y = rng.normal(d, 1, 20), rng.normal(0, 1, 20)
        for n in design.looks:
            decision = design.decide_scores(x[:n], y[:n])
            if decision != "continue":
                break
        stopped += decision in ("better", "worse")
        seeds.append(n)
    simulated = design.simulate(d, grids=100_000, seed=10)
    low, high = binomial_bounds(simulated.power, grids)
    assert low <= stopped / grids <= high
    assert np.mean(seeds) == pytest.approx(simulated.expected_seeds, abs=4 * np.std(seeds) / grids**0.5)
    # and the integration (z taken as exactly normal) is close to the procedure, optimistic by under 0.03
    integrated = design.operating_characteristics(d)
    assert 0.0 < integrated.power - simulated.power < 0.03
    assert 0.0 < simulated.expected_seeds - integrated.expected_seeds < 1.0


def test_the_simulated_design_keeps_alpha_and_is_seeded():
    design = SequentialDesign((5, 10, 15, 20))
    null = design.simulate(0.0, grids=20_000, seed=11)
    low, high = binomial_bounds(0.05, 20_000)
    assert low <= null.power <= high
    assert design.simulate(0.0, grids=20_000, seed=11) == null
    assert null.expected_seeds == pytest.approx(20 - sum(
        (20 - n) * (b + w) for n, b, w in zip(design.looks, null.better_by_look, null.worse_by_look, strict=True)))
