"""`neurodrive compare`: comparison files checked before any run, a tiny grid end to end with two
workers, reruns that skip, evaluate alone, resume or retrain exactly what needs it, Ctrl-C.

Checked against what the runs wrote themselves (run.json, eval.json, model.zip mtimes), not
against the runner's own bookkeeping.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import yaml

from experiments.cli import main
from experiments.compare.runner import collect_results, plan_cell
from experiments.compare.spec import Cell, comparison_from_raw, load_comparison
from experiments.config import ConfigError
from experiments.runs.build import resolve_backend
from tests_support import EXPERIMENTS, REPO

SMOKE = EXPERIMENTS / "smoke.yaml"
SHIPPED = sorted((EXPERIMENTS / "compare").glob("*.yaml"))
# Issue 27's published grids: each condition's backend (the verified native port where it has the scenario,
# highway-env for roundabout and other drivers; the strong agent's clean score, P5, on highway-env itself).
NATIVE_WHERE_VERIFIED = {"clean": "envpool", "merge": "envpool", "roundabout": "highway-env", "noise": "envpool",
                         "dropout": "envpool", "dense": "envpool", "aggressive": "highway-env"}
PUBLISHED_BACKENDS = {"dqn_dopamine": NATIVE_WHERE_VERIFIED, "modulated": NATIVE_WHERE_VERIFIED,
                      "spiking": NATIVE_WHERE_VERIFIED,
                      "strong_agent": {**NATIVE_WHERE_VERIFIED, "clean": "highway-env"}}
ROW_KEYS = {"variant", "scenario", "seed", "condition", "run_dir", "mean_return", "crash_rate", "mean_speed",
            "n_episodes", "returns", "crashed", "dominant_action", "backend", "cross_check", "snn", "curve"}

# Two variants x two seeds, 200 steps each, judged on 2 native episodes clean and after a transfer to merge.
TINY = """
name: tiny
baseline: standard
variants:
  standard: {}
  asymmetric: {neuro.dopamine: {type: asymmetric, kappa: 0.3}}
seeds: 2
fixed: {training.total_timesteps: 200, training.eval_every: 100, training.checkpoint_every: 100}
conditions:
  clean: {}
  merge: {env.id: merge-v0}
evaluation: {episodes: 2, backend: envpool}
"""


def write_comparison(folder: Path, body: str = TINY, name: str = "tiny") -> Path:
    """A comparison file in ``folder`` whose experiment is smoke.yaml by a relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    header = f"experiment: {os.path.relpath(SMOKE, folder)}\nroot: {folder / 'runs'}\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def mtimes(folder: Path, pattern: str) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob(pattern))}


# --- comparison files: checked before any run --------------------------------------------------------


def test_there_are_shipped_comparisons_to_validate():
    assert len(SHIPPED) == 11  # else the tests below would check nothing


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_comparisons_validate(path, quick):
    comparison = load_comparison(path, quick=quick)
    assert comparison.scenarios == ["highway-fast-v0"]
    # Transfer and robustness in every ready comparison; the speed grid (highway_ppo, P6) under three of them.
    everything = {"clean", "merge", "roundabout", "noise", "dropout", "dense"}
    # vision: images take no Kinematics sensor wrapper (noise, dropout); denser traffic fits every space.
    expected = {"clean", "noise", "merge"} if path.stem == "highway_ppo" else \
        {"clean", "dense"} if path.stem in ("vision", "vision_spiking") else everything
    if path.stem.startswith("plasticity"):  # other drivers: the training mix, held-out mixes, transfer under one
        expected = {"train_mix", "aggressive", "defensive", "merge", "roundabout"}
    if path.stem in PUBLISHED_BACKENDS:  # issue 27's grids add aggressive other drivers
        expected = everything | {"aggressive"}
    assert set(comparison.conditions) == expected
    if path.stem == "highway_ppo":  # on the verified native port, each variant's first seed also on highway-env
        assert comparison.evaluation.backend == "auto" and comparison.seeds[:2] == [0, 100]
        assert [comparison.cross_check_backend(cell) for cell in comparison.cells()[:2]] == ["highway-env", None]
        assert len(comparison.variants) == 4 and len(comparison.seeds) == (2 if quick else 10)
    elif path.stem in PUBLISHED_BACKENDS:
        cell = comparison.cells()[0]
        run_config = comparison.cell_config(cell)
        backends = {condition: resolve_backend(comparison.condition_config(run_config, condition))[1].backend
                    for condition in comparison.conditions}
        assert backends == PUBLISHED_BACKENDS[path.stem]
        assert comparison.cross_check_backend(cell) is None  # the budget goes to seeds (docs/results.md)
        assert quick or comparison.sequential is not None or path.stem == "strong_agent"
    else:
        assert comparison.evaluation.backend == "highway-env"  # final scores on the reference simulator
    if quick:  # a CI smoke run: a few hundred steps (a few PPO rollouts), two seeds, in its own folder
        assert comparison.seeds == [0, 100] and comparison.name.endswith("-quick")
        assert all(comparison.cell_config(cell).training.total_timesteps <= 4096 for cell in comparison.cells())


