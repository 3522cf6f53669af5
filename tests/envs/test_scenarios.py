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


def test_verified_ports_are_known_scenarios_with_a_port():
    # Which ports are verified is decided by docs/fidelity.md (test_fidelity holds code and doc equal).
    assert ENVPOOL_VERIFIED <= {s.env_id for s in SCENARIOS.values() if s.envpool_id}
