"""Feature extractors for highway-env's observations (policy_kwargs.features_extractor_class).

``RunningNormalization`` standardises inputs as VecNormalize does, but keeps its statistics in the
policy, so ``model.zip`` alone evaluates, records and resumes correctly. ``EgoAttention`` reads the
Kinematics rows (one per vehicle, ego first) as a set: an MLP over the flattened rows depends on
which slot each vehicle lands in (highway-env's FAQ).
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class RunningNormalization(BaseFeaturesExtractor):
    """Flatten, then standardise each input: clip((x - mean) / sqrt(var + eps), -clip, clip).

    mean and var are running moments of every batch the policy trains on (Chan et al.'s parallel
    update, as SB3's ``RunningMeanStd`` behind ``VecNormalize``); acting and evaluation only read
    them. They are buffers named ``running_*``, so DQN's target network copies them with its weights.

    :param clip: bound on the standardised values.
    :param epsilon: added to the variance; also the prior count, as in ``RunningMeanStd``.
    """

    running_mean: torch.Tensor  # buffers, registered in __init__
    running_var: torch.Tensor
    running_count: torch.Tensor


    def __init__(self, observation_space: spaces.Space, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        n_inputs = get_flattened_obs_dim(observation_space)
        super().__init__(observation_space, features_dim=n_inputs)
        if clip <= 0:
            raise ValueError(f"features_extractor_kwargs.clip: must be > 0, got {clip}")
        self.clip = clip
        self.epsilon = epsilon
        self.flatten = nn.Flatten()
        self.register_buffer("running_mean", torch.zeros(n_inputs))
        self.register_buffer("running_var", torch.ones(n_inputs))
        self.register_buffer("running_count", torch.tensor(epsilon))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch_mean = batch.mean(dim=0)
        batch_var = batch.var(dim=0, unbiased=False)
        batch_count = batch.shape[0]
        delta = batch_mean - self.running_mean
        total = self.running_count + batch_count
        self.running_mean += delta * batch_count / total
        self.running_var.copy_(
            (self.running_var * self.running_count + batch_var * batch_count
             + delta.square() * self.running_count * batch_count / total) / total
        )
        self.running_count.copy_(total)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        inputs = self.flatten(observations)
        if self.training:
            self.update(inputs)
        scaled = (inputs - self.running_mean) / torch.sqrt(self.running_var + self.epsilon)
        return scaled.clamp(-self.clip, self.clip)


class EgoAttention(BaseFeaturesExtractor):
    """Ego-attention over vehicles: the ego row queries every present vehicle's row.

    features = [embed(ego), MultiHeadAttention(q=embed(ego), k=v=embed(vehicles))], with
    absent vehicles (presence feature 0) masked out. Leurent & Mguni 2019, "Social Attention
    for Autonomous Decision-Making in Dense Traffic".

    :param embed_dim: width of each vehicle's embedding and of the attention output.
    :param heads: attention heads.
    :param presence_index: column of the presence feature, or ``None`` when there is none.
    """

    def __init__(self, observation_space: spaces.Box, embed_dim: int = 64, heads: int = 2,
                 presence_index: int | None = 0) -> None:
        if len(observation_space.shape) != 2:
            raise ValueError(
                "policy_kwargs.features_extractor_class: EgoAttention needs a (vehicles, features) "
                f"Kinematics observation, got shape {observation_space.shape}"
            )
        if embed_dim % heads:
            raise ValueError(f"features_extractor_kwargs.embed_dim: must divide by heads={heads}, got {embed_dim}")
        super().__init__(observation_space, features_dim=2 * embed_dim)
        n_features = observation_space.shape[1]
        self.presence_index = presence_index
        self.embed = nn.Sequential(
            nn.Linear(n_features, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim), nn.ReLU(),
        )
        self.attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        vehicles = self.embed(observations)
        ego = vehicles[:, :1]
        absent = None
        if self.presence_index is not None:
            absent = observations[..., self.presence_index] < 0.5
            absent[:, 0] = False  # the ego row is always attended to, so no row is all-masked
        attended, _ = self.attention(ego, vehicles, vehicles, key_padding_mask=absent, need_weights=False)
        return torch.cat([ego[:, 0], attended[:, 0]], dim=1)
