"""highway-env's observation types from a config: values, the tuple as a Dict, the native port's refusal,
and envs with image observations surviving a checkpoint's pickle."""

import io
import warnings

import cloudpickle
import gymnasium as gym
import highway_env
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from envs.factory import choose_backend, make_highway_env, make_vec_env
from envs.observations import (
    dump_with_render_state,
    highway_observation_config,
    is_image_observation,
    tuple_keys,
)
from experiments.config import ConfigError, load_config
from experiments.runs.build import observation_space
from tests_support import EXPERIMENTS

ENV_ID = "highway-fast-v0"
GRAYSCALE = {"type": "GrayscaleObservation", "observation_shape": [128, 64], "stack_size": 4,
             "weights": [0.2989, 0.5870, 0.1140], "scaling": 1.75}
TUPLE = {"type": "TupleObservation", "observation_configs": [{"type": "Kinematics"}, GRAYSCALE]}


def raw_env(observation: dict) -> gym.Env:
    """highway-env's own env, built as its docs do (tuples where it needs them), no wrapper of ours."""
    gym.register_envs(highway_env)
    as_tuples = {**observation, "observation_configs": [
        {**part, "observation_shape": tuple(part["observation_shape"])} if "observation_shape" in part else part
        for part in observation.get("observation_configs", [])]}
    if "observation_shape" in observation:
        as_tuples["observation_shape"] = tuple(observation["observation_shape"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(ENV_ID, config={"observation": as_tuples})


def test_lists_become_tuples_inside_a_tuple_observation_too():
    converted = highway_observation_config(TUPLE)
    assert converted["observation_configs"][1]["observation_shape"] == (128, 64)
    assert converted["observation_configs"][1]["weights"] == [0.2989, 0.5870, 0.1140]  # only the shape
    assert TUPLE["observation_configs"][1]["observation_shape"] == [128, 64]  # the config is not changed


def test_tuple_keys_are_the_types_numbered_from_the_second_of_a_type():
    parts = [{"type": "Kinematics"}, {"type": "GrayscaleObservation"}, {"type": "Kinematics"}]
    assert tuple_keys(parts) == ["Kinematics", "GrayscaleObservation", "Kinematics_2"]


def test_the_grayscale_image_is_what_sb3_cnn_policy_takes():
    """uint8 in [0, 255], channels (the stack) first, as SB3's is_image_space checks with its channel test."""
    space = observation_space(ENV_ID, {"observation": GRAYSCALE})
    assert space == spaces.Box(0, 255, (4, 128, 64), np.uint8)
    assert is_image_space(space, check_channels=True) and is_image_observation(space)
    assert not is_image_observation(observation_space(ENV_ID, {"observation": {"type": "OccupancyGrid"}}))


def test_a_tuple_observation_is_a_dict_of_highway_envs_own_parts():
    """Same seed, same actions: each Dict entry equals the raw highway-env tuple's part, by type."""
    ours, theirs = make_highway_env(ENV_ID, {"observation": TUPLE}), raw_env(TUPLE)
    assert isinstance(ours.observation_space, spaces.Dict)
    assert ours.observation_space["Kinematics"] == theirs.observation_space[0]
    assert ours.observation_space["GrayscaleObservation"] == theirs.observation_space[1]
    observation, _ = ours.reset(seed=3)
    expected, _ = theirs.reset(seed=3)
    for action in (1, 3, 0, 4):
        for key, index in (("Kinematics", 0), ("GrayscaleObservation", 1)):
            np.testing.assert_array_equal(observation[key], expected[index])
        assert ours.observation_space.contains(observation)
        observation, *_ = ours.step(action)
        expected, *_ = theirs.step(action)
    ours.close()
    theirs.close()


def test_an_env_with_image_observations_pickles_and_continues_exactly():
    """The bug: a checkpoint pickled the eval env, whose grayscale observation holds pygame surfaces. Now
    it pickles with them rebuilt on load, and the copy renders the same frames as the original."""
    vec_env = make_vec_env(ENV_ID, 1, seed=5, backend="highway-env", config={"observation": TUPLE})
    vec_env.reset()
    vec_env.step(np.array([1]))
    with pytest.raises(TypeError, match="pickle"):
        cloudpickle.dumps(vec_env)  # what the checkpoint did
    buffer = io.BytesIO()
    dump_with_render_state(vec_env, buffer)
    copy = cloudpickle.loads(buffer.getvalue())
    for action in (3, 0, 4, 1, 2):
        ours, *_ = vec_env.step(np.array([action]))
        theirs, *_ = copy.step(np.array([action]))
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
    assert theirs["GrayscaleObservation"].std() > 0  # real frames, not a blank surface
    vec_env.close()
    copy.close()


def test_auto_falls_back_and_envpool_refuses_other_observations_in_one_line():
    choice = choose_backend(ENV_ID, "auto", {"observation": GRAYSCALE})
    assert choice.backend == "highway-env" and "cannot honour" in choice.reason
    assert choose_backend(ENV_ID, "auto", {"observation": {"type": "Kinematics"}}).backend == "envpool"
    with pytest.raises(ValueError, match=r"^env\.config\.observation\.type: the EnvPool port observes Kinematics "
                                         r"only \(got 'GrayscaleObservation'\)[^\n]*backend: highway-env"):
        choose_backend(ENV_ID, "envpool", {"observation": GRAYSCALE})


@pytest.mark.parametrize(("observation", "message"), [
    ("{type: TupleObservation, observation_configs: [{type: Kinematics}, {type: Grayscale}]}",
     r"env\.config\.observation\.observation_configs\[1\]\.type: got 'Grayscale'; allowed: .*GrayscaleObservation"),
    ("{type: TupleObservation, observation_configs: []}", r"env\.config\.observation\.observation_configs: must be"),
    ("{type: TupleObservation, observation_configs: [{type: TupleObservation, observation_configs: []}]}",
     r"observation_configs\[0\]\.type: must be a single observation type"),
    ("{type: GrayscaleObservation, observation_shape: [128]}",
     r"env\.config\.observation\.observation_shape: must be \[width, height\]"),
    ("{type: GrayscaleObservation, observation_shape: [4096, 4096]}",
     r"env\.config\.observation\.observation_shape: must be at most 1,000,000 pixels"),
])
def test_impossible_observation_configs_are_one_line_before_any_work(observation, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(EXPERIMENTS / "smoke.yaml", [f"env.config.observation={observation}"])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("wrapper", "message"), [
    ({"type": "observation_noise", "std": 0.05}, r"observation_noise needs a float Box observation"),
    ({"type": "sensor_dropout", "probability": 0.2}, r"sensor_dropout needs a Kinematics observation"),
])
def test_a_kinematics_sensor_wrapper_on_camera_frames_is_one_line(wrapper, message):
    from experiments.config.wrappers import robustness_wrappers

    with pytest.raises(ValueError, match=r"^env\.wrappers\.0: " + message) as error:
        make_vec_env(ENV_ID, 1, backend="highway-env", config={"observation": GRAYSCALE},
                     wrappers=robustness_wrappers([wrapper]))
    assert "\n" not in str(error.value)


def test_a_delay_takes_the_multimodal_dict():
    from experiments.config.wrappers import robustness_wrappers

    vec_env = make_vec_env(ENV_ID, 1, backend="highway-env", config={"observation": TUPLE},
                           wrappers=robustness_wrappers([{"type": "observation_delay", "steps": 1}]))
    first = vec_env.reset()
    delayed, *_ = vec_env.step(np.array([1]))
    for key in first:  # one step late: the first step shows the reset observation again
        np.testing.assert_array_equal(delayed[key], first[key])
    vec_env.close()