def test_a_good_file_loads_with_its_cells_folders_and_quick_block(tmp_path):
    body = TINY + "quick: {seeds: [7], fixed: {training.eval_every: 50}, evaluation: {episodes: 1}}\n"
    path = write_comparison(tmp_path, body)
    comparison = load_comparison(path)
    assert comparison.seeds == [0, 100]  # spaced: no two runs share derived env seeds
    assert [cell.label for cell in comparison.cells()] == [
        "standard/highway-fast-v0/seed0", "standard/highway-fast-v0/seed100",
        "asymmetric/highway-fast-v0/seed0", "asymmetric/highway-fast-v0/seed100"]
    cell = Cell("asymmetric", "highway-fast-v0", 100)
    assert comparison.cell_dir(cell) == tmp_path / "runs" / "tiny" / "asymmetric" / "highway-fast-v0" / "seed100"
    config = comparison.cell_config(cell)
    assert config.neuro["dopamine"] == {"type": "asymmetric", "kappa": 0.3}
    assert config.training.seed == 100 and config.training.total_timesteps == 200
    merge = comparison.condition_config(config, "merge")
    assert merge.env.id == "merge-v0" and merge.env.backend == "envpool"
    quick = load_comparison(path, quick=True)
    assert quick.seeds == [7] and quick.folder == tmp_path / "runs" / "tiny-quick"
    assert quick.evaluation.episodes == 1 and quick.evaluation.backend == "envpool"  # merged over the file's
    assert quick.cell_config(Cell("standard", "highway-fast-v0", 7)).training.eval_every == 50


