"""The backpropamine layer (Miconi et al. 2019) against independent truth: with A = 0 it is a plain tanh
RNN (a torch reimplementation bit for bit, ``nn.RNN`` to float precision); its traces follow their
update rules, computed by hand in numpy over several steps with clipping and an episode reset; and a
plastic layer learns a bandit whose good arm is re-drawn every episode, over seeds with a 95% interval
(its edge over the non-plastic twin is measured, not asserted: see the bandit test)."""

import numpy as np
import pytest
import torch
from scipy import stats

from neuro.backpropamine import BackpropamineLayer
from neuro.networks import NETWORKS
from neuro.registry import SpecError


def layer(**params) -> BackpropamineLayer:
    torch.manual_seed(0)
    return BackpropamineLayer(3, [5], None, **params)


def test_with_a_zero_it_is_the_plain_recurrent_layer_bit_for_bit():
    plastic = layer()
    with torch.no_grad():
        plastic.alpha.zero_()
    twin = layer(plastic=False)
    twin.load_state_dict({k: v for k, v in plastic.state_dict().items() if k in twin.state_dict()}, strict=True)
    inputs, starts = torch.randn(7, 4, 3), torch.zeros(7, 4)
    starts[3, 1] = 1.0
    ours, _ = plastic.sequence(inputs, plastic.initial_state(4), starts)
    theirs, _ = twin.sequence(inputs, twin.initial_state(4), starts)
    # plain torch: h(t) = tanh(h(t-1) W + U o(t) + b), zeroed at an episode start
    h, reference = torch.zeros(4, 5), []
    for t in range(7):
        h = torch.tanh(h * (1 - starts[t]).view(4, 1) @ plastic.w + torch.nn.functional.linear(
            inputs[t], plastic.input.weight, plastic.input.bias))
        reference.append(h)
    assert torch.equal(ours, torch.stack(reference)) and torch.equal(theirs, ours)
    rnn = torch.nn.RNN(3, 5, nonlinearity="tanh")  # torch's own RNN: W_hh is our W transposed
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(plastic.input.weight)
        rnn.bias_ih_l0.copy_(plastic.input.bias)
        rnn.weight_hh_l0.copy_(plastic.w.T)
        rnn.bias_hh_l0.zero_()
    expected, _ = rnn(inputs[:3])
    torch.testing.assert_close(ours[:3], expected, rtol=0, atol=1e-6)


def numpy_traces(net: BackpropamineLayer, inputs: np.ndarray, starts: np.ndarray, modulation: np.ndarray | None):
    """The rules by hand, one env, float64."""
    w, alpha = net.w.detach().double().numpy(), net.alpha.detach().double().numpy()
    u, b = net.input.weight.detach().double().numpy(), net.input.bias.detach().double().numpy()
    eta = float(net.eta) if net.mode == "retroactive" else 0.0
    n = w.shape[0]
    x, hebb, trace = np.zeros(n), np.zeros((n, n)), np.zeros((n, n))
    history = []
    for t, o in enumerate(inputs):
        if starts[t]:
            x, hebb, trace = np.zeros(n), np.zeros((n, n)), np.zeros((n, n))
        new = np.tanh(x @ (w + alpha * hebb) + u @ o + b)
        if modulation is None:
            m = np.tanh(net.modulation_head.weight.detach().double().numpy()[0] @ new
                        + float(net.modulation_head.bias.detach()))
        else:
            m = modulation[t]
        if net.mode == "simple":
            hebb = np.clip(hebb + m * np.outer(x, new), -net.clip, net.clip)
        else:
            hebb = np.clip(hebb + m * trace, -net.clip, net.clip)
            trace = (1 - eta) * trace + eta * np.outer(x, new)
        x = new
        history.append((x, hebb, trace))
    return history


@pytest.mark.parametrize("mode", ["simple", "retroactive"])
@pytest.mark.parametrize("modulation", ["network", "dopamine"])
def test_the_traces_follow_their_rules_with_clipping_and_reset(mode, modulation):
    torch.manual_seed(1)
    net = BackpropamineLayer(3, [4], None, mode=mode, modulation=modulation, clip=0.3, eta=0.4, alpha_init=0.5)
    with torch.no_grad():
        net.w.mul_(2.0)
        net.input.weight.mul_(3.0)  # saturating activations drive the traces into the clip
    inputs = torch.randn(9, 1, 3)
    starts = torch.zeros(9, 1)
    starts[5, 0] = 1.0  # a new episode at step 5: state, Hebb and E start again from zero
    given = torch.tensor([0.9, -0.7, 1.0, 0.5, 0.8, -1.0, 0.6, 0.9, 1.0]) if modulation == "dopamine" else None
    state = net.initial_state(1)
    expected = numpy_traces(net, inputs[:, 0].double().numpy(), starts[:, 0].numpy(),
                            None if given is None else given.double().numpy())
    clipped = False
    for t in range(9):  # one step per call: the state carries everything between calls
        _, state = net.sequence(inputs[t:t + 1], state, starts[t:t + 1],
                                None if given is None else given[t:t + 1].view(1, 1))
        x, hebb, trace = expected[t]
        flat = state[0].detach().double().numpy()
        np.testing.assert_allclose(flat[:4], x, atol=1e-5)
        np.testing.assert_allclose(flat[4:20].reshape(4, 4), hebb, atol=1e-5)
        if mode == "retroactive":
            np.testing.assert_allclose(flat[20:].reshape(4, 4), trace, atol=1e-5)
        clipped |= bool(np.any(np.isclose(np.abs(hebb), 0.3)))
    assert clipped  # the clip was exercised
    assert net.state_size == 4 + (1 if mode == "simple" else 2) * 16


