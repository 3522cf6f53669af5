"""PPO whose GAE runs on a dopamine module's transformed one-step TD errors.

GAE(lambda) sums discounted one-step errors: A_t = sum_k (gamma lambda)^k delta_{t+k}. Here each
delta_t becomes the module's ``dopamine_signal`` first, so the advantages (and the value targets
``A + V``) carry the module's rule. With the ``standard`` module it is stock SB3 PPO, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from agents.dopamine_logging import DopamineLog
from neuro.dopamine import DopamineModule
from neuro.guards import check_finite
from neuro.registry import make_dopamine


class DopamineRolloutBuffer(RolloutBuffer):
    """RolloutBuffer whose GAE runs on ``dopamine.transform`` of the one-step TD errors."""

    dopamine: DopamineModule | None = None
    td_error: np.ndarray | None = None
    dopamine_signal: np.ndarray | None = None

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        last_values = last_values.clone().cpu().numpy().flatten()  # type: ignore[assignment]
        # The same float32 operations as SB3's loop, done for all steps at once.
        next_values = np.concatenate([self.values[1:], last_values[None]])
        next_non_terminal = np.concatenate(
            [1.0 - self.episode_starts[1:], (1.0 - dones.astype(np.float32))[None]]
        )
        td_error = self.rewards + self.gamma * next_values * next_non_terminal - self.values
        dopamine_signal = td_error
        if self.dopamine is not None:
            dopamine_signal = self.dopamine.transform(
                th.from_numpy(td_error), th.from_numpy(self.rewards)
            ).numpy()
        last_gae_lam = 0
        for step in reversed(range(self.buffer_size)):
            last_gae_lam = (
                dopamine_signal[step] + self.gamma * self.gae_lambda * next_non_terminal[step] * last_gae_lam
            )
            self.advantages[step] = last_gae_lam
        self.returns = self.advantages + self.values
        self.td_error, self.dopamine_signal = td_error, dopamine_signal


class DopamineDictRolloutBuffer(DopamineRolloutBuffer, DictRolloutBuffer):
    """The same for Dict observations."""


class DopaminePPO(PPO):
    """PPO with a pluggable TD-error module (``dopamine``); all other arguments are SB3's.

    :param dopamine: a ``DopamineModule`` or its spec ``{type: ..., **params}``; default standard TD.
    """

    def __init__(self, policy: Any, env: Any, dopamine: DopamineModule | dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.dopamine = make_dopamine(dopamine)
        if self.dopamine.n_channels > 1:
            raise ValueError(
                f"neuro.dopamine: {self.dopamine.name} needs a {self.dopamine.n_channels}-channel value "
                "head, which PPO does not have yet; use it with algo dqn"
            )
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = DopamineDictRolloutBuffer if dict_obs else DopamineRolloutBuffer
        super()._setup_model()
        # Attached here, not through rollout_buffer_kwargs: saving would pickle a second copy.
        self.rollout_buffer.dopamine = self.dopamine

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        collected = super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        if collected and getattr(rollout_buffer, "td_error", None) is not None:
            check_finite("td_error", rollout_buffer.td_error, self.num_timesteps)
            check_finite("dopamine_signal", rollout_buffer.dopamine_signal, self.num_timesteps)
            log = DopamineLog()
            log.add(th.from_numpy(rollout_buffer.td_error), th.from_numpy(rollout_buffer.dopamine_signal))
            log.record(self.logger, self.dopamine)
        return collected

    def train(self) -> None:
        super().train()
        check_finite("loss", self.logger.name_to_value.get("train/loss", 0.0), self.num_timesteps)
