"""What ``neurodrive envs`` shows: each scenario's backends, spaces and defaults."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym

from envs.scenarios import ENVPOOL_VERIFIED, SCENARIOS, envpool_available, highway_env_default_config


def describe_scenarios() -> list[dict[str, Any]]:
    import highway_env

    gym.register_envs(highway_env)
    rows = []
    for scenario in SCENARIOS.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(scenario.env_id)
        backends = ["highway-env"]
        if scenario.envpool_id and envpool_available():
            verified = "verified" if scenario.env_id in ENVPOOL_VERIFIED else "unverified"
            backends.append(f"envpool ({verified})")
        description = scenario.description + (f" (superseded by {scenario.newer})" if scenario.newer else "")
        config = highway_env_default_config(scenario.env_id)
        rows.append({
            "id": scenario.env_id,
            "description": description,
            "backends": ", ".join(backends),
            "observation": str(env.observation_space),
            "action": str(env.action_space),
            "duration": config.get("duration"),
        })
        env.close()
    return rows
