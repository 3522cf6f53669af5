"""Experiments: the ``neurodrive`` command line and everything it runs, grouped by job.

``cli`` (commands), ``config`` (the config toolkit and the experiment schema), ``runs`` (the one
build path, training session, checkpoints, run folders, evaluation), ``sweeps`` (Optuna),
``analysis`` (statistics, backend fidelity), ``bench`` (benchmarks) and ``presets`` (the ready
YAML files).

From Python (``experiments.api``)::

    from experiments import load_model, load_run, train

    run = train("experiments/presets/highway_dqn.yaml", overrides={"training.total_timesteps": 2000})
    model = load_model(load_run(run.path))

Names load on first use, so the CLI's light commands start without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("experiment_config", "load_model", "load_run", "train"), "experiments.api"),
    **dict.fromkeys(("ConfigError", "ExperimentConfig", "load_config"), "experiments.config"),
    "RunFolder": "experiments.runs.folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'experiments' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
