"""Neuromodulators: what sets the learner's meta-parameters (Doya 2002, "Metalearning and neuromodulation").

Acetylcholine sets the learning rate, noradrenaline the exploration, serotonin the discount. Each
modulator maps signals the agent hands over to one meta-parameter's value. Plain numpy/torch, no
SB3: the agents (``agents.neuro_agent``) write the value where SB3 reads it (the optimizer's
``param_groups``, DQN's epsilon, PPO/A2C's ``ent_coef``, ``gamma`` with the rollout buffer).

Interface (``Modulator.interface``: what the agents call; a user's own modulator implements the
same and loads by dotted path; parameters as for every part, ``neuro.registry``):

- ``value(base, progress_remaining) -> float``: the meta-parameter now, from the algorithm's own
  value ``base`` (SB3's schedule at this point of training); finite and within the bounds always;
- ``observe_td_errors(summary)``: the TD-error statistics of one update (``TDErrorSummary``: the
  dopamine module's signal when one is attached, the agent's own TD errors otherwise);
- ``observe_reward(reward)``: the mean one-step reward of one env step (over the envs);
- ``reads_td_errors`` / ``reads_rewards``: which of the two it needs (an agent that cannot hand over
  TD errors refuses a modulator that reads them);
- ``stats()`` (logged as ``neuro/<kind>/<key>``), ``ignored_signals``, ``set_seed(seed)``.

Signals that are not finite or exceed ``SIGNAL_LIMIT`` in magnitude are counted in
``ignored_signals`` (logged) and change nothing: a numerical failure upstream never reaches the
optimizer or the algorithm.

Learning-rate and exploration modulators scale the algorithm's value by a factor within
``[lo, hi]``; discount modulators keep gamma within ``[lo, hi]`` (absolute, below 1).
Registries: ``LEARNING_RATE_MODULATORS``, ``EXPLORATION_MODULATORS``, ``DISCOUNT_MODULATORS``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch

from neuro.migrations import upgrade
from neuro.registry import HalfOpenInterval, Positive, Registry, validated

__all__ = ["DISCOUNT_MODULATORS", "EXPLORATION_MODULATORS", "LEARNING_RATE_MODULATORS", "MODULATOR_REGISTRIES",
           "Modulator", "TDErrorSummary"]

SIGNAL_LIMIT = 1e9  # a TD error or reward beyond this is a numerical failure, not a surprise


@dataclass(frozen=True)
class TDErrorSummary:
    """One update's TD errors (or dopamine signals): their mean, mean absolute value and mean square."""

    mean: float
    mean_abs: float
    mean_square: float

    @classmethod
    def of(cls, signal: torch.Tensor | np.ndarray) -> TDErrorSummary:
        if isinstance(signal, torch.Tensor):
            signal = signal.detach().cpu().numpy()
        values = np.asarray(signal, dtype=np.float64).reshape(-1)  # numpy: cheaper than torch per call here
        return cls(float(values.mean()), float(np.abs(values).mean()), float(values @ values) / values.size)

    def is_plausible(self) -> bool:
        return all(math.isfinite(v) and abs(v) <= SIGNAL_LIMIT for v in (self.mean, self.mean_abs)) \
            and math.isfinite(self.mean_square)


def ema(average: float | None, sample: float, rate: float) -> float:
    """Exponential moving average ``average + rate (sample - average)``; the first sample starts it."""
    return sample if average is None else average + rate * (sample - average)


def clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class Modulator:
    """Base class: the algorithm's own value, unchanged (``constant`` without a value)."""

    # What the agents call: a class loaded by dotted path must have these (the registry checks).
    interface: ClassVar[tuple[str, ...]] = (
        "value", "observe_td_errors", "observe_reward", "reads_td_errors", "reads_rewards", "stats",
        "ignored_signals", "set_seed",
    )
    reads_td_errors: ClassVar[bool] = False
    reads_rewards: ClassVar[bool] = False
    ignored_signals: int = 0

    def value(self, base: float, progress_remaining: float) -> float:
        return base

    def observe_td_errors(self, summary: TDErrorSummary) -> None:
        if not summary.is_plausible():
            self.ignored_signals += 1
            return
        self._td_errors(summary)

    def observe_reward(self, reward: float) -> None:
        if not (math.isfinite(reward) and abs(reward) <= SIGNAL_LIMIT):
            self.ignored_signals += 1
            return
        self._reward(float(reward))

    def _td_errors(self, summary: TDErrorSummary) -> None:
        return None

    def _reward(self, reward: float) -> None:
        return None

    def set_seed(self, seed: int | None) -> None:
        """The agent's seed, for modulators that draw random numbers."""
        return None

    def stats(self) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __setstate__(self, state: dict[str, Any]) -> None:
        upgrade(self, state)  # a modulator saved by an older version (neuro.migrations)


