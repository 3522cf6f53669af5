"""Spiking policies: SB3's policies with their MLPs swapped for ``neuro.snn.SpikingMLP``.

``agent.policy: spiking`` picks the one for the algorithm (``spiking_policy_for``); ``agent.snn``
configures it. Each policy builds exactly what SB3's would, then replaces one network:

- DQN (and the dopamine DQN's multi-channel Q-network): the Q-network, Q-values read from a
  non-spiking output membrane (DSQN, Chen et al. 2022);
- QR-DQN: the quantile network, likewise;
- PPO/A2C: the actor's hidden layers (``snn.critic: spiking`` swaps the critic's too); SB3's linear
  action head reads the last layer's firing rates;
- SAC/TD3: the actor (PopSAN, Tang et al. 2020), its linear heads reading the last layer's rates;
  the critics stay ANNs, as in PopSAN.

Target networks are copies of the same class, so they spike too. The spikes of the decision-making
network are counted while the policy decides (``predict``, and PPO's rollout ``forward``), never
during gradient updates; ``take_spike_counts`` hands them over (``agents.callbacks.SpikeLogCallback``
logs them, evaluation reports them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch as th
from sb3_contrib import QRDQN, TQC, RecurrentPPO
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from agents.dopamine_dqn import ChannelDQNPolicy, ChannelQNetwork
from agents.dopamine_ppo import ChannelActorCriticPolicy
from neuro.snn.config import SnnConfig
from neuro.snn.encoders import PoissonEncoder
from neuro.snn.network import SpikeCounts, SpikingMLP, counting, initialise


class SpikingPolicy:
    """Mixin of the spiking policies: takes ``snn`` (an ``SnnConfig`` or its fields), counts the
    decision network's spikes while deciding, and saves ``snn`` with the model."""

    def __init__(self, *args: Any, snn: SnnConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.snn = snn if isinstance(snn, SnnConfig) else SnnConfig(**(snn or {}))
        super().__init__(*args, **kwargs)

    def spiking_mlp(self, in_features: int, hidden: list[int], out_features: int | None) -> SpikingMLP:
        return SpikingMLP(in_features, hidden, out_features, self.snn).to(self.device)  # type: ignore[attr-defined]

    def decision_network(self) -> SpikingMLP:
        """The spiking network whose spikes make each decision (the actor, or the Q-network)."""
        raise NotImplementedError

    def take_spike_counts(self) -> SpikeCounts:
        """Spike counts of the decisions since the last call; starts over."""
        return self.decision_network().take_counts()

    @contextmanager
    def counting_decisions(self, deterministic: bool = False) -> Iterator[None]:
        """Count the decision network's spikes; for a deterministic decision, freeze a random encoder's
        noise (``Encoder.frozen``) so the action depends on the observation alone."""
        network = self.decision_network()
        with counting(network), network.encoder.frozen(deterministic):
            yield

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        with self.counting_decisions(deterministic):
            return super()._predict(observation, deterministic)  # type: ignore[misc]

    def _separate_target_noise(self, online: nn.Module, target: nn.Module) -> None:
        """SB3 copies the online network's state into its target, the encoder's generator with it: give
        the target a stream of its own, so the two do not draw the same noise."""
        for network in target.modules():
            if isinstance(network, SpikingMLP) and isinstance(network.encoder, PoissonEncoder):
                network.encoder.seed += 1
                network.encoder.generator.manual_seed(network.encoder.seed)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "snn": self.snn.model_dump()}  # type: ignore[misc]


