"""SB3 algorithms wired to NeuroDrive's parts: the algorithm registry (``agents.registry``), the
DQN and PPO with neuro parts (``dopamine_dqn``, ``dopamine_ppo``), feature extractors and callbacks.

Names load on first use, so importing one module does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ALGORITHMS": "agents.registry",
    "build": "agents.registry",
    "get_algorithm": "agents.registry",
    "register_algorithm": "agents.registry",
    "DrivingEvalCallback": "agents.callbacks",
    "HParamsCallback": "agents.callbacks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
