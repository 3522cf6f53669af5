"""Every kind of neuro part, by its key under ``neuro:`` in an experiment file.

Adding a kind: its module under ``neuro/`` with a ``Registry``, one line here, and the agent hook
that consumes it (the agent lists the kind in ``neuro_parts``). Config, CLI, run loop and bench
read this mapping and need no change.
"""

from __future__ import annotations

from typing import Any

from neuro import backpropamine as _backpropamine  # noqa: F401  (registers the network part "backpropamine")
from neuro.dopamine import DOPAMINE_MODULES
from neuro.modulation import DISCOUNT_MODULATORS, EXPLORATION_MODULATORS, LEARNING_RATE_MODULATORS
from neuro.networks import NETWORKS
from neuro.registry import Registry, SpecError
from neuro.snn import conv as _conv_networks  # noqa: F401  (registers the network parts "cnn" and "spiking_cnn")
from neuro.snn import network as _spiking_network  # noqa: F401  (registers the network part "spiking")

__all__ = ["NEURO_PARTS", "make_neuro", "part_registry"]

NEURO_PARTS: dict[str, Registry[Any]] = {
    "dopamine": DOPAMINE_MODULES,  # TD error -> dopamine signal (neuro.dopamine)
    "learning_rate": LEARNING_RATE_MODULATORS,  # acetylcholine (neuro.modulation)
    "exploration": EXPLORATION_MODULATORS,  # noradrenaline: epsilon or the entropy coefficient
    "discount": DISCOUNT_MODULATORS,  # serotonin: gamma
}
# Kinds whose registry has no default are optional: an agent without one runs as its algorithm does.

# Network parts live inside the policy, by their key under ``agent.policy_kwargs``: each is built by the
# algorithm's network policy for the sizes SB3 gives the MLP it replaces (``neuro.networks``).
POLICY_PARTS: dict[str, Registry[Any]] = {
    "network": NETWORKS,  # the decision network: Q-network, quantile network or actor
    "value_network": NETWORKS,  # PPO/A2C's critic (SB3's MLP when absent)
}


def part_registry(kind: str) -> Registry[Any]:
    """The registry of one kind; the error lists the kinds there are."""
    try:
        return NEURO_PARTS[kind]
    except KeyError:
        raise SpecError(f"neuro.{kind}: unknown neuro part; allowed: {', '.join(NEURO_PARTS)}") from None


def make_neuro(neuro: dict[str, Any] | None, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Build the parts of ``kinds`` (instances pass through); a kind not given gets its registry's
    default, or is absent when the registry has none (the modulators)."""
    neuro = dict(neuro or {})
    unknown = [kind for kind in neuro if kind not in kinds]
    if unknown:
        raise SpecError(f"neuro.{unknown[0]}: this agent takes no such part; it takes: {', '.join(kinds) or 'none'}")
    return {kind: part_registry(kind).make(neuro.get(kind)) for kind in kinds
            if neuro.get(kind) is not None or part_registry(kind).default is not None}