class SpikingDQNPolicy(SpikingPolicy, ChannelDQNPolicy):
    """DQN policy with a spiking Q-network (DSQN); with ``n_channels`` > 1, the dopamine DQN's
    multi-channel Q-network, every channel read from the same spiking layers."""

    def make_q_net(self) -> ChannelQNetwork:
        q_net = super().make_q_net()
        out_features = int(self.action_space.n) * q_net.n_channels  # type: ignore[attr-defined]  # Discrete
        q_net.q_net = self.spiking_mlp(  # type: ignore[assignment]  # SB3 types the swapped network nn.Sequential
            q_net.features_dim, list(self.net_arch), out_features)
        return q_net

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self._separate_target_noise(self.q_net, self.q_net_target)

    def decision_network(self) -> SpikingMLP:
        return cast(SpikingMLP, self.q_net.q_net)


class SpikingQRDQNPolicy(SpikingPolicy, QRDQNPolicy):
    """QR-DQN policy with a spiking quantile network."""

    def make_quantile_net(self) -> QuantileNetwork:
        quantile_net = super().make_quantile_net()
        out_features = int(self.action_space.n) * quantile_net.n_quantiles  # type: ignore[attr-defined]  # Discrete
        quantile_net.quantile_net = self.spiking_mlp(  # type: ignore[assignment]  # as above
            quantile_net.features_dim, list(self.net_arch), out_features)
        return quantile_net

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self._separate_target_noise(self.quantile_net, self.quantile_net_target)

    def decision_network(self) -> SpikingMLP:
        return cast(SpikingMLP, self.quantile_net.quantile_net)


class SpikingActorCriticPolicy(SpikingPolicy, ChannelActorCriticPolicy):
    """PPO/A2C policy with a spiking actor (its latent is the last layer's firing rates) and an ANN
    critic, or a spiking one with ``snn.critic: spiking``."""

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        extractor = self.mlp_extractor
        arch = self.net_arch
        pi_arch = list(arch.get("pi", []) if isinstance(arch, dict) else arch)
        vf_arch = list(arch.get("vf", []) if isinstance(arch, dict) else arch)
        extractor.policy_net = self.spiking_mlp(self.features_dim, pi_arch, None)  # type: ignore[assignment]
        if self.snn.critic == "spiking":
            extractor.value_net = self.spiking_mlp(self.features_dim, vf_arch, None)  # type: ignore[assignment]

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.decision_network().readout_fan_out = _out_features(self.action_net)
        if self.snn.critic == "spiking":
            cast(SpikingMLP, self.mlp_extractor.value_net).readout_fan_out = _out_features(self.value_net)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        with self.counting_decisions(deterministic):  # PPO's rollouts decide through forward(), not predict()
            return super().forward(obs, deterministic)

    def decision_network(self) -> SpikingMLP:
        return cast(SpikingMLP, self.mlp_extractor.policy_net)


class SpikingSACPolicy(SpikingPolicy, SACPolicy):
    """SAC policy with a spiking actor (PopSAN); its mean and log-std heads read the firing rates."""

    def make_actor(self, features_extractor: Any = None) -> SACActor:
        actor = super().make_actor(features_extractor)
        latent_pi = self.spiking_mlp(actor.features_dim, list(cast(list[int], self.actor_kwargs["net_arch"])), None)
        latent_pi.readout_fan_out = _out_features(actor.mu) + _out_features(actor.log_std)  # type: ignore[arg-type]

        actor.latent_pi = latent_pi  # type: ignore[assignment]  # SB3 types it nn.Sequential
        return actor

    def decision_network(self) -> SpikingMLP:
        return cast(SpikingMLP, self.actor.latent_pi)


class SpikingTD3Policy(SpikingPolicy, TD3Policy):
    """TD3 policy with a spiking actor (PopSAN): spiking layers, a linear readout of their rates, tanh."""

    def make_actor(self, features_extractor: Any = None) -> TD3Actor:
        actor = super().make_actor(features_extractor)
        action_dim = int(self.action_space.shape[0])  # type: ignore[index]  # a Box
        actor.mu = nn.Sequential(
            self.spiking_mlp(actor.features_dim, list(cast(list[int], self.actor_kwargs["net_arch"])), action_dim),
            nn.Tanh())
        return actor

    def decision_network(self) -> SpikingMLP:
        return cast(SpikingMLP, self.actor.mu[0])



