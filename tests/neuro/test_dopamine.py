"""Each TD-error module reproduces its rule's prediction on a case with a known answer.

Bandit: a stationary reward X; a tabular value V updated by V += alpha * mean(signal(X - V)).
Its fixed point solves E[signal(X - V)] = 0, computed here independently (closed form or scipy).
"""

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from neuro.dopamine import (
    DOPAMINE_MODULES,
    AsymmetricTD,
    AverageRewardTD,
    DistributionalTD,
    OpponentTD,
    SaturatingTD,
    StandardTD,
)

make_dopamine = DOPAMINE_MODULES.make

HIGH, P_HIGH = 10.0, 0.3  # two-point reward: 10 with probability 0.3, else 0 (mean 3, skewed)


def two_point_rewards(rng: np.random.Generator, size) -> torch.Tensor:
    return torch.from_numpy(np.where(rng.random(size) < P_HIGH, HIGH, 0.0))


def two_point_expectile(tau: float) -> float:
    """Solves tau E[(X-e)+] = (1-tau) E[(e-X)+] for the two-point X: tau p (H-e) = (1-tau)(1-p) e."""
    return HIGH * tau * P_HIGH / (tau * P_HIGH + (1 - tau) * (1 - P_HIGH))


def learn_values(module, sample, n_values: int = 1, steps: int = 4000, batch: int = 64,
                 alpha: float = 0.05, seed: int = 0) -> np.ndarray:
    """Tabular V (one per channel) under the module's rule; the mean of the last half of the run."""
    rng = np.random.default_rng(seed)
    values = torch.zeros(n_values, dtype=torch.float64)
    history = []
    for step in range(steps):
        rewards = sample(rng, (batch, 1))
        signal = module.transform(rewards - values, rewards)
        values = values + alpha * signal.mean(dim=0)
        if step >= steps // 2:
            history.append(values.clone())
    return torch.stack(history).mean(dim=0).numpy()


def test_standard_is_identity_and_learns_the_mean():
    td_error = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert torch.equal(StandardTD().transform(td_error), td_error)
    (value,) = learn_values(StandardTD(), two_point_rewards)
    assert value == pytest.approx(HIGH * P_HIGH, abs=0.1)


@pytest.mark.parametrize("kappa", [0.5, 0.2, -0.2, -0.5])
def test_asymmetric_converges_to_the_expectile_at_tau(kappa):
    """Mihatsch & Neuneier: the fixed point is the expectile at tau = (1 - kappa) / 2, below the
    mean for kappa > 0 (pessimistic) and above it for kappa < 0 (optimistic)."""
    (value,) = learn_values(AsymmetricTD(kappa), two_point_rewards)
    expected = two_point_expectile((1 - kappa) / 2)
    assert value == pytest.approx(expected, abs=0.12)
    mean = HIGH * P_HIGH
    assert (value < mean) if kappa > 0 else (value > mean)


def test_asymmetric_rule_values():
    module = AsymmetricTD(0.3)
    out = module.transform(torch.tensor([2.0, -2.0, 0.0]))
    assert torch.allclose(out, torch.tensor([0.7 * 2.0, 1.3 * -2.0, 0.0]))


def test_saturating_rule_and_fixed_point():
    module = SaturatingTD(compression=0.25, ceiling=2.0)
    out = module.transform(torch.tensor([5.0, 1.5, -4.0]))
    assert torch.allclose(out, torch.tensor([2.0, 1.5, -1.0]))

    def mean_signal(v: float) -> float:  # E[signal(X - v)] for the two-point X, 0 < v < 10
        up = min(HIGH - v, 2.0)
        return P_HIGH * up + (1 - P_HIGH) * 0.25 * (0.0 - v)

    expected = optimize.brentq(mean_signal, 1e-6, HIGH - 1e-6)
    (value,) = learn_values(module, two_point_rewards)
    assert value == pytest.approx(expected, abs=0.1)


def test_opponent_split_and_fixed_point():
    module = OpponentTD(gain_positive=1.0, gain_negative=3.0)
    out = module.transform(torch.tensor([2.0, -1.0]))
    assert torch.allclose(out, torch.tensor([2.0, -3.0]))
    assert module.stats() == pytest.approx({"dopamine": 1.0, "serotonin": 1.5})
    # DA - 5-HT with gains g+, g- settles at the expectile tau = g+ / (g+ + g-).
    (value,) = learn_values(module, two_point_rewards, alpha=0.02)
    assert value == pytest.approx(two_point_expectile(0.25), abs=0.12)