LEARNING_RATE_MODULATORS: Registry[Modulator] = Registry("learning_rate", Modulator)
EXPLORATION_MODULATORS: Registry[Modulator] = Registry("exploration", Modulator)
DISCOUNT_MODULATORS: Registry[Modulator] = Registry("discount", Modulator)

Factor = Annotated[float, Positive()]
Rate = Annotated[float, HalfOpenInterval(0.0, 1.0)]


def check_bounds(lo: float, hi: float) -> None:
    if not lo <= 1.0 <= hi:
        raise ValueError(f"lo: lo <= 1 <= hi must hold (the algorithm's own value lies within), got lo={lo}, hi={hi}")


# ---------------------------------------------------------------------------------------------
# Learning rate (acetylcholine)


@LEARNING_RATE_MODULATORS.register("constant")
class ConstantLearningRate(Modulator):
    """A fixed learning rate: lr = value (the algorithm's ``learning_rate`` when no value is given).

    :param value: the learning rate, > 0; ``None`` keeps the algorithm's own (its schedule too).
    """


    @validated
    def __init__(self, value: Annotated[float, Positive()] | None = None) -> None:
        self.learning_rate = value

    def value(self, base: float, progress_remaining: float) -> float:
        return base if self.learning_rate is None else self.learning_rate


@LEARNING_RATE_MODULATORS.register("schedule")
class ScheduledLearningRate(Modulator):
    """A learning rate over training progress p (0 -> 1): linear start + (end - start) p; cosine
    end + (start - end)(1 + cos(pi p)) / 2; step start * factor^(number of milestones <= p)
    (Loshchilov & Hutter 2017 for the cosine).

    :param shape: ``linear``, ``cosine`` or ``step``.
    :param start: the learning rate at p = 0; ``None``: the algorithm's ``learning_rate``.
    :param end: the learning rate at p = 1 (``linear``, ``cosine``).
    :param milestones: fractions of training in (0, 1) where ``step`` multiplies by ``factor``.
    :param factor: ``step``'s factor, > 0.
    """


    @validated
    def __init__(self, shape: Literal["linear", "cosine", "step"], start: Annotated[float, Positive()] | None = None,
                 end: Annotated[float, Positive()] | None = None, milestones: list[float] | None = None,
                 factor: Factor = 0.1) -> None:
        self.shape = shape
        self.start = start
        self.end = end
        self.milestones = sorted(milestones or [])
        self.factor = factor

    @staticmethod
    def check_combination(shape: str, end: float | None, milestones: list[float] | None) -> None:
        if shape in ("linear", "cosine") and end is None:
            raise ValueError(f"end: required for shape {shape!r}")
        if shape == "step":
            if not milestones:
                raise ValueError("milestones: required for shape 'step' (fractions of training in (0, 1))")
            if any(not 0.0 < m < 1.0 for m in milestones):
                raise ValueError(f"milestones: each must be in (0, 1), got {milestones}")

    def value(self, base: float, progress_remaining: float) -> float:
        start = base if self.start is None else self.start
        done = clip(1.0 - progress_remaining, 0.0, 1.0)
        if self.shape == "linear":
            assert self.end is not None  # required for this shape (check_combination)
            return start + (self.end - start) * done
        if self.shape == "cosine":
            assert self.end is not None
            return self.end + (start - self.end) * 0.5 * (1.0 + math.cos(math.pi * done))
        return start * self.factor ** sum(1 for milestone in self.milestones if milestone <= done)


