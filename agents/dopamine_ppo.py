"""PPO whose GAE runs on a dopamine module's transformed one-step TD errors.

GAE(lambda) sums discounted one-step errors: A_t = sum_k (gamma lambda)^k delta_{t+k}. Here each
delta_t becomes the module's learning signal first, so the advantages (and the value targets
``A + V``) carry the module's rule. With the ``standard`` module it is stock SB3 PPO, bit for bit.
PPO has no DQN loss: the errors enter GAE unclipped, as in stock PPO, whatever ``loss`` says.

A module with N value channels (``distributional``) gets an N-output value head. SB3's rollout
collection sees the acting statistic (the channels weighted by ``acting_weights``). At GAE time
every channel's values are recomputed in one batched pass; channel i's one-step signal is
``mean_j transform_i(r + gamma z_j(s') - V_i(s))`` over samples z_j of the next state's return
distribution (``dopamine.target_samples``: all pairs), its target is ``V_i + GAE(signal_i)``, and
SB3's value loss regresses all channels on their targets. With ``gae_lambda = 0`` channel i makes
Dabney et al.'s update exactly; with lambda > 0 it sums (gamma lambda)-discounted signals, an
approximation of the distributional lambda-return. The policy's advantage is GAE of the acting
statistic's own TD error, so it keeps the errors' magnitudes. SB3's value loss averages over
channels, so each channel's regression weighs vf_coef / N (their sum weighs vf_coef).

Each step's raw rewards and terminations are recorded as SB3 collects them (``_StepRecorder``),
before SB3 folds a time limit's bootstrap into the reward: ``average_reward`` learns its rate from
the raw one-step rewards and adds the terminal correction only where an episode terminated, and
each channel bootstraps a time limit from its own value of the final observation.
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
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn

from agents.dopamine_dqn import resolve_acting_weights
from agents.neuro_agent import OnPolicyNeuroAgent
from agents.neuro_logging import NeuroLog
from neuro.dopamine import DOPAMINE_MODULES, DopamineModule
from neuro.guards import check_finite

__all__ = ["ChannelActorCriticPolicy", "ChannelCnnActorCriticPolicy", "ChannelMultiInputActorCriticPolicy",
           "DopamineDictRolloutBuffer", "DopaminePPO", "DopamineRolloutBuffer"]


def discounted_sums(signal: np.ndarray, next_non_terminal: np.ndarray, decay: float) -> np.ndarray:
    """GAE's backward recursion: ``out_t = signal_t + decay * next_non_terminal_t * out_{t+1}``."""
    out = np.zeros_like(signal)
    running = 0
    for step in reversed(range(signal.shape[0])):
        running = signal[step] + decay * next_non_terminal[step] * running
        out[step] = running
    return out


