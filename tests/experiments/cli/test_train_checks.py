"""`neurodrive train` through the real command line (a subprocess of this checkout's code): a config
error is one line naming its source (the file or ``--set``) with a suggestion for a near miss; a run
ends with its evaluations, its best model and the next commands, says each thing once, and writes
its result files with the umask's mode."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests_support import EXPERIMENTS, REPO

SMOKE = EXPERIMENTS / "smoke.yaml"


def neurodrive(*args: str, umask: int | None = None, env_extra: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}  # this checkout, wherever pytest runs
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=REPO, preexec_fn=None if umask is None else lambda: os.umask(umask))


def with_settings(*settings: str) -> list[str]:
    return [arg for setting in settings for arg in ("--set", setting)]


@pytest.fixture
def misspelt(tmp_path) -> Path:
    """smoke.yaml with ``total_timesteps`` misspelt in the file."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["training"]["total_timestep"] = raw["training"].pop("total_timesteps")
    path = tmp_path / "misspelt.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_misspelt_override_is_blamed_on_set_with_a_suggestion(tmp_path):
    line = one_line_error(neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={tmp_path}", "training.total_timestep=10")))
    assert line.startswith("error: --set: training.total_timestep: unknown key; allowed: total_timesteps, seed")
    assert line.endswith("did you mean total_timesteps?")
    assert str(SMOKE) not in line  # the file is fine
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_misspelt_file_key_is_blamed_on_the_file_even_beside_overrides(tmp_path, misspelt):
    line = one_line_error(neurodrive("train", str(misspelt), *with_settings(
        f"logging.root={tmp_path}", "training.seed=3")))
    assert line.startswith(f"error: {misspelt}: training.total_timestep: unknown key")
    # the misspelling first; the required key it leaves missing after it
    assert line.endswith("; did you mean total_timesteps? (and 1 more: training.total_timesteps)")
    assert "--set" not in line


@pytest.mark.slow
def test_an_env_config_key_is_checked_and_does_not_move_the_run_to_highway_env(tmp_path):
    """Under ``backend: auto`` a key the scenario lacks used to pick the highway-env backend and change nothing."""
    line = one_line_error(neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={tmp_path}", "env.config.lanes_cont=3")))
    assert line.startswith("error: --set: env.config.lanes_cont: highway-fast-v0 has no config key 'lanes_cont'")
    assert line.endswith("did you mean lanes_count?")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_malformed_yaml_is_one_line_with_its_position(tmp_path):
    line = one_line_error(neurodrive("train", str(SMOKE), "--set", "training.total_timesteps=[1"))
    assert line == ("error: --set training.total_timesteps: malformed YAML: expected ',' or ']', "
                    "but got '<stream end>' at line 1, column 3")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntraining: {total_timesteps: 5\n")
    line = one_line_error(neurodrive("train", str(broken)))
    assert line.startswith(f"error: {broken}: malformed YAML: ") and line.endswith("at line 3, column 1")


@pytest.mark.slow
def test_a_value_highway_env_cannot_build_is_a_config_error(tmp_path):
    # the schema checks the shape and the stack; the weights' length only highway-env finds out
    observation = "env.config.observation={type: GrayscaleObservation, observation_shape: [36, 36], weights: [0.5]}"
    line = one_line_error(neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={tmp_path}", "env.n_envs=2", "agent.policy=CnnPolicy", observation)))
    assert line.startswith("error: env.config: highway-env cannot build highway-fast-v0 with this config: ")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_policy_the_observation_does_not_fit_is_a_config_error(tmp_path):
    """CnnPolicy on Kinematics vectors (which SB3 asserts against): one line naming agent.policy, the space and
    the policy that fits; on the native port it is found building the agent, so the folder says failed."""
    result = neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={tmp_path}", "agent.policy=CnnPolicy", "agent.policy_kwargs={}"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: agent.policy: CnnPolicy reads images (a uint8 Box of rank 3, as GrayscaleObservation gives); "
        "this observation is Box(-inf, inf, (5, 5), float32); use MlpPolicy")
    (run_dir,) = (tmp_path / "smoke").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_image_observations_train(tmp_path):
    """The issue's GrayscaleObservation (lists from YAML where highway-env concatenates tuples), smaller."""
    observation = ("env.config.observation={type: GrayscaleObservation, observation_shape: [36, 36], stack_size: 2, "
                   "weights: [0.2989, 0.5870, 0.1140]}")
    result = neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={tmp_path}", observation, "env.n_envs=1", "agent.policy=CnnPolicy", "agent.policy_kwargs={}",
        "agent.hyperparameters.learning_starts=10", "agent.hyperparameters.buffer_size=100",
        "training.total_timesteps=30", "training.eval_every=0", "training.eval_episodes=1",
        "training.checkpoint_every=0"))
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "smoke").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["backend"]["chosen"] == "highway-env"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())["env"]["config"]["observation"]
    assert saved["observation_shape"] == [36, 36]  # saved as written, reloadable
    assert "XDG_RUNTIME_DIR" not in result.stderr  # image observations render: SDL gets its folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny run under umask 027, with matplotlib's font cache to build (a fresh MPLCONFIGDIR)."""
    root = tmp_path_factory.mktemp("runs")
    result = neurodrive("train", str(SMOKE), *with_settings(
        f"logging.root={root}", "training.total_timesteps=200", "training.eval_every=100",
        "training.eval_episodes=2", "logging.progress_bar=false"),
        umask=0o027, env_extra={"MPLCONFIGDIR": str(root / "fresh-matplotlib")})
    assert result.returncode == 0, result.stderr
    (run_dir,) = (root / "smoke").iterdir()
    return run_dir, result


