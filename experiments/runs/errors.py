"""How a run stops other than by finishing; light, so the CLI catches them without importing torch."""

from __future__ import annotations

from pathlib import Path


class RunInterrupted(Exception):  # noqa: N818  (a stop request, not an error)
    """Raised after the interrupt checkpoint is saved, to unwind ``learn``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step = step
        self.run_dir: Path | None = None  # set by the run loop


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the previous one is kept."""
