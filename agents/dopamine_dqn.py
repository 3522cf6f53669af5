"""DQN whose loss is built from a dopamine module's signal on each sampled transition's TD error.

With the ``standard`` module it is stock SB3 DQN, bit for bit (a test pins this). A module with
several value channels (``distributional``) gets an N-headed Q-network; actions, greedy next
actions included, use the module's acting statistic (``acting_weights`` over the channels: the
mean, a quantile or expectile, or a CVaR), and every channel's target is a sample of the next
state's return distribution (``dopamine.target_samples``; all pairs in ``dopamine.dqn_loss``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN, create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from agents.neuro_agent import OffPolicyNeuroAgent
from agents.neuro_logging import NeuroLog
from neuro.dopamine import DOPAMINE_MODULES, DopamineModule
from neuro.guards import check_finite
from neuro.migrations import acting_weights_of_channel

__all__ = ["ChannelCnnPolicy", "ChannelDQNPolicy", "ChannelMultiInputPolicy", "ChannelQNetwork", "DopamineDQN"]


class ChannelQNetwork(QNetwork):
    """SB3's QNetwork with ``n_channels`` value channels per action (one channel: SB3's exactly).

    ``forward`` gives the acting statistic, the channels weighted by ``acting_weights``.
    """

    def __init__(self, *args: Any, n_channels: int = 1, acting_weights: list[float] | None = None,
                 acting_channel: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_channels = n_channels
        self.acting_weights = resolve_acting_weights(n_channels, acting_weights, acting_channel)
        self.register_buffer("_acting", th.tensor(self.acting_weights), persistent=False)
        if n_channels > 1:
            action_dim = int(self.action_space.n)
            self.q_net = nn.Sequential(
                *create_mlp(self.features_dim, action_dim * n_channels, self.net_arch, self.activation_fn)
            )

    def all_channels(self, obs: Any) -> th.Tensor:
        """Q-values of every channel: (batch, n_channels, n_actions)."""
        q_values = self.q_net(self.extract_features(obs, self.features_extractor))
        return q_values.view(q_values.shape[0], self.n_channels, -1)

    def acting_values(self, channel_q_values: th.Tensor) -> th.Tensor:
        """(batch, n_channels, n_actions) -> the acting statistic, (batch, n_actions)."""
        if self.n_channels == 1:
            return channel_q_values[:, 0]
        return th.einsum("bca,c->ba", channel_q_values, self._acting.to(channel_q_values.dtype))

    def forward(self, obs: Any) -> th.Tensor:
        if self.n_channels == 1:
            return super().forward(obs)
        return self.acting_values(self.all_channels(obs))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_weights": list(self.acting_weights)}


def resolve_acting_weights(n_channels: int, acting_weights: list[float] | None,
                           acting_channel: int | None) -> tuple[float, ...]:
    """The weights as given; a model saved before acting statistics named one ``acting_channel``."""
    if acting_weights is None:
        return acting_weights_of_channel(n_channels, acting_channel)
    if len(acting_weights) != n_channels:
        raise ValueError(f"acting_weights: {len(acting_weights)} weights for {n_channels} channels")
    return tuple(float(w) for w in acting_weights)


class ChannelDQNPolicy(DQNPolicy):
    """DQNPolicy whose Q-networks are ``ChannelQNetwork``s."""

    def __init__(self, *args: Any, n_channels: int = 1, acting_weights: list[float] | None = None,
                 acting_channel: int | None = None, **kwargs: Any) -> None:
        self.n_channels = n_channels
        self.acting_weights = list(resolve_acting_weights(n_channels, acting_weights, acting_channel))
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> ChannelQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return ChannelQNetwork(**net_args, n_channels=self.n_channels,
                               acting_weights=self.acting_weights).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_weights": self.acting_weights}


class ChannelCnnPolicy(ChannelDQNPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = NatureCNN, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class ChannelMultiInputPolicy(ChannelDQNPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = CombinedExtractor, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


def channel_targets(q_net_target: ChannelQNetwork, dopamine: DopamineModule, next_observations: Any,
                    rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float, gamma: float) -> th.Tensor:
    """Every channel's TD target, (batch, n_channels): ``r + gamma Q_c(s', a*) - baseline`` with the
    greedy ``a*`` of the acting statistic (``dones`` are terminations only: SB3's replay buffer
    bootstraps time limits)."""
    next_q_values = q_net_target.all_channels(next_observations)  # (batch, channels, actions)
    next_actions = q_net_target.acting_values(next_q_values).argmax(dim=1).view(-1, 1, 1)
    next_q_values = next_q_values.gather(2, next_actions.expand(-1, next_q_values.shape[1], 1)).squeeze(2)
    return rewards + (1 - dones) * discounts * next_q_values - dopamine.baseline(dones, gamma)


class DopamineDQN(OffPolicyNeuroAgent, DQN):
    """DQN with pluggable neuro parts (``neuro``); all other arguments are SB3's.

    :param neuro: the parts by kind, each a built part or its spec ``{type: ..., **params}``:
        ``dopamine`` (the TD-error module; default standard TD), and the modulators
        ``learning_rate``, ``exploration`` (epsilon) and ``discount`` (see ``neuro.modulation``).
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ("dopamine", "learning_rate", "exploration", "discount")
    exposes_td_errors: ClassVar[bool] = True
    q_net: ChannelQNetwork  # built by ChannelDQNPolicy
    q_net_target: ChannelQNetwork


    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ChannelDQNPolicy,
        "CnnPolicy": ChannelCnnPolicy,
        "MultiInputPolicy": ChannelMultiInputPolicy,
    }

    def _setup_model(self) -> None:
        self._adopt_saved_parts()
        self.dopamine.check_agent(self.gamma, self.replay_buffer_kwargs.get("n_steps", self.n_steps))
        if self.dopamine.n_channels > 1:
            if not issubclass(self.policy_class, ChannelDQNPolicy):
                raise ValueError(f"neuro.dopamine: {DOPAMINE_MODULES.name_of(type(self.dopamine))} needs a "
                                 f"ChannelDQNPolicy, got {self.policy_class.__name__}")
            self.policy_kwargs = {**self.policy_kwargs, "n_channels": self.dopamine.n_channels,
                                  "acting_weights": list(self.dopamine.acting_weights)}
        super()._setup_model()
        self._neuro_log = NeuroLog()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's ``DQN.train`` with the loss from the dopamine module (see ``neuro.dopamine``)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                target_q_values = channel_targets(
                    self.q_net_target, self.dopamine, replay_data.next_observations, replay_data.rewards,
                    replay_data.dones, discounts, self.gamma,
                )
            self.dopamine.observe_rewards(replay_data.rewards)

            current_q_values = self.q_net.all_channels(replay_data.observations)
            actions = replay_data.actions.long().view(-1, 1, 1).expand(-1, current_q_values.shape[1], 1)
            current_q_values = current_q_values.gather(2, actions).squeeze(2)

            loss, td_error, dopamine_signal = self.dopamine.dqn_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):  # find the first bad quantity only when the loss is bad
                for name, value in (("td_error", td_error), ("dopamine_signal", dopamine_signal)):
                    check_finite(name, value, self.num_timesteps)
                check_finite("loss", loss, self.num_timesteps)
            self._neuro_log.add(td_error, dopamine_signal)
            self.observe_td_errors(dopamine_signal)

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def dump_logs(self) -> None:
        self._neuro_log.record(self.logger)
        super().dump_logs()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_neuro_log"]
