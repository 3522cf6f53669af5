"""The report's plots from synthetic rows (no training): each plotted statistic against an independent numpy/scipy
computation, the TensorBoard reader on event files written here by torch's SummaryWriter, axis limits that hold
every interval end, and the tables' one precision per column kind."""

from __future__ import annotations

import html as html_module
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.compare.report import compute_statistics, write_report
from experiments.compare.report import plots as report_plots
from experiments.compare.report.scalars import local_run_dir, neuro_series, read_scalars
from experiments.compare.report.summary import neuro_values
from experiments.sequential import iqm_difference_ci

sys.path.insert(0, str(Path(__file__).parent))
from test_report import META, SCENARIO, make_row  # noqa: E402  (the row builder of test_report.py)

SEEDS = list(range(8))


def scipy_band(values: np.ndarray) -> tuple[float, float]:
    """scipy's own percentile bootstrap of the IQM (trim_mean 0.25): the independent reference for a band."""
    result = scipy_stats.bootstrap((values,), lambda x, axis: scipy_stats.trim_mean(x, 0.25, axis=axis),
                                   n_resamples=20_000, method="percentile", random_state=1)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def write_tb(tb_dir: Path, tags: dict[str, list[tuple[int, float]]]) -> None:
    """A tiny TensorBoard event file, written as SB3 writes one (torch's SummaryWriter)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tb_dir))
    for tag, points in tags.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


# --- sample efficiency ---------------------------------------------------------------------------------------------


def curve_rows(rng: np.random.Generator) -> tuple[list[dict[str, Any]], dict[int, dict[int, float]]]:
    """Rows whose curves share steps 1000-3000; seed 3 also evaluated at 2500, seed 5 stopped before 4000 and
    seed 6 logged a NaN at 4000: only 1000, 2000 and 3000 are every seed's."""
    curves = {seed: {step: float(rng.normal(step / 100, 4)) for step in (1000, 2000, 3000, 4000)} for seed in SEEDS}
    curves[3][2500] = 99.0
    del curves[5][4000]
    rows = []
    for seed in SEEDS:
        curve = [[step, value] for step, value in sorted(curves[seed].items())]
        if seed == 6:
            curve = [[step, float("nan") if step == 4000 else value] for step, value in curve]
        rows += [make_row("a", seed, condition, rng.normal(10, 2)) | {"curve": curve}
                 for condition in ("clean", "noise")]
    return rows, curves


def test_sample_efficiency_is_the_iqm_over_seeds_on_the_steps_every_seed_has() -> None:
    rows, curves = curve_rows(np.random.default_rng(7))
    curve = compute_statistics(rows, "a")["curves"][SCENARIO]["a"]
    assert curve["steps"] == [1000, 2000, 3000] and curve["dropped_steps"] == 2 and curve["n_seeds"] == len(SEEDS)
    for i, step in enumerate(curve["steps"]):
        values = np.array([curves[seed][step] for seed in SEEDS])
        assert curve["iqm"][i] == pytest.approx(scipy_stats.trim_mean(values, 0.25))
        low, high = scipy_band(values)
        spread = values.std()
        assert curve["low"][i] == pytest.approx(low, abs=0.15 * spread)
        assert curve["high"][i] == pytest.approx(high, abs=0.15 * spread)
        assert curve["low"][i] < curve["iqm"][i] < curve["high"][i]


def test_a_single_seed_curve_has_no_band() -> None:
    rows = [make_row("a", 0, "clean", 1.0)]
    curve = compute_statistics(rows, "a")["curves"][SCENARIO]["a"]
    assert curve["iqm"] == [0.5, 1.0] and curve["low"] == [None, None]  # make_row's curve: score / 2, score


# --- difference from the baseline, seeds, crash rate -----------------------------------------------------------------