class Associability:
    """Pearce & Hall's associability: alpha <- eta |delta| + (1 - eta) alpha, and its reference
    (``alpha_ref``, or a slow average of |delta| at rate eta / 10)."""

    def __init__(self, eta: float, alpha_ref: float | None) -> None:
        self.eta = eta
        self.alpha_ref = alpha_ref
        self.alpha: float | None = None
        self.reference: float | None = alpha_ref

    def update(self, mean_abs: float) -> None:
        self.alpha = ema(self.alpha, mean_abs, self.eta)
        if self.alpha_ref is None:
            self.reference = ema(self.reference, mean_abs, self.eta / 10)

    def ratio(self) -> float:
        """alpha / alpha_ref; 1 before any signal (or while both are 0)."""
        if self.alpha is None or not self.reference:
            return 1.0
        return self.alpha / self.reference


@LEARNING_RATE_MODULATORS.register("surprise")
class SurpriseLearningRate(Modulator):
    """Pearce-Hall associability: alpha <- eta |delta| + (1 - eta) alpha, learning rate =
    base * clip(alpha / alpha_ref, lo, hi) (Pearce & Hall 1980).

    Surprising outcomes (large |delta|) raise the learning rate; a stable, well-predicted world lets
    it decay. |delta| is each update's mean absolute TD error (or dopamine signal).

    :param eta: associability rate in (0, 1].
    :param alpha_ref: the associability at which the rate is ``base``; ``None``: a slow average of
        |delta| (rate eta / 10), so the rate rises when surprise exceeds its usual level.
    :param lo: smallest factor on ``base``, in (0, 1].
    :param hi: largest factor on ``base``, >= 1.
    """

    reads_td_errors = True

    @validated
    def __init__(self, eta: Rate = 0.05, alpha_ref: Annotated[float, Positive()] | None = None,
                 lo: Factor = 0.2, hi: Factor = 5.0) -> None:
        self.eta, self.alpha_ref, self.lo, self.hi = eta, alpha_ref, lo, hi
        self._associability = Associability(eta, alpha_ref)

    @staticmethod
    def check_combination(lo: float, hi: float) -> None:
        check_bounds(lo, hi)

    def _td_errors(self, summary: TDErrorSummary) -> None:
        self._associability.update(summary.mean_abs)

    def factor(self) -> float:
        return clip(self._associability.ratio(), self.lo, self.hi)

    def value(self, base: float, progress_remaining: float) -> float:
        return base * self.factor()

    def stats(self) -> dict[str, float]:
        alpha, reference = self._associability.alpha, self._associability.reference
        return {} if alpha is None or reference is None else {"associability": alpha, "associability_ref": reference}


def steady_state_gain(process_noise: float, observation_noise: float) -> float:
    """The Kalman gain a local-level model settles at: K* = x / (x + s2), x = (q + sqrt(q^2 + 4 q s2)) / 2."""
    q, s2 = process_noise, observation_noise
    x = (q + math.sqrt(q * q + 4.0 * q * s2)) / 2.0
    return x / (x + s2)


