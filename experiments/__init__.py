"""Experiments: the ``neurodrive`` command line and everything it runs, grouped by job.

``cli`` (commands), ``config`` (the config toolkit and the experiment schema), ``runs`` (the one
build path, training session, checkpoints, run folders, evaluation), ``sweeps`` (Optuna),
``analysis`` (statistics, backend fidelity), ``bench`` (benchmarks) and ``presets`` (the ready
YAML files).
"""
