"""Brain-inspired parts in plain torch/numpy (no SB3 import), testable on their own.

Each is a small class whose docstring states its update rule and cites its paper
(``docs/architecture.md`` lists them). ``neuro.parts.NEURO_PARTS`` maps each kind's key under
``neuro:`` to its registry. Names load on first use, so a light import (``neuro.guards``'s error
type) does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("NEURO_PARTS", "make_neuro"), "neuro.parts"),
    **dict.fromkeys(("Registry", "SpecError"), "neuro.registry"),
    **dict.fromkeys(("DOPAMINE_MODULES", "DopamineModule"), "neuro.dopamine"),
    **dict.fromkeys(("MODULATOR_REGISTRIES", "Modulator"), "neuro.modulation"),
    "NonFiniteError": "neuro.guards",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'neuro' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
