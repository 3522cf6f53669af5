"""What each update logs about the TD error and the dopamine signal it became."""

from __future__ import annotations

from collections import deque

import torch as th
from stable_baselines3.common.logger import Logger

from neuro.dopamine import DopamineModule

_TEXT_FORMATS = ("stdout", "log", "json", "csv")


class DopamineLog:
    """Collects the TD errors and signals of recent updates; ``record`` writes their statistics.

    Recording only when the logger is about to write keeps the per-update cost to two appends.

    :param max_batches: how many recent updates the statistics cover.
    """

    def __init__(self, max_batches: int = 256) -> None:
        self._td_errors: deque[th.Tensor] = deque(maxlen=max_batches)
        self._signals: deque[th.Tensor] = deque(maxlen=max_batches)

    def add(self, td_error: th.Tensor, dopamine_signal: th.Tensor) -> None:
        self._td_errors.append(td_error.detach())
        self._signals.append(dopamine_signal.detach())

    def record(self, logger: Logger, module: DopamineModule) -> None:
        """Record the statistics of the collected updates and start over."""
        if not self._td_errors:
            return
        td_error = th.cat([t.reshape(-1) for t in self._td_errors])
        signal = th.cat([s.reshape(-1) for s in self._signals])
        self._td_errors.clear()
        self._signals.clear()
        logger.record("dopamine/td_error_mean", td_error.mean().item())
        logger.record("dopamine/td_error_std", td_error.std().item() if td_error.numel() > 1 else 0.0)
        logger.record("dopamine/fraction_positive", (td_error > 0).float().mean().item())
        logger.record("dopamine/signal_mean", signal.mean().item())
        logger.record("dopamine/signal_std", signal.std().item() if signal.numel() > 1 else 0.0)
        logger.record("dopamine/signal", signal, exclude=_TEXT_FORMATS)  # a TensorBoard histogram
        for key, value in module.stats().items():
            logger.record(f"dopamine/{key}", value)