def test_distributional_expectile_channels_match_numpy_expectiles():
    module = DistributionalTD(n_channels=7, code="expectile")
    values = learn_values(module, two_point_rewards, n_values=7, steps=6000, alpha=0.02)
    expected = [two_point_expectile(tau) for tau in module.taus]
    assert values == pytest.approx(expected, abs=0.15)
    assert values[module.acting_channel] == pytest.approx(HIGH * P_HIGH, abs=0.1)  # tau 0.5: the mean
    assert np.all(np.diff(values) > 0)  # reversal points spread in tau order


def test_distributional_quantile_channels_match_scipy_quantiles():
    """f(d) = sign(d): channel i settles at the tau_i-quantile (exponential rewards, scale 2)."""
    module = DistributionalTD(n_channels=5, code="quantile")

    def exponential(rng, size):
        return torch.from_numpy(rng.exponential(2.0, size))

    values = learn_values(module, exponential, n_values=5, steps=6000, alpha=0.01)
    expected = stats.expon(scale=2.0).ppf(module.taus)
    assert values == pytest.approx(expected, abs=0.12)


def test_distributional_reversal_points_follow_the_asymmetry():
    """Custom taus: each channel's reversal point is the expectile at a+ / (a+ + a-)."""
    module = DistributionalTD(taus=[0.1, 0.5, 0.95])
    td_error = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    signal = module.transform(td_error)
    a_plus, a_minus = signal[0], -signal[1]
    assert torch.allclose(a_plus / (a_plus + a_minus), torch.tensor([0.1, 0.5, 0.95]))
    values = learn_values(module, two_point_rewards, n_values=3, steps=6000, alpha=0.02)
    assert values == pytest.approx([two_point_expectile(t) for t in (0.1, 0.5, 0.95)], abs=0.15)


def test_average_reward_rate_converges_to_the_markov_chain_rate():
    """r_bar tracks the stationary mean reward pi . r of a 3-state Markov chain."""
    transition = np.array([[0.1, 0.6, 0.3], [0.4, 0.2, 0.4], [0.5, 0.25, 0.25]])
    state_reward = np.array([1.0, -2.0, 4.0])
    eigenvalues, eigenvectors = np.linalg.eig(transition.T)
    stationary = np.real(eigenvectors[:, np.argmin(np.abs(eigenvalues - 1))])
    stationary /= stationary.sum()
    rate = float(stationary @ state_reward)

    rng = np.random.default_rng(0)
    state, rewards = 0, []
    for _ in range(60_000):
        state = rng.choice(3, p=transition[state])
        rewards.append(state_reward[state])
    module = AverageRewardTD(eta=0.002)
    estimates = []
    for chunk in np.array_split(np.array(rewards), 600):
        reward = torch.from_numpy(chunk)
        signal = module.transform(torch.zeros_like(reward), reward)
        estimates.append(module.reward_rate)
    assert np.mean(estimates[300:]) == pytest.approx(rate, abs=0.05)
    # The signal is delta - r_bar (the rate before this batch's update).
    module = AverageRewardTD(eta=0.5, initial_rate=1.0)
    signal = module.transform(torch.tensor([3.0]), torch.tensor([2.0]))
    assert signal.item() == pytest.approx(2.0)
    assert module.reward_rate == pytest.approx(1.5)


def test_average_reward_batch_update_equals_sequential_updates():
    rewards = np.random.default_rng(1).normal(size=37)
    module = AverageRewardTD(eta=0.1, initial_rate=0.3)
    module.update_rate(torch.from_numpy(rewards))
    rate = 0.3
    for reward in rewards:
        rate += 0.1 * (reward - rate)
    assert module.reward_rate == pytest.approx(rate, rel=1e-12)


