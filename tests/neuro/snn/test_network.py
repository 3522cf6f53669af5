"""The spiking MLP: spike and operation counts against a hand count on a tiny network with fixed
weights, gradients through all T steps, the readout's time weights, and the ``agent.snn`` schema."""

import pytest
import torch
from pydantic import ValidationError

from neuro.snn.config import MAC_ENERGY_PJ, NEURON_UPDATE_ENERGY_PJ, SOP_ENERGY_PJ, SnnConfig
from neuro.snn.network import SpikingMLP, counting


def tiny_network(encoder: str = "direct") -> SpikingMLP:
    """2 inputs -> 3 IF neurons -> 2 IF neurons -> 2 readouts (identity), threshold 1, T = 3."""
    network = SpikingMLP(2, [3, 2], 2, {"timesteps": 3, "beta": 1.0, "threshold": 1.0, "encoder": encoder})
    with torch.no_grad():
        for layer in [*network.layers, network.readout]:
            layer.bias.zero_()
        first = network.layers[0].weight
        first.zero_()
        first[:, 0] = torch.tensor([0.6, 1.5, 0.0])  # currents from x = (1, 0); for Poisson the ON channel
        network.layers[1].weight.copy_(torch.tensor([[1.2, 0.0, 0.0], [0.0, 0.4, 0.0]]))
        network.readout.weight.copy_(torch.eye(2))
    return network


def test_sop_and_mac_counts_equal_a_hand_count():
    network = tiny_network()
    with counting(network):
        output = network(torch.tensor([[1.0, 0.0]]))
    counts = network.take_counts()
    # hidden_0 (IF, subtract): 0.6 -> U 0.6, 1.2*, 0.8: one spike; 1.5 -> 1.5*, 2.0*, 2.5*: three; 0: none.
    # Its spikes per step (1, 1, 0), (0, 1, 0)... reach hidden_1 as currents 1.2 S0 and 0.4 S1:
    # neuron 0 gets (0, 1.2, 0) -> one spike at t = 2; neuron 1 gets 0.4 each step -> 0.4, 0.8, 1.2*: one.
    assert counts.layers == ["hidden_0", "hidden_1"]
    assert counts.spikes == [4.0, 2.0]
    assert counts.decisions == 1
    # SOPs: 4 spikes x fan-out 2 (hidden_1) + 2 spikes x fan-out 2 (readout) = 12.
    assert counts.sops_per_decision == 12
    stats = counts.stats()
    assert stats["firing_rate/hidden_0"] == pytest.approx(4 / 9)
    assert stats["firing_rate/hidden_1"] == pytest.approx(2 / 6)
    assert stats["macs_per_decision"] == 6  # the real-valued first layer, 2 x 3, computed once
    assert stats["ann_macs_per_decision"] == 2 * 3 + 3 * 2 + 2 * 2
    # Neuron updates: 3 + 2 LIF membranes and 2 readout membranes, each updated at each of 3 steps = 21.
    assert stats["neuron_updates_per_decision"] == 21
    assert stats["energy_pj_per_decision"] == pytest.approx(12 * 0.9 + 6 * 4.6 + 21 * 4.6)  # 135.0 pJ
    assert stats["ann_energy_pj_per_decision"] == pytest.approx(16 * 4.6)
    assert (SOP_ENERGY_PJ, MAC_ENERGY_PJ, NEURON_UPDATE_ENERGY_PJ) == (0.9, 4.6, 4.6)  # Horowitz 2014, 45 nm
    # The readout (identity) returns each hidden_1 neuron's rate: one spike in three steps.
    assert torch.allclose(output, torch.tensor([[1 / 3, 1 / 3]]))
    # On a CPU: 2 x 3 once, 3 x 2 at each of 3 steps, the 2 x 2 readout once.
    assert network.dense_macs() == 6 + 3 * 6 + 4


def test_spiking_encoder_spikes_are_counted_as_synaptic_operations():
    # Poisson with intensities 0 and 1 is deterministic: input (1, 0) fires the first ON channel every step.
    network = tiny_network("poisson")
    with counting(network):
        network(torch.tensor([[1.0, 0.0]]))
    counts = network.take_counts()
    assert counts.layers == ["encoder", "hidden_0", "hidden_1"]
    assert counts.spikes == [3.0, 4.0, 2.0]  # the ON channel drives hidden_0 as the direct current did
    assert counts.sops_per_decision == 3 * 3 + 12  # encoder spikes reach the 3 neurons of hidden_0
    assert counts.stats()["macs_per_decision"] == 0


