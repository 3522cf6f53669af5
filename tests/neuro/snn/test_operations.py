"""MACs of a network against a hand count of its layers, and the spiking-over-ANN MAC ratios per env step."""

from __future__ import annotations

import pytest
from torch import nn

from neuro.snn.network import SpikingMLP
from neuro.snn.operations import NetworkLoad, forward_macs, mac_ratios

SNN = {"timesteps": 4}  # direct encoding: the first layer's product once, the others T = 4 times


def test_an_ann_counts_in_times_out_of_every_linear_layer() -> None:
    # 3 -> 4 -> 2: 3*4 + 4*2 = 20; activations cost no MACs
    assert forward_macs(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))) == 20


def test_a_spiking_network_runs_its_hidden_products_every_step_and_its_readout_once() -> None:
    # 4 -> 8 -> 6 -> 3 at T = 4: 4*8 once (a held current), 8*6 four times, the readout 6*3 once = 242
    # (its own nn.Linear layers are not counted a second time as plain layers: 32 + 48 + 18 more would be 340)
    assert forward_macs(SpikingMLP(4, [8, 6], 3, SNN)) == 4 * 8 + 4 * 8 * 6 + 6 * 3


def test_a_head_reading_the_rates_is_counted_once() -> None:
    # Without a readout of its own the network's dense_macs counts the heads reading its rates
    # (readout_fan_out, as a policy sets it); the head is an nn.Linear beside it and counts as such.
    network = SpikingMLP(4, [8, 6], None, SNN)
    network.readout_fan_out = 3
    assert forward_macs(nn.Sequential(network, nn.Linear(6, 3))) == 4 * 8 + 4 * 8 * 6 + 6 * 3
    assert forward_macs(nn.Sequential(network, nn.Linear(6, 3), nn.Linear(6, 1))) == 242 + 6


def test_mac_ratios_weight_each_network_by_its_rows_per_step() -> None:
    ann = [NetworkLoad("actor", 1.0, 4.0, 100), NetworkLoad("critic", 0.0, 6.0, 100)]
    spiking_loads = [NetworkLoad("actor", 1.0, 4.0, 1000), NetworkLoad("critic", 0.0, 6.0, 100)]
    ratios = mac_ratios(spiking_loads, ann)
    assert ratios["decide"] == pytest.approx(10.0)  # the actor alone decides
    assert ratios["learn"] == pytest.approx((4 * 1000 + 6 * 100) / (4 * 100 + 6 * 100))  # 4.6
    assert ratios["all"] == pytest.approx((5 * 1000 + 6 * 100) / (5 * 100 + 6 * 100))
    with pytest.raises(ValueError, match="different networks"):
        mac_ratios(spiking_loads[:1], ann)
