"""The ``heartbeat:`` block of sweep and comparison files: how a dead worker's trial is found."""

from __future__ import annotations

from pydantic import Field, model_validator

from experiments.config import StrictModel


class HeartbeatSpec(StrictModel):
    """How a dead worker's trial is found (RDB storages; the journal checks worker liveness)."""

    interval: int = Field(default=30, ge=1, le=3600)  # seconds between a running trial's heartbeats
    grace_period: int = Field(default=120, ge=2, le=86_400)  # a trial silent this long is failed and retried
    max_retry: int = Field(default=2, ge=0, le=100)  # a trial that dies more often is a bug, not bad luck

    @model_validator(mode="after")
    def _grace_exceeds_interval(self) -> HeartbeatSpec:
        if self.grace_period <= self.interval:
            raise ValueError(f"grace_period ({self.grace_period}) must exceed interval ({self.interval})")
        return self
