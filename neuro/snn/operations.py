"""Counting a network's operations on dense hardware: multiply-accumulates (MACs) per input row, each
``SpikingMLP`` by its own count (its spiking layers T times), and the MAC ratio of a spiking agent's
networks to its ANN twin's, each network weighted by the rows it sees per env step. Synaptic operations
(SOPs) of a running spiking network are counted beside it (``neuro.snn.network.SpikeCounts``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from neuro.snn.network import SpikingMLP


def forward_macs(module: nn.Module) -> int:
    """Multiply-accumulates of one forward pass of ``module`` per input row on a CPU: ``dense_macs()``
    of each ``SpikingMLP`` inside it, ``in_features * out_features`` of every other ``nn.Linear``.

    A ``SpikingMLP`` without its own readout counts the heads reading its rates in ``dense_macs``
    (``readout_fan_out``); those heads are ``nn.Linear`` modules beside it, so they are counted once, as such.
    """
    spiking = [sub for sub in module.modules() if isinstance(sub, SpikingMLP)]
    inside = {id(sub) for network in spiking for sub in network.modules()}
    total = 0
    for network in spiking:
        total += network.dense_macs()
        if network.readout is None:
            total -= network.hidden[-1] * network.readout_fan_out
    for sub in module.modules():
        if isinstance(sub, nn.Linear) and id(sub) not in inside:
            total += sub.in_features * sub.out_features
    return total


@dataclass(frozen=True)
class NetworkLoad:
    """One network's work per env step: forward rows while deciding, forward-pass equivalents in the
    gradient updates (a backward pass counted as about two forwards), and its MACs per row."""

    name: str
    decide_rows: float
    learn_rows: float
    macs: int


def mac_ratios(spiking: Sequence[NetworkLoad], ann: Sequence[NetworkLoad]) -> dict[str, float]:
    """Spiking MACs over ANN MACs per env step: of the decisions, of the updates, and of all network work."""
    if [load.name for load in spiking] != [load.name for load in ann]:
        raise ValueError("the spiking agent and its twin run different networks: "
                         f"{[load.name for load in spiking]} vs {[load.name for load in ann]}")

    def ratio(rows: Callable[[NetworkLoad], float]) -> float:
        ann_macs = sum(rows(load) * load.macs for load in ann)
        return sum(rows(load) * load.macs for load in spiking) / ann_macs

    return {"decide": ratio(lambda load: load.decide_rows), "learn": ratio(lambda load: load.learn_rows),
            "all": ratio(lambda load: load.decide_rows + load.learn_rows)}