class TwinPolicy:
    """Mixin of an ANN twin's policy: ``init`` initialises its hidden layers as a spiking network's
    ``agent.snn.init`` does (``neuro.snn.network.initialise``), so a twin pair differs in its neurons,
    not in its starting weights; the output heads keep PyTorch's default on both sides.

    ``agent.policy: agents.spiking_policies:TwinDQNPolicy`` (or ``TwinSACPolicy``) with
    ``policy_kwargs: {init: orthogonal}``. PPO/A2C need none: SB3's ``ortho_init`` (on by default)
    initialises the ANN's and the spiking actor's hidden layers alike.
    """

    def __init__(self, *args: Any, init: str = "torch", **kwargs: Any) -> None:
        if init not in ("orthogonal", "torch"):
            raise ValueError(f"policy_kwargs.init: 'orthogonal' or 'torch', got {init!r}")
        self.init = init
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "init": self.init}  # type: ignore[misc]


def hidden_linears(module: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of an MLP that an activation follows (all but a final head)."""
    children = list(module.children()) if isinstance(module, nn.Sequential) else []
    return [layer for layer, after in zip(children, children[1:], strict=False)
            if isinstance(layer, nn.Linear) and not isinstance(after, nn.Linear)]


class TwinDQNPolicy(TwinPolicy, ChannelDQNPolicy):
    """The ANN twin of ``SpikingDQNPolicy`` with the same ``init`` option for its hidden layers."""

    def make_q_net(self) -> ChannelQNetwork:
        q_net = super().make_q_net()
        initialise(hidden_linears(q_net.q_net), self.init)
        return q_net


class TwinSACPolicy(TwinPolicy, SACPolicy):
    """The ANN twin of ``SpikingSACPolicy`` with the same ``init`` option for the actor's hidden layers
    (the critics are ANNs on both sides and keep PyTorch's default)."""

    def make_actor(self, features_extractor: Any = None) -> SACActor:
        actor = super().make_actor(features_extractor)
        initialise(hidden_linears(actor.latent_pi), self.init)
        return actor


@contextmanager
def separate_spike_counts(policy: BasePolicy) -> Iterator[dict[str, float]]:
    """Count the decisions made inside the block apart: the yielded dict holds their ``SpikeCounts.stats()``
    on exit (empty for a policy that does not spike), and the counts from before are kept for the training log."""
    stats: dict[str, float] = {}
    if not isinstance(policy, SpikingPolicy):
        yield stats
        return
    network = policy.decision_network()
    before = network.take_counts()
    try:
        yield stats
        measured = network.take_counts()
        if measured.decisions:
            stats.update(measured.stats())
    finally:
        network.add_counts(before)


def _out_features(head: nn.Module) -> int:
    linears = [module for module in head.modules() if isinstance(module, nn.Linear)]
    return linears[-1].out_features if linears else 0


# Most specific first: QRDQN is no DQN subclass, but a user's DQN subclass is.
_SPIKING_POLICIES: tuple[tuple[type[BaseAlgorithm], type[BasePolicy] | None], ...] = (
    (QRDQN, SpikingQRDQNPolicy),
    (DQN, SpikingDQNPolicy),
    (RecurrentPPO, None),
    (PPO, SpikingActorCriticPolicy),
    (A2C, SpikingActorCriticPolicy),
    (TQC, None),
    (SAC, SpikingSACPolicy),
    (TD3, SpikingTD3Policy),
)


def spiking_policy_for(algo_cls: type[BaseAlgorithm]) -> type[BasePolicy] | None:
    """The spiking policy class for an algorithm, or None where there is none."""
    for family, policy_cls in _SPIKING_POLICIES:
        if issubclass(algo_cls, family):
            return policy_cls
    return None


def spiking_families() -> list[str]:
    return [family.__name__ for family, policy_cls in _SPIKING_POLICIES if policy_cls is not None]
