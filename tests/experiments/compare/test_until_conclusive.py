"""``neurodrive compare --until-conclusive``: the stopping loop on synthetic per-seed scores with no training (a fake
cell runner writes ordinary cell folders, as a finished cell leaves them), checked against scipy's Welch test and
the boundaries of ``experiments.sequential.SequentialDesign`` (whose published values tests/experiments/
test_sequential.py checks); continuation after Ctrl-C and on a second machine through a journal-file study; bad
flags and fields in one line; and one shipped comparison run quick until conclusive end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats

from experiments.cli import main
from experiments.compare.conclusive import (
    Scores,
    SequentialPlan,
    SharedLooks,
    decide,
    design_looks,
    plan_until_conclusive,
    run_until_conclusive,
)
from experiments.compare.spec import Cell, Comparison, comparison_from_raw, load_comparison
from experiments.distributed.storage import StorageTarget
from experiments.sequential import SequentialDesign
from tests_support import EXPERIMENTS

SMOKE = EXPERIMENTS / "smoke.yaml"
SCENARIO = "highway-fast-v0"
# standard is the baseline; strong scores 50 above it (settled at the first look), same is drawn like it.
GRID = """
name: seq
baseline: standard
variants:
  standard: {}
  strong: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
  same: {neuro.dopamine: {type: asymmetric, kappa: -0.3}}
seeds: 5
fixed: {training.total_timesteps: 200}
conditions:
  clean: {}
evaluation: {episodes: 1, backend: envpool, cross_check: false}  # the design is under test, not the simulators
quick: {seeds: 2}
"""
OFFSET = {"standard": 0.0, "strong": 50.0, "same": 0.0}
STREAM = {"standard": 1, "strong": 2, "same": 3}


def score(variant: str, seed: int) -> float:
    """A fixed normal draw per (variant, seed), shifted by the variant's true effect."""
    return OFFSET[variant] + float(np.random.default_rng([STREAM[variant], seed]).normal())


