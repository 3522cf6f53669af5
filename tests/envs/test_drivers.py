"""Other drivers' behaviour drawn per episode (``env.drivers``): the draws follow the mix (chi-square,
scipy), the traffic highway-env builds is of the drawn class (checked on highway-env's own vehicles by
``type``), a seed fixes the sequence, and the envs of a subprocess VecEnv draw independent streams."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from highway_env.vehicle.behavior import AggressiveVehicle, DefensiveVehicle, IDMVehicle, LinearVehicle
from scipy.stats import chisquare

from envs.drivers import DriverMix, check_drivers, check_scenario
from envs.evaluation import DrivingMetrics, evaluate_driving
from envs.factory import choose_backend, make_highway_env, make_vec_env
from envs.seeding import env_seeds

MIX = {"idm": 0.5, "aggressive": 0.25, "defensive": 0.25}
# highway-env's own classes, imported here, not read from envs.drivers' table
CLASSES = {"idm": IDMVehicle, "linear": LinearVehicle, "aggressive": AggressiveVehicle, "defensive": DefensiveVehicle}
PATHS = {f"{cls.__module__}.{cls.__name__}": name for name, cls in CLASSES.items()}
PATHS.update({"envs.driver_styles.AggressiveDriver": "aggressive", "envs.driver_styles.DefensiveDriver": "defensive"})


class ConfigEnv(gym.Env):
    """A stand-in scenario: a highway-env-like ``config`` and, per reset, the ``other_vehicles_type`` it read."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.config = {"other_vehicles_type": "highway_env.vehicle.behavior.IDMVehicle"}
        self.built: list[str] = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.built.append(self.config["other_vehicles_type"])
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, True, False, {}


def draws(mix, episodes, seed=0):
    env = DriverMix(ConfigEnv(), mix)
    names = [env.reset(seed=seed)[1]["driver"]] + [env.reset()[1]["driver"] for _ in range(episodes - 1)]
    return names, env


def test_the_draws_follow_the_mix_and_set_what_the_scenario_reads():
    names, env = draws(MIX, 4000)
    counts = [names.count(name) for name in MIX]
    assert sum(counts) == 4000
    assert chisquare(counts, [4000 * p for p in MIX.values()]).pvalue > 1e-3
    # the scenario built each episode from the drawn class, read at its own reset
    assert [PATHS[path] for path in env.unwrapped.built] == names


def test_the_chi_square_test_tells_a_wrong_mix_apart():
    names, _ = draws(MIX, 4000)
    counts = [names.count(name) for name in MIX]
    assert chisquare(counts, [4000 / 3] * 3).pvalue < 1e-6  # uniform is not the mix
    names, _ = draws({"idm": 0.0, "aggressive": 0.9, "defensive": 0.1}, 1000)
    assert "idm" not in names and chisquare([names.count("aggressive"), names.count("defensive")],
                                            [900, 100]).pvalue > 1e-3


def test_a_seed_fixes_the_sequence_and_another_changes_it():
    first, _ = draws(MIX, 60, seed=5)
    assert draws(MIX, 60, seed=5)[0] == first
    assert draws(MIX, 60, seed=6)[0] != first
    _, env = draws(MIX, 30, seed=5)
    assert [env.reset(seed=5)[1]["driver"]] + [env.reset()[1]["driver"] for _ in range(59)] == first  # reseeded


@pytest.mark.parametrize("env_id", ["highway-fast-v0", "merge-v0", "roundabout-v1"])
def test_every_other_vehicle_is_of_the_drawn_class(env_id):
    env = DriverMix(make_highway_env(env_id), {"idm": 0.25, "linear": 0.25, "aggressive": 0.25, "defensive": 0.25})
    seen = set()
    for episode in range(8):
        _, info = env.reset(seed=episode)
        road = env.unwrapped.road
        others = [vehicle for vehicle in road.vehicles if vehicle not in env.unwrapped.controlled_vehicles]
        kinds = {type(vehicle) for vehicle in others}
        assert others and len(kinds) == 1 and issubclass(kinds.pop(), CLASSES[info["driver"]]), info["driver"]
        if info["driver"] in ("aggressive", "defensive"):  # another class's subclass would also pass issubclass
            assert not any(isinstance(vehicle, CLASSES[{"aggressive": "defensive", "defensive": "aggressive"}[
                info["driver"]]]) for vehicle in others)
        _, _, _, _, info_step = env.step(1)
        assert info_step["driver"] == info["driver"]
        seen.add(info["driver"])
    assert len(seen) >= 3  # the classes changed between episodes
    env.close()


