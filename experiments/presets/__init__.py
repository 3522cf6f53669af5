"""The ready experiment files (``*.yaml``), TD-error module experiments (``dopamine/``) and sweep
files (``sweeps/``). ``neurodrive train experiments/presets/highway_dqn.yaml`` runs one."""

from pathlib import Path

PRESETS = Path(__file__).resolve().parent
