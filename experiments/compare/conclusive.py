"""``neurodrive compare --until-conclusive``: add seeds in batches until every comparison is settled, under a
group-sequential design declared before the first look (``experiments.sequential.SequentialDesign``).

- The design: looks at fixed seed counts, the first the file's ``seeds``, then ``batch`` more (default: as many)
  up to ``max_seeds``; the two-sided family-wise ``alpha`` split over the m comparisons (variant x scenario x
  condition against the baseline) by Bonferroni, each comparison's design at ``alpha / m`` spent by the
  Lan-DeMets O'Brien-Fleming-type function. Bonferroni, not Holm, because Holm's step-down is not valid across
  looks as it stands; with it the chance of any false "better" or "worse" in the grid stays at most ``alpha``.
- At each look every open comparison is decided on the first ``n`` seeds of both sides (Welch's z against its
  boundary): "better" or "worse" when it crosses, "both_collapsed" when every seed of both took one action over
  95% of its decisions (stopping without a verdict never adds false positives), else it stays open, and at the
  last look it is "not_separated". The next look trains only the new seeds' cells that an open comparison needs:
  its variant's, and the baseline's on a scenario with an open comparison.
- Continuing: seeds continue the spec's spacing (last seed + 100, + 200, ...), a cell is an ordinary cell folder,
  so rerunning the command skips finished cells and decides each look again from their results. With
  ``--storage`` each look is a grid of its own in the database: look 1 is the comparison's study (the plain grid
  at the first seeds), look k the study ``<name>-look<k>`` holding that batch's cells; every machine decides the
  same from the same results, so they all join the same next look.
- The design is kept in ``<folder>/sequential-design.json``; a rerun under another design is refused (changing
  looks or alpha after seeing data is what the design exists to prevent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from scipy import stats

from experiments.compare.spec import SEED_SPACING, Cell, Comparison
from experiments.config import ConfigError
from experiments.sequential import SequentialDesign, sequential_z
from experiments.statistics import Estimate, welch_diff_ci

DESIGN_FILE = "sequential-design.json"
DEFAULT_LOOKS = 4  # without max_seeds: four looks of the first look's size
SPENDING = "Lan-DeMets O'Brien-Fleming type"
STATISTIC = "Welch's t of the mean difference, mapped to z by its p-value (experiments.sequential.sequential_z)"
OPEN = "open"  # not settled yet: the look it waits for is incomplete

Key = tuple[str, str, str]  # (variant, scenario, condition)


# --- the design ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialPlan:
    """The declared design of one comparison grid: every seed it may use, the looks and the comparisons."""

    seeds: tuple[int, ...]
    design: SequentialDesign  # at alpha / m
    alpha: float  # family-wise
    baseline: str
    comparisons: tuple[Key, ...]
    effect_size: float = 1.0

    @property
    def looks(self) -> tuple[int, ...]:
        return self.design.looks

    def seeds_at(self, look_index: int) -> tuple[int, ...]:
        """The seeds every comparison decided at this look uses."""
        return self.seeds[:self.looks[look_index]]

    def batch(self, look_index: int) -> tuple[int, ...]:
        """The seeds this look adds."""
        return self.seeds[(self.looks[look_index - 1] if look_index else 0):self.looks[look_index]]

    def describe(self) -> str:
        """One sentence for the report and the command's output."""
        m = len(self.comparisons)
        bounds = ", ".join(f"{n}: {c:.3f}" for n, c in zip(self.looks, self.design.boundaries, strict=True))
        return (f"Group-sequential design declared before the first look: looks at {list(self.looks)} seeds per "
                f"variant (seeds {list(self.seeds)}); family-wise two-sided alpha {self.alpha:g} split by Bonferroni "
                f"over {m} comparison{'s' if m != 1 else ''} ({self.design.alpha:.4g} each), spent by the {SPENDING} "
                f"function; a comparison stops at the first look where Welch's z crosses its boundary "
                f"(|z| by seeds: {bounds}); not crossed by {self.looks[-1]} seeds: not separated.")

    def to_dict(self) -> dict[str, Any]:
        characteristics = self.design.operating_characteristics(self.effect_size)
        return {
            "looks": list(self.looks),
            "seeds": list(self.seeds),
            "alpha": self.alpha,
            "comparisons": len(self.comparisons),
            "alpha_per_comparison": self.design.alpha,
            "multiplicity": f"Bonferroni: alpha {self.alpha:g} / {len(self.comparisons)} comparisons per comparison's "
                            "design (family-wise error at most alpha across variants x scenarios x conditions)",
            "spending": SPENDING,
            "statistic": STATISTIC,
            "boundaries": list(self.design.boundaries),
            "nominal_p": [float(2.0 * stats.norm.sf(c)) for c in self.design.boundaries],
            "alpha_spent": list(self.design.spent),
            "power": {"effect_size": self.effect_size, "power": characteristics.power,
                      "expected_seeds": characteristics.expected_seeds,
                      "method": "numerical integration, z taken as normal (Cohen's d, per comparison)"},
            "sentence": self.describe(),
        }

    def record(self) -> dict[str, Any]:
        """What must not change between runs of one grid (``sequential-design.json``)."""
        return {"seeds": list(self.seeds), "looks": list(self.looks), "alpha": self.alpha,
                "comparisons": [list(key) for key in self.comparisons]}


