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
    BiasedSaturatingTD,
    DistributionalTD,
    OpponentTD,
    SaturatingTD,
    StandardTD,
    acting_weights,
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
        signal = module.transform(rewards - values)
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


def test_saturating_records_the_compressed_signal_and_learns_the_mean():
    """Niv, Duff & Dayan 2005: the recorded signal is compressed, learning runs on the unscaled error."""
    module = SaturatingTD(compression=0.25, ceiling=2.0)
    td_error = torch.tensor([5.0, 1.5, -4.0])
    assert torch.allclose(module.dopamine_signal(td_error), torch.tensor([2.0, 1.5, -1.0]))
    assert torch.equal(module.transform(td_error), td_error)
    (value,) = learn_values(module, two_point_rewards)
    assert value == pytest.approx(HIGH * P_HIGH, abs=0.1)


def test_biased_saturating_rule_and_fixed_point():
    module = BiasedSaturatingTD(compression=0.25, ceiling=2.0)
    out = module.transform(torch.tensor([5.0, 1.5, -4.0]))
    assert torch.allclose(out, torch.tensor([2.0, 1.5, -1.0]))

    def mean_signal(v: float) -> float:  # E[signal(X - v)] for the two-point X, 0 < v < 10
        up = min(HIGH - v, 2.0)
        return P_HIGH * up + (1 - P_HIGH) * 0.25 * (0.0 - v)

    expected = optimize.brentq(mean_signal, 1e-6, HIGH - 1e-6)
    (value,) = learn_values(module, two_point_rewards)
    assert value == pytest.approx(expected, abs=0.1)
    # Without a biting ceiling it is the expectile at 1 / (1 + compression).
    (value,) = learn_values(BiasedSaturatingTD(compression=0.25, ceiling=100.0), two_point_rewards, alpha=0.02)
    assert value == pytest.approx(two_point_expectile(1 / 1.25), abs=0.12)


def test_opponent_split_and_fixed_point():
    module = OpponentTD(gain_positive=1.0, gain_negative=3.0)
    out = module.dopamine_signal(torch.tensor([2.0, -1.0]))
    assert torch.allclose(out, torch.tensor([2.0, -3.0]))
    assert torch.equal(module.transform(torch.tensor([2.0, -1.0])), out)
    assert module.stats() == pytest.approx({"dopamine": 1.0, "serotonin": 1.5})
    # DA - 5-HT with gains g+, g- settles at the expectile tau = g+ / (g+ + g-).
    (value,) = learn_values(module, two_point_rewards, alpha=0.02)
    assert value == pytest.approx(two_point_expectile(0.25), abs=0.12)


def test_distributional_expectile_channels_match_numpy_expectiles():
    module = DistributionalTD(n_channels=7, code="expectile")
    values = learn_values(module, two_point_rewards, n_values=7, steps=6000, alpha=0.02)
    expected = [two_point_expectile(tau) for tau in module.taus]
    assert values == pytest.approx(expected, abs=0.15)
    assert np.dot(module.acting_weights, values) == pytest.approx(HIGH * P_HIGH, abs=0.1)  # the mean
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
        module.observe_rewards(torch.from_numpy(chunk))
        estimates.append(module.reward_rate)
    assert np.mean(estimates[300:]) == pytest.approx(rate, abs=0.05)


def test_average_reward_batch_update_equals_sequential_updates():
    rewards = np.random.default_rng(1).normal(size=37)
    module = AverageRewardTD(eta=0.1, initial_rate=0.3)
    module.observe_rewards(torch.from_numpy(rewards))
    rate = 0.3
    for reward in rewards:
        rate += 0.1 * (reward - rate)
    assert module.reward_rate == pytest.approx(rate, rel=1e-12)


def test_average_reward_terminal_baseline_keeps_the_cost_of_terminating():
    """Crash (terminate, r = 0) vs survive forever at r = 0.8, gamma 0.8: standard values 0 and 4,
    a gap of 4. Centred values with the terminal correction: -r_bar/(1-gamma) and 0: the same gap
    (done-masking alone gave 0 for both: no incentive to survive at r_bar = 0.8)."""
    gamma, reward_rate = 0.8, 0.8
    module = AverageRewardTD(initial_rate=reward_rate)
    survive_value = (0.8 - reward_rate) / (1 - gamma)  # fixed point of V = 0.8 - r_bar + gamma V
    crash_target = 0.0 - float(module.baseline(torch.tensor(1.0), gamma))  # r - baseline, nothing bootstrapped
    continuing = float(module.baseline(torch.tensor(0.0), gamma))
    assert continuing == pytest.approx(reward_rate)
    assert survive_value - crash_target == pytest.approx(0.8 / (1 - gamma))
    with pytest.raises(ValueError, match="agent.hyperparameters.gamma: average_reward needs gamma < 1"):
        module.check_agent(1.0, 1)
    with pytest.raises(ValueError, match="agent.hyperparameters.n_steps: .* must be 1 \\(got 3\\)"):
        module.check_agent(0.9, 3)


