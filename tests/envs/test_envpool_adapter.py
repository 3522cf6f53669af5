"""The EnvPool adapter keeps SB3's VecEnv semantics, checked against raw EnvPool and highway-env."""

import envpool
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecMonitor

from envs import env_seeds, make_vec_env

IDLE, FASTER, SLOWER = 1, 3, 4


def _raw_pool(env_id: str, n_envs: int, seed: int, **kwargs):
    return envpool.make(env_id, env_type="gymnasium", num_envs=n_envs, num_threads=1,
                        env_seed=env_seeds(seed, n_envs), **kwargs)


def test_lockstep_with_raw_envpool_until_first_done():
    """Before any reset, the adapter returns exactly raw EnvPool's batch; at a done step the
    finished env's terminal obs is raw's obs and its new obs is what EnvPool's own auto-reset
    would produce on the next call; the other envs are untouched (partial reset)."""
    n_envs = 4
    raw = _raw_pool("highway-fast-v0", n_envs, seed=0)
    adapter = make_vec_env("highway-fast-v0", n_envs, seed=0, backend="envpool")
    raw_obs, _ = raw.reset()
    assert np.array_equal(raw_obs, adapter.reset())
    rng = np.random.default_rng(1)
    for _ in range(30):
        actions = rng.integers(0, 5, n_envs)
        raw_obs, raw_rew, term, trunc, _ = raw.step(actions)
        obs, rew, dones, infos = adapter.step(actions)
        assert np.array_equal(raw_rew.astype(np.float32), rew)
        assert np.array_equal(term | trunc, dones)
        if dones.any():
            break
    else:
        pytest.fail("no episode ended in 30 random steps")
    done_ids = np.flatnonzero(dones)
    live_ids = np.flatnonzero(~dones)
    assert np.array_equal(obs[live_ids], raw_obs[live_ids])
    for env_idx in done_ids:
        assert np.array_equal(infos[env_idx]["terminal_observation"], raw_obs[env_idx])
        assert "terminal_observation" not in infos[live_ids[0]]
    auto_reset_obs, auto_reset_rew, *_ = raw.step(rng.integers(0, 5, n_envs))
    assert np.array_equal(obs[done_ids], auto_reset_obs[done_ids])
    assert np.all(auto_reset_rew[done_ids] == 0.0)  # EnvPool's extra reset step, hidden from SB3


def test_episode_stats_match_summed_rewards_and_vecmonitor():
    """info['episode'] holds the episode's summed reward and length, as VecMonitor computes them."""
    adapter = make_vec_env("highway-fast-v0", 3, seed=5, backend="envpool")
    monitored = VecMonitor(make_vec_env("highway-fast-v0", 3, seed=5, backend="envpool"))
    adapter.reset()
    monitored.reset()
    returns, lengths = np.zeros(3), np.zeros(3, dtype=int)
    episodes = 0
    rng = np.random.default_rng(0)
    for _ in range(200):
        actions = rng.integers(0, 5, 3)
        _, rewards, dones, infos = adapter.step(actions)
        _, _, monitor_dones, monitor_infos = monitored.step(actions)
        assert np.array_equal(dones, monitor_dones)
        returns += rewards
        lengths += 1
        for env_idx in np.flatnonzero(dones):
            episode = infos[env_idx]["episode"]
            assert episode["r"] == pytest.approx(returns[env_idx], abs=1e-4)
            assert episode["l"] == lengths[env_idx]
            assert episode["r"] == pytest.approx(monitor_infos[env_idx]["episode"]["r"], abs=1e-5)
            assert episode["l"] == monitor_infos[env_idx]["episode"]["l"]
            episodes += 1
        returns[dones] = 0.0
        lengths[dones] = 0
    assert episodes >= 10


