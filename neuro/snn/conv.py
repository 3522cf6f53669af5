"""Convolutional network parts for image observations: the spiking ``spiking_cnn`` and its ANN twin ``cnn``.

Both read the flat features SB3's ``FlattenExtractor`` hands a network part (an image already scaled to
[0, 1] by SB3's ``preprocess_obs``) and the image shape ``(C, H, W)`` the network policy gives them as
``input_shape`` (``agents.spiking_policies.NetworkPolicy.make_network``). Their default convolutions are
SB3's ``NatureCNN`` (Mnih et al. 2015): 32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1, no padding;
the linear layers after them are SB3's ``net_arch`` (``hidden``: ``[512]`` is NatureCNN's feature layer).
With the same ``init`` and seed the two build their layers in the same order and start from the same
weights (direct encoding; Poisson's ON/OFF channels double the first convolution's inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, Literal

import torch
from torch import nn

from neuro.networks import NETWORKS, NetworkPart, initialise
from neuro.snn.config import SnnConfig, encoder_spec
from neuro.snn.encoders import ENCODERS, PoissonEncoder, PopulationEncoder
from neuro.snn.network import PlasticReadout, SpikeCounts, SpikingSettings, counting, time_weights
from neuro.snn.neurons import LIF
from neuro.snn.operations import conv_fan_out, conv_macs, conv_output_size

__all__ = ["CNN", "NATURE_CNN", "SpikingCNN"]

# (out_channels, kernel, stride) of each convolution, no padding: SB3's NatureCNN.
NATURE_CNN: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
ConvolutionSpec = Sequence[Sequence[int]]


def image_shape(part: str, in_features: int, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a convolutional part reads; refuses a part given no image."""
    if input_shape is None:
        raise ValueError(f"agent.policy_kwargs.network: {part} reads images: it needs an image observation "
                         f"(a uint8 Box (C, H, W), flattened by SB3's FlattenExtractor); got {in_features} features")
    shape = tuple(int(size) for size in input_shape)
    if len(shape) != 3 or math.prod(shape) != in_features:
        raise ValueError(f"input_shape: (C, H, W) with C*H*W = in_features ({in_features}), got {shape}")
    return shape[0], shape[1], shape[2]


def conv_stack(in_channels: int, height: int, width: int,
               convolutions: ConvolutionSpec) -> tuple[list[nn.Conv2d], list[tuple[int, int, int]]]:
    """The convolutions, and the ``(C, H, W)`` each one reads and the last one writes (one more than convs)."""
    convs: list[nn.Conv2d] = []
    maps = [(in_channels, height, width)]
    for index, spec in enumerate(convolutions):
        if len(spec) != 3 or min(spec) < 1:
            raise ValueError(f"convolutions[{index}]: [out_channels, kernel, stride], positive ints; got {list(spec)}")
        channels, kernel, stride = (int(value) for value in spec)
        _, h, w = maps[-1]
        if kernel > min(h, w):
            raise ValueError(f"convolutions[{index}]: a {kernel}x{kernel} kernel does not fit its {h}x{w} input")
        convs.append(nn.Conv2d(maps[-1][0], channels, kernel_size=kernel, stride=stride))
        maps.append((channels, conv_output_size(h, kernel, stride), conv_output_size(w, kernel, stride)))
    return convs, maps


def linear_macs(sizes: Sequence[int]) -> int:
    return sum(a * b for a, b in pairwise(sizes))