@pytest.mark.parametrize("module, gain_positive, gain_negative", [
    (StandardTD(), 1.0, 1.0), (AsymmetricTD(0.4), 0.6, 1.4), (SaturatingTD(0.3, 0.5), 1.0, 1.0),
    (OpponentTD(1.5, 0.5), 1.5, 0.5), (AverageRewardTD(0.1, initial_rate=0.2), 1.0, 1.0),
], ids=lambda m: getattr(m, "name", ""))
@pytest.mark.parametrize("loss", ["huber", "squared"])
def test_dqn_loss_gradient_is_the_gain_times_the_shaped_error(module, gain_positive, gain_negative, loss):
    """One gradient step moves Q by gain(d) * d (squared) or gain(d) * clip(d, -1, 1) (huber, SB3's),
    per sample, divided by the batch size: at d = 3 the step is the gain times 1, not 3."""
    module.loss = loss
    current = torch.tensor([[0.2], [0.9], [-0.3], [0.5], [0.0]], requires_grad=True)
    target = torch.tensor([[0.8], [0.1], [-0.3], [0.0], [3.0]])
    loss_value, td_error, _ = module.dqn_loss(current, target)
    loss_value.backward()
    delta = np.array([0.6, -0.8, 0.0, -0.5, 3.0])
    shaped = np.clip(delta, -1, 1) if loss == "huber" else delta
    gains = np.where(delta > 0, gain_positive, gain_negative)
    assert td_error.numpy().ravel() == pytest.approx(delta, abs=1e-6)
    assert -current.grad.numpy().ravel() == pytest.approx(gains * shaped / 5, abs=1e-6)


def test_asymmetric_with_kappa_zero_is_standard_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    current = torch.randn(64, 1, generator=generator) * 3
    target = torch.randn(64, 1, generator=generator) * 3
    results = []
    for module in (StandardTD(), AsymmetricTD(0.0), OpponentTD(1.0, 1.0)):
        prediction = current.clone().requires_grad_(True)
        loss, _, _ = module.dqn_loss(prediction, target)
        loss.backward()
        results.append((loss.detach(), prediction.grad))
    stock = torch.nn.functional.smooth_l1_loss(current, target)  # SB3 DQN's loss
    for loss, grad in results:
        assert torch.equal(loss, stock)
        assert torch.equal(grad, results[0][1])


def test_distributional_dqn_loss_gradient_per_channel():
    """A constant target (a terminal transition): every sample equals it, so channel i moves by its
    gain times the error."""
    module = DistributionalTD(taus=[0.25, 0.5, 0.75], loss="squared")
    current = torch.zeros(2, 3, requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]])
    loss, _, signal = module.dqn_loss(current, target)
    loss.backward()
    assert torch.allclose(signal, torch.tensor([[0.5, 1.0, 1.5], [-3.0, -2.0, -1.0]]))
    assert torch.allclose(current.grad, -signal / 2)


def test_quantile_dqn_loss_is_all_pairs_quantile_regression():
    """Numpy reference of quantile regression's loss: channel i against every target sample z_j,
    rho_tau(u) = |tau - 1(u < 0)| |u|, averaged over j, summed over i (our gains are twice QR's)."""
    taus = [0.1, 0.3, 0.5, 0.7, 0.9]
    rng = np.random.default_rng(3)
    current_np, target_np = rng.normal(size=(8, 5)), rng.normal(scale=2.0, size=(8, 5))
    module = DistributionalTD(taus=taus, code="quantile")
    assert module.loss == "absolute"  # the quantile code's default: exact quantile regression
    current = torch.tensor(current_np, requires_grad=True)
    loss, _, _ = module.dqn_loss(current, torch.tensor(target_np))
    loss.backward()
    u = target_np[:, None, :] - current_np[:, :, None]  # (batch, channel i, sample j)
    weight = 2 * np.abs(np.array(taus)[None, :, None] - (u < 0))
    assert loss.item() == pytest.approx((weight * np.abs(u)).mean(axis=2).sum(axis=1).mean(), rel=1e-9)
    assert current.grad.numpy() == pytest.approx(-(weight * np.sign(u)).mean(axis=2) / 8, abs=1e-12)


