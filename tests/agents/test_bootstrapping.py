"""Known answers under bootstrapping, learned through DopamineDQN's real ``train()``.

Tabular DQN: observations are ``Discrete(n)`` (SB3 one-hot encodes them) and ``net_arch=[]`` makes
every channel's Q linear in the one-hot: a table plus one bias per (channel, action), shared by the
states. The bias does not move the fixed point (each table entry still zeroes its own expected
gradient). Behaviour is uniform (the buffer holds every action equally often).

Data: the replay buffer holds each MDP's one-step law in exact proportions: every (state, action)
appears with its outcomes in the ratio of their probabilities (a chain step: 3 rewarded, 7 not, for
p = 0.3; a ledge step: 3 slips in 20 for 0.15). Uniform replay then samples the true law, so the
truths of ``small_mdps`` (exact enumeration) apply without sampling error in the data, and what is
tested is the rule, not the luck of the draw. ``DopamineDQN.train`` (SB3's loop with the module's
loss) runs on it in chunks; SB3's ``_on_step`` syncs the target network after each chunk
(``target_update_interval=1``). Adam with a learning rate falling linearly to 2 % of its start
damps the minibatch noise at the end. One test runs ``model.learn`` end to end on the env instead
(sampled data; its reference is the law of the sample).

Each test states its tolerance and why: minibatch noise at the final learning rate (about 0.01 to
0.03 here), and for the quantile code the finite-N projection of QR (11 quantile channels cannot
hold the chain's return law exactly; the projected fixed point is computed here in numpy).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import small_mdps
import torch
from tabular_agents import Transition, counts, fit, q_table, tabular_dqn
from threadpoolctl import threadpool_limits

from agents.dopamine_dqn import DopamineDQN, channel_targets

LENGTH, P, GAMMA = small_mdps.CHAIN_LENGTH, small_mdps.CHAIN_P, small_mdps.CHAIN_GAMMA  # 30, 0.3, 0.8
TAUS_11 = small_mdps.TAUS_11
SAFE, RISKY = small_mdps.SAFE, small_mdps.RISKY
SHORTCUT = small_mdps.DEFAULT_SHORTCUT
SHORTCUT_GAMMA = small_mdps.SHORTCUT_GAMMA  # 0.9


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """Tiny networks: on a busy 2-core machine torch's second OpenMP thread made one step on the
    30-state chain 20-35 ms instead of 1 (MKL's skinny matmuls), so these tests run with one. Through
    threadpoolctl (scikit-learn's dependency), which restores the OpenMP setting exactly afterwards:
    ``torch.set_num_threads`` cannot be undone (it also turns MKL's dynamic threading off, which made
    later tests in the session 10 times slower here)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


# ------------------------------------------------------------------------------------------------
# Tabular DQN on an exact replay buffer
# ------------------------------------------------------------------------------------------------


def chain_law(length: int = LENGTH, p: float = P, n_actions: int = 1) -> list[Transition]:
    """BernoulliChain's one-step law: from s, reward 1 w.p. p else 0, to s + 1 (the last state terminates;
    its next observation repeats it, as the env's does)."""
    law = []
    for state in range(length):
        terminated = state == length - 1
        next_state = state if terminated else state + 1
        for action in range(n_actions):
            law.append(Transition(state, action, 1.0, next_state, terminated, counts(p, 10)))
            law.append(Transition(state, action, 0.0, next_state, terminated, counts(1 - p, 10)))
    return law


def shortcut_law(design: small_mdps.ShortcutDesign = SHORTCUT) -> list[Transition]:
    """RiskyShortcut's one-step law, from ``design.outcomes`` (the function the env steps with)."""
    law = []
    for state in range(design.n_states):
        for action in (SAFE, RISKY):
            for probability, reward, next_state in design.outcomes(state, action):
                terminated = next_state is None
                law.append(Transition(state, action, reward, state if terminated else next_state, terminated,
                                      counts(probability, 20)))
    return law


def greedy_action(model: DopamineDQN, state: int) -> int:
    action, _ = model.predict(np.array([state]), deterministic=True)
    return int(action[0])


# ------------------------------------------------------------------------------------------------
# Independent references
# ------------------------------------------------------------------------------------------------


def projected_quantile_fixed_point(length: int, p: float, gamma: float, taus: np.ndarray, end: int) -> np.ndarray:
    """Tabular QR's fixed point on the chain, (length, channels): backward from the end, channel i of s
    is a tau_i-quantile of the target law {r + gamma z_j(s+1)} (r ~ Bernoulli(p), z_j the channels of
    s + 1, each with weight 1/N), the minimiser of its all-pairs pinball loss. Where tau_i hits a step of
    that law's CDF exactly, any point of ``small_mdps.quantile_interval`` minimises it; ``end`` = 0
    takes every lower end, 1 every upper end. Quantiles are monotone in the atoms, so any fixed point
    the learner can reach lies between the two (elementwise)."""
    n = len(taus)
    z = np.zeros(n)
    table = np.zeros((length, n))
    for state in range(length - 1, -1, -1):
        support = np.concatenate([gamma * z, 1.0 + gamma * z]) if state < length - 1 else np.array([0.0, 1.0])
        weights = (np.concatenate([np.full(n, (1 - p) / n), np.full(n, p / n)]) if state < length - 1
                   else np.array([1 - p, p]))
        z = np.array([small_mdps.quantile_interval(support, weights, tau)[end] for tau in taus])
        table[state] = z
    return table


# ------------------------------------------------------------------------------------------------
# Bernoulli chain (length 30, p 0.3, gamma 0.8): state 0's return is learned over 30 bootstraps
# ------------------------------------------------------------------------------------------------


def test_chain_quantile_channels_learn_the_return_quantiles():
    """Quantile code, ``loss: absolute``, 11 channels, all pairs: the channels at state 0 settle at the
    return's quantiles (up to QR's 11-atom projection), not at the nested one-step quantiles of the old
    own-channel rule (channels with tau <= 0.68 all at 0).

    Tolerances: outside the projected fixed-point bracket (numpy) by at most 0.06 at state 0 and 0.08
    at any state (minibatch noise; measured at most 0.034 and 0.045, seeds 0-2); channels 1-10 within
    0.2 of the true quantiles (the bracket itself lies within 0.19 of them; measured at most 0.084);
    channel 0 (tau 0.045) is 0 at the projected fixed point, not its true 0.317: the 11-atom projection
    keeps an atom at 0 (every reward missed) of mass at least 0.7/11 > 0.045 at every state, while the
    true P(return = 0) is 0.7^30; the median channel within 0.12 of 1.442 (measured 1.451-1.464); the
    channel average (the acting mean) within 0.15 of the mean 1.498 (bracket 1.33-1.56; measured
    1.436-1.455)."""
    model = tabular_dqn(small_mdps.BernoulliChain(), {"type": "distributional", "code": "quantile",
                                                      "loss": "absolute", "n_channels": 11}, chain_law(), gamma=GAMMA)
    fit(model, 2000)
    learned = q_table(model, LENGTH)[:, :, 0]
    low = projected_quantile_fixed_point(LENGTH, P, GAMMA, TAUS_11, end=0)
    high = projected_quantile_fixed_point(LENGTH, P, GAMMA, TAUS_11, end=1)
    outside = np.maximum(low - learned, 0) + np.maximum(learned - high, 0)
    assert outside[0].max() <= 0.06 and outside.max() <= 0.08, (np.round(learned[0], 3), np.round(low[0], 3))

    true = small_mdps.chain_quantile(LENGTH, P, GAMMA, TAUS_11)
    assert learned[0, 1:] == pytest.approx(true[1:], abs=0.2)
    assert abs(learned[0, 0] - low[0, 0]) <= 0.06 and low[0, 0] == high[0, 0] == 0.0
    assert learned[0, 5] == pytest.approx(1.442, abs=0.12)
    nested = small_mdps.nested_quantile(LENGTH, P, GAMMA, TAUS_11)
    assert np.all(nested[:8] == 0.0) and np.all(learned[0, 1:8] > 0.5)  # the old rule's 0s are gone
    mean_channel = learned[0] @ np.full(11, 1 / 11)
    assert mean_channel == pytest.approx(small_mdps.chain_mean(LENGTH, P, GAMMA), abs=0.15)
    # The module's acting statistic is that average, and the policy acts on it.
    with torch.no_grad():
        acting = model.q_net(torch.tensor([0])).numpy()[0, 0]
    assert acting == pytest.approx(mean_channel, abs=1e-5)


def test_chain_expectile_channels_learn_the_return_expectiles():
    """Expectile code, ``loss: squared``, 11 channels, samples imputed from the next state's expectiles:
    the channels at state 0 settle at the return's expectiles (spread 1.777), not at the nested one-step
    expectiles (spread 4.39). Tolerance 0.06 per channel: Rowland et al.'s imputation makes the tabular
    fixed point inexact by up to 0.03 here (its top channel 2.429 against 2.460; checked offline), plus
    minibatch noise (measured at most 0.030, seeds 0-2); spread within 0.08 of 1.777 (measured
    1.739-1.743). The tau = 0.5 channel is plain TD: the mean 1.498, within 0.04 (measured 1.504-1.507)."""
    model = tabular_dqn(small_mdps.BernoulliChain(), {"type": "distributional", "code": "expectile",
                                                      "loss": "squared", "n_channels": 11}, chain_law(), gamma=GAMMA)
    fit(model, 2000)
    learned = q_table(model, LENGTH)[0, :, 0]
    true = small_mdps.chain_expectile(LENGTH, P, GAMMA, TAUS_11)
    assert learned == pytest.approx(true, abs=0.06)
    spread = learned[-1] - learned[0]
    assert spread == pytest.approx(true[-1] - true[0], abs=0.08)
    nested = small_mdps.nested_expectile(LENGTH, P, GAMMA, TAUS_11)
    assert nested[-1] - nested[0] > 4.3  # what each channel bootstrapping from itself would learn
    assert learned[5] == pytest.approx(small_mdps.chain_mean(LENGTH, P, GAMMA), abs=0.04)


def test_chain_asymmetric_learns_the_nested_value_not_the_return_expectile():
    """``asymmetric`` kappa 0.5, ``loss: squared``: V settles at Mihatsch & Neuneier's nested value
    (0.624 at state 0), not at the return's expectile at (1 - kappa) / 2 = 0.25 (1.170). Tolerance 0.03
    at every state (minibatch noise at the final learning rate; measured at most 0.018, seeds 0-2, and
    0.619-0.629 at state 0)."""
    kappa = 0.5
    model = tabular_dqn(small_mdps.BernoulliChain(), {"type": "asymmetric", "kappa": kappa, "loss": "squared"},
                        chain_law(), gamma=GAMMA)
    fit(model, 1500)
    learned = q_table(model, LENGTH)[:, 0, 0]
    nested = small_mdps.nested_expectile_values(LENGTH, P, GAMMA, (1 - kappa) / 2)
    assert learned == pytest.approx(nested, abs=0.03)
    assert learned[0] == pytest.approx(small_mdps.asymmetric_td_value(LENGTH, P, GAMMA, kappa), abs=0.03)
    return_expectile = small_mdps.chain_expectile(LENGTH, P, GAMMA, (1 - kappa) / 2)
    assert return_expectile - learned[0] > 0.5


def test_chain_standard_learns_the_mean_end_to_end():
    """``standard`` (SB3's Huber loss; the chain's TD errors stay within +-1 near the fixed point, so it
    is the mean) through ``model.learn`` on the env: sampled transitions, SB3's own target-update
    schedule. A chain of length 8 so that 3000 env steps visit state 0 often. Reference: the
    discounted value of the sampled law (each state's empirical reward frequency in the replay
    buffer), within 0.05 at every state (minibatch noise; measured at most 0.020, seeds 0-2); the true
    mean within 0.15 (sampling error of the data, about 0.05 per state; measured at most 0.054)."""
    length = 8
    env = small_mdps.BernoulliChain(length=length)
    model = DopamineDQN("MlpPolicy", env, policy_kwargs={"net_arch": []}, neuro={"dopamine": {"type": "standard"}},
                        gamma=GAMMA, learning_rate=lambda progress: 0.05 * max(2 * progress, 0.02),
                        buffer_size=3000, learning_starts=1500, batch_size=256, train_freq=1, gradient_steps=2,
                        target_update_interval=5, exploration_initial_eps=1.0, exploration_final_eps=1.0,
                        seed=0, device="cpu")
    model.learn(3000)
    buffer = model.replay_buffer
    states, rewards = buffer.observations[: buffer.size(), 0, 0], buffer.rewards[: buffer.size(), 0]
    sampled = np.zeros(length + 1)
    for state in range(length - 1, -1, -1):
        sampled[state] = rewards[states == state].mean() + GAMMA * sampled[state + 1]
    learned = q_table(model, length)[:, 0, 0]
    assert learned == pytest.approx(sampled[:length], abs=0.05)
    true = [small_mdps.chain_mean(length, P, GAMMA, state) for state in range(length)]
    assert learned == pytest.approx(true, abs=0.15)


GO, QUIT = 0, 1
QUIT_REWARD = 0.1


def quit_chain_law() -> list[Transition]:
    """The chain with a second action at every state: QUIT ends the episode at once with reward 0.1
    (terminating), GO is the chain step (continuing; terminating from the last state). GO is better by
    at least 0.2 everywhere, so DQN's max over the next actions picks GO without maximisation bias
    (two actions of equal value would bias every bootstrap upward by their noise)."""
    law = chain_law(n_actions=1)  # GO is action 0
    return [*law, *(Transition(state, QUIT, QUIT_REWARD, state, True, 10) for state in range(LENGTH))]


def test_average_reward_values_are_discounted_values_minus_the_rate_over_one_minus_gamma():
    """``average_reward`` (eta 1e-4, gamma 0.8, ``loss: squared``): the rate settles at the mean reward
    of the replayed transitions (0.2 here; within 0.01, its noise at eta 1e-4 being about 0.003;
    measured 0.1995-0.2018, seeds 0-2); every Q(s, a), terminating or continuing, settles at its
    discounted value minus rate / (1 - gamma), and the gap between QUIT (terminates) and GO (continues)
    is standard TD's, the discounted gap, at every state. Tolerance 0.08 at every state (the rate's
    noise times 1 / (1 - gamma) = 5, plus minibatch noise; measured at most 0.041 on values and 0.051
    on gaps). Without the terminal correction (a terminating target r - rate) QUIT would sit higher by
    rate * gamma / (1 - gamma) = 0.8 and the gap at state s would shrink by 0.8 (1 - 0.8^(29 - s)) (GO's
    last step terminates too): by 0.8 at state 0."""
    law = quit_chain_law()
    model = tabular_dqn(small_mdps.BernoulliChain(n_actions=2), {"type": "average_reward", "eta": 1e-4,
                                                                  "loss": "squared"}, law, gamma=GAMMA)
    fit(model, 2000)
    rate = model.dopamine.reward_rate
    replayed_mean = sum(t.reward * t.count for t in law) / sum(t.count for t in law)
    assert rate == pytest.approx(replayed_mean, abs=0.01)

    learned = q_table(model, LENGTH)[:, 0, :]
    discounted_go = np.array([small_mdps.chain_mean(LENGTH, P, GAMMA, state) for state in range(LENGTH)])
    offset = rate / (1 - GAMMA)
    assert learned[:, GO] == pytest.approx(discounted_go - offset, abs=0.08)
    assert learned[:, QUIT] == pytest.approx(QUIT_REWARD - offset, abs=0.08)
    assert learned[:, GO] - learned[:, QUIT] == pytest.approx(discounted_go - QUIT_REWARD, abs=0.08)


# ------------------------------------------------------------------------------------------------
# Risky shortcut (gamma 0.9): the mean takes the ledge, every risk-sensitive statistic the road
# ------------------------------------------------------------------------------------------------


def shortcut_channel_quantiles(action: int) -> np.ndarray:
    """True return quantiles of (start, action) at the 11 channel levels (unique: no level is on a step
    of the CDF; the projected QR fixed point equals them here, checked offline)."""
    support, probs = small_mdps.shortcut_return_distribution(0, action)
    return np.array([small_mdps.quantile(support, tau, weights=probs) for tau in TAUS_11])


def quantile_code_reference(statistic: str) -> tuple[float, float]:
    """(safe, risky) of the acting statistic the quantile code computes from its 11 channels, from the
    statistic's definition: the channel average (mean), linear interpolation between the channels
    either side of 0.25 (tau=0.25), the mean of the lowest quarter of the 11 atoms of mass 1/11
    (cvar=0.25, by ``small_mdps.cvar``)."""
    if statistic == "mean":
        weights = np.full(11, 1 / 11)
    elif statistic == "tau=0.25":
        upper = int(np.searchsorted(TAUS_11, 0.25))
        share = (0.25 - TAUS_11[upper - 1]) / (TAUS_11[upper] - TAUS_11[upper - 1])
        weights = np.zeros(11)
        weights[upper - 1], weights[upper] = 1 - share, share
    else:
        return tuple(float(small_mdps.cvar(shortcut_channel_quantiles(action), 0.25)) for action in (SAFE, RISKY))
    return float(shortcut_channel_quantiles(SAFE) @ weights), float(shortcut_channel_quantiles(RISKY) @ weights)


class ShortcutCase(NamedTuple):
    module: dict
    action: int  # the greedy action expected at the start state
    reference: tuple[float, float]  # (safe, risky) of the acting statistic
    tolerance: float
    reason: str  # for the tolerance
    wrong: float | None = None  # risky under the rule a wrong reading would give, at least 0.4 away


QUANTILE = {"type": "distributional", "code": "quantile", "loss": "absolute", "n_channels": 11}
MAX_BIAS = ("DQN's max over the two equal-valued actions at ledge states biases each bootstrap up by "
            "their noise (measured +0.02 to +0.08 on risky, seeds 0-2)")
SHORTCUT_CASES = {
    "standard": ShortcutCase({"type": "standard", "loss": "squared"}, RISKY, small_mdps.shortcut_q_values("mean"),
                             0.12, f"the mean; {MAX_BIAS}"),
    "quantile-mean": ShortcutCase({**QUANTILE}, RISKY, quantile_code_reference("mean"), 0.05,
                                  "the 11 channels' average, 4.365 (true mean 4.327); the projected QR fixed "
                                  "point is the true channel quantiles here; noise (measured < 0.01)"),
    "quantile-tau": ShortcutCase({**QUANTILE, "acting": "tau=0.25"}, SAFE, quantile_code_reference("tau=0.25"), 0.05,
                                 "interpolation of channels 2.5/11 and 3.5/11, 1.046 (the true 0.25-quantile "
                                 "is 0.56); noise (measured < 0.01)",
                                 wrong=small_mdps.shortcut_q_values("nested_quantile", tau=0.25).risky),
    "quantile-cvar": ShortcutCase({**QUANTILE, "acting": "cvar=0.25"}, SAFE, quantile_code_reference("cvar=0.25"),
                                  0.05, "exact CVaR of the 11 atoms, -1.011 (the true CVaR 0.25 is -0.736); "
                                  "noise (measured < 0.01)"),
    "expectile-tau": ShortcutCase({"type": "distributional", "code": "expectile", "loss": "squared",
                                   "taus": [0.1, 0.25, 0.5, 0.75, 0.9], "acting": "tau=0.25"}, SAFE,
                                  small_mdps.shortcut_q_values("expectile", tau=0.25), 0.2,
                                  "the return's 0.25-expectile, 2.558; imputing from 5 expectiles puts the "
                                  f"tabular fixed point at 2.599 (offline), and {MAX_BIAS}",
                                  wrong=small_mdps.shortcut_q_values("nested_expectile", tau=0.25).risky),
    "asymmetric": ShortcutCase({"type": "asymmetric", "kappa": 0.5, "loss": "squared"}, SAFE,
                               small_mdps.shortcut_q_values("asymmetric", kappa=0.5), 0.12,
                               f"the nested expectile at 0.25, 1.866; {MAX_BIAS}",
                               wrong=small_mdps.shortcut_q_values("expectile", tau=0.25).risky),
}


@pytest.mark.parametrize("case", list(SHORTCUT_CASES))
def test_risky_shortcut_mean_takes_the_ledge_risk_sensitive_statistics_the_road(case):
    """After training on the exact law, the greedy action at the start state (``model.predict``,
    deterministic), and the acting statistic of both actions against its reference (tolerance and
    reason per case in SHORTCUT_CASES). SAFE's return is deterministic (3.439); the mean prefers RISKY
    by 0.89, every risk-sensitive statistic SAFE by at least 0.8. Where a wrong reading of the rule
    (nested one-step statistics; for ``asymmetric``, the return's expectile) gives another value, the
    learned one is at least 0.4 from it."""
    spec = SHORTCUT_CASES[case]
    model = tabular_dqn(small_mdps.RiskyShortcut(), spec.module, shortcut_law(), gamma=SHORTCUT_GAMMA)
    fit(model, 1000)
    with torch.no_grad():
        acting = model.q_net(torch.tensor([0])).numpy()[0].astype(np.float64)
    assert acting == pytest.approx(list(spec.reference), abs=spec.tolerance)
    assert greedy_action(model, 0) == spec.action
    if spec.wrong is not None:
        assert abs(acting[RISKY] - spec.wrong) >= 0.4


# ------------------------------------------------------------------------------------------------
# DQN targets and all-pairs loss against numpy
# ------------------------------------------------------------------------------------------------

TAUS_5 = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
ACTING_WEIGHTS_5 = {  # from each statistic's definition over the channels at TAUS_5
    "mean": np.full(5, 0.2),  # quantile code: the channel average
    "tau=0.3": np.array([0, 1, 0, 0, 0.0]),
    "tau=0.6": np.array([0, 0, 0.5, 0.5, 0]),  # halfway between 0.5 and 0.7
    "cvar=0.4": np.array([0.5, 0.5, 0, 0, 0]),  # channels with tau < 0.4
}


def random_batch(seed: int, batch: int, n_states: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    next_obs = torch.randint(n_states, (batch,), generator=generator)
    rewards = torch.randn(batch, 1, generator=generator)
    dones = (torch.rand(batch, 1, generator=generator) < 0.3).float()
    discounts = GAMMA ** torch.randint(1, 4, (batch, 1), generator=generator).float()  # n-step returns
    return next_obs, rewards, dones, discounts


@pytest.mark.parametrize("acting", list(ACTING_WEIGHTS_5))
@pytest.mark.parametrize("n_step_discounts", [False, True])
def test_channel_targets_bootstrap_every_channel_at_the_acting_statistics_greedy_action(acting, n_step_discounts):
    """``channel_targets`` against numpy: the greedy next action maximises the acting statistic (weights
    from its definition), and every channel's target is r + (1 - done) discount Q_c(s', a*). The
    network's (batch, channels, actions) output is the input of both; tolerance 1e-5 (float32)."""
    model = DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(length=10, n_actions=4),
                        neuro={"dopamine": {"type": "distributional", "code": "quantile", "n_channels": 5,
                                            "acting": acting}},
                        policy_kwargs={"net_arch": [16]}, gamma=GAMMA, seed=1, device="cpu")
    with torch.no_grad():
        for parameter in model.q_net_target.parameters():
            parameter.normal_(generator=torch.Generator().manual_seed(2))  # spread-out values
    next_obs, rewards, dones, discounts = random_batch(3, 64, 10)
    discount = discounts if n_step_discounts else GAMMA
    with torch.no_grad():
        next_q = model.q_net_target.all_channels(next_obs).numpy().astype(np.float64)  # input: (batch, 5, 4)
        targets = channel_targets(model.q_net_target, model.dopamine, next_obs, rewards, dones, discount, GAMMA)

    statistic = np.einsum("bca,c->ba", next_q, ACTING_WEIGHTS_5[acting])
    greedy = statistic.argmax(axis=1)
    bootstrapped = next_q[np.arange(64), :, greedy]  # (batch, 5)
    discount_np = discounts.numpy() if n_step_discounts else GAMMA
    expected = rewards.numpy() + (1 - dones.numpy()) * discount_np * bootstrapped
    assert targets.numpy() == pytest.approx(expected, abs=1e-5)
    assert (next_q.argmax(axis=2) != greedy[:, None]).any()  # a per-channel max would differ


def test_channel_targets_subtract_the_average_reward_baseline():
    """``average_reward``: r_bar from continuing targets, r_bar / (1 - gamma) from terminating ones
    (tolerance 1e-5, float32)."""
    model = DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(length=10, n_actions=4),
                        neuro={"dopamine": {"type": "average_reward", "initial_rate": 0.4}},
                        policy_kwargs={"net_arch": [16]}, gamma=GAMMA, seed=1, device="cpu")
    next_obs, rewards, dones, _ = random_batch(4, 64, 10)
    with torch.no_grad():
        next_q = model.q_net_target.all_channels(next_obs).numpy().astype(np.float64)[:, 0]
        targets = channel_targets(model.q_net_target, model.dopamine, next_obs, rewards, dones, GAMMA, GAMMA)
    d = dones.numpy()[:, 0]
    baseline = np.where(d == 1, 0.4 / (1 - GAMMA), 0.4)
    expected = rewards.numpy()[:, 0] + (1 - d) * GAMMA * next_q.max(axis=1) - baseline
    assert targets.numpy()[:, 0] == pytest.approx(expected, abs=1e-5)


def numpy_all_pairs(current: np.ndarray, samples: np.ndarray, taus: np.ndarray):
    """QR-DQN's all-pairs quantile loss: mean over the batch, sum over channels i, mean over samples j of
    |tau_i - 1{d_ij < 0}| * 2 * |d_ij|, d_ij = z_j - V_i; with the per-channel signals and errors."""
    d = samples[:, None, :] - current[:, :, None]  # (batch, i, j)
    gains = np.where(d > 0, 2 * taus[None, :, None], 2 * (1 - taus[None, :, None]))
    per_pair, shaped = np.abs(d), np.sign(d)
    value = (gains * per_pair).mean(axis=2).sum(axis=1).mean()
    signal = (gains * shaped).mean(axis=2)
    return value, signal, samples.mean(axis=1, keepdims=True) - current


def test_quantile_dqn_loss_is_the_all_pairs_quantile_loss():
    """``dqn_loss`` of (current, per-channel targets) for the quantile code against numpy: the loss
    value, its gradient in the current values (-signal / batch), the logged signal and TD error."""
    model = DopamineDQN("MlpPolicy", small_mdps.BernoulliChain(length=10, n_actions=4),
                        neuro={"dopamine": {"type": "distributional", "code": "quantile", "n_channels": 5,
                                            "loss": "absolute"}}, device="cpu")
    generator = torch.Generator().manual_seed(5)
    current = (1.5 * torch.randn(32, 5, generator=generator, dtype=torch.float64)).requires_grad_()
    targets = 1.5 * torch.randn(32, 5, generator=generator, dtype=torch.float64)
    value, td_error, signal = model.dopamine.dqn_loss(current, targets)
    value.backward()
    expected_value, expected_signal, expected_error = numpy_all_pairs(current.detach().numpy(), targets.numpy(),
                                                                      TAUS_5)
    # float64 inputs; the module keeps its taus in float32 (2 * 0.1 = 0.2000000030), hence 1e-6
    assert float(value.detach()) == pytest.approx(expected_value, rel=1e-6)
    assert signal.numpy() == pytest.approx(expected_signal, abs=1e-6)
    assert td_error.numpy() == pytest.approx(expected_error, abs=1e-9)
    assert current.grad.numpy() == pytest.approx(-expected_signal / 32, abs=1e-6)