@NETWORKS.register("cnn")
class CNN(NetworkPart):
    """SB3's NatureCNN and its MLP as one network part: ``Conv2d -> ReLU`` per convolution, flatten,
    ``Linear -> activation`` per hidden layer, a linear head (none for a latent). With ``hidden=[512]`` and
    no head it is NatureCNN layer for layer; the ANN twin of ``spiking_cnn``.

    :param input_shape: the image ``(C, H, W)`` (the network policy passes it).
    :param convolutions: ``[out_channels, kernel, stride]`` per convolution (no padding).
    :param activation: the hidden linear layers' (the convolutions are followed by ReLU, as NatureCNN).
    :param init: ``torch`` (PyTorch's default, as SB3) or ``orthogonal`` (gain sqrt(2), zero bias, as
        ``agent.snn.init``), for the convolutions and hidden layers (``neuro.networks.initialise``).
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                 input_shape: Sequence[int] | None = None, convolutions: ConvolutionSpec = NATURE_CNN,
                 activation: Literal["relu", "tanh"] = "relu", init: Literal["torch", "orthogonal"] = "torch") -> None:
        super().__init__()
        self.input_shape = image_shape("cnn", in_features, input_shape)
        convs, self.maps = conv_stack(*self.input_shape, convolutions)
        sizes = [math.prod(self.maps[-1]), *hidden]
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in pairwise(sizes)]
        initialise([*convs, *linears], init)
        layers: list[nn.Module] = []
        for conv in convs:
            layers += [conv, nn.ReLU()]
        layers.append(nn.Flatten())
        for linear in linears:
            layers += [linear, nn.ReLU() if activation == "relu" else nn.Tanh()]
        readout = nn.Linear(sizes[-1], out_features) if out_features is not None else None
        self.net = nn.Sequential(*layers, *([readout] if readout is not None else []))
        self.readout = readout
        self.convs = convs
        self.sizes = sizes
        self.out_features = sizes[-1] if out_features is None else out_features
        self.readout_fan_out = out_features or 0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.view(features.shape[0], *self.input_shape))

    def dense_macs(self) -> int:
        """MACs per input row: the convolutions on their maps, the linear layers, the head (or the heads
        reading the latent, ``readout_fan_out``)."""
        convs = sum(conv_macs(conv, h, w) for conv, (_, h, w) in zip(self.convs, self.maps, strict=False))
        return convs + linear_macs(self.sizes) + self.sizes[-1] * self.readout_fan_out


@NETWORKS.register("spiking_cnn")
class SpikingCNN(PlasticReadout, NetworkPart):
    """Encoder -> convolutional LIF layers -> LIF layers (``hidden``) -> the non-spiking readout of ``SpikingMLP``.

    Rule: ``S_l[t] = LIF(W_l * S_(l-1)[t])`` with ``*`` a convolution (Kheradpisheh et al. 2018's
    spiking convolutions, trained by surrogate gradients, Neftci et al. 2019; DSQN's spiking Q-network on
    images, Chen et al. 2022), then ``y = W_out sum_t w_t S_L[t] + b`` as ``SpikingMLP``. A convolution's
    SOPs count each spike times its exact fan-out at its position (``conv_fan_out``).

    :param input_shape: the image ``(C, H, W)`` (the network policy passes it).
    :param convolutions: ``[out_channels, kernel, stride]`` per convolution (no padding).
    :param config: the ``SnnConfig`` (or its fields); ``settings``: its fields as keywords. Encoders:
        ``direct`` (the first convolution computed once), ``poisson`` (ON/OFF channels, 2C inputs; the OFF
        channels stay silent on images in [0, 1]); a population code of every pixel is refused
        (``population_size`` times the image's neurons).

    With ``plasticity`` (``layers: readout``) the readout is ``SpikingMLP``'s plastic spiking readout
    (``PlasticReadout``: one LIF neuron per output, learned by the rule, the convolutions and hidden layers
    by surrogate gradients); ``layers: all`` is refused (a rule for convolutions' shared kernels is not built).
    """

    settings_model = SpikingSettings

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                 input_shape: Sequence[int] | None = None, convolutions: ConvolutionSpec = NATURE_CNN,
                 config: SnnConfig | dict[str, Any] | None = None, **settings: Any) -> None:
        super().__init__()
        if config is not None and settings:
            raise ValueError("SpikingCNN: give config or its fields as keywords, not both")
        if config is None:
            config = SnnConfig(**SpikingSettings(**settings).model_dump())
        elif not isinstance(config, SnnConfig):
            config = SnnConfig(**config)
        channels, height, width = self.input_shape = image_shape("spiking_cnn", in_features, input_shape)
        encoder = encoder_spec(config.encoder)
        if issubclass(ENCODERS.split(encoder, {"in_features": in_features})[0], PopulationEncoder):
            raise ValueError("agent.policy_kwargs.network.encoder: spiking_cnn takes direct or poisson (a population "
                             "code would give every pixel population_size neurons)")
        if config.plasticity is not None and config.plasticity.layers != "readout":
            raise ValueError("agent.snn.plasticity.layers: spiking_cnn learns its readout alone by the rule; "
                             f"allowed: readout (got {config.plasticity.layers!r})")
        self.config = config
        self.timesteps = config.timesteps
        self.encoder = ENCODERS.make(encoder, in_features=in_features)
        if self.encoder.out_features % (height * width):
            raise ValueError(f"agent.policy_kwargs.network.encoder: spiking_cnn needs whole {height}x{width} channels "
                             f"from its encoder; got {self.encoder.out_features} outputs")
        convs, self.maps = conv_stack(self.encoder.out_features // (height * width), height, width, convolutions)
        sizes = [math.prod(self.maps[-1]), *hidden]
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in pairwise(sizes)]
        initialise([*convs, *linears], config.init)
        self.convs = nn.ModuleList(convs)
        self.conv_layers = convs  # the same modules, typed, for the counts
        self.layers = nn.ModuleList(linears)
        lif = (config.beta, config.threshold, config.surrogate_slope, config.learn_beta, config.reset)
        self.conv_neurons = nn.ModuleList(LIF(math.prod(shape), *lif) for shape in self.maps[1:])
        self.neurons = nn.ModuleList(LIF(size, *lif) for size in hidden)
        self.sizes = sizes
        self.out_features = self._build_readout(config.plasticity, sizes[-1], out_features)
        self.register_buffer("readout_weights", time_weights(self.timesteps, config.readout_decay), persistent=False)
        self.in_features = in_features
        self.readout_fan_out = out_features or 0
        # Synapses per spike of each neuron feeding a convolution, in the layer's flat (C, H, W) order.
        for index, (conv, (c, h, w)) in enumerate(zip(convs, self.maps, strict=False)):
            fan_out = conv_fan_out(conv, h, w).float().expand(c, h, w).flatten()
            self.register_buffer(f"conv_fan_out_{index}", fan_out, persistent=False)
        self.counting = False
        self._decisions = 0
        self._sums: torch.Tensor | None = None  # (2, layers): spikes and synaptic events, summed

    def _readout_in_features(self) -> int:
        return self.sizes[-1]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        layer_spikes = self._propagate(features)
        rates = torch.tensordot(self.readout_weights, layer_spikes[-1], dims=1)
        if self.counting:
            self._count(layer_spikes, features.shape[0])
        if self.output_neurons is not None:  # a spiking readout: its firing rates are the output
            return rates
        return self.readout(rates) if self.readout is not None else rates

    def _propagate(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Every spiking layer's spikes ``(T, batch, size)``: a spiking encoder's, the convolutions' (flat
        ``(C, H, W)``), the hidden layers', a spiking readout's last."""
        batch, steps = features.shape[0], self.timesteps
        encoded = self.encoder(features, steps)
        layer_spikes = []
        if self.encoder.spiking:  # (T, batch, 2CHW) -> (T * batch, 2C, H, W): one convolution over all steps
            layer_spikes.append(encoded)
            current = self.convs[0](encoded.reshape(steps * batch, *self.maps[0])).view(steps, batch, -1)
        else:  # a held current: the first convolution once
            current = self.convs[0](encoded.view(batch, *self.maps[0])).flatten(1)
        spikes = self.conv_neurons[0](current, steps)
        layer_spikes.append(spikes)
        for conv, neurons, shape in zip(self.convs[1:], self.conv_neurons[1:], self.maps[1:], strict=False):
            spikes = neurons(conv(spikes.reshape(steps * batch, *shape)).view(steps, batch, -1))
            layer_spikes.append(spikes)
        for layer, neurons in zip(self.layers, self.neurons, strict=True):
            spikes = neurons(layer(spikes))
            layer_spikes.append(spikes)
        if self.output_neurons is not None:
            assert self.readout is not None
            layer_spikes.append(self.output_neurons(self.readout(spikes)))
        return layer_spikes

    def _layer_trains(self, features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The linear layers' (the hidden ones and the readout) input and output spike trains."""
        spikes = self._propagate(features)[-len(self.layers) - 2:]  # the last convolution's on
        return spikes[:-1], spikes[1:]

    def _count(self, layer_spikes: list[torch.Tensor], batch: int) -> None:
        per_neuron = [spikes.detach().sum((0, 1)) for spikes in layer_spikes]
        fan_outs = self._fan_outs()
        events = [(counts * fan_out).sum() if isinstance(fan_out, torch.Tensor) else counts.sum() * fan_out
                  for counts, fan_out in zip(per_neuron, fan_outs, strict=True)]
        sums = torch.stack([torch.stack([counts.sum() for counts in per_neuron]), torch.stack(events)])
        self._sums = sums if self._sums is None else self._sums + sums
        self._decisions += batch

    def _fan_outs(self) -> list[torch.Tensor | int]:
        """Each spiking layer's synapses per spike: per neuron into a convolution, else its next layer's width."""
        convs: list[torch.Tensor | int] = [getattr(self, f"conv_fan_out_{i}") for i in range(len(self.convs))]
        if not self.encoder.spiking:
            convs = convs[1:]
        # a spiking readout's spikes reach no synapse (its head scales the rates)
        spiking_readout = [0] if self.output_neurons is not None else []
        return [*convs, *self.sizes[1:], self.readout_fan_out, *spiking_readout]

    def dense_macs(self) -> int:
        """MACs per input row on a CPU: the first convolution once under direct encoding (T times on
        Poisson spikes), every other convolution and linear layer T times, the readout once."""
        first = conv_macs(self.conv_layers[0], *self.maps[0][1:])
        if self.encoder.spiking:
            first *= self.timesteps
        rest = self._inner_conv_macs()
        readout = self.sizes[-1] * self.readout_fan_out
        if self.output_neurons is not None:  # a spiking readout's currents are computed at every step
            readout *= self.timesteps
        return self.encoder.encoding_macs() + first + self.timesteps * (rest + linear_macs(self.sizes)) + readout

    def _inner_conv_macs(self) -> int:
        """MACs of the convolutions after the first, per step."""
        return sum(conv_macs(conv, h, w) for conv, (_, h, w) in zip(self.conv_layers[1:], self.maps[1:], strict=False))

    # The network policies' hooks (``neuro.networks.NetworkPart``), as SpikingMLP's ------------------------

    @contextmanager
    def deciding(self, deterministic: bool = False) -> Iterator[None]:
        with counting(self), self.encoder.frozen(deterministic):  # type: ignore[arg-type]  # counts as SpikingMLP
            yield

    def separate_target(self) -> None:
        if isinstance(self.encoder, PoissonEncoder):
            self.encoder.seed += 1
            self.encoder.generator.manual_seed(self.encoder.seed)

    def _new_counts(self) -> SpikeCounts:
        spiking_encoder = self.encoder.spiking
        names = ((["encoder"] if spiking_encoder else []) + [f"conv_{i}" for i in range(len(self.convs))]
                 + [f"hidden_{i}" for i in range(len(self.sizes) - 1)])
        conv_neurons = [math.prod(shape) for shape in self.maps[1:]]
        neurons = ([self.encoder.out_features] if spiking_encoder else []) + conv_neurons + self.sizes[1:]
        if self.output_neurons is not None:
            names, neurons = [*names, "readout"], [*neurons, self.readout_fan_out]
        fan_out = [int(f.max().item()) if isinstance(f, torch.Tensor) else f for f in self._fan_outs()]
        channels, height, width = self.input_shape
        first_conv = self.conv_layers[0]
        first_ann = conv_macs(first_conv, height, width) // first_conv.in_channels * channels
        ann = first_ann + self._inner_conv_macs() + linear_macs(self.sizes) + self.sizes[-1] * self.readout_fan_out
        dense = self.encoder.encoding_macs() + (0 if spiking_encoder else first_ann)
        membranes = self.encoder.membrane_neurons() + sum(conv_neurons) + sum(self.sizes[1:]) + self.readout_fan_out
        return SpikeCounts(names, neurons, fan_out, self.timesteps, dense, ann,
                           neuron_updates_per_decision=membranes * self.timesteps)

    def take_counts(self) -> SpikeCounts:
        """The counts of the forward passes made while ``counting``, since the last call; starts over."""
        counts = self._new_counts()
        counts.decisions = self._decisions
        if self._sums is not None:
            counts.spikes, counts.synaptic_events = self._sums.tolist()
        counts.plasticity_operations = self._take_plasticity_operations()
        self._sums = None
        self._decisions = 0
        return counts

    def add_counts(self, counts: SpikeCounts) -> None:
        """Put counts taken out (``take_counts``) back, so a measurement in between leaves no trace."""
        if counts.decisions:
            sums = torch.tensor([counts.spikes, counts.events()], device=self.conv_layers[0].weight.device)
            self._sums = sums if self._sums is None else self._sums + sums
            self._decisions += counts.decisions
        self._add_plasticity_operations(counts)