def design_looks(first: int, batch: int, max_seeds: int) -> tuple[int, ...]:
    """Seed counts of the looks: ``first``, then every ``batch`` more, and ``max_seeds`` last."""
    return (*range(first, max_seeds, batch), max_seeds)


def design_seeds(seeds: Sequence[int], max_seeds: int) -> tuple[int, ...]:
    """The file's seeds, then the spec's spacing continued past the largest (0, 100, 200, ... for a count)."""
    top = max(seeds)
    return (*seeds, *(top + SEED_SPACING * step for step in range(1, max_seeds - len(seeds) + 1)))


def plan_until_conclusive(comparison: Comparison, until_conclusive: bool,
                          max_seeds: int | None = None) -> SequentialPlan | None:
    """The design ``--until-conclusive`` (or the file's ``sequential:`` block) declares; None for a plain grid.
    Bad flags or fields are a ConfigError naming them."""
    spec = comparison.sequential
    source = comparison.source
    if not until_conclusive and spec is None:
        if max_seeds is not None:
            raise ConfigError("--max-seeds: sets the last look of --until-conclusive; give --until-conclusive too "
                              f"(or a sequential: block in {source})")
        return None
    first = len(comparison.seeds)
    quick_seeds = comparison.quick and comparison.spec.quick is not None and comparison.spec.quick.seeds is not None
    seeds_field = "quick.seeds" if quick_seeds else "seeds"
    if first < 2:
        raise ConfigError(f"{source}: {seeds_field}: --until-conclusive needs at least 2 seeds at the first look "
                          f"(Welch's z needs a spread on both sides), got {first}")
    variants = [variant for variant in comparison.variants if variant != comparison.baseline]
    if not variants:
        raise ConfigError(f"{source}: variants: --until-conclusive needs a variant besides the baseline "
                          f"{comparison.baseline!r}")
    where = "--max-seeds"
    if max_seeds is None and spec is not None and spec.max_seeds is not None:
        max_seeds, where = spec.max_seeds, f"{source}: sequential.max_seeds"
    if max_seeds is None:
        max_seeds = DEFAULT_LOOKS * first
    if max_seeds <= first:
        raise ConfigError(f"{where}: the last look must have more seeds than the first look's {first} "
                          f"({seeds_field}), got {max_seeds}")
    batch = spec.batch if spec is not None and spec.batch is not None else first
    alpha = spec.alpha if spec is not None else 0.05
    keys = tuple((variant, scenario, condition) for scenario in comparison.scenarios
                 for condition in comparison.conditions for variant in variants)
    design = SequentialDesign(design_looks(first, batch, max_seeds), alpha / len(keys))
    return SequentialPlan(design_seeds(comparison.seeds, max_seeds), design, alpha, comparison.baseline, keys,
                          spec.effect_size if spec is not None else 1.0)


