"""Reward-modulated STDP against independent truth: the eligibility trace's closed form (sums of
exponentials over spike pairs, by numpy), Izhikevich 2007's distal-reward experiment, and a two-armed
bandit learned by the rule over seeds against zero and shuffled dopamine."""

import numpy as np
import pytest
import torch
import yaml
from scipy import stats

from neuro.registry import SpecError
from neuro.snn.config import SnnConfig
from neuro.snn.network import SpikingMLP
from neuro.snn.neurons import LIF
from neuro.snn.plasticity import PLASTICITY_RULES, RewardSTDP
from tests_support import EXPERIMENTS


def closed_form(pre: np.ndarray, post: np.ndarray, a_plus: float, a_minus: float, tau_plus: float,
                tau_minus: float, tau_c: float) -> np.ndarray:
    """c at the last step, (n_post, n_pre), from every pre/post spike pair of one row: a pair adds
    a_plus e^(-(tj - ti)/tau_plus) if tj >= ti else -a_minus e^(-(ti - tj)/tau_minus), at max(ti, tj),
    decayed by e^(-(T-1 - max(ti, tj))/tau_c)."""
    last = pre.shape[0] - 1
    c = np.zeros((post.shape[1], pre.shape[1]))
    for i in range(pre.shape[1]):
        for j in range(post.shape[1]):
            for ti in np.flatnonzero(pre[:, i]):
                for tj in np.flatnonzero(post[:, j]):
                    if tj >= ti:
                        window = a_plus * np.exp(-(tj - ti) / tau_plus)
                    else:
                        window = -a_minus * np.exp(-(ti - tj) / tau_minus)
                    c[j, i] += window * np.exp(-(last - max(ti, tj)) / tau_c)
    return c


PARAMS = dict(a_plus=1.0, a_minus=1.5, tau_plus=4.0, tau_minus=6.0, tau_eligibility=20.0)


def spike_trains(steps: int = 60, rows: int = 2, n_pre: int = 3, n_post: int = 2, p: float = 0.15):
    rng = np.random.default_rng(3)
    pre = (rng.random((steps, rows, n_pre)) < p).astype(np.float32)
    return pre, (rng.random((steps, rows, n_post)) < p).astype(np.float32)


def shipped_rule_parameters() -> dict[str, float]:
    """The STDP window and eligibility of the shipped preset (plasticity/ppo_rstdp.yaml)."""
    shipped = yaml.safe_load((EXPERIMENTS / "plasticity" / "ppo_rstdp.yaml").read_text())["agent"]["snn"]["plasticity"]
    return {key: float(shipped[key]) for key in ("a_plus", "a_minus", "tau_plus", "tau_minus", "tau_eligibility")}


@pytest.mark.parametrize("params", [PARAMS, shipped_rule_parameters()], ids=["asymmetric_window", "shipped"])
def test_the_eligibility_trace_is_its_closed_form_on_a_fixed_spike_train(params):
    pre, post = spike_trains()
    rule = RewardSTDP(3, 2, **params)
    rule.run(torch.from_numpy(pre), torch.from_numpy(post))
    for row in range(2):
        expected = closed_form(pre[:, row], post[:, row], params["a_plus"], params["a_minus"], params["tau_plus"],
                               params["tau_minus"], params["tau_eligibility"])
        assert np.abs(expected).max() > 0.5  # the train has pairs of both signs
        np.testing.assert_allclose(rule.eligibility[row].numpy(), expected, rtol=1e-5, atol=1e-5)
    # The STDP traces: sums of exponentials over each neuron's spikes, its last one included.
    decay = np.exp(-np.arange(59, -1, -1) / params["tau_plus"])
    np.testing.assert_allclose(rule.pre_trace.numpy(), np.einsum("t,tbi->bi", decay, pre), rtol=1e-5)
    decay = np.exp(-np.arange(59, -1, -1) / params["tau_minus"])
    np.testing.assert_allclose(rule.post_trace.numpy(), np.einsum("t,tbi->bi", decay, post), rtol=1e-5)


