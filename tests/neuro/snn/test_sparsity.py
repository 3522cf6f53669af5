"""The ANN's zero-skipping MACs against a hand count on a tiny ReLU network with fixed weights."""

import pytest
import torch
from torch import nn

from neuro.snn.sparsity import ZeroSkippingMacs


def tiny_ann() -> nn.Sequential:
    """2 -> 3 -> 2 -> 2 with ReLUs; the weights make the hidden zeros easy to count by hand."""
    network = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        for layer in network:
            if isinstance(layer, nn.Linear):
                layer.bias.zero_()
        network[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        network[2].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]))
        network[4].weight.copy_(torch.eye(2))
    return network


def test_zero_skipping_macs_equal_a_hand_count():
    network = tiny_ann()
    meter = ZeroSkippingMacs([m for m in network if isinstance(m, nn.Linear)], dense_layers=1)
    with meter.counting():
        network(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    network(torch.tensor([[5.0, 5.0]]))  # outside the block: not counted
    counts = meter.counts()
    # Row (1, 0): hidden_0 = relu(1, 0, -1) = (1, 0, 0): 1 non-zero; hidden_1 = relu(1, -1) = (1, 0): 1.
    # Row (1, 1): hidden_0 = (1, 1, 0): 2 non-zero; hidden_1 = relu(2, -2) = (2, 0): 1.
    # MACs: the observation layer dense, 2 x 3 = 6 per row; then non-zeros x fan-out:
    # row 1: 6 + 1 x 2 + 1 x 2 = 10; row 2: 6 + 2 x 2 + 1 x 2 = 12; dense: 6 + 6 + 4 = 16 per row.
    assert counts.rows == 2
    assert counts.dense_per_row == 16
    assert counts.sparse_per_row == pytest.approx((10 + 12) / 2)
    # Input densities per layer: the observation 3 non-zeros of 4, hidden_0 3 of 6, hidden_1 2 of 4.
    assert counts.densities == pytest.approx([3 / 4, 3 / 6, 2 / 4])


def test_every_layer_can_skip_zeros_and_a_dense_network_skips_none():
    network = tiny_ann()
    meter = ZeroSkippingMacs([m for m in network if isinstance(m, nn.Linear)], dense_layers=0)
    with meter.counting():
        network(torch.tensor([[1.0, 0.0]]))
    assert meter.counts().sparse_per_row == 1 * 3 + 1 * 2 + 1 * 2  # the observation's zero skipped too
    dense = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    meter = ZeroSkippingMacs([dense[0], dense[2]])
    with meter.counting():
        dense(torch.rand(8, 3) + 0.5)
    assert meter.counts().sparse_per_row == meter.counts().dense_per_row == 3 * 4 + 4 * 2
