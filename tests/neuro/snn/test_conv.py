"""The convolutional network parts: SOPs, MACs, neuron updates and energy against a hand count on a tiny
conv net with hand-placed spikes; the exact fan-out of a convolution's inputs under stride and padding;
one forward pass against a reference built from torch convolutions and snnTorch's ``Leaky``; gradients
through every layer; the ANN twin against SB3's NatureCNN with the same weights; image policies of every
algorithm with a network policy (dopamine and modulators included), saved and loaded; the plastic spiking
readout (R-STDP) on the tiny net by hand and in a PPO agent driven by a dopamine module."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import snntorch
import torch
from gymnasium import spaces
from snntorch import surrogate
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import DummyVecEnv
from threadpoolctl import threadpool_limits
from torch import nn

from agents.plasticity import PlasticityStep, plastic_actor
from agents.registry import build
from neuro.networks import NETWORKS
from neuro.snn.conv import CNN, SpikingCNN
from neuro.snn.network import counting
from neuro.snn.operations import conv_fan_out, conv_macs, forward_macs
from neuro.snn.sparsity import ZeroSkippingMacs


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """Tiny convolutions: on a busy 2-core machine a second OpenMP thread made the training test 50 times
    slower; one thread, restored exactly afterwards (as tests/agents/test_bootstrapping.py)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


# --- hand counts on a tiny net -----------------------------------------------------------------------


def tiny_net(encoder: str, **settings) -> SpikingCNN:
    """A 1-channel 4x4 image -> 2 channels of 2x2 kernels, stride 1 (3x3 maps, 18 IF neurons) -> 2 IF
    neurons -> 2 readouts (identity); threshold 0.9, T = 3. Out channel 0 sums its window x 0.5 (ON
    channel), out channel 1 has zero weights; hidden neuron 0 reads conv channel 0 at (0, 0) alone."""
    net = SpikingCNN(16, [2], 2, input_shape=(1, 4, 4), convolutions=[[2, 2, 1]],
                     timesteps=3, beta=1.0, threshold=0.9, encoder=encoder, **settings)
    with torch.no_grad():
        for layer in [net.convs[0], net.layers[0], net.readout]:
            layer.weight.zero_()
            layer.bias.zero_()
        net.convs[0].weight[0, 0] = 0.5  # the ON channel (Poisson's first; direct's only)
        net.layers[0].weight[0, 0] = 1.0  # conv channel 0, position (0, 0), in the flat (C, H, W) order
        net.readout.weight.copy_(torch.eye(2))
    return net


def image_with_two_lit_pixels() -> torch.Tensor:
    image = torch.zeros(1, 4, 4)
    image[0, 0, 0] = image[0, 1, 1] = 1.0  # a corner pixel and an inner one
    return image.flatten().unsqueeze(0)


def test_poisson_spikes_count_their_exact_fan_out_over_the_kernel_and_output_channels():
    net = tiny_net("poisson")
    with counting(net):
        output = net(image_with_two_lit_pixels())
    counts = net.take_counts()
    # Poisson at intensity 1 fires every step: (0,0) and (1,1) spike 3 times each (OFF channels silent).
    # A 2x2 stride-1 kernel on 4x4: the corner pixel lies in 1 window, the inner pixel in 4; x 2 channels.
    # Encoder SOPs: 3 x (1 x 2 + 4 x 2) = 30 (a uniform fan-out of 4 x 2 would say 48).
    # conv_0 currents (x 0.5 per lit pixel in the window): (0,0) covers both: 1.0; (0,1), (1,0), (1,1): 0.5.
    # IF at 0.9, subtract: 1.0 -> 1.0*, 1.1*, 1.2*: 3 spikes; 0.5 -> 0.5, 1.0*, 0.6: 1 spike each; 6 in all,
    # each reaching the 2 hidden neurons: 12 SOPs. hidden_0 neuron 0 gets (1, 1, 1): 3 spikes; x 2 readouts: 6.
    assert counts.layers == ["encoder", "conv_0", "hidden_0"]
    assert counts.spikes == [6.0, 6.0, 3.0]
    assert counts.sops_per_decision == 30 + 12 + 6
    assert counts.fan_out == [8, 2, 2]  # the most synapses per spike: an inner pixel's
    stats = counts.stats()
    assert stats["firing_rate/conv_0"] == pytest.approx(6 / (18 * 3))
    assert stats["macs_per_decision"] == 0  # everything after a spiking encoder is SOPs
    # The ANN of the same shape: conv 2 ch x 3x3 positions x 1 in-channel x 2x2 = 72, linear 18 x 2, head 2 x 2.
    assert stats["ann_macs_per_decision"] == 72 + 36 + 4
    # Membranes: 18 conv neurons + 2 hidden + 2 readout, each at each of 3 steps.
    assert stats["neuron_updates_per_decision"] == 66
    assert stats["energy_pj_per_decision"] == pytest.approx(48 * 0.9 + 66 * 4.6)
    assert stats["ann_energy_pj_per_decision"] == pytest.approx(112 * 4.6)
    assert torch.allclose(output, torch.tensor([[1.0, 0.0]]))  # hidden neuron 0 fired at every step
    # On a CPU: the first conv on 2 channels (ON, OFF) at every step, 2 x 9 x 2 x 4 = 144, x 3; the linear
    # 18 x 2 at every step; the readout once.
    assert net.dense_macs() == 144 * 3 + 36 * 3 + 4