def test_a_causal_pair_potentiates_and_an_anti_causal_one_depresses():
    """One pre spike at step 2, one post spike at step 5 (and the reverse), read 10 steps later."""
    for t_pre, t_post, sign in ((2, 5, 1.0), (5, 2, -1.0)):
        pre, post = torch.zeros(15, 1, 1), torch.zeros(15, 1, 1)
        pre[t_pre], post[t_post] = 1.0, 1.0
        rule = RewardSTDP(1, 1, **PARAMS)
        rule.run(pre, post)
        amplitude, tau = (1.0, 4.0) if sign > 0 else (1.5, 6.0)
        expected = sign * amplitude * np.exp(-3 / tau) * np.exp(-(14 - 5) / 20.0)
        assert rule.eligibility.item() == pytest.approx(expected, rel=1e-5)


def test_the_weight_moves_by_learning_rate_times_dopamine_times_eligibility():
    pre, post = spike_trains()
    rule = RewardSTDP(3, 2, learning_rate=0.1, **PARAMS)
    rule.run(torch.from_numpy(pre), torch.from_numpy(post))
    c = np.stack([closed_form(pre[:, r], post[:, r], 1.0, 1.5, 4.0, 6.0, 20.0) for r in range(2)])
    dopamine = np.array([0.5, -2.0])
    shared = torch.ones(2, 3)  # one weight for both rows (envs): the mean of their changes
    rule.update(shared, torch.tensor(dopamine))
    np.testing.assert_allclose(shared.numpy(), 1.0 + 0.1 * (dopamine[:, None, None] * c).mean(0), rtol=1e-5)
    per_row = torch.zeros(2, 2, 3)  # one weight per row
    rule.update(per_row, torch.tensor(dopamine))
    np.testing.assert_allclose(per_row.numpy(), 0.1 * dopamine[:, None, None] * c, rtol=1e-5, atol=1e-7)
    bounded = RewardSTDP(3, 2, learning_rate=100.0, weight_bound=0.3, **PARAMS)
    bounded.run(torch.from_numpy(pre), torch.from_numpy(post))
    weight = torch.zeros(2, 3)
    bounded.update(weight, 1.0)
    assert weight.abs().max().item() == pytest.approx(0.3)


def test_an_episode_start_clears_only_its_rows_and_the_traces_travel_in_the_state_dict():
    pre, post = spike_trains()
    rule = RewardSTDP(3, 2, **PARAMS)
    rule.run(torch.from_numpy(pre), torch.from_numpy(post))
    kept = rule.eligibility[1].clone()
    rule.reset(torch.tensor([True, False]))
    assert rule.eligibility[0].abs().sum() == 0 and rule.pre_trace[0].abs().sum() == 0
    assert torch.equal(rule.eligibility[1], kept)
    fresh = RewardSTDP(3, 2, **PARAMS)  # no rows yet: takes the saved number of envs
    fresh.load_state_dict(rule.state_dict())
    for name in ("pre_trace", "post_trace", "eligibility"):
        assert torch.equal(getattr(fresh, name), getattr(rule, name))
    with pytest.raises(ValueError, match="2 rows"):
        fresh.step(torch.zeros(3, 3), torch.zeros(3, 2))


def test_bad_parameters_are_one_line_naming_the_field():
    with pytest.raises(ValueError, match=r"RewardSTDP\.tau_eligibility: must be > 0"):
        RewardSTDP(3, 2, tau_eligibility=0.0)
    with pytest.raises(SpecError, match=r"agent\.snn\.plasticity\.a_minus"):
        PLASTICITY_RULES.check({"type": "rstdp", "a_minus": -1}, given={"n_pre": 1, "n_post": 1})
    with pytest.raises(ValueError, match="learning_rate"):
        SnnConfig(plasticity={"learning_rate": -1.0})


