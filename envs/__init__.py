"""Driving scenarios as SB3 VecEnvs, on EnvPool's native ports or on highway-env itself.

Names load on first use, so ``import envs.scenarios`` (the CLI's ``envs`` command, config
validation) does not import SB3 or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackendChoice": "envs.factory",
    "choose_backend": "envs.factory",
    "make_highway_env": "envs.factory",
    "make_vec_env": "envs.factory",
    "env_seeds": "envs.seeding",
    "DrivingMetrics": "envs.evaluation",
    "evaluate_driving": "envs.evaluation",
    "BACKEND_CHOICES": "envs.scenarios",
    "ENVPOOL_VERIFIED": "envs.scenarios",
    "SCENARIOS": "envs.scenarios",
    "BackendConfigError": "envs.scenarios",
    "Scenario": "envs.scenarios",
    "get_scenario": "envs.scenarios",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'envs' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