def test_distributional_loss_defaults_to_each_codes_exact_loss_and_refuses_huber():
    """The default loss is the one each code's statistic is exact for; per-pair Huber is refused with
    the field, the reason and the working choice."""
    assert DistributionalTD(code="expectile").loss == "squared"
    assert DistributionalTD(code="quantile", n_channels=5).loss == "absolute"
    with pytest.raises(ValueError, match="huber is not offered.*use squared with code: expectile"):
        DistributionalTD(loss="huber")


def test_acting_weights_give_the_statistics():
    taus = [(i + 0.5) / 8 for i in range(8)]
    quantiles = np.sort(np.random.default_rng(0).normal(size=8))
    assert np.dot(acting_weights(taus, "quantile", "mean"), quantiles) == pytest.approx(quantiles.mean())
    # cvar=0.25 with 8 atoms of mass 1/8: the two lowest, (1/0.25) * integral_0^0.25.
    assert np.dot(acting_weights(taus, "quantile", "cvar=0.25"), quantiles) == pytest.approx(quantiles[:2].mean())
    # tau=0.25 lies between 0.1875 and 0.3125: linear interpolation.
    weights = acting_weights(taus, "quantile", "tau=0.25")
    assert np.dot(weights, quantiles) == pytest.approx(quantiles[1] + 0.5 * (quantiles[2] - quantiles[1]))
    expectile_taus = [0.1, 0.25, 0.5, 0.9]
    assert acting_weights(expectile_taus, "expectile", "mean") == (0.0, 0.0, 1.0, 0.0)
    assert acting_weights(expectile_taus, "expectile", "tau=0.25") == (0.0, 1.0, 0.0, 0.0)


@pytest.mark.parametrize("level", [0.05, 0.1, 0.25, 0.3, 0.5, 0.99])
def test_cvar_is_the_exact_cvar_of_the_channels_atoms(level):
    """11 quantile channels stand for 11 atoms of mass 1/11: cvar=x is the mean of the lowest x of that
    law, the atom straddling x counted by the fraction of its mass below x (hand count: 0.25 = two full
    atoms, 2/11, plus 0.25 - 2/11 of the third). So 0.05 and 0.1 differ, and 0.25 and 0.3."""
    taus = [(i + 0.5) / 11 for i in range(11)]
    atoms = np.array([-4.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0])
    full = int(level * 11)
    expected = (atoms[:full].sum() / 11 + (level - full / 11) * atoms[full]) / level
    assert np.dot(acting_weights(taus, "quantile", f"cvar={level}"), atoms) == pytest.approx(expected, abs=1e-12)
    samples = np.repeat(atoms, 10**5)  # the same law as a sample: numpy's mean of its lowest x
    assert expected == pytest.approx(np.sort(samples)[: round(level * samples.size)].mean(), abs=1e-9)


def test_cvar_levels_inside_one_atom_differ():
    taus = [(i + 0.5) / 11 for i in range(11)]
    atoms = np.arange(11.0)
    cvar = {x: np.dot(acting_weights(taus, "quantile", f"cvar={x}"), atoms) for x in (0.05, 0.1, 0.25, 0.3)}
    assert cvar[0.05] == 0.0 and cvar[0.1] == pytest.approx((0.1 - 1 / 11) * 1.0 / 0.1)  # atom 1's sliver
    assert cvar[0.25] < cvar[0.3]


