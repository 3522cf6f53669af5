"""The config toolkit (``toolkit``: strict models, YAML, dotted paths, one error format) and the
experiment schema (``experiment``). Sweep and comparison files build their schemas on the same toolkit.

Names load on first use: the CLI imports ``toolkit`` alone to catch ``ConfigError``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("AgentConfig", "EnvConfig", "ExperimentConfig", "LoggingConfig", "TrainingConfig",
                     "check_env_config_keys", "load_config", "save_config", "validate_config"),
                    "experiments.config.experiment"),
    "ConfigError": "experiments.config.errors",
    **dict.fromkeys(("StrictModel", "apply_override", "did_you_mean", "format_validation_error", "parse_yaml",
                     "read_yaml_mapping", "set_path"), "experiments.config.toolkit"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'experiments.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