@pytest.mark.slow  # ~13 s: two worker processes start and import highway-env
def test_subprocess_envs_draw_independent_streams_each_as_its_seed_says():
    n_envs, seed, steps = 2, 11, 12
    venv = make_vec_env("highway-fast-v0", n_envs, seed, "highway-env", {"duration": 1, "vehicles_count": 3},
                        drivers=MIX, stream=1)
    try:
        assert type(venv).__name__ == "SeededSubprocVecEnv"
        venv.reset()
        finished: list[list[str]] = [[] for _ in range(n_envs)]
        for _ in range(steps):
            _, _, dones, infos = venv.step(np.ones(n_envs, dtype=int))
            for index, info in enumerate(infos):
                if dones[index]:
                    finished[index].append(info["driver"])
    finally:
        venv.close()
    assert all(len(names) == steps for names in finished)  # duration 1: one step an episode
    assert finished[0] != finished[1]
    for index, env_seed in enumerate(env_seeds(seed, n_envs, 1)):  # each env's own seed, drawn alone
        assert finished[index] == draws(MIX, steps, seed=env_seed)[0]


def test_auto_moves_to_highway_env_and_envpool_is_refused():
    assert choose_backend("highway-fast-v0", "auto", None, MIX).backend == "highway-env"
    with pytest.raises(ValueError, match=r"^env.backend: envpool cannot draw .*allowed with env.drivers: "
                                         r"highway-env, auto$"):
        choose_backend("highway-fast-v0", "envpool", None, MIX)


@pytest.mark.parametrize(("mix", "message"), [
    ({"idm": 0.5, "reckless": 0.5}, r"^env.drivers.reckless: unknown behaviour; allowed: idm, linear, aggressive, "
                                    r"defensive or package.module:Class"),
    ({"idm": 1.5, "aggressive": -0.5}, r"^env.drivers.aggressive: a probability must be a finite number >= 0"),
    ({"idm": 0.5, "aggressive": 0.4}, r"^env.drivers: probabilities must sum to 1 \(got 0.9"),
    ({}, r"^env.drivers: an empty mix"),
    ({"collections:OrderedDict": 1}, r"^env.drivers: collections:OrderedDict: not a subclass of .*IDMVehicle"),
])
def test_a_bad_mix_is_one_line_naming_the_field(mix, message):
    with pytest.raises(ValueError, match=message):
        check_drivers(mix)


def test_a_user_class_by_dotted_path_drives_the_traffic():
    env = DriverMix(make_highway_env("merge-v0"), {"highway_env.vehicle.behavior:DefensiveVehicle": 1})
    env.reset(seed=0)
    assert {type(v) for v in env.unwrapped.road.vehicles if v is not env.unwrapped.vehicle} == {DefensiveVehicle}
    env.close()


@pytest.mark.parametrize("env_id", ["racetrack-v0", "parking-v0", "lane-keeping-v0"])
def test_a_scenario_that_ignores_other_vehicles_type_is_refused(env_id):
    with pytest.raises(ValueError, match=rf"^env.drivers: {env_id} builds its other vehicles without"):
        check_scenario(env_id)


def test_evaluation_breaks_the_episodes_down_by_drawn_behaviour():
    metrics = DrivingMetrics(returns=[1.0, 3.0, 10.0], lengths=[1, 1, 1], crashed=[True, False, False],
                             drivers=["aggressive", "aggressive", "idm"])
    assert metrics.summary()["by_driver"] == {  # by hand
        "aggressive": {"n_episodes": 2, "mean_return": 2.0, "crash_rate": 0.5},
        "idm": {"n_episodes": 1, "mean_return": 10.0, "crash_rate": 0.0}}
    assert DrivingMetrics(returns=[1.0], lengths=[1], crashed=[False]).summary()["by_driver"] is None


def test_evaluate_driving_records_each_episodes_behaviour():
    venv = make_vec_env("highway-fast-v0", 1, 3, "highway-env", {"duration": 2, "vehicles_count": 3}, drivers=MIX)

    class Idle:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.ones(len(observation), dtype=int), state

    try:
        metrics = evaluate_driving(Idle(), venv, 6)
    finally:
        venv.close()
    assert metrics.drivers == draws(MIX, 6, seed=env_seeds(3, 1)[0])[0]
    assert sum(entry["n_episodes"] for entry in metrics.summary()["by_driver"].values()) == 6


@pytest.mark.parametrize("env_id", ["highway-fast-v0", "roundabout-v1"])
def test_aggressive_and_defensive_drivers_keep_their_parameters_and_drive_apart(env_id):
    """highway-env's randomize_behavior redraws a LinearVehicle's acceleration parameters from one range,
    so its AggressiveVehicle and DefensiveVehicle drove alike (identical episodes on one seed); each
    behaviour must keep highway-env's own class parameters, and the same seed must give other traffic."""
    positions = {}
    for name, cls in (("aggressive", AggressiveVehicle), ("defensive", DefensiveVehicle)):
        env = DriverMix(make_highway_env(env_id), {name: 1.0})
        env.reset(seed=3)
        others = [vehicle for vehicle in env.unwrapped.road.vehicles
                  if vehicle not in env.unwrapped.controlled_vehicles]
        for vehicle in others:
            np.testing.assert_array_equal(vehicle.ACCELERATION_PARAMETERS, cls.ACCELERATION_PARAMETERS)
        for _ in range(5):
            env.step(1)  # IDLE
        positions[name] = np.array([vehicle.position for vehicle in others])
        env.close()
    assert positions["aggressive"].shape == positions["defensive"].shape
    assert not np.allclose(positions["aggressive"], positions["defensive"])
