"""Modulators wired into SB3: stock parity, the values SB3 really uses (optimizer param_groups, epsilon,
ent_coef, gamma in the rollout's GAE), the TD errors each agent hands over, and clear refusals."""

import math

import gymnasium
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from agents.neuro_agent import one_step_td_errors
from agents.registry import build, check_neuro, get_algorithm
from envs import make_vec_env
from neuro.dopamine import DopamineModule
from neuro.modulation import Modulator
from tests_support import BOTH_BACKENDS

DQN_ARGS = {"learning_starts": 32, "buffer_size": 500, "batch_size": 16, "train_freq": 1,
            "target_update_interval": 40, "policy_kwargs": {"net_arch": [32, 32]}}
DQN_HYPERPARAMETERS = {key: value for key, value in DQN_ARGS.items() if key != "policy_kwargs"}
PPO_ARGS = {"n_steps": 32, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [32]}}


def assert_same_parameters(ours, stock):
    for (name, ours_param), stock_param in zip(ours.policy.state_dict().items(),
                                               stock.policy.state_dict().values(), strict=True):
        assert torch.equal(ours_param, stock_param), name


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("spec", [{"type": "constant", "value": 7e-4}, {"type": "constant"}], ids=["value", "own"])
def test_constant_learning_rate_is_stock_dqn(backend, spec):
    ours = DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=4, backend=backend),
                       neuro={"learning_rate": spec}, seed=4, device="cpu", learning_rate=7e-4, **DQN_ARGS)
    ours.learn(200)
    stock = DQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=4, backend=backend), seed=4, device="cpu",
                learning_rate=7e-4, **DQN_ARGS)
    stock.learn(200)
    assert ours._n_updates == stock._n_updates > 150
    assert ours.policy.optimizer.param_groups[0]["lr"] == 7e-4
    assert_same_parameters(ours, stock)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_constant_learning_rate_is_stock_ppo(backend):
    ours = DopaminePPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=4, backend=backend), seed=4,
                       device="cpu", neuro={"learning_rate": {"type": "constant", "value": 2e-4}},
                       learning_rate=2e-4, **PPO_ARGS)
    ours.learn(192)
    stock = PPO("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=4, backend=backend), seed=4, device="cpu",
                learning_rate=2e-4, **PPO_ARGS)
    stock.learn(192)
    assert ours._n_updates == stock._n_updates > 0
    assert_same_parameters(ours, stock)


class ReversalChain(gymnasium.Env):
    """Pick an arm in the first state, then walk ``length - 1`` more states (actions do nothing there)
    to the payoff at the end: N(1, 0.1) for one arm, N(0, 0.1) for the other, swapped after
    ``reverse_at`` episodes. ``length = 1`` is a two-armed bandit; longer chains bootstrap the first
    state's value through the walk. Observations are the one-hot position and the one-hot arm taken."""

    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, reverse_at: int, length: int = 1) -> None:
        self.reverse_at, self.length, self.episodes = reverse_at, length, 0
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (length + 2,), np.float32)

    def observation(self) -> np.ndarray:
        observation = np.zeros(self.length + 2, dtype=np.float32)
        observation[self.position] = 1.0
        if self.arm is not None and self.position > 0:
            observation[self.length + self.arm] = 1.0
        return observation

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.arm = 0, None
        return self.observation(), {}

    def step(self, action):
        if self.position == 0:
            self.arm = int(action)
            self.episodes += 1
        self.position += 1
        if self.position < self.length:
            return self.observation(), 0.0, False, False, {}
        means = (1.0, 0.0) if self.episodes <= self.reverse_at else (0.0, 1.0)
        payoff = means[self.arm] + self.np_random.normal(0.0, 0.1)
        self.position, self.arm = 0, None
        return self.observation(), payoff, True, False, {}


