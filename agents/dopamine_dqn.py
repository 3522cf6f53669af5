"""DQN whose loss is built from a dopamine module's signal on each sampled transition's TD error.

With the ``standard`` module it is stock SB3 DQN, bit for bit (a test pins this). A module with
several value channels (``distributional``) gets an N-headed Q-network; actions use its
``acting_channel`` (tau = 0.5).
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

from agents.neuro_agent import NeuroAgent
from agents.neuro_logging import NeuroLog
from neuro.guards import check_finite


class ChannelQNetwork(QNetwork):
    """SB3's QNetwork with ``n_channels`` value channels per action (one channel: SB3's exactly)."""

    def __init__(self, *args: Any, n_channels: int = 1, acting_channel: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_channels = n_channels
        self.acting_channel = acting_channel
        if n_channels > 1:
            action_dim = int(self.action_space.n)
            self.q_net = nn.Sequential(
                *create_mlp(self.features_dim, action_dim * n_channels, self.net_arch, self.activation_fn)
            )

    def all_channels(self, obs: Any) -> th.Tensor:
        """Q-values of every channel: (batch, n_channels, n_actions)."""
        q_values = self.q_net(self.extract_features(obs, self.features_extractor))
        return q_values.view(q_values.shape[0], self.n_channels, -1)

    def forward(self, obs: Any) -> th.Tensor:
        if self.n_channels == 1:
            return super().forward(obs)
        return self.all_channels(obs)[:, self.acting_channel]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_channel": self.acting_channel}


class ChannelDQNPolicy(DQNPolicy):
    """DQNPolicy whose Q-networks are ``ChannelQNetwork``s."""

    def __init__(self, *args: Any, n_channels: int = 1, acting_channel: int = 0, **kwargs: Any) -> None:
        self.n_channels = n_channels
        self.acting_channel = acting_channel
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> ChannelQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return ChannelQNetwork(**net_args, n_channels=self.n_channels,
                               acting_channel=self.acting_channel).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_channel": self.acting_channel}


class ChannelCnnPolicy(ChannelDQNPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = NatureCNN, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class ChannelMultiInputPolicy(ChannelDQNPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = CombinedExtractor, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class DopamineDQN(NeuroAgent, DQN):
    """DQN with pluggable neuro parts (``neuro``); all other arguments are SB3's.

    :param neuro: the parts by kind, each a built part or its spec ``{type: ..., **params}``:
        ``dopamine`` (the TD-error module; default standard TD).
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ("dopamine",)

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ChannelDQNPolicy,
        "CnnPolicy": ChannelCnnPolicy,
        "MultiInputPolicy": ChannelMultiInputPolicy,
    }

    def _setup_model(self) -> None:
        self._adopt_saved_parts()
        if self.dopamine.n_channels > 1:
            if not issubclass(self.policy_class, ChannelDQNPolicy):
                raise ValueError(f"neuro.dopamine: {self.dopamine.name} needs a ChannelDQNPolicy, "
                                 f"got {self.policy_class.__name__}")
            self.policy_kwargs = {**self.policy_kwargs, "n_channels": self.dopamine.n_channels,
                                  "acting_channel": self.dopamine.acting_channel}
        super()._setup_model()
        self._neuro_log = NeuroLog()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's ``DQN.train`` with the loss from the dopamine module (see ``neuro.dopamine``)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        n_channels, acting = self.dopamine.n_channels, self.dopamine.acting_channel
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # (batch, channels, actions); the greedy next action comes from the acting channel.
                next_q_values = self.q_net_target.all_channels(replay_data.next_observations)
                next_actions = next_q_values[:, acting].argmax(dim=1).view(-1, 1, 1)
                next_q_values = next_q_values.gather(2, next_actions.expand(-1, n_channels, 1)).squeeze(2)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = self.q_net.all_channels(replay_data.observations)
            actions = replay_data.actions.long().view(-1, 1, 1).expand(-1, n_channels, 1)
            current_q_values = current_q_values.gather(2, actions).squeeze(2)

            loss, td_error, dopamine_signal = self.dopamine.dqn_loss(
                current_q_values, target_q_values, replay_data.rewards
            )
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):  # find the first bad quantity only when the loss is bad
                for name, value in (("td_error", td_error), ("dopamine_signal", dopamine_signal)):
                    check_finite(name, value, self.num_timesteps)
                check_finite("loss", loss, self.num_timesteps)
            self._neuro_log.add(td_error, dopamine_signal)

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def dump_logs(self) -> None:
        self._neuro_log.record(self.logger, self.neuro)
        super().dump_logs()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_neuro_log"]
