"""Network parts (``neuro.networks``): the registry's names, dotted paths and checked parameters, and
the ``mlp`` member layer for layer SB3's own MLP."""

import pytest
import torch
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from neuro.networks import MLP, NETWORKS, NetworkPart
from neuro.registry import SpecError
from neuro.snn.conv import CNN, SpikingCNN
from neuro.snn.network import SpikingMLP

SIZES = {"in_features": 7, "hidden": [16, 8], "out_features": 3}


def test_the_spiking_network_and_the_mlp_are_members():
    assert NETWORKS.resolve("spiking") is SpikingMLP and NETWORKS.resolve("mlp") is MLP
    assert NETWORKS.resolve("spiking_cnn") is SpikingCNN and NETWORKS.resolve("cnn") is CNN
    assert isinstance(NETWORKS.make({"type": "spiking", "timesteps": 2}, **SIZES), SpikingMLP)


# The members in the order their modules were imported (neuro.parts or a test's own import first).
# the registration order follows neuro/parts.py's imports
MEMBERS = "mlp, (?:backpropamine, )?spiking, (?:backpropamine, )?cnn, (?:backpropamine, )?spiking_cnn"


def test_an_unknown_type_lists_the_allowed_ones():
    with pytest.raises(SpecError, match=r"^agent.policy_kwargs.network.type: unknown network type 'lstm'; "
                                        rf"allowed: {MEMBERS} or a dotted path"):
        NETWORKS.check({"type": "lstm"})
    with pytest.raises(SpecError,
                       match=rf"agent.policy_kwargs.network.type: required; allowed: {MEMBERS}"):
        NETWORKS.check({})


def test_the_spiking_settings_are_checked_before_anything_is_built():
    with pytest.raises(SpecError,
                       match=r"^agent.policy_kwargs.network.timesteps: Input should be greater than or equal to 1"):
        NETWORKS.check({"type": "spiking", "timesteps": 0}, given=SIZES)
    with pytest.raises(SpecError, match=r"^agent.policy_kwargs.network.tau: spiking takes no such parameter; "
                                        r"allowed: timesteps, encoder"):
        NETWORKS.check({"type": "spiking", "tau": 2.0}, given=SIZES)
    with pytest.raises(SpecError, match=r"^agent.policy_kwargs.network.encoder: type: unknown encoder type 'morse'; "
                                        r"allowed: direct, poisson, population"):
        NETWORKS.check({"type": "spiking", "encoder": "morse"}, given=SIZES)
    with pytest.raises(SpecError, match=r"^agent.policy_kwargs.network.critic: Input should be 'ann'"):
        NETWORKS.check({"type": "spiking", "critic": "spiking"}, given=SIZES)  # the policy's value_network
    with pytest.raises(SpecError, match=r"^agent.policy_kwargs.network.activation: Input should be 'relu' or 'tanh'"):
        NETWORKS.check({"type": "mlp", "activation": "gelu"}, given=SIZES)


def test_a_users_part_loads_by_dotted_path_and_must_be_a_network_part():
    assert NETWORKS.resolve("neuro.networks:MLP") is MLP
    with pytest.raises(SpecError, match="does not implement the network interface"):
        NETWORKS.check({"type": "torch.nn:Linear"})


def test_the_spiking_settings_as_keywords_build_the_network_the_config_builds():
    torch.manual_seed(0)
    from_config = SpikingMLP(7, [16, 8], 3, {"timesteps": 3, "beta": 0.8})
    torch.manual_seed(0)
    from_keywords = NETWORKS.make({"type": "spiking", "timesteps": 3, "beta": 0.8}, **SIZES)
    assert from_keywords.config == from_config.config
    for mine, theirs in zip(from_keywords.state_dict().values(), from_config.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="not both"):
        SpikingMLP(7, [16], 3, {"timesteps": 3}, beta=0.8)


@pytest.mark.parametrize(("activation", "activation_fn"), [("relu", nn.ReLU), ("tanh", nn.Tanh)])
@pytest.mark.parametrize("out_features", [3, None])
def test_the_mlp_is_sb3s_mlp_layer_for_layer(activation, activation_fn, out_features):
    # SB3's create_mlp with a head (DQN's Q-network, TD3's actor) and without one (the MlpExtractor's latent):
    # same layers, same initial weights from the same seed, the same function.
    torch.manual_seed(5)
    ours = MLP(7, [16, 8], out_features, activation=activation)
    torch.manual_seed(5)
    sb3 = nn.Sequential(*create_mlp(7, out_features or -1, [16, 8], activation_fn))
    assert [type(layer) for layer in ours.net] == [type(layer) for layer in sb3]
    for mine, theirs in zip(ours.state_dict().values(), sb3.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)
    features = torch.randn(5, 7)
    assert torch.equal(ours(features), sb3(features))
    assert ours.out_features == (out_features or 8)


def test_the_mlps_orthogonal_init_starts_its_hidden_layers_as_a_spiking_networks():
    torch.manual_seed(1)
    ours = MLP(7, [16, 8], 3, init="orthogonal")
    hidden = [layer for layer in ours.net if isinstance(layer, nn.Linear)][:-1]
    for layer in hidden:  # orthogonal with gain sqrt(2): W W^T = 2 I on the smaller side, zero bias
        weight = layer.weight.detach().double()
        gram = weight @ weight.T if weight.shape[0] <= weight.shape[1] else weight.T @ weight
        assert torch.allclose(gram, 2 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)
        assert not layer.bias.any()


def test_a_part_that_does_not_count_gives_no_counts_and_decides_unchanged():
    network = MLP(3, [4], 2)
    assert isinstance(network, NetworkPart) and network.take_counts() is None
    with network.deciding(deterministic=True):
        network(torch.zeros(1, 3))