@LEARNING_RATE_MODULATORS.register("volatility")
class VolatilityLearningRate(Modulator):
    """Kalman-gain learning rate: K = (P + q) / (P + q + s2), P <- (1 - K)(P + q), learning rate =
    base * clip(K / gain_ref, lo, hi) (Behrens et al. 2007; Gershman 2015).

    A volatile world (large process noise q) keeps K high; observation noise s2 keeps it low. With q
    and s2 fixed, K converges to ``steady_state_gain(q, s2)``. Otherwise both are estimated online by
    a filter of the modulator's own, whose feedback loop does not depend on the step the learner takes:

    - the observation the learner sees is rebuilt from its TD errors delta (each update's mean) and
      the steps it applied: y_t = v_t + delta_t with v_{t+1} = v_t + lr_t delta_t, lr_t the rate this
      modulator last returned (a tabular value's step; only y - m below is kept, never v itself);
    - the own filter tracks y with gain K, m <- m + K (y - m); its innovations nu = y - m are white
      exactly when K is the optimal gain (Mehra 1970), so log(q / s2) += adaptation * rho with
      rho = nu_t nu_{t-1} / E[nu^2]: innovations that keep their sign mean m lags a moving world
      (raise q), alternating ones mean it chases noise (lower q);
    - s2 from their mean square: E[nu^2] = P + q + s2 = s2 / (1 - K) at the steady state.

    Why its own filter: the learner's TD errors are innovations of the learner's step, not of K, so
    driving *their* lag-1 correlation to 0 settles only when the learner's step is K; with
    ``lr = base K / gain_ref`` it ran log(q / s2) to its clip (issue 21). Here the estimate is the same
    whatever the learner's step: with the defaults, tabular, K lands within 20% of K* for bases 0.03
    and 0.3 (tests). In a deep agent the value moves by the optimizer's step, not by lr delta, so y is
    nearly the mean TD error itself and K reads how persistent it is against its noise: a heuristic.

    :param process_noise: q, > 0; ``None``: estimated online.
    :param observation_noise: s2, > 0; ``None``: estimated online.
    :param memory: updates the mean square of the innovations averages over (rate 1 / memory), >= 1.
    :param adaptation: step of the log(q / s2) estimate, > 0.
    :param gain_ref: the gain at which the rate is ``base``, in (0, 1]; ``None``: a slow average of K.
    :param lo: smallest factor on ``base``, in (0, 1].
    :param hi: largest factor on ``base``, >= 1.
    """

    reads_td_errors = True

    @validated
    def __init__(self, process_noise: Annotated[float, Positive()] | None = None,
                 observation_noise: Annotated[float, Positive()] | None = None,
                 memory: Annotated[int, HalfOpenInterval(0, 1e12)] = 1000, adaptation: Factor = 0.01,
                 gain_ref: Annotated[float, HalfOpenInterval(0.0, 1.0)] | None = None,
                 lo: Factor = 0.2, hi: Factor = 5.0) -> None:
        self.process_noise, self.observation_noise = process_noise, observation_noise
        self.memory, self.adaptation = memory, adaptation
        self.gain_ref, self.lo, self.hi = gain_ref, lo, hi
        self._posterior_variance = 0.0  # P
        self._log_ratio = 0.0 if process_noise is None or observation_noise is None else \
            math.log(process_noise / observation_noise)
        self._mean_square: float | None = None  # E[nu^2]
        self._previous_error: float | None = None  # the own filter's last innovation nu
        self._gain: float | None = None  # K
        self._gain_average: float | None = gain_ref
        self._lag = 0.0  # v - m: the learner's rebuilt value minus the own filter's estimate
        self._pending_error = 0.0  # the last TD error, which the learner's next step moves v by
        self._applied_rate = 0.0  # the rate last returned: the learner's step per unit TD error

    @staticmethod
    def check_combination(lo: float, hi: float) -> None:
        check_bounds(lo, hi)

    def noise(self) -> tuple[float, float] | None:
        """(q, s2) in use: the fixed ones, or the online estimates (None before any error)."""
        q, s2 = self.process_noise, self.observation_noise
        if q is not None and s2 is not None:
            return q, s2
        if self._mean_square is None:
            return None
        ratio = math.exp(self._log_ratio)
        if s2 is None:
            s2 = q / ratio if q is not None else self._mean_square * (1.0 - (self._gain or 0.0))
        return (ratio * s2 if q is None else q), s2

    def _td_errors(self, summary: TDErrorSummary) -> None:
        # The learner's step on the previous error, then this error: y - m = (v - m) + delta.
        self._lag += self._applied_rate * self._pending_error
        self._pending_error = summary.mean
        innovation = self._lag + summary.mean
        if self._mean_square and self._previous_error is not None:
            correlation = clip(innovation * self._previous_error / self._mean_square, -4.0, 4.0)
            self._log_ratio = clip(self._log_ratio + self.adaptation * correlation, -30.0, 30.0)
        self._previous_error = innovation
        self._mean_square = ema(self._mean_square, innovation * innovation, 1.0 / self.memory)
        noise = self.noise()
        if noise is None or sum(noise) <= 0.0:
            return
        q, s2 = noise
        prior = self._posterior_variance + q
        gain = prior / (prior + s2)
        self._posterior_variance = (1.0 - gain) * prior
        self._gain = gain
        self._lag -= gain * innovation  # the own filter's step: m <- m + K nu
        if self.gain_ref is None:
            self._gain_average = ema(self._gain_average, gain, 1.0 / self.memory)

    @property
    def gain(self) -> float | None:
        return self._gain

    def factor(self) -> float:
        if self._gain is None or not self._gain_average:
            return 1.0
        return clip(self._gain / self._gain_average, self.lo, self.hi)

    def value(self, base: float, progress_remaining: float) -> float:
        rate = base * self.factor()
        self._applied_rate = rate
        return rate

    def stats(self) -> dict[str, float]:
        noise = self.noise()
        if self._gain is None or noise is None:
            return {}
        return {"kalman_gain": self._gain, "process_noise": noise[0], "observation_noise": noise[1]}


