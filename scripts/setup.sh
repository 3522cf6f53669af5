#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with NeuroDrive and its dev tools (the `dev` extra:
# pytest, and ruff, mypy and PyYAML's stubs at the versions pyproject.toml pins, which .ci/run runs).
# torch==2.13.0 goes first: on these machines it is the CPU build already on disk, and the
# project's torch range is then satisfied (otherwise pip would fetch a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -c "import envs, agents, experiments, torch; print('neurodrive ready, torch', torch.__version__)"