def distal_reward(seed: int, tau_eligibility: float, rows: int = 5, steps: int = 30_000) -> torch.Tensor:
    """Izhikevich 2007's experiment, open loop: 40 x 25 = 1000 synapses per row (rows: independent runs),
    pre and post neurons firing at random (2 Hz at 10 ms steps); whenever post neuron 3 fires within 10 ms
    after pre neuron 7, dopamine (a 0.5 jump decaying over 200 ms) comes 1 s later. STDP window 20 ms,
    a_minus = 1.5 a_plus, eligibility 1 s (100 steps). Returns the chosen synapse's percentile per row."""
    n_pre, n_post, chosen_pre, chosen_post, delay = 40, 25, 7, 3, 100
    generator = torch.Generator().manual_seed(seed)
    pre = (torch.rand(steps, rows, n_pre, generator=generator) < 0.02).float()
    post = (torch.rand(steps, rows, n_post, generator=generator) < 0.02).float()
    recent_pre = pre[:, :, chosen_pre].clone()
    recent_pre[1:] = torch.maximum(recent_pre[1:], pre[:-1, :, chosen_pre])
    reward = torch.zeros(steps, rows)
    reward[delay:] = (post[:, :, chosen_post] * recent_pre)[:-delay]
    rule = RewardSTDP(n_pre, n_post, learning_rate=1.0, a_plus=1.0, a_minus=1.5, tau_plus=2.0, tau_minus=2.0,
                      tau_eligibility=tau_eligibility)
    weight = torch.zeros(rows, n_post, n_pre)
    dopamine, decay = torch.zeros(rows), float(np.exp(-1 / 20.0))
    for step in range(steps):
        rule.step(pre[step], post[step])
        dopamine = dopamine * decay + 0.5 * reward[step]
        rule.update(weight, dopamine)
    assert (reward.sum(0) >= 10).all()  # each run had its rewards
    flat = weight.flatten(1)
    index = chosen_post * n_pre + chosen_pre
    others = torch.cat([flat[:, :index], flat[:, index + 1:]], dim=1)
    return (others < flat[:, index:index + 1]).float().mean(dim=1)


@pytest.mark.slow
def test_distal_reward_strengthens_the_one_synapse_whose_pairing_preceded_it():
    percentiles = torch.cat([distal_reward(seed, tau_eligibility=100.0) for seed in (0, 1)])
    assert (percentiles > 0.99).all(), percentiles
    # Without the trace's memory (eligibility 30 ms against a 1 s delay) the synapse is not singled out.
    forgetful = distal_reward(0, tau_eligibility=3.0)
    assert (forgetful > 0.99).sum() <= 1, forgetful


def bandit(dopamine: str, seeds: int = 8, trials: int = 300, n_in: int = 20, steps: int = 20) -> torch.Tensor:
    """Two arms (reward 0.8 and 0.2), one output LIF neuron per arm fed by 20 Poisson inputs; the arm whose
    neuron fires more is pulled, only its neuron's spikes are post-synaptic, and dopamine r - r_bar (r_bar a
    running mean) comes at the trial's end. Rows are seeds (each its own weights and good arm). Returns
    each seed's rate of pulling the good arm over the last 100 trials.

    :param dopamine: ``reward``; ``zero``; ``shuffled``: another seed's outcome of the same trial."""
    generator = torch.Generator().manual_seed(0)
    rule = RewardSTDP(n_in, 2, learning_rate=0.01, a_plus=1.0, a_minus=1.0, tau_plus=3.0, tau_minus=3.0,
                      tau_eligibility=20.0, weight_bound=1.0)
    neurons = LIF(2, beta=0.9, threshold=1.0)
    weight = torch.full((seeds, 2, n_in), 0.1)
    good = torch.randint(0, 2, (seeds,), generator=generator)
    mean_reward = torch.full((seeds,), 0.5)
    pulled_good = []
    for _ in range(trials):
        rule.reset(torch.ones(seeds, dtype=torch.bool))  # a trial is an episode
        inputs = (torch.rand(steps, seeds, n_in, generator=generator) < 0.2).float()
        spikes = neurons(torch.einsum("tbi,boi->tbo", inputs, weight))
        counts = spikes.sum(0) + 1e-3 * torch.rand(seeds, 2, generator=generator)  # ties broken at random
        action = counts.argmax(dim=1)
        rule.run(inputs, spikes * torch.nn.functional.one_hot(action, 2).float())
        reward = (torch.rand(seeds, generator=generator) < torch.where(action == good, 0.8, 0.2)).float()
        if dopamine == "shuffled":  # never the seed's own outcome
            reward = reward.roll(int(torch.randint(1, seeds, (1,), generator=generator)))
        signal = reward - mean_reward if dopamine != "zero" else torch.zeros(seeds)
        mean_reward += 0.05 * (reward - mean_reward)
        rule.update(weight, signal)
        pulled_good.append((action == good).float())
    return torch.stack(pulled_good)[-100:].mean(dim=0)


