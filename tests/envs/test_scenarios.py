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
    """Envs are built silently (a comparison builds many, in many processes); the command says it once."""
    import warnings

    from envs.factory import make_highway_env
    from envs.scenarios import note_superseded

    note_superseded.cache_clear()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING", logger="neurodrive.envs"):
        warnings.simplefilter("always")
        for _ in range(2):
            make_highway_env("roundabout-v0").close()
        assert not [record for record in caplog.records if "roundabout-v0" in record.getMessage()]
        for _ in range(2):
            note_superseded("roundabout-v0")
            note_superseded("roundabout-v1")  # the latest: nothing to say
    assert not [w for w in caught if "out of date" in str(w.message)]
    lines = [record.getMessage() for record in caplog.records if "roundabout" in record.getMessage()]
    assert len(lines) == 1 and "roundabout-v0 is an older version" in lines[0] and "roundabout-v1" in lines[0]


USER_SCENARIO = '''
import gymnasium as gym
from highway_env.envs.highway_env import HighwayEnvFast


class TwoLaneHighway(HighwayEnvFast):
    """Two lanes, ten cars."""

    @classmethod
    def default_config(cls):
        config = super().default_config()
        config.update({"lanes_count": 2, "vehicles_count": 10})
        return config


class NotDriving(gym.Env):
    pass


gym.register("two-lane-v0", entry_point=TwoLaneHighway)
gym.register("not-driving-v0", entry_point=NotDriving)
'''


def test_a_users_own_scenario_loads_by_module_and_id(tmp_path, monkeypatch):
    import pytest

    from envs import choose_backend, get_scenario, make_vec_env
    from envs.scenarios import highway_env_default_config

    (tmp_path / "my_scenarios.py").write_text(USER_SCENARIO)
    monkeypatch.syspath_prepend(str(tmp_path))
    scenario = get_scenario("my_scenarios:two-lane-v0")
    assert scenario.description == "Two lanes, ten cars" and scenario.envpool_id is None
    assert highway_env_default_config("my_scenarios:two-lane-v0")["lanes_count"] == 2
    assert choose_backend("my_scenarios:two-lane-v0").backend == "highway-env"
    vec_env = make_vec_env("my_scenarios:two-lane-v0", 1, seed=0)
    try:
        vec_env.reset()
        road = vec_env.envs[0].unwrapped.road
        assert len(road.network.lanes_list()) == 2
    finally:
        vec_env.close()
    with pytest.raises(ValueError, match="not-driving-v0' is not a highway-env scenario"):
        get_scenario("my_scenarios:not-driving-v0")
    with pytest.raises(ValueError, match="env.id: cannot load 'no_such_module:x-v0'"):
        get_scenario("no_such_module:x-v0")