class DopamineRolloutBuffer(RolloutBuffer):
    """RolloutBuffer whose GAE runs on the dopamine module's signal of the one-step TD errors.

    ``channel_values``, set for multi-channel modules, returns every channel's values for the
    rollout's observations, (steps, envs, channels), and for the observation after it.
    ``raw_rewards``, ``terminated`` and ``truncation_values`` are filled per step by
    ``_StepRecorder`` while SB3 collects (a buffer filled otherwise treats every episode end as a
    termination and its rewards as raw).
    """

    dopamine: DopamineModule | None = None
    channel_values: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    td_error: np.ndarray | None = None
    dopamine_signal: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self.raw_rewards = np.full((self.buffer_size, self.n_envs), np.nan, dtype=np.float32)
        self.terminated = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.truncation_values: dict[tuple[int, int], np.ndarray] = {}  # (step, env) -> channel values

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        last = last_values.clone().cpu().numpy().flatten()
        # The same float32 operations as SB3's loop, done for all steps at once.
        next_non_terminal = np.concatenate(
            [1.0 - self.episode_starts[1:], (1.0 - dones.astype(np.float32))[None]]
        )
        dopamine = self.dopamine
        recorded = not np.isnan(self.raw_rewards).any()
        raw_rewards = self.raw_rewards if recorded else self.rewards
        terminated = self.terminated if recorded else 1.0 - next_non_terminal
        raw_baseline = 0.0 if dopamine is None else dopamine.baseline(th.from_numpy(terminated), self.gamma)
        baseline = raw_baseline.numpy().astype(np.float32) if isinstance(raw_baseline, th.Tensor) else raw_baseline
        if dopamine is not None:
            dopamine.observe_rewards(th.from_numpy(raw_rewards))

        if self.channel_values is None:
            next_values = np.concatenate([self.values[1:], last[None]])
            td_error = self.rewards + self.gamma * next_values * next_non_terminal - self.values
            if isinstance(baseline, np.ndarray):
                td_error = td_error - baseline
            signal = td_error if dopamine is None else dopamine.transform(th.from_numpy(td_error)).numpy()
            dopamine_signal = (td_error if dopamine is None
                               else dopamine.dopamine_signal(th.from_numpy(td_error)).numpy())
            self.advantages[:] = discounted_sums(signal, next_non_terminal, self.gamma * self.gae_lambda)
            self.returns = self.advantages + self.values
        else:
            td_error, signal, dopamine_signal = self._channel_errors(next_non_terminal, raw_rewards, baseline)
        self.td_error, self.dopamine_signal = td_error, dopamine_signal

    def _channel_errors(self, next_non_terminal: np.ndarray, raw_rewards: np.ndarray,
                        baseline: np.ndarray | float) -> tuple[np.ndarray, ...]:
        """Per-channel all-pairs signals and targets; the policy's advantage from the acting statistic."""
        dopamine = self.dopamine
        assert dopamine is not None and self.channel_values is not None  # DopaminePPO sets both for several channels
        values, last_values = self.channel_values()  # (steps, envs, C), (envs, C)
        n_channels = values.shape[-1]
        next_values = np.concatenate([values[1:], last_values[None]])
        weights = np.asarray(dopamine.acting_weights, dtype=np.float32)
        # Each channel bootstraps a time limit from its own value of the final observation.
        channel_rewards = np.repeat(raw_rewards[..., None], n_channels, axis=-1)
        for (step, env), final_values in self.truncation_values.items():
            channel_rewards[step, env] += self.gamma * final_values
        baseline_c = baseline[..., None] if isinstance(baseline, np.ndarray) else baseline
        targets = channel_rewards + self.gamma * next_values * next_non_terminal[..., None] - baseline_c
        with th.no_grad():
            samples = dopamine.target_samples(th.from_numpy(targets.reshape(-1, n_channels)))
            flat_values = th.from_numpy(values.reshape(-1, n_channels))
            pairs = samples.unsqueeze(-1) - flat_values.unsqueeze(-2)  # (N, samples, channels)
            signal = dopamine.transform(pairs).mean(dim=-2).numpy().reshape(values.shape)
            dopamine_signal = dopamine.dopamine_signal(pairs).mean(dim=-2).numpy().reshape(values.shape)
            td_error = (samples.mean(dim=-1, keepdim=True) - flat_values).numpy().reshape(values.shape)
        channel_advantages = discounted_sums(signal, next_non_terminal[..., None], self.gamma * self.gae_lambda)
        self.returns = channel_advantages + values
        acting_values, next_acting = values @ weights, next_values @ weights
        acting_td_error = self.rewards + self.gamma * next_acting * next_non_terminal - acting_values
        if isinstance(baseline, np.ndarray):
            acting_td_error = acting_td_error - baseline
        self.advantages[:] = discounted_sums(acting_td_error, next_non_terminal, self.gamma * self.gae_lambda)
        self.values = values  # old values per channel, for SB3's diagnostics
        return td_error, signal, dopamine_signal


class _StepRecorder(VecEnvWrapper):
    """Records each step's raw rewards and terminations in the rollout buffer before SB3 folds a
    time limit's bootstrap into the reward; for multi-channel modules also every channel's value
    of a truncated episode's final observation."""

    def __init__(self, venv: VecEnv, buffer: DopamineRolloutBuffer,
                 final_values: Callable[[Any], np.ndarray] | None) -> None:
        super().__init__(venv)
        self.buffer = buffer
        self.final_values = final_values

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        step = self.buffer.pos
        self.buffer.raw_rewards[step] = rewards
        for env in np.flatnonzero(dones):  # only episodes that ended: no per-step loop over all envs
            info = infos[env]
            truncated = bool(info.get("TimeLimit.truncated", False))
            self.buffer.terminated[step, env] = float(not truncated)
            if truncated and self.final_values is not None and info.get("terminal_observation") is not None:
                self.buffer.truncation_values[(step, int(env))] = self.final_values(info["terminal_observation"])
        return observations, rewards, dones, infos


class DopamineDictRolloutBuffer(DopamineRolloutBuffer, DictRolloutBuffer):
    """The same for Dict observations."""