@pytest.mark.parametrize("change, expected", [
    ({"variants": {"standard": {}, "bad": {"neuro.dopamine": {"type": "asymmetric", "kappa": 1.5}}}},
     ["variants.bad.neuro.dopamine.kappa: must be in (-1, 1)"]),
    ({"variants": {"standard": {}, "bad": {"agent.hyperparameters.learning_rat": 1e-3}}},
     ["variants.bad.agent.hyperparameters.learning_rat", "has no such argument", "allowed:", "learning_rate"]),
    ({"variants": {"standard": {}, "bad": {"training.seed": 3}}},
     ["variants.bad.training.seed: set by the comparison (seeds)"]),
    ({"conditions": {"merge": {"env.id": "merge-v9"}}},
     ["conditions.merge.env.id: unknown scenario 'merge-v9'", "allowed:", "merge-v0"]),
    ({"conditions": {"dense_merge": {"env.id": "merge-v0", "env.config.vehicles_density": 2}}},
     ["conditions.dense_merge.env.config.vehicles_density: merge-v0 has no config key", "allowed:"]),
    ({"conditions": {"noisy": {"env.wrappers": [{"type": "sensor_dropout", "probability": 1.5}]}}},
     ["conditions.noisy.env.wrappers.0.probability: must be in [0, 1)"]),
    ({"conditions": {"spiking": {"agent.policy": "spiking"}}},
     ["conditions.spiking.agent.policy", "allowed: env.id, env.backend, env.config, env.wrappers"]),
    ({"conditions": {"crossing": {"env.id": "intersection-v0", "env.backend": "highway-env"}}},
     ["conditions.crossing.env: intersection-v0 observes", "Discrete(3)", "Discrete(5)"]),
    # racetrack's default actions are continuous: refused before its spaces are compared, naming the action type
    ({"conditions": {"racing": {"env.id": "racetrack-v0", "env.backend": "highway-env"}}},
     ["conditions.racing.env.config.action.type: ContinuousAction (racetrack-v0's default)", "DopamineDQN"]),
    ({"baseline": "nope"}, ["baseline: 'nope' is not a variant; allowed: standard, asymmetric"]),
    ({"colour": "red"}, ["colour: unknown key; allowed: name, experiment, baseline, variants"]),
    ({"evaluation": {"backend": "gpu"}}, ["evaluation.backend", "'auto', 'envpool' or 'highway-env'"]),
    ({"quick": {"seedz": 2}}, ["quick.seedz: unknown key; allowed: fixed, seeds, scenarios, evaluation"]),
    ({"fixed": {"training.total_timesteps": -1}},
     ["fixed.training.total_timesteps: Input should be greater than or equal to 1"]),
    ({"scenarios": ["nope-v0"]}, ["scenarios.0: unknown scenario 'nope-v0'; allowed:"]),
])
def test_bad_comparison_files_name_the_field_and_the_allowed_values(tmp_path, change, expected):
    raw = {**yaml.safe_load(TINY), "experiment": str(SMOKE), "root": str(tmp_path), **change}
    with pytest.raises(ConfigError) as error:
        comparison_from_raw(raw, "cmp.yaml", tmp_path)
    message = str(error.value)
    assert message.startswith("cmp.yaml: ")
    for part in expected:
        assert part in message, message
    assert not (tmp_path / "tiny").exists()  # nothing ran


def test_a_bad_comparison_fails_on_the_command_line_before_any_run(tmp_path, capsys):
    path = write_comparison(tmp_path, TINY.replace("kappa: 0.3", "kappa: 1.5"))
    assert main(["compare", str(path), "--workers", "2"]) == 2
    assert "variants.asymmetric.neuro.dopamine.kappa: must be in (-1, 1)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_named_run_folder_is_fixed_and_never_reused(tmp_path):
    from experiments.config import load_config
    from experiments.runs.folder import create_run_dir

    config = load_config(SMOKE, [f"logging.root={tmp_path}", "logging.name=variant/scenario", "logging.run_name=seed0"])
    assert create_run_dir(config) == tmp_path / "variant" / "scenario" / "seed0"
    with pytest.raises(ConfigError, match=r"logging.run_name: .*seed0 already exists; continue it with"):
        create_run_dir(config)


