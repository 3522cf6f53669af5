"""Network policies: SB3's policies with one MLP swapped for a network part (``neuro.networks``).

``agent.policy_kwargs.network: {type: ..., **params}`` names the part (``NETWORKS``: ``spiking``, ``mlp``
or a dotted path) and the algorithm's network policy (``network_policy_for``) asks the registry for it,
built for the sizes SB3 would give its MLP. Each policy builds exactly what SB3's would, then replaces
one network:

- DQN (and the dopamine DQN's multi-channel Q-network): the Q-network (spiking: Q-values read from a
  non-spiking output membrane, DSQN, Chen et al. 2022);
- QR-DQN: the quantile network, likewise;
- PPO/A2C: the actor's hidden layers (``value_network`` swaps the critic's too); SB3's linear
  action head reads the part's latent;
- SAC/TD3: the actor (spiking: PopSAN, Tang et al. 2020), its linear heads reading the latent; the
  critics stay SB3's MLPs, as in PopSAN.

Target networks are copies of the same class. The part sees the policy's decisions (``predict``, and
PPO's rollout ``forward``), never its gradient updates, through ``NetworkPart.deciding``: a spiking
network counts its spikes there; ``take_spike_counts`` hands them over (``agents.callbacks.SpikeLogCallback``
logs them, evaluation reports them).

``agent.policy: spiking`` with ``agent.snn`` (the first shape, kept) is the ``Spiking*Policy`` subclass:
the same policy with ``network: {type: spiking, **snn}``, saved with ``snn`` as before.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN, TQC, RecurrentPPO
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from agents.dopamine_dqn import ChannelDQNPolicy, ChannelQNetwork
from agents.dopamine_ppo import ChannelActorCriticPolicy
from neuro.networks import NETWORKS, NetworkPart, initialise
from neuro.snn.config import SnnConfig
from neuro.snn.network import PlasticReadout, SpikeCounts


class NetworkPolicy:
    """Mixin of the network policies: takes ``network`` (a ``NETWORKS`` spec), builds it where SB3
    builds the MLP it replaces (``make_network``), lets it see the decisions, and saves the spec."""

    def __init__(self, *args: Any, network: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.network = dict(network or {})
        super().__init__(*args, **kwargs)

    def make_network(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                     spec: dict[str, Any] | None = None) -> NetworkPart:
        """The part of ``spec`` (default ``network``) for SB3's sizes: ``out_features=None`` for a latent.
        A part that takes ``input_shape`` (``neuro.snn.conv``) gets the image's ``(C, H, W)`` when the
        features are an image flattened by SB3's ``FlattenExtractor`` (scaled by 1/255 in ``preprocess_obs``
        when ``normalize_images``, as ``CnnPolicy``'s are)."""
        spec = spec or self.network
        given: dict[str, Any] = {"in_features": in_features, "hidden": list(hidden), "out_features": out_features}
        cls, _ = NETWORKS.split(spec, given)
        shape = self._image_shape(in_features)
        if shape is not None and "input_shape" in inspect.signature(cls).parameters:
            given["input_shape"] = shape
        return NETWORKS.make(spec, **given).to(self.device)  # type: ignore[attr-defined]

    def _image_shape(self, in_features: int) -> tuple[int, ...] | None:
        space = self.observation_space  # type: ignore[attr-defined]
        flat = self.features_extractor_class is FlattenExtractor  # type: ignore[attr-defined]
        if flat and is_image_space(space) and math.prod(space.shape) == in_features:
            return tuple(space.shape)
        return None

    def decision_network(self) -> NetworkPart:
        """The network part that makes each decision (the actor, or the Q-network)."""
        raise NotImplementedError

    def take_spike_counts(self) -> SpikeCounts | None:
        """Spike counts of the decisions since the last call (None for a part that does not count); starts over."""
        return self.decision_network().take_counts()

    @contextmanager
    def counting_decisions(self, deterministic: bool = False) -> Iterator[None]:
        """The decision network's ``deciding`` hook: a spiking network counts its spikes and, for a
        deterministic decision, freezes a random encoder's noise."""
        with self.decision_network().deciding(deterministic):
            yield

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        with self.counting_decisions(deterministic):
            return super()._predict(observation, deterministic)  # type: ignore[misc]

    def _separate_target(self, target: nn.Module) -> None:
        """Tell the target's parts they are a copy (SB3 has just loaded the online state into them)."""
        for network in target.modules():
            if isinstance(network, NetworkPart):
                network.separate_target()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "network": self.network}  # type: ignore[misc]