def test_train_ends_with_the_final_and_best_evaluation_and_the_next_commands(tiny_run):
    run_dir, result = tiny_run
    evaluations = json.loads((run_dir / "eval.json").read_text())
    final, best = evaluations["final"], evaluations["best"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"run folder: {run_dir}"
    (final_line,) = [line for line in lines if line.startswith("final evaluation")]
    numbers = [float(n) for n in re.findall(r"-?\d+\.?\d*", final_line.partition(":")[2])]
    assert f"(step {final['step']})" in final_line
    assert numbers[:4] == [round(final["mean_return"], 2), round(final["std_return"], 2),
                           round(100 * final["crash_rate"]), round(final["mean_speed"], 1)]
    assert f"best model: {run_dir / 'best_model.zip'} (step {best['step']}, return {best['mean_return']:.2f})" in lines
    assert f"  neurodrive evaluate {run_dir} --model best" in "\n".join(lines)
    assert f"  neurodrive record {run_dir}" in lines
    assert f"  tensorboard --logdir {run_dir / 'tb'}" in lines


def test_without_a_progress_bar_each_evaluation_is_a_log_line(tiny_run):
    run_dir, result = tiny_run
    records = json.loads((run_dir / "eval.json").read_text())["evaluations"]
    logged = [line for line in result.stderr.splitlines() if "evaluation at step" in line]
    assert [int(re.search(r"step (\d+)", line)[1]) for line in logged] == [r["step"] for r in records] == [100, 200]
    assert all(f"return {r['mean_return']:.2f}" in line for line, r in zip(logged, records, strict=True))


def test_a_run_says_each_thing_once(tiny_run):
    _, result = tiny_run
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), lines
    assert not [line for line in lines if "requested" in line or "matplotlib" in line.lower()]
    assert len([line for line in lines if "envpool" in line]) == 1  # the backend, named once


def test_result_files_follow_the_umask(tiny_run):
    run_dir, _ = tiny_run
    expected = 0o640  # 0666 under umask 027, as config.yaml and the model get
    for name in ("run.json", "eval.json", "config.yaml", "model.zip", "checkpoints/latest.json"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == expected, name
