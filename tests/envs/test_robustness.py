"""Robustness wrappers (envs.robustness): measured effects on fake envs whose clean observations and
received actions are known, both real backends, config checks, and other drivers' behaviour."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from envs.factory import choose_backend, make_vec_env
from envs.robustness import ActionDelay, ObservationDelay, ObservationNoise, PreviousReward, SensorDropout
from envs.scenarios import BackendConfigError
from experiments.config import ConfigError, load_config, save_config
from experiments.config.experiment import validate_config
from experiments.config.wrappers import robustness_wrappers
from experiments.runs.build import EVAL_STREAM, make_env, resolve_backend

VEHICLES, FEATURES = 5, 5
PRESENT = 4  # rows 0..3 hold vehicles; row 4 is absent (all zeros), as highway-env pads


class FakeVecEnv(VecEnv):
    """Kinematics-shaped ``(vehicles, features)`` observations with known values, and a log of actions.

    Column 0 is presence (1 for the first ``PRESENT`` rows), column 1 the step within the episode (0 at
    reset), column 2 the episode number, column 3 the env index, column 4 a constant; absent rows are zeros.
    Env i's episodes last ``episode_lengths[i]`` steps; finished envs reset in the same step with
    ``terminal_observation``, as SB3 VecEnvs do. ``received`` holds the actions each step got.
    """

    def __init__(self, episode_lengths: tuple[int, ...] = (7, 10), action_space: spaces.Space | None = None,
                 observation_shape: tuple[int, ...] = (VEHICLES, FEATURES), dict_observation: bool = False) -> None:
        box = spaces.Box(-np.inf, np.inf, observation_shape, np.float32)
        self.dict_observation = dict_observation
        super().__init__(len(episode_lengths), spaces.Dict({"state": box}) if dict_observation else box,
                         action_space or spaces.Discrete(5))
        self.episode_lengths = np.array(episode_lengths)
        self.step_in_episode = np.zeros(self.num_envs, dtype=int)
        self.episode = np.zeros(self.num_envs, dtype=int)
        self.received: list[np.ndarray] = []
        self.last_clean: np.ndarray | None = None

    def _clean(self, env_index: int) -> np.ndarray:
        observation = np.zeros(self.observation_space["state"].shape if self.dict_observation
                               else self.observation_space.shape, dtype=np.float32)
        if observation.ndim != 2:
            return observation + env_index
        observation[:PRESENT] = [1.0, self.step_in_episode[env_index], self.episode[env_index], env_index, 0.25]
        return observation

    def _batch(self, observations: np.ndarray) -> Any:
        return {"state": observations} if self.dict_observation else observations

    def reset(self) -> Any:
        self.step_in_episode[:] = 0
        self.last_clean = np.stack([self._clean(i) for i in range(self.num_envs)])
        return self._batch(self.last_clean.copy())

    def step_async(self, actions: np.ndarray) -> None:
        self.received.append(np.array(actions, copy=True))

    def step_wait(self) -> Any:
        self.step_in_episode += 1
        dones = self.step_in_episode >= self.episode_lengths
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for env_index in range(self.num_envs):
            if dones[env_index]:
                terminal = self._clean(env_index)
                infos[env_index]["terminal_observation"] = {"state": terminal} if self.dict_observation else terminal
                self.step_in_episode[env_index] = 0
                self.episode[env_index] += 1
        self.last_clean = np.stack([self._clean(i) for i in range(self.num_envs)])
        return self._batch(self.last_clean.copy()), np.zeros(self.num_envs, np.float32), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * self.num_envs
        raise AttributeError(attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(attr_name)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise AttributeError(method_name)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * self.num_envs


def run(env: VecEnv, steps: int, seed: int = 0) -> list[tuple[Any, np.ndarray, list[dict]]]:
    """Step ``env`` with random discrete actions; each step's observation, dones and infos."""
    rng = np.random.default_rng(seed)
    out = [(env.reset(), np.zeros(env.num_envs, bool), [{} for _ in range(env.num_envs)])]
    for _ in range(steps):
        env.step_async(rng.integers(0, 5, env.num_envs))
        observation, _, dones, infos = env.step_wait()
        out.append((observation, dones, infos))
    return out


# --- observation noise ------------------------------------------------------------------------------------------