class NetworkDQNPolicy(NetworkPolicy, ChannelDQNPolicy):
    """DQN policy with a network part as its Q-network; with ``n_channels`` > 1, the dopamine DQN's
    multi-channel Q-network, every channel read from the same part."""

    def make_q_net(self) -> ChannelQNetwork:
        q_net = super().make_q_net()
        out_features = int(self.action_space.n) * q_net.n_channels  # type: ignore[attr-defined]  # Discrete
        q_net.q_net = self.make_network(  # type: ignore[assignment]  # SB3 types the swapped network nn.Sequential
            q_net.features_dim, list(self.net_arch), out_features)
        return q_net

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self._separate_target(self.q_net_target)

    def decision_network(self) -> NetworkPart:
        return cast(NetworkPart, self.q_net.q_net)


class NetworkQRDQNPolicy(NetworkPolicy, QRDQNPolicy):
    """QR-DQN policy with a network part as its quantile network."""

    def make_quantile_net(self) -> QuantileNetwork:
        quantile_net = super().make_quantile_net()
        out_features = int(self.action_space.n) * quantile_net.n_quantiles  # type: ignore[attr-defined]  # Discrete
        quantile_net.quantile_net = self.make_network(  # type: ignore[assignment]  # as above
            quantile_net.features_dim, list(self.net_arch), out_features)
        return quantile_net

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self._separate_target(self.quantile_net_target)

    def decision_network(self) -> NetworkPart:
        return cast(NetworkPart, self.quantile_net.quantile_net)


class NetworkActorCriticPolicy(NetworkPolicy, ChannelActorCriticPolicy):
    """PPO/A2C policy with a network part as the actor's hidden layers (SB3's action head reads its
    latent) and SB3's critic, or the part of ``value_network`` as the critic's hidden layers."""

    def __init__(self, *args: Any, value_network: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.value_network = dict(value_network) if value_network else None
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        extractor = self.mlp_extractor
        arch = self.net_arch
        pi_arch = list(arch.get("pi", []) if isinstance(arch, dict) else arch)
        vf_arch = list(arch.get("vf", []) if isinstance(arch, dict) else arch)
        extractor.policy_net = self.make_network(self.features_dim, pi_arch, None)  # type: ignore[assignment]
        if self.value_network is not None:
            extractor.value_net = self.make_network(  # type: ignore[assignment]
                self.features_dim, vf_arch, None, self.value_network)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        if not self._plastic_action_head(lr_schedule):
            self.decision_network().readout_fan_out = _out_features(self.action_net)
        if isinstance(self.mlp_extractor.value_net, NetworkPart):
            self.mlp_extractor.value_net.readout_fan_out = _out_features(self.value_net)

    def _plastic_action_head(self, lr_schedule: Any) -> bool:
        """A plastic spiking actor (``agent.snn.plasticity``) reads the actions from its own spiking readout:
        its head replaces SB3's linear one, and the optimizer is rebuilt without the replaced parameters."""
        actor = self.decision_network()
        if not isinstance(actor, PlasticReadout) or not actor.plastic:
            return False
        if not isinstance(self.action_space, spaces.Discrete):
            raise ValueError("agent.snn.plasticity: a plastic spiking readout chooses among discrete actions; "
                             f"got {type(self.action_space).__name__} actions")
        head = actor.action_head(int(self.action_space.n))
        assert head is not None
        self.action_net = head.to(self.device)
        actor.to(self.device)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]  # as SB3's _build
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        return True

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        with self.counting_decisions(deterministic):  # PPO's rollouts decide through forward(), not predict()
            return super().forward(obs, deterministic)

    def decision_network(self) -> NetworkPart:
        return cast(NetworkPart, self.mlp_extractor.policy_net)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "value_network": self.value_network}


class NetworkSACPolicy(NetworkPolicy, SACPolicy):
    """SAC policy with a network part as the actor; its mean and log-std heads read the latent."""

    def make_actor(self, features_extractor: Any = None) -> SACActor:
        actor = super().make_actor(features_extractor)
        latent_pi = self.make_network(actor.features_dim, list(cast(list[int], self.actor_kwargs["net_arch"])), None)
        latent_pi.readout_fan_out = _out_features(actor.mu) + _out_features(actor.log_std)  # type: ignore[arg-type]
        actor.latent_pi = latent_pi  # type: ignore[assignment]  # SB3 types it nn.Sequential
        return actor

    def decision_network(self) -> NetworkPart:
        return cast(NetworkPart, self.actor.latent_pi)


class NetworkTD3Policy(NetworkPolicy, TD3Policy):
    """TD3 policy with a network part as the actor: the part (with its own linear readout), then tanh."""

    def make_actor(self, features_extractor: Any = None) -> TD3Actor:
        actor = super().make_actor(features_extractor)
        action_dim = int(self.action_space.shape[0])  # type: ignore[index]  # a Box
        actor.mu = nn.Sequential(
            self.make_network(actor.features_dim, list(cast(list[int], self.actor_kwargs["net_arch"])), action_dim),
            nn.Tanh())
        return actor

    def decision_network(self) -> NetworkPart:
        return cast(NetworkPart, self.actor.mu[0])