@pytest.mark.parametrize("module", [
    StandardTD(), AsymmetricTD(0.4), SaturatingTD(0.3, 0.5), OpponentTD(1.5, 0.5),
    AverageRewardTD(0.1, initial_rate=0.2),
], ids=lambda m: m.name)
def test_dqn_loss_gradient_is_minus_the_signal(module):
    """Inside Huber's quadratic zone the loss gradient w.r.t. the prediction is -signal / batch."""
    current = torch.tensor([[0.2], [0.9], [-0.3], [0.5]], requires_grad=True)
    target = torch.tensor([[0.8], [0.1], [-0.3], [0.0]])
    reward = torch.tensor([[1.0], [0.0], [0.5], [0.2]])
    state = module.state_dict()
    loss, td_error, signal = module.dqn_loss(current, target, reward)
    loss.backward()
    module.load_state_dict(state)
    expected_signal = module.transform(target - current.detach(), reward)
    assert torch.allclose(td_error, target - current.detach())
    assert torch.allclose(signal, expected_signal)
    assert torch.allclose(current.grad, -expected_signal / 4)


def test_distributional_dqn_loss_gradient_per_channel():
    module = DistributionalTD(taus=[0.25, 0.5, 0.75])
    current = torch.zeros(2, 3, requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]])
    loss, _, signal = module.dqn_loss(current, target)
    loss.backward()
    assert torch.allclose(signal, torch.tensor([[0.5, 1.0, 1.5], [-3.0, -2.0, -1.0]]))
    assert torch.allclose(current.grad, -signal / 2)


@pytest.mark.parametrize("spec, message", [
    ({"type": "asymmetric", "kappa": 1.2}, r"neuro.dopamine.kappa: must be in \(-1, 1\) \(got 1.2\)"),
    ({"type": "asymmetric", "kappa": "high"}, r"neuro.dopamine.kappa: Input should be a valid number"),
    ({"type": "saturating", "compression": 0.0}, r"neuro.dopamine.compression: must be in \(0, 1\]"),
    ({"type": "saturating", "ceiling": -1}, r"neuro.dopamine.ceiling: must be > 0"),
    ({"type": "opponent", "gain_negative": 0}, r"neuro.dopamine.gain_negative: must be > 0"),
    ({"type": "average_reward", "eta": 1.5}, r"neuro.dopamine.eta: must be in \(0, 1\)"),
    ({"type": "distributional", "n_channels": 4}, r"neuro.dopamine.n_channels: must be a positive odd"),
    ({"type": "distributional", "taus": [0.2, 0.8]}, r"neuro.dopamine.taus: must contain 0.5"),
    ({"type": "distributional", "code": "median"},
     r"neuro.dopamine.code: Input should be 'expectile' or 'quantile' \(got 'median'\)"),
    ({"type": "dopa"}, r"neuro.dopamine.type: unknown dopamine type 'dopa'; allowed: standard, asymmetric, saturating"),
    ({"type": "asymmetric", "kapa": 0.1}, r"neuro.dopamine.kapa: asymmetric takes no such parameter; allowed: kappa"),
])
def test_bad_parameters_name_the_field_and_range(spec, message):
    with pytest.raises(ValueError, match=message):
        make_dopamine(spec)


def test_user_module_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_dopamine.py").write_text(
        "from neuro.dopamine import DopamineModule\n\n"
        "class Doubled(DopamineModule):\n"
        "    def __init__(self, gain=2.0):\n"
        "        self.gain = gain\n\n"
        "    def transform(self, td_error, reward=None):\n"
        "        return self.gain * td_error\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = make_dopamine({"type": "my_dopamine:Doubled", "gain": 3.0})
    assert torch.equal(module.transform(torch.tensor([1.0])), torch.tensor([3.0]))
    with pytest.raises(ValueError, match="does not implement the dopamine interface"):
        make_dopamine({"type": "numpy:ndarray"})


def test_default_is_standard():
    assert isinstance(make_dopamine(None), StandardTD)
    assert isinstance(make_dopamine({}), StandardTD)


def test_direct_construction_checks_the_same_bounds():
    """Built in Python rather than from a spec, a module still refuses what the registry refuses."""
    with pytest.raises(ValueError, match=r"must be in \(-1, 1\)"):
        AsymmetricTD(kappa=1.5)
    with pytest.raises(ValueError, match="must contain 0.5"):
        DistributionalTD(taus=[0.1, 0.9])
    assert AsymmetricTD(kappa=-0.4).kappa == -0.4