def t_interval(values: torch.Tensor) -> tuple[float, float]:
    sample = values.numpy().astype(float)
    return stats.t.interval(0.95, len(sample) - 1, loc=sample.mean(), scale=stats.sem(sample))


@pytest.mark.slow
def test_a_two_armed_bandit_is_learned_by_the_rule_and_not_without_its_dopamine():
    learned, shuffled, zero = bandit("reward"), bandit("shuffled"), bandit("zero")
    low, _ = t_interval(learned)
    assert low > 0.75, (learned, t_interval(learned))  # 8 seeds: the good arm, well above chance
    # Nulls: no dopamine leaves the weights and the choice at chance; another seed's outcome drives the
    # rule to one arm at random (rich get richer), not to the good one.
    zero_low, zero_high = t_interval(zero)
    assert zero_low < 0.5 < zero_high
    assert stats.ttest_ind(learned.numpy(), shuffled.numpy(), equal_var=False, alternative="greater").pvalue < 0.01
    shuffled_low, shuffled_high = t_interval(shuffled)
    assert shuffled_low < 0.5 < shuffled_high, shuffled


def tiny_network() -> SpikingMLP:
    torch.manual_seed(0)
    return SpikingMLP(3, [4], 2, timesteps=3, plasticity={"type": "rstdp", "learning_rate": 0.5})


def test_a_plastic_readout_spikes_learns_only_by_the_rule_and_its_trunk_by_gradients():
    network = tiny_network()
    assert network.output_neurons is not None and not network.readout.weight.requires_grad
    assert network.layers[0].weight.requires_grad
    features = torch.rand(2, 3) * 2
    output = network(features)
    assert output.shape == (2, 2) and ((output * 3) == (output * 3).round()).all()  # rates: counts / T
    output.sum().backward()
    assert network.readout.weight.grad is None and network.layers[0].weight.grad is not None
    before = network.readout.weight.clone()
    network.record_decision(features, torch.tensor([[1, 0], [0, 1]]))
    eligibility = network.plasticity_rules[0].eligibility.clone()
    network.apply_dopamine(torch.tensor([1.0, -1.0]))
    expected = before + 0.5 * (eligibility[0] - eligibility[1]) / 2
    assert torch.allclose(network.readout.weight, expected)
    everything = SpikingMLP(3, [4], 2, timesteps=3, plasticity={"layers": "all"})
    assert not any(p.requires_grad for layer in everything.layers for p in layer.parameters())
    assert len(everything.plasticity_rules) == 2


def test_plasticity_operations_enter_the_energy_estimate_by_hand_count():
    """3 inputs (direct: a held current, no encoder neurons), 4 hidden LIF, 2 output LIF, T = 3, one row.
    Per decision the readout's rule updates per step 4 x 2 eligibilities + 4 pre + 2 post traces = 14,
    so 3 x 14 = 42, and one weight update touches 8 weights: 50 operations, 50 x 4.6 pJ = 230 pJ."""
    network = tiny_network()
    features = torch.ones(1, 3)
    network.take_counts()
    with network.deciding():
        network(features)
    network.record_decision(features)
    network.apply_dopamine(1.0)
    counts = network.take_counts()
    assert counts.plasticity_operations == 50
    figures = counts.stats()
    assert figures["plasticity_operations_per_decision"] == 50
    spikes_hidden, spikes_out = counts.spikes
    sops = spikes_hidden * 2  # each hidden spike reaches the 2 output neurons; output spikes reach none
    neuron_updates = (4 + 2) * 3
    dense_macs = 3 * 4  # the held current, once
    expected = sops * 0.9 + dense_macs * 4.6 + neuron_updates * 4.6 + 50 * 4.6
    assert figures["energy_pj_per_decision"] == pytest.approx(expected)
