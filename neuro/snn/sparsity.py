"""The ANN's side of a fair energy comparison: the multiply-accumulates an ANN spends when it skips
zero activations, as an SNN is credited for its silent neurons.

A zero-skipping accelerator (Cnvlutin, Albericio et al. 2016; the ReLU zeros of an ANN are its
"silent neurons") skips every product whose input activation is zero. ``ZeroSkippingMacs`` hooks the
``nn.Linear`` and ``nn.Conv2d`` layers of an ANN and counts, per input row, the dense MACs and those left
after skipping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from neuro.snn.operations import conv_fan_out, conv_macs


@dataclass
class MacCounts:
    """MACs of the rows seen, summed: dense and with zero inputs skipped; per layer, the density of
    non-zero inputs (the ReLU density of the layer before)."""

    rows: int
    dense: float
    nonzero: float
    densities: list[float]

    @property
    def dense_per_row(self) -> float:
        return self.dense / max(self.rows, 1)

    @property
    def sparse_per_row(self) -> float:
        return self.nonzero / max(self.rows, 1)


class ZeroSkippingMacs:
    """Counts an ANN's MACs with zero activations skipped (Albericio et al. 2016, Cnvlutin).

    Rule: a ``Linear(n_in, n_out)`` reading a row ``a`` spends ``nnz(a) * n_out`` MACs instead of
    ``n_in * n_out``; a ``Conv2d`` spends, per non-zero input value, its fan-out at that position
    (``conv_fan_out``: the output positions whose window covers it, times the output channels). The
    first ``dense_layers`` layers (those reading the observation, which an SNN's
    direct encoding also multiplies densely) are counted dense, so both networks get the same credit.

    :param layers: the decision path's ``nn.Linear`` and ``nn.Conv2d`` layers, in order (the first reads the
        observation).
    :param dense_layers: how many leading layers are counted dense.
    """

    def __init__(self, layers: Sequence[nn.Linear | nn.Conv2d], dense_layers: int = 1) -> None:
        self.layers = list(layers)
        self.dense_layers = dense_layers
        self.reset()

    def reset(self) -> None:
        self._rows = 0
        self._dense = [0.0] * len(self.layers)
        self._nonzero = [0.0] * len(self.layers)
        self._inputs = [0.0] * len(self.layers)
        self._nonzero_inputs = [0.0] * len(self.layers)

    @contextmanager
    def counting(self) -> Iterator[ZeroSkippingMacs]:
        """Count the forward passes made inside the block (hooks removed on exit)."""
        handles = [layer.register_forward_pre_hook(self._hook(index)) for index, layer in enumerate(self.layers)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, index: int) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if isinstance(layer, nn.Conv2d):
                self._count_conv(index, layer, inputs[0].detach())
                return
            assert isinstance(layer, nn.Linear)
            rows = inputs[0].detach().reshape(-1, layer.in_features)
            if index == 0:
                self._rows += rows.shape[0]
            self._dense[index] += rows.shape[0] * layer.in_features * layer.out_features
            nonzero = float(torch.count_nonzero(rows))
            self._inputs[index] += rows.shape[0] * layer.in_features
            dense = index < self.dense_layers
            self._nonzero[index] += (rows.shape[0] * layer.in_features if dense else nonzero) * layer.out_features
            self._nonzero_inputs[index] += nonzero

        return hook

    def _count_conv(self, index: int, layer: nn.Conv2d, images: torch.Tensor) -> None:
        batch, _, height, width = images.shape
        if index == 0:
            self._rows += batch
        dense = float(batch * conv_macs(layer, height, width))
        nonzero_at = torch.count_nonzero(images, dim=(0, 1)).double()  # non-zero inputs per position
        self._dense[index] += dense
        self._nonzero[index] += dense if index < self.dense_layers else float(
            (nonzero_at * conv_fan_out(layer, height, width)).sum())
        self._inputs[index] += float(images.numel())
        self._nonzero_inputs[index] += float(nonzero_at.sum())

    def counts(self) -> MacCounts:
        """The totals since the last ``reset``."""
        densities = [nonzero / total if total else 0.0
                     for nonzero, total in zip(self._nonzero_inputs, self._inputs, strict=True)]
        return MacCounts(self._rows, sum(self._dense), sum(self._nonzero), densities)
