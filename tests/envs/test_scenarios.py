import envpool
import gymnasium as gym
import highway_env

from envs import ENVPOOL_VERIFIED, SCENARIOS


def test_every_scenario_is_registered_by_both_libraries():
    gym.register_envs(highway_env)
    native_ids = set(envpool.list_all_envs())
    for env_id, scenario in SCENARIOS.items():
        assert env_id in gym.registry, env_id
        assert scenario.envpool_id is None or scenario.envpool_id in native_ids, env_id


def test_verified_ports_are_the_measured_ones():
    # ../shared/reference/backend_fidelity.md: highway, highway-fast and merge match; the
    # native roundabout and intersection replay one traffic layout.
    assert ENVPOOL_VERIFIED == {"highway-v0", "highway-fast-v0", "merge-v0"}
    assert ENVPOOL_VERIFIED <= set(SCENARIOS)
