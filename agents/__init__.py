"""SB3 algorithms wired to NeuroDrive's parts: the algorithm registry and training callbacks."""

from agents.callbacks import DrivingEvalCallback, HParamsCallback
from agents.registry import ALGORITHMS, build, get_algorithm, register_algorithm

__all__ = [
    "ALGORITHMS",
    "DrivingEvalCallback",
    "HParamsCallback",
    "build",
    "get_algorithm",
    "register_algorithm",
]