class ChannelActorCriticPolicy(ActorCriticPolicy):
    """ActorCriticPolicy with ``n_channels`` value outputs (one channel: SB3's exactly).

    ``forward`` and ``predict_values`` give the acting statistic (the channels weighted by
    ``acting_weights``), as SB3's rollout code expects; ``evaluate_actions`` and ``all_values``
    give every channel.
    """

    _acting: th.Tensor  # a buffer, registered in _build

    def __init__(self, *args: Any, n_channels: int = 1, acting_weights: list[float] | None = None,
                 acting_channel: int | None = None, **kwargs: Any) -> None:
        self.n_channels = n_channels
        self.acting_weights = list(resolve_acting_weights(n_channels, acting_weights, acting_channel))
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        if self.n_channels > 1:
            self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, self.n_channels)
            if self.ortho_init:
                self.value_net.apply(partial(self.init_weights, gain=1))
            self.optimizer = self.optimizer_class(  # type: ignore[call-arg]  # as SB3's _build
                self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        self.register_buffer("_acting", th.tensor(self.acting_weights), persistent=False)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        actions, values, log_prob = super().forward(obs, deterministic)
        return actions, self._acting_statistic(values), log_prob

    def predict_values(self, obs: Any) -> th.Tensor:
        return self._acting_statistic(super().predict_values(obs))

    def all_values(self, obs: Any) -> th.Tensor:
        """Every channel's value: (batch, n_channels)."""
        return super().predict_values(obs)

    def _acting_statistic(self, values: th.Tensor) -> th.Tensor:
        if self.n_channels == 1:
            return values
        return values @ self._acting.to(values.dtype).unsqueeze(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "n_channels": self.n_channels,
                "acting_weights": self.acting_weights}


class ChannelCnnActorCriticPolicy(ChannelActorCriticPolicy):
    """The same for images (SB3's ``CnnPolicy``: NatureCNN features)."""

    def __init__(self, *args: Any, features_extractor_class: type = NatureCNN, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class ChannelMultiInputActorCriticPolicy(ChannelActorCriticPolicy):
    def __init__(self, *args: Any, features_extractor_class: type = CombinedExtractor, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class DopaminePPO(OnPolicyNeuroAgent, PPO):
    """PPO with pluggable neuro parts (``neuro``); all other arguments are SB3's.

    :param neuro: the parts by kind, each a built part or its spec ``{type: ..., **params}``:
        ``dopamine`` (the TD-error module; default standard TD), and the modulators
        ``learning_rate``, ``exploration`` (the entropy coefficient) and ``discount``
        (see ``neuro.modulation``).
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ("dopamine", "learning_rate", "exploration", "discount")
    exposes_td_errors: ClassVar[bool] = True
    policy: ChannelActorCriticPolicy
    rollout_buffer: DopamineRolloutBuffer  # _setup_model picks it (or its dict variant)

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ChannelActorCriticPolicy,
        "CnnPolicy": ChannelCnnActorCriticPolicy,
        "MultiInputPolicy": ChannelMultiInputActorCriticPolicy,
    }

    def _setup_model(self) -> None:
        self._adopt_saved_parts()
        self.dopamine.check_agent(self.gamma, 1)
        name = DOPAMINE_MODULES.name_of(type(self.dopamine))
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = DopamineDictRolloutBuffer if dict_obs else DopamineRolloutBuffer
        if self.dopamine.n_channels > 1:
            if not issubclass(self.policy_class, ChannelActorCriticPolicy):
                raise ValueError(f"neuro.dopamine: {name} needs a ChannelActorCriticPolicy, "
                                 f"got {self.policy_class.__name__}")
            if self.clip_range_vf is not None:
                raise ValueError("agent.hyperparameters.clip_range_vf: not supported with a multi-channel "
                                 f"{name} module")
            self.policy_kwargs = {**self.policy_kwargs, "n_channels": self.dopamine.n_channels,
                                  "acting_weights": list(self.dopamine.acting_weights)}
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
            last_values = self.policy.all_values(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
        self.dopamine.observe_values(values)
        return values.cpu().numpy().reshape(n_steps, n_envs, -1), last_values.cpu().numpy()

    def _final_values(self, observation: Any) -> np.ndarray:
        """Every channel's value of one final observation."""
        obs_tensor, _ = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            return self.policy.all_values(obs_tensor)[0].cpu().numpy()

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        if isinstance(rollout_buffer, DopamineRolloutBuffer):
            final_values = self._final_values if self.dopamine.n_channels > 1 else None
            env = _StepRecorder(env, rollout_buffer, final_values)
        collected = super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        if (collected and isinstance(rollout_buffer, DopamineRolloutBuffer) and rollout_buffer.td_error is not None
                and rollout_buffer.dopamine_signal is not None):

            check_finite("td_error", rollout_buffer.td_error, self.num_timesteps)
            check_finite("dopamine_signal", rollout_buffer.dopamine_signal, self.num_timesteps)
            log = NeuroLog()
            log.add(th.from_numpy(rollout_buffer.td_error), th.from_numpy(rollout_buffer.dopamine_signal))
            log.record(self.logger)
            self.observe_td_errors(rollout_buffer.dopamine_signal)
        return collected

    def train(self) -> None:
        super().train()
        check_finite("loss", self.logger.name_to_value.get("train/loss", 0.0), self.num_timesteps)
