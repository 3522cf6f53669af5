"""Brain-inspired parts in plain torch/numpy (no SB3 import), testable on their own.

Each is a small class whose docstring states its update rule and cites its paper (DESIGN.md).
"""

from neuro.dopamine import (
    DOPAMINE_MODULES,
    AsymmetricTD,
    AverageRewardTD,
    DistributionalTD,
    DopamineModule,
    OpponentTD,
    SaturatingTD,
    StandardTD,
)
from neuro.registry import load_object, make_dopamine

__all__ = [
    "DOPAMINE_MODULES",
    "AsymmetricTD",
    "AverageRewardTD",
    "DistributionalTD",
    "DopamineModule",
    "OpponentTD",
    "SaturatingTD",
    "StandardTD",
    "load_object",
    "make_dopamine",
]
