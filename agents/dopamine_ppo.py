"""PPO whose GAE runs on a dopamine module's transformed one-step TD errors.

GAE(lambda) sums discounted one-step errors: A_t = sum_k (gamma lambda)^k delta_{t+k}. Here each
delta_t becomes the module's ``dopamine_signal`` first, so the advantages (and the value targets
``A + V``) carry the module's rule. With the ``standard`` module it is stock SB3 PPO, bit for bit.

A module with N value channels (``distributional``) gets an N-output value head. SB3's rollout
collection sees only the acting channel (tau = 0.5); at GAE time every channel's values are
recomputed in one batched pass, each channel's target is ``V_i + GAE(signal_i)``, the policy's
advantage is the acting channel's, and SB3's value loss regresses all channels on their targets
(so with lambda = 0 channel i moves by exactly its signal, Dabney et al.'s rule). Time-limit
bootstrapping, which SB3 folds into the reward, uses the acting channel's value for all channels.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import CombinedExtractor
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from agents.neuro_agent import NeuroAgent
from agents.neuro_logging import NeuroLog
from neuro.dopamine import DopamineModule
from neuro.guards import check_finite


class DopamineRolloutBuffer(RolloutBuffer):
    """RolloutBuffer whose GAE runs on ``dopamine.transform`` of the one-step TD errors.

    ``channel_values``, set for multi-channel modules, returns every channel's values for the
    rollout's observations, (steps, envs, channels), and for the observation after it.
    """

    dopamine: DopamineModule | None = None
    channel_values: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    td_error: np.ndarray | None = None
    dopamine_signal: np.ndarray | None = None

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        last_values = last_values.clone().cpu().numpy().flatten()  # type: ignore[assignment]
        values, rewards = self.values, self.rewards
        # The same float32 operations as SB3's loop, done for all steps at once.
        next_non_terminal = np.concatenate(
            [1.0 - self.episode_starts[1:], (1.0 - dones.astype(np.float32))[None]]
        )
        if self.channel_values is not None:
            values, last_values = self.channel_values()
            rewards, next_non_terminal = rewards[..., None], next_non_terminal[..., None]
        next_values = np.concatenate([values[1:], last_values[None]])
        td_error = rewards + self.gamma * next_values * next_non_terminal - values
        dopamine_signal = td_error
        if self.dopamine is not None:
            dopamine_signal = self.dopamine.transform(
                th.from_numpy(td_error), th.from_numpy(self.rewards)
            ).numpy()
        gae = np.zeros_like(dopamine_signal)
        last_gae_lam = 0
        for step in reversed(range(self.buffer_size)):
            last_gae_lam = (
                dopamine_signal[step] + self.gamma * self.gae_lambda * next_non_terminal[step] * last_gae_lam
            )
            gae[step] = last_gae_lam
        if self.channel_values is None:
            self.advantages[:] = gae
        else:
            self.advantages[:] = gae[..., self.dopamine.acting_channel]
            self.values = values  # old values per channel, for SB3's value clipping and diagnostics
        self.returns = gae + values if self.channel_values is not None else self.advantages + self.values
        self.td_error, self.dopamine_signal = td_error, dopamine_signal


class DopamineDictRolloutBuffer(DopamineRolloutBuffer, DictRolloutBuffer):
    """The same for Dict observations."""


class ChannelActorCriticPolicy(ActorCriticPolicy):
    """ActorCriticPolicy with ``n_channels`` value outputs (one channel: SB3's exactly).

    ``forward`` and ``predict_values`` give the acting channel, as SB3's rollout code expects;
    ``evaluate_actions`` and ``all_values`` give every channel.
    """

    def __init__(self, *args: Any, n_channels: int = 1, acting_channel: int = 0, **kwargs: Any) -> None:
        self.n_channels = n_channels
        self.acting_channel = acting_channel
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        if self.n_channels > 1:
            self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, self.n_channels)
            if self.ortho_init:
                self.value_net.apply(partial(self.init_weights, gain=1))
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        actions, values, log_prob = super().forward(obs, deterministic)
        return actions, self._acting(values), log_prob

    def predict_values(self, obs: Any) -> th.Tensor:
        return self._acting(super().predict_values(obs))

    def all_values(self, obs: Any) -> th.Tensor:
        """Every channel's value: (batch, n_channels)."""
        return super().predict_values(obs)

    def _acting(self, values: th.Tensor) -> th.Tensor:
        if self.n_channels == 1:
            return values
        return values[:, self.acting_channel : self.acting_channel + 1]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_channel": self.acting_channel}


class ChannelMultiInputActorCriticPolicy(ChannelActorCriticPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = CombinedExtractor, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class DopaminePPO(NeuroAgent, PPO):
    """PPO with pluggable neuro parts (``neuro``); all other arguments are SB3's.

    :param neuro: the parts by kind, each a built part or its spec ``{type: ..., **params}``:
        ``dopamine`` (the TD-error module; default standard TD).
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ("dopamine",)

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ChannelActorCriticPolicy,
        "MultiInputPolicy": ChannelMultiInputActorCriticPolicy,
    }


    def _setup_model(self) -> None:
        self._adopt_saved_parts()
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = DopamineDictRolloutBuffer if dict_obs else DopamineRolloutBuffer
        if self.dopamine.n_channels > 1:
            if not issubclass(self.policy_class, ChannelActorCriticPolicy):
                raise ValueError(f"neuro.dopamine: {self.dopamine.name} needs a ChannelActorCriticPolicy, "
                                 f"got {self.policy_class.__name__}")
            if self.clip_range_vf is not None:
                raise ValueError("agent.hyperparameters.clip_range_vf: not supported with a multi-channel "
                                 f"{self.dopamine.name} module")
            self.policy_kwargs = {**self.policy_kwargs, "n_channels": self.dopamine.n_channels,
                                  "acting_channel": self.dopamine.acting_channel}
        super()._setup_model()
        # Attached here, not through rollout_buffer_kwargs: saving would pickle a second copy.
        self.rollout_buffer.dopamine = self.dopamine
        if self.dopamine.n_channels > 1:
            self.rollout_buffer.channel_values = self._channel_values

    def _channel_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Every channel's values for the rollout's observations and for the next observation."""
        buffer = self.rollout_buffer
        n_steps, n_envs = buffer.buffer_size, buffer.n_envs

        def flat(obs: Any) -> Any:
            if isinstance(obs, dict):
                return {key: value.reshape(n_steps * n_envs, *value.shape[2:]) for key, value in obs.items()}
            return obs.reshape(n_steps * n_envs, *obs.shape[2:])

        with th.no_grad():
            values = self.policy.all_values(obs_as_tensor(flat(buffer.observations), self.device))
            last_values = self.policy.all_values(obs_as_tensor(self._last_obs, self.device))
        self.dopamine.observe_values(values)
        return values.cpu().numpy().reshape(n_steps, n_envs, -1), last_values.cpu().numpy()

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        collected = super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        if collected and getattr(rollout_buffer, "td_error", None) is not None:
            check_finite("td_error", rollout_buffer.td_error, self.num_timesteps)
            check_finite("dopamine_signal", rollout_buffer.dopamine_signal, self.num_timesteps)
            log = NeuroLog()
            log.add(th.from_numpy(rollout_buffer.td_error), th.from_numpy(rollout_buffer.dopamine_signal))
            log.record(self.logger, self.neuro)
        return collected

    def train(self) -> None:
        super().train()
        check_finite("loss", self.logger.name_to_value.get("train/loss", 0.0), self.num_timesteps)