def test_counts_add_up_and_go_back_with_their_exact_synaptic_events():
    net = tiny_net("poisson")
    with counting(net):
        net(image_with_two_lit_pixels())
    first = net.take_counts()
    with counting(net):
        net(torch.zeros(1, 16))  # silent: no spikes anywhere
    total = first + net.take_counts()
    assert (total.decisions, total.sops_per_decision) == (2, 48 / 2)  # the hand count above, over 2 decisions
    net.add_counts(total)  # put back (a measurement in between leaves no trace)
    again = net.take_counts()
    assert (again.decisions, again.spikes, again.sops_per_decision) == (2, [6.0, 6.0, 3.0], 24.0)


def test_a_plastic_readout_spikes_records_its_stdp_and_counts_its_operations_by_hand():
    """The tiny net with an R-STDP readout (weights 0.5 and 1 on the diagonal, LIF at 0.9, beta 1): hidden neuron 0
    fires at t = 0, 1, 2 (above), so readout neuron 0 gets 0.5 a step: 0.5, 1.0* (-> 0.1), 0.6: one spike at
    t = 1, rate 1/3; neuron 1 reads the silent hidden neuron 1."""
    rule = {"type": "rstdp", "learning_rate": 0.1, "a_plus": 1.0, "a_minus": 0.5, "tau_plus": 2.0,
            "tau_minus": 3.0, "tau_eligibility": 4.0}
    net = tiny_net("poisson", plasticity=rule)
    assert not net.readout.weight.requires_grad and net.convs[0].weight.requires_grad
    with torch.no_grad():
        net.readout.weight[0, 0] = 0.5
    image = image_with_two_lit_pixels()
    with counting(net):
        output = net(image)
    assert output.tolist() == [[pytest.approx(1 / 3), 0.0]]
    counts = net.take_counts()
    assert counts.layers == ["encoder", "conv_0", "hidden_0", "readout"] and counts.spikes == [6.0, 6.0, 3.0, 1.0]
    assert counts.sops_per_decision == 30 + 12 + 6  # the readout's spikes reach no synapse
    net.record_decision(image, torch.tensor([[0.0, 1.0]]))  # action 1 chosen: neuron 0's spike is not post-synaptic
    assert torch.count_nonzero(net.plasticity_rules[0].eligibility) == 0  # and neuron 1 is silent
    net.episode_start(torch.tensor([True]))  # the traces start over
    net.record_decision(image)  # every output neuron post-synaptic
    # Pairwise STDP of synapse (readout 0 <- hidden 0), pre at 0, 1, 2 and post at 1, read at t = 2:
    # + a_plus e^(-(tj - ti)/tau_plus) for tj >= ti, - a_minus e^(-(ti - tj)/tau_minus) otherwise, each
    # decayed by e^(-(2 - max(ti, tj))/tau_eligibility). Every other synapse has a silent side.
    expected = sum((1.0 * math.exp(-(tj - ti) / 2.0) if tj >= ti else -0.5 * math.exp(-(ti - tj) / 3.0))
                   * math.exp(-(2 - max(ti, tj)) / 4.0) for ti in range(3) for tj in [1])
    eligibility = net.plasticity_rules[0].eligibility[0]
    assert eligibility[0, 0].item() == pytest.approx(expected, rel=1e-6)
    assert torch.count_nonzero(eligibility) == 1
    net.apply_dopamine(0.5)
    assert net.readout.weight[0, 0].item() == pytest.approx(0.5 + 0.1 * 0.5 * expected, rel=1e-6)
    assert net.readout.weight[1, 1].item() == 1.0
    # Operations: per step and row 2 x 2 eligibilities + 2 pre + 2 post traces (3 steps, 1 row, 2 decisions
    # replayed), then 4 weights.
    counts = net.take_counts()
    assert counts.plasticity_operations == 2 * 3 * (4 + 2 + 2) + 4
    with counting(net):
        net(image)
    net.record_decision(image)
    stats = net.take_counts().stats()
    assert stats["plasticity_operations_per_decision"] == 24  # charged 4.6 pJ each, as a MAC
    assert stats["energy_pj_per_decision"] == pytest.approx(
        stats["sops_per_decision"] * 0.9 + (stats["macs_per_decision"] + stats["neuron_updates_per_decision"]
                                            + 24) * 4.6)


