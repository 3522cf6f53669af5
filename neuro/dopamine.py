"""Dopamine-style TD-error modules: what the TD error becomes before it drives learning.

Phasic dopamine carries a reward prediction error (Schultz, Dayan & Montague 1997). Each module
maps the TD error ``td_error`` (delta = r + gamma V(s') - V(s)) to the signal that replaces it in
the update ``V(s) += alpha * signal``. Plain torch, no SB3: the agents wire these into DQN's
per-sample loss and PPO's GAE.

Interface (``DopamineModule.interface``: what the agents call; a user's own module implements the
same and loads by dotted path):

- ``transform(td_error) -> signal``: the learning rule on an error (same shape, no side effects);
- ``dopamine_signal(td_error)``: the signal a recording of dopamine neurons would show (logged);
  the learning signal unless the module models the recording (``saturating``);
- ``dqn_loss(current, target) -> (loss, td_error, dopamine_signal)``: DQN's loss from (batch,
  channels) values and per-channel targets; ``loss`` sets its shape (``huber`` | ``squared`` for
  the single-value rules, each code's exact loss for ``distributional``);
- ``target_samples(targets)``: samples of the target distribution from per-channel targets;
- ``baseline(terminated, gamma)``: subtracted from every TD target (``average_reward``'s rate);
- ``observe_rewards(rewards)``: the one-step rewards of each update (``average_reward``);
- ``check_agent(gamma, n_steps)``: refuse an agent setting the module is wrong for;
- ``n_channels`` and ``acting_weights``: value channels the network needs, and the weights over
  them that give the value actions use (the mean, a quantile or expectile, or a CVaR);
- ``observe_values(values)`` (the values of each update) and ``stats()`` (logged as
  ``neuro/dopamine/<key>``).

Under bootstrapping (multi-step tasks) a sign-dependent rule does not yield a statistic of the
return: ``V(s) = E_tau[r + gamma V(s')]`` nests the one-step statistic at every step (Mihatsch &
Neuneier 2002). Each docstring states what its module converges to there; distributional channels
learn statistics of the return itself because their targets are samples of the next state's
distribution (Dabney et al. 2020; Rowland et al. 2019).

``DOPAMINE_MODULES`` maps ``neuro.dopamine.type`` to these classes; constructor annotations carry
each parameter's bounds, checked by the registry before anything is built (and by ``@validated``,
the same parameter model, when a module is constructed directly in Python). A module pickled by an
older version is upgraded in ``neuro.migrations``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import AfterValidator
from torch import Tensor

from neuro.expectile_imputation import impute_samples
from neuro.migrations import upgrade
from neuro.registry import HalfOpenInterval, OpenInterval, Positive, Registry, validated

__all__ = ["AsymmetricTD", "AverageRewardTD", "BiasedSaturatingTD", "DOPAMINE_MODULES", "DistributionalTD",
           "DopamineModule", "OpponentTD", "SaturatingTD", "StandardTD"]

LossShape = Literal["huber", "squared"]
HUBER_THRESHOLD = 1.0  # SB3's DQN loss: smooth_l1_loss with beta = 1


def elementwise_loss(current: Tensor, target: Tensor, loss: str) -> Tensor:
    """Per-element loss of shape ``huber`` (SB3's), ``squared`` (0.5 d^2) or ``absolute`` (|d|)."""
    if loss == "huber":
        return F.smooth_l1_loss(current, target, reduction="none", beta=HUBER_THRESHOLD)
    if loss == "squared":
        return 0.5 * (target - current) ** 2
    return (target - current).abs()


def shaped_error(td_error: Tensor, loss: str) -> Tensor:
    """Minus the loss's derivative in the prediction: what one gradient step moves V by."""
    if loss == "huber":
        return td_error.clamp(-HUBER_THRESHOLD, HUBER_THRESHOLD)
    if loss == "squared":
        return td_error
    return torch.sign(td_error)


class DopamineModule:
    """Base class: the identity rule, and a DQN loss built from ``transform``.

    The generic DQN loss applies the rule to the loss-shaped error (the TD error clipped at +-1 for
    ``huber``) through ``0.5 (Q - sg(Q + signal))^2``, whose gradient in Q is exactly ``-signal``
    (divided by the batch size). The built-in modules override it with a weighted loss of the same
    gradient whose value is a loss too.
    """

    # What the agents call: a class loaded by dotted path must have these (the registry checks).
    interface: ClassVar[tuple[str, ...]] = (
        "transform", "dopamine_signal", "dqn_loss", "target_samples", "baseline", "observe_rewards",
        "check_agent", "observe_values", "stats", "n_channels", "acting_weights",
    )
    n_channels: int = 1
    acting_weights: tuple[float, ...] = (1.0,)
    loss: str = "huber"

    def transform(self, td_error: Tensor) -> Tensor:
        return td_error

    def dopamine_signal(self, td_error: Tensor) -> Tensor:
        return self.transform(td_error)

    def target_samples(self, targets: Tensor) -> Tensor:
        """(batch, channels) per-channel targets -> (batch, samples) of the target distribution."""
        return targets

    def baseline(self, terminated: Tensor, gamma: float) -> Tensor | float:
        return 0.0

    def observe_rewards(self, rewards: Tensor) -> None:
        return None

    def check_agent(self, gamma: float, n_steps: int) -> None:
        """Raise a ``ValueError`` naming the field if the agent's setting makes the rule wrong."""
        return None

    def dqn_loss(self, current: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``current`` and ``target`` are (batch, channels); returns (loss, td_error, dopamine_signal)."""
        td_error = (target - current).detach()
        signal = self.transform(shaped_error(td_error, self.loss))
        shaped_target = (current + signal).detach()
        loss = 0.5 * ((current - shaped_target) ** 2).sum(dim=-1).mean()
        if type(self).dopamine_signal is DopamineModule.dopamine_signal:
            return loss, td_error, signal  # the recording is the learning signal: one call of the rule
        return loss, td_error, self.dopamine_signal(td_error)

    def observe_values(self, values: Tensor) -> None:
        """The agent hands over the (batch, channels) values of each update; kept only by modules
        that log them."""
        return None

    def stats(self) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __setstate__(self, state: dict[str, Any]) -> None:
        upgrade(self, state)  # a module saved by an older version (neuro.migrations)


DOPAMINE_MODULES: Registry[DopamineModule] = Registry("dopamine", DopamineModule, default="standard")


class SignGainTD(DopamineModule):
    """A rule that scales positive errors by ``gain_positive`` and negative ones by ``gain_negative``.

    Its DQN loss is ``gain(d) * loss(d)`` per element (SB3's Huber loss by default), so one gradient
    step moves V by ``gain(d) * d`` (``squared``) or ``gain(d) * clip(d, -1, 1)`` (``huber``); with
    both gains 1 it is SB3's loss bit for bit.

    Under bootstrapping V settles where that step is zero on average over one step's randomness:
    ``E[psi(r + gamma V(s') - V(s))] = 0`` with psi the step above, a nested statistic. With
    ``squared`` and equal gains it is the mean. With ``huber`` it is a Huber M-estimate, which weighs
    every error beyond +-1 as +-1: the mean only while the one-step targets stay within +-1 of V (or
    are symmetric about it). A rare large loss, a crash from a value of a few units, then counts for
    little, and V sits above the mean: on a crash loop at gamma 0.9 (12% crashes, 0.5 or 1 a step;
    mean return 3.17) stock DQN's Huber value is 6.14, and ``asymmetric`` kappa 0.3 with Huber gives
    4.97, pessimistic against standard's Huber value but above the mean
    (``tests/agents/test_shipped_dopamine.py``). PPO feeds GAE the unclipped errors, so there the
    statistic is the ``squared`` one whatever ``loss`` says.
    """

    gain_positive: float = 1.0
    gain_negative: float = 1.0

    def gains(self, td_error: Tensor) -> Tensor:
        return torch.where(td_error > 0, self.gain_positive, self.gain_negative).to(td_error.dtype)

    def transform(self, td_error: Tensor) -> Tensor:
        if self.gain_positive == self.gain_negative == 1.0:
            return td_error
        return self.gains(td_error) * td_error

    def dqn_loss(self, current: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        td_error = (target - current).detach()
        if self.gain_positive == self.gain_negative == 1.0 and self.loss == "huber":
            loss = F.smooth_l1_loss(current, target)  # SB3's own call: stock DQN bit for bit
        else:
            loss = (self.gains(td_error) * elementwise_loss(current, target, self.loss)).sum(dim=-1).mean()
        return loss, td_error, self.dopamine_signal(td_error)


@DOPAMINE_MODULES.register("standard")
class StandardTD(SignGainTD):
    """Stock TD learning: signal = delta (Schultz, Dayan & Montague 1997).

    With ``loss: huber`` (default) its DQN loss is SB3's own ``smooth_l1_loss``: stock DQN bit for
    bit, which learns the nested Huber M-estimate of the one-step target (see ``SignGainTD``: above
    the mean where rare large negative errors occur). ``loss: squared`` learns the mean return.

    :param loss: ``huber`` (SB3's DQN loss) or ``squared`` (the mean).
    """


    @validated
    def __init__(self, loss: LossShape = "huber") -> None:
        self.loss = loss


@DOPAMINE_MODULES.register("asymmetric")
class AsymmetricTD(SignGainTD):
    """Risk-sensitive TD: d' = (1 - kappa) d if d > 0 else (1 + kappa) d (Mihatsch & Neuneier 2002).

    kappa > 0 is pessimistic, kappa < 0 optimistic. On one-step (bandit) targets with the squared
    loss V settles at the expectile at tau = (1 - kappa) / 2 of the reward. Under bootstrapping it
    settles at Mihatsch & Neuneier's nested risk-sensitive value, the fixed point of
    ``V(s) = expectile_tau[r + gamma V(s')]`` over one step's randomness: not the tau-expectile of
    the return (a pessimistic value of every step, compounded). With ``loss: huber`` (default) it is
    the nested Huber M-estimate at the same asymmetry, ``E[gain(d) clip(d, -1, 1)] = 0``: equal to
    the nested expectile only while errors stay within +-1, and pessimistic against ``standard``'s
    Huber value, not against the mean (``SignGainTD``); kappa = 0 is ``standard`` bit for bit.

    :param kappa: risk parameter in (-1, 1).
    :param loss: ``huber`` or ``squared``.
    """


    @validated
    def __init__(self, kappa: Annotated[float, OpenInterval(-1.0, 1.0)] = 0.0, loss: LossShape = "huber") -> None:
        self.kappa = float(kappa)
        self.loss = loss
        self.gain_positive = 1.0 - self.kappa
        self.gain_negative = 1.0 + self.kappa


@DOPAMINE_MODULES.register("opponent")
class OpponentTD(SignGainTD):
    """Dopamine/serotonin opponency: DA = g+ max(d, 0), 5-HT = g- max(-d, 0), signal = DA - 5-HT
    (Daw, Kakade & Dayan 2002).

    As a learning rule it is ``asymmetric`` re-parametrised: kappa = (g- - g+) / (g- + g+) with the
    step size scaled by (g+ + g-) / 2, so it converges where that ``asymmetric`` does; what it adds
    is the two channels, logged as ``dopamine`` and ``serotonin``.

    :param gain_positive: dopamine gain g+ on positive errors, > 0.
    :param gain_negative: serotonin gain g- on negative errors, > 0.
    :param loss: ``huber`` or ``squared``.
    """


    @validated
    def __init__(self, gain_positive: Annotated[float, Positive()] = 1.0,
                 gain_negative: Annotated[float, Positive()] = 1.0, loss: LossShape = "huber") -> None:
        self.gain_positive = float(gain_positive)
        self.gain_negative = float(gain_negative)
        self.loss = loss
        self._last: tuple[Tensor, Tensor] | None = None  # read only when logged

    def dopamine_signal(self, td_error: Tensor) -> Tensor:
        dopamine = self.gain_positive * td_error.clamp(min=0.0)
        serotonin = self.gain_negative * (-td_error).clamp(min=0.0)
        self._last = (dopamine.detach(), serotonin.detach())
        return dopamine - serotonin

    def stats(self) -> dict[str, float]:
        """Mean DA and 5-HT activity of the last batch."""
        if self._last is None:
            return {}
        dopamine, serotonin = self._last
        return {"dopamine": float(dopamine.mean()), "serotonin": float(serotonin.mean())}


def saturate(td_error: Tensor, compression: float, ceiling: float) -> Tensor:
    """min(d, ceiling) if d > 0 else compression * d."""
    return torch.where(td_error > 0, td_error.clamp(max=ceiling), compression * td_error)


@DOPAMINE_MODULES.register("saturating")
class SaturatingTD(StandardTD):
    """Low-baseline dopamine (Niv, Duff & Dayan 2005): the recorded signal is min(d, ceiling) if
    d > 0 else compression * d, while learning proceeds on the unscaled error d.

    A low tonic firing rate leaves little room below it, so recordings compress negative errors,
    and the rate has a ceiling; in the paper this asymmetric *coding* explains apparent ramps in
    recordings, and values are learned by plain TD. So this module learns exactly as ``standard``
    (the mean with ``loss: squared``; with the default Huber loss, standard's Huber M-estimate)
    and logs the compressed signal as ``neuro/dopamine/signal``.
    ``biased_saturating`` learns on the compressed signal instead.

    :param compression: factor on negative errors in the recorded signal, in (0, 1].
    :param ceiling: largest positive recorded signal, > 0.
    :param loss: ``huber`` or ``squared``.
    """


    @validated
    def __init__(self, compression: Annotated[float, HalfOpenInterval(0.0, 1.0)] = 0.2,
                 ceiling: Annotated[float, Positive()] = 1.0, loss: LossShape = "huber") -> None:
        self.compression = float(compression)
        self.ceiling = float(ceiling)
        self.loss = loss

    def dopamine_signal(self, td_error: Tensor) -> Tensor:
        return saturate(td_error, self.compression, self.ceiling)


@DOPAMINE_MODULES.register("biased_saturating")
class BiasedSaturatingTD(SaturatingTD):
    """A biased rule, not Niv et al.'s model: learn on the saturated error itself,
    d' = min(d, ceiling) if d > 0 else compression * d.

    Its fixed point depends on the reward scale: while the ceiling does not bite, one-step targets
    settle at the expectile at tau = 1 / (1 + compression) (optimistic: negative errors barely
    count); a ceiling that bites pulls it back towards the median side. Under bootstrapping it is
    the nested value of that rule, like ``asymmetric``. Kept to compare with ``saturating``.

    :param compression: factor on negative errors, in (0, 1].
    :param ceiling: largest positive signal, > 0.
    :param loss: ``huber`` (the ceiling is then at most 1) or ``squared``.
    """


    def transform(self, td_error: Tensor) -> Tensor:
        return saturate(td_error, self.compression, self.ceiling)

    def dqn_loss(self, current: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        td_error = (target - current).detach()
        # Positive side: Huber with threshold = the ceiling (its gradient is min(d, ceiling)).
        threshold = min(self.ceiling, HUBER_THRESHOLD) if self.loss == "huber" else self.ceiling
        positive = F.huber_loss(current, target, reduction="none", delta=threshold)
        negative = self.compression * elementwise_loss(current, target, self.loss)
        loss = torch.where(td_error > 0, positive, negative).sum(dim=-1).mean()
        return loss, td_error, self.dopamine_signal(td_error)


@DOPAMINE_MODULES.register("average_reward")
class AverageRewardTD(StandardTD):
    """Reward-centred TD: d = r - r_bar + gamma V(s') - V(s), with r_bar += eta (r - r_bar) over the
    one-step rewards of each update (Tsitsiklis & Van Roy 1999; Daw, Kakade & Dayan 2002's tonic
    serotonin as the average reward; the discounted, centred form of Naik et al. 2024).

    In an episodic task the terminal state is absorbing with reward 0, so its centred value is
    -r_bar / (1 - gamma): a terminating transition's target is ``r - r_bar / (1 - gamma)``, not
    ``r - r_bar``. With that, for a constant rate, V converges to ``standard``'s value minus
    r_bar / (1 - gamma) (every TD error is then standard's, so with either loss: the discounted mean
    for ``squared``, its Huber M-estimate for ``huber``), which ranks actions exactly as standard TD
    (a crash costs what it costs there); as gamma -> 1 it approaches the differential value, so
    gamma = 1 is refused in this episodic form. DQN with n-step returns is refused: the rate must
    see one-step rewards.

    :param eta: step size of the average-reward estimate, in (0, 1).
    :param initial_rate: starting r_bar.
    :param loss: ``huber`` or ``squared``.
    """


    @validated
    def __init__(self, eta: Annotated[float, OpenInterval(0.0, 1.0)] = 0.01, initial_rate: float = 0.0,
                 loss: LossShape = "huber") -> None:
        self.eta = float(eta)
        self.reward_rate = float(initial_rate)
        self.loss = loss

    def check_agent(self, gamma: float, n_steps: int) -> None:
        if gamma >= 1.0:
            raise ValueError("agent.hyperparameters.gamma: average_reward needs gamma < 1 in an episodic "
                             "task (a terminal state's centred value is -r_bar / (1 - gamma))")
        if n_steps != 1:
            raise ValueError("agent.hyperparameters.n_steps: average_reward learns its rate from one-step "
                             f"rewards; n_steps must be 1 (got {n_steps})")

    def baseline(self, terminated: Tensor, gamma: float) -> Tensor:
        """r_bar for a continuing transition, r_bar / (1 - gamma) for a terminating one."""
        return self.reward_rate * (1.0 + terminated * (gamma / (1.0 - gamma)))

    def observe_rewards(self, rewards: Tensor) -> None:
        """r_bar += eta (r - r_bar) for each one-step reward in order (closed form for a batch)."""
        rewards = rewards.detach().reshape(-1).double()
        n = rewards.numel()
        if n == 0:
            return
        # After n updates: r_bar (1-eta)^n + sum_k eta (1-eta)^(n-1-k) r_k.
        decay = (1.0 - self.eta) ** torch.arange(n - 1, -1, -1, dtype=torch.float64)
        self.reward_rate = float(self.reward_rate * (1.0 - self.eta) ** n + self.eta * (decay * rewards).sum())

    def stats(self) -> dict[str, float]:
        return {"reward_rate": self.reward_rate}


def _valid_taus(taus: list[float] | None) -> list[float] | None:
    if taus is None:
        return None
    if not taus or any(not 0.0 < tau < 1.0 for tau in taus):
        raise ValueError("each must be in (0, 1)")
    if len(set(taus)) != len(taus):
        raise ValueError("must be distinct")
    return sorted(float(tau) for tau in taus)


MAX_CHANNELS = 1000  # each channel is a value head per action; 1e12 hung the config check listing its taus


def _positive_count(n_channels: int) -> int:
    if not 1 <= n_channels <= MAX_CHANNELS:
        raise ValueError(f"must be in [1, {MAX_CHANNELS}]")
    return n_channels


def _valid_acting(acting: str) -> str:
    acting = acting.replace(" ", "")
    kind, equals, level = acting.partition("=")
    try:
        valid = (kind == "mean" and not equals) or (kind in ("tau", "cvar") and 0.0 < float(level) < 1.0)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("must be mean, tau=<level> or cvar=<level>, with a level in (0, 1)")
    return acting


def atom_masses(taus: list[float]) -> list[float]:
    """Probability mass of each quantile channel read as an atom: channel i holds the levels between
    the midpoints to its neighbours (0 and 1 at the ends), so midpoint taus (i + 0.5) / n give 1/n each."""
    edges = [0.0, *((low + high) / 2.0 for low, high in zip(taus, taus[1:], strict=False)), 1.0]
    return [high - low for low, high in zip(edges, edges[1:], strict=False)]


def acting_weights(taus: list[float], code: str, acting: str) -> tuple[float, ...]:
    """Weights over channels (sorted taus) whose dot product with the channel values is the acting
    statistic; raises a ``ValueError`` naming the field if the channels cannot give it.

    ``mean``: the tau = 0.5 channel (expectile code: the mean exactly) or the average of all
    channels (quantile code, QR-DQN's mean). ``tau=x``: the channel at x, or linear interpolation
    between its two neighbours. ``cvar=x`` (quantile code): the exact CVaR at level x of the
    distribution the channels stand for, each channel an atom with the mass of ``atom_masses``:
    the atoms below x in full, the atom straddling x with the fraction of its mass below x,
    divided by x (so cvar=0.05 and cvar=0.1 differ, as they should).
    """
    n = len(taus)
    weights = [0.0] * n
    kind, _, level_text = acting.partition("=")
    if kind == "mean" and code == "quantile":
        return tuple(1.0 / n for _ in taus)
    if kind == "mean":
        if 0.5 not in taus:
            raise ValueError("acting: mean needs a tau = 0.5 channel with the expectile code (the "
                             "0.5-expectile is the mean); use an odd n_channels or add 0.5 to taus")
        weights[taus.index(0.5)] = 1.0
        return tuple(weights)
    level = float(level_text)
    if kind == "cvar":
        if code != "quantile":
            raise ValueError(f"acting: {acting} needs code: quantile (expectiles give a CVaR only "
                             "through imputation); use tau=<level> with the expectile code")
        below = 0.0
        for i, mass in enumerate(atom_masses(taus)):
            weights[i] = min(max(level - below, 0.0), mass) / level
            below += mass
        return tuple(weights)
    if not taus[0] <= level <= taus[-1]:
        raise ValueError(f"acting: {acting} is outside the channels' taus [{taus[0]:g}, {taus[-1]:g}]")
    upper = next(i for i, tau in enumerate(taus) if tau >= level)
    if taus[upper] == level:
        weights[upper] = 1.0
    else:
        lower = upper - 1
        share = (level - taus[lower]) / (taus[upper] - taus[lower])
        weights[lower], weights[upper] = 1.0 - share, share
    return tuple(weights)


EXACT_LOSS = {"expectile": "squared", "quantile": "absolute"}  # the loss each code's statistic is exact for


def _exact_loss(loss: str | None) -> str | None:
    if loss == "huber":
        raise ValueError("huber is not offered for distributional channels: Huber per (channel, sample) "
                         "pair makes quantile channels expectile-like and expectile channels neither, and "
                         "the error compounds through bootstrapping; use squared with code: expectile or "
                         "absolute with code: quantile (or leave loss out), and max_grad_norm to bound a step")
    if loss not in (None, "squared", "absolute"):
        raise ValueError("must be squared (code: expectile) or absolute (code: quantile)")
    return loss


@DOPAMINE_MODULES.register("distributional")
class DistributionalTD(DopamineModule):
    """Distributional dopamine: channel i updates V_i += a_i+ f(d_ij) if d_ij > 0 else a_i- f(d_ij)
    on d_ij = r + gamma z_j(s') - V_i(s), z_j samples of the next state's return distribution;
    V_i settles at the tau_i = a_i+ / (a_i+ + a_i-) statistic of the return (Dabney et al. 2020,
    Nature 577:671, supplement).

    ``code: quantile`` (f = sign, ``loss: absolute``): the channels are quantiles, and their values
    at s' are the samples z_j (all pairs, QR-DQN's quantile regression). Tabular, it settles at the
    fixed point of QR-DQN's projected Bellman operator: the return's quantiles as n grows; for finite
    n each channel lies within a bin in probability level (its level in the return's law is off by
    at most about 1/n), not within a bin in value, and the channels' average is not the mean (on a
    30-step Bernoulli chain with 11 channels the lowest channel sits at 0 where the true
    0.045-quantile is 0.32, and the fixed points' channel average lies anywhere in 1.33-1.56 against
    a mean of 1.50).
    ``code: expectile`` (f = identity, ``loss: squared``): the channels are expectiles; the samples
    are imputed from the next state's expectiles (Rowland et al. 2019, ``neuro.expectile_imputation``),
    since expectiles are not samples; tabular, the channels settle at the return's expectiles up to
    the imputation's error (exact when some n samples have those expectiles; largest on the extreme
    channels of a law with an atom: 0.16 on a crash loop whose returns have an atom at 0). Here
    a_i+ = 2 tau_i and a_i- = 2 (1 - tau_i), so a tau = 0.5 channel is plain TD: the mean.

    ``loss`` is each code's exact loss and the default: ``squared`` for expectiles, ``absolute`` for
    quantiles. Huber is refused: applied per (channel, sample) pair it changes the statistic (quantile
    channels become expectile-like inside the threshold, expectile channels neither expectiles nor
    the mean once the imputation spreads them again), and the error compounds through bootstrapping
    with the reward scale. SB3's ``max_grad_norm`` bounds a step instead. DQN sums the loss over
    channels, as QR-DQN does, so the shared trunk's gradient is about n times a one-channel agent's
    before ``max_grad_norm`` clips it.

    :param n_channels: number of channels; taus are (i + 0.5) / n.
    :param taus: explicit asymmetries in (0, 1) instead of ``n_channels`` (sorted here).
    :param code: ``expectile`` or ``quantile``.
    :param acting: the statistic actions (DQN) and the policy's advantage (PPO) use: ``mean``,
        ``tau=<level>`` or ``cvar=<level>`` (quantile code; the exact CVaR of the channels' atoms).
    :param loss: ``squared`` (expectile code) or ``absolute`` (quantile code); left out, the code's.
    """


    @validated
    def __init__(self, n_channels: Annotated[int, AfterValidator(_positive_count)] = 11,
                 taus: Annotated[list[float] | None, AfterValidator(_valid_taus)] = None,
                 code: Literal["expectile", "quantile"] = "expectile",
                 acting: Annotated[str, AfterValidator(_valid_acting)] = "mean",
                 loss: Annotated[str | None, AfterValidator(_exact_loss)] = None) -> None:
        if taus is None:
            taus = [(i + 0.5) / n_channels for i in range(n_channels)]
        self.taus = list(taus)
        self.code = code
        self.acting = acting
        self.loss = EXACT_LOSS[code]
        self.n_channels = len(self.taus)
        self.acting_weights = acting_weights(self.taus, code, acting)
        tau = torch.tensor(self.taus, dtype=torch.float64)
        self._tau = tau
        self._gain_positive = 2.0 * tau
        self._gain_negative = 2.0 * (1.0 - tau)
        self._last_values: Tensor | None = None

    @staticmethod
    def check_combination(n_channels: int, taus: list[float] | None, code: str, acting: str, loss: str | None) -> None:
        """The checks that span parameters (raise ``ValueError`` naming the field)."""
        if loss is not None and loss != EXACT_LOSS[code]:
            raise ValueError(f"loss: {loss} makes {'expectiles' if loss == 'squared' else 'quantiles'}; the "
                             f"{code} code takes {EXACT_LOSS[code]} (or leave loss out)")
        if taus is None:
            taus = [(i + 0.5) / n_channels for i in range(n_channels)]
        acting_weights(sorted(taus), code, acting)

    def _gains(self, td_error: Tensor, channel_dim: int) -> tuple[Tensor, Tensor]:
        shape = [1] * td_error.dim()
        shape[channel_dim] = self.n_channels
        return (self._gain_positive.to(td_error).view(shape), self._gain_negative.to(td_error).view(shape))

    def transform(self, td_error: Tensor) -> Tensor:
        """``td_error`` has the channels on its last axis."""
        f = td_error if self.code == "expectile" else torch.sign(td_error)
        gain_positive, gain_negative = self._gains(td_error, -1)
        return torch.where(td_error > 0, gain_positive * f, gain_negative * f)

    @torch.no_grad()
    def target_samples(self, targets: Tensor) -> Tensor:
        """Quantile code: the per-channel targets are the samples; expectile code: samples imputed
        so that their expectiles are the targets."""
        if self.code == "quantile":
            return targets
        return impute_samples(targets, self._tau.to(targets))

    def pairwise_td_error(self, current: Tensor, samples: Tensor) -> Tensor:
        """(batch, channels, samples): d_ij = z_j - V_i."""
        return samples.unsqueeze(-2) - current.unsqueeze(-1)

    def dqn_loss(self, current: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """All pairs: the loss of channel i against every sample z_j of the target distribution,
        averaged over j, summed over channels, averaged over the batch.

        The (batch, channels, samples) pairs stay out of autograd: the gains are constant between
        sign changes, so the gradient in V_i is minus the mean over j of gain_ij * loss'(d_ij) (the
        ``signal``), applied through a term whose value is zero.
        """
        self.observe_values(current)
        with torch.no_grad():
            samples = self.target_samples(target)
            td_pairs = self.pairwise_td_error(current, samples)
            gain_positive, gain_negative = self._gains(td_pairs, -2)
            gains = torch.where(td_pairs > 0, gain_positive, gain_negative)
            slope = shaped_error(td_pairs, self.loss)  # minus loss'(d_ij)
            gained_slope = gains * slope
            per_pair = elementwise_loss(current.unsqueeze(-1), samples.unsqueeze(-2), self.loss)  # of d_ij
            loss_value = (gains * per_pair).sum() / (td_pairs.shape[0] * td_pairs.shape[-1])
            signal = gained_slope.mean(dim=-1)
        descent = -(signal * current).sum(dim=-1).mean()  # gradient: -signal / batch
        loss = loss_value + (descent - descent.detach())
        td_error = samples.mean(dim=-1, keepdim=True) - current.detach()
        return loss, td_error, signal

    def observe_values(self, values: Tensor) -> None:
        """Remember the latest (batch, channels) values for ``stats`` (reduced only when logged)."""
        self._last_values = values.detach()

    def stats(self) -> dict[str, float]:
        """Each channel's mean value (keyed by its tau) and the spread between the extreme taus."""
        if self._last_values is None:
            return {}
        by_tau = sorted(zip(self.taus, self._last_values.mean(dim=0).tolist(), strict=True))
        values = {f"channel_value/tau_{tau:.3f}": value for tau, value in by_tau}
        low, high = by_tau[0][1], by_tau[-1][1]
        return {**values, "value_spread": high - low}
