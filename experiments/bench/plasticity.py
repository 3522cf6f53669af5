"""The plasticity bench: training throughput (env steps/s) of each plastic agent against its non-plastic
twin, side by side in one run.

``PAIRS`` lists (label, plastic preset, twin preset), paths under ``experiments/presets/``; each pair is
built through the one build path on the native backend with the bench's seed, warmed up, then timed in
interleaved repeats (plastic, twin, twin, plastic, ...) so drifting machine load falls on both alike. The
figure is the ratio of the medians: what the plasticity costs in training speed.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from experiments.bench.common import fmt_rate, peak_rss_mib, spread
from experiments.bench.neuro import timed_learn
from experiments.bench.section import BenchOptions
from experiments.config import ExperimentConfig, load_config
from experiments.presets import PRESETS
from experiments.runs.build import build_run, resolve_backend

# (label, plastic preset, its non-plastic twin); a new plastic agent adds its pair here.
PAIRS: list[tuple[str, str, str]] = [
    ("backpropamine (RecurrentPPO)", "plasticity/recurrent_ppo_backpropamine.yaml",
     "plasticity/recurrent_ppo_nonplastic.yaml"),
    ("rstdp readout (PPO, spiking)", "plasticity/ppo_rstdp.yaml", "plasticity/ppo_spiking_surrogate.yaml"),
]


@dataclass(frozen=True)
class PlasticitySettings:
    """Steps of the warm-up and of each timed repeat (per model), and the repeats."""

    warmup_steps: int = 1024
    steps: int = 4096
    repeats: int = 3


PLASTICITY_FULL = PlasticitySettings()
PLASTICITY_QUICK = PlasticitySettings(warmup_steps=256, steps=512, repeats=1)


@dataclass
class PairRow:
    label: str
    plastic: str
    twin: str
    plastic_rates: list[float]
    twin_rates: list[float]

    @property
    def ratio(self) -> float:
        """The plastic agent's median steps/s over the twin's."""
        return statistics.median(self.plastic_rates) / statistics.median(self.twin_rates)


def pair_config(name: str, seed: int, overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    """A shipped preset on the native backend with the bench's seed, one torch thread."""
    config = load_config(PRESETS / name, [f"training.seed={seed}", "env.backend=envpool",
                                          "training.torch_threads=1", *overrides])
    return resolve_backend(config)[0]


def bench_pair(label: str, plastic: str, twin: str, settings: PlasticitySettings, console: Console,
               overrides: tuple[str, ...] = ()) -> PairRow:
    torch.set_num_threads(1)
    models = {name: build_run(pair_config(name, 0, overrides), with_eval_env=False).model for name in (plastic, twin)}
    rates: dict[str, list[float]] = {plastic: [], twin: []}
    try:
        for model in models.values():
            model.learn(settings.warmup_steps)
        for repeat in range(settings.repeats):
            order = (plastic, twin) if repeat % 2 == 0 else (twin, plastic)
            for name in order:
                rates[name].append(timed_learn(models[name], settings.steps))
                console.print(f"  {label}: {name} {rates[name][-1]:,.0f} steps/s", style="dim")
    finally:
        for env in (model.get_env() for model in models.values()):
            if env is not None:
                env.close()
    return PairRow(label, plastic, twin, rates[plastic], rates[twin])


def run_plasticity_section(options: BenchOptions, console: Console, settings: PlasticitySettings | None = None,
                           overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every pair of ``PAIRS``; ``settings`` and ``overrides`` (``--set`` items on both presets) for tests."""
    settings = settings or (PLASTICITY_QUICK if options.quick else PLASTICITY_FULL)
    if options.repeats is not None:
        settings = PlasticitySettings(settings.warmup_steps, settings.steps, options.repeats)
    start = time.perf_counter()
    rows = [bench_pair(*pair, settings, console, overrides) for pair in PAIRS]
    return {"settings": asdict(settings), "rows": [asdict(row) for row in rows],
            "ratios": {row.label: row.ratio for row in rows}, "peak_rss_mib": peak_rss_mib(),
            "load_avg_1min_end": os.getloadavg()[0], "wall_s": time.perf_counter() - start}


def print_plasticity_section(figures: dict[str, Any], console: Console) -> None:
    table = Table(title="Plastic agents vs their non-plastic twins: training steps/s (median, range over repeats)")
    for column in ("pair", "plastic", "twin", "plastic / twin"):
        table.add_column(column, justify="left" if column == "pair" else "right")
    for row in (PairRow(**row) for row in figures["rows"]):
        table.add_row(row.label, f"{fmt_rate(statistics.median(row.plastic_rates))} ({spread(row.plastic_rates)})",
                      f"{fmt_rate(statistics.median(row.twin_rates))} ({spread(row.twin_rates)})", f"{row.ratio:.2f}")
    console.print(table)
    settings = figures["settings"]
    console.print(f"Plasticity section: {settings['repeats']} repeats of {settings['steps']:,} steps after "
                  f"{settings['warmup_steps']:,} warm-up, one torch thread; {figures['wall_s']:.1f} s wall")


class PlasticitySection:
    """``plasticity``: each plastic agent's training throughput against its non-plastic twin."""

    name = "plasticity"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_plasticity_section(options, console)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_plasticity_section(figures, console)


SECTION = PlasticitySection()
