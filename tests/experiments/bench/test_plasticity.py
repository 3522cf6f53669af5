"""The plasticity bench: each pair is a plastic preset and its twin differing only in ``plastic``, and the
section times both on a tiny budget and prints their ratio."""

import math

from rich.console import Console

from experiments.bench.plasticity import PAIRS, SECTION, PlasticitySettings, pair_config, run_plasticity_section
from experiments.bench.section import BenchOptions

TINY = ("env.n_envs=1", "agent.hyperparameters.n_steps=32", "agent.hyperparameters.batch_size=32",
        "agent.hyperparameters.n_epochs=1", "agent.policy_kwargs.net_arch=[8]")


def test_each_pair_differs_only_in_plasticity():
    for _, plastic, twin in PAIRS:
        ours, theirs = (pair_config(name, 0).model_dump() for name in (plastic, twin))
        assert ours["agent"]["policy_kwargs"]["network"].pop("plastic") is True
        assert theirs["agent"]["policy_kwargs"]["network"].pop("plastic") is False
        ours.pop("name"), theirs.pop("name")
        assert ours == theirs


def test_the_section_times_each_pair_on_a_tiny_budget():
    console = Console(record=True, width=140)
    figures = run_plasticity_section(BenchOptions(quick=True, repeats=2), console,
                                     PlasticitySettings(warmup_steps=32, steps=64, repeats=1), TINY)
    assert figures["settings"]["repeats"] == 2  # --repeats wins over the settings
    (row,) = figures["rows"]
    assert len(row["plastic_rates"]) == len(row["twin_rates"]) == 2
    assert all(rate > 0 for rate in row["plastic_rates"] + row["twin_rates"])
    assert math.isfinite(figures["ratios"][row["label"]])
    SECTION.print(figures, BenchOptions(quick=True), console)
    shown = console.export_text()
    assert "plastic / twin" in shown and row["label"] in shown