# ---------------------------------------------------------------------------------------------
# Exploration (noradrenaline): DQN's epsilon or PPO/A2C's entropy coefficient


@EXPLORATION_MODULATORS.register("surprise")
class SurpriseExploration(SurpriseLearningRate):
    """Phasic noradrenaline as unexpected uncertainty: exploration = base * clip(alpha / alpha_ref,
    lo, hi), alpha <- eta |delta| + (1 - eta) alpha (Yu & Dayan 2005; Aston-Jones & Cohen 2005):
    ``surprise``'s rule on epsilon or the entropy coefficient.

    :param eta: associability rate in (0, 1].
    :param alpha_ref: the associability at which exploration is ``base``; ``None``: a slow average.
    :param lo: smallest factor on ``base``, in (0, 1].
    :param hi: largest factor on ``base``, >= 1 (epsilon is also capped at 1).
    """

    @validated
    def __init__(self, eta: Rate = 0.05, alpha_ref: Annotated[float, Positive()] | None = None,
                 lo: Factor = 0.5, hi: Factor = 4.0) -> None:
        super().__init__(eta, alpha_ref, lo, hi)

    def stats(self) -> dict[str, float]:
        alpha = self._associability.alpha
        return {} if alpha is None else {"exploration_associability": alpha}


@EXPLORATION_MODULATORS.register("reward_trend")
class RewardTrendExploration(Modulator):
    """Reward-change detector: exploration = base * clip(exp(-gain * trend), lo, hi), trend =
    (r_short - r_long) / std_long; a heuristic inspired by, not implementing, Aston-Jones & Cohen 2005.

    What it does: a drop of reward below its long-run level raises exploration (up to ``hi``), a rise
    lowers it (to ``lo``: with the shipped lo = 0.5, gain = 2 a rise of 0.35 standard deviations halves
    it), and a reward that stays poor brings it back to ``base`` once the long average has caught up.
    Aston-Jones & Cohen's disengagement (tonic LC) is different: it keeps exploring while long-term
    utility stays low. Only "falling utility triggers exploration" is borrowed here.

    r_short and r_long are moving averages of the one-step reward at rates ``fast`` and ``slow``;
    std_long is the reward's moving standard deviation at rate ``slow``. The trend is 0 until the
    long average has seen 1 / slow rewards: before that it measures the start of training, not a drop.

    :param fast: rate of the short-term average, in (0, 1].
    :param slow: rate of the long-term average and spread, in (0, 1], below ``fast``.
    :param gain: how strongly a trend moves exploration, > 0.
    :param lo: smallest factor on ``base``, in (0, 1].
    :param hi: largest factor on ``base``, >= 1 (epsilon is also capped at 1).
    """

    reads_rewards = True

    @validated
    def __init__(self, fast: Rate = 0.01, slow: Rate = 0.001, gain: Factor = 2.0, lo: Factor = 0.5,
                 hi: Factor = 4.0) -> None:
        self.fast, self.slow, self.gain, self.lo, self.hi = fast, slow, gain, lo, hi
        self._short: float | None = None
        self._long: float | None = None
        self._variance = 0.0
        self._count = 0

    @staticmethod
    def check_combination(fast: float, slow: float, lo: float, hi: float) -> None:
        if not slow < fast:
            raise ValueError(f"slow: must be below fast ({fast}), got {slow}")
        check_bounds(lo, hi)

    def _reward(self, reward: float) -> None:
        self._count += 1
        if self._long is not None:
            self._variance += self.slow * ((reward - self._long) ** 2 - self._variance)
        self._short = ema(self._short, reward, self.fast)
        self._long = ema(self._long, reward, self.slow)

    def trend(self) -> float:
        if self._short is None or self._long is None or self._variance <= 0.0 or self._count * self.slow < 1.0:
            return 0.0
        return (self._short - self._long) / math.sqrt(self._variance)

    def value(self, base: float, progress_remaining: float) -> float:
        exponent = clip(-self.gain * self.trend(), math.log(self.lo), math.log(self.hi))
        return base * math.exp(exponent)

    def stats(self) -> dict[str, float]:
        return {} if self._long is None else {"reward_trend": self.trend()}


# ---------------------------------------------------------------------------------------------
# Discount (serotonin): experimental


