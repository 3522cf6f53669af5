"""The ``heartbeat:`` block of sweep and comparison files: how a dead worker's trial is found."""

from __future__ import annotations

from pydantic import NonNegativeInt, PositiveInt, model_validator

from experiments.config import StrictModel


class HeartbeatSpec(StrictModel):
    """How a dead worker's trial is found (RDB storages; the journal checks worker liveness)."""

    interval: PositiveInt = 30  # seconds between a running trial's heartbeats
    grace_period: PositiveInt = 120  # a trial silent this long is failed and retried
    max_retry: NonNegativeInt = 2

    @model_validator(mode="after")
    def _grace_exceeds_interval(self) -> HeartbeatSpec:
        if self.grace_period <= self.interval:
            raise ValueError(f"grace_period ({self.grace_period}) must exceed interval ({self.interval})")
        return self
