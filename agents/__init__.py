"""SB3 algorithms wired to NeuroDrive's parts: the algorithm registry and ``build``
(``agents.registry``), DQN and PPO with neuro parts (``dopamine_dqn``, ``dopamine_ppo``), the other
algorithms with modulators (``neuro_algorithms``), spiking policies, feature extractors, training
callbacks and neuro logging.

The algorithms are SB3's classes with one more argument, ``neuro`` (the ``neuro:`` section of a config)::

    from agents import DopamineDQN
    from envs import make_vec_env

    model = DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", n_envs=4),
                        neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}})

Names load on first use, so ``import agents`` does not import SB3 or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DopamineDQN": "agents.dopamine_dqn",
    "DopaminePPO": "agents.dopamine_ppo",
    **dict.fromkeys(("NeuroA2C", "NeuroQRDQN", "NeuroRecurrentPPO", "NeuroSAC", "NeuroTD3", "NeuroTQC"),
                    "agents.neuro_algorithms"),
    "NeuroAgent": "agents.neuro_agent",
    **dict.fromkeys(("ALGORITHMS", "build", "get_algorithm", "register_algorithm"), "agents.registry"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
