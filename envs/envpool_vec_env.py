"""An SB3 ``VecEnv`` over an EnvPool pool, with SB3's step semantics.

EnvPool resets a finished env on the *next* ``step`` call (that step ignores the action and
returns the reset observation). SB3 expects the reset to happen in the same step, with the last
observation in ``info["terminal_observation"]``. The adapter resets just the finished envs
through ``reset(env_ids)`` right away, so SB3 never sees the extra transition.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from envs.seeding import env_seeds

# Per-step info keys copied from EnvPool's batched info into each env's info dict.
_STEP_INFO_KEYS = ("crashed", "speed", "is_success")


class EnvPoolVecEnv(VecEnv):
    """SB3 VecEnv for an EnvPool gymnasium pool: same-step resets and Monitor-style episode stats.

    :param envpool_id: EnvPool task id (``highway-fast-v0`` ...).
    :param env_seeds: one seed per env; the pool has ``len(env_seeds)`` envs.
    :param envpool_kwargs: scenario config passed to ``envpool.make``.
    :param num_threads: EnvPool worker threads (``0``: one per env).
    :param stream: seed stream that ``seed()`` derives new per-env seeds from.
    """

    def __init__(
        self,
        envpool_id: str,
        env_seeds: Sequence[int],
        envpool_kwargs: dict[str, Any] | None = None,
        num_threads: int = 0,
        stream: int = 0,
    ) -> None:
        self.envpool_id = envpool_id
        self.envpool_kwargs = dict(envpool_kwargs or {})
        self.num_threads = num_threads
        self.stream = stream
        self._env_seeds = [int(s) for s in env_seeds]
        self._pool = self._make_pool(self._env_seeds)
        super().__init__(
            len(self._env_seeds), self._pool.observation_space, self._pool.action_space
        )
        self._actions: np.ndarray | None = None
        self._pending_seeds: list[int] | None = None
        self._fast = _FastPath.build(self._pool)
        self._episode_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._t_start = time.time()

    def _make_pool(self, env_seeds: list[int]) -> Any:
        import envpool

        return envpool.make(
            self.envpool_id,
            env_type="gymnasium",
            num_envs=len(env_seeds),
            batch_size=len(env_seeds),
            num_threads=self.num_threads,
            env_seed=env_seeds,
            **self.envpool_kwargs,
        )

    @property
    def env_seeds(self) -> list[int]:
        return list(self._env_seeds)

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Reseed on the next ``reset`` (EnvPool seeds at construction, so the pool is rebuilt)."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.int32).max))
        seeds = env_seeds(seed, self.num_envs, self.stream)
        self._pending_seeds = None if seeds == self._env_seeds else seeds
        return seeds

    def reset(self) -> VecEnvObs:
        if self._pending_seeds is not None:
            self._pool.close()
            self._env_seeds, self._pending_seeds = self._pending_seeds, None
            self._pool = self._make_pool(self._env_seeds)
            self._fast = _FastPath.build(self._pool)
        obs, info = self._pool.reset()
        self.reset_infos = _rows(_info_columns(info), self.num_envs)
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._fast is not None:
            return self._step_wait_fast(self._fast)
        obs, rewards, terminated, truncated, info = self._pool.step(self._actions)
        dones = terminated | truncated
        self._episode_returns += rewards
        self._episode_lengths += 1
        columns = _info_columns(info)
        columns["TimeLimit.truncated"] = (truncated & ~terminated).tolist()
        infos = _rows(columns, self.num_envs)
        done_ids = np.flatnonzero(dones)
        if done_ids.size:
            obs = self._reset_finished(obs, infos, done_ids)
        return obs, rewards.astype(np.float32, copy=False), dones, infos

    def _reset_finished(self, obs: VecEnvObs, infos: list[dict], done_ids: np.ndarray) -> VecEnvObs:
        self._finish_episodes(obs, infos, done_ids)
        reset_obs, reset_info = self._pool.reset(done_ids.astype(np.int32))
        reset_rows = _rows(_info_columns(reset_info), done_ids.size)
        for env_idx, env_reset_info in zip(done_ids.tolist(), reset_rows, strict=True):
            self.reset_infos[env_idx] = env_reset_info
        # The step's obs batch is fresh memory from EnvPool, so writing into it is safe.
        if isinstance(obs, dict):
            for key in obs:
                obs[key][done_ids] = reset_obs[key]
        else:
            assert isinstance(obs, np.ndarray)  # EnvPool gives an array or a dict of them
            obs[done_ids] = reset_obs
        return obs

    def _step_wait_fast(self, fast: _FastPath) -> VecEnvStepReturn:
        """``step_wait`` over ``_send``/``_recv``; the finished envs' reset overlaps the info work."""
        pool = self._pool
        actions = np.asarray(self._actions).astype(fast.action_dtype, order="C", copy=False)
        converted = [fast.env_ids, fast.env_ids, actions]
        pool._check_action(converted)  # validates dtype/shape once, like ``send``
        pool._send(converted)
        state = pool._recv()
        obs = state[fast.obs]
        rewards = state[fast.reward]
        truncated = state[fast.trunc]
        terminated = state[fast.done] & ~truncated  # as EnvPool's own gymnasium ``_to``
        dones = terminated | truncated
        done_ids = np.flatnonzero(dones)
        if done_ids.size:
            pool._reset(done_ids.astype(np.int32))  # queued; collected by ``_recv`` below
        try:
            self._episode_returns += rewards
            self._episode_lengths += 1
            columns = {key: state[idx].tolist() for key, idx in fast.info}
            columns["TimeLimit.truncated"] = (truncated & ~terminated).tolist()
            infos = _rows(columns, self.num_envs)
            if done_ids.size:
                self._finish_episodes(obs, infos, done_ids)
        finally:
            reset_state = pool._recv() if done_ids.size else None
        if reset_state is not None:
            reset_rows = _rows({key: reset_state[idx].tolist() for key, idx in fast.info}, done_ids.size)
            for env_idx, env_reset_info in zip(done_ids.tolist(), reset_rows, strict=True):
                self.reset_infos[env_idx] = env_reset_info
            obs[done_ids] = reset_state[fast.obs]  # fresh memory from EnvPool, safe to write
        return obs, rewards.astype(np.float32, copy=False), dones, infos

    def _finish_episodes(self, obs: VecEnvObs, infos: list[dict], done_ids: np.ndarray) -> None:
        """Terminal observation and Monitor-style ``episode`` stats for the finished envs."""
        now = time.time()
        for env_idx in done_ids.tolist():
            infos[env_idx]["terminal_observation"] = _index_obs(obs, env_idx)
            infos[env_idx]["episode"] = {
                "r": round(float(self._episode_returns[env_idx]), 6),
                "l": int(self._episode_lengths[env_idx]),
                "t": round(now - self._t_start, 6),
            }
        self._episode_returns[done_ids] = 0.0
        self._episode_lengths[done_ids] = 0

    def close(self) -> None:
        self._pool.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(list(self._get_indices(indices)))
        raise AttributeError(f"EnvPoolVecEnv envs expose no attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(f"EnvPoolVecEnv cannot set {attr_name!r} on native envs")

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise AttributeError(f"EnvPoolVecEnv envs have no Python method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))



class _FastPath:
    """Positions in EnvPool's flat state list, for pools the low-level step path covers."""

    def __init__(self, keys: list[str], action_dtype: np.dtype, num_envs: int) -> None:
        index = {key: i for i, key in enumerate(keys)}
        self.obs, self.reward = index["obs"], index["reward"]
        self.done, self.trunc = index["done"], index["trunc"]
        self.info = tuple((key, index["info:" + key]) for key in _STEP_INFO_KEYS if "info:" + key in index)
        self.action_dtype = action_dtype
        self.env_ids = np.arange(num_envs, dtype=np.int32)

    @classmethod
    def build(cls, pool: Any) -> _FastPath | None:
        """``None`` where the pool's layout is not the plain one (single Box obs, one action array)."""
        try:
            keys = list(pool._state_keys)
            action_keys = list(pool._action_keys)
            action_dtype = pool._spec._action_spec[-1][0]
            config = pool.config
        except AttributeError:
            return None
        plain = (
            action_keys == ["env_id", "players.env_id", "action"]
            and config.get("max_num_players", 1) == 1
            and config["batch_size"] == config["num_envs"]
            and {"obs", "reward", "done", "trunc"} <= set(keys)
            and not any(key.startswith("obs:") or key.startswith("obs.") for key in keys)
            and all(hasattr(pool, name) for name in ("_send", "_recv", "_reset", "_check_action"))
        )
        return cls(keys, np.dtype(action_dtype), int(config["num_envs"])) if plain else None


def _info_columns(info: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: info[key].tolist() for key in _STEP_INFO_KEYS if key in info}


def _rows(columns: dict[str, list[Any]], n_rows: int) -> list[dict[str, Any]]:
    """Column lists -> one info dict per env."""
    if not columns:
        return [{} for _ in range(n_rows)]
    keys = tuple(columns)
    return [dict(zip(keys, row, strict=False)) for row in zip(*columns.values(), strict=False)]


def _index_obs(obs: VecEnvObs, env_idx: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[env_idx].copy() for key, value in obs.items()}
    return obs[env_idx].copy()