def check_discount_bounds(lo: float, hi: float) -> None:
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"lo: 0 < lo <= hi < 1 must hold, got lo={lo}, hi={hi}")


def with_horizon_factor(base: float, factor: float, lo: float, hi: float) -> float:
    """gamma whose horizon 1 / (1 - gamma) is ``factor`` times base's, within [lo, hi]."""
    return clip(1.0 - (1.0 - base) / factor, lo, hi)


@DISCOUNT_MODULATORS.register("reward_rate")
class RewardRateDiscount(Modulator):
    """Serotonin as patience (Doya 2002; Miyazaki et al. 2014): the horizon 1 / (1 - gamma) is base's
    times exp(gain (r_bar - reference)), r_bar a slow average of the one-step reward; gamma within
    [lo, hi]. Experimental: a richer world lengthens the horizon (gain > 0), a poorer one shortens it.

    :param rate: rate of the reward average, in (0, 1].
    :param reference: the reward rate at which gamma is ``base``.
    :param gain: log-horizon change per unit of reward rate (any sign).
    :param lo: smallest gamma, in (0, 1).
    :param hi: largest gamma, in [lo, 1).
    """

    reads_rewards = True

    @validated
    def __init__(self, rate: Rate = 0.001, reference: float = 0.0, gain: float = 1.0, lo: float = 0.8,
                 hi: float = 0.995) -> None:
        self.rate, self.reference, self.gain, self.lo, self.hi = rate, reference, gain, lo, hi
        self._reward_rate: float | None = None

    @staticmethod
    def check_combination(lo: float, hi: float) -> None:
        check_discount_bounds(lo, hi)

    def _reward(self, reward: float) -> None:
        self._reward_rate = ema(self._reward_rate, reward, self.rate)

    def value(self, base: float, progress_remaining: float) -> float:
        if self._reward_rate is None:
            return clip(base, self.lo, self.hi)
        exponent = clip(self.gain * (self._reward_rate - self.reference), -30.0, 30.0)
        return with_horizon_factor(base, math.exp(exponent), self.lo, self.hi)

    def stats(self) -> dict[str, float]:
        return {} if self._reward_rate is None else {"reward_rate": self._reward_rate}


@DISCOUNT_MODULATORS.register("td_variance")
class TDVarianceDiscount(Modulator):
    """Uncertainty shortens the horizon: 1 / (1 - gamma) is base's times (v_ref / v)^gain, v a moving
    average of the squared TD error and v_ref its slow average; gamma within [lo, hi]. Experimental
    (Doya 2002's serotonin-discount link with TD-error variance as the slow signal).

    :param rate: rate of v, in (0, 1].
    :param gain: exponent, > 0.
    :param lo: smallest gamma, in (0, 1).
    :param hi: largest gamma, in [lo, 1).
    """

    reads_td_errors = True

    @validated
    def __init__(self, rate: Rate = 0.01, gain: Factor = 0.5, lo: float = 0.8, hi: float = 0.995) -> None:
        self.rate, self.gain, self.lo, self.hi = rate, gain, lo, hi
        self._variance: float | None = None
        self._reference: float | None = None

    @staticmethod
    def check_combination(lo: float, hi: float) -> None:
        check_discount_bounds(lo, hi)

    def _td_errors(self, summary: TDErrorSummary) -> None:
        self._variance = ema(self._variance, summary.mean_square, self.rate)
        self._reference = ema(self._reference, summary.mean_square, self.rate / 10)

    def value(self, base: float, progress_remaining: float) -> float:
        if not self._variance or not self._reference:
            return clip(base, self.lo, self.hi)
        exponent = clip(self.gain * math.log(self._reference / self._variance), -30.0, 30.0)
        return with_horizon_factor(base, math.exp(exponent), self.lo, self.hi)

    def stats(self) -> dict[str, float]:
        return {} if self._variance is None else {"td_error_variance": self._variance}


# ---------------------------------------------------------------------------------------------
# Meta-learning (Schweighofer & Doya 2003)


