"""Paths shared by the tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments" / "presets"  # the ready YAML files
