"""The cross-check of a native evaluation against the reference simulator: the file's setting, the runner's
records on hand-built cell folders (no training), and the report's comparison on synthetic rows, checked
against scipy and numpy computed here."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from experiments.compare.report.page import render_html
from experiments.compare.report.summary import compute_statistics, cross_check_statistics
from experiments.compare.runner import cell_records, collect_results, condition_path, stale_conditions
from experiments.compare.spec import Cell, Comparison, load_comparison
from experiments.config import ConfigError
from tests_support import EXPERIMENTS

SMOKE = EXPERIMENTS / "smoke.yaml"
BODY = """
name: check
baseline: standard
variants:
  standard: {}
  asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
seeds: 2
fixed: {training.total_timesteps: 200}
conditions:
  clean: {}
  merge: {env.id: merge-v0}
  roundabout: {env.id: roundabout-v1}
"""


def write(folder: Path, evaluation: str, extra: str = "") -> Path:
    path = folder / "check.yaml"
    path.write_text(f"experiment: {os.path.relpath(SMOKE, folder)}\nroot: {folder / 'runs'}\n"
                    + textwrap.dedent(BODY) + f"evaluation: {evaluation}\n" + extra)
    return path


# --- the file's setting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("evaluation, expected", [
    ("{backend: auto}", ("highway-env", 1)),  # a native evaluation is cross-checked by default
    ("{backend: envpool, cross_check: {seeds: 2}}", ("highway-env", 2)),
    ("{backend: auto, cross_check: true}", ("highway-env", 1)),
    ("{backend: auto, cross_check: false}", None),
    ("{backend: auto, cross_check: null}", None),
    ("{backend: highway-env}", None),  # the reference itself needs none
    ("{backend: highway-env, cross_check: {backend: envpool}}", ("envpool", 1)),
])
def test_the_cross_check_defaults_by_backend_and_turns_off(tmp_path, evaluation, expected):
    body = BODY.replace("  roundabout: {env.id: roundabout-v1}\n", "") if "envpool" in evaluation else BODY
    path = tmp_path / "check.yaml"
    path.write_text(f"experiment: {SMOKE}\nroot: {tmp_path}\n" + textwrap.dedent(body) + f"evaluation: {evaluation}\n")
    spec = load_comparison(path).evaluation.cross_check_spec()
    assert (None if spec is None else (spec.backend, spec.seeds)) == expected


@pytest.mark.parametrize("evaluation, expected", [
    ("{backend: envpool, cross_check: {backend: envpool}}",
     "evaluation: cross_check.backend: envpool is the evaluation's own backend"),
    ("{backend: auto, cross_check: {seeds: 0}}",
     "evaluation.cross_check.seeds: Input should be greater than or equal to 1 (got 0)"),
    ("{backend: auto, cross_check: {backend: carla}}", "evaluation.cross_check.backend: Input should be"),
    ("{backend: auto, cross_check: {episodes: 5}}", "evaluation.cross_check.episodes"),
])
def test_a_bad_cross_check_is_one_line_naming_the_field(tmp_path, evaluation, expected):
    body = BODY.replace("  roundabout: {env.id: roundabout-v1}\n", "")
    path = tmp_path / "check.yaml"
    path.write_text(f"experiment: {SMOKE}\nroot: {tmp_path}\n" + textwrap.dedent(body) + f"evaluation: {evaluation}\n")
    with pytest.raises(ConfigError) as error:
        load_comparison(path)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_quick_can_turn_it_off_and_a_backend_change_under_quick_moves_the_default(tmp_path):
    off = load_comparison(write(tmp_path, "{backend: auto}", "quick: {evaluation: {cross_check: false}}\n"),
                          quick=True)
    assert off.evaluation.cross_check_spec() is None
    moved = load_comparison(write(tmp_path, "{backend: highway-env}", "quick: {evaluation: {backend: auto}}\n"),
                            quick=True)
    assert moved.evaluation.cross_check_spec() is not None


def test_a_condition_named_as_another_ones_cross_check_is_refused(tmp_path):
    path = write(tmp_path, "{backend: auto}").read_text().replace("  clean: {}\n",
                                                                     "  clean: {}\n  clean.highway-env: {}\n")
    (tmp_path / "check.yaml").write_text(path)
    with pytest.raises(ConfigError, match=r"conditions\.clean\.highway-env: this name is taken"):
        load_comparison(tmp_path / "check.yaml")


def test_auto_says_once_at_load_which_condition_falls_back_to_highway_env(tmp_path, caplog):
    with caplog.at_level("INFO", logger="neurodrive.compare"):
        load_comparison(write(tmp_path, "{backend: auto}"))
    lines = [record.getMessage() for record in caplog.records if "not a native port" in record.getMessage()]
    assert len(lines) == 1 and "conditions.roundabout" in lines[0] and "no verified native port" in lines[0]


# --- the runner's records, on hand-built cell folders -------------------------------------------------------


def fake_cell(comparison: Comparison, cell: Cell) -> Path:
    """A finished cell folder as training leaves it, without a model (nothing here loads one)."""
    from experiments.runs.build import resolve_backend

    run_dir = comparison.cell_dir(cell)
    run_dir.mkdir(parents=True)
    config = resolve_backend(comparison.cell_config(cell))[0].model_dump(mode="json")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "run.json").write_text(json.dumps({"status": "finished"}))
    return run_dir


def record(comparison: Comparison, condition: str, returns: list[float], backend: str | None = None) -> dict:
    crashed = [False] * len(returns)
    return {"condition": condition, "settings": comparison.evaluation_settings(condition, backend),
            "backend": backend or "envpool", "cross_check": backend is not None,
            "summary": {"mean_return": float(np.mean(returns)), "crash_rate": 0.0, "mean_speed": 20.0,
                        "n_episodes": len(returns)},
            "episodes": {"returns": returns, "crashed": crashed}}


def test_cross_check_records_sit_beside_the_main_ones_for_each_variants_first_seed(tmp_path):
    comparison = load_comparison(write(tmp_path, "{backend: auto}"))
    first, second = Cell("standard", "highway-fast-v0", 0), Cell("standard", "highway-fast-v0", 100)
    for cell in (first, second):
        run_dir = fake_cell(comparison, cell)
        for condition in comparison.conditions:
            condition_path(run_dir, condition).write_text(json.dumps(record(comparison, condition, [1.0, 2.0])))
    # The first seed still lacks its cross-checks; roundabout runs on highway-env already and needs none.
    assert stale_conditions(comparison, comparison.cell_dir(first)) == ["clean", "merge"]
    assert stale_conditions(comparison, comparison.cell_dir(second)) == []
    run_dir = comparison.cell_dir(first)
    for condition in ("clean", "merge"):
        (run_dir / f"compare-{condition}.highway-env.json").write_text(
            json.dumps(record(comparison, condition, [5.0, 7.0], "highway-env")))
    assert stale_conditions(comparison, run_dir) == []
    records = cell_records(comparison, run_dir)
    assert records["clean"]["cross_check_record"]["summary"]["mean_return"] == 6.0
    assert "cross_check_record" not in records["roundabout"]
    rows = {(row["seed"], row["condition"]): row for row in collect_results(comparison)}
    assert rows[(0, "clean")]["cross_check"]["returns"] == [5.0, 7.0]
    assert rows[(0, "clean")]["cross_check"]["backend"] == "highway-env" and rows[(0, "clean")]["backend"] == "envpool"
    assert rows[(100, "clean")]["cross_check"] is None and rows[(0, "roundabout")]["cross_check"] is None
    # A cross-check made with other settings is stale; the main record stays current.
    other = load_comparison(write(tmp_path, "{backend: auto, episodes: 7}"))
    assert stale_conditions(other, run_dir) == ["clean", "merge", "roundabout"]
    more = load_comparison(write(tmp_path, "{backend: auto, cross_check: {seeds: 2}}"))
    assert stale_conditions(more, comparison.cell_dir(second)) == ["clean", "merge"]  # now cross-checked too
    off = load_comparison(write(tmp_path, "{backend: auto, cross_check: false}"))
    assert stale_conditions(off, run_dir) == [] and "cross_check_record" not in cell_records(off, run_dir)["clean"]


# --- the report's comparison, on synthetic rows -------------------------------------------------------------


def synthetic_rows(shift: float, cells: int = 6, episodes: int = 40, seed: int = 1) -> list[dict]:
    """Rows of one condition per shift: ``cells`` cross-checked cells (and one more seed without), the native
    returns drawn as the reference's plus ``shift``."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(cells + 1):
        level = rng.normal(20.0, 4.0)
        native = list(rng.normal(level + shift, 3.0, episodes))
        reference = list(rng.normal(level, 3.0, episodes))
        crashed = list(rng.random(episodes) < 0.2)
        reference_crashed = list(rng.random(episodes) < 0.2)
        variant = "standard" if index % 2 else "other"
        rows.append({
            "variant": variant, "scenario": "highway-fast-v0", "seed": index, "condition": f"shift{shift:g}",
            "mean_return": float(np.mean(native)), "crash_rate": float(np.mean(crashed)), "returns": native,
            "crashed": crashed, "n_episodes": episodes, "backend": "envpool",
            "cross_check": None if index == cells else {
                "backend": "highway-env", "mean_return": float(np.mean(reference)),
                "crash_rate": float(np.mean(reference_crashed)), "n_episodes": episodes, "returns": reference,
                "crashed": reference_crashed},
        })
    return rows