def test_observation_noise_has_the_asked_std_and_zero_mean_and_keeps_presence():
    std, steps = 0.05, 400
    fake = FakeVecEnv()
    env = ObservationNoise(fake, std=std)
    errors, terminal_errors = [], []
    observation = env.reset()
    for _ in range(steps):
        clean_before = fake.last_clean
        assert np.array_equal(observation[..., 0], clean_before[..., 0])  # presence exact
        assert not observation[:, PRESENT:].any()  # absent rows stay empty
        errors.append(observation[:, :PRESENT, 1:] - clean_before[:, :PRESENT, 1:])
        env.step_async(np.ones(2, dtype=int))
        observation, _, dones, infos = env.step_wait()
        for env_index in np.flatnonzero(dones):
            terminal = infos[env_index]["terminal_observation"]
            assert terminal[0, 1] != float(fake.episode_lengths[env_index])  # noised, not the clean value
            terminal_errors.append(terminal[:PRESENT, 1] - fake.episode_lengths[env_index])
    errors = np.concatenate([e.ravel() for e in errors]).astype(np.float64)
    n = errors.size  # 400 steps x 2 envs x 4 vehicles x 4 features = 12800 independent draws
    # Five standard errors: sd of the sample std ~ std / sqrt(2n), of the mean std / sqrt(n).
    assert abs(errors.std() / std - 1) < 5 / math.sqrt(2 * n)
    assert abs(errors.mean()) < 5 * std / math.sqrt(n)
    terminal_errors = np.concatenate(terminal_errors)
    assert abs(terminal_errors.std() / std - 1) < 5 / math.sqrt(2 * terminal_errors.size)


def test_observation_noise_is_reproducible_per_seed_and_independent_across_envs():
    def noise(seed: int) -> np.ndarray:
        fake = FakeVecEnv()
        return ObservationNoise(fake, std=1.0, seed=seed).reset() - fake.last_clean

    first = noise(0)
    assert np.array_equal(first, noise(0))
    assert not np.array_equal(first, noise(1))
    assert not np.array_equal(first[0], first[1])


def test_observation_noise_follows_the_run_seed_that_make_vec_env_sets():
    def noise(run_seed: int) -> np.ndarray:
        fake = FakeVecEnv()
        fake.run_seed = run_seed  # what make_vec_env sets on every env it builds
        return ObservationNoise(fake, std=1.0, seed=0).reset() - fake.last_clean

    assert np.array_equal(noise(3), noise(3))
    assert not np.array_equal(noise(3), noise(4))


def test_observation_noise_without_presence_noises_every_entry():
    fake = FakeVecEnv()
    noised = ObservationNoise(fake, std=0.1, keep_presence=False).reset()
    assert (noised != fake.last_clean).all()


# --- sensor dropout ---------------------------------------------------------------------------------------------

def test_sensor_dropout_blanks_other_vehicles_at_the_asked_rate_and_never_the_ego():
    probability, steps = 0.2, 400
    fake = FakeVecEnv()
    env = SensorDropout(fake, probability=probability)
    blanked, rows = 0, 0
    observation = env.reset()
    for _ in range(steps):
        clean = fake.last_clean
        assert np.array_equal(observation[:, 0], clean[:, 0])  # ego row never blanked
        others, clean_others = observation[:, 1:PRESENT], clean[:, 1:PRESENT]
        lost = ~others.any(axis=-1)
        assert np.array_equal(others[~lost], clean_others[~lost])  # a row is either intact or all zeros
        blanked += int(lost.sum())
        rows += lost.size
        env.step_async(np.ones(2, dtype=int))
        observation, _, _, _ = env.step_wait()
    # Binomial: 400 steps x 2 envs x 3 present other vehicles = 2400 rows; five standard errors.
    assert abs(blanked / rows - probability) < 5 * math.sqrt(probability * (1 - probability) / rows)


def test_sensor_dropout_refuses_a_non_kinematics_observation():
    with pytest.raises(ValueError, match=r"env\.wrappers: sensor_dropout needs a Kinematics observation.*"
                                         r"\(vehicles, features\).*\(7, 11, 11\)"):
        SensorDropout(FakeVecEnv(observation_shape=(7, 11, 11)), probability=0.1)


# --- observation delay ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dict_observation", [False, True])
@pytest.mark.parametrize("delay", [0, 1, 3])
def test_observation_delay_shows_step_t_minus_k_of_the_same_episode(delay, dict_observation):
    fake = FakeVecEnv(episode_lengths=(5, 8), dict_observation=dict_observation)
    env = ObservationDelay(fake, steps=delay)
    state = (lambda o: o["state"]) if dict_observation else (lambda o: o)
    true_step, true_episode = np.zeros(2, int), np.zeros(2, int)
    for observation, dones, infos in run(env, 30):
        for env_index in range(2):
            if dones[env_index]:
                terminal = state(infos[env_index]["terminal_observation"])
                last = fake.episode_lengths[env_index]
                assert terminal[0, 1] == max(0, last - delay)  # the delayed view of the last step
                assert terminal[0, 2] == true_episode[env_index]
                true_step[env_index], true_episode[env_index] = 0, true_episode[env_index] + 1
            seen = state(observation)[env_index]
            assert seen[0, 1] == max(0, true_step[env_index] - delay)
            assert seen[0, 2] == true_episode[env_index]  # never the previous episode's observations
        true_step += 1


