"""Small MDPs with known answers, for testing dopamine TD-error modules under bootstrapping.

Everything here is independent numpy/scipy truth (exact enumeration / dynamic programming over return
distributions, or Monte Carlo); nothing imports the repository's ``neuro/`` or ``agents/`` code.

Two environments:

* :class:`BernoulliChain` -- a terminating chain with Bernoulli rewards (the return distribution of a
  long sum of discounted coin flips, learned by bootstrapping over ``length`` steps).
* :class:`RiskyShortcut` -- a start state with a SAFE road and a RISKY ledge shortcut; the mean prefers the
  shortcut, every risk-sensitive statistic prefers the road.

Conventions used throughout (also for the statistics helpers):

* ``quantile``: the lower quantile ``F^{-1}(tau) = inf{x : F(x) >= tau}`` (numpy's ``inverted_cdf``).
  Quantile regression's pinball loss for a discrete distribution is minimised by *any* point of the
  interval ``[lo, hi]`` returned by :func:`quantile_interval`; it is a single point unless ``tau`` equals a
  cumulative probability of the step CDF exactly.
* ``expectile``: the root ``e`` of ``sum w (tau (x - e)_+ - (1 - tau) (e - x)_+) = 0``; ``expectile(., 0.5)``
  is the mean.
* ``cvar(., alpha)``: the mean of the lowest ``alpha`` fraction of the distribution (lower tail,
  ``(1/alpha) * integral_0^alpha F^{-1}(u) du``; an atom straddling ``alpha`` counts fractionally).
* "nested" statistics: the fixed point of a *one-step* rule ``V(s) = stat[r + gamma V(s')]`` where ``stat``
  is taken over the one-step randomness only, by backward recursion from the terminal (``V = 0`` there).
  The nested expectile at ``tau = (1 - kappa) / 2`` is the value Mihatsch & Neuneier (2002) risk-sensitive
  ("asymmetric") TD with parameter ``kappa`` converges to. It is NOT the expectile of the return
  distribution, and per-channel nested statistics are exactly what a broken distributional TD rule
  (each channel bootstrapping from its own channel) learns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from gymnasium import spaces
from scipy.optimize import brentq

ArrayLike = float | Sequence[float] | np.ndarray

_CUMULATIVE_TOLERANCE = 1e-12  # cumulative probabilities this close to tau count as equal (step-CDF ties)


def channel_taus(n_channels: int) -> np.ndarray:
    """Midpoint levels ``(i + 0.5) / n`` of ``n`` quantile/expectile channels (``n = 11``: 0.045 ... 0.955)."""
    return (np.arange(n_channels) + 0.5) / n_channels


TAUS_11 = channel_taus(11)


# --------------------------------------------------------------------------------------------------
# Statistics of a (weighted) sample or a discrete distribution
# --------------------------------------------------------------------------------------------------


def _map_levels(levels: ArrayLike, fn: Callable[[float], float]) -> float | np.ndarray:
    """Apply ``fn`` to a scalar level (returns a float) or to each of an array of levels (returns an array)."""
    if np.ndim(levels) == 0:
        return float(fn(float(levels)))
    return np.array([fn(float(level)) for level in np.asarray(levels, dtype=float).ravel()]).reshape(np.shape(levels))


def _sorted_distribution(values: ArrayLike, weights: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted support and normalised probabilities of a sample (``weights=None``) or a distribution."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("empty distribution")
    if weights is None:
        support, counts = np.unique(values, return_counts=True)
        return support, counts / values.size
    weights = np.asarray(weights, dtype=float).ravel()
    if weights.shape != values.shape or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError("weights must be non-negative, with one per value and a positive sum")
    support, inverse = np.unique(values, return_inverse=True)
    probs = np.bincount(inverse, weights=weights, minlength=support.size)
    return support, probs / probs.sum()


def expectile(values: ArrayLike, tau: ArrayLike, weights: ArrayLike | None = None) -> float | np.ndarray:
    """Expectile(s) of a sample or weighted distribution: brentq on the first-order condition.

    Solves ``sum w (tau (x - e)_+ - (1 - tau) (e - x)_+) = 0`` for ``e`` in ``[min x, max x]``.
    ``tau`` may be a scalar (float back) or an array (array back).
    """
    support, probs = _sorted_distribution(values, weights)

    def one(level: float) -> float:
        if not 0.0 < level < 1.0:
            raise ValueError(f"expectile level must lie in (0, 1), got {level}")
        if support[0] == support[-1]:
            return float(support[0])

        def first_order_condition(e: float) -> float:
            above = np.maximum(support - e, 0.0)
            below = np.maximum(e - support, 0.0)
            return float(np.sum(probs * (level * above - (1.0 - level) * below)))

        return brentq(first_order_condition, support[0], support[-1], xtol=1e-13, rtol=1e-14, maxiter=500)

    return _map_levels(tau, one)


def quantile(samples: ArrayLike, tau: ArrayLike, weights: ArrayLike | None = None) -> float | np.ndarray:
    """Lower quantile(s) ``inf{x : F(x) >= tau}`` of a sample or weighted distribution (numpy's ``inverted_cdf``)."""
    support, probs = _sorted_distribution(samples, weights)
    cumulative = np.cumsum(probs)

    def one(level: float) -> float:
        if not 0.0 < level <= 1.0:
            raise ValueError(f"quantile level must lie in (0, 1], got {level}")
        index = int(np.searchsorted(cumulative, level - _CUMULATIVE_TOLERANCE, side="left"))
        return float(support[min(index, support.size - 1)])

    return _map_levels(tau, one)


def quantile_interval(samples_or_support: ArrayLike, probs: ArrayLike | None, tau: float) -> tuple[float, float]:
    """The interval ``[lo, hi]`` of minimisers of the pinball loss ``E[rho_tau(X - q)]`` for a discrete law.

    ``lo`` is the lower quantile (:func:`quantile`). If ``tau`` equals a cumulative probability ``F(lo)``
    exactly (within 1e-12) the loss is flat between ``lo`` and the next support point, which is ``hi``;
    otherwise ``hi == lo``. ``probs=None`` treats the values as an equally weighted sample.
    """
    if not 0.0 < tau < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {tau}")
    support, weights = _sorted_distribution(samples_or_support, probs)
    cumulative = np.cumsum(weights)
    index = min(int(np.searchsorted(cumulative, tau - _CUMULATIVE_TOLERANCE, side="left")), support.size - 1)
    lower = float(support[index])
    if abs(cumulative[index] - tau) <= _CUMULATIVE_TOLERANCE and index + 1 < support.size:
        return lower, float(support[index + 1])
    return lower, lower


def cvar(samples: ArrayLike, alpha: ArrayLike, weights: ArrayLike | None = None) -> float | np.ndarray:
    """Lower-tail CVaR: the mean of the lowest ``alpha`` fraction (``(1/alpha) int_0^alpha F^{-1}(u) du``)."""
    support, probs = _sorted_distribution(samples, weights)
    mass_below = np.cumsum(probs) - probs

    def one(level: float) -> float:
        if not 0.0 < level <= 1.0:
            raise ValueError(f"CVaR level must lie in (0, 1], got {level}")
        taken = np.clip(level - mass_below, 0.0, probs)
        return float(np.sum(taken * support) / level)

    return _map_levels(alpha, one)


def two_point_expectile(low: float, high: float, prob_high: float, tau: float) -> float:
    """Closed-form expectile of ``{low w.p. 1 - prob_high, high w.p. prob_high}``.

    ``e = low + (high - low) * tau q / (tau q + (1 - tau)(1 - q))`` with ``q = prob_high``.
    """
    weight_up = tau * prob_high
    weight_down = (1.0 - tau) * (1.0 - prob_high)
    return low + (high - low) * weight_up / (weight_up + weight_down)


# --------------------------------------------------------------------------------------------------
# 1. Bernoulli chain
# --------------------------------------------------------------------------------------------------

CHAIN_LENGTH = 30
CHAIN_P = 0.3
CHAIN_GAMMA = 0.8


class BernoulliChain(gymnasium.Env):
    """States ``0 .. length-1``; every step pays a Bernoulli(``p``) reward (0.0 or 1.0) and moves ``s -> s+1``.

    The step from state ``length - 1`` terminates (``terminated=True``); its observation is then
    ``length - 1`` again (never bootstrapped from). All ``n_actions`` actions are identical, so a one-hot
    Q-network with ``net_arch=[]`` is tabular. ``reset`` starts in a uniformly random state (from
    ``self.np_random``) so a replay buffer covers every state; ``random_start=False`` or
    ``reset(options={"state": s})`` starts elsewhere. The return from ``s`` is
    ``sum_{k=0}^{length-1-s} gamma^k B_k``, ``B_k`` i.i.d. Bernoulli(p).
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = CHAIN_LENGTH, p: float = CHAIN_P, n_actions: int = 1, random_start: bool = True):
        if length < 1 or not 0.0 <= p <= 1.0 or n_actions < 1:
            raise ValueError("need length >= 1, 0 <= p <= 1 and n_actions >= 1")
        self.length = length
        self.p = p
        self.random_start = random_start
        self.observation_space = spaces.Discrete(length)
        self.action_space = spaces.Discrete(n_actions)
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.int64, dict]:
        super().reset(seed=seed)
        if options is not None and "state" in options:
            self.state = int(options["state"])
        elif self.random_start:
            self.state = int(self.np_random.integers(self.length))
        else:
            self.state = 0
        return np.int64(self.state), {}

    def step(self, action: Any) -> tuple[np.int64, float, bool, bool, dict]:
        reward = float(self.np_random.random() < self.p)
        terminated = self.state == self.length - 1
        if not terminated:
            self.state += 1
        return np.int64(self.state), reward, terminated, False, {}


def chain_steps_left(length: int, state: int) -> int:
    """Number of rewards still to come from ``state`` (including the step out of it)."""
    if not 0 <= state < length:
        raise ValueError(f"state {state} outside 0..{length - 1}")
    return length - state


def chain_mean(length: int, p: float, gamma: float, state: int = 0) -> float:
    """Exact mean return from ``state``: ``p (1 - gamma^m) / (1 - gamma)``, ``m = length - state``."""
    m = chain_steps_left(length, state)
    return p * m if gamma == 1.0 else p * (1.0 - gamma**m) / (1.0 - gamma)


def chain_variance(length: int, p: float, gamma: float, state: int = 0) -> float:
    """Exact variance of the return from ``state``: ``p (1 - p) sum_k gamma^{2k}``."""
    m = chain_steps_left(length, state)
    return p * (1.0 - p) * float(np.sum(gamma ** (2.0 * np.arange(m))))


def chain_returns(length: int, p: float, gamma: float, state: int = 0, n: int = 10**6, seed: int = 0) -> np.ndarray:
    """Monte Carlo: ``n`` returns from ``state``, ``sum_k gamma^k B_k`` with ``numpy.random.default_rng(seed)``."""
    m = chain_steps_left(length, state)
    rng = np.random.default_rng(seed)
    returns = np.zeros(n)
    for k in range(m):
        returns += gamma**k * (rng.random(n) < p)
    return returns


def chain_return_support(length: int, p: float, gamma: float, state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact return distribution from ``state`` as (support, probs) by enumerating all ``2^m`` reward sequences.

    Only for short tails (``m = length - state <= 20``); use the ``chain_*`` exact statistics otherwise.
    """
    m = chain_steps_left(length, state)
    if m > 20:
        raise ValueError(f"{m} steps left: 2^{m} outcomes is too many to enumerate; use chain_quantile/chain_expectile")
    values, probs = _bernoulli_sums(gamma ** np.arange(m), p)
    return _sorted_distribution(values, probs)


def _bernoulli_sums(coefficients: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """All ``2^n`` values of ``sum_k c_k B_k`` with their probabilities (unsorted)."""
    n = coefficients.size
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    ones = bits.sum(axis=1)
    return bits @ coefficients, p**ones * (1.0 - p) ** (n - ones)


@dataclass(frozen=True)
class _SplitChainReturn:
    """The chain return ``X = H + T`` split into two independent halves, each enumerated exactly.

    ``H`` sums the first ``m // 2`` discounted coins, ``T`` the rest; with ``2^15`` atoms per half for
    ``m = 30``, the CDF and the partial moments of ``X`` are exact sums over ``H`` of closed-form sums over the
    sorted ``T`` (prefix sums + ``searchsorted``), without ever listing the ``2^30`` atoms of ``X``.
    """

    head_values: np.ndarray
    head_probs: np.ndarray
    tail_sorted: np.ndarray
    tail_cdf: np.ndarray  # P(T <= tail_sorted[j])
    tail_mass_above: np.ndarray  # P(T > tail_sorted[j - 1]) for j = 0..N (index N: 0)
    tail_moment_above: np.ndarray  # E[T; T > tail_sorted[j - 1]]
    mean: float
    maximum: float

    @classmethod
    def build(cls, length: int, p: float, gamma: float, state: int) -> _SplitChainReturn:
        m = chain_steps_left(length, state)
        if m > 40:
            raise ValueError("exact chain statistics support at most 40 steps")
        coefficients = gamma ** np.arange(m, dtype=float)
        head_values, head_probs = _bernoulli_sums(coefficients[: m // 2], p)
        tail_values, tail_probs = _bernoulli_sums(coefficients[m // 2 :], p)
        order = np.argsort(tail_values, kind="stable")
        tail_sorted, tail_probs = tail_values[order], tail_probs[order]
        suffix_mass = np.concatenate([np.cumsum(tail_probs[::-1])[::-1], [0.0]])
        suffix_moment = np.concatenate([np.cumsum((tail_probs * tail_sorted)[::-1])[::-1], [0.0]])
        return cls(
            head_values=head_values,
            head_probs=head_probs,
            tail_sorted=tail_sorted,
            tail_cdf=np.cumsum(tail_probs),
            tail_mass_above=suffix_mass,
            tail_moment_above=suffix_moment,
            mean=chain_mean(length, p, gamma, state),
            maximum=float(coefficients.sum()),
        )

    def cdf(self, x: float) -> float:
        """``P(X <= x)``."""
        index = np.searchsorted(self.tail_sorted, x - self.head_values, side="right")
        tail_cdf = np.where(index > 0, self.tail_cdf[np.maximum(index - 1, 0)], 0.0)
        return float(np.sum(self.head_probs * tail_cdf))

    def upper_partial_moment(self, e: float) -> float:
        """``E[(X - e)_+]``."""
        index = np.searchsorted(self.tail_sorted, e - self.head_values, side="right")
        per_head = (self.head_values - e) * self.tail_mass_above[index] + self.tail_moment_above[index]
        return float(np.sum(self.head_probs * per_head))

    def expectile(self, tau: float) -> float:
        def first_order_condition(e: float) -> float:
            above = self.upper_partial_moment(e)
            below = above - (self.mean - e)  # E[(e - X)_+] = E[(X - e)_+] - E[X - e]
            return tau * above - (1.0 - tau) * below

        return brentq(first_order_condition, 0.0, self.maximum, xtol=1e-13, rtol=1e-14, maxiter=500)

    def quantile(self, tau: float) -> float:
        low, high = -1e-9, self.maximum  # F(low) = 0 < tau <= F(high) = 1
        for _ in range(200):
            middle = 0.5 * (low + high)
            if self.cdf(middle) >= tau - _CUMULATIVE_TOLERANCE:
                high = middle
            else:
                low = middle
            if high - low < 1e-13:
                break
        return high


@functools.lru_cache(maxsize=64)
def _split_chain(length: int, p: float, gamma: float, state: int) -> _SplitChainReturn:
    return _SplitChainReturn.build(length, p, gamma, state)


def chain_cdf(x: float, length: int, p: float, gamma: float, state: int = 0) -> float:
    """Exact ``P(return from state <= x)`` (meet-in-the-middle enumeration, see :class:`_SplitChainReturn`)."""
    return _split_chain(length, p, gamma, state).cdf(x)


def chain_expectile(length: int, p: float, gamma: float, tau: ArrayLike, state: int = 0) -> float | np.ndarray:
    """Exact expectile(s) of the return distribution from ``state`` (brentq on exact partial moments)."""
    split = _split_chain(length, p, gamma, state)
    return _map_levels(tau, split.expectile)


def chain_quantile(length: int, p: float, gamma: float, tau: ArrayLike, state: int = 0) -> float | np.ndarray:
    """Exact lower quantile(s) of the return distribution from ``state`` (bisection on the exact CDF, to 1e-13).

    The chain's atoms are distinct (sums of distinct powers of 4/5 never coincide) and each carries at most
    ``max(p, 1-p)^m``, so ties ``F(q) == tau`` do not occur for the channel levels used here.
    """
    split = _split_chain(length, p, gamma, state)
    return _map_levels(tau, split.quantile)


def nested_expectile_values(length: int, p: float, gamma: float, tau: float) -> np.ndarray:
    """Per-state fixed point of ``V(s) = expectile_tau[r + gamma V(s+1)]`` over the one-step Bernoulli reward.

    Backward recursion from ``V(length) = 0`` with the closed-form two-point expectile
    ``V(s) = gamma V(s+1) + e_tau``, ``e_tau = tau p / (tau p + (1 - tau)(1 - p))``; so
    ``V(s) = e_tau (1 - gamma^m) / (1 - gamma)``. Returns an array of shape ``(length,)``.
    """
    values = np.zeros(length + 1)
    for state in range(length - 1, -1, -1):
        values[state] = two_point_expectile(gamma * values[state + 1], 1.0 + gamma * values[state + 1], p, tau)
    return values[:length]


def nested_expectile(length: int, p: float, gamma: float, tau: ArrayLike, state: int = 0) -> float | np.ndarray:
    """Nested one-step expectile value(s) at ``state`` (see :func:`nested_expectile_values`), per level ``tau``.

    With a vector of channel levels this is what a broken distributional rule in which every channel ``i``
    bootstraps from its own channel learns: on the default chain at state 0 with :data:`TAUS_11` the
    spread (channel 10 minus channel 0) is ``(0.9 - 0.02) * 5 * (1 - 0.8^30) = 4.39`` (true: 1.77).
    """
    chain_steps_left(length, state)
    return _map_levels(tau, lambda level: nested_expectile_values(length, p, gamma, level)[state])


def asymmetric_td_value(length: int, p: float, gamma: float, kappa: float, state: int = 0) -> float:
    """Mihatsch & Neuneier (2002) risk-sensitive value of ``state`` for asymmetric TD with ``kappa``.

    The TD rule scales positive errors by ``1 - kappa`` and negative ones by ``1 + kappa``; its fixed point is
    the nested expectile at ``tau = (1 - kappa) / 2`` (``kappa = 0``: the mean; ``kappa > 0``: risk-averse).
    """
    if not -1.0 < kappa < 1.0:
        raise ValueError("kappa must lie in (-1, 1)")
    return float(nested_expectile(length, p, gamma, (1.0 - kappa) / 2.0, state))


def nested_quantile_values(length: int, p: float, gamma: float, tau: float) -> np.ndarray:
    """Per-state fixed point of ``q(s) = quantile_tau[r + gamma q(s+1)]`` over the one-step Bernoulli reward.

    The one-step law is ``{gamma q' w.p. 1 - p, 1 + gamma q' w.p. p}``, whose lower quantile is ``gamma q'``
    when ``tau <= 1 - p`` and ``1 + gamma q'`` otherwise, so every channel is either 0 or
    ``(1 - gamma^m) / (1 - gamma)``. (At ``tau == 1 - p`` exactly, any point between the two atoms minimises
    the pinball loss; the lower end is returned.)
    """
    values = np.zeros(length + 1)
    for state in range(length - 1, -1, -1):
        bootstrapped = gamma * values[state + 1]
        values[state] = quantile([bootstrapped, 1.0 + bootstrapped], tau, weights=[1.0 - p, p])
    return values[:length]


def nested_quantile(length: int, p: float, gamma: float, tau: ArrayLike, state: int = 0) -> float | np.ndarray:
    """Nested one-step quantile value(s) at ``state`` (see :func:`nested_quantile_values`), per level ``tau``.

    On the default chain (p = 0.3) every channel with ``tau <= 0.7`` (all :data:`TAUS_11` up to 7.5/11 = 0.68)
    sits at 0, the rest at ``5 (1 - 0.8^m)`` (4.99 at state 0), while the true median from state 0 is 1.44.
    """
    chain_steps_left(length, state)
    return _map_levels(tau, lambda level: nested_quantile_values(length, p, gamma, level)[state])


#: The numbers quoted in the issue, reproduced at **state 0** of the default chain (length 30, p 0.3,
#: gamma 0.8) with channel levels :data:`TAUS_11` = (i + 0.5)/11: the true expectile spread
#: ``chain_expectile(tau=10.5/11) - chain_expectile(tau=0.5/11)`` is 2.4604 - 0.6834 = 1.7770 (the issue's
#: "1.77"; a 10^6-return Monte Carlo gives 1.776) and the true median ``chain_quantile(tau=0.5)`` (channel 5)
#: is 1.4421. The spread is 1.777 for every state up to about 10 and the median is 1.44 for states 0..5, so
#: state 0 is the one meant. The wrong nested statistics give an expectile spread of 4.4944 - 0.0999 = 4.3945
#: and quantile channels 0..7 (tau <= 0.68) at 0 (channels 8..10 at 4.9938).
CHAIN_ISSUE_STATE = 0


# --------------------------------------------------------------------------------------------------
# 2. Risky shortcut
# --------------------------------------------------------------------------------------------------

SAFE, RISKY = 0, 1
SHORTCUT_GAMMA = 0.9


@dataclass(frozen=True)
class ShortcutDesign:
    """Parameters of :class:`RiskyShortcut` (defaults: the tested design).

    State 0 is the start. SAFE (action 0) enters the road ``1 .. n``; RISKY (action 1) enters the ledge
    ``n+1 .. 2n`` (``n = steps_after_choice``). Every road step, the choice step included, pays
    ``road_reward``; the road's last state terminates after its step. The step onto the ledge pays
    ``ledge_reward``; from each ledge state the agent slips with probability ``slip`` (reward
    ``fall_reward``, episode terminates), otherwise it is paid ``ledge_reward`` and moves on, the last ledge
    state terminating at the goal. Off the start state all actions are identical.
    """

    steps_after_choice: int = 3
    road_reward: float = 1.0
    ledge_reward: float = 2.0
    fall_reward: float = -4.0
    slip: float = 0.15

    def __post_init__(self) -> None:
        if self.steps_after_choice < 1 or not 0.0 <= self.slip <= 1.0:
            raise ValueError("need steps_after_choice >= 1 and 0 <= slip <= 1")

    @property
    def n_states(self) -> int:
        return 2 * self.steps_after_choice + 1

    def is_ledge(self, state: int) -> bool:
        return state > self.steps_after_choice

    def outcomes(self, state: int, action: int) -> list[tuple[float, float, int | None]]:
        """One-step outcomes ``(probability, reward, next_state or None if terminated)`` of ``(state, action)``."""
        n = self.steps_after_choice
        if not 0 <= state < self.n_states:
            raise ValueError(f"state {state} outside 0..{self.n_states - 1}")
        if state == 0:
            return [(1.0, self.road_reward, 1)] if action == SAFE else [(1.0, self.ledge_reward, n + 1)]
        is_last = state in (n, 2 * n)
        next_state = None if is_last else state + 1
        if not self.is_ledge(state):
            return [(1.0, self.road_reward, next_state)]
        return [(self.slip, self.fall_reward, None), (1.0 - self.slip, self.ledge_reward, next_state)]


DEFAULT_SHORTCUT = ShortcutDesign()


class RiskyShortcut(gymnasium.Env):
    """Start state with a SAFE road and a RISKY ledge shortcut; see :class:`ShortcutDesign` for the dynamics.

    Default layout (``steps_after_choice = 3``, 7 states, gamma 0.9 for the truths)::

        start 0 --SAFE  (+1)--> road 1 --(+1)--> 2 --(+1)--> 3 --(+1)--> end             return 3.439
                --RISKY (+2)--> ledge 4 --> 5 --> 6 --> goal, each ledge step: +2, or
                                 w.p. 0.15 slip: -4 and the episode ends

    The ledge is a shortcut (twice the progress per step) whose risk is realised at steps 2-4 after the choice,
    so its value reaches the start state only by bootstrapping. Risky returns from the start:
    -1.6 (p 0.15), 0.56 (p 0.1275), 2.504 (p 0.108375), 6.878 (p 0.614125).
    Observation ``Discrete(7)``, action ``Discrete(2)``. ``reset`` starts in a uniformly random state
    (``self.np_random``) so a replay buffer covers every state; ``random_start=False`` or
    ``reset(options={"state": s})`` starts elsewhere. On termination the observation repeats the last state.
    """

    metadata = {"render_modes": []}

    def __init__(self, design: ShortcutDesign = DEFAULT_SHORTCUT, random_start: bool = True):
        self.design = design
        self.random_start = random_start
        self.observation_space = spaces.Discrete(design.n_states)
        self.action_space = spaces.Discrete(2)
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.int64, dict]:
        super().reset(seed=seed)
        if options is not None and "state" in options:
            self.state = int(options["state"])
        elif self.random_start:
            self.state = int(self.np_random.integers(self.design.n_states))
        else:
            self.state = 0
        return np.int64(self.state), {}

    def step(self, action: Any) -> tuple[np.int64, float, bool, bool, dict]:
        outcomes = self.design.outcomes(self.state, int(action))
        cumulative = np.cumsum([probability for probability, _, _ in outcomes])
        index = min(int(np.searchsorted(cumulative, self.np_random.random(), side="right")), len(outcomes) - 1)
        _, reward, next_state = outcomes[index]
        terminated = next_state is None
        if not terminated:
            self.state = next_state
        return np.int64(self.state), float(reward), terminated, False, {}


@functools.lru_cache(maxsize=256)
def _shortcut_distribution(
    design: ShortcutDesign, gamma: float, state: int, action: int
) -> tuple[tuple[float, float], ...]:
    """Exact return law of ``(state, action)`` as ``((return, prob), ...)``, by enumerating all outcomes."""
    atoms: dict[float, float] = {}
    for probability, reward, next_state in design.outcomes(state, action):
        continuation = ((0.0, 1.0),) if next_state is None else _shortcut_distribution(design, gamma, next_state, SAFE)
        for value, value_prob in continuation:
            key = float(reward + gamma * value)
            atoms[key] = atoms.get(key, 0.0) + probability * value_prob
    return tuple(sorted(atoms.items()))


def shortcut_return_distribution(
    state: int = 0, action: int = SAFE, design: ShortcutDesign = DEFAULT_SHORTCUT, gamma: float = SHORTCUT_GAMMA
) -> tuple[np.ndarray, np.ndarray]:
    """Exact return distribution (support, probs) of taking ``action`` in ``state`` (exhaustive enumeration)."""
    atoms = np.array(_shortcut_distribution(design, gamma, state, action))
    return atoms[:, 0], atoms[:, 1]


def _shortcut_nested_q(design: ShortcutDesign, gamma: float, one_step_statistic: Callable) -> np.ndarray:
    """Q-table of the nested rule ``Q(s, a) = stat[r + gamma V(s')]``, ``V(s') = Q(s', any)``, by backward recursion."""
    q_table = np.zeros((design.n_states, 2))
    for state in range(design.n_states - 1, -1, -1):  # successors always have higher indices
        for action in (SAFE, RISKY):
            outcomes = design.outcomes(state, action)
            targets = [reward + (0.0 if nxt is None else gamma * q_table[nxt, SAFE]) for _, reward, nxt in outcomes]
            q_table[state, action] = one_step_statistic(targets, [prob for prob, _, _ in outcomes])
    return q_table


class ShortcutQ(NamedTuple):
    """Q-values of the two actions at the start state."""

    safe: float
    risky: float


def shortcut_q_table(
    statistic: str,
    *,
    tau: float | None = None,
    alpha: float | None = None,
    kappa: float | None = None,
    design: ShortcutDesign = DEFAULT_SHORTCUT,
    gamma: float = SHORTCUT_GAMMA,
) -> np.ndarray:
    """Exact ``(n_states, 2)`` table of a statistic of the return of each ``(state, action)``.

    ``statistic``: ``"mean"``; ``"quantile"`` (lower quantile, ``tau``); ``"expectile"`` (``tau``); ``"cvar"``
    (lower tail, ``alpha``) -- all of the full return distribution, by exact enumeration -- or the nested
    one-step fixed points ``"nested_expectile"`` (``tau``), ``"asymmetric"`` (Mihatsch-Neuneier, ``kappa``:
    nested expectile at ``(1 - kappa)/2``) and ``"nested_quantile"`` (``tau``), by backward recursion.
    Off the start state both columns are equal.
    """
    if statistic in ("nested_expectile", "asymmetric", "nested_quantile"):
        if statistic == "asymmetric":
            if kappa is None:
                raise ValueError("asymmetric needs kappa")
            tau = (1.0 - kappa) / 2.0
        if tau is None:
            raise ValueError(f"{statistic} needs tau")
        level = tau
        if statistic == "nested_quantile":
            return _shortcut_nested_q(design, gamma, lambda x, w: quantile(x, level, weights=w))
        return _shortcut_nested_q(design, gamma, lambda x, w: expectile(x, level, weights=w))

    def of_distribution(support: np.ndarray, probs: np.ndarray) -> float:
        if statistic == "mean":
            return float(support @ probs)
        if statistic in ("quantile", "expectile"):
            if tau is None:
                raise ValueError(f"{statistic} needs tau")
            fn = quantile if statistic == "quantile" else expectile
            return float(fn(support, tau, weights=probs))
        if statistic == "cvar":
            if alpha is None:
                raise ValueError("cvar needs alpha")
            return float(cvar(support, alpha, weights=probs))
        raise ValueError(f"unknown statistic {statistic!r}")

    q_table = np.zeros((design.n_states, 2))
    for state in range(design.n_states):
        for action in (SAFE, RISKY):
            q_table[state, action] = of_distribution(*shortcut_return_distribution(state, action, design, gamma))
    return q_table


def shortcut_q_values(
    statistic: str,
    *,
    tau: float | None = None,
    alpha: float | None = None,
    kappa: float | None = None,
    design: ShortcutDesign = DEFAULT_SHORTCUT,
    gamma: float = SHORTCUT_GAMMA,
) -> ShortcutQ:
    """``(Q_safe, Q_risky)`` at the start state for a statistic (arguments as :func:`shortcut_q_table`).

    Default design, gamma 0.9 (SAFE is 3.439 for every statistic, its return being deterministic):

    ================================  =======  ==========================================
    statistic                         RISKY    preference
    ================================  =======  ==========================================
    mean                              4.327    RISKY by 0.888 (+25.8 %)
    quantile tau 0.25 (and 2.5/11)    0.560    SAFE (atoms' cumulative probs: 0.15, 0.2775,
    quantile tau 1.5/11 = 0.136       -1.600   0.386, 1); every tau < 0.386 gives a fall
    quantile tau 3.5/11 = 0.318       2.504    return, so SAFE for channels 0..3
    quantile tau 4.5/11 = 0.409       6.878    (channels >= 4 see the goal: RISKY)
    cvar alpha 0.25                   -0.736   SAFE
    expectile tau 0.25                2.558    SAFE by 0.881
    asymmetric kappa 0.5 (nested      1.866    SAFE by 1.573
    expectile tau 0.25)
    ================================  =======  ==========================================

    No channel level lies on a step of the risky CDF, so every quantile here is unique (no pinball-loss
    interval). Wrong nested statistics for contrast: ``"nested_quantile"`` at tau 0.25 (and 2.5/11, 3.5/11)
    gives RISKY 6.878 -- it prefers the ledge, since each one-step slip (0.15) is below tau -- and -1.6 for
    tau < 0.15 (channels 0, 1); ``"expectile"`` and ``"nested_expectile"`` differ (2.558 vs 1.866 at 0.25)
    because the ledge has three random steps.
    """
    q_table = shortcut_q_table(statistic, tau=tau, alpha=alpha, kappa=kappa, design=design, gamma=gamma)
    return ShortcutQ(safe=float(q_table[0, SAFE]), risky=float(q_table[0, RISKY]))


# --------------------------------------------------------------------------------------------------
# 3. Crash loop: highway's reward scale, a return bootstrapped a random number of times
# --------------------------------------------------------------------------------------------------

LOOP_GAMMA = 0.9


@dataclass(frozen=True)
class LoopDesign:
    """Parameters of :class:`CrashLoop` (defaults: the tested design).

    One state that loops on itself, like a car cruising in traffic: each step crashes with probability
    ``crash`` (reward ``crash_reward``, the episode terminates), otherwise pays one of ``rewards`` with
    equal probability (a highway-env speed reward) and stays. The return is a sum over a geometric
    number of steps, so it is learned by bootstrapping a random number of times; its law has an atom at
    0 and TD errors of several units (a crash from a value of 3). Levels (i + 0.5)/11 never fall on a
    step of the one-step mixture's CDF (0.12 + 0.04 k), so projected quantiles are unique.
    """

    crash: float = 0.12
    rewards: tuple[float, ...] = (1.0, 0.5)
    crash_reward: float = 0.0

    def outcomes(self) -> list[tuple[float, float, bool]]:
        """One-step outcomes ``(probability, reward, terminated)``."""
        each = (1.0 - self.crash) / len(self.rewards)
        return [(self.crash, self.crash_reward, True), *((each, reward, False) for reward in self.rewards)]


DEFAULT_LOOP = LoopDesign()


class CrashLoop(gymnasium.Env):
    """The crash loop of :class:`LoopDesign`: observation ``Discrete(1)``, ``n_actions`` identical actions."""

    metadata = {"render_modes": []}

    def __init__(self, design: LoopDesign = DEFAULT_LOOP, n_actions: int = 1):
        self.design = design
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(n_actions)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.int64, dict]:
        super().reset(seed=seed)
        return np.int64(0), {}

    def step(self, action: Any) -> tuple[np.int64, float, bool, bool, dict]:
        outcomes = self.design.outcomes()
        cumulative = np.cumsum([probability for probability, _, _ in outcomes])
        index = min(int(np.searchsorted(cumulative, self.np_random.random(), side="right")), len(outcomes) - 1)
        _, reward, terminated = outcomes[index]
        return np.int64(0), float(reward), terminated, False, {}


def loop_mean(design: LoopDesign = DEFAULT_LOOP, gamma: float = LOOP_GAMMA) -> float:
    """Exact mean return: ``V = E[r] + gamma (1 - crash) V``."""
    expected_reward = sum(probability * reward for probability, reward, _ in design.outcomes())
    return expected_reward / (1.0 - gamma * (1.0 - design.crash))


@functools.lru_cache(maxsize=8)
def loop_returns(design: LoopDesign = DEFAULT_LOOP, gamma: float = LOOP_GAMMA, n: int = 10**6,
                 seed: int = 0) -> np.ndarray:
    """Monte Carlo: ``n`` sorted returns, simulated until every episode has crashed (read-only array)."""
    rng = np.random.default_rng(seed)
    returns, alive, discount = np.zeros(n), np.ones(n, dtype=bool), 1.0
    while alive.any():
        crashed = rng.random(n) < design.crash
        reward = np.asarray(design.rewards)[rng.integers(len(design.rewards), size=n)]
        returns += np.where(alive, discount * np.where(crashed, design.crash_reward, reward), 0.0)
        alive &= ~crashed
        discount *= gamma
    returns.sort()
    returns.setflags(write=False)
    return returns


def nested_fixed_point(one_step_error: Callable[[np.ndarray], np.ndarray], design: LoopDesign = DEFAULT_LOOP,
                       gamma: float = LOOP_GAMMA, baseline: tuple[float, float] = (0.0, 0.0)) -> float:
    """The loop's value ``V`` at which a one-step rule's expected step is zero:
    ``sum_k p_k psi(r_k - b_k + gamma (1 - done_k) V - V) = 0`` (brentq).

    ``one_step_error`` is the rule's psi, what one gradient step moves V by for a TD error d (``d`` for
    the squared loss, ``clip(d, -1, 1)`` for Huber, times a sign-dependent gain, ...); ``baseline`` is
    what is subtracted from (continuing, terminating) targets. A nested statistic: over one step's
    randomness, bootstrapped from V itself.
    """
    outcomes = design.outcomes()
    probabilities = np.array([probability for probability, _, _ in outcomes])
    rewards = np.array([reward for _, reward, _ in outcomes])
    continuing = np.array([0.0 if terminated else 1.0 for _, _, terminated in outcomes])
    subtracted = np.where(continuing == 1.0, baseline[0], baseline[1])

    def expected_step(value: float) -> float:
        return float(probabilities @ one_step_error(rewards - subtracted + gamma * continuing * value - value))

    return brentq(expected_step, -1e3, 1e3, xtol=1e-12, maxiter=500)


def loop_projected_quantiles(taus: np.ndarray, design: LoopDesign = DEFAULT_LOOP, gamma: float = LOOP_GAMMA,
                             iterations: int = 500) -> np.ndarray:
    """Fixed point of QR's projected Bellman operator on the loop with N quantile atoms: each channel is
    the tau_i-quantile of the target law ``{crash_reward w.p. crash; r + gamma z_j w.p. (1 - crash)/(R N)}``
    (z_j the channels themselves); iterated from 0 until it stops moving (a gamma-contraction)."""
    atoms = np.zeros(len(taus))
    for _ in range(iterations):
        support, weights = [], []
        for probability, reward, terminated in design.outcomes():
            if terminated:
                support.append([reward])
                weights.append([probability])
            else:
                support.append(reward + gamma * atoms)
                weights.append(np.full(len(atoms), probability / len(atoms)))
        updated = np.asarray(quantile(np.concatenate(support), taus, weights=np.concatenate(weights)))
        if np.max(np.abs(updated - atoms)) < 1e-12:
            return updated
        atoms = updated
    return atoms
