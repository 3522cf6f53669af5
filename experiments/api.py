"""NeuroDrive from Python: train an experiment from a file or a mapping, and read a run folder back.

What ``neurodrive train`` does, as functions: the config is validated before any work, the run is
built by the one build path (``experiments.runs.build``) and trained by the same session
(``experiments.runs.session``), so a run started here is the run the command line would make::

    from experiments import load_model, load_run, train

    run = train("experiments/presets/highway_dqn.yaml", overrides={"training.total_timesteps": 2000})
    run.read_evaluations()["final"]["mean_return"]
    model = load_model(run)                    # an SB3 model; load_model(run, "best") for best_model.zip

A bad config raises ``experiments.config.ConfigError`` with the one-line message the command line
prints.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from experiments.config import (
    ConfigError,
    ExperimentConfig,
    apply_override,
    read_yaml_mapping,
    set_path,
    validate_config,
)
from experiments.runs.folder import RunFolder

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["experiment_config", "load_model", "load_run", "train"]

ConfigSource: TypeAlias = str | Path | Mapping[str, Any] | ExperimentConfig
Overrides: TypeAlias = Mapping[str, Any] | Sequence[str]



def experiment_config(config: ConfigSource, overrides: Overrides = ()) -> ExperimentConfig:
    """A validated experiment from a YAML path, a mapping shaped like the file, or a config.

    :param overrides: ``{"training.seed": 3}`` (dotted path -> value, taken as it is) or
        ``["training.seed=3"]`` (``--set`` strings, the value parsed as YAML).
    """
    if isinstance(config, ExperimentConfig):
        raw, source = config.model_dump(mode="json"), "config"
    elif isinstance(config, Mapping):
        raw, source = copy.deepcopy(dict(config)), "config"
    else:
        raw, source = read_yaml_mapping(Path(config)), str(config)
    if isinstance(overrides, str):  # one "a.b=c" string would otherwise be read letter by letter
        raise ConfigError(f"overrides: expected a mapping or a list of 'a.b=c' strings, got {overrides!r}")
    if isinstance(overrides, Mapping):
        for path, value in overrides.items():
            set_path(raw, path, value)
    else:
        for assignment in overrides:
            apply_override(raw, assignment)
    return validate_config(raw, source)


def train(config: ConfigSource, overrides: Overrides = ()) -> RunFolder:
    """Train one experiment to its ``training.total_timesteps`` and return its run folder.

    The folder goes under ``logging.root`` (default ``runs``, relative to the working directory);
    ``overrides={"logging.root": "/tmp/runs"}`` moves it. Ctrl-C saves a checkpoint and raises
    ``experiments.runs.errors.RunInterrupted`` (its ``run_dir`` resumes with ``neurodrive train --resume``).
    """
    from experiments.runs.session import train as train_session  # torch and SB3: only once training

    experiment = experiment_config(config, overrides)
    return RunFolder(train_session(experiment, command=[sys.executable, *sys.argv]))


def load_run(path: str | Path) -> RunFolder:
    """A run folder, checked to be one: ``config.yaml`` is there and valid.

    Its files: ``load_config()``, ``read_meta()`` (``run.json``), ``read_evaluations()`` (``eval.json``:
    ``evaluations``, ``final``, ``best``), ``model_path``, ``best_model_path``.
    """
    run = RunFolder(Path(path))
    run.load_config()  # raises ConfigError naming what is missing
    return run


def load_model(run: RunFolder | str | Path, which: str = "final") -> BaseAlgorithm:
    """The run's final model (``model.zip``) or, with ``which="best"``, ``best_model.zip``, as its
    algorithm's SB3 class with its neuro parts. SB3 zips hold pickles: load only folders you trust."""
    folder = run if isinstance(run, RunFolder) else load_run(run)
    return folder.load_model(folder.load_config(), which)