class MetaLearning(Modulator):
    """Stochastic meta-learning (Schweighofer & Doya 2003): the meta-parameter is perturbed around
    its base, u = u_0 + sigma (sigma ~ N(0, noise^2), redrawn every ``hold`` steps), and the base
    moves by mu (r_mid - r_long) sigma, r_mid and r_long the mid- and long-term averages of the
    one-step reward (tau_mid dr_mid = r - r_mid, tau_long dr_long = r_mid - r_long).

    u is the meta-parameter in its natural scale (``to_scale`` / ``from_scale``); u_0 starts at the
    algorithm's value and follows its schedule: what is learned is an offset. The offset is bounded
    so the value stays within the bounds, perturbation included.

    Each meta-parameter draws from a stream of its own, keyed by the seed and the parameter's name:
    the credit mu (r_mid - r_long) sigma is assigned to each sigma only if the sigmas of the
    meta-parameters perturbed in one run are independent (the agent hands all of them its one seed).
    """

    parameter: ClassVar[str] = "meta"
    reads_rewards = True

    def __init__(self, mu: float, noise: float, tau_mid: float, tau_long: float, hold: int, seed: int | None) -> None:
        self.mu, self.noise, self.tau_mid, self.tau_long, self.hold = mu, noise, tau_mid, tau_long, hold
        self._seed = seed
        self._rng = self.stream(seed)
        self._offset = 0.0
        self._perturbation = 0.0
        self._steps = 0
        self._reward_mid: float | None = None
        self._reward_long: float | None = None
        self._base: float | None = None  # the last base seen, to bound the offset

    @staticmethod
    def check_taus(tau_mid: float, tau_long: float) -> None:
        if not 1.0 <= tau_mid < tau_long:
            raise ValueError(f"tau_mid: 1 <= tau_mid < tau_long must hold, got tau_mid={tau_mid}, tau_long={tau_long}")

    def stream(self, seed: int | None) -> np.random.Generator:
        """The perturbations' generator for ``seed``, independent of other parameters' (issue 21:
        seeded with the run seed alone, all meta modulators of a run drew identical perturbations)."""
        key = zlib.crc32(self.parameter.encode())  # stable across processes, unlike hash()
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))

    def set_seed(self, seed: int | None) -> None:
        if self._seed is None and self._steps == 0:
            self._rng = self.stream(seed)

    def to_scale(self, value: float) -> float:
        return math.log(value)

    def from_scale(self, u: float) -> float:
        return math.exp(u)

    def scale_bounds(self, base: float) -> tuple[float, float]:
        """The bounds of u_0 + offset + sigma."""
        raise NotImplementedError

    def _reward(self, reward: float) -> None:
        if self._steps % self.hold == 0:
            self._perturbation = float(self._rng.normal(0.0, self.noise))
        self._steps += 1
        self._reward_mid = ema(self._reward_mid, reward, 1.0 / self.tau_mid)
        self._reward_long = ema(self._reward_long, self._reward_mid, 1.0 / self.tau_long)
        self._offset += self.mu * (self._reward_mid - self._reward_long) * self._perturbation
        if self._base is not None:
            low, high = self.scale_bounds(self._base)
            u_base = self.to_scale(self._base)
            self._offset = clip(self._offset, low - u_base, high - u_base)

    def meta_value(self, base: float) -> float:
        """The learned base value, without the perturbation."""
        low, high = self.scale_bounds(base)
        return self.from_scale(clip(self.to_scale(base) + self._offset, low, high))

    def value(self, base: float, progress_remaining: float) -> float:
        self._base = base
        low, high = self.scale_bounds(base)
        return self.from_scale(clip(self.to_scale(base) + self._offset + self._perturbation, low, high))

    def stats(self) -> dict[str, float]:
        if self._reward_mid is None or self._reward_long is None:
            return {}
        prefix = f"meta_{self.parameter}"

        return {f"{prefix}_offset": self._offset, f"{prefix}_perturbation": self._perturbation,
                f"{prefix}_reward_mid": self._reward_mid, f"{prefix}_reward_long": self._reward_long}


