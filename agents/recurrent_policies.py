"""RecurrentPPO's policy with a recurrent network part (``backpropamine``) where sb3-contrib has its LSTMs.

``agent.algo: recurrent_ppo`` with ``agent.policy_kwargs: {net_arch: [32], network: {type: backpropamine,
...}}``: the actor and the critic each get the part (the critic's from ``value_network``, else the same
spec), and SB3's heads read its latent directly. sb3-contrib keeps an LSTM's ``(h, c)`` per env and per
rollout step, each ``(n_layers, n_envs, hidden_size)``, and replays sequences from the stored state at
each sequence start with the episode starts; here the part's flat state (``state_size`` floats: the
activation and its traces) is that pair, split into two halves (``hidden_size = ceil(state_size / 2)``,
``n_layers = 1``), so the rollout buffer, minibatch sequences and ``predict(state=...)`` work unchanged.

Memory of the stored states: ``n_steps x n_envs x 2 ceil(S / 2) x 4 bytes x 2`` (actor and critic), with
S = H + traces H^2. At the shipped sizes (H = 32, simple: S = 1056; n_steps 128, 4 envs): 4.3 MB per
rollout (retroactive, S = 2080: 8.5 MB; H = 64 retroactive, S = 8256: 34 MB; the non-plastic twin,
S = 32: 0.13 MB). ``rollout_state_bytes`` computes it. With ``modulation: dopamine`` the actor keeps one float
more (V(s_{t-1})) and the critic is feedforward, its stored state a copy of the actor's, as sb3-contrib does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor, MlpExtractor
from torch import nn

from agents.spiking_policies import NetworkPolicy, register_network_policy
from neuro.dopamine import DOPAMINE_MODULES
from neuro.networks import NetworkPart
from neuro.registry import SpecError

__all__ = ["NetworkRecurrentPolicy", "PackedState", "rollout_state_bytes"]


class PackedState(nn.Module):
    """A recurrent part as sb3-contrib's LSTM slot: its flat state split into the ``(h, c)`` pair.

    :ivar num_layers: 1, and ``hidden_size``: ceil(state_size / 2), what RecurrentPPO reads to size its
        state buffers.
    """

    def __init__(self, part: NetworkPart, extra: int = 0) -> None:
        super().__init__()
        for member in ("state_size", "initial_state", "sequence"):
            if not hasattr(part, member):
                raise ValueError(f"agent.policy_kwargs.network: recurrent_ppo takes a recurrent network part "
                                 f"(one with {member}: backpropamine), got {type(part).__name__}")
        self.part = part
        self.extra = extra  # floats the policy keeps beside the part's state (the dopamine actor: V(s_{t-1}))
        self.state_size = int(cast(Any, part).state_size) + extra
        self.num_layers = 1
        self.hidden_size = math.ceil(self.state_size / 2)

    def unpack(self, states: tuple[th.Tensor, th.Tensor]) -> th.Tensor:
        """``(h, c)``, each (1, n, hidden_size) -> the flat (n, state_size)."""
        return th.cat([states[0][0], states[1][0]], dim=1)[:, :self.state_size]

    def pack(self, flat: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        padded = nn.functional.pad(flat, (0, 2 * self.hidden_size - self.state_size))
        return padded[:, :self.hidden_size].unsqueeze(0), padded[:, self.hidden_size:].unsqueeze(0)


def rollout_state_bytes(state_size: int, n_steps: int, n_envs: int) -> int:
    """What RecurrentPPO's buffer stores for one rollout: actor and critic states, float32."""
    return n_steps * n_envs * 2 * math.ceil(state_size / 2) * 4 * 2