def test_direct_encoding_computes_the_first_convolution_once_as_macs():
    net = tiny_net("direct")
    with counting(net):
        net(image_with_two_lit_pixels())
    counts = net.take_counts()
    assert counts.layers == ["conv_0", "hidden_0"]
    assert counts.spikes == [6.0, 3.0]  # the same currents as Poisson's ON channel: the same spikes
    assert counts.sops_per_decision == 12 + 6
    assert counts.stats()["macs_per_decision"] == 72  # the real-valued first convolution, once
    assert net.dense_macs() == 72 + 36 * 3 + 4


def test_a_convolutions_fan_out_is_counted_exactly_at_the_border():
    inner = conv_fan_out(nn.Conv2d(1, 3, 2, stride=1), 4, 4)  # windows covering each pixel, x 3 channels
    row = torch.tensor([1.0, 2.0, 2.0, 1.0])
    assert torch.equal(inner, torch.outer(row, row) * 3)
    # 5x5, 2x2 kernel, stride 2: the windows tile the first 4x4; the last row and column reach nothing.
    strided = conv_fan_out(nn.Conv2d(1, 1, 2, stride=2), 5, 5)
    expected = torch.zeros(5, 5)
    expected[:4, :4] = 1.0
    assert torch.equal(strided, expected.double())
    # 4x4, 3x3 kernel, stride 2, padding 1: two windows per axis, over rows -1..1 and 1..3: row 1 twice.
    padded = conv_fan_out(nn.Conv2d(1, 1, 3, stride=2, padding=1), 4, 4)
    row = torch.tensor([1.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.equal(padded, torch.outer(row, row))
    # MACs: 5 out-channels x 3 x 4 positions ((7-3)//2+1, (9-3)//2+1) x 3 in-channels x 3 x 3.
    assert conv_macs(nn.Conv2d(3, 5, 3, stride=2), 7, 9) == 5 * 3 * 4 * 3 * 9


def test_a_zero_skipping_ann_convolution_spends_each_non_zero_inputs_fan_out():
    conv = nn.Conv2d(1, 2, 2, stride=1)
    meter = ZeroSkippingMacs([conv], dense_layers=0)
    with meter.counting():
        conv(image_with_two_lit_pixels().view(1, 1, 4, 4))
    counts = meter.counts()
    # Dense: 2 channels x 3x3 positions x 2x2 = 72. Skipping zeros: the corner pixel reaches 1 window, the
    # inner one 4, each in 2 output channels: 10 MACs. 2 of the 16 inputs are non-zero.
    assert (counts.rows, counts.dense, counts.nonzero, counts.densities) == (1, 72.0, 10.0, [2 / 16])


# --- against references --------------------------------------------------------------------------------


def test_a_forward_pass_equals_torch_convolutions_and_snntorch_leaky_step_by_step():
    torch.manual_seed(0)
    settings = {"timesteps": 4, "beta": 0.8, "threshold": 0.5, "encoder": "direct"}
    net = SpikingCNN(2 * 10 * 10, [6], 3, input_shape=(2, 10, 10), convolutions=[[4, 3, 2], [5, 2, 1]], **settings)
    image = torch.rand(5, 2 * 10 * 10)
    leaky = [snntorch.Leaky(beta=0.8, threshold=0.5, spike_grad=surrogate.fast_sigmoid(), reset_mechanism="subtract")
             for _ in range(3)]
    membranes = [neuron.init_leaky() for neuron in leaky]
    rates = torch.zeros(5, 6)
    for _ in range(4):  # snnTorch's usual loop: every layer at every step
        x = image.view(5, 2, 10, 10)
        s0, membranes[0] = leaky[0](net.convs[0](x), membranes[0])
        s1, membranes[1] = leaky[1](net.convs[1](s0), membranes[1])
        s2, membranes[2] = leaky[2](net.layers[0](s1.flatten(1)), membranes[2])
        rates += s2 / 4
    with torch.no_grad():
        expected = net.readout(rates)
        assert rates.sum() > 0  # the reference spikes, so the comparison means something
        assert torch.allclose(net(image), expected, atol=1e-6)


def test_gradients_reach_every_layer_through_the_surrogate():
    torch.manual_seed(0)
    net = SpikingCNN(2 * 10 * 10, [6], 3, input_shape=(2, 10, 10), convolutions=[[4, 3, 2], [5, 2, 1]],
                     timesteps=4, encoder="poisson")
    net(torch.rand(8, 200)).pow(2).sum().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_ann_twin_is_nature_cnn_given_the_same_weights():
    space = spaces.Box(0, 255, (4, 40, 44), np.uint8)
    torch.manual_seed(0)
    nature = NatureCNN(space, features_dim=512)
    twin = CNN(4 * 40 * 44, [512], None, input_shape=(4, 40, 44))
    nature_layers = [m for m in nature.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    twin_layers = [m for m in twin.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(nature_layers) == len(twin_layers) == 4
    with torch.no_grad():
        for theirs, ours in zip(nature_layers, twin_layers, strict=True):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
        x = torch.rand(3, 4, 40, 44)
        assert torch.allclose(twin(x.flatten(1)), nature(x), atol=1e-6)
    # NatureCNN's MACs by hand: 40x44 -> 9x10 -> 3x4 -> 1x2.
    macs = 32 * 9 * 10 * 4 * 64 + 64 * 3 * 4 * 32 * 16 + 64 * 1 * 2 * 64 * 9 + 128 * 512
    assert twin.dense_macs() == forward_macs(twin) == macs


@pytest.mark.parametrize("init", ["orthogonal", "torch"])
def test_the_twins_start_from_the_same_weights_on_the_same_seed(init):
    torch.manual_seed(3)
    twin = CNN(2 * 12 * 12, [8], 3, input_shape=(2, 12, 12), convolutions=[[4, 3, 2]], init=init)
    torch.manual_seed(3)
    spiking = SpikingCNN(2 * 12 * 12, [8], 3, input_shape=(2, 12, 12), convolutions=[[4, 3, 2]], init=init)
    ours = [m.weight for m in spiking.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    theirs = [m.weight for m in twin.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize(("spec", "given", "message"), [
    ({"type": "spiking_cnn", "encoder": "population"}, {"input_shape": (1, 8, 8)},
     "network.encoder: spiking_cnn takes direct or poisson"),
    ({"type": "spiking_cnn"}, {}, "spiking_cnn reads images: it needs an image observation"),
    ({"type": "cnn"}, {}, "cnn reads images"),
    ({"type": "spiking_cnn", "plasticity": {"layers": "all"}}, {"input_shape": (1, 8, 8)},
     r"agent\.snn\.plasticity\.layers: spiking_cnn learns its readout alone by the rule; allowed: readout"),
    ({"type": "cnn", "convolutions": [[4, 9, 1]]}, {"input_shape": (1, 8, 8)},
     r"convolutions\[0\]: a 9x9 kernel does not fit its 8x8 input"),
])
def test_bad_parts_are_refused_in_one_line(spec, given, message):
    with pytest.raises(ValueError, match=message):
        NETWORKS.make(spec, in_features=64, hidden=[4], out_features=2, **given)


# --- in the policies -------------------------------------------------------------------------------------


class TinyImageEnv(gym.Env):
    """Random 2x12x12 uint8 images; reward: action 0 (or a positive first action) when the image is bright."""

    def __init__(self, continuous: bool = False) -> None:
        self.observation_space = spaces.Box(0, 255, (2, 12, 12), np.uint8)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32) if continuous else spaces.Discrete(3)
        self.steps = 0
        self.image = np.zeros((2, 12, 12), np.uint8)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def _observe(self) -> np.ndarray:
        self.image = self.np_random.integers(0, 256, (2, 12, 12), dtype=np.uint8)
        return self.image

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        bright = self.image.mean() > 127.5
        chose = float(np.asarray(action).ravel()[0] > 0) if isinstance(self.action_space, spaces.Box) else action == 0
        self.steps += 1
        return self._observe(), float(chose == bright), False, self.steps >= 20, {}


TINY = {"type": "spiking_cnn", "convolutions": [[4, 3, 2], [8, 3, 1]], "timesteps": 3}
OFF_POLICY = {"learning_starts": 20, "batch_size": 8, "buffer_size": 200}


def image_env(continuous: bool = False, n_envs: int = 1) -> DummyVecEnv:
    return DummyVecEnv([lambda: TinyImageEnv(continuous)] * n_envs)


@pytest.mark.parametrize(("algo", "continuous", "hyperparameters", "part"), [
    ("dqn", False, OFF_POLICY, lambda p: p.q_net.q_net),
    ("qrdqn", False, OFF_POLICY, lambda p: p.quantile_net.quantile_net),
    ("ppo", False, {"n_steps": 16, "batch_size": 8}, lambda p: p.mlp_extractor.policy_net),
    ("a2c", False, {"n_steps": 8}, lambda p: p.mlp_extractor.policy_net),
    ("sac", True, OFF_POLICY, lambda p: p.actor.latent_pi),
    ("td3", True, OFF_POLICY, lambda p: p.actor.mu[0]),
])
def test_every_network_policy_hands_the_part_the_image_scaled_to_one(algo, continuous, hyperparameters, part):
    model = build(algo, image_env(continuous), None, hyperparameters, {"network": TINY, "net_arch": [16]},
                  seed=0, device="cpu")
    network = part(model.policy)
    assert isinstance(network, SpikingCNN) and network.input_shape == (2, 12, 12)
    seen = []
    network.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    observation = model.get_env().reset()
    model.predict(observation, deterministic=True)
    # SB3's preprocess_obs scales the uint8 image by 1/255 (normalize_images), as CnnPolicy's NatureCNN gets it.
    assert torch.allclose(seen[0], torch.as_tensor(observation).flatten(1).float() / 255)
    assert model.policy.take_spike_counts().decisions == 1


def test_agent_snn_convolutions_make_the_spiking_policy_a_spiking_cnn(tmp_path):
    snn = {"timesteps": 3, "convolutions": [[4, 3, 2]], "critic": "spiking"}
    ppo = build("ppo", image_env(), "spiking", {"n_steps": 16, "batch_size": 8}, {"net_arch": [16]}, seed=0,
                device="cpu", snn=snn)
    for network in (ppo.policy.mlp_extractor.policy_net, ppo.policy.mlp_extractor.value_net):
        assert isinstance(network, SpikingCNN) and [tuple(c) for c in network.maps] == [(2, 12, 12), (4, 5, 5)]
    ppo.save(tmp_path / "ppo")
    loaded = type(ppo).load(tmp_path / "ppo", device="cpu")
    assert loaded.policy.snn.convolutions == [(4, 3, 2)]
    assert isinstance(loaded.policy.mlp_extractor.policy_net, SpikingCNN)
    with pytest.raises(ValueError, match="convolutions"):  # the MLP's settings do not take them
        NETWORKS.make({"type": "spiking", "convolutions": [[4, 3, 2]]}, in_features=8, hidden=[4], out_features=2)


def test_a_spiking_cnn_on_a_vector_observation_is_refused():
    env = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="spiking_cnn reads images"):
        build("dqn", env, None, OFF_POLICY, {"network": TINY}, seed=0, device="cpu")


def test_dopamine_dqn_and_a_modulated_ppo_train_with_a_spiking_cnn_and_reload_to_the_same_actions(tmp_path):
    dqn = build("dqn", image_env(), None, {**OFF_POLICY, "train_freq": 1, "target_update_interval": 50},
                {"network": TINY, "net_arch": [16]}, seed=0, device="cpu",
                neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})
    before = [p.detach().clone() for p in dqn.policy.q_net.parameters()]
    dqn.learn(200)
    assert any(not torch.equal(a, b) for a, b in zip(before, dqn.policy.q_net.parameters(), strict=True))
    ppo = build("ppo", image_env(n_envs=2), None, {"n_steps": 32, "batch_size": 16, "n_epochs": 2},
                {"network": {**TINY, "encoder": "poisson"}, "net_arch": [16],
                 "value_network": {"type": "cnn", "convolutions": [[4, 3, 2]]}},
                seed=0, device="cpu", neuro={"learning_rate": {"type": "surprise"}})
    ppo.learn(192)
    assert ppo.neuro_values()["learning_rate"] != pytest.approx(ppo.learning_rate)  # the modulator acted
    observations = np.stack([TinyImageEnv().observation_space.sample() for _ in range(6)])
    for model in (dqn, ppo):
        path = tmp_path / type(model).__name__
        model.save(path)
        loaded = type(model).load(path, device="cpu")
        assert np.array_equal(model.predict(observations, deterministic=True)[0],
                              loaded.predict(observations, deterministic=True)[0])


# --- the ready files --------------------------------------------------------------------------------------

GRAYSCALE = {"type": "GrayscaleObservation", "observation_shape": [128, 64], "stack_size": 4,
             "weights": [0.2989, 0.5870, 0.1140], "scaling": 1.75}
HYPERPARAMETERS = {"learning_rate": 5e-4, "buffer_size": 15000, "learning_starts": 200, "batch_size": 32,
                   "gamma": 0.8, "train_freq": 1, "gradient_steps": 1, "target_update_interval": 50,
                   "exploration_fraction": 0.7}


def test_the_ready_grayscale_twins_validate_and_build_from_the_same_weights():
    from experiments.config import load_config
    from experiments.presets import PRESETS
    from experiments.runs.build import build_run

    models = {}
    for kind in ("spiking", "ann_twin"):
        config = load_config(PRESETS / "vision" / f"dqn_grayscale_{kind}.yaml")
        assert (config.agent.algo, config.env.id, config.env.backend) == ("dqn", "highway-fast-v0", "highway-env")
        assert config.env.config == {"observation": GRAYSCALE} and config.agent.hyperparameters == HYPERPARAMETERS
        models[kind] = build_run(config, with_eval_env=False).model
        models[kind].get_env().close()
    spiking, twin = models["spiking"].policy.q_net.q_net, models["ann_twin"].policy.q_net.q_net
    assert isinstance(spiking, SpikingCNN) and isinstance(twin, CNN) and spiking.timesteps == 4
    assert spiking.input_shape == twin.input_shape == (4, 128, 64)
    ours = [m.weight for m in spiking.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    theirs = [m.weight for m in twin.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(ours) == 5 and all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


# --- a plastic readout (R-STDP) on the spiking CNN ---------------------------------------------------------

PLASTIC = {"type": "rstdp", "learning_rate": 0.05, "tau_plus": 3.0, "tau_minus": 3.0, "tau_eligibility": 10.0}
PLASTIC_PPO = {"n_steps": 16, "batch_size": 32, "n_epochs": 2}


def plastic_cnn_ppo(plasticity: dict | None = None, neuro: dict | None = None, snn_policy: bool = False):
    """PPO with a plastic spiking CNN actor: a network part, or ``agent.policy: spiking`` + ``snn.convolutions``."""
    rule = {**PLASTIC, **(plasticity or {})}
    if snn_policy:
        snn = {"timesteps": 3, "convolutions": TINY["convolutions"], "plasticity": rule}
        return build("ppo", image_env(n_envs=2), "spiking", PLASTIC_PPO, {"net_arch": [16]}, seed=0, device="cpu",
                     snn=snn, neuro=neuro)
    return build("ppo", image_env(n_envs=2), None, PLASTIC_PPO,
                 {"network": {**TINY, "plasticity": rule}, "net_arch": [16]}, seed=0, device="cpu", neuro=neuro)


def test_with_the_rules_learning_rate_zero_the_cnns_readout_never_moves_while_its_convolutions_learn():
    model = plastic_cnn_ppo({"learning_rate": 0.0}, snn_policy=True)
    network = plastic_actor(model)
    assert isinstance(network, SpikingCNN) and not network.readout.weight.requires_grad
    readout, conv = network.readout.weight.clone(), network.convs[0].weight.clone()
    model.learn(64)
    assert network.plasticity_rules[0].eligibility.abs().sum() > 0  # the rule ran, with nothing to move
    assert torch.equal(network.readout.weight, readout)  # PPO's gradient steps never touch it
    assert not torch.equal(network.convs[0].weight, conv)


def test_the_cnns_rule_takes_the_modules_signal_of_the_critics_td_error_by_hand():
    """One step: env 0 goes on (reward 1), env 1 terminates (reward -1); asymmetric kappa = 0.3."""
    model = plastic_cnn_ppo(neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})
    network = plastic_actor(model)
    obs = torch.as_tensor(model.env.reset())
    new_obs = model.env.reset()
    with torch.no_grad():
        values = model.policy.predict_values(obs)
        next_values = model.policy.predict_values(torch.as_tensor(new_obs)).flatten()
    delta = np.array([1.0 + model.gamma * next_values[0].item() - values[0].item(), -1.0 - values[1].item()])
    signal = np.where(delta > 0, 0.7 * delta, 1.3 * delta)
    replay = copy.deepcopy(network)  # the eligibility the step will see, replayed apart on the image scaled by hand
    features = obs.flatten(1).float() / 255
    with torch.no_grad():  # each env's most active output neuron: its synapses have spikes on both sides
        actions = replay(features).argmax(1).numpy()
    replay.record_decision(features, torch.nn.functional.one_hot(torch.as_tensor(actions), 3))
    eligibility = replay.plasticity_rules[0].eligibility
    assert eligibility[0].abs().sum() > 0 and eligibility[1].abs().sum() > 0
    before = network.readout.weight.clone()
    step = PlasticityStep(model, None, network)  # type: ignore[arg-type]  # no callback needed here
    step.plasticity_step({"obs_tensor": obs, "actions": actions, "values": values, "rewards": np.array([1.0, -1.0]),
                          "new_obs": new_obs, "dones": np.array([False, True]), "infos": [{}, {}]})
    np.testing.assert_allclose(step._signals[0].numpy(), signal, rtol=1e-5)
    expected = before + 0.05 * (torch.as_tensor(signal, dtype=torch.float32).reshape(2, 1, 1) * eligibility).mean(0)
    assert torch.allclose(network.readout.weight, expected, atol=1e-6)
    rule = network.plasticity_rules[0]
    assert rule.eligibility[1].abs().sum() == 0 and torch.equal(rule.eligibility[0], eligibility[0])


def test_a_plastic_cnn_trains_with_dopamine_counts_its_plasticity_and_reloads_to_the_same_actions(tmp_path):
    model = plastic_cnn_ppo(neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})
    network = plastic_actor(model)
    readout, conv = network.readout.weight.clone(), network.convs[0].weight.clone()
    model.policy.take_spike_counts()  # start the count at the training
    model.learn(320)
    assert not torch.equal(network.readout.weight, readout)  # the rule moved it
    assert not torch.equal(network.convs[0].weight, conv)  # surrogate gradients moved the convolutions
    counts = model.policy.take_spike_counts()
    # 320 env steps over 2 envs: each of the 160 vector steps replays both envs' decisions through 3 steps of
    # the 16 -> 3 readout (3 x 2 x (16 x 3 eligibilities + 16 pre + 3 post traces)) and moves its 48 weights.
    assert counts.layers[-1] == "readout" and counts.plasticity_operations == 160 * (3 * 2 * (48 + 16 + 3) + 48)
    assert counts.decisions == 320  # every env's decision of the rollouts, one row each
    model.save(tmp_path / "plastic")
    loaded = type(model).load(tmp_path / "plastic", device="cpu")
    theirs = plastic_actor(loaded)
    assert isinstance(theirs, SpikingCNN) and "plasticity_rules.0.eligibility" in theirs.state_dict()
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, theirs.state_dict()[name]), name
    observations = np.stack([TinyImageEnv().observation_space.sample() for _ in range(6)])
    assert np.array_equal(model.predict(observations, deterministic=True)[0],
                          loaded.predict(observations, deterministic=True)[0])


def test_a_spiking_cnn_learning_every_layer_by_the_rule_is_refused_in_one_line_at_load():
    from experiments.config import ConfigError, load_config
    from experiments.presets import PRESETS

    with pytest.raises(ConfigError, match=r"agent\.snn.*plasticity\.layers: .* allowed: readout") as error:
        load_config(PRESETS / "plasticity" / "ppo_rstdp.yaml",
                    ["agent.snn.convolutions=[[4, 3, 2]]", "agent.snn.plasticity.layers=all"])
    assert "\n" not in str(error.value).strip()