class _MultiplicativeMeta(MetaLearning):
    """Meta-learning on log(value), the value within [lo, hi] times the algorithm's.

    :param mu: meta-learning rate, > 0, in log units per unit of reward difference (scale it with the
        reward; too large a step walks the value to a bound on noise alone).
    :param noise: standard deviation of the log-scale perturbation, > 0.
    :param tau_mid: time constant of the mid-term reward average, in env steps, >= 1.
    :param tau_long: time constant of the long-term average, > tau_mid.
    :param hold: env steps each perturbation is held, >= 1.
    :param lo: smallest factor on the algorithm's value, in (0, 1].
    :param hi: largest factor, >= 1.
    :param seed: the perturbations' seed; ``None``: the agent's.
    """

    @validated
    def __init__(self, mu: Factor = 0.1, noise: Factor = 0.5, tau_mid: Factor = 100.0, tau_long: Factor = 1000.0,
                 hold: Annotated[int, HalfOpenInterval(0, 1e12)] = 100, lo: Factor = 0.1, hi: Factor = 10.0,
                 seed: int | None = None) -> None:
        super().__init__(mu, noise, tau_mid, tau_long, hold, seed)
        self.lo, self.hi = lo, hi

    @staticmethod
    def check_combination(tau_mid: float, tau_long: float, lo: float, hi: float) -> None:
        check_bounds(lo, hi)
        MetaLearning.check_taus(tau_mid, tau_long)

    def scale_bounds(self, base: float) -> tuple[float, float]:
        return math.log(base * self.lo), math.log(base * self.hi)

    def value(self, base: float, progress_remaining: float) -> float:
        if base <= 0.0:  # a value of 0 (an epsilon schedule ending at 0) has no log scale: nothing to scale
            return base
        return super().value(base, progress_remaining)

    def meta_value(self, base: float) -> float:
        return base if base <= 0.0 else super().meta_value(base)


@LEARNING_RATE_MODULATORS.register("meta")
class MetaLearningRate(_MultiplicativeMeta):
    """Schweighofer & Doya 2003 on log(learning rate): log lr = log lr_0 + sigma, lr_0 moved by
    mu (r_mid - r_long) sigma; the rate within [lo, hi] times the algorithm's. Parameters: see
    ``_MultiplicativeMeta``."""

    parameter = "learning_rate"


@EXPLORATION_MODULATORS.register("meta")
class MetaExploration(_MultiplicativeMeta):
    """Schweighofer & Doya 2003 on log(exploration) (epsilon or the entropy coefficient): the value
    perturbed by sigma in log scale, its base moved by mu (r_mid - r_long) sigma, within [lo, hi]
    times the algorithm's (epsilon also capped at 1). Parameters: see ``_MultiplicativeMeta``."""

    parameter = "exploration"


@DISCOUNT_MODULATORS.register("meta")
class MetaDiscount(MetaLearning):
    """Schweighofer & Doya 2003 on the log horizon u = -log(1 - gamma): u perturbed by sigma, its
    base moved by mu (r_mid - r_long) sigma; gamma within [lo, hi]. Experimental.

    :param mu: meta-learning rate, > 0.
    :param noise: standard deviation of the log-horizon perturbation, > 0.
    :param tau_mid: time constant of the mid-term reward average, in env steps, >= 1.
    :param tau_long: time constant of the long-term average, > tau_mid.
    :param hold: env steps each perturbation is held, >= 1.
    :param lo: smallest gamma, in (0, 1).
    :param hi: largest gamma, in [lo, 1).
    :param seed: the perturbations' seed; ``None``: the agent's.
    """

    parameter = "gamma"

    @validated
    def __init__(self, mu: Factor = 0.1, noise: Factor = 0.3, tau_mid: Factor = 100.0, tau_long: Factor = 1000.0,
                 hold: Annotated[int, HalfOpenInterval(0, 1e12)] = 100, lo: float = 0.8, hi: float = 0.995,
                 seed: int | None = None) -> None:
        super().__init__(mu, noise, tau_mid, tau_long, hold, seed)
        self.lo, self.hi = lo, hi

    @staticmethod
    def check_combination(tau_mid: float, tau_long: float, lo: float, hi: float) -> None:
        check_discount_bounds(lo, hi)
        MetaLearning.check_taus(tau_mid, tau_long)

    def to_scale(self, value: float) -> float:
        return -math.log(1.0 - value)

    def from_scale(self, u: float) -> float:
        return 1.0 - math.exp(-u)

    def scale_bounds(self, base: float) -> tuple[float, float]:
        return self.to_scale(self.lo), self.to_scale(self.hi)

    def value(self, base: float, progress_remaining: float) -> float:
        return super().value(clip(base, self.lo, self.hi), progress_remaining)


MODULATOR_REGISTRIES: dict[str, Registry[Modulator]] = {
    "learning_rate": LEARNING_RATE_MODULATORS,
    "exploration": EXPLORATION_MODULATORS,
    "discount": DISCOUNT_MODULATORS,
}