class NetworkRecurrentPolicy(NetworkPolicy, RecurrentActorCriticPolicy):
    """RecurrentPPO's policy with a recurrent network part in the actor's and the critic's LSTM slots.

    ``net_arch``: the part's size (``[32]``, or ``{pi: [32], vf: [32]}``); SB3's action and value heads read
    its latent. ``value_network``: the critic's part (default: ``network``'s spec). sb3-contrib's LSTM
    options (``lstm_hidden_size``, ``shared_lstm``, ``enable_critic_lstm``) do not apply.

    ``modulation: dopamine`` (the third factor from outside): M(t) = D(delta(t-1)) with
    ``delta(t-1) = r(t-1) + gamma V(s_t) - V(s_{t-1})`` (0 at an episode's first step), D the ``transform``
    of the dopamine module ``dopamine`` (a ``neuro.dopamine`` spec, default ``standard``), V the critic's
    value (not differentiated through), r(t-1) the observation's last feature (``env.wrappers: [{type:
    previous_reward}]``) and ``gamma`` the algorithm's (RecurrentPPO hands it over). The critic is then
    feedforward (a tanh layer of the part's size: V(s_t) needs no recurrent state, so ``predict`` with the
    actor's state alone can compute it), and the actor's state keeps V(s_{t-1}) as one more float.
    """

    takes_algorithm: ClassVar[tuple[str, ...]] = ("gamma",)  # handed over by NeuroRecurrentPPO

    def __init__(self, *args: Any, network: dict[str, Any] | None = None,
                 value_network: dict[str, Any] | None = None, net_arch: Any = None,
                 dopamine: dict[str, Any] | None = None, gamma: float = 0.99, **kwargs: Any) -> None:
        for option in ("lstm_hidden_size", "n_lstm_layers", "shared_lstm", "enable_critic_lstm", "lstm_kwargs"):
            if option in kwargs:
                raise ValueError(f"agent.policy_kwargs.{option}: an LSTM option; a recurrent network part "
                                 "takes its size from net_arch")
        spec = dict(network or {})
        self.third_factor = spec.get("modulation") == "dopamine"
        if (value_network or {}).get("modulation") == "dopamine":
            raise ValueError("agent.policy_kwargs.value_network.modulation: the critic's own part takes 'network'; "
                             "the dopamine third factor modulates the actor")
        if self.third_factor and value_network:
            raise ValueError("agent.policy_kwargs.value_network: with network.modulation: dopamine the critic is "
                             "feedforward (its value makes the TD error); leave value_network out")
        if dopamine is not None and not self.third_factor:
            raise ValueError("agent.policy_kwargs.dopamine: only read with network.modulation: dopamine")
        self.value_network = dict(value_network) if value_network else None
        self.dopamine = dict(dopamine) if dopamine else None
        self.gamma = gamma
        arch = [32] if net_arch is None else net_arch
        self._sizes = {key: list(arch.get(key, []) if isinstance(arch, dict) else arch) for key in ("pi", "vf")}
        super().__init__(*args, network=spec, net_arch=net_arch, lstm_hidden_size=1,
                         enable_critic_lstm=not self.third_factor, **kwargs)
        # sb3-contrib built one-unit LSTMs in the slots: the parts replace them, and the optimizer is rebuilt
        actor = PackedState(self.make_network(self.features_dim, self._sizes["pi"], None), int(self.third_factor))
        self.lstm_actor = cast(nn.LSTM, actor)  # duck-typed: see PackedState
        if self.third_factor:
            self._check_third_factor_inputs()
            try:
                self.dopamine_module = DOPAMINE_MODULES.make(self.dopamine)
            except SpecError as error:
                raise ValueError(str(error).replace(DOPAMINE_MODULES.where or "neuro.dopamine",
                                                    "agent.policy_kwargs.dopamine", 1)) from None
            self.critic = nn.Sequential(  # type: ignore[assignment]  # sb3-contrib types it a Linear
                nn.Linear(self.features_dim, self._sizes["vf"][0]), nn.Tanh())
        else:
            critic = PackedState(self.make_network(self.features_dim, self._sizes["vf"], None,
                                                   self.value_network or spec))
            if critic.hidden_size != actor.hidden_size:
                raise ValueError("agent.policy_kwargs.value_network: its state must be the actor's size "
                                 "(RecurrentPPO stores one shape for both)")
            self.lstm_critic = cast(nn.LSTM, critic)
        self.lstm_hidden_state_shape = (1, 1, actor.hidden_size)
        self.optimizer = self.optimizer_class(self.parameters(), lr=self._initial_lr,  # type: ignore[call-arg]
                                              **self.optimizer_kwargs)

    def _build(self, lr_schedule: Any) -> None:
        self._initial_lr = lr_schedule(1)
        super()._build(lr_schedule)

    def _build_mlp_extractor(self) -> None:
        # The part is the hidden layer: SB3's heads read its latent (an extractor without layers).
        sizes = self._sizes
        for key in ("pi", "vf"):
            if len(sizes[key]) != 1:
                raise ValueError(f"agent.policy_kwargs.net_arch: one size per network for a recurrent part "
                                 f"([32] or {{pi: [32], vf: [32]}}), got {sizes[key]}")
        self.mlp_extractor = MlpExtractor(sizes["pi"][0], net_arch=[], activation_fn=self.activation_fn,
                                          device=self.device)
        self.mlp_extractor.latent_dim_vf = sizes["vf"][0]

    def _process_sequence(  # type: ignore[override]  # sb3-contrib's is a staticmethod taking an nn.LSTM
            self, features: th.Tensor, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor,
            lstm: PackedState) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """sb3-contrib's batch layout (n_seq sequences of equal padded length, flattened) through the part."""
        n_seq = lstm_states[0].shape[1]
        inputs = features.reshape(n_seq, -1, features.shape[-1]).swapaxes(0, 1)
        starts = episode_starts.reshape(n_seq, -1).swapaxes(0, 1)
        part = cast(Any, lstm.part)
        flat = lstm.unpack(lstm_states)
        state, kept = flat[:, :part.state_size], flat[:, part.state_size:]
        modulation = None
        if lstm.extra:  # the dopamine actor: M(t) = D(r(t-1) + gamma V(s_t) - V(s_{t-1})), 0 at an episode start
            with th.no_grad():
                latent = self.mlp_extractor.forward_critic(cast(nn.Module, self.critic)(inputs))
                values = self.value_net(latent).squeeze(-1)
                previous = th.cat([kept[:, 0].unsqueeze(0), values[:-1]])
                td_error = inputs[..., -1] + self.gamma * values - previous
                modulation = self.dopamine_module.transform(td_error) * (1.0 - starts)
            kept = values[-1].unsqueeze(1)
        outputs, state = part.sequence(inputs, state, starts, modulation)
        return th.flatten(outputs.transpose(0, 1), start_dim=0, end_dim=1), lstm.pack(th.cat([state, kept], dim=1))

    def _check_third_factor_inputs(self) -> None:
        space = self.observation_space
        flat = isinstance(space, spaces.Box) and len(space.shape) == 1
        if not (flat and self.features_extractor_class is FlattenExtractor):
            raise ValueError("agent.policy_kwargs.network.modulation: 'dopamine' reads r(t-1) from the observation's "
                             "last feature: add env.wrappers: [{type: previous_reward}] (a flat Box observation)")

    def decision_network(self) -> NetworkPart:
        return cast(PackedState, self.lstm_actor).part

    @contextmanager
    def recording(self) -> Iterator[None]:
        """The actor's part records its trace statistics for the decisions made inside the block."""
        part = self.decision_network()
        previous, part.recording = getattr(part, "recording", False), True  # type: ignore[assignment]
        try:
            yield
        finally:
            part.recording = previous  # type: ignore[assignment]

    def forward(self, obs: th.Tensor, lstm_states: Any, episode_starts: th.Tensor,  # type: ignore[override]
                deterministic: bool = False) -> Any:
        with self.counting_decisions(deterministic), self.recording():  # the rollout decides through forward()
            return RecurrentActorCriticPolicy.forward(self, obs, lstm_states, episode_starts, deterministic)

    def _predict(self, observation: Any, lstm_states: Any = None, episode_starts: Any = None,  # type: ignore[override]
                 deterministic: bool = False) -> Any:
        with self.counting_decisions(deterministic):
            return RecurrentActorCriticPolicy._predict(self, observation, lstm_states, episode_starts, deterministic)

    def network_stats(self) -> dict[str, float]:
        """The actor's part's ``stats()`` (logged under ``neuro/network/<key>`` at each rollout's end) and
        ``parameter_change``: the norm of its learned parameters' change since the last call (one PPO update)."""
        part = self.decision_network()
        stats = dict(part.stats()) if callable(getattr(part, "stats", None)) else {}  # type: ignore[operator]
        current = th.cat([parameter.detach().flatten() for parameter in part.parameters()])
        previous = getattr(self, "_previous_parameters", None)
        if previous is not None:
            stats["parameter_change"] = float((current - previous).norm())
        self._previous_parameters = current.clone()
        return stats

    def _get_constructor_parameters(self) -> dict[str, Any]:
        parameters = super()._get_constructor_parameters()
        for lstm_option in ("lstm_hidden_size", "n_lstm_layers", "shared_lstm", "enable_critic_lstm", "lstm_kwargs"):
            parameters.pop(lstm_option, None)
        return {**parameters, "value_network": self.value_network, "dopamine": self.dopamine, "gamma": self.gamma}


register_network_policy(RecurrentPPO, NetworkRecurrentPolicy)
