"""Every upgrade of saved state, in one place: a model saved by an older version loads and goes on
with the rule it ran.

SB3's ``save`` pickles the neuro parts with the model and stores the policy's constructor
arguments, so what a part or a policy keeps is a file format. A change to it adds a step here,
with a test in ``tests/neuro/test_migrations.py`` that the old state still loads:

- ``upgrade(part, state)`` is every part's ``__setstate__`` (the bases ``DopamineModule`` and
  ``Modulator`` call it): the steps of the part's class and of its bases, most derived first, then
  the state is set;
- ``grouped_parts`` and ``acting_weights_of_channel`` upgrade what the agents saved.

This module imports no part module (they import it): a step reaches its part's module through the
part itself.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch

Step = Callable[[Any, dict[str, Any]], dict[str, Any]]


def _home(part: Any) -> Any:
    """The module that defines the part's class (loaded: the part is one of its instances)."""
    return sys.modules[type(part).__module__]


def _dopamine_loss(part: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A module pickled before loss shapes existed learned with the squared loss (``standard`` with
    SB3's Huber loss)."""
    if "loss" in state:
        return state
    return {**state, "loss": "huber" if type(part).__qualname__ == "StandardTD" else "squared"}


def _asymmetric_gains(part: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The sign gains follow from kappa (saved before they were attributes)."""
    kappa = state["kappa"]
    return {**state, "gain_positive": 1.0 - kappa, "gain_negative": 1.0 + kappa}


def _saturating_learned_biased(part: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A ``saturating`` module saved before the recording/learning split learned on the compressed
    signal: it comes back as the ``biased_saturating`` rule it ran."""
    if "loss" not in state:
        part.__class__ = _home(part).BiasedSaturatingTD
    return state


def _distributional_acting_and_loss(part: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A module saved before acting statistics acted on its tau = 0.5 channel; one saved with the
    per-pair Huber loss (the old default) continues with its code's exact loss, and a quantile
    code's CVaR acts on the exact CVaR of its atoms."""
    home = _home(part)
    if "acting_weights" not in state:
        state = {**state, "acting": "mean" if state["code"] == "expectile" else "tau=0.5",
                 "loss": "squared" if state["code"] == "expectile" else "absolute",
                 "_tau": torch.tensor(state["taus"], dtype=torch.float64)}
        state.pop("acting_channel", None)
    if state.get("loss") == "huber":
        warnings.warn(f"neuro.dopamine.loss: a distributional module saved with the per-pair Huber loss "
                      f"now learns with {home.EXACT_LOSS[state['code']]}, its code's exact loss", stacklevel=4)
    return {**state, "loss": home.EXACT_LOSS[state["code"]],
            "acting_weights": home.acting_weights(state["taus"], state["code"], state["acting"])}


def _volatility_own_filter(part: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A modulator saved before its own filter (issue 21) starts the filter level with the learner."""
    return {"_lag": 0.0, "_pending_error": 0.0, "_applied_rate": 0.0, **state}


# The steps of each class ("module:qualname"), applied to its instances and its subclasses' instances.
STEPS: dict[str, tuple[Step, ...]] = {
    "neuro.dopamine:DopamineModule": (_dopamine_loss,),
    "neuro.dopamine:AsymmetricTD": (_asymmetric_gains,),
    "neuro.dopamine:SaturatingTD": (_saturating_learned_biased,),
    "neuro.dopamine:DistributionalTD": (_distributional_acting_and_loss,),
    "neuro.modulation:VolatilityLearningRate": (_volatility_own_filter,),
}


def upgrade(part: Any, state: dict[str, Any]) -> None:
    """Set a pickled part's ``state`` after the steps of its class and bases (most derived first)."""
    for klass in type(part).__mro__:
        for step in STEPS.get(f"{klass.__module__}:{klass.__qualname__}", ()):
            state = step(part, state)
    part.__dict__.update(state)


def grouped_parts(attributes: dict[str, Any], neuro: dict[str, Any]) -> dict[str, Any]:
    """An agent's parts (``neuro``) with the TD-error module of a model saved before the parts were
    grouped under ``neuro``: SB3's ``load`` put it in the instance dict (``attributes``) as ``dopamine``,
    where it is removed."""
    saved = attributes.pop("dopamine", None)
    return neuro if saved is None else {**neuro, "dopamine": saved}


def acting_weights_of_channel(n_channels: int, acting_channel: int | None) -> tuple[float, ...]:
    """A policy saved before acting statistics named one ``acting_channel`` (default 0): all weight on it."""
    channel = 0 if acting_channel is None else acting_channel
    return tuple(1.0 if i == channel else 0.0 for i in range(n_channels))
