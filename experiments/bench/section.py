"""What every bench section is: a name, the options of the command line it reads, ``run`` measuring and
returning its figures (its part of ``bench.json``) and ``print`` showing them; and the registry the command
iterates. The registry is light (names, help, module paths): a section's module, which imports torch and SB3,
is imported only when that section runs, so ``neurodrive bench --help`` stays fast."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class BenchOptions:
    """The command line's options, one set for every section; each section reads those it has a use for."""

    quick: bool = False  # short step counts and fewer repeats: a smoke test
    repeats: int | None = None  # timed repeats; None: the section's own default (full or quick)
    skip_highway_env: bool = False  # env: leave out the Python highway-env rows
    grid_root: Path | None = None  # grid: the folder the comparison runs in (None: a temporary one)


class Section(Protocol):
    """One bench section (each module under ``experiments/bench/`` holds one as ``SECTION``)."""

    name: str

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        """Measure; the figures, JSON-ready. Progress may show on ``console``, the results do not."""
        ...

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        """The section's tables and verdicts, from the figures ``run`` returned."""
        ...


@dataclass(frozen=True)
class SectionEntry:
    """A registered section: what the command line shows of it, and where its ``SECTION`` lives."""

    name: str
    help: str
    module: str
    in_all: bool = True  # run by ``--section all``
    top_level: bool = False  # its figures sit at bench.json's top level (env, as the file has always held them)

    def load(self) -> Section:
        section: Section = importlib.import_module(self.module).SECTION
        return section


SECTIONS: dict[str, SectionEntry] = {entry.name: entry for entry in (
    SectionEntry("env", "env steps/s of the backends", "experiments.bench.env", top_level=True),
    SectionEntry("neuro", "training overhead of the TD-error modules and the neuromodulators",
                 "experiments.bench.neuro"),
    SectionEntry("training", "shipped configs vs the learner-bound limit, and peak memory",
                 "experiments.bench.training"),
    SectionEntry("startup", "time and memory of neurodrive --help", "experiments.bench.startup"),
    SectionEntry("spiking", "spiking agents vs their ANN twins and their MAC model, decision latency, energy per "
                 "decision", "experiments.bench.spiking"),
    SectionEntry("plasticity", "plastic agents (backpropamine) vs their non-plastic twins: training steps/s",
                 "experiments.bench.plasticity"),
    SectionEntry("grid", "wall time of the 4 x 10 PPO comparison grid, 3 conditions (~30 min; not in all)",
                 "experiments.bench.grid", in_all=False),
)}


def selected(section: str) -> list[SectionEntry]:
    """The sections ``--section`` names: one, or every one in ``all``."""
    if section == "all":
        return [entry for entry in SECTIONS.values() if entry.in_all]
    return [SECTIONS[section]]