# --- action delay -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [0, 1, 3])
def test_action_delay_applies_the_action_chosen_k_steps_earlier_in_the_episode(delay):
    fake = FakeVecEnv(episode_lengths=(5, 8))
    env = ActionDelay(fake, steps=delay, default_action=1)
    rng = np.random.default_rng(0)
    env.reset()
    chosen_in_episode: list[list[int]] = [[], []]
    for _ in range(30):
        chosen = rng.integers(0, 5, 2)
        env.step_async(chosen)
        _, _, dones, _ = env.step_wait()
        applied = fake.received[-1]
        for env_index in range(2):
            history = chosen_in_episode[env_index]
            history.append(int(chosen[env_index]))
            t = len(history) - 1
            assert applied[env_index] == (history[t - delay] if t >= delay else 1)
            if dones[env_index]:
                chosen_in_episode[env_index] = []  # the pending actions die with the episode


def test_action_delay_default_on_a_box_action_space_is_zeros():
    fake = FakeVecEnv(episode_lengths=(50, 50), action_space=spaces.Box(-1, 1, (2,), np.float32))
    env = ActionDelay(fake, steps=2)
    env.reset()
    chosen = [np.full((2, 2), 0.5 * (k + 1), np.float32) for k in range(4)]
    for action in chosen:
        env.step_async(action)
        env.step_wait()
    assert np.array_equal(np.stack(fake.received), np.stack([np.zeros((2, 2)), np.zeros((2, 2)), *chosen[:2]]))


def test_action_delay_refuses_a_default_outside_the_action_space():
    with pytest.raises(ValueError, match=r"env\.wrappers: action_delay default_action 7 is not an action"):
        ActionDelay(FakeVecEnv(), steps=1, default_action=7)


# --- both backends ----------------------------------------------------------------------------------------------

ALL_FOUR = [{"type": "observation_noise", "std": 0.05}, {"type": "sensor_dropout", "probability": 0.2},
            {"type": "observation_delay", "steps": 2}, {"type": "action_delay", "steps": 1}]


# 31: past one time limit
@pytest.mark.parametrize("backend, steps", [("envpool", 40), pytest.param("highway-env", 31, marks=pytest.mark.slow)])
def test_wrappers_run_on_both_backends(backend, steps):
    env = make_vec_env("highway-fast-v0", 2, seed=0, backend=backend, wrappers=robustness_wrappers(ALL_FOUR))
    try:
        assert isinstance(env, ActionDelay)
        assert env.observation_space.shape == (5, 5)
        ended = 0
        for observation, dones, infos in run(env, steps):
            assert observation.shape == (2, 5, 5) and observation.dtype == np.float32
            for env_index in np.flatnonzero(dones):
                assert infos[env_index]["terminal_observation"].shape == (5, 5)
                ended += 1
        assert ended  # episodes ended and restarted under the wrappers
    finally:
        env.close()


# --- config -----------------------------------------------------------------------------------------------------

BASE = {"name": "robust", "training": {"total_timesteps": 100}}


