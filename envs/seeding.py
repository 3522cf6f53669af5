"""Per-env seeds: independent streams for every env of every run."""

from __future__ import annotations

import numpy as np


def env_seeds(seed: int, n_envs: int, stream: int = 0) -> list[int]:
    """Per-env seeds from ``SeedSequence``: runs with different seeds share no env stream.

    EnvPool and SB3 both seed env i with ``seed + i``, so the pools of seeds 0 and 1 would share
    all but one stream. Env i of a run keeps its seed whatever ``n_envs`` is (a prefix property
    of ``generate_state``). ``stream`` separates the envs of one run (0: training, 1: evaluation).
    """
    if seed < 0:
        raise ValueError(f"training.seed: must be >= 0, got {seed}")
    entropy = seed if stream == 0 else [seed, stream]
    words = np.random.SeedSequence(entropy).generate_state(n_envs, dtype=np.uint32)
    return [int(word >> 1) for word in words]  # fit a signed 32-bit seed field