class SpikingPolicy(NetworkPolicy):
    """Mixin of ``agent.policy: spiking``: takes ``snn`` (an ``SnnConfig`` or its fields) for
    ``network: {type: spiking, **snn}`` (``spiking_cnn`` with ``snn.convolutions``; ``snn.critic: spiking``:
    the critic too), and saves ``snn``
    as models saved before network parts were (they load unchanged)."""

    def __init__(self, *args: Any, snn: SnnConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.snn = snn if isinstance(snn, SnnConfig) else SnnConfig(**(snn or {}))
        spec = {"type": "spiking", **self.snn.model_dump(exclude={"critic", "convolutions"})}
        if self.snn.convolutions is not None:  # an image network: the spiking CNN (neuro.snn.conv)
            spec.update(type="spiking_cnn", convolutions=[list(conv) for conv in self.snn.convolutions])
        if self.snn.critic == "spiking":  # the critic learns by gradients: the actor's plasticity is not its
            kwargs["value_network"] = {key: value for key, value in spec.items() if key != "plasticity"}
        super().__init__(*args, network=spec, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        parameters = super()._get_constructor_parameters()
        for derived in ("network", "value_network"):
            parameters.pop(derived, None)
        return {**parameters, "snn": self.snn.model_dump()}


class SpikingDQNPolicy(SpikingPolicy, NetworkDQNPolicy):
    """DQN policy with a spiking Q-network (DSQN)."""


class SpikingQRDQNPolicy(SpikingPolicy, NetworkQRDQNPolicy):
    """QR-DQN policy with a spiking quantile network."""


class SpikingActorCriticPolicy(SpikingPolicy, NetworkActorCriticPolicy):
    """PPO/A2C policy with a spiking actor and an ANN critic, or a spiking one with ``snn.critic: spiking``."""


class SpikingSACPolicy(SpikingPolicy, NetworkSACPolicy):
    """SAC policy with a spiking actor (PopSAN)."""


class SpikingTD3Policy(SpikingPolicy, NetworkTD3Policy):
    """TD3 policy with a spiking actor (PopSAN): spiking layers, a linear readout of their rates, tanh."""


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
    on exit (empty for a policy whose network does not count), and the counts from before are kept for
    the training log."""
    stats: dict[str, float] = {}
    if not isinstance(policy, NetworkPolicy):
        yield stats
        return
    network = policy.decision_network()
    before = network.take_counts()
    try:
        yield stats
        measured = network.take_counts()
        if measured is not None and measured.decisions:
            stats.update(measured.stats())
    finally:
        if before is not None:
            network.add_counts(before)


def _out_features(head: nn.Module) -> int:
    linears = [module for module in head.modules() if isinstance(module, nn.Linear)]
    return linears[-1].out_features if linears else 0


# Each algorithm's network policy and the spiking one of ``agent.policy: spiking``; most specific first:
# QRDQN is no DQN subclass, but a user's DQN subclass is. None: the algorithm has none (TQC), or its network
# policy lives in a module of its own that registers it (RecurrentPPO's: agents.recurrent_policies).
_NETWORK_POLICIES: tuple[tuple[type[BaseAlgorithm], type[NetworkPolicy] | None, type[SpikingPolicy] | None], ...] = (
    (QRDQN, NetworkQRDQNPolicy, SpikingQRDQNPolicy),
    (DQN, NetworkDQNPolicy, SpikingDQNPolicy),
    (RecurrentPPO, None, None),
    (PPO, NetworkActorCriticPolicy, SpikingActorCriticPolicy),
    (A2C, NetworkActorCriticPolicy, SpikingActorCriticPolicy),
    (TQC, None, None),
    (SAC, NetworkSACPolicy, SpikingSACPolicy),
    (TD3, NetworkTD3Policy, SpikingTD3Policy),
)


def register_network_policy(family: type[BaseAlgorithm], policy_cls: type[NetworkPolicy]) -> None:
    """Set the network policy of a family listed above, from the module that defines it."""
    global _NETWORK_POLICIES
    _NETWORK_POLICIES = tuple((algo, policy_cls if algo is family else network, spiking)
                              for algo, network, spiking in _NETWORK_POLICIES)


def network_policy_for(algo_cls: type[BaseAlgorithm]) -> type[BasePolicy] | None:
    """The policy class that takes ``policy_kwargs.network`` for an algorithm, or None where there is none."""
    for family, policy_cls, _ in _NETWORK_POLICIES:
        if issubclass(algo_cls, family):
            return policy_cls  # type: ignore[return-value]
    return None


def spiking_policy_for(algo_cls: type[BaseAlgorithm]) -> type[BasePolicy] | None:
    """The spiking policy class for an algorithm (``agent.policy: spiking``), or None where there is none."""
    for family, _, policy_cls in _NETWORK_POLICIES:
        if issubclass(algo_cls, family):
            return policy_cls  # type: ignore[return-value]
    return None


def spiking_families() -> list[str]:
    return [family.__name__ for family, _, policy_cls in _NETWORK_POLICIES if policy_cls is not None]
