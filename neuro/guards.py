"""Numerical guards: stop at the update where a NaN or inf first appears, naming what and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch


class NonFiniteError(FloatingPointError):
    """A learning quantity became NaN or infinite."""


def check_finite(name: str, value: torch.Tensor | np.ndarray | float, step: int) -> None:
    """Raise ``NonFiniteError`` naming ``name`` and ``step`` if ``value`` holds a NaN or inf."""
    import numpy as np  # here, so the CLI can catch NonFiniteError without importing numpy or torch
    import torch

    if isinstance(value, torch.Tensor):
        finite = bool(torch.isfinite(value).all())
    else:
        finite = bool(np.isfinite(value).all())
    if not finite:
        raise NonFiniteError(f"non-finite {name} (NaN or inf) at step {step}; the run stopped there")