def test_difference_is_the_iqm_difference_with_a_bootstrap_interval() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(12, 3, 8), rng.normal(10, 3, 6)
    rows = [make_row("x", seed, "clean", value) for seed, value in enumerate(x)]
    rows += [make_row("base", seed, "clean", value) for seed, value in enumerate(y)]
    difference = compute_statistics(rows, "base")["differences"]["clean"]["x"]
    assert difference["value"] == pytest.approx(scipy_stats.trim_mean(x, 0.25) - scipy_stats.trim_mean(y, 0.25))
    def iqm_gap(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
        return scipy_stats.trim_mean(a, 0.25, axis=axis) - scipy_stats.trim_mean(b, 0.25, axis=axis)

    reference = scipy_stats.bootstrap((x, y), iqm_gap, n_resamples=20_000, method="percentile",
                                      random_state=1).confidence_interval
    assert difference["low"] == pytest.approx(reference.low, abs=0.4) and difference["high"] == pytest.approx(
        reference.high, abs=0.4)
    # On one scenario it is the verdicts' interval (experiments.sequential): the plot and the headline agree.
    verdict = iqm_difference_ci(x, y)
    assert (difference["low"], difference["high"]) == pytest.approx((verdict.low, verdict.high))
    assert (difference["n_seeds"], difference["n_baseline_seeds"]) == (8, 6)


def test_difference_across_scenarios_pools_seeds_and_scenarios() -> None:
    scores = {"x": {"merge": [1, 2, 3, 4], "exit": [10, 20, 30, 40]}, "base": {"merge": [0, 0, 1, 1], "exit": [5] * 4}}
    rows = [make_row(variant, seed, "clean", value, scenario=scenario)
            for variant, by_scenario in scores.items() for scenario, values in by_scenario.items()
            for seed, value in enumerate(values)]
    difference = compute_statistics(rows, "base")["differences"]["clean"]["x"]
    pooled = {v: np.concatenate([np.array(s, dtype=float) for s in by.values()]) for v, by in scores.items()}
    assert difference["value"] == pytest.approx(scipy_stats.trim_mean(pooled["x"], 0.25)
                                                - scipy_stats.trim_mean(pooled["base"], 0.25))
    assert difference["scenarios"] == ["merge", "exit"]
    assert difference["low"] <= difference["value"] <= difference["high"]


def test_seed_scores_are_the_rows_scores_with_collapse_marked() -> None:
    rows = [make_row("a", seed, "clean", 3.0 * seed) | {"dominant_action": {"action": 1, "fraction": 1.0}
                                                        if seed == 2 else None} for seed in range(4)]
    dots = compute_statistics(rows, "a")["seed_scores"]["clean"]["a"]
    assert [(d["seed"], d["score"], d["collapsed"]) for d in dots] == [(0, 0.0, False), (1, 3.0, False),
                                                                       (2, 6.0, True), (3, 9.0, False)]


# --- neuromodulated values ----------------------------------------------------------------------------------------


def test_neuro_values_interpolate_seeds_onto_common_steps_and_take_the_iqm() -> None:
    # Each seed's learning rate is linear in the step, logged at its own steps: interpolation is exact, so the IQM
    # at a common step t is the trimmed mean of a_s + b_s t over the seeds.
    lines = {seed: (1e-3 * (1 + seed), 1e-7 * (seed - 3)) for seed in range(6)}
    starts = {seed: 10 * seed for seed in lines}  # the last seed starts at 50: the common range begins there
    series = {("mod", SCENARIO, seed): {"neuro/learning_rate/learning_rate": [
        (float(step), a + b * step) for step in range(starts[seed], 1001 - 20 * (seed % 2), 40)]}
        for seed, (a, b) in lines.items()}
    notes: list[str] = []
    band = neuro_values(series, ["mod"], notes)[SCENARIO]["neuro/learning_rate/learning_rate"]["mod"]
    steps = np.array(band["steps"])
    assert steps.min() >= 50 and steps.max() <= 980 and len(steps) <= 100 and notes == []
    expected = [scipy_stats.trim_mean([a + b * t for a, b in lines.values()], 0.25) for t in steps]
    assert band["iqm"] == pytest.approx(expected)
    assert all(low <= value <= high for low, value, high in zip(band["low"], band["iqm"], band["high"], strict=True))
    disjoint = {("mod", SCENARIO, 0): {"neuro/x/y": [(0.0, 1.0), (10.0, 1.0)]},
                ("mod", SCENARIO, 1): {"neuro/x/y": [(20.0, 1.0), (30.0, 1.0)]}}
    assert neuro_values(disjoint, ["mod"], notes) == {} and "do not overlap" in notes[0]


def test_tensorboard_reader_drops_what_a_resumed_runs_purge_step_replaced(tmp_path: Path) -> None:
    """A run resumed from step 5 writes its file with purge_step=5 (as experiments.runs.session does): the first
    file's points from step 5 on are gone, as in tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    tb_dir = tmp_path / "tb"
    write_tb(tb_dir, {"neuro/learning_rate/learning_rate": [(step, 1.0 + step) for step in range(10)]})
    time.sleep(1.1)  # the second file's name (its timestamp) sorts after the first's
    with SummaryWriter(str(tb_dir), purge_step=5) as writer:
        for step in range(5, 8):
            writer.add_scalar("neuro/learning_rate/learning_rate", 100.0 + step, step)
    points = read_scalars(tb_dir)["neuro/learning_rate/learning_rate"]
    accumulator = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    reference = [(float(e.step), float(e.value)) for e in accumulator.Scalars("neuro/learning_rate/learning_rate")]
    assert points == [(float(step), 1.0 + step) for step in range(5)] + [(float(step), 100.0 + step)
                                                                         for step in range(5, 8)]
    assert points == reference


def test_tensorboard_reader_reads_neuro_scalars_and_skips_missing_or_broken_folders(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    good = tmp_path / "good"
    write_tb(good / "tb", {"neuro/learning_rate/learning_rate": [(0, 1e-3), (100, 2e-3)],
                           "neuro/dopamine/td_error_mean": [(0, 0.5)], "train/loss": [(0, 1.0)]})
    with SummaryWriter(str(good / "tb")) as writer:  # a second file: a tensor-style scalar and a histogram
        writer.add_scalar("neuro/discount/gamma", 0.95, 50, new_style=True)
        writer.add_histogram("neuro/dopamine/signal", np.arange(10.0), 50)
    scalars = read_scalars(good / "tb")
    assert scalars == {"neuro/learning_rate/learning_rate": [(0.0, pytest.approx(1e-3)), (100.0, pytest.approx(2e-3))],
                       "neuro/dopamine/td_error_mean": [(0.0, 0.5)],
                       "neuro/discount/gamma": [(50.0, pytest.approx(0.95))]}
    # tensorboard's own reader agrees on every scalar it sees as one
    accumulator = EventAccumulator(str(good / "tb"), size_guidance={"scalars": 0})
    accumulator.Reload()
    seen = [tag for tag in accumulator.Tags()["scalars"] if tag.startswith("neuro/")]
    assert {"neuro/learning_rate/learning_rate", "neuro/dopamine/td_error_mean"} <= set(seen)
    for tag in seen:
        reference = [(float(e.step), float(e.value)) for e in accumulator.Scalars(tag)]
        assert len(scalars[tag]) == len(reference) and np.allclose(scalars[tag], reference)
    broken = tmp_path / "broken" / "tb"
    broken.mkdir(parents=True)
    (broken / "events.out.tfevents.1.host").write_bytes(b"not an event file" * 20)
    rows = [make_row("mod", 0, "clean", 1.0) | {"run_dir": str(good)},
            make_row("mod", 0, "noise", 1.0) | {"run_dir": str(good)},  # one run, two conditions: read once
            make_row("mod", 1, "clean", 1.0) | {"run_dir": str(tmp_path / "missing")},
            make_row("mod", 2, "clean", 1.0) | {"run_dir": str(tmp_path / "broken")}]
    series, notes = neuro_series(rows)
    # the dopamine TD statistics are signals, not a modulated value: left out
    assert list(series) == [("mod", SCENARIO, 0)] and sorted(series[("mod", SCENARIO, 0)]) == [
        "neuro/discount/gamma", "neuro/learning_rate/learning_rate"]
    assert len(notes) == 1 and "skipped 2 of 3 runs" in notes[0] and "seed 1" in notes[0] and "seed 2" in notes[0]
    assert local_run_dir(f"worker-3:{good}") == good  # a shared grid's host:path


def test_report_draws_neuro_values_only_for_variants_that_log_one(tmp_path: Path) -> None:
    rows = []
    for seed in range(3):
        run = tmp_path / "runs" / f"mod_{seed}"
        write_tb(run / "tb", {"neuro/exploration/epsilon": [(step, 1.0 - step / 1000 + 0.01 * seed)
                                                            for step in range(0, 1000, 100)],
                              "neuro/dopamine/td_error_mean": [(0, 0.1)]})
        plain = tmp_path / "runs" / f"plain_{seed}"
        write_tb(plain / "tb", {"train/loss": [(0, 1.0)]})
        rows += [make_row("mod", seed, "clean", 5.0 + seed) | {"run_dir": str(run)},
                 make_row("plain", seed, "clean", 4.0 + seed) | {"run_dir": str(plain)}]
    report = write_report(tmp_path / "report", rows, "plain", META)
    values = json.loads(report["json"].read_text())["statistics"]["neuro_values"]
    assert list(values[SCENARIO]) == ["neuro/exploration/epsilon"]
    assert list(values[SCENARIO]["neuro/exploration/epsilon"]) == ["mod"]
    assert "neuro_values.png" in {path.name for path in report["plots"]}
    assert 'id="figure-neuro"' in report["html"].read_text()


# --- axes and tables ----------------------------------------------------------------------------------------------


def wide_statistics() -> dict[str, Any]:
    """A grid whose intervals reach far out (an outlier seed), with every plotted statistic."""
    rng = np.random.default_rng(9)
    rows, _ = curve_rows(rng)
    for variant, shift in (("b", 30.0), ("c", -40.0)):
        rows += [make_row(variant, seed, condition, rng.normal(shift, 15) + (200 if seed == 0 else 0),
                          crashed=[bool(rng.random() < 0.5) for _ in range(4)])
                 for seed in SEEDS for condition in ("clean", "noise")]
    stats = compute_statistics(rows, "a")
    series = {("b", SCENARIO, seed): {"neuro/discount/gamma": [(float(s), 0.9 + 0.01 * seed * np.sin(s))
                                                                for s in range(0, 50, 5)]} for seed in SEEDS}
    stats["neuro_values"] = neuro_values(series, stats["variants"], stats["notes"])
    return stats


def test_axis_limits_hold_every_interval_end_with_a_margin() -> None:
    import matplotlib.pyplot as plt

    stats = wide_statistics()

    def inside(limits: tuple[float, float], ends: list[float | None]) -> None:
        finite = [end for end in ends if end is not None]
        assert finite
        low, high = sorted(limits)
        assert low < min(finite) and max(finite) < high, (limits, min(finite), max(finite))

    def estimate_ends(estimates: list[dict[str, Any]]) -> list[float | None]:
        return [e[key] for e in estimates for key in ("value", "low", "high")]

    aggregate, conditions = stats["aggregate"], stats["conditions"]
    checks = {
        "difference": (report_plots.difference_figure(stats),
                       estimate_ends([e for c in conditions for e in stats["differences"][c].values()]) + [0.0]),
        "crash": (report_plots.FIGURES["crash_rate.png"](stats),
                  estimate_ends([e["crash_rate"] for c in conditions for e in aggregate[c].values()])),
        "seeds": (report_plots.seed_figure(stats),
                  estimate_ends([e["iqm"] for c in conditions for e in aggregate[c].values()])
                  + [d["score"] for c in conditions for dots in stats["seed_scores"][c].values() for d in dots]),
        "poi": (report_plots.interval_figure(stats, ["b", "c"], "probability_of_improvement", "P", "P", [0.5]),
                estimate_ends([aggregate[c][v]["probability_of_improvement"] for c in conditions for v in "bc"])),
    }
    for name, (figure, ends) in checks.items():
        assert figure is not None, name
        for axis in figure.axes:
            inside(axis.get_xlim(), ends)
        plt.close(figure)
    for figure, panels in ((report_plots.sample_efficiency_figure(stats), [
            band for by_variant in stats["curves"].values() for band in [list(by_variant.values())]]),
            (report_plots.neuro_figure(stats), [list(by_variant.values()) for by_tag in stats["neuro_values"].values()
                                                for by_variant in by_tag.values()])):
        assert len(figure.axes) == len(panels)
        for axis, bands in zip(figure.axes, panels, strict=True):
            inside(axis.get_ylim(), [v for band in bands for key in ("iqm", "low", "high") for v in band[key]])
        plt.close(figure)


def table_columns(html: str) -> dict[str, list[str]]:
    """The first summary table's cells by header, as text (an interval follows its value after a space)."""
    table = re.search(r'<table class="summary">(.*?)</table>', html, re.S)
    assert table
    headers = [html_module.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<th>(.*?)</th>", table.group(1))]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1))[1:]]
    clean = [[re.sub(r"<[^>]+>", " ", cell).strip() for cell in row] for row in rows]
    return {header: [row[i] for row in clean] for i, header in enumerate(headers)}


def test_each_column_kind_has_one_precision(tmp_path: Path) -> None:
    scores = np.random.default_rng(10).normal(1, 1, 4)
    speeds = [20.0, 21.25, 3.0, 100.0]
    rows = [make_row(v, seed, "clean", score * scale, speed=speed)
            for v, scale in (("a", 1.0), ("b", 1234.5), ("c", 0.001))
            for seed, (score, speed) in enumerate(zip(scores, speeds, strict=True))]
    html = write_report(tmp_path, rows, "a", META)["html"].read_text()
    columns = table_columns(html)
    number = r"-?\d+\.\d{2}"
    for header in ("mean [95% CI]", "median [95% CI]", "IQM [95% CI]", "crash rate [95% t CI, seeds]"):
        for cell in columns[header]:
            assert re.fullmatch(rf"{number} \[{number}, {number}\]", cell), (header, cell)
    assert all(re.fullmatch(rf"{number} \[{number}, {number}\]", c) for c in columns["P(> baseline) [95% CI]"][1:])
    assert all(re.fullmatch(r"\d+\.\d", cell) for cell in columns["mean speed"])
    assert not any("-0.00" in cell for cells in columns.values() for cell in cells)  # a zero has no sign
