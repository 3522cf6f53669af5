"""Encoders: real-valued observations (features) to what the first spiking layer receives.

An encoder returns either a current held for all T steps (``direct``: the first layer's product
is then computed once) or spikes ``(T, batch, out_features)``. ``agent.snn.encoder`` names one:
``direct``, ``poisson``, ``population``, or ``package.module:Class`` for a user's own (a subclass
of ``Encoder``, built as ``Class(in_features, **params)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import torch
from pydantic import Field
from snntorch import surrogate
from torch import nn

from neuro.registry import Positive, Registry


class Encoder(nn.Module):
    """Maps features ``(batch, in_features)`` to the first layer's input.

    ``spiking`` is False when ``forward`` returns a real-valued current ``(batch, out_features)`` that
    is the same at every step (counted as multiply-accumulates in the energy estimate); True when it
    returns spikes ``(T, batch, out_features)`` (counted as synaptic operations).
    """

    spiking: bool = True

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = in_features
        self.freeze = False  # a random encoder restarts its noise at every call while True (``frozen``)

    def forward(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        raise NotImplementedError

    def encoding_macs(self) -> int:
        """Multiply-accumulates the encoder itself spends per input row (0 for a pass-through)."""
        return 0

    def membrane_neurons(self) -> int:
        """Neurons with a membrane the encoder updates at every step (0: no neurons of its own)."""
        return 0

    @contextmanager
    def frozen(self, freeze: bool = True) -> Iterator[None]:
        """Inside the block a random encoder draws its noise afresh from its seed at every call, so its
        output is a function of the input (a deterministic policy's decisions); others are unaffected."""
        before = self.freeze
        self.freeze = freeze
        try:
            yield
        finally:
            self.freeze = before


ENCODERS: Registry[Encoder] = Registry("encoder", Encoder, default="direct", where="agent.snn.encoder")


@ENCODERS.register("direct")
class DirectEncoder(Encoder):
    """Direct current injection (Rueckauer et al. 2017): the features are the input current at every step.

    Rule: ``I[t] = W x`` for all t, so the first layer's product is computed once and the first
    spiking layer is the first to emit events.
    """

    spiking = False

    def forward(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        return features


@ENCODERS.register("poisson")
class PoissonEncoder(Encoder):
    """Poisson rate coding with ON and OFF channels (Diehl et al. 2015, signed inputs split in two).

    Rule: ``S_on[t] ~ Bernoulli(clip(x, 0, 1))``, ``S_off[t] ~ Bernoulli(clip(-x, 0, 1))`` independently at
    each step, so a channel's mean rate equals its input intensity; inputs beyond [-1, 1] saturate
    (normalised observations, such as highway-env's Kinematics, fit). Gradients do not pass the sampling.

    The draws come from the encoder's own generator, never torch's global one, so decisions do not move
    the run's other random streams (SB3's own sampling) and the twin ANN sees the same streams. Its seed
    is the run's (``torch.initial_seed()`` when built: SB3 seeds torch before it builds the policy)
    unless given; its state is saved with the network (``state_dict``), so a resumed run continues it.
    Inside ``frozen()`` every call restarts from the seed: a deterministic policy's spikes are then a
    function of the observation alone, and the same seed gives the same actions.

    :param seed: the generator's seed (default: the run's, offset so it is a stream of its own).
    """

    SEED_OFFSET = 0x5EED_0001  # keeps the encoder's stream apart from the global generator's same seed

    def __init__(self, in_features: int, seed: int | None = None) -> None:
        super().__init__(in_features)
        self.out_features = 2 * in_features
        self.seed = (torch.initial_seed() + self.SEED_OFFSET if seed is None else seed) % 2**63
        self.generator = torch.Generator().manual_seed(self.seed)  # CPU: uniforms are drawn there, then moved
        # A model saved before the generator existed has no ``_extra_state``: keep the fresh one.
        self.register_load_state_dict_pre_hook(self._fill_missing_state)

    def forward(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        intensity = torch.cat([features, -features], dim=-1).clamp(0.0, 1.0).detach()
        generator = torch.Generator().manual_seed(self.seed) if self.freeze else self.generator
        uniform = torch.rand((timesteps, *intensity.shape), generator=generator).to(intensity.device)
        return (uniform < intensity).to(intensity.dtype)  # Bernoulli(p): P(U < p) = p

    def get_extra_state(self) -> torch.Tensor:
        """The generator's state with the seed's 8 bytes appended: one byte tensor, so it saves and
        compares like any other entry of a state dict (SB3 loads them with ``weights_only``)."""
        seed = torch.tensor([self.seed], dtype=torch.int64).view(torch.uint8)
        return torch.cat([self.generator.get_state(), seed])

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.seed = int(state[-8:].clone().view(torch.int64).item())
        self.generator.set_state(state[:-8].clone())

    def _fill_missing_state(self, module: nn.Module, state_dict: dict[str, Any], prefix: str,
                            *args: Any) -> None:
        state_dict.setdefault(f"{prefix}_extra_state", self.get_extra_state())


@ENCODERS.register("population")
class PopulationEncoder(Encoder):
    """PopSAN's population coding (Tang et al. 2020): each input drives ``population_size`` neurons
    through learnable Gaussian receptive fields, and those neurons spike deterministically.

    Rule: ``A_ij = exp(-(x_i - mu_ij)^2 / (2 sigma_ij^2))``; the encoding neurons integrate ``A`` and fire
    (``U[t] = U[t-1] + A - S[t-1] theta``, ``theta = 0.999``), so their rate grows with ``A``; mu and sigma
    learn through the spike's surrogate gradient. The means start evenly spaced over
    ``[low, high]`` and sigma at their spacing, so neighbouring fields cross at exp(-1/8) = 0.88.

    :param population_size: neurons per input.
    :param low: lower end of the range the receptive fields cover at the start.
    :param high: upper end of that range.
    :param surrogate_slope: the encoding spike's surrogate slope.
    """

    threshold = 0.999  # PopSAN's 1 - epsilon: an input at a field's centre fires at every step

    def __init__(self, in_features: int, population_size: Annotated[int, Field(ge=2, le=1000)] = 10,
                 low: float = -1.0, high: float = 1.0,
                 surrogate_slope: Annotated[float, Positive()] = 25.0) -> None:
        super().__init__(in_features)
        self.check_combination(low=low, high=high)  # the registry runs it first; direct construction too
        self.population_size = population_size
        self.out_features = in_features * population_size
        spacing = (high - low) / (population_size - 1)
        centres = torch.linspace(low, high, population_size)
        self.mean = nn.Parameter(centres.repeat(in_features, 1))  # (in_features, population_size)
        self.std = nn.Parameter(torch.full((in_features, population_size), spacing))
        self.spike = surrogate.fast_sigmoid(slope=surrogate_slope)

    @staticmethod
    def check_combination(low: float = -1.0, high: float = 1.0, **_: object) -> None:
        if not high > low:
            raise ValueError(f"high: must be > low ({low}), got {high}")

    def activation(self, features: torch.Tensor) -> torch.Tensor:
        """Receptive-field activations ``A``, ``(batch, in_features * population_size)``."""
        distance = features.unsqueeze(-1) - self.mean
        return torch.exp(-0.5 * (distance / self.std) ** 2).flatten(1)

    def forward(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        activation = self.activation(features)
        membrane = torch.zeros_like(activation)
        previous_spike = torch.zeros_like(activation)
        spikes = []
        for _ in range(timesteps):
            membrane = membrane + activation - previous_spike * self.threshold
            spike = self.spike(membrane - self.threshold)
            previous_spike = spike.detach()
            spikes.append(spike)
        return torch.stack(spikes)

    def encoding_macs(self) -> int:
        return self.out_features  # one Gaussian per encoding neuron, counted as one multiply-accumulate

    def membrane_neurons(self) -> int:
        return self.out_features  # each encoding neuron integrates its activation at every step

