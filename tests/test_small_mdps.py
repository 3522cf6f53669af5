"""Checks of the known-answer MDPs in ``small_mdps`` against independent computations."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import small_mdps as mdps
from gymnasium.utils.env_checker import check_env

LENGTH, P, GAMMA = mdps.CHAIN_LENGTH, mdps.CHAIN_P, mdps.CHAIN_GAMMA
N_MC = 10**6


@functools.lru_cache(maxsize=4)
def chain_mc(state: int = 0) -> np.ndarray:
    """10^6 Monte Carlo returns of the default chain (shared by several tests)."""
    return mdps.chain_returns(LENGTH, P, GAMMA, state, n=N_MC, seed=0)


def pinball_loss(q: float, support: np.ndarray, probs: np.ndarray, tau: float) -> float:
    """``E[rho_tau(X - q)]`` of a discrete law."""
    residual = support - q
    return float(np.sum(probs * residual * (tau - (residual < 0))))


# ------------------------------------------------------------------------------------------------
# Statistics helpers
# ------------------------------------------------------------------------------------------------


def test_expectile_at_half_is_the_mean_and_matches_two_point_closed_form():
    rng = np.random.default_rng(1)
    values, weights = rng.normal(size=500), rng.random(500)
    assert mdps.expectile(values, 0.5) == pytest.approx(values.mean(), abs=1e-10)
    assert mdps.expectile(values, 0.5, weights=weights) == pytest.approx(np.average(values, weights=weights), abs=1e-10)
    for tau in (0.1, 0.25, 0.8):
        generic = mdps.expectile([-1.0, 3.0], tau, weights=[0.6, 0.4])
        assert generic == pytest.approx(mdps.two_point_expectile(-1.0, 3.0, 0.4, tau), abs=1e-10)
    levels = np.array([0.05, 0.3, 0.7, 0.95])
    many = mdps.expectile(values, levels)
    assert many.shape == (4,) and np.all(np.diff(many) > 0)


def test_expectile_minimises_the_asymmetric_squared_loss():
    rng = np.random.default_rng(2)
    values, tau = rng.exponential(size=300), 0.2
    e = mdps.expectile(values, tau)

    def loss(x: float) -> float:
        residual = values - x
        return float(np.mean(np.abs(tau - (residual < 0)) * residual**2))

    assert loss(e) <= min(loss(e - 1e-4), loss(e + 1e-4))


def test_quantile_is_the_lower_quantile():
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 7, size=101).astype(float)
    levels = np.array([0.01, 0.2, 0.5, 0.77, 1.0])
    expected = np.quantile(samples, levels, method="inverted_cdf")
    np.testing.assert_array_equal(mdps.quantile(samples, levels), expected)


def test_quantile_and_interval_of_a_two_point_distribution():
    support, probs = np.array([0.0, 1.0]), np.array([0.7, 0.3])
    assert mdps.quantile(support, 0.5, weights=probs) == 0.0
    assert mdps.quantile(support, 0.75, weights=probs) == 1.0
    assert mdps.quantile(support, 0.7, weights=probs) == 0.0  # lower end at a CDF step
    assert mdps.quantile_interval(support, probs, 0.5) == (0.0, 0.0)
    assert mdps.quantile_interval(support, probs, 0.75) == (1.0, 1.0)
    assert mdps.quantile_interval(support, probs, 0.7) == (0.0, 1.0)
    # the pinball loss is flat on the interval and larger outside it
    flat = [pinball_loss(q, support, probs, 0.7) for q in (0.0, 0.4, 1.0)]
    assert np.allclose(flat, flat[0])
    assert pinball_loss(-0.1, support, probs, 0.7) > flat[0] and pinball_loss(1.1, support, probs, 0.7) > flat[0]
    # samples (probs=None): 10 values, tau 0.3 sits on the step after the 3rd
    assert mdps.quantile_interval(np.arange(10.0), None, 0.3) == (2.0, 3.0)


def test_cvar_is_the_lower_tail_mean():
    assert mdps.cvar(np.arange(1.0, 101.0), 0.25) == pytest.approx(13.0)
    # an atom straddling alpha counts fractionally: {0: 0.1, 10: 0.9}, alpha 0.25 -> (0.1*0 + 0.15*10)/0.25
    assert mdps.cvar([0.0, 10.0], 0.25, weights=[0.1, 0.9]) == pytest.approx(6.0)
    assert mdps.cvar([0.0, 10.0], 1.0, weights=[0.1, 0.9]) == pytest.approx(9.0)


# ------------------------------------------------------------------------------------------------
# Bernoulli chain truth
# ------------------------------------------------------------------------------------------------


def test_chain_exact_mean_and_variance_match_monte_carlo():
    returns = chain_mc(0)
    mean, variance = mdps.chain_mean(LENGTH, P, GAMMA), mdps.chain_variance(LENGTH, P, GAMMA)
    assert mean == pytest.approx(P * (1 - GAMMA**LENGTH) / (1 - GAMMA))
    assert abs(returns.mean() - mean) < 5 * np.sqrt(variance / N_MC)
    assert returns.var() == pytest.approx(variance, rel=0.01)


def test_chain_split_enumeration_matches_full_enumeration_on_a_short_chain():
    length, p, gamma = 13, 0.35, 0.85  # 2^13 outcomes: full enumeration is cheap
    support, probs = mdps.chain_return_support(length, p, gamma, state=0)
    assert probs.sum() == pytest.approx(1.0) and support @ probs == pytest.approx(mdps.chain_mean(length, p, gamma))
    for x in (0.5, 1.7, 2.9):
        assert mdps.chain_cdf(x, length, p, gamma) == pytest.approx(probs[support <= x].sum(), abs=1e-12)
    for tau in (0.05, 0.3, 0.5, 0.9):
        assert mdps.chain_expectile(length, p, gamma, tau) == pytest.approx(
            mdps.expectile(support, tau, weights=probs), abs=1e-9
        )
        assert mdps.chain_quantile(length, p, gamma, tau) == pytest.approx(
            mdps.quantile(support, tau, weights=probs), abs=1e-9
        )


def test_chain_exact_statistics_match_monte_carlo():
    returns = chain_mc(0)
    levels = np.array([0.5 / 11, 0.5, 10.5 / 11])
    np.testing.assert_allclose(
        mdps.chain_expectile(LENGTH, P, GAMMA, levels), mdps.expectile(returns, levels), atol=5e-3
    )
    np.testing.assert_allclose(mdps.chain_quantile(LENGTH, P, GAMMA, levels), mdps.quantile(returns, levels), atol=1e-2)
    assert mdps.chain_expectile(LENGTH, P, GAMMA, 0.5) == pytest.approx(mdps.chain_mean(LENGTH, P, GAMMA), abs=1e-10)


def test_chain_reproduces_the_issue_numbers_at_state_0():
    expectiles = mdps.chain_expectile(LENGTH, P, GAMMA, mdps.TAUS_11, state=mdps.CHAIN_ISSUE_STATE)
    quantiles = mdps.chain_quantile(LENGTH, P, GAMMA, mdps.TAUS_11, state=mdps.CHAIN_ISSUE_STATE)
    assert expectiles[-1] - expectiles[0] == pytest.approx(1.777, abs=1e-3)  # the issue's "true 1.77"
    assert quantiles[5] == pytest.approx(1.442, abs=1e-3)  # the issue's "true median 1.44"
    assert np.all(np.diff(expectiles) > 0) and np.all(np.diff(quantiles) > 0)

    nested_e = mdps.nested_expectile(LENGTH, P, GAMMA, mdps.TAUS_11, state=mdps.CHAIN_ISSUE_STATE)
    assert nested_e[-1] - nested_e[0] == pytest.approx(4.39, abs=5e-3)  # the issue's wrong 4.39
    nested_q = mdps.nested_quantile(LENGTH, P, GAMMA, mdps.TAUS_11, state=mdps.CHAIN_ISSUE_STATE)
    at_zero = mdps.TAUS_11 < 1 - P  # channels 0..7, tau up to 7.5/11 = 0.682 (the issue's 'tau <= 0.68')
    assert at_zero.sum() == 8 and np.all(nested_q[at_zero] == 0.0)
    np.testing.assert_allclose(nested_q[~at_zero], (1 - GAMMA**LENGTH) / (1 - GAMMA))


def test_nested_expectile_closed_form_matches_generic_recursion():
    tau = 0.2
    step = mdps.two_point_expectile(0.0, 1.0, P, tau)
    value = 0.0
    for state in range(LENGTH - 1, -1, -1):
        value = mdps.expectile([GAMMA * value, 1.0 + GAMMA * value], tau, weights=[1 - P, P])
        assert mdps.nested_expectile(LENGTH, P, GAMMA, tau, state) == pytest.approx(value, abs=1e-10)
    m = LENGTH - np.arange(LENGTH)
    np.testing.assert_allclose(
        mdps.nested_expectile_values(LENGTH, P, GAMMA, tau), step * (1 - GAMMA**m) / (1 - GAMMA), atol=1e-12
    )


def test_nested_expectile_at_kappa_zero_is_the_mean_value():
    for state in (0, 7, LENGTH - 1):
        mean = mdps.chain_mean(LENGTH, P, GAMMA, state)
        assert mdps.nested_expectile(LENGTH, P, GAMMA, 0.5, state) == pytest.approx(mean, abs=1e-12)
        assert mdps.asymmetric_td_value(LENGTH, P, GAMMA, 0.0, state) == pytest.approx(mean, abs=1e-12)
    # risk-averse kappa lowers the value, and it is not the expectile of the return distribution
    averse = mdps.asymmetric_td_value(LENGTH, P, GAMMA, 0.5)
    assert averse < mdps.chain_mean(LENGTH, P, GAMMA)
    assert abs(averse - mdps.chain_expectile(LENGTH, P, GAMMA, 0.25)) > 0.2


def test_bernoulli_chain_env():
    env = mdps.BernoulliChain()
    check_env(env, skip_render_check=True)
    assert env.observation_space.n == LENGTH and env.action_space.n == 1
    assert mdps.BernoulliChain(n_actions=3).action_space.n == 3

    starts = {int(env.reset(seed=seed)[0]) for seed in range(400)}
    assert starts == set(range(LENGTH))

    obs, _ = env.reset(seed=0, options={"state": 0})
    rewards, steps, terminated = [], 0, False
    while not terminated:
        previous = int(obs)
        obs, reward, terminated, truncated, _ = env.step(0)
        assert not truncated and reward in (0.0, 1.0) and env.observation_space.contains(obs)
        assert int(obs) == min(previous + 1, LENGTH - 1)
        rewards.append(reward)
        steps += 1
    assert steps == LENGTH

    env = mdps.BernoulliChain(length=3, p=P)
    total, n_steps = 0.0, 0
    env.reset(seed=5)
    for _ in range(20_000):
        _, reward, terminated, _, _ = env.step(0)
        total, n_steps = total + reward, n_steps + 1
        if terminated:
            env.reset()
    assert total / n_steps == pytest.approx(P, abs=0.015)


# ------------------------------------------------------------------------------------------------
# Risky shortcut truth
# ------------------------------------------------------------------------------------------------

RISK_SENSITIVE = [
    ("quantile", {"tau": 0.25}),
    *[("quantile", {"tau": float(tau)}) for tau in mdps.TAUS_11[:4]],  # channels 0..3 (0.045 .. 0.318)
    ("cvar", {"alpha": 0.25}),
    ("expectile", {"tau": 0.25}),
    ("expectile", {"tau": 2.5 / 11}),
    ("expectile", {"tau": 3.5 / 11}),
    ("asymmetric", {"kappa": 0.5}),
    ("nested_expectile", {"tau": 0.25}),
]


def test_shortcut_mean_prefers_risky_by_a_clear_margin():
    q = mdps.shortcut_q_values("mean")
    assert q.safe == pytest.approx(1 + 0.9 + 0.81 + 0.729)
    assert q.risky == pytest.approx(4.32672275)
    assert q.risky >= 1.1 * q.safe


@pytest.mark.parametrize(("statistic", "level"), RISK_SENSITIVE)
def test_shortcut_risk_sensitive_statistics_prefer_safe(statistic, level):
    q = mdps.shortcut_q_values(statistic, **level)
    assert q.safe == pytest.approx(3.439)  # deterministic road
    assert q.safe - q.risky >= 0.1 * abs(q.safe), (statistic, level, q)


def test_shortcut_key_numbers():
    assert mdps.shortcut_q_values("quantile", tau=0.25).risky == pytest.approx(0.56)
    assert mdps.shortcut_q_values("cvar", alpha=0.25).risky == pytest.approx(-0.736)
    assert mdps.shortcut_q_values("expectile", tau=0.25).risky == pytest.approx(2.5580724, abs=1e-6)
    assert mdps.shortcut_q_values("asymmetric", kappa=0.5).risky == pytest.approx(1.8660559, abs=1e-6)
    support, probs = mdps.shortcut_return_distribution(0, mdps.RISKY)
    np.testing.assert_allclose(support, [-1.6, 0.56, 2.504, 6.878])
    np.testing.assert_allclose(probs, [0.15, 0.1275, 0.108375, 0.614125])
    for tau in (0.25, *mdps.TAUS_11):  # no channel level on a CDF step: every quantile is unique
        lo, hi = mdps.quantile_interval(support, probs, float(tau))
        assert lo == hi


def test_shortcut_nested_quantile_is_fooled_into_risky():
    """The wrong per-channel nested quantile at tau 0.25 sees no slip (0.15 < tau per step) and prefers RISKY."""
    for tau in (0.25, 2.5 / 11, 3.5 / 11):
        q = mdps.shortcut_q_values("nested_quantile", tau=tau)
        assert q.risky == pytest.approx(6.878) and q.risky > q.safe


def test_shortcut_tables_obey_bellman_and_kappa_zero_is_the_mean():
    design, gamma = mdps.DEFAULT_SHORTCUT, mdps.SHORTCUT_GAMMA
    mean_table = mdps.shortcut_q_table("mean")
    for state in range(design.n_states):
        for action in (mdps.SAFE, mdps.RISKY):
            target = sum(
                prob * (reward + (0.0 if nxt is None else gamma * mean_table[nxt, 0]))
                for prob, reward, nxt in design.outcomes(state, action)
            )
            assert mean_table[state, action] == pytest.approx(target)
    np.testing.assert_allclose(mdps.shortcut_q_table("asymmetric", kappa=0.0), mean_table, atol=1e-10)
    np.testing.assert_allclose(mdps.shortcut_q_table("expectile", tau=0.5), mean_table, atol=1e-10)
    np.testing.assert_allclose(mean_table[1:, 0], mean_table[1:, 1])
    # two random steps on the ledge: the nested (Mihatsch-Neuneier) value differs from the return's expectile
    nested, full = mdps.shortcut_q_table("nested_expectile", tau=0.25), mdps.shortcut_q_table("expectile", tau=0.25)
    assert nested[0, mdps.RISKY] < full[0, mdps.RISKY] - 0.5
    assert nested[design.n_states - 1, 0] == pytest.approx(full[design.n_states - 1, 0])  # one step left: equal


def test_risky_shortcut_env_matches_its_exact_return_distribution():
    env = mdps.RiskyShortcut()
    check_env(env, skip_render_check=True)
    assert env.observation_space.n == 7 and env.action_space.n == 2
    assert {int(env.reset(seed=seed)[0]) for seed in range(200)} == set(range(7))
    assert int(mdps.RiskyShortcut(random_start=False).reset(seed=3)[0]) == 0

    gamma = mdps.SHORTCUT_GAMMA
    env.reset(seed=11)
    for action in (mdps.SAFE, mdps.RISKY):
        support, probs = mdps.shortcut_return_distribution(0, action)
        returns = []
        for _ in range(4000):
            obs, _ = env.reset(options={"state": 0})
            episode_return, discount, terminated, first = 0.0, 1.0, False, True
            while not terminated:
                obs, reward, terminated, truncated, _ = env.step(action if first else mdps.SAFE)
                assert env.observation_space.contains(obs) and not truncated and -5 <= reward <= 5
                episode_return, discount, first = episode_return + discount * reward, discount * gamma, False
            returns.append(episode_return)
        returns = np.round(returns, 9)
        assert set(returns) <= set(np.round(support, 9))
        frequencies = np.array([(returns == value).mean() for value in np.round(support, 9)])
        np.testing.assert_allclose(frequencies, probs, atol=0.03)


# --------------------------------------------------------------------------------------------------
# Crash loop
# --------------------------------------------------------------------------------------------------

LOOP_REWARDS = np.array([0.0, 1.0, 0.5])  # crash, then the two continuing rewards
LOOP_PROBS = np.array([0.12, 0.44, 0.44])


def test_loop_monte_carlo_returns_match_the_closed_form_mean():
    returns = mdps.loop_returns()
    assert mdps.loop_mean() == pytest.approx(0.66 / (1 - 0.9 * 0.88))
    assert returns.mean() == pytest.approx(mdps.loop_mean(), abs=4 * returns.std() / np.sqrt(returns.size))
    assert np.mean(returns == 0.0) == pytest.approx(0.12, abs=0.002)  # crash at the first step


def test_nested_fixed_point_of_plain_td_is_the_mean():
    assert mdps.nested_fixed_point(lambda d: d) == pytest.approx(mdps.loop_mean(), abs=1e-9)


def test_nested_fixed_point_without_bootstrapping_is_the_one_step_statistic():
    """gamma = 0: the value is a statistic of the one-step reward law itself, found independently:
    the expectile at (1 - kappa)/2 for asymmetric squared steps, and the minimiser of the expected
    Huber loss (scipy) for clipped steps."""
    from scipy.optimize import minimize_scalar

    kappa = 0.3
    asymmetric = mdps.nested_fixed_point(lambda d: np.where(d > 0, 1 - kappa, 1 + kappa) * d, gamma=0.0)
    assert asymmetric == pytest.approx(mdps.expectile(LOOP_REWARDS, (1 - kappa) / 2, weights=LOOP_PROBS), abs=1e-9)

    def expected_huber(value: float) -> float:
        error = np.abs(LOOP_REWARDS - value)
        return float(LOOP_PROBS @ np.where(error < 1, 0.5 * error**2, error - 0.5))

    huber = mdps.nested_fixed_point(lambda d: np.clip(d, -1, 1), gamma=0.0)
    assert huber == pytest.approx(minimize_scalar(expected_huber, bounds=(0, 1), method="bounded").x, abs=1e-5)


def test_projected_quantiles_without_bootstrapping_are_the_reward_quantiles():
    taus = mdps.channel_taus(11)
    assert mdps.loop_projected_quantiles(taus, gamma=0.0) == pytest.approx(
        mdps.quantile(LOOP_REWARDS, taus, weights=LOOP_PROBS))


def test_projected_quantiles_sit_within_a_bin_in_probability_level():
    """QR's projection with N atoms puts channel i at a value whose level in the return's law is within
    about a bin (1/N) of tau_i: P(G < q_i) <= tau_i + 2/N and P(G <= q_i) >= tau_i - 2/N (Monte Carlo
    levels, error about 0.001). Not within a bin in value: the law has atoms (0, 0.5, 1, 1.45, ...)."""
    for n in (11, 51):
        taus = mdps.channel_taus(n)
        projected = mdps.loop_projected_quantiles(taus)
        returns = mdps.loop_returns()
        below = np.searchsorted(returns, projected - 1e-9, side="left") / returns.size
        at_or_below = np.searchsorted(returns, projected + 1e-9, side="right") / returns.size
        assert np.all(below <= taus + 2 / n) and np.all(at_or_below >= taus - 2 / n), (n, below, at_or_below)


def test_crash_loop_env_draws_its_outcomes():
    env = mdps.CrashLoop()
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    rewards, crashes = [], 0
    for _ in range(20_000):
        _, reward, terminated, _, _ = env.step(0)
        crashes += terminated
        rewards.append(reward)
    assert crashes / 20_000 == pytest.approx(0.12, abs=0.01)
    assert np.mean(np.array(rewards) == 0.5) == pytest.approx(0.44, abs=0.015)