class OptimizerRate(BaseCallback):
    """The learning rate in the optimizer's param_groups after every env step."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def _on_step(self) -> bool:
        self.rates.append(self.model.policy.optimizer.param_groups[0]["lr"])
        return True


@pytest.mark.parametrize(("length", "seed"), [(1, 0), pytest.param(1, 1, marks=pytest.mark.slow),
                                           pytest.param(1, 2, marks=pytest.mark.slow), (3, 0)],
                         ids=["bandit-0", "bandit-1", "bandit-2", "chain3-0"])
def test_surprise_raises_the_optimizers_rate_after_a_reversal_and_lets_it_decay(length, seed):
    """Pearce-Hall in DQN: the world is stable for 600 episodes, then the arms swap (as a bandit, and
    through a 3-state chain whose first value bootstraps through two steps, gamma 0.9). The rate read
    from the optimizer has decayed by the reversal, jumps within 100 episodes of it, and decays again."""
    env = DummyVecEnv([lambda: ReversalChain(600, length)])
    model = build("dqn", env, seed=seed, device="cpu", policy_kwargs={"net_arch": [16]},
                  hyperparameters={"learning_starts": 50, "buffer_size": 100 * length, "batch_size": 32,
                                   "train_freq": 1, "learning_rate": 1e-3, "gamma": 0.9, "exploration_fraction": 0.1,
                                   "exploration_final_eps": 0.1, "target_update_interval": 50},
                  neuro={"learning_rate": {"type": "surprise", "eta": 0.05, "alpha_ref": 0.2 / length,
                                           "lo": 0.1, "hi": 10}})
    rates = OptimizerRate()
    model.learn(1200 * length, callback=rates)
    rate = np.array(rates.rates)[::length]  # one reading per episode
    early_peak, before_reversal = rate[50:200].max(), rate[550:600].mean()
    after_peak, settled = rate[600:700].max(), rate[1150:].mean()
    assert before_reversal < 0.6 * early_peak  # decays while the world is stable
    assert after_peak > 2.0 * before_reversal  # surprise after the reversal raises it
    assert settled < 0.6 * after_peak  # and it decays once the new world is learned
    assert rate.min() >= 1e-4 - 1e-12 and rate.max() <= 1e-2 + 1e-12  # within base x [lo, hi]


def test_a_learning_rate_schedule_reaches_the_optimizer_despite_sb3s_reset():
    """SB3 resets the rate from its own schedule at every train(): the modulator's value must win."""
    model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                  hyperparameters={**DQN_HYPERPARAMETERS, "learning_rate": 1e-3},
                  neuro={"learning_rate": {"type": "schedule", "shape": "cosine", "start": 1e-3, "end": 1e-5}})
    model.learn(100)
    done = 1.0 - model._current_progress_remaining
    expected = 1e-5 + (1e-3 - 1e-5) * (1.0 + math.cos(math.pi * done)) / 2.0
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
    assert model.lr_schedule(model._current_progress_remaining) == 1e-3  # SB3's own value, overridden


class Fixed(Modulator):
    """A test modulator: a fixed factor on the algorithm's value, or a fixed value."""

    def __init__(self, factor: float = 1.0, value: float | None = None) -> None:
        self.factor, self.fixed = factor, value

    def value(self, base, progress_remaining):
        return self.fixed if self.fixed is not None else base * self.factor


class ReadsErrors(Fixed):
    reads_td_errors = True

    def __init__(self, factor: float = 1.0, value: float | None = None) -> None:
        super().__init__(factor, value)
        self.summaries = []

    def _td_errors(self, summary):
        self.summaries.append(summary)


FIXED = f"{__name__}:Fixed"


