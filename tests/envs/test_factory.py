"""make_vec_env: backend choice, config translation, seeds, and equal spaces on both backends."""

import itertools
import warnings

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecNormalize

from envs import (
    ENVPOOL_VERIFIED,
    SCENARIOS,
    BackendConfigError,
    choose_backend,
    env_seeds,
    make_vec_env,
)
from envs.scenarios import envpool_kwargs
from tests_support import BOTH_BACKENDS


def test_auto_picks_envpool_only_for_verified_ports():
    for env_id, scenario in SCENARIOS.items():
        expected = "envpool" if env_id in ENVPOOL_VERIFIED and scenario.envpool_id else "highway-env"
        assert choose_backend(env_id, "auto").backend == expected, env_id
    assert choose_backend("roundabout-v0").backend == "highway-env"
    assert choose_backend("intersection-v0").backend == "highway-env"


def test_auto_falls_back_when_native_port_cannot_honour_config():
    choice = choose_backend("highway-fast-v0", "auto", {"observation": {"type": "OccupancyGrid"}})
    assert choice.backend == "highway-env"
    assert "observation.type" in choice.reason


def test_explicit_envpool_with_unsupported_key_names_it():
    with pytest.raises(BackendConfigError, match=r"env\.config\.other_vehicles_type"):
        choose_backend("highway-fast-v0", "envpool", {"other_vehicles_type": "x.Y"})
    with pytest.raises(BackendConfigError, match=r"env\.config\.lanes_count.*supports: .*policy_frequency"):
        choose_backend("merge-v0", "envpool", {"lanes_count": 3})


def test_explicit_envpool_on_unverified_scenario_warns():
    with pytest.warns(UserWarning, match="roundabout-v0 is not verified"):
        assert choose_backend("roundabout-v0", "envpool").backend == "envpool"


def test_bad_backend_and_scenario_list_allowed_values():
    with pytest.raises(ValueError, match="env.backend: 'gpu'.*auto, envpool, highway-env"):
        choose_backend("highway-fast-v0", "gpu")
    with pytest.raises(ValueError, match="env.id: unknown scenario 'highway-v9'.*highway-fast-v0"):
        choose_backend("highway-v9")


def test_config_translation():
    kwargs = envpool_kwargs("highway-fast-v0", {
        "lanes_count": 4, "reward_speed_range": [15, 25], "initial_lane_id": None,
        "observation": {"type": "Kinematics", "vehicles_count": 7}, "duration": 12,
        "screen_width": 300,
    })
    assert kwargs == {
        "lanes_count": 4, "reward_speed_low": 15.0, "reward_speed_high": 25.0, "initial_lane_id": -1,
        "observation_vehicles_count": 7, "duration": 12, "max_episode_steps": 12,
    }


@pytest.mark.parametrize("backend", ["envpool", "highway-env"])
def test_config_is_honoured(backend):
    """lanes_count and observation.vehicles_count change the env the same way on both backends."""
    vec_env = make_vec_env("highway-fast-v0", 1, seed=0, backend=backend,
                           config={"observation": {"type": "Kinematics", "vehicles_count": 8}})
    assert vec_env.observation_space.shape == (8, 5)
    assert vec_env.reset().shape == (1, 8, 5)
    vec_env.close()


@pytest.mark.parametrize("env_id", [s.env_id for s in SCENARIOS.values() if s.envpool_id])
def test_both_backends_expose_the_same_spaces(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = make_vec_env(env_id, 1, seed=0, backend="envpool")
    reference = make_vec_env(env_id, 1, seed=0, backend="highway-env")
    assert native.observation_space == reference.observation_space
    assert native.action_space == reference.action_space
    native_obs, reference_obs = native.reset(), reference.reset()
    if isinstance(native_obs, dict):
        assert {k: v.shape for k, v in native_obs.items()} == {k: v.shape for k, v in reference_obs.items()}
    else:
        assert native_obs.shape == reference_obs.shape
    native.close()
    reference.close()


def test_seeds_of_ten_runs_share_no_env_stream():
    """Seeds 0..9, 64 envs each: no per-env seed repeats, and on EnvPool no two envs start alike
    (with seed + i, the pools of seeds 0 and 1 would share 63 of 64 streams)."""
    all_seeds = [s for seed in range(10) for s in env_seeds(seed, 64)]
    assert len(set(all_seeds)) == len(all_seeds)
    first_obs = []
    for seed in range(10):
        vec_env = make_vec_env("highway-fast-v0", 8, seed=seed, backend="envpool")
        first_obs.extend(vec_env.reset())
        vec_env.close()
    for a, b in itertools.combinations(first_obs, 2):
        assert not np.array_equal(a, b)


def test_seed_streams_keep_per_env_seed_across_pool_sizes():
    assert env_seeds(3, 16)[:4] == env_seeds(3, 4)
    assert env_seeds(3, 4, stream=1) != env_seeds(3, 4)
    with pytest.raises(ValueError, match="training.seed"):
        env_seeds(-1, 2)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_same_seed_same_trajectory(backend):
    def rollout(seed):
        vec_env = make_vec_env("highway-fast-v0", 2, seed=seed, backend=backend)
        observations = [vec_env.reset()]
        for step in range(12):
            observations.append(vec_env.step(np.array([step % 5, 3]))[0])
        vec_env.close()
        return np.stack(observations)

    assert np.array_equal(rollout(4), rollout(4))
    assert not np.array_equal(rollout(4), rollout(5))


def test_highway_env_backend_reseeds_with_spaced_seeds():
    vec_env = make_vec_env("highway-fast-v0", 1, seed=0, backend="highway-env")
    assert vec_env.seed(11) == env_seeds(11, 1)
    vec_env.close()


def test_vec_env_wrappers_apply_on_both_backends():
    for backend in ("envpool", "highway-env"):
        vec_env = make_vec_env("highway-fast-v0", 1, seed=0, backend=backend,
                               wrappers=[lambda v: VecNormalize(v, norm_reward=False)])
        assert isinstance(vec_env, VecNormalize)
        vec_env.close()


def test_bad_n_envs():
    with pytest.raises(ValueError, match="env.n_envs"):
        make_vec_env("highway-fast-v0", 0)


def test_a_highway_env_scenario_is_not_changed_by_another_in_the_same_process():
    """highway-env's intersection writes IDM parameters on the class; our envs keep their own."""
    def highway_rollout():
        vec_env = make_vec_env("highway-fast-v0", 1, seed=6, backend="highway-env")
        observations = [vec_env.reset()]
        observations += [vec_env.step(np.array([1]))[0] for _ in range(20)]
        vec_env.close()
        return np.stack(observations)

    from highway_env.vehicle.behavior import IDMVehicle

    before = highway_rollout()
    class_value = IDMVehicle.DISTANCE_WANTED
    intersection = make_vec_env("intersection-v0", 1, seed=0, backend="highway-env")
    intersection.reset()
    intersection.step(np.array([1]))
    assert IDMVehicle.DISTANCE_WANTED == class_value  # the process's class is left as it was
    assert np.array_equal(before, highway_rollout())
    intersection.close()
