"""The plasticity comparisons (other drivers drawn per episode) run quick end to end: every cell built with
its variant's network and evaluated under every condition on highway-env, each condition's episodes drawn
from that condition's mix."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from experiments.compare.spec import load_comparison
from tests_support import EXPERIMENTS, REPO

COMPARISONS = [EXPERIMENTS / "compare" / "plasticity.yaml", EXPERIMENTS / "compare" / "plasticity_spiking.yaml"]
# What each variant's saved config must build: its algorithm and its plastic part.
ALGO = {"lstm": "recurrent_ppo", "nonplastic": "recurrent_ppo", "backpropamine": "recurrent_ppo", "mlp_ppo": "ppo",
        "surrogate": "ppo", "rstdp": "ppo"}
HELD_OUT = {"train_mix": {"idm", "aggressive", "defensive"}, "aggressive": {"aggressive"},
            "defensive": {"defensive"}, "merge": {"aggressive"}, "roundabout": {"aggressive"}}


@pytest.mark.slow
@pytest.mark.parametrize("path", COMPARISONS, ids=lambda path: path.stem)
def test_the_quick_plasticity_comparison_runs_with_each_conditions_mix(path, tmp_path):
    comparison = load_comparison(path, quick=True)
    assert set(comparison.conditions) == set(HELD_OUT)
    command = [sys.executable, "-m", "experiments.cli", "compare", str(path), "--quick", "--workers", "2"]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's code in the worker processes
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for cell in comparison.cells():
        run_dir = tmp_path / comparison.cell_dir(cell)
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["agent"]["algo"] == ALGO[cell.variant]
        network = (saved["agent"].get("policy_kwargs") or {}).get("network") or {}
        assert network.get("plastic") == {"backpropamine": True, "nonplastic": False}.get(cell.variant)
        plasticity = (saved["agent"].get("snn") or {}).get("plasticity") or {}
        assert plasticity.get("type") == ("rstdp" if cell.variant == "rstdp" else None)
        assert saved["env"]["drivers"] == {"idm": 0.5, "aggressive": 0.25, "defensive": 0.25}
        for condition, allowed in HELD_OUT.items():
            record = json.loads((run_dir / f"compare-{condition}.json").read_text())
            assert record["backend"] == "highway-env", (cell.label, condition)
            drivers = record["episodes"]["drivers"]
            assert len(drivers) == record["summary"]["n_episodes"] == comparison.evaluation.episodes
            assert set(drivers) <= allowed, (cell.label, condition, drivers)
            assert sum(entry["n_episodes"] for entry in record["summary"]["by_driver"].values()) == len(drivers)
    results = json.loads((tmp_path / comparison.folder / "report" / "results.json").read_text())
    assert len(results["rows"]) == len(comparison.cells()) * len(HELD_OUT)