def test_bad_parameters_are_one_line_naming_the_field():
    with pytest.raises(SpecError, match=r"network\.clip: must be > 0"):
        NETWORKS.make({"type": "backpropamine", "clip": 0}, in_features=2, hidden=[4], out_features=None)
    with pytest.raises(SpecError, match=r"network\.mode"):
        NETWORKS.make({"type": "backpropamine", "mode": "slow"}, in_features=2, hidden=[4], out_features=None)
    with pytest.raises(ValueError, match="hidden: one recurrent layer size"):
        BackpropamineLayer(2, [4, 4], None)


def bandit(seed: int, plastic: bool, arms: int = 4, steps: int = 20, hidden: int = 16, iters: int = 300,
           batch: int = 32) -> float:
    """REINFORCE on a bandit whose good arm is drawn anew each episode (reward 1 for it, else 0); the
    input is the previous action and reward. Returns the greedy-free mean reward of the episodes'
    second half after training (chance: 1 / arms)."""
    torch.manual_seed(seed)
    net = BackpropamineLayer(arms + 1, [hidden], arms, plastic=plastic)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    def episodes(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        good = torch.randint(arms, (n,))
        state, inputs = net.initial_state(n), torch.zeros(1, n, arms + 1)
        log_probs, rewards = [], []
        for _ in range(steps):
            logits, state = net.sequence(inputs, state, torch.zeros(1, n))
            policy = torch.distributions.Categorical(logits=logits[0])
            action = policy.sample()
            reward = (action == good).float()
            log_probs.append(policy.log_prob(action))
            rewards.append(reward)
            inputs = torch.cat([torch.nn.functional.one_hot(action, arms).float(), reward[:, None]], 1)[None]
        return torch.stack(log_probs), torch.stack(rewards)

    for _ in range(iters):
        log_prob, reward = episodes(batch)
        returns = reward.flip(0).cumsum(0).flip(0)
        loss = -(log_prob * (returns - returns.mean(1, keepdim=True))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        _, reward = episodes(512)
    return reward[steps // 2:].mean().item()


def paired_interval(differences: list[float]) -> tuple[float, float]:
    d = np.asarray(differences)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean() - half, d.mean() + half


def test_backprop_reaches_the_plasticity_coefficients_eta_and_the_modulation_head():
    torch.manual_seed(0)
    net = BackpropamineLayer(3, [4], 2, mode="retroactive")
    outputs, _ = net.sequence(torch.randn(6, 2, 3), net.initial_state(2), torch.zeros(6, 2))
    outputs.square().sum().backward()
    for name in ("alpha", "eta_logit", "modulation_head.weight", "w", "input.weight"):
        assert dict(net.named_parameters())[name].grad.abs().sum() > 0, name
    twin = BackpropamineLayer(3, [4], 2, plastic=False)
    assert "alpha" not in dict(twin.named_parameters()) and twin.state_size == 4


SEEDS = range(5)


@pytest.mark.slow
def test_the_plastic_layer_learns_a_bandit_redrawn_each_episode():
    # 4 arms, the good one drawn anew per episode; 20 pulls; 16 units; 300 REINFORCE updates of 32 episodes.
    # Only within-episode learning gets above chance (0.25): the input is just the last action and reward.
    # Measured (seeds 0-6, this setting): plastic 0.68 0.44 0.76 0.71 0.41 0.67 0.37, its non-plastic twin
    # 0.42 0.37 0.25 0.60 0.57 0.48 0.58: the same-size tanh RNN learns the task too, and the paired
    # difference (+0.11, 95% t interval -0.12 to 0.34, paired t p = 0.29) is not significant, so no
    # comparison is asserted here.
    torch.set_num_threads(1)
    plastic = [bandit(seed, True) for seed in SEEDS]
    half = stats.t.ppf(0.975, len(plastic) - 1) * np.std(plastic, ddof=1) / np.sqrt(len(plastic))
    assert np.mean(plastic) - half > 0.25 + 0.1, plastic