def test_energy_against_the_dense_and_the_zero_skipping_ann_by_hand():
    # The tiny network's decision (hand count above): 12 SOPs, 6 MACs, 21 neuron updates = 135.0 pJ.
    # Its ANN twin, 2-3-2-2 with ReLU densities 2/3 and 1/2 on this input: 2 x 3 dense (the observation,
    # as the SNN's direct current) + 2 non-zero x 2 + 1 non-zero x 2 = 12 MACs = 55.2 pJ; dense 16 = 73.6 pJ.
    network = tiny_network()
    with counting(network):
        network(torch.tensor([[1.0, 0.0]]))
    stats = network.take_counts().stats(sparse_ann_macs=12)
    assert stats["energy_ratio"] == pytest.approx(135.0 / 73.6)
    assert stats["sparse_ann_energy_pj_per_decision"] == pytest.approx(55.2)
    assert stats["energy_ratio_sparse_ann"] == pytest.approx(135.0 / 55.2)
    # With one 50 pJ weight read per SOP or MAC: SNN 18 reads, dense ANN 16, sparse ANN 12.
    assert stats["energy_ratio_with_memory"] == pytest.approx((135.0 + 18 * 50) / (73.6 + 16 * 50))
    assert stats["energy_ratio_sparse_ann_with_memory"] == pytest.approx((135.0 + 18 * 50) / (55.2 + 12 * 50))


def test_neuron_updates_include_the_population_encoders_neurons():
    # 2 inputs x 4 encoding neurons + 3 LIF + 2 readout membranes, 3 steps each: (8 + 3 + 2) x 3 = 39.
    network = SpikingMLP(2, [3], 2, {"timesteps": 3, "encoder": {"type": "population", "population_size": 4}})
    with counting(network):
        network(torch.zeros(5, 2))
    assert network.take_counts().stats()["neuron_updates_per_decision"] == 39
    # An SB3 head reading the rates (no readout of its own) is counted through readout_fan_out.
    latent = SpikingMLP(4, [6, 5], None, {"timesteps": 2})
    latent.readout_fan_out = 3
    with counting(latent):
        latent(torch.zeros(1, 4))
    assert latent.take_counts().stats()["neuron_updates_per_decision"] == (6 + 5 + 3) * 2


@pytest.mark.parametrize("init", ["orthogonal", "torch"])
def test_init_option_sets_the_spiking_layers_as_named(init):
    torch.manual_seed(0)
    network = SpikingMLP(25, [64, 64], 5, {"init": init})
    for layer in network.layers:
        singular = torch.linalg.svdvals(layer.weight)
        if init == "orthogonal":  # every singular value sqrt(2): W^T W = 2 I on the smaller side
            assert torch.allclose(singular, torch.full_like(singular, 2**0.5), atol=1e-5)
            assert torch.count_nonzero(layer.bias) == 0
        else:  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
            bound = layer.in_features ** -0.5
            assert layer.weight.abs().max() <= bound and 0 < layer.bias.abs().max() <= bound


def test_counts_cover_only_the_passes_inside_counting_and_start_over_when_taken():
    network = tiny_network()
    network(torch.tensor([[1.0, 0.0]]))
    with counting(network):
        network(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert not network.counting
    first = network.take_counts()
    assert first.decisions == 2 and first.spikes == [8.0, 4.0]
    assert network.take_counts().decisions == 0
    network.add_counts(first)
    assert network.take_counts().spikes == [8.0, 4.0]


def test_gradients_reach_every_layer_through_all_steps():
    torch.manual_seed(0)
    for encoder in ("direct", "poisson", "population"):
        network = SpikingMLP(6, [32, 32], 3, {"timesteps": 8, "encoder": encoder})
        output = network(torch.rand(16, 6) * 2 - 1)
        (output * torch.randn_like(output)).sum().backward()
        for name, parameter in network.named_parameters():
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), (encoder, name)
            assert parameter.grad.abs().sum() > 0, (encoder, name)


def test_readout_decay_weights_late_steps_as_a_leaky_membrane():
    # d^(T-1-t) / sum: with d = 0.5 and T = 3 the steps weigh 1/7, 2/7, 4/7.
    network = SpikingMLP(2, [4], 1, {"timesteps": 3, "readout_decay": 0.5})
    assert torch.allclose(network.readout_weights, torch.tensor([1 / 7, 2 / 7, 4 / 7]))
    assert torch.allclose(SpikingMLP(2, [4], 1, {"timesteps": 4}).readout_weights, torch.full((4,), 0.25))


def test_default_initialisation_starts_every_layer_firing():
    torch.manual_seed(0)
    network = SpikingMLP(25, [256, 256], 5)
    with counting(network):
        network(torch.rand(256, 25) * 2 - 1)
    rates = network.take_counts().firing_rates()
    assert all(0.02 < rate < 0.6 for rate in rates.values()), rates


@pytest.mark.parametrize(("fields", "message"), [
    ({"timesteps": 0}, "timesteps"),
    ({"beta": 0.0}, r"beta\n.*must be in \(0, 1\]"),
    ({"reset": "none"}, "reset"),
    ({"encoder": "rate"}, "encoder\n.*unknown encoder type 'rate'; allowed: direct, poisson, population"),
    ({"encoder": {"type": "population", "population_size": 1}}, "population_size"),
    ({"neurons": "izhikevich"}, "neurons"),
    ({"critic": "snn"}, "critic"),
    ({"time_steps": 5}, "time_steps"),
])
def test_snn_config_refuses_bad_fields_by_name(fields, message):
    with pytest.raises(ValidationError, match=message):
        SnnConfig(**fields)


def test_a_network_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="net_arch: a spiking network needs at least one hidden layer"):
        SpikingMLP(3, [], 2)