# --- a tiny grid end to end --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The tiny grid, run once by the CLI with two workers; ``write_report`` recorded (the real one
    still runs when it exists)."""
    path = write_comparison(tmp_path_factory.mktemp("compare"))
    calls: list[dict] = []
    try:
        from experiments.compare import report
    except ModuleNotFoundError:  # written beside this module; until it exists, a stand-in
        report = types.SimpleNamespace(write_report=None)
    real = report.write_report

    def recording(out_dir, rows, baseline, meta):
        calls.append({"out_dir": Path(out_dir), "rows": rows, "baseline": baseline, "meta": meta})
        return real(out_dir, rows, baseline, meta) if real is not None else None

    with pytest.MonkeyPatch.context() as patch:
        if isinstance(report, types.SimpleNamespace):
            patch.setitem(sys.modules, "experiments.compare.report", report)
        patch.setattr(report, "write_report", recording)
        assert main(["compare", str(path), "--workers", "2"]) == 0
        yield types.SimpleNamespace(path=path, comparison=load_comparison(path), calls=calls,
                                    real_report=real is not None)


@pytest.mark.slow
def test_each_cell_is_a_run_folder_evaluated_under_every_condition(grid):
    comparison = grid.comparison
    for cell in comparison.cells():
        run_dir = comparison.cell_dir(cell)
        assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
        assert (run_dir / "model.zip").is_file()
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["training"]["seed"] == cell.seed and config["training"]["total_timesteps"] == 200
        assert config["neuro"].get("dopamine", {}).get("type", "standard") == cell.variant
        for condition, env_id in (("clean", "highway-fast-v0"), ("merge", "merge-v0")):
            record = json.loads((run_dir / f"compare-{condition}.json").read_text())
            assert record["env_id"] == env_id and record["backend"] == "envpool" and record["seed"] == cell.seed
            assert record["summary"]["n_episodes"] == 2 and len(record["episodes"]["returns"]) == 2


@pytest.mark.slow
def test_results_have_one_complete_row_per_cell_and_condition(grid):
    rows = collect_results(grid.comparison)
    assert sorted((row["variant"], row["seed"], row["condition"]) for row in rows) == sorted(
        (variant, seed, condition) for variant in ("standard", "asymmetric") for seed in (0, 100)
        for condition in ("clean", "merge"))
    for row in rows:
        assert set(row) == ROW_KEYS
        record = json.loads((Path(row["run_dir"]) / f"compare-{row['condition']}.json").read_text())
        assert row["returns"] == record["episodes"]["returns"] and len(row["crashed"]) == row["n_episodes"] == 2
        assert row["mean_return"] == pytest.approx(sum(row["returns"]) / 2)
        assert row["crash_rate"] == pytest.approx(sum(row["crashed"]) / 2)
        assert row["scenario"] == "highway-fast-v0" and row["snn"] is None  # no spiking policy here
        assert row["backend"] == "envpool"
        # Each variant's first seed again on highway-env (the default cross-check of a native evaluation).
        check = Path(row["run_dir"]) / f"compare-{row['condition']}.highway-env.json"
        assert check.is_file() == (row["seed"] == 0) and (row["cross_check"] is not None) == (row["seed"] == 0)
        if row["seed"] == 0:
            reference = json.loads(check.read_text())
            assert reference["backend"] == row["cross_check"]["backend"] == "highway-env"
            assert row["cross_check"]["returns"] == reference["episodes"]["returns"]
        assert [step for step, _ in row["curve"]] == [100, 200]


@pytest.mark.slow
def test_the_report_gets_every_row_the_baseline_and_the_meta(grid):
    (call,) = grid.calls
    comparison = grid.comparison
    assert call["out_dir"] == comparison.folder / "report" and call["baseline"] == "standard"
    assert call["rows"] == collect_results(comparison)
    meta = call["meta"]
    assert set(meta) == {"name", "compare_file", "configs", "commit", "versions", "command", "condition_kinds",
                         "fingerprint"}
    assert meta["condition_kinds"] == {"clean": "clean", "merge": "transfer"}
    assert sorted(meta["fingerprint"]["cells"]) == sorted(cell.label for cell in comparison.cells())
    assert len(set(meta["fingerprint"]["cells"].values())) == 4  # a digest per cell: variant and seed both differ
    assert meta["name"] == "tiny" and meta["compare_file"] == grid.path.read_text()
    assert meta["configs"]["asymmetric"]["neuro"]["dopamine"] == {"type": "asymmetric", "kappa": 0.3}
    assert meta["configs"]["standard"]["training"]["seed"] == 0
    assert meta["versions"]["stable-baselines3"] and meta["command"][0] == "neurodrive"
    if grid.real_report:
        assert (call["out_dir"] / "report.html").is_file()


@pytest.mark.slow
def test_rerunning_skips_finished_cells(grid, capsys):
    folder = grid.comparison.folder
    before = {**mtimes(folder, "model.zip"), **mtimes(folder, "compare-*.json")}
    assert main(["compare", str(grid.path), "--workers", "2"]) == 0
    assert "4 cells (4 done)" in capsys.readouterr().out
    assert {**mtimes(folder, "model.zip"), **mtimes(folder, "compare-*.json")} == before
    assert len(grid.calls) == 2  # the report is written again


@pytest.mark.slow
def test_a_missing_condition_file_is_evaluated_alone(grid):
    comparison, folder = grid.comparison, grid.comparison.folder
    cell = Cell("asymmetric", "highway-fast-v0", 0)
    missing = comparison.cell_dir(cell) / "compare-merge.json"
    missing.unlink()
    assert plan_cell(comparison, cell) == "evaluate"
    models, evaluations = mtimes(folder, "model.zip"), mtimes(folder, "compare-*.json")
    assert main(["compare", str(grid.path)]) == 0  # one worker: in this process
    assert mtimes(folder, "model.zip") == models  # nothing retrained
    after = mtimes(folder, "compare-*.json")
    assert after.pop(str(missing.relative_to(folder))) and after == evaluations  # the others untouched
    assert json.loads(missing.read_text())["env_id"] == "merge-v0"


@pytest.mark.slow
def test_a_failed_cell_resumes_and_one_without_checkpoint_trains_again(grid):
    comparison = grid.comparison
    failed, lost = Cell("standard", "highway-fast-v0", 100), Cell("asymmetric", "highway-fast-v0", 100)
    for cell, status in ((failed, "failed"), (lost, "interrupted")):
        run_dir = comparison.cell_dir(cell)
        meta = json.loads((run_dir / "run.json").read_text())
        (run_dir / "run.json").write_text(json.dumps({**meta, "status": status}))
        (run_dir / "model.zip").unlink()
    shutil.rmtree(comparison.cell_dir(lost) / "checkpoints")
    assert plan_cell(comparison, failed) == "resume" and plan_cell(comparison, lost) == "retrain"
    untouched = [cell for cell in comparison.cells() if cell not in (failed, lost)]
    before = {cell: mtimes(comparison.cell_dir(cell), "*.*") for cell in untouched}
    assert main(["compare", str(grid.path), "--workers", "2"]) == 0
    resumed = json.loads((comparison.cell_dir(failed) / "run.json").read_text())
    retrained = json.loads((comparison.cell_dir(lost) / "run.json").read_text())
    assert resumed["status"] == retrained["status"] == "finished"
    assert [entry["from_step"] for entry in resumed["resumed"]] == [100] and "resumed" not in retrained
    for cell in (failed, lost):
        assert (comparison.cell_dir(cell) / "model.zip").is_file()
        assert {json.loads(path.read_text())["condition"] for path in comparison.cell_dir(cell).glob("compare-*")} \
            == {"clean", "merge"}
    assert {cell: mtimes(comparison.cell_dir(cell), "*.*") for cell in untouched} == before
    assert len(collect_results(comparison)) == 8


# --- Ctrl-C ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_with_a_checkpoint_and_exits_130(tmp_path):
    body = TINY.replace("total_timesteps: 200", "total_timesteps: 50000").replace("seeds: 2", "seeds: 1")
    path = write_comparison(tmp_path, body)
    comparison = load_comparison(path)
    # A new session: the signal reaches the command and its workers, as a terminal's Ctrl-C does.
    process = subprocess.Popen([sys.executable, "-m", "experiments.cli", "compare", str(path), "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                               start_new_session=True)
    progress = [comparison.cell_dir(cell) / "tb" / "progress.csv" for cell in comparison.cells()]
    deadline = time.monotonic() + 120
    while not all(path.is_file() and path.stat().st_size > 0 for path in progress):  # both are training
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "rerun the same command to continue" in output
    for cell in comparison.cells():
        meta = json.loads((comparison.cell_dir(cell) / "run.json").read_text())
        assert meta["status"] == "interrupted", meta
        assert plan_cell(comparison, cell) == "resume"  # the interrupt saved a checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("path", [path for path in SHIPPED if not path.stem.startswith("plasticity")],
                         ids=lambda path: path.stem)  # plasticity*: tests/experiments/compare/test_plasticity.py
def test_each_shipped_comparison_runs_quick_with_two_workers(path, tmp_path):
    """The CI smoke run of every ready comparison: every cell evaluated under every condition on the
    reference simulator (highway_ppo: on the native port, each variant's first seed also on the reference),
    spiking cells with their energy figures, and the report written."""
    comparison = load_comparison(path, quick=True)
    command = [sys.executable, "-m", "experiments.cli", "compare", str(path), "--quick", "--workers", "2"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    grid = tmp_path / comparison.folder
    for cell in comparison.cells():
        agent = comparison.cell_config(cell).agent
        network = (agent.policy_kwargs or {}).get("network") or {}
        spiking = agent.policy == "spiking" or network.get("type") in ("spiking", "spiking_cnn")
        for condition in comparison.conditions:
            record = json.loads((tmp_path / comparison.cell_dir(cell) / f"compare-{condition}.json").read_text())
            if path.stem in PUBLISHED_BACKENDS:  # each condition where the file puts it, no cross-check
                assert record["backend"] == PUBLISHED_BACKENDS[path.stem][condition], (cell.label, condition)
                native, cross_checked = False, False
            else:
                native = comparison.evaluation.backend != "highway-env"  # highway_ppo: every condition has a port
                assert record["backend"] == ("envpool" if native else "highway-env"), (cell.label, condition)
                cross_checked = native and cell.seed == comparison.seeds[0]
            check = tmp_path / comparison.cell_dir(cell) / f"compare-{condition}.highway-env.json"
            assert check.is_file() == cross_checked, (cell.label, condition)
            assert record["summary"]["n_episodes"] == comparison.evaluation.episodes
            assert (record["snn"] is not None) == spiking, (cell.label, condition)
    results = json.loads((grid / "report" / "results.json").read_text())
    # Until conclusive (a sequential: block), a look may add seeds beyond the quick grid's first look.
    trained = {(row["variant"], row["seed"]) for row in results["rows"]}
    assert {(cell.variant, cell.seed) for cell in comparison.cells()} <= trained
    assert len(results["rows"]) == len(trained) * len(comparison.conditions)
    assert (results["meta"].get("sequential") is not None) == (comparison.sequential is not None)
    assert (grid / "report" / "report.html").stat().st_size > 10_000


def test_results_come_only_from_cells_trained_with_the_files_config(tmp_path):
    """collect_results (the report, --report-only included) refuses a cell folder whose saved config is not the one
    the file gives it now, naming the field: a report never files another config's numbers under this file."""
    from experiments.runs.build import resolve_backend

    comparison = load_comparison(write_comparison(tmp_path))
    for cell in comparison.cells():  # finished cells as training leaves them, without training
        run_dir = comparison.cell_dir(cell)
        run_dir.mkdir(parents=True)
        config = resolve_backend(comparison.cell_config(cell))[0].model_dump(mode="json")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(config))))
        (run_dir / "run.json").write_text(json.dumps({"status": "finished"}))
        for condition in comparison.conditions:
            record = {"condition": condition, "settings": comparison.evaluation_settings(condition),
                      "summary": {"mean_return": 1.0, "crash_rate": 0.0, "mean_speed": 20.0, "n_episodes": 1},
                      "episodes": {"returns": [1.0], "crashed": [False]}}
            (run_dir / f"compare-{condition}.json").write_text(json.dumps(record))
    assert len(collect_results(comparison)) == 4 * 2
    edited = comparison.cell_dir(Cell("asymmetric", "highway-fast-v0", 100)) / "config.yaml"
    saved = yaml.safe_load(edited.read_text())
    saved["neuro"]["dopamine"]["kappa"] = 0.5  # trained with another kappa than the file says
    edited.write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"trained with another config .*neuro\.dopamine\.kappa"):
        collect_results(comparison)
