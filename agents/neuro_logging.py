"""What the agents log about their neuro parts, under ``neuro/<kind>/<key>`` in TensorBoard: every
part's ``stats()`` for every algorithm, and the TD errors and dopamine signals of DQN's and PPO's
updates (``neuro/dopamine/``)."""

from __future__ import annotations

from collections import deque
from typing import Any

import torch as th
from stable_baselines3.common.logger import Logger

_TEXT_FORMATS = ("stdout", "log", "json", "csv")


def record_part_stats(logger: Logger, parts: dict[str, Any]) -> None:
    """Each part's ``stats()`` under ``neuro/<kind>/<key>``, and how many signals a modulator ignored."""
    for kind, part in parts.items():
        for key, value in part.stats().items():
            logger.record(f"neuro/{kind}/{key}", value)
        ignored = getattr(part, "ignored_signals", 0)
        if ignored:
            logger.record(f"neuro/{kind}/ignored_signals", ignored)


class NeuroLog:
    """Collects the TD errors and dopamine signals of recent updates; ``record`` writes their
    statistics (under ``neuro/dopamine/``).

    Recording only when the logger is about to write keeps the per-update cost to two appends.

    :param max_batches: how many recent updates the statistics cover.
    """

    def __init__(self, max_batches: int = 256) -> None:
        self._td_errors: deque[th.Tensor] = deque(maxlen=max_batches)
        self._signals: deque[th.Tensor] = deque(maxlen=max_batches)

    def add(self, td_error: th.Tensor, dopamine_signal: th.Tensor) -> None:
        self._td_errors.append(td_error.detach())
        self._signals.append(dopamine_signal.detach())

    def record(self, logger: Logger) -> None:
        """Record the statistics of the collected updates, and start over."""
        if self._td_errors:
            td_error = th.cat([t.reshape(-1) for t in self._td_errors])
            signal = th.cat([s.reshape(-1) for s in self._signals])
            self._td_errors.clear()
            self._signals.clear()
            logger.record("neuro/dopamine/td_error_mean", td_error.mean().item())
            logger.record("neuro/dopamine/td_error_std", td_error.std().item() if td_error.numel() > 1 else 0.0)
            logger.record("neuro/dopamine/fraction_positive", (td_error > 0).float().mean().item())
            logger.record("neuro/dopamine/signal_mean", signal.mean().item())
            logger.record("neuro/dopamine/signal_std", signal.std().item() if signal.numel() > 1 else 0.0)
            logger.record("neuro/dopamine/signal", signal, exclude=_TEXT_FORMATS)  # a TensorBoard histogram