def check_design_record(plan: SequentialPlan, folder: Path, write: bool = True) -> None:
    """Refuse a grid begun under another design; save the design on the first run."""
    path = folder / DESIGN_FILE
    expected = plan.record()
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        saved = None
    except (OSError, ValueError):
        saved = None  # unreadable: written again below
    if saved is not None and saved != expected:
        changed = ", ".join(f"{key} {saved.get(key)} -> {expected[key]}" for key in expected
                            if saved.get(key) != expected[key])
        raise ConfigError(f"sequential: {folder} began under another design ({changed}); a design is declared "
                          f"before the first look and kept: restore it, or delete {path.name} (and the cells) "
                          "or set another name or root to start a new one")
    if write and saved is None:
        from experiments.files import write_json_atomic

        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, expected)


# --- one look's decisions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Where one comparison stands after a look."""

    variant: str
    scenario: str
    condition: str
    decision: str  # better, worse, not_separated, both_collapsed, or open (decided at no look yet / continuing)
    look: int  # 1-based: the look it was decided at (open: the last look it was seen at; 0: none yet)
    looks: int
    seeds: tuple[int, ...]
    z: float | None = None
    boundary: float | None = None
    p_value: float | None = None  # nominal two-sided Welch p at that look
    p_threshold: float | None = None  # the nominal p the boundary amounts to at that look
    mean_difference: Estimate | None = None  # with the repeated confidence interval at that look

    @property
    def settled(self) -> bool:
        return self.decision != OPEN

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "scenario": self.scenario, "condition": self.condition,
                "decision": self.decision, "look": self.look, "looks": self.looks, "seeds": list(self.seeds),
                "n_seeds": len(self.seeds), "z": self.z, "boundary": self.boundary, "p_value": self.p_value,
                "p_threshold": self.p_threshold,
                "mean_difference": self.mean_difference.to_dict() if self.mean_difference else None}


def repeated_interval(x: Sequence[float], y: Sequence[float], boundary: float) -> Estimate:
    """mean(X) - mean(Y) with the repeated confidence interval of the look (Jennison & Turnbull 2000, ch. 9):
    difference +- q se, q the Welch-t quantile at Phi(boundary), the t-scale image of the z boundary. It holds
    the true difference at every look at once with probability 1 - alpha, and excludes 0 exactly when the
    comparison crosses its boundary."""
    return welch_diff_ci(x, y, confidence=2.0 * stats.norm.cdf(boundary) - 1.0)  # (1 + c) / 2 = Phi(boundary)


