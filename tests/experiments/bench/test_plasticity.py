"""The plasticity bench: each pair is a plastic preset and its twin differing only in what makes it plastic
(a backpropamine network's ``plastic``, a spiking network's ``agent.snn.plasticity``), and the section times
both on a tiny budget and prints their ratio."""

import math

from rich.console import Console

from experiments.bench.plasticity import PAIRS, SECTION, PlasticitySettings, pair_config, run_plasticity_section
from experiments.bench.section import BenchOptions

TINY = ("env.n_envs=1", "agent.hyperparameters.n_steps=32", "agent.hyperparameters.batch_size=32",
        "agent.hyperparameters.n_epochs=1", "agent.policy_kwargs.net_arch=[8]")


def pop_plasticity(config: dict) -> bool:
    """Whether ``config`` (a dumped experiment) is plastic, with the field that says so removed."""
    network = config["agent"]["policy_kwargs"].get("network")
    if network is not None and "plastic" in network:
        return network.pop("plastic")
    return (config["agent"].get("snn") or {}).pop("plasticity", None) is not None


def test_each_pair_differs_only_in_plasticity():
    assert len(PAIRS) == 2  # backpropamine and the R-STDP readout
    for _, plastic, twin in PAIRS:
        ours, theirs = (pair_config(name, 0).model_dump() for name in (plastic, twin))
        assert pop_plasticity(ours) is True and pop_plasticity(theirs) is False
        ours.pop("name"), theirs.pop("name")
        assert ours == theirs


def test_the_section_times_each_pair_on_a_tiny_budget():
    console = Console(record=True, width=140)
    figures = run_plasticity_section(BenchOptions(quick=True, repeats=2), console,
                                     PlasticitySettings(warmup_steps=32, steps=64, repeats=1), TINY)
    assert figures["settings"]["repeats"] == 2  # --repeats wins over the settings
    assert [row["label"] for row in figures["rows"]] == [label for label, _, _ in PAIRS]
    for row in figures["rows"]:
        assert len(row["plastic_rates"]) == len(row["twin_rates"]) == 2
        assert all(rate > 0 for rate in row["plastic_rates"] + row["twin_rates"])
        assert math.isfinite(figures["ratios"][row["label"]])
    SECTION.print(figures, BenchOptions(quick=True), console)
    shown = console.export_text()
    assert "plastic / twin" in shown and all(row["label"] in shown for row in figures["rows"])