def test_a_condition_where_the_backends_agree_is_not_flagged_and_a_shifted_one_is():
    rows = synthetic_rows(0.0) + synthetic_rows(6.0)
    check = cross_check_statistics(rows, ["shift0", "shift6"])
    assert check["flagged"] == ["shift6"]
    assert not check["conditions"]["shift0"]["flagged"] and check["conditions"]["shift6"]["flagged"]
    assert check["backends"] == {"shift0": "envpool", "shift6": "envpool"}
    assert check["conditions"]["shift6"]["cells"] == 6  # the seed without a cross-check is left out
    assert "disagree on return" in check["conditions"]["shift6"]["sentence"]


def test_the_intervals_are_scipys_paired_t_and_welch():
    rows = synthetic_rows(6.0)
    entry = cross_check_statistics(rows, ["shift6"])["conditions"]["shift6"]
    checked = [row for row in rows if row["cross_check"]]
    gaps = np.array([np.mean(row["returns"]) - np.mean(row["cross_check"]["returns"]) for row in checked])
    low, high = stats.t.interval(0.95, len(gaps) - 1, loc=gaps.mean(), scale=stats.sem(gaps))
    assert entry["return_difference"] == pytest.approx({"value": gaps.mean(), "low": low, "high": high})
    crash_gaps = np.array([np.mean(row["crashed"]) - np.mean(row["cross_check"]["crashed"]) for row in checked])
    crash = stats.ttest_1samp(crash_gaps, 0.0).confidence_interval(0.95)
    assert entry["crash_rate_difference"] == pytest.approx(
        {"value": crash_gaps.mean(), "low": crash.low, "high": crash.high})
    for row, cell in zip(checked, entry["per_cell"], strict=True):
        welch = stats.ttest_ind(row["returns"], row["cross_check"]["returns"], equal_var=False)
        interval = welch.confidence_interval(0.95)
        assert cell["welch_p"] == pytest.approx(welch.pvalue)
        assert (cell["return_difference"]["low"], cell["return_difference"]["high"]) == pytest.approx(
            (interval.low, interval.high))