@dataclass
class Scores:
    """Per (variant, scenario, condition), each seed's score and whether its policy collapsed, from result rows."""

    score: dict[Key, dict[int, float]] = field(default_factory=dict)
    collapsed: dict[Key, dict[int, bool]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Scores:
        scores = cls()
        for row in rows:
            key = (str(row["variant"]), str(row["scenario"]), str(row["condition"]))
            value = row.get("mean_return")
            if value is None or not math.isfinite(float(value)):
                continue  # no score: the look stays incomplete
            scores.score.setdefault(key, {})[int(row["seed"])] = float(value)
            scores.collapsed.setdefault(key, {})[int(row["seed"])] = row.get("dominant_action") is not None
        return scores

    def take(self, key: Key, seeds: Sequence[int]) -> list[float] | None:
        """The scores at ``seeds`` in order, or None when one is missing."""
        have = self.score.get(key, {})
        return [have[seed] for seed in seeds] if all(seed in have for seed in seeds) else None

    def all_collapsed(self, key: Key, seeds: Sequence[int]) -> bool:
        have = self.collapsed.get(key, {})
        return all(have.get(seed, False) for seed in seeds)


def decide(plan: SequentialPlan, look_index: int, scores: Scores, key: Key) -> Outcome | None:
    """The comparison ``key`` at look ``look_index`` (from 0), or None when a score it needs is missing."""
    variant, scenario, condition = key
    seeds = plan.seeds_at(look_index)
    base_key = (plan.baseline, scenario, condition)
    x, y = scores.take(key, seeds), scores.take(base_key, seeds)
    if x is None or y is None:
        return None
    z = sequential_z(x, y)
    decision: str = plan.design.decide(look_index, z)
    if decision in ("continue", "not_separated") and scores.all_collapsed(key, seeds) \
            and scores.all_collapsed(base_key, seeds):
        decision = "both_collapsed"  # two degenerate policies: more seeds of them settle nothing
    boundary = plan.design.boundaries[look_index]
    return Outcome(variant, scenario, condition, OPEN if decision == "continue" else decision, look_index + 1,
                   len(plan.looks), seeds, z, boundary, float(2.0 * stats.norm.sf(abs(z))),
                   float(2.0 * stats.norm.sf(boundary)), repeated_interval(x, y, boundary))


def needed_cells(plan: SequentialPlan, open_keys: Iterable[Key], seeds: Sequence[int]) -> set[Cell]:
    """The cells at ``seeds`` that the open comparisons need: each one's variant, and the baseline on its scenario."""
    cells: set[Cell] = set()
    for variant, scenario, _ in open_keys:
        for seed in seeds:
            cells.update((Cell(variant, scenario, seed), Cell(plan.baseline, scenario, seed)))
    return cells


# --- the grid of one look --------------------------------------------------------------------------------------


@dataclass
class LookComparison(Comparison):
    """The comparison at one look: ``seeds`` the look's batch (a shared study's seed choices), and of its
    variant x scenario x seed cells only ``only`` (what the open comparisons need)."""

    only: frozenset[Cell] = frozenset()

    def cells(self) -> list[Cell]:
        return [cell for cell in super().cells() if cell in self.only]


def look_comparison(comparison: Comparison, seeds: Sequence[int], cells: Iterable[Cell]) -> LookComparison:
    values = {f.name: getattr(comparison, f.name) for f in fields(Comparison)}
    return LookComparison(**{**values, "seeds": list(seeds)}, only=frozenset(cells))


class LookRunner(Protocol):
    """Runs a look's grid and reads back the results of every look so far."""

    def run(self, look: LookComparison, look_index: int) -> dict[Cell, str]:
        """Bring the look's cells up to date; the cells that failed, and why."""

    def rows(self, looks: Sequence[LookComparison]) -> list[dict[str, Any]]:
        """Result rows of every cell of these looks (those evaluated so far)."""


class LocalLooks:
    """Each look a grid of cell folders on this machine (``experiments.compare.runner``)."""

    def __init__(self, workers: int, command: Sequence[str], say: Callable[[str], None],
                 held: list[str] | None = None) -> None:
        self.workers, self.command, self.say = workers, list(command), say
        self.held = held if held is not None else []  # each look's summary of its cells' warnings

    def run(self, look: LookComparison, look_index: int) -> dict[Cell, str]:
        from experiments.compare.runner import run_grid

        outcome = run_grid(look, self.workers, self.command, say=self.say)
        self.held += outcome.warning_summary()
        return outcome.failed

    def rows(self, looks: Sequence[LookComparison]) -> list[dict[str, Any]]:
        from experiments.compare.runner import collect_results

        if not looks:
            return []
        cells = frozenset().union(*(look.only for look in looks))
        seeds = [seed for look in looks for seed in look.seeds]
        return collect_results(look_comparison(looks[0], seeds, cells))


def look_study_name(study_name: str, look_index: int) -> str:
    """Look 1 is the comparison's own study (the plain grid at the first seeds); look k ``<name>-look<k>``."""
    return study_name if look_index == 0 else f"{study_name}-look{look_index + 1}"


class SharedLooks:
    """Each look a grid shared through a database (``experiments.compare.shared``), one study per look."""

    def __init__(self, target: Any, study_name: str, workers: int, command: Sequence[str],
                 say: Callable[[str], None]) -> None:
        self.target, self.study_name = target, study_name
        self.workers, self.command, self.say = workers, list(command), say

    def run(self, look: LookComparison, look_index: int) -> dict[Cell, str]:
        from experiments.compare.shared import run_shared_grid

        name = look_study_name(self.study_name, look_index)
        return run_shared_grid(look, self.target, name, self.workers, self.command, say=self.say).failed

    def rows(self, looks: Sequence[LookComparison]) -> list[dict[str, Any]]:
        from experiments.compare.shared import collect_study_results, load_grid_study

        rows: list[dict[str, Any]] = []
        for index, look in enumerate(looks):
            try:
                study = load_grid_study(look, self.target, look_study_name(self.study_name, index))
            except ConfigError:
                if index == 0:
                    raise  # no grid at all: --report-only before any run
                break  # a look not begun yet
            rows += collect_study_results(look, study)
        return rows


# --- the loop --------------------------------------------------------------------------------------------------


@dataclass
class SequentialRun:
    """What ``--until-conclusive`` reached: every comparison's outcome, the rows of every cell run, failures."""

    plan: SequentialPlan
    outcomes: dict[Key, Outcome]
    rows: list[dict[str, Any]]
    failed: dict[Cell, str] = field(default_factory=dict)
    looks_run: int = 0

    @property
    def complete(self) -> bool:
        return all(outcome.settled for outcome in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        """The design and each comparison's outcome, for the report (``meta["sequential"]``)."""
        return {"design": self.plan.to_dict(), "complete": self.complete, "looks_run": self.looks_run,
                "comparisons": [self.outcomes[key].to_dict() for key in self.plan.comparisons]}


def run_until_conclusive(comparison: Comparison, plan: SequentialPlan, runner: LookRunner,
                         report_only: bool = False, say: Callable[[str], None] = print) -> SequentialRun:
    """Run look after look until every comparison is settled or the last look is reached (``report_only``: run
    nothing, decide from the cells evaluated so far)."""
    outcomes = {key: Outcome(*key, decision=OPEN, look=0, looks=len(plan.looks), seeds=())
                for key in plan.comparisons}
    looks: list[LookComparison] = []
    run = SequentialRun(plan, outcomes, [])
    for index, count in enumerate(plan.looks):
        open_keys = [key for key in plan.comparisons if not outcomes[key].settled]
        cells = needed_cells(plan, open_keys, plan.batch(index))
        look = look_comparison(comparison, plan.batch(index), cells)
        say(f"look {index + 1} of {len(plan.looks)}: {count} seeds per variant; {len(open_keys)} of "
            f"{len(plan.comparisons)} comparisons open; {len(look.cells())} cells at seeds {list(plan.batch(index))}")
        looks.append(look)
        if not report_only:
            run.failed = runner.run(look, index)
        run.rows = runner.rows(looks)
        run.looks_run = index + 1
        if run.failed:
            say(f"look {index + 1}: {len(run.failed)} cell(s) failed; the open comparisons wait for them")
            break
        scores = Scores.from_rows(run.rows)
        decided = {key: decide(plan, index, scores, key) for key in open_keys}
        for key, outcome in decided.items():
            if outcome is not None:
                outcomes[key] = outcome
                if outcome.settled:
                    say(f"look {index + 1}: {key[0]} vs {plan.baseline} on {key[1]} / {key[2]}: "
                        f"{outcome.decision} (|z| {abs(outcome.z or 0.0):.3f}, boundary {outcome.boundary:.3f})")
        if any(outcome is None for outcome in decided.values()):
            say(f"look {index + 1}: not every cell it needs is evaluated yet; "
                + ("run the comparison to continue" if report_only else "rerun the same command to continue"))
            break
        if all(outcome.settled for outcome in outcomes.values()):
            break
    return run
