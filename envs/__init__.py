"""Driving scenarios as SB3 VecEnvs, on EnvPool's native ports or on highway-env itself."""

from envs.factory import (
    BACKENDS,
    BackendChoice,
    choose_backend,
    env_seeds,
    make_highway_env,
    make_vec_env,
)
from envs.scenarios import ENVPOOL_VERIFIED, SCENARIOS, BackendConfigError, Scenario, get_scenario

__all__ = [
    "BACKENDS",
    "ENVPOOL_VERIFIED",
    "SCENARIOS",
    "BackendChoice",
    "BackendConfigError",
    "Scenario",
    "choose_backend",
    "env_seeds",
    "get_scenario",
    "make_highway_env",
    "make_vec_env",
]