@pytest.mark.parametrize("spec, message", [
    ({"type": "asymmetric", "kappa": 1.2}, r"neuro.dopamine.kappa: must be in \(-1, 1\) \(got 1.2\)"),
    ({"type": "asymmetric", "kappa": "high"}, r"neuro.dopamine.kappa: Input should be a valid number"),
    ({"type": "saturating", "compression": 0.0}, r"neuro.dopamine.compression: must be in \(0, 1\]"),
    ({"type": "saturating", "ceiling": -1}, r"neuro.dopamine.ceiling: must be > 0"),
    ({"type": "opponent", "gain_negative": 0}, r"neuro.dopamine.gain_negative: must be > 0"),
    ({"type": "average_reward", "eta": 1.5}, r"neuro.dopamine.eta: must be in \(0, 1\)"),
    ({"type": "distributional", "n_channels": 4}, r"neuro.dopamine.acting: mean needs a tau = 0.5 channel"),
    ({"type": "distributional", "n_channels": 0}, r"neuro.dopamine.n_channels: must be in \[1, 1000\]"),
    ({"type": "distributional", "n_channels": 10**12}, r"neuro.dopamine.n_channels: must be in \[1, 1000\]"),
    ({"type": "distributional", "taus": [0.2, 0.8]}, r"neuro.dopamine.acting: mean needs a tau = 0.5 channel"),
    ({"type": "distributional", "acting": "cvar=0.25"}, r"neuro.dopamine.acting: cvar=0.25 needs code: quantile"),
    ({"type": "distributional", "code": "quantile", "acting": "tau=0.01"},
     r"neuro.dopamine.acting: tau=0.01 is outside the channels' taus"),
    ({"type": "distributional", "acting": "median"},
     r"neuro.dopamine.acting: must be mean, tau=<level> or cvar=<level>"),
    ({"type": "distributional", "code": "quantile", "loss": "squared"},
     r"neuro.dopamine.loss: squared makes expectiles; the quantile code takes absolute"),
    ({"type": "distributional", "loss": "huber"},
     r"neuro.dopamine.loss: huber is not offered for distributional channels.*use squared with code: expectile"),
    ({"type": "asymmetric", "loss": "l1"}, r"neuro.dopamine.loss: Input should be 'huber' or 'squared'"),
    ({"type": "distributional", "code": "median"},
     r"neuro.dopamine.code: Input should be 'expectile' or 'quantile' \(got 'median'\)"),
    ({"type": "dopa"},
     r"neuro.dopamine.type: unknown dopamine type 'dopa'; allowed: " + ", ".join(DOPAMINE_MODULES.entries)
     + " or a dotted path"),
    ({"type": "asymmetric", "kapa": 0.1},
     r"neuro.dopamine.kapa: asymmetric takes no such parameter; allowed: kappa, loss"),
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
    with pytest.raises(ValueError, match="acting: mean needs a tau = 0.5 channel"):
        DistributionalTD(taus=[0.1, 0.9])
    assert AsymmetricTD(kappa=-0.4).kappa == -0.4


def test_modules_pickled_before_this_interface_keep_the_rule_they_ran():
    """Saved models carry pickled modules: an old ``saturating`` learned on the compressed signal,
    old modules used the squared loss, and old distributional ones acted on their tau = 0.5 channel."""
    import pickle

    def unpickle_old(cls, state):
        module = cls.__new__(cls)
        module.__setstate__(dict(state))
        return pickle.loads(pickle.dumps(module))

    saturating = unpickle_old(SaturatingTD, {"compression": 0.2, "ceiling": 1.0})
    assert type(saturating) is BiasedSaturatingTD and saturating.loss == "squared"
    asymmetric = unpickle_old(AsymmetricTD, {"kappa": 0.4})
    assert (asymmetric.gain_positive, asymmetric.gain_negative, asymmetric.loss) == (0.6, 1.4, "squared")
    assert unpickle_old(StandardTD, {}).loss == "huber"
    taus = [0.1, 0.5, 0.9]
    old = {"taus": taus, "code": "quantile", "n_channels": 3, "acting_channel": 1,
           "_gain_positive": 2 * torch.tensor(taus), "_gain_negative": 2 * (1 - torch.tensor(taus)),
           "_last_values": None}
    quantile = unpickle_old(DistributionalTD, old)
    assert quantile.acting_weights == (0.0, 1.0, 0.0) and quantile.loss == "absolute"
    expectile = unpickle_old(DistributionalTD, {**old, "code": "expectile"})
    assert expectile.acting_weights == (0.0, 1.0, 0.0) and expectile.loss == "squared"
    assert not hasattr(expectile, "acting_channel")


def test_a_distributional_module_saved_with_per_pair_huber_continues_on_its_codes_exact_loss():
    """Runs saved while ``huber`` was the default load with a warning and learn with the exact loss; a
    saved CVaR acts on the exact CVaR of its atoms."""
    import pickle

    module = DistributionalTD(code="quantile", acting="cvar=0.25")
    state = {**module.__dict__, "loss": "huber", "acting_weights": (1 / 3, 1 / 3, 1 / 3, *[0.0] * 8)}
    old = DistributionalTD.__new__(DistributionalTD)
    with pytest.warns(UserWarning, match="per-pair Huber loss now learns with absolute"):
        old.__setstate__(state)
    restored = pickle.loads(pickle.dumps(old))
    assert restored.loss == "absolute"
    assert restored.acting_weights[:3] == pytest.approx((4 / 11, 4 / 11, 3 / 11))  # 0.25 = 2/11 + 0.75/11