@pytest.mark.parametrize("wrappers, expected", [
    ([{"type": "observation_noise", "std": 0.05}, {"type": "sensor_dropout", "probability": 1.5}],
     r"env\.wrappers\.1\.probability: must be in \[0, 1\) \(got 1\.5\)"),
    # every registered wrapper is offered, the shipped four among them (a new one needs no edit here)
    ([{"type": "blur"}], r"env\.wrappers\.0\.type: unknown wrapper type 'blur'; allowed: observation_noise, "
                         r"(\w+, )*sensor_dropout, (\w+, )*observation_delay, (\w+, )*action_delay(, \w+)* "
                         r"or a dotted path"),
    ([{"type": "observation_delay"}], r"env\.wrappers\.0\.steps: required parameter is missing"),
    ([{"type": "action_delay", "steps": -1}], r"env\.wrappers\.0\.steps: must be in \[0, 1000\]"),
    ([{"type": "observation_noise", "sigma": 0.1}], r"env\.wrappers\.0\.sigma: observation_noise takes no such "
                                                    r"parameter; allowed: .*std"),
    ([{"type": "collections:OrderedDict"}], r"env\.wrappers\.0\.type: .* does not implement the "
                                                          r"wrapper interface"),
])
def test_bad_wrapper_specs_name_the_item_and_field(wrappers, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_config({**BASE, "env": {"wrappers": wrappers}})


def test_a_config_with_wrappers_loads_saves_and_builds_them_for_training_and_evaluation(tmp_path):
    path = tmp_path / "robust.yaml"
    path.write_text("name: robust\nenv: {id: highway-fast-v0, backend: envpool, n_envs: 2, wrappers: [\n"
                    "  {type: observation_noise, std: 0.05}, {type: action_delay, steps: 1}]}\n"
                    "training: {total_timesteps: 100}\n")
    config, _ = resolve_backend(load_config(path))
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml").env.wrappers == config.env.wrappers
    for stream in (0, EVAL_STREAM):
        env = make_env(config, stream)
        try:
            assert isinstance(env, ActionDelay) and isinstance(env.venv, ObservationNoise)
            assert env.reset().shape == (2, 5, 5)
        finally:
            env.close()


def test_a_wrapper_that_does_not_fit_the_observation_is_a_config_error_naming_its_item():
    config = validate_config({**BASE, "env": {
        "id": "highway-fast-v0", "backend": "highway-env",
        "config": {"observation": {"type": "OccupancyGrid"}},
        "wrappers": [{"type": "action_delay", "steps": 1}, {"type": "sensor_dropout", "probability": 0.1}]}})
    with pytest.raises(ConfigError, match=r"env\.wrappers\.1: sensor_dropout needs a Kinematics observation"):
        make_env(config)


# --- other drivers' behaviour (highway-env backend) -------------------------------------------------------------

@pytest.mark.parametrize("behaviour", ["AggressiveVehicle", "DefensiveVehicle"])
def test_other_drivers_behaviour_reaches_highway_env(behaviour):
    config = {"other_vehicles_type": f"highway_env.vehicle.behavior.{behaviour}"}
    assert choose_backend("highway-fast-v0", "auto", config).backend == "highway-env"
    with pytest.raises(BackendConfigError, match=r"env\.config\.other_vehicles_type"):
        choose_backend("highway-fast-v0", "envpool", config)
    env = make_vec_env("highway-fast-v0", 1, seed=0, backend="highway-env", config=config)
    try:
        env.reset()
        ego, road = env.get_attr("vehicle")[0], env.get_attr("road")[0]
        others = [vehicle for vehicle in road.vehicles if vehicle is not ego]
        assert others and all(type(vehicle).__name__ == behaviour for vehicle in others)
    finally:
        env.close()


class RewardingVecEnv(FakeVecEnv):
    """``FakeVecEnv`` whose reward is the new step's number within the episode plus 10 x the env index."""

    def step_wait(self) -> Any:
        steps_before = self.step_in_episode.copy()
        observations, _, dones, infos = super().step_wait()
        return observations, (steps_before + 1 + 10 * np.arange(self.num_envs)).astype(np.float32), dones, infos


def test_previous_reward_appends_the_last_reward_to_the_flattened_observation():
    wrapped, reference = PreviousReward(RewardingVecEnv()), RewardingVecEnv()
    assert wrapped.observation_space.shape == (VEHICLES * FEATURES + 1,)
    observation, expected = wrapped.reset(), reference.reset()
    np.testing.assert_array_equal(observation, np.concatenate([expected.reshape(2, -1), np.zeros((2, 1))], 1))
    previous = np.zeros(2)
    for _ in range(12):  # env 0's episode ends at step 7, env 1's at 10
        observation, rewards, dones, infos = wrapped.step(np.zeros(2, dtype=int))
        expected, reference_rewards, _, reference_infos = reference.step(np.zeros(2, dtype=int))
        np.testing.assert_array_equal(rewards, reference_rewards)
        np.testing.assert_array_equal(observation[:, :-1], expected.reshape(2, -1))
        np.testing.assert_array_equal(observation[:, -1], np.where(dones, 0.0, rewards))  # a new episode: 0
        for env_index in np.flatnonzero(dones):  # the last state carries the last reward
            terminal = infos[env_index]["terminal_observation"]
            np.testing.assert_array_equal(terminal[:-1], reference_infos[env_index]["terminal_observation"].ravel())
            assert terminal[-1] == rewards[env_index]
        previous = observation[:, -1]
    assert previous[0] == 5.0  # env 0 restarted after 7 steps: its 5th step's reward


def test_previous_reward_refuses_a_dict_observation():
    with pytest.raises(ValueError, match=r"env\.wrappers: previous_reward needs a float Box observation"):
        PreviousReward(FakeVecEnv(dict_observation=True))
