"""A spiking multilayer network that SB3 can use in place of an MLP (the ``spiking`` network part,
``neuro.networks``), and its spike accounting.

``SpikingMLP`` runs all T time steps inside ``forward()`` from a zero state, so to SB3 it is an
ordinary stateless ``(batch, in) -> (batch, out)`` module. It works layer by layer: each layer's
input currents for all T steps come from one matrix product over ``(T * batch)`` rows, and only the
neurons' elementwise recurrence loops over T. Two exact shortcuts keep the dense work down on a CPU:
under direct encoding the first layer's current is the same at every step, so it is computed once;
the readout is linear, so it reads the time-weighted spike counts with one product instead of T.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, cast

import torch
from torch import nn

from neuro.networks import NETWORKS, NetworkPart, initialise
from neuro.snn.config import (
    ENERGY_CAVEAT,
    MAC_ENERGY_PJ,
    NEURON_UPDATE_ENERGY_PJ,
    PLASTICITY_OP_ENERGY_PJ,
    SOP_ENERGY_PJ,
    WEIGHT_READ_ENERGY_PJ,
    SnnConfig,
    encoder_spec,
)
from neuro.snn.encoders import ENCODERS, PoissonEncoder
from neuro.snn.neurons import LIF
from neuro.snn.plasticity import PLASTICITY_RULES, PlasticityRule

__all__ = ["ENERGY_CAVEAT", "PlasticReadout", "SnnConfig", "SpikeCounts", "SpikingMLP", "counting", "initialise"]


@dataclass
class SpikeCounts:
    """Spikes and operations of a network's forward passes, summed over the rows ("decisions") seen.

    ``layers`` names the spike-emitting layers (the encoder when it spikes, then each hidden layer);
    ``fan_out`` is how many synapses each of their spikes reaches (a convolution's: the most, at an inner
    position). ``neuron_updates_per_decision`` counts every membrane updated at every step (encoding
    neurons, LIF layers, readout membranes). ``synaptic_events`` holds each layer's SOPs where the fan-out
    varies by neuron (a convolution's near the border, ``neuro.snn.operations.conv_fan_out``); empty: every
    spike times its layer's ``fan_out``.
    ``plasticity_operations`` sums the synapse and trace updates of a plastic network's rule over the
    same decisions (``PlasticityRule.take_operations``), each charged ``PLASTICITY_OP_ENERGY_PJ``.
    """

    layers: list[str]
    neurons: list[int]
    fan_out: list[int]
    timesteps: int
    dense_macs_per_decision: int  # real-valued products: the first layer under direct encoding, encoding
    ann_macs_per_decision: int  # the ANN of the same shape (no encoder)
    decisions: int = 0
    spikes: list[float] = field(default_factory=list)
    neuron_updates_per_decision: int = 0
    synaptic_events: list[float] = field(default_factory=list)
    plasticity_operations: float = 0.0

    def __post_init__(self) -> None:
        if not self.spikes:
            self.spikes = [0.0] * len(self.layers)

    def empty(self) -> SpikeCounts:
        return SpikeCounts(self.layers, self.neurons, self.fan_out, self.timesteps,
                           self.dense_macs_per_decision, self.ann_macs_per_decision,
                           neuron_updates_per_decision=self.neuron_updates_per_decision)

    def __add__(self, other: SpikeCounts) -> SpikeCounts:
        total = self.empty()
        total.decisions = self.decisions + other.decisions
        total.spikes = [a + b for a, b in zip(self.spikes, other.spikes, strict=True)]
        if self.synaptic_events or other.synaptic_events:
            total.synaptic_events = [a + b for a, b in zip(self.events(), other.events(), strict=True)]
        total.plasticity_operations = self.plasticity_operations + other.plasticity_operations
        return total

    def events(self) -> list[float]:
        """Synaptic operations per layer, summed over the decisions."""
        return self.synaptic_events or [s * f for s, f in zip(self.spikes, self.fan_out, strict=True)]

    @property
    def sops_per_decision(self) -> float:
        """Synaptic operations per decision: every spike times its fan-out, summed over T."""
        return sum(self.events()) / max(self.decisions, 1)

    def firing_rates(self) -> dict[str, float]:
        """Spikes per neuron per time step, per layer."""
        scale = max(self.decisions, 1) * self.timesteps
        return {layer: spikes / (neurons * scale) for layer, spikes, neurons in zip(self.layers, self.spikes,
                                                                                     self.neurons, strict=True)}

    def stats(self, sparse_ann_macs: float | None = None) -> dict[str, float]:
        """Per-decision figures: firing rates, SOPs, MACs, neuron updates and the energy estimates
        (``ENERGY_CAVEAT``): E_SNN = SOPs x 0.9 + MACs x 4.6 + neuron updates x 4.6 pJ against the
        dense ANN of the same sizes (MACs x 4.6 pJ) and, given ``sparse_ann_macs`` (the MACs an ANN
        that skips zero activations spends per decision, measured on the twin), against that ANN too;
        the ``*_with_memory`` figures add a weight read per SOP or MAC (``MEMORY_CAVEAT``)."""
        sops, macs = self.sops_per_decision, float(self.dense_macs_per_decision)
        updates = float(self.neuron_updates_per_decision)
        plastic = self.plasticity_operations / max(self.decisions, 1)
        energy = (sops * SOP_ENERGY_PJ + macs * MAC_ENERGY_PJ + updates * NEURON_UPDATE_ENERGY_PJ
                  + plastic * PLASTICITY_OP_ENERGY_PJ)
        ann_energy = self.ann_macs_per_decision * MAC_ENERGY_PJ
        memory = (sops + macs) * WEIGHT_READ_ENERGY_PJ  # each SOP or MAC reads one weight
        ann_memory = self.ann_macs_per_decision * WEIGHT_READ_ENERGY_PJ
        stats = {
            **{f"firing_rate/{layer}": rate for layer, rate in self.firing_rates().items()},
            "sops_per_decision": sops,
            "macs_per_decision": macs,
            "neuron_updates_per_decision": updates,
            **({"plasticity_operations_per_decision": plastic} if self.plasticity_operations else {}),
            "ann_macs_per_decision": float(self.ann_macs_per_decision),
            "energy_pj_per_decision": energy,
            "ann_energy_pj_per_decision": ann_energy,
            "energy_ratio": energy / ann_energy,
            "energy_ratio_with_memory": (energy + memory) / (ann_energy + ann_memory),
            "decisions": float(self.decisions),
        }
        if sparse_ann_macs is not None:
            sparse_energy = sparse_ann_macs * MAC_ENERGY_PJ
            stats.update({
                "sparse_ann_macs_per_decision": float(sparse_ann_macs),
                "sparse_ann_energy_pj_per_decision": sparse_energy,
                "energy_ratio_sparse_ann": energy / sparse_energy,
                "energy_ratio_sparse_ann_with_memory":
                    (energy + memory) / (sparse_energy + sparse_ann_macs * WEIGHT_READ_ENERGY_PJ),
            })
        return stats


class SpikingSettings(SnnConfig):
    """``SnnConfig`` as one network's settings (``policy_kwargs.network: {type: spiking, ...}``): whether
    PPO's critic spikes is the policy's choice there (``policy_kwargs.value_network``), not the network's."""

    critic: Literal["ann"] = "ann"
    convolutions: None = None  # the spiking_cnn part's own parameter (``neuro.snn.conv``), not the MLP's


class PlasticReadout:
    """Mixin of a spiking network part whose spiking readout learns online by a three-factor rule
    (``agent.snn.plasticity``, ``neuro.snn.plasticity``): the readout, its rules and the agent's hooks,
    shared by ``SpikingMLP`` and ``neuro.snn.conv.SpikingCNN``.

    Rule: ``dw = learning_rate x dopamine x eligibility`` per plastic layer (the rule's, e.g. ``RewardSTDP``:
    Izhikevich 2007; Fremaux & Gerstner 2016), the readout's post-synaptic spikes gated by the action taken.

    A network calls ``_no_plastic_readout`` in its ``__init__``, then ``_spiking_readout`` when it is plastic
    and has outputs, and provides ``_layer_trains`` (each linear layer's pre- and post-synaptic spikes on
    one decision, the readout's last) and ``_readout_in_features`` (the width the readout reads).
    ``agents.plasticity.plastic_actor`` recognises a network by this mixin and ``plastic``.
    """

    config: SnnConfig
    timesteps: int
    out_features: int
    readout_fan_out: int
    layers: nn.ModuleList
    readout: nn.Linear | None
    output_neurons: LIF | None
    plasticity_rules: nn.ModuleList
    plastic_layers: list[nn.Linear]
    plastic_names: list[str]

    def _no_plastic_readout(self) -> None:
        self.output_neurons = None  # a spiking readout's neurons (plasticity)
        self.plasticity_rules = nn.ModuleList()  # one rule per plastic layer, in layer order
        self.plastic_layers = []
        self.plastic_names = []

    def _build_readout(self, plasticity: Any, n_in: int, out_features: int | None) -> int:
        """The readout of ``n_in`` time-weighted rates: linear, spiking and plastic (``plasticity``), or none
        for a latent; returns the network's ``out_features``."""
        self.readout = None
        self._no_plastic_readout()
        if out_features is not None:
            if plasticity is not None:
                self._spiking_readout(out_features)
            else:
                self.readout = nn.Linear(n_in, out_features)
        return out_features if out_features is not None else n_in

    def _readout_in_features(self) -> int:
        raise NotImplementedError

    def _layer_trains(self, features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each linear layer's input and output spike trains ``(T, batch, n)`` on ``features``, the readout's last."""
        raise NotImplementedError

    @property
    def rules(self) -> list[PlasticityRule]:
        """The plasticity rules of the plastic layers, in layer order."""
        return cast(list[PlasticityRule], list(self.plasticity_rules))

    @property
    def plastic(self) -> bool:
        """Whether layers of this network learn by a three-factor rule (``agents.plasticity`` drives it)."""
        return self.config.plasticity is not None

    def _spiking_readout(self, out_features: int) -> None:
        """A readout of ``out_features`` LIF neurons, and the rules of the plastic layers, frozen for backprop."""
        config, plasticity = self.config, self.config.plasticity
        assert plasticity is not None
        self.readout = nn.Linear(self._readout_in_features(), out_features)
        initialise([self.readout], config.init)
        self.output_neurons = LIF(out_features, config.beta, config.threshold, config.surrogate_slope,
                                  config.learn_beta, config.reset)
        self.plastic_layers = [*(self.layers if plasticity.layers == "all" else []), self.readout]
        self.plastic_names = [*(f"hidden_{i}" for i in range(len(self.layers)) if plasticity.layers == "all"),
                              "readout"]
        self.plasticity_rules = nn.ModuleList(
            PLASTICITY_RULES.make(plasticity.rule_spec(), n_pre=layer.in_features, n_post=layer.out_features)
            for layer in self.plastic_layers)
        for layer in self.plastic_layers:
            layer.requires_grad_(False)  # learned by the rule only
        self.readout_fan_out = out_features

    def action_head(self, n_actions: int) -> nn.Module | None:
        """For a plastic latent network (an actor): build the spiking readout of ``n_actions`` neurons and
        return the head from its rates to the logits (``logit_gain`` x rates, no parameters); None when
        the network is not plastic (SB3's linear head reads the latent)."""
        if self.config.plasticity is None:
            return None
        if self.output_neurons is None:
            self._spiking_readout(n_actions)
            self.out_features = n_actions
        return LogitGain(self.config.plasticity.logit_gain)

    @torch.no_grad()
    def record_decision(self, features: torch.Tensor, chosen: torch.Tensor | None = None) -> None:
        """Replay the decision on ``features`` (one row per env) into the plastic layers' traces.

        :param chosen: ``(batch, out)`` 0/1: the output neurons of the actions taken. Only their spikes
            count as post-synaptic in the readout's rule (the chosen action's neurons win the decision,
            as under lateral inhibition); None counts every output neuron.
        """
        if not self.plasticity_rules:
            raise ValueError("record_decision: this network has no plastic layers (agent.snn.plasticity)")
        inputs, outputs = self._layer_trains(features)
        if chosen is not None:
            outputs[-1] = outputs[-1] * chosen.to(outputs[-1].dtype)
        first = len(inputs) - len(self.plasticity_rules)  # the plastic layers are the last ones
        for rule, pre, post in zip(self.rules, inputs[first:], outputs[first:], strict=True):
            rule.run(pre, post)

    @torch.no_grad()
    def apply_dopamine(self, dopamine: torch.Tensor | float) -> dict[str, float]:
        """Move each plastic layer's weights by its rule's ``learning_rate x dopamine x eligibility``
        (``dopamine`` one value or one per env); the squared norm of the changes, summed over layers."""
        change = 0.0
        for rule, layer in zip(self.rules, self.plastic_layers, strict=True):
            change += float(rule.update(layer.weight, dopamine).pow(2).sum())
        return {"weight_change": change ** 0.5}

    @torch.no_grad()
    def episode_start(self, rows: torch.Tensor) -> None:
        """Clear the traces of the envs (a boolean mask) whose episode starts."""
        for rule in self.rules:
            rule.reset(rows)

    def plasticity_stats(self) -> dict[str, float]:
        """Each plastic layer's traces and last update, ``<layer>/<key>`` (``readout``, ``hidden_<i>``)."""
        return {f"{name}/{key}": value for name, rule in zip(self.plastic_names, self.rules, strict=True)
                for key, value in rule.stats().items()}

    def _take_plasticity_operations(self) -> float:
        """The rules' synapse and trace updates since the last call (``SpikeCounts.plasticity_operations``)."""
        return float(sum(rule.take_operations() for rule in self.rules))

    def _add_plasticity_operations(self, counts: SpikeCounts) -> None:
        """Put the operations of counts taken out back (``add_counts``)."""
        if counts.plasticity_operations and self.rules:
            self.rules[0].add_operations(int(counts.plasticity_operations))


@NETWORKS.register("spiking")
class SpikingMLP(PlasticReadout, NetworkPart):
    """Encoder -> LIF layers (``hidden``) -> a non-spiking linear readout (or the firing rates).

    Rule: ``y = W_out sum_t w_t S_L[t] + b``, ``w_t = d^(T-1-t) / sum_k d^k`` (d = ``readout_decay``): with d = 1
    the readout is a linear map of the last layer's firing rates (PopSAN's decoder, Tang et al. 2020),
    with d < 1 it is a leaky non-spiking output membrane read at the last step, as DSQN reads Q-values
    (Chen et al. 2022), normalised so its scale does not depend on T.

    :param in_features: size of the real-valued input.
    :param hidden: sizes of the spiking layers (SB3's ``net_arch``); at least one.
    :param out_features: size of the readout; ``None`` returns the last layer's time-weighted rates
        (a policy's latent, read by SB3's own linear heads; set ``readout_fan_out`` for the accounting).
    :param config: the ``SnnConfig`` (or its fields).
    :param settings: ``SnnConfig``'s fields as keywords instead (the network part's spec:
        ``{type: spiking, timesteps: 5, ...}``).

    With ``plasticity`` (``agent.snn.plasticity``) the readout is a spiking layer (one LIF neuron per
    output) whose firing rates are the output, and the chosen layers (``readout`` or ``all``) learn by
    the rule, their weights kept out of backprop (``requires_grad=False``). A latent network (an actor)
    gets that readout from ``action_head``. The agent drives the rule: ``record_decision`` replays a
    decision into the traces, ``apply_dopamine`` moves the weights, ``episode_start`` clears the traces
    of the envs that start over (``agents.plasticity``).
    """

    settings_model = SpikingSettings

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                 config: SnnConfig | dict[str, Any] | None = None, **settings: Any) -> None:
        super().__init__()
        if config is not None and settings:
            raise ValueError("SpikingMLP: give config or its fields as keywords, not both")
        if config is None:
            config = SnnConfig(**SpikingSettings(**settings).model_dump())
        elif not isinstance(config, SnnConfig):
            config = SnnConfig(**config)
        if not hidden:
            raise ValueError("policy_kwargs.net_arch: a spiking network needs at least one hidden layer")
        self.config = config
        self.timesteps = config.timesteps
        self.encoder = ENCODERS.make(encoder_spec(config.encoder), in_features=in_features)
        sizes = [self.encoder.out_features, *hidden]
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in pairwise(sizes)]
        initialise(linears, config.init)
        self.layers = nn.ModuleList(linears)
        self.neurons = nn.ModuleList(
            LIF(size, config.beta, config.threshold, config.surrogate_slope, config.learn_beta, config.reset)
            for size in hidden)
        self.in_features = in_features
        self.hidden = list(hidden)
        self.out_features = self._build_readout(config.plasticity, hidden[-1], out_features)
        self.register_buffer("readout_weights", time_weights(self.timesteps, config.readout_decay), persistent=False)
        self.readout_fan_out = out_features or 0
        self.counting = False
        self._decisions = 0
        self._spike_sum: torch.Tensor | None = None  # per-layer spike totals, turned into floats when read

    def _readout_in_features(self) -> int:
        return self.hidden[-1]

    def _propagate(self, features: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoding and every LIF layer's spikes ``(T, batch, size)``, the spiking readout's last."""
        encoded = self.encoder(features, self.timesteps)
        spikes = [self.neurons[0](self.layers[0](encoded), self.timesteps)]
        for layer, neurons in zip(self.layers[1:], self.neurons[1:], strict=True):
            spikes.append(neurons(layer(spikes[-1])))
        if self.output_neurons is not None:
            assert self.readout is not None
            spikes.append(self.output_neurons(self.readout(spikes[-1])))
        return encoded, spikes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        encoded, layer_spikes = self._propagate(features)
        rates = torch.tensordot(self.readout_weights, layer_spikes[-1], dims=1)
        if self.counting:
            counted = [encoded, *layer_spikes] if self.encoder.spiking else layer_spikes
            totals = torch.stack([s.detach().sum() for s in counted])
            self._spike_sum = totals if self._spike_sum is None else self._spike_sum + totals
            self._decisions += features.shape[0]
        if self.output_neurons is not None:  # a spiking readout: its firing rates are the output
            return rates
        return self.readout(rates) if self.readout is not None else rates

    # Plasticity: the layers' spike trains for the rules (``PlasticReadout``) --------------------------

    def _layer_trains(self, features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        encoded, spikes = self._propagate(features)
        if encoded.dim() == 2:  # a held current (direct encoding) enters the rule as its value per step
            encoded = encoded.expand(self.timesteps, *encoded.shape)
        return [encoded, *spikes[:-1]], list(spikes)

    def dense_macs(self) -> int:
        """Multiply-accumulates this implementation computes per input row on dense hardware (a CPU):
        each spiking layer's product runs over all T steps; a held current (direct encoding) and the
        readout run once. The speed limit of a spiking network against its ANN twin is their ratio."""
        first = self.encoder.out_features * self.hidden[0]  # the layers' fan-in x fan-out, as built
        if self.encoder.spiking:
            first *= self.timesteps
        hidden = self.timesteps * sum(n_in * n_out for n_in, n_out in pairwise(self.hidden))
        readout = self.hidden[-1] * self.readout_fan_out
        if self.output_neurons is not None:  # a spiking readout's currents are computed at every step
            readout *= self.timesteps
        return self.encoder.encoding_macs() + first + hidden + readout

    # The network policies' hooks (``neuro.networks.NetworkPart``) -----------------------------------

    @contextmanager
    def deciding(self, deterministic: bool = False) -> Iterator[None]:
        """Count the spikes of the decisions; for a deterministic one, freeze a random encoder's noise
        (``Encoder.frozen``) so the action depends on the observation alone."""
        with counting(self), self.encoder.frozen(deterministic):
            yield

    def separate_target(self) -> None:
        """SB3 copies the online network's state into its target, the encoder's generator with it: give
        the target a stream of its own, so the two do not draw the same noise."""
        if isinstance(self.encoder, PoissonEncoder):
            self.encoder.seed += 1
            self.encoder.generator.manual_seed(self.encoder.seed)

    # Accounting -----------------------------------------------------------------------------------

    def _new_counts(self) -> SpikeCounts:
        names = (["encoder"] if self.encoder.spiking else []) + [f"hidden_{i}" for i in range(len(self.hidden))]
        neurons = ([self.encoder.out_features] if self.encoder.spiking else []) + self.hidden
        fan_out = self.hidden + [self.readout_fan_out]  # each layer's spikes reach the next layer
        if self.output_neurons is not None:  # a spiking readout's spikes reach no synapse (the head scales rates)
            names, neurons, fan_out = [*names, "readout"], [*neurons, self.readout_fan_out], [*fan_out, 0]
        if not self.encoder.spiking:
            fan_out = fan_out[1:]
        dense = self.encoder.encoding_macs() + (0 if self.encoder.spiking else self.in_features * self.hidden[0])
        ann_sizes = [self.in_features, *self.hidden, self.readout_fan_out]
        ann = sum(a * b for a, b in pairwise(ann_sizes))
        # Every membrane, every step: the encoder's neurons (if it has any), the LIF layers, the readout's.
        membranes = self.encoder.membrane_neurons() + sum(self.hidden) + self.readout_fan_out
        return SpikeCounts(names, neurons, fan_out, self.timesteps, dense, ann,
                           neuron_updates_per_decision=membranes * self.timesteps)

    def take_counts(self) -> SpikeCounts:
        """The counts of the forward passes made while ``counting``, since the last call; starts over."""
        counts = self._new_counts()
        counts.decisions = self._decisions
        if self._spike_sum is not None:
            counts.spikes = self._spike_sum.tolist()
        counts.plasticity_operations = self._take_plasticity_operations()
        self._spike_sum = None
        self._decisions = 0
        return counts

    def add_counts(self, counts: SpikeCounts) -> None:
        """Put counts taken out (``take_counts``) back, so a measurement in between leaves no trace."""
        if counts.decisions:
            spikes = torch.tensor(counts.spikes)
            self._spike_sum = spikes if self._spike_sum is None else self._spike_sum + spikes
            self._decisions += counts.decisions
        self._add_plasticity_operations(counts)


class LogitGain(nn.Module):
    """A plastic spiking readout's head: the actions' logits are ``gain`` x the output neurons' rates."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, rates: torch.Tensor) -> torch.Tensor:
        return self.gain * rates


def time_weights(timesteps: int, decay: float) -> torch.Tensor:
    """The readout's weights ``w_t = d^(T-1-t) / sum_k d^k`` of the T steps (``SpikingMLP``'s rule)."""
    weights = torch.tensor(decay, dtype=torch.float64) ** torch.arange(timesteps - 1, -1, -1)
    return (weights / weights.sum()).float()


@contextmanager
def counting(*networks: SpikingMLP) -> Iterator[None]:
    """Count the spikes of these networks' forward passes inside the block (decisions, not updates)."""
    before = [network.counting for network in networks]
    for network in networks:
        network.counting = True
    try:
        yield
    finally:
        for network, was in zip(networks, before, strict=True):
            network.counting = was
