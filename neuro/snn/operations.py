"""Counting a network's operations on dense hardware: multiply-accumulates (MACs) per input row, each
counted part (``SpikingMLP``, ``neuro.snn.conv``'s convolutional parts) by its own ``dense_macs`` (a spiking
network's layers T times), and the MAC ratio of a spiking agent's networks to its ANN twin's, each network
weighted by the rows it sees per env step. Synaptic operations (SOPs) of a running spiking network are
counted beside it (``neuro.snn.network.SpikeCounts``); a convolution's fan-out per input position
(``conv_fan_out``) weights its spikes there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional


@runtime_checkable
class CountedPart(Protocol):
    """A network that counts its own MACs (``SpikingMLP``, ``SpikingCNN``, ``CNN``): ``dense_macs`` includes
    the heads reading its latent (``readout_fan_out``) when it has no ``readout`` of its own."""

    out_features: int
    readout_fan_out: int

    def dense_macs(self) -> int: ...


def forward_macs(module: nn.Module) -> int:
    """Multiply-accumulates of one forward pass of ``module`` per input row on a CPU: ``dense_macs()``
    of each counted part inside it (``CountedPart``), ``in_features * out_features`` of every other
    ``nn.Linear``.

    A counted part without its own readout counts the heads reading its latent in ``dense_macs``
    (``readout_fan_out``); those heads are ``nn.Linear`` modules beside it, so they are counted once, as such.
    """
    parts = [sub for sub in module.modules() if isinstance(sub, CountedPart)]
    inside = {id(sub) for network in parts for sub in network.modules()}
    total = 0
    for network in parts:
        total += network.dense_macs()
        if getattr(network, "readout", None) is None:
            total -= network.out_features * network.readout_fan_out
    for sub in module.modules():
        if isinstance(sub, nn.Linear) and id(sub) not in inside:
            total += sub.in_features * sub.out_features
    return total


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length of a convolution along one axis (no dilation)."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_macs(conv: nn.Conv2d, height: int, width: int) -> int:
    """MACs of ``conv`` on one ``height x width`` input: every output value is a kernel-sized dot product
    over the input channels."""
    out_h, out_w = (conv_output_size(size, k, s, p) for size, k, s, p in
                    zip((height, width), _pair(conv.kernel_size), _pair(conv.stride), _pair(conv.padding),
                        strict=True))
    kernel_h, kernel_w = _pair(conv.kernel_size)
    return conv.out_channels * out_h * out_w * (conv.in_channels // conv.groups) * kernel_h * kernel_w


def conv_fan_out(conv: nn.Conv2d, height: int, width: int) -> torch.Tensor:
    """Synapses a spike of one input channel reaches at each input position, ``(height, width)``: the
    output positions whose window covers it, times the output channels. Exact under stride and padding:
    the transposed convolution of an all-ones output with an all-ones kernel counts the windows that
    cover each position (border positions are covered by fewer; positions past the last window by none)."""
    if _pair(conv.dilation) != (1, 1) or conv.groups != 1:
        raise ValueError("conv_fan_out: dilation 1 and groups 1 only")
    (kernel_h, kernel_w), stride, padding = _pair(conv.kernel_size), _pair(conv.stride), _pair(conv.padding)
    out_h = conv_output_size(height, kernel_h, stride[0], padding[0])
    out_w = conv_output_size(width, kernel_w, stride[1], padding[1])
    # What a transposed convolution leaves short of the input size: the rows and columns past the last window.
    extra = ((height + 2 * padding[0] - kernel_h) % stride[0], (width + 2 * padding[1] - kernel_w) % stride[1])
    windows = functional.conv_transpose2d(torch.ones(1, 1, out_h, out_w, dtype=torch.float64),
                                          torch.ones(1, 1, kernel_h, kernel_w, dtype=torch.float64),
                                          stride=stride, padding=padding, output_padding=extra)
    return windows[0, 0] * conv.out_channels


def _pair(value: int | tuple[int, ...] | str) -> tuple[int, int]:
    if isinstance(value, str):
        raise ValueError(f"padding: a number, got {value!r}")
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


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
