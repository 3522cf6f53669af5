"""SB3 and sb3-contrib algorithms that take neuromodulators (``neuro.learning_rate``,
``neuro.exploration``, ``neuro.discount``) and nothing else: without one they are the stock class.

Which algorithm takes which modulator follows from the meta-parameters it has: every algorithm has a
learning rate and a discount; DQN and QR-DQN explore by epsilon, PPO, A2C and RecurrentPPO by their
entropy coefficient; SAC and TQC learn their entropy coefficient themselves and TD3 explores by
action noise, so they take no exploration modulator. Modulators that read TD errors need an agent
that hands them over: DQN and PPO (their dopamine module's signal), A2C and RecurrentPPO (the
one-step errors behind their GAE advantages).
"""

from __future__ import annotations

from typing import ClassVar

from sb3_contrib import QRDQN, TQC, RecurrentPPO
from stable_baselines3 import A2C, SAC, TD3

from agents.neuro_agent import OffPolicyNeuroAgent, OnPolicyNeuroAgent

__all__ = ["NeuroA2C", "NeuroQRDQN", "NeuroRecurrentPPO", "NeuroSAC", "NeuroTD3", "NeuroTQC"]

ALL_MODULATORS = ("learning_rate", "exploration", "discount")
NO_EXPLORATION = ("learning_rate", "discount")


class NeuroA2C(OnPolicyNeuroAgent, A2C):
    """A2C with neuromodulators (``neuro``); all other arguments are SB3's."""

    neuro_parts: ClassVar[tuple[str, ...]] = ALL_MODULATORS
    exposes_td_errors: ClassVar[bool] = True


class NeuroRecurrentPPO(OnPolicyNeuroAgent, RecurrentPPO):
    """RecurrentPPO with neuromodulators (``neuro``); all other arguments are sb3-contrib's. A policy that
    computes TD errors itself (``agents.recurrent_policies``: the dopamine third factor) gets ``gamma``."""

    neuro_parts: ClassVar[tuple[str, ...]] = ALL_MODULATORS
    exposes_td_errors: ClassVar[bool] = True

    def _setup_model(self) -> None:
        if "gamma" in getattr(self.policy_class, "takes_algorithm", ()):
            self.policy_kwargs = {**self.policy_kwargs, "gamma": self.gamma}
        super()._setup_model()


class NeuroQRDQN(OffPolicyNeuroAgent, QRDQN):
    """QR-DQN with neuromodulators (``neuro``); all other arguments are sb3-contrib's."""

    neuro_parts: ClassVar[tuple[str, ...]] = ALL_MODULATORS


class NeuroSAC(OffPolicyNeuroAgent, SAC):
    """SAC with learning-rate and discount modulators (``neuro``); all other arguments are SB3's."""

    neuro_parts: ClassVar[tuple[str, ...]] = NO_EXPLORATION


class NeuroTD3(OffPolicyNeuroAgent, TD3):
    """TD3 with learning-rate and discount modulators (``neuro``); all other arguments are SB3's."""

    neuro_parts: ClassVar[tuple[str, ...]] = NO_EXPLORATION


class NeuroTQC(OffPolicyNeuroAgent, TQC):
    """TQC with learning-rate and discount modulators (``neuro``); all other arguments are sb3-contrib's."""

    neuro_parts: ClassVar[tuple[str, ...]] = NO_EXPLORATION
