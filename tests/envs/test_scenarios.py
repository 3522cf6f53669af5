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


def test_scenarios_are_highway_envs_single_agent_registry():
    """Independent truth: every id gymnasium holds from highway_env, less the multi-agent ones."""
    gym.register_envs(highway_env)
    registered = {env_id for env_id, spec in gym.registry.items()
                  if str(spec.entry_point).startswith("highway_env")}
    multi_agent = {env_id for env_id in registered if "multi-agent" in env_id}
    assert multi_agent  # highway-env 1.12 has some; they need a multi-vehicle agent
    assert set(SCENARIOS) == registered - multi_agent
    assert len(SCENARIOS) > 11


def test_superseded_versions_name_the_latest():
    assert SCENARIOS["merge-v0"].newer == "merge-v1"
    assert SCENARIOS["intersection-v0"].newer == "intersection-v2"
    assert SCENARIOS["highway-fast-v0"].newer is None and SCENARIOS["merge-v1"].newer is None


def test_an_old_version_gives_one_clear_line_not_a_gymnasium_warning(caplog):
    import warnings

    from envs.factory import make_highway_env
    from envs.scenarios import note_superseded

    note_superseded.cache_clear()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING", logger="neurodrive.envs"):
        warnings.simplefilter("always")
        for _ in range(2):
            make_highway_env("roundabout-v0").close()
    assert not [w for w in caught if "out of date" in str(w.message)]
    lines = [record.getMessage() for record in caplog.records if "roundabout-v0" in record.getMessage()]
    assert len(lines) == 1 and "roundabout-v1" in lines[0]