def write_grid(folder: Path, body: str = GRID, root: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seq.yaml"
    path.write_text(f"experiment: {SMOKE}\nroot: {root or folder / 'runs'}\n" + textwrap.dedent(body))
    return path


class FakeCells:
    """Stands for ``run_cell``: writes the folder a finished cell leaves (config, run.json, model, each condition's
    evaluation with the synthetic score) without training; records each cell asked for; Ctrl-C after ``stop_after``."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[Cell] = []
        self.stop_after = stop_after

    def __call__(self, comparison: Comparison, cell: Cell, command: Any = ()) -> Path:
        from experiments.runs.build import resolve_backend

        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt("stopped by the test")
        self.calls.append(cell)
        run_dir = comparison.cell_dir(cell)
        run_dir.mkdir(parents=True, exist_ok=True)
        config = resolve_backend(comparison.cell_config(cell))[0].model_dump(mode="json")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(config))))
        (run_dir / "run.json").write_text(json.dumps({"status": "finished"}))
        (run_dir / "model.zip").write_bytes(b"")
        for condition in comparison.conditions:
            value = score(cell.variant, cell.seed)
            record = {"condition": condition, "settings": comparison.evaluation_settings(condition),
                      "summary": {"mean_return": value, "crash_rate": 0.0, "mean_speed": 20.0, "n_episodes": 1},
                      "episodes": {"returns": [value], "crashed": [False]}}
            (run_dir / f"compare-{condition}.json").write_text(json.dumps(record))
        return run_dir


def expected_stop(design: SequentialDesign, seeds: list[int], variant: str) -> int:
    """The 1-based look at which scipy's Welch test first reaches the boundary's nominal level (else the last)."""
    for index, (count, boundary) in enumerate(zip(design.looks, design.boundaries, strict=True), 1):
        x = [score(variant, seed) for seed in seeds[:count]]
        y = [score("standard", seed) for seed in seeds[:count]]
        if stats.ttest_ind(x, y, equal_var=False).pvalue <= 2 * stats.norm.sf(boundary):
            return index
    return len(design.looks)


SEEDS_20 = [100 * index for index in range(20)]
DESIGN = SequentialDesign((5, 10, 15, 20), 0.05 / 2)  # two comparisons, Bonferroni


def false_positive_rates(grids: int, rng: np.random.Generator) -> tuple[float, float]:
    """Over null grids (3 variants drawn like the baseline, looks at 5, 10, 15, 20 seeds): the share with any
    "better" or "worse" under the loop's decisions, and under naive stopping (Welch p <= 0.05 at any look)."""
    variants = ("a", "b", "c")
    keys = tuple((variant, SCENARIO, "clean") for variant in variants)
    plan = SequentialPlan(tuple(SEEDS_20), SequentialDesign((5, 10, 15, 20), 0.05 / 3), 0.05, "base", keys)
    ours = naive = 0
    for _ in range(grids):
        draws = {name: rng.normal(size=20) for name in ("base", *variants)}
        scores = Scores({(name, SCENARIO, "clean"): dict(zip(SEEDS_20, values.tolist(), strict=True))
                         for name, values in draws.items()}, {})
        open_keys, rejected = set(keys), False
        for index in range(4):
            for key in sorted(open_keys):
                outcome = decide(plan, index, scores, key)
                assert outcome is not None
                if outcome.settled:
                    open_keys.discard(key)
                    rejected |= outcome.decision in ("better", "worse")
        ours += rejected
        naive += any(stats.ttest_ind(draws[v][:n], draws["base"][:n], equal_var=False).pvalue <= 0.05
                     for v in variants for n in (5, 10, 15, 20))
    return ours / grids, naive / grids


@pytest.mark.slow  # 600 grids of up to 12 decisions each: ~10 s on an idle core
def test_null_grids_keep_the_family_wise_error_where_naive_stopping_does_not():
    """The known answer: under no true difference the chance of any verdict in the grid is at most alpha (within
    Monte-Carlo error); testing each comparison at 5% after every batch far exceeds it."""
    grids = 600
    ours, naive = false_positive_rates(grids, np.random.default_rng(23))
    error = 3 * math.sqrt(0.05 * 0.95 / grids)
    assert ours <= 0.05 + error
    assert naive > 0.05 + error and naive > 3 * ours


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The grid run until conclusive with --max-seeds 20 through the CLI, cells faked."""
    folder = tmp_path_factory.mktemp("seq")
    path = write_grid(folder)
    fake = FakeCells()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", fake)
        assert main(["compare", str(path), "--until-conclusive", "--max-seeds", "20"]) == 0
    report = folder / "runs" / "seq" / "report"
    return {"path": path, "calls": list(fake.calls), "results": json.loads((report / "results.json").read_text()),
            "html": (report / "report.html").read_text(), "folder": folder / "runs" / "seq"}


def test_the_truth_the_tests_rely_on_holds():
    """strong crosses at the first look and same at none, by scipy's Welch test alone."""
    assert expected_stop(DESIGN, SEEDS_20, "strong") == 1
    assert expected_stop(DESIGN, SEEDS_20, "same") == 4
    x = [score("same", seed) for seed in SEEDS_20]
    y = [score("standard", seed) for seed in SEEDS_20]
    assert stats.ttest_ind(x, y, equal_var=False).pvalue > 2 * stats.norm.sf(DESIGN.boundaries[-1])


def test_looks_continue_the_seed_spacing_up_to_max_seeds(tmp_path):
    assert design_looks(5, 5, 20) == (5, 10, 15, 20)
    assert design_looks(2, 2, 3) == (2, 3)
    comparison = load_comparison(write_grid(tmp_path))
    plan = plan_until_conclusive(comparison, True, 12)
    assert plan is not None and plan.looks == (5, 10, 12)
    assert list(plan.seeds) == [100 * index for index in range(12)]
    assert plan.design.alpha == pytest.approx(0.025)  # 0.05 over 2 comparisons
    listed = comparison_from_raw({**yaml.safe_load(GRID), "experiment": str(SMOKE), "root": str(tmp_path),
                                  "seeds": [7, 3], "sequential": {"max_seeds": 5, "batch": 1}}, "f.yaml", tmp_path)
    plan = plan_until_conclusive(listed, False)
    assert plan is not None and plan.seeds == (7, 3, 107, 207, 307) and plan.looks == (2, 3, 4, 5)
    assert plan_until_conclusive(comparison, False) is None  # a plain grid


def test_a_separated_pair_stops_at_the_first_look_and_a_null_pair_runs_to_max_seeds(finished):
    verdicts = {entry["variant"]: entry for entry in finished["results"]["statistics"]["verdicts"]}
    strong, same = verdicts["strong"], verdicts["same"]
    assert (strong["outcome"], strong["look"], strong["seeds"]) == ("better", 1, SEEDS_20[:5])
    assert (same["outcome"], same["look"], same["seeds"]) == ("not_separated", 4, SEEDS_20)
    # Only the cells an open comparison needed were trained: strong's first look, everyone else's 20 seeds.
    trained = {(cell.variant, cell.seed) for cell in finished["calls"]}
    assert len(finished["calls"]) == len(trained)  # none twice
    assert trained == {("strong", seed) for seed in SEEDS_20[:5]} | {
        (variant, seed) for variant in ("standard", "same") for seed in SEEDS_20}
    assert not (finished["folder"] / "strong" / SCENARIO / "seed500").exists()


def test_the_design_in_results_json_is_sequential_designs(finished):
    design = finished["results"]["statistics"]["sequential"]["design"]
    assert design["looks"] == [5, 10, 15, 20] and design["seeds"] == SEEDS_20
    assert design["alpha"] == 0.05 and design["comparisons"] == 2 and "Bonferroni" in design["multiplicity"]
    assert design["boundaries"] == pytest.approx(DESIGN.boundaries, abs=1e-9)
    assert design["alpha_spent"][-1] == pytest.approx(0.025)  # all of each comparison's alpha by the last look
    assert finished["results"]["statistics"]["sequential"]["complete"] is True


def test_each_decision_agrees_with_scipy_welch_and_its_repeated_interval(finished):
    """z's two-sided p is scipy's Welch p; the repeated interval is scipy's Welch interval at the level the
    look's boundary spends, and excludes 0 exactly when the comparison crossed."""
    for entry in finished["results"]["statistics"]["verdicts"]:
        seeds = entry["seeds"]
        x = [score(entry["variant"], seed) for seed in seeds]
        y = [score("standard", seed) for seed in seeds]
        welch = stats.ttest_ind(x, y, equal_var=False)
        assert entry["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
        level = 1 - 2 * stats.norm.sf(DESIGN.boundaries[entry["look"] - 1])
        interval = welch.confidence_interval(confidence_level=level)
        difference = entry["mean_difference"]
        assert (difference["low"], difference["high"]) == pytest.approx((interval.low, interval.high), rel=1e-6)
        assert (difference["low"] > 0 or difference["high"] < 0) == (entry["outcome"] in ("better", "worse"))


def test_report_and_output_state_the_design_and_the_seed_counts(finished):
    headline = finished["results"]["statistics"]["headline"]
    assert headline[0].startswith("Group-sequential design declared before the first look: looks at [5, 10, 15, 20]")
    assert any("strong is better than standard" in line and "look 1 of 4 (5 seeds a side" in line for line in headline)
    assert any("same is not separated from standard" in line and "(20 seeds a side" in line for line in headline)
    html = finished["html"]
    verdicts = html[html.index('<section id="verdicts">'):html.index('<section id="method">')]
    assert "Group-sequential design declared" in verdicts and "Bonferroni" in verdicts
    assert '<table class="design">' in verdicts and "strong (highway-fast-v0 / clean): better" in verdicts
    assert verdicts.count("<tr>") == 1 + 4  # the header and one row per look


def test_rerunning_trains_nothing(finished, capsys):
    fake = FakeCells()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", fake)
        assert main(["compare", str(finished["path"]), "--until-conclusive", "--max-seeds", "20"]) == 0
    assert fake.calls == []
    assert "strong is better than standard" in capsys.readouterr().out


def test_report_only_decides_from_the_cells_so_far(finished, capsys):
    fake = FakeCells()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", fake)
        assert main(["compare", str(finished["path"]), "--until-conclusive", "--max-seeds", "20",
                     "--report-only"]) == 0
    assert fake.calls == []


def test_a_changed_design_is_refused_before_any_work(finished, capsys):
    fake = FakeCells()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", fake)
        assert main(["compare", str(finished["path"]), "--until-conclusive", "--max-seeds", "25"]) == 2
    error = capsys.readouterr().err.strip()
    assert "sequential:" in error and "began under another design" in error and "looks" in error
    assert len(error.splitlines()) == 1 and fake.calls == []


def test_ctrl_c_keeps_finished_cells_and_a_rerun_continues(tmp_path, capsys):
    path = write_grid(tmp_path)
    interrupted = FakeCells(stop_after=22)  # the first look (15 cells) and part of the second
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", interrupted)
        assert main(["compare", str(path), "--until-conclusive", "--max-seeds", "20"]) == 130
    rest = FakeCells()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", rest)
        assert main(["compare", str(path), "--until-conclusive", "--max-seeds", "20"]) == 0
    assert not set(interrupted.calls) & set(rest.calls)  # finished cells kept, not trained again
    assert len(interrupted.calls) + len(rest.calls) == 5 + 2 * 20  # as the uninterrupted run
    results = json.loads((tmp_path / "runs" / "seq" / "report" / "results.json").read_text())
    assert {entry["variant"]: entry["look"] for entry in results["statistics"]["verdicts"]} == {"strong": 1, "same": 4}


@pytest.mark.slow  # the queue's workers poll the study: ~25 s for four looks
def test_a_grid_shared_through_a_journal_study_continues_on_another_machine(tmp_path, monkeypatch):
    """Each look a study of its own; a second machine (its own run folder) finds every look complete in the
    study, trains nothing and reaches the same decisions from the study's results."""
    target = StorageTarget.resolve(None, tmp_path / "shared")  # the journal file
    outcomes = []
    for machine in ("a", "b"):
        (tmp_path / machine).mkdir()
        monkeypatch.chdir(tmp_path / machine)
        comparison = load_comparison(write_grid(tmp_path, root="runs"))
        plan = plan_until_conclusive(comparison, True, 10)
        assert plan is not None
        fake = FakeCells()
        monkeypatch.setattr("experiments.compare.shared.run_cell", fake)
        run = run_until_conclusive(comparison, plan, SharedLooks(target, "compare-seq", 1, [], lambda _: None))
        outcomes.append((fake.calls, {key[0]: (o.decision, o.look) for key, o in run.outcomes.items()}, run.rows))
    (calls_a, decided_a, rows_a), (calls_b, decided_b, rows_b) = outcomes
    assert len(calls_a) == 5 + 2 * 10 and calls_b == []
    assert expected_stop(SequentialDesign((5, 10), 0.025), SEEDS_20, "same") == 2
    assert decided_a == decided_b == {"strong": ("better", 1), "same": ("not_separated", 2)}
    assert sorted((r["variant"], r["seed"], r["mean_return"]) for r in rows_b) == sorted(
        (r["variant"], r["seed"], r["mean_return"]) for r in rows_a)
    import optuna

    storage = target.open(comparison.spec.heartbeat)
    names = sorted(summary.study_name for summary in optuna.get_all_study_summaries(storage))
    assert names == ["compare-seq", "compare-seq-look2"]
    look2 = optuna.load_study(study_name="compare-seq-look2", storage=storage)
    assert sorted((t.params["variant"], t.params["seed"]) for t in look2.trials) == sorted(
        (variant, seed) for variant in ("standard", "same") for seed in SEEDS_20[5:10])


@pytest.mark.slow  # the queue's workers poll the study between looks
def test_the_command_runs_each_look_as_a_study_of_its_own_with_storage(tmp_path, monkeypatch, capsys):
    """``--storage`` on the command line: look 1 is the plain grid's study, look 2 its own; rerunning trains
    nothing and reports the same verdicts from the studies."""
    import optuna

    path = write_grid(tmp_path)
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    fake = FakeCells()
    monkeypatch.setattr("experiments.compare.shared.run_cell", fake)
    args = ["compare", str(path), "--until-conclusive", "--max-seeds", "10", "--storage", url]
    assert main(args) == 0
    assert len(fake.calls) == 5 + 2 * 10
    names = sorted(summary.study_name for summary in optuna.get_all_study_summaries(url))
    assert names == ["compare-seq", "compare-seq-look2"]
    first = capsys.readouterr().out
    again = FakeCells()
    monkeypatch.setattr("experiments.compare.shared.run_cell", again)
    assert main(args) == 0 and again.calls == []
    output = capsys.readouterr().out
    assert "strong is better than standard on highway-fast-v0 / clean at look 1 of 2" in output
    assert [line for line in output.splitlines() if " than " in line or "separated" in line] == [
        line for line in first.splitlines() if " than " in line or "separated" in line]


@pytest.mark.parametrize("args, body, expected", [
    (["--max-seeds", "8"], GRID, "--max-seeds: sets the last look of --until-conclusive; give --until-conclusive"),
    (["--until-conclusive", "--max-seeds", "5"], GRID,
     "--max-seeds: the last look must have more seeds than the first look's 5 (seeds), got 5"),
    (["--until-conclusive", "--max-seeds", "0"], GRID, "--max-seeds: must be >= 1, got 0"),
    (["--until-conclusive", "--quick", "--max-seeds", "1"], GRID,
     "--max-seeds: the last look must have more seeds than the first look's 2 (quick.seeds), got 1"),
    (["--until-conclusive"], GRID.replace("seeds: 5", "seeds: 1"), "seeds: --until-conclusive needs at least 2 seeds"),
    ([], GRID + "sequential: {max_seeds: 4}\n",
     "sequential.max_seeds: the last look must have more seeds than the first look's 5 (seeds), got 4"),
    ([], GRID + "sequential: {alpha: 1.5}\n", "sequential.alpha: Input should be less than 1"),
    ([], GRID + "sequential: {max_seed: 9}\n", "sequential.max_seed: unknown key; allowed: max_seeds, batch, alpha"),
    (["--until-conclusive"], GRID.replace("  strong: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}\n", "")
     .replace("  same: {neuro.dopamine: {type: asymmetric, kappa: -0.3}}\n", ""),
     "variants: --until-conclusive needs a variant besides the baseline"),
])
def test_bad_flags_and_fields_fail_in_one_line_before_any_work(tmp_path, capsys, args, body, expected):
    path = write_grid(tmp_path, body)
    assert main(["compare", str(path), *args]) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_shipped_comparison_runs_quick_until_conclusive(tmp_path):
    """The smallest ready comparison, quick (2 seeds), until conclusive with at most 3 seeds: real training, and a
    report whose verdicts state the design and the seeds each comparison used."""
    path = EXPERIMENTS / "compare" / "dqn_dopamine.yaml"
    comparison = load_comparison(path, quick=True)
    command = [sys.executable, "-m", "experiments.cli", "compare", str(path), "--quick", "--until-conclusive",
               "--max-seeds", "3", "--workers", "2"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1200,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Group-sequential design declared before the first look: looks at [2, 3]" in result.stdout
    statistics = json.loads((tmp_path / comparison.report_dir / "results.json").read_text())["statistics"]
    design = statistics["sequential"]["design"]
    m = (len(comparison.variants) - 1) * len(comparison.conditions)
    assert design["looks"] == [2, 3] and design["comparisons"] == m
    assert design["boundaries"] == pytest.approx(SequentialDesign((2, 3), 0.05 / m).boundaries, abs=1e-9)
    assert len(statistics["verdicts"]) == m and statistics["sequential"]["complete"]
    for entry in statistics["verdicts"]:
        assert entry["outcome"] in ("better", "worse", "not_separated", "both_collapsed")
        assert entry["seeds"] in ([0, 100], [0, 100, 200]) and entry["n_seeds"] == len(entry["seeds"])
    html = (tmp_path / comparison.report_dir / "report.html").read_text()
    verdicts = html[html.index('<section id="verdicts">'):html.index('<section id="method">')]
    assert "Group-sequential design" in verdicts and "seeds a side" in verdicts