def _run_constant(vec_env, action: int, max_steps: int = 100):
    vec_env.reset()
    for step in range(1, max_steps + 1):
        _, _, dones, infos = vec_env.step(np.array([action]))
        if dones[0]:
            return step, infos[0]
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("backend", ["envpool", "highway-env"])
def test_time_limit_truncation_flags(backend):
    """An episode that outlives `duration` ends with TimeLimit.truncated on both backends."""
    config = {"duration": 4, "vehicles_density": 0.5}
    for seed in range(5):  # SLOWER can still be rear-ended; find an episode that survives
        vec_env = make_vec_env("highway-fast-v0", 1, seed=seed, backend=backend, config=config)
        length, info = _run_constant(vec_env, SLOWER)
        vec_env.close()
        if not info["crashed"]:
            assert length == 4
            assert info["TimeLimit.truncated"] is True
            assert "terminal_observation" in info and "episode" in info
            return
    pytest.fail("every SLOWER episode crashed")


@pytest.mark.parametrize("backend", ["envpool", "highway-env"])
def test_crash_terminates_without_truncation_flag(backend):
    vec_env = make_vec_env("highway-fast-v0", 1, seed=0, backend=backend)
    length, info = _run_constant(vec_env, FASTER)
    vec_env.close()
    assert info["crashed"] is True
    assert info["TimeLimit.truncated"] is False
    assert length < 30
    assert info["episode"]["l"] == length


def test_dict_observations_and_success_info():
    """parking-v0: Dict observations, a dict terminal_observation and the is_success flag."""
    with pytest.warns(UserWarning, match="not verified"):
        vec_env = make_vec_env("parking-v0", 2, seed=0, backend="envpool",
                               config={"duration": 2})  # 2 s at 5 Hz: 10 steps
    obs = vec_env.reset()
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    done_at = []
    for step in range(1, 11):
        obs, _, dones, infos = vec_env.step(np.zeros((2, 2), dtype=np.float32))
        assert "is_success" in infos[0]
        done_at.append(step if dones.all() else None)
    assert done_at == [None] * 9 + [10]
    terminal = infos[0]["terminal_observation"]
    assert isinstance(terminal, dict) and terminal["observation"].shape == (6,)
    assert not np.array_equal(terminal["observation"], obs["observation"][0])


def test_seed_call_rebuilds_pool_with_spaced_seeds():
    vec_env = make_vec_env("highway-fast-v0", 3, seed=0, backend="envpool")
    vec_env.reset()
    assert vec_env.seed(7) == env_seeds(7, 3)
    fresh = make_vec_env("highway-fast-v0", 3, seed=7, backend="envpool")
    assert np.array_equal(vec_env.reset(), fresh.reset())


def test_reset_infos_have_driving_keys():
    vec_env = make_vec_env("highway-fast-v0", 2, seed=0, backend="envpool")
    vec_env.reset()
    assert len(vec_env.reset_infos) == 2
    assert set(vec_env.reset_infos[0]) >= {"crashed", "speed"}


def test_low_level_step_path_equals_the_public_api_path():
    """The fast path (EnvPool's _send/_recv, reset overlapped with info building) returns exactly
    what the public step + reset path returns, over many episode ends."""
    fast = make_vec_env("highway-fast-v0", 8, seed=2, backend="envpool")
    public = make_vec_env("highway-fast-v0", 8, seed=2, backend="envpool")
    assert fast._fast is not None, "envpool layout changed: the fast path is off"
    public._fast = None
    assert np.array_equal(fast.reset(), public.reset())
    rng = np.random.default_rng(3)
    episode_ends = 0
    for _ in range(150):
        actions = rng.integers(0, 5, 8)
        obs_f, rew_f, done_f, infos_f = fast.step(actions)
        obs_p, rew_p, done_p, infos_p = public.step(actions)
        assert np.array_equal(obs_f, obs_p) and np.array_equal(rew_f, rew_p)
        assert np.array_equal(done_f, done_p) and rew_f.dtype == rew_p.dtype
        for info_f, info_p in zip(infos_f, infos_p, strict=True):
            assert info_f.keys() == info_p.keys()
            for key in info_f.keys() - {"episode", "terminal_observation"}:
                assert info_f[key] == info_p[key]
            if "terminal_observation" in info_f:
                assert np.array_equal(info_f["terminal_observation"], info_p["terminal_observation"])
                assert info_f["episode"]["r"] == info_p["episode"]["r"]
                assert info_f["episode"]["l"] == info_p["episode"]["l"]
                episode_ends += 1
        assert fast.reset_infos == public.reset_infos
    assert episode_ends >= 50