class Probe(BaseCallback):
    """What the algorithm holds while it collects: gamma (its own and its rollout buffer's) and epsilon."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple] = []

    def _on_step(self) -> bool:
        buffer = getattr(self.model, "rollout_buffer", None)
        self.seen.append((self.model.gamma, getattr(buffer, "gamma", None),
                          getattr(self.model, "exploration_rate", None)))
        return True


def test_dqn_acts_with_the_modulated_epsilon_and_learns_with_the_modulated_gamma():
    model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                  hyperparameters=DQN_HYPERPARAMETERS,
                  neuro={"exploration": {"type": FIXED, "factor": 3.0}, "discount": {"type": FIXED, "value": 0.5}})
    probe = Probe()
    model.learn(100, callback=probe)
    schedule = model.exploration_schedule(model._current_progress_remaining)
    assert model.exploration_rate == pytest.approx(min(1.0, 3.0 * schedule))
    assert {gamma for gamma, _, _ in probe.seen} == {0.5}
    assert model.neuro_values() == {"epsilon": model.exploration_rate, "gamma": 0.5}


def numpy_gae(rewards, values, episode_starts, last_values, dones, gamma, lam):
    advantages, last = np.zeros_like(rewards), 0.0
    for step in reversed(range(len(rewards))):
        if step == len(rewards) - 1:
            non_terminal, next_values = 1.0 - dones, last_values
        else:
            non_terminal, next_values = 1.0 - episode_starts[step + 1], values[step + 1]
        delta = rewards[step] + gamma * next_values * non_terminal - values[step]
        last = delta + gamma * lam * non_terminal * last
        advantages[step] = last
    return advantages


class CaptureRollout(BaseCallback):
    """The rollout buffer's inputs and GAE result at the end of the first rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.captured = None

    def _on_rollout_end(self) -> None:
        if self.captured is None:
            buffer = self.model.rollout_buffer
            with torch.no_grad():
                last_values = self.model.policy.predict_values(
                    self.model.policy.obs_to_tensor(self.locals["new_obs"])[0]).numpy().ravel()
            self.captured = (buffer.rewards.copy(), buffer.values.copy(), buffer.episode_starts.copy(), last_values,
                             self.locals["dones"].astype(np.float32), buffer.advantages.copy(), buffer.gamma,
                             self.model.ent_coef)

    def _on_step(self) -> bool:
        return True


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_on_policy_gae_runs_with_the_modulated_gamma_and_trains_with_the_modulated_entropy(algo):
    hyperparameters = {"n_steps": 16, "ent_coef": 0.01, **({"batch_size": 32, "n_epochs": 1} if algo == "ppo" else {})}
    model = build(algo, make_vec_env("highway-fast-v0", 2, seed=0), seed=0, device="cpu",
                  hyperparameters=hyperparameters, policy_kwargs={"net_arch": [16]},
                  neuro={"exploration": {"type": FIXED, "factor": 5.0}, "discount": {"type": FIXED, "value": 0.5}})
    capture = CaptureRollout()
    model.learn(64, callback=capture)
    rewards, values, starts, last_values, dones, advantages, buffer_gamma, _ = capture.captured
    assert model.gamma == buffer_gamma == 0.5
    expected = numpy_gae(rewards, values, starts, last_values, dones, 0.5, model.gae_lambda)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
    assert model.ent_coef == pytest.approx(0.05) and model._base_ent_coef == 0.01


def test_a2c_hands_over_the_one_step_td_errors_behind_its_gae():
    errors = ReadsErrors()
    model = build("a2c", make_vec_env("highway-fast-v0", 2, seed=0), seed=0, device="cpu",
                  hyperparameters={"n_steps": 8, "gae_lambda": 0.9}, policy_kwargs={"net_arch": [16]},
                  neuro={"learning_rate": errors})
    capture = CaptureRollout()
    model.learn(16, callback=capture)
    rewards, values, starts, last_values, dones, advantages, _, _ = capture.captured
    next_values = np.concatenate([values[1:], last_values[None]])
    non_terminal = np.concatenate([1.0 - starts[1:], (1.0 - dones)[None]])
    td_errors = rewards + model.gamma * next_values * non_terminal - values  # the definition, from the buffer
    np.testing.assert_allclose(one_step_td_errors(advantages, starts, model.gamma * 0.9), td_errors, atol=1e-5)
    assert errors.summaries[0].mean == pytest.approx(float(td_errors.mean()), abs=1e-5)
    assert errors.summaries[0].mean_square == pytest.approx(float((td_errors ** 2).mean()), rel=1e-4)


class SilentDopamine(DopamineModule):
    """A dopamine module whose signal is always 0, whatever the TD error."""

    def transform(self, td_error):
        return torch.zeros_like(td_error)


def test_dqn_hands_over_its_dopamine_signal_once_per_gradient_step():
    """Modulators read the dopamine module's signal, not the raw TD error: with a silent module every
    update they see is exactly 0; with the standard one (signal = TD error) it is not."""
    silent, standard = ReadsErrors(), ReadsErrors()
    for errors, dopamine in ((silent, SilentDopamine()), (standard, {"type": "standard"})):
        model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                      hyperparameters=DQN_HYPERPARAMETERS, neuro={"learning_rate": errors, "dopamine": dopamine})
        model.learn(64)
        assert len(errors.summaries) == model._n_updates > 0
    assert all(summary.mean_abs == 0.0 for summary in silent.summaries)
    assert all(summary.mean_abs > 0.0 for summary in standard.summaries)


