"""``env.wrappers``: the robustness wrappers of ``envs.robustness`` as a registry (a user's own
``VecEnvWrapper`` by dotted path), their specs checked at config load and built for ``make_vec_env``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from envs.factory import VecEnvTransform
from envs.robustness import WHERE, WRAPPERS
from neuro.registry import Registry, SpecError

# mypy refuses an abstract class as type[T] (python/mypy#4717); the registry only checks subclasses against it.
ROBUSTNESS_WRAPPERS: Registry[VecEnvWrapper] = Registry("wrapper", VecEnvWrapper, where=WHERE)  # type: ignore[type-abstract]

ROBUSTNESS_WRAPPERS.entries.update(WRAPPERS)


class _SpecCheckVecEnv(VecEnv):
    """The ``venv`` a wrapper spec is checked with at config load, before any env exists; never stepped."""

    def __init__(self) -> None:
        super().__init__(1, spaces.Box(-np.inf, np.inf, (1,)), spaces.Discrete(1))

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [None]  # VecEnv's constructor reads render_mode

    def _not_an_env(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the stand-in VecEnv of a wrapper spec check cannot run")

    reset = step_async = step_wait = close = set_attr = env_method = env_is_wrapped = _not_an_env


def _registry_at(index: int) -> Registry[VecEnvWrapper]:
    """``ROBUSTNESS_WRAPPERS`` whose errors name item ``index`` of ``env.wrappers`` (same entries)."""
    registry = copy.copy(ROBUSTNESS_WRAPPERS)
    registry.where = f"{ROBUSTNESS_WRAPPERS.where}.{index}"
    return registry


def check_wrappers(specs: Sequence[dict[str, Any]]) -> None:
    """Fail with a ``SpecError`` naming the item and field of the first bad spec; builds no env."""
    for index, spec in enumerate(specs):
        _registry_at(index).check(spec, given={"venv": _SpecCheckVecEnv()})


def robustness_wrappers(specs: Sequence[dict[str, Any]]) -> list[VecEnvTransform]:
    """``env.wrappers`` specs as ``make_vec_env`` wrappers, applied in order; a wrapper that does not fit
    the env (``sensor_dropout`` on an occupancy grid) fails with a ValueError naming its item."""

    def transform(index: int, spec: dict[str, Any]) -> VecEnvTransform:
        registry = _registry_at(index)

        def wrap(venv: VecEnv) -> VecEnv:
            try:
                return registry.make(spec, venv=venv)
            except SpecError:
                raise
            except ValueError as error:
                message = str(error).removeprefix(f"{ROBUSTNESS_WRAPPERS.where}:").lstrip()
                raise ValueError(f"{registry.where}: {message}") from None

        return wrap

    return [transform(index, dict(spec)) for index, spec in enumerate(specs)]