def test_one_cross_checked_cell_is_judged_by_its_own_episode_interval():
    shifted = cross_check_statistics(synthetic_rows(6.0, cells=1), ["shift6"])
    same = cross_check_statistics(synthetic_rows(0.0, cells=1, seed=3), ["shift0"])
    assert shifted["flagged"] == ["shift6"] and same["flagged"] == []
    assert shifted["conditions"]["shift6"]["return_difference"]["low"] is None  # no paired interval from one cell


def test_the_report_carries_the_check_and_each_verdict_its_backend():
    rows = synthetic_rows(0.0) + synthetic_rows(6.0)
    statistics = compute_statistics(rows, "standard")
    assert statistics["cross_check"]["flagged"] == ["shift6"]
    assert statistics["verdicts"] and all(entry["backend"] == "envpool" for entry in statistics["verdicts"])
    page = render_html(statistics, {"name": "check"}, rows)
    assert 'id="cross-check"' in page and page.count("FLAGGED") == 1
    assert "shift0: envpool; shift6: envpool" in page


def test_a_cross_check_the_other_backend_cannot_run_fails_at_load(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_comparison(write(tmp_path, "{backend: highway-env, cross_check: {backend: envpool}}"))
    assert "conditions.roundabout." in str(error.value) and "cross-check on envpool" in str(error.value)
    assert "\n" not in str(error.value)