@pytest.mark.parametrize(("algo", "neuro", "hyperparameters", "message"), [
    ("sac", {"learning_rate": {"type": "surprise"}}, {},
     r"neuro.learning_rate.type: surprise reads TD errors, which NeuroSAC does not hand over; "
     r"algorithms that do: dqn, ppo, a2c, recurrent_ppo"),
    ("qrdqn", {"discount": {"type": "td_variance"}}, {}, r"td_variance reads TD errors"),
    ("td3", {"exploration": {"type": "reward_trend"}}, {},
     r"neuro.exploration: td3 takes no exploration part; algorithms that do: dqn, ppo, a2c, qrdqn, recurrent_ppo"),
    ("dqn", {"discount": {"type": "reward_rate"}}, {"n_steps": 3},
     r"neuro.discount: agent.hyperparameters.n_steps=3 precomputes n-step discounts"),
    ("ppo", {"exploration": {"type": "surprise"}}, {},
     r"agent.hyperparameters.ent_coef: an exploration modulator scales the entropy coefficient, which is 0.0"),
])
def test_modulators_an_algorithm_cannot_honour_are_refused_before_building(algo, neuro, hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        check_neuro(get_algorithm(algo), neuro, hyperparameters)


def test_n_step_dqn_refuses_a_discount_modulator_built_from_python_too():
    with pytest.raises(ValueError, match="n_steps=3 precomputes n-step discounts"):
        DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", 1), n_steps=3,
                    neuro={"discount": {"type": "meta"}})


class Broken(Modulator):
    """Returns NaN, then a negative rate: values no optimizer may receive."""

    def __init__(self) -> None:
        self.calls = 0

    def value(self, base, progress_remaining):
        self.calls += 1
        return float("nan") if self.calls % 2 else -1.0


def test_bad_signals_and_values_never_reach_the_optimizer():
    model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                  hyperparameters={**DQN_HYPERPARAMETERS, "learning_rate": 1e-3},
                  neuro={"learning_rate": {"type": "surprise", "lo": 0.5, "hi": 2.0}})
    model.learn(64)
    for bad in (float("nan"), float("inf"), 1e30):
        model.observe_td_errors(torch.full((16, 1), bad))
        model._update_learning_rate(model.policy.optimizer)
        assert 5e-4 <= model.policy.optimizer.param_groups[0]["lr"] <= 2e-3
    assert model.neuro["learning_rate"].ignored_signals == 3
    assert model.neuro_values()["learning_rate_ignored_signals"] == 3

    broken = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                   hyperparameters={**DQN_HYPERPARAMETERS, "learning_rate": 1e-3},
                   neuro={"learning_rate": Broken()})
    broken.learn(64)
    assert broken.policy.optimizer.param_groups[0]["lr"] == 1e-3  # the algorithm's own rate, kept
    assert broken.neuro["learning_rate"].ignored_signals == broken.neuro["learning_rate"].calls > 0


def test_modulator_state_survives_save_and_load(tmp_path):
    model = build("ppo", make_vec_env("highway-fast-v0", 2, seed=0), seed=0, device="cpu",
                  hyperparameters={"n_steps": 16, "batch_size": 32, "n_epochs": 1, "ent_coef": 0.01},
                  policy_kwargs={"net_arch": [16]},
                  neuro={"learning_rate": {"type": "volatility"}, "exploration": {"type": "meta", "hold": 3},
                         "discount": {"type": "reward_rate"}})
    model.learn(96)
    model.save(tmp_path / "model.zip")
    loaded = get_algorithm("ppo").load(tmp_path / "model.zip", device="cpu")
    assert loaded.neuro_values() == model.neuro_values()
    assert (loaded._base_gamma, loaded._base_ent_coef) == (0.99, 0.01)
    assert loaded.neuro["exploration"]._rng.random() == model.neuro["exploration"]._rng.random()


def test_the_meta_modulators_of_one_agent_draw_independent_perturbations():
    """The agent hands its one seed to every modulator: its learning-rate, exploration and discount
    meta modulators must still draw independent perturbations (issue 21: they drew identical ones,
    correlation 1.0). 4,000 draws each; independent streams give |r| < 0.08 (5 standard deviations)."""
    meta = {"type": "meta", "hold": 1}
    model = build("dqn", make_vec_env("highway-fast-v0", 1, seed=0), seed=0, device="cpu",
                  hyperparameters=DQN_HYPERPARAMETERS,
                  neuro={"learning_rate": meta, "exploration": meta, "discount": meta})
    draws = {kind: np.array([modulator._rng.normal() for _ in range(4000)])
             for kind, modulator in model.modulators.items()}
    kinds = sorted(draws)
    assert kinds == ["discount", "exploration", "learning_rate"]
    for index, first in enumerate(kinds):
        for second in kinds[index + 1:]:
            assert abs(np.corrcoef(draws[first], draws[second])[0, 1]) < 0.08, (first, second)
