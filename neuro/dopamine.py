"""Dopamine-style TD-error modules: what the TD error becomes before it drives learning.

Phasic dopamine carries a reward prediction error (Schultz, Dayan & Montague 1997). Each module
maps the TD error ``td_error`` (delta = r + gamma V(s') - V(s)) to a ``dopamine_signal`` that
replaces it in the update ``V(s) += alpha * signal``. Plain torch, no SB3: the agents wire these
into DQN's per-sample loss and PPO's GAE.

Interface (a user's own module implements the same and loads by dotted path):

- ``transform(td_error, reward=None) -> signal`` (same shape; may update the module's state);
- ``dqn_loss(current, target, reward) -> (loss, td_error, signal)``: a loss whose gradient with
  respect to ``current`` is ``-signal`` (per sample, averaged), for DQN;
- ``n_channels`` and ``acting_channel``: value channels the Q-network needs, and the one actions use;
- ``observe_values(values)``: the (batch, channels) values of the last update, for ``stats``;
- ``stats() -> dict[str, float]``: module-specific values to log;
- ``state_dict()`` / ``load_state_dict()``: whatever state the module carries.

``DOPAMINE_MODULES`` maps ``neuro.dopamine.type`` to these classes; constructor annotations carry
each parameter's bounds, checked by the registry before anything is built (and by ``validate_call``
when a module is constructed directly in Python).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import AfterValidator, validate_call
from torch import Tensor

from neuro.registry import HalfOpenInterval, OpenInterval, Positive, Registry


class DopamineModule:
    """Base class: the identity signal, and a DQN loss built from ``transform``.

    The loss is a per-sample squared loss to a module-shaped target, ``0.5 (Q - sg(Q + signal))^2``
    summed over channels and averaged over the batch: its gradient with respect to Q is exactly
    ``-signal`` (divided by the batch size), so one gradient step applies the module's rule.
    """

    name: ClassVar[str] = "base"
    n_channels: int = 1
    acting_channel: int = 0

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
        return td_error

    def dqn_loss(
        self, current: Tensor, target: Tensor, reward: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``current`` and ``target`` are (batch, channels); returns (loss, td_error, signal)."""
        td_error = (target - current).detach()
        signal = self.transform(td_error, reward)
        shaped_target = (current + signal).detach()
        loss = 0.5 * ((current - shaped_target) ** 2).sum(dim=-1).mean()
        return loss, td_error, signal

    def observe_values(self, values: Tensor) -> None:
        """The agent hands over the (batch, channels) values of each update; kept only by modules
        that log them."""
        return None

    def stats(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


DOPAMINE_MODULES: Registry[DopamineModule] = Registry("dopamine", DopamineModule, default="standard")


@DOPAMINE_MODULES.register("standard")
class StandardTD(DopamineModule):
    """Stock TD learning: signal = delta (Schultz, Dayan & Montague 1997).

    Its DQN loss is SB3's own ``smooth_l1_loss``, so it reproduces stock DQN bit for bit.
    """

    name = "standard"

    def dqn_loss(
        self, current: Tensor, target: Tensor, reward: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        td_error = (target - current).detach()
        return F.smooth_l1_loss(current, target), td_error, td_error


@DOPAMINE_MODULES.register("asymmetric")
class AsymmetricTD(DopamineModule):
    """Risk-sensitive TD: d' = (1 - kappa) d if d > 0 else (1 + kappa) d (Mihatsch & Neuneier 2002).

    kappa > 0 is pessimistic, kappa < 0 optimistic; the fixed point of V is the expectile at
    tau = (1 - kappa) / 2 of the target distribution.

    :param kappa: risk parameter in (-1, 1).
    """

    name = "asymmetric"

    @validate_call
    def __init__(self, kappa: Annotated[float, OpenInterval(-1.0, 1.0)] = 0.0) -> None:
        self.kappa = float(kappa)

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
        return torch.where(td_error > 0, (1.0 - self.kappa) * td_error, (1.0 + self.kappa) * td_error)


@DOPAMINE_MODULES.register("saturating")
class SaturatingTD(DopamineModule):
    """Low-baseline dopamine: d' = min(d, ceiling) if d > 0 else compression * d
    (Niv, Duff & Dayan 2005: a low tonic baseline leaves little room below it, so negative
    errors are compressed; the firing rate has a ceiling, so positive errors are bounded).

    :param compression: factor on negative errors, in (0, 1].
    :param ceiling: largest positive signal, > 0.
    """

    name = "saturating"

    @validate_call
    def __init__(self, compression: Annotated[float, HalfOpenInterval(0.0, 1.0)] = 0.2,
                 ceiling: Annotated[float, Positive()] = 1.0) -> None:
        self.compression = float(compression)
        self.ceiling = float(ceiling)

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
        return torch.where(td_error > 0, td_error.clamp(max=self.ceiling), self.compression * td_error)


@DOPAMINE_MODULES.register("opponent")
class OpponentTD(DopamineModule):
    """Dopamine/serotonin opponency: DA = g+ max(d, 0), 5-HT = g- max(-d, 0), signal = DA - 5-HT
    (Daw, Kakade & Dayan 2002).

    :param gain_positive: dopamine gain g+ on positive errors, > 0.
    :param gain_negative: serotonin gain g- on negative errors, > 0.
    """

    name = "opponent"

    @validate_call
    def __init__(self, gain_positive: Annotated[float, Positive()] = 1.0,
                 gain_negative: Annotated[float, Positive()] = 1.0) -> None:
        self.gain_positive = float(gain_positive)
        self.gain_negative = float(gain_negative)
        self._last: tuple[Tensor, Tensor] | None = None  # read only when logged

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
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


@DOPAMINE_MODULES.register("average_reward")
class AverageRewardTD(DopamineModule):
    """Differential TD: d = r - r_bar + V(s') - V(s), with r_bar += eta (r - r_bar) per sample
    (Daw, Kakade & Dayan 2002; Tsitsiklis & Van Roy 1999). The agent supplies delta with the
    reward included, so the signal is ``delta - r_bar``; use it with gamma close to 1.

    :param eta: step size of the average-reward estimate, in (0, 1).
    :param initial_rate: starting r_bar.
    """

    name = "average_reward"

    @validate_call
    def __init__(self, eta: Annotated[float, OpenInterval(0.0, 1.0)] = 0.01, initial_rate: float = 0.0) -> None:
        self.eta = float(eta)
        self.reward_rate = float(initial_rate)

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
        if reward is None:
            raise ValueError("average_reward needs the rewards of the batch")
        signal = td_error - self.reward_rate
        self.update_rate(reward)
        return signal

    def update_rate(self, reward: Tensor) -> None:
        """r_bar += eta (r - r_bar) for each reward in order (closed form for a batch)."""
        rewards = reward.detach().reshape(-1).double()
        n = rewards.numel()
        if n == 0:
            return
        # After n updates: r_bar (1-eta)^n + sum_k eta (1-eta)^(n-1-k) r_k.
        decay = (1.0 - self.eta) ** torch.arange(n - 1, -1, -1, dtype=torch.float64)
        self.reward_rate = float(self.reward_rate * (1.0 - self.eta) ** n + self.eta * (decay * rewards).sum())

    def stats(self) -> dict[str, float]:
        return {"reward_rate": self.reward_rate}

    def state_dict(self) -> dict[str, Any]:
        return {"reward_rate": self.reward_rate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reward_rate = float(state["reward_rate"])


def _odd_channel_count(n_channels: int) -> int:
    if n_channels < 1 or n_channels % 2 == 0:
        raise ValueError("must be a positive odd integer (the middle channel, tau = 0.5, acts)")
    return n_channels


def _taus_with_a_median(taus: list[float] | None) -> list[float] | None:
    if taus is None:
        return None
    if not taus or any(not 0.0 < tau < 1.0 for tau in taus):
        raise ValueError("each must be in (0, 1)")
    if 0.5 not in taus:
        raise ValueError("must contain 0.5 (the acting channel)")
    return taus


@DOPAMINE_MODULES.register("distributional")
class DistributionalTD(DopamineModule):
    """Distributional dopamine: channel i updates V_i += a_i+ f(d_i) if d_i > 0 else a_i- f(d_i),
    settling at tau_i = a_i+ / (a_i+ + a_i-) (Dabney et al. 2020, Nature 577:671).

    f(d) = d (``code: expectile``) makes V_i the tau_i-expectile, f(d) = sign(d) (``quantile``) the
    tau_i-quantile. Here a_i+ = 2 tau_i and a_i- = 2 (1 - tau_i), so the tau = 0.5 channel is plain
    TD; actions use it (the mean, for the expectile code).

    :param n_channels: number of channels; taus are (i + 0.5) / n, so n must be odd.
    :param taus: explicit asymmetries in (0, 1) instead of ``n_channels``; must contain 0.5.
    :param code: ``expectile`` or ``quantile``.
    """

    name = "distributional"

    @validate_call
    def __init__(self, n_channels: Annotated[int, AfterValidator(_odd_channel_count)] = 11,
                 taus: Annotated[list[float] | None, AfterValidator(_taus_with_a_median)] = None,
                 code: Literal["expectile", "quantile"] = "expectile") -> None:
        if taus is None:
            taus = [(i + 0.5) / n_channels for i in range(n_channels)]
        taus = [float(t) for t in taus]
        self.taus = taus
        self.code = code
        self.n_channels = len(taus)
        self.acting_channel = taus.index(0.5)
        tau = torch.tensor(taus)
        self._gain_positive = 2.0 * tau
        self._gain_negative = 2.0 * (1.0 - tau)
        self._last_values: Tensor | None = None

    def transform(self, td_error: Tensor, reward: Tensor | None = None) -> Tensor:
        """``td_error`` has the channels on its last axis."""
        f = td_error if self.code == "expectile" else torch.sign(td_error)
        gain_positive = self._gain_positive.to(td_error)
        gain_negative = self._gain_negative.to(td_error)
        return torch.where(td_error > 0, gain_positive * f, gain_negative * f)

    def dqn_loss(
        self, current: Tensor, target: Tensor, reward: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        self.observe_values(current)
        return super().dqn_loss(current, target, reward)

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

