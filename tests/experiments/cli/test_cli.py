"""End to end: `neurodrive train` on the smoke config, then `evaluate`, `record` and `envs`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3 import DQN

from envs import SCENARIOS
from tests_support import BOTH_BACKENDS, EXPERIMENTS


def neurodrive(*args: str, cwd: Path | None = None, env_extra: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    env = {key: value for key, value in {**os.environ, **(env_extra or {})}.items() if value != ""}
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    result = neurodrive("train", str(EXPERIMENTS / "smoke.yaml"), "--set", f"logging.root={root}")
    assert result.returncode == 0, result.stderr
    (run,) = (root / "smoke").iterdir()
    assert f"run folder: {run}" in result.stdout.replace("\n", "")
    return run


def test_train_writes_every_file_of_the_run_folder(run_dir):
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"]["backend"] == "envpool"  # `auto` resolved and recorded
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["seed"] == 0 and meta["steps"] >= 300
    assert meta["backend"] == {"requested": "auto", "chosen": "envpool",
                               "reason": "auto: verified native port"}
    assert meta["versions"]["stable-baselines3"] and meta["versions"]["envpool"]
    assert meta["command"][:2] == ["neurodrive", "train"]
    assert run_dir.name.endswith("-seed0")
    assert DQN.load(run_dir / "model.zip").num_timesteps == meta["steps"]
    # Checkpoints at rollout boundaries every 100 steps; the finished model is model.zip.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "latest.json", "step_000000100", "step_000000200"]
    assert sorted(p.name for p in (run_dir / "checkpoints" / "step_000000200").iterdir()) == [
        "best_model.zip", "model.zip", "replay_buffer.pkl", "rng.pt", "state.pkl"]  # best: the step-150 model
    assert DQN.load(run_dir / "checkpoints" / "step_000000200" / "best_model.zip").num_timesteps == 150
    assert DQN.load(run_dir / "checkpoints" / "step_000000200" / "model.zip").num_timesteps == 200
    evaluations = json.loads((run_dir / "eval.json").read_text())["evaluations"]
    assert [e["step"] for e in evaluations] == [150, 300]
    assert all(e["n_episodes"] == 2 for e in evaluations)


def test_tensorboard_has_sb3_eval_and_hparams(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"eval/mean_return", "eval/crash_rate", "eval/mean_speed", "rollout/ep_rew_mean",
            "train/loss"} <= scalars
    assert [event.step for event in events.Scalars("eval/mean_return")] == [150, 300]
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    for name in (b"algo", b"env", b"backend", b"seed", b"learning_rate", b"eval/crash_rate"):
        assert name in hparams


@pytest.mark.slow
def test_best_model_is_the_model_at_the_best_evaluation(run_dir):
    evaluations = json.loads((run_dir / "eval.json").read_text())
    best = max(evaluations["evaluations"], key=lambda record: record["mean_return"])
    assert evaluations["best"] == best
    assert DQN.load(run_dir / "best_model.zip").num_timesteps == best["step"]
    result = neurodrive("evaluate", str(run_dir), "--episodes", "2", "--backend", "envpool", "--model", "best")
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / "evaluate-best-envpool.json").read_text())
    assert report["model"] == "best" and report["summary"]["n_episodes"] == 2


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_evaluate_on_either_backend(run_dir, backend):
    result = neurodrive("evaluate", str(run_dir), "--episodes", "3", "--backend", backend)
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / f"evaluate-{backend}.json").read_text())
    assert report["backend"] == backend
    assert report["summary"]["n_episodes"] == 3 == len(report["episodes"]["returns"])
    assert report["summary"]["mean_return"] == pytest.approx(np.mean(report["episodes"]["returns"]))


@pytest.mark.slow
def test_record_writes_a_video_with_real_frames(run_dir):
    import imageio.v2 as imageio

    result = neurodrive("record", str(run_dir), "--episodes", "1", env_extra={"XDG_RUNTIME_DIR": ""})
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()  # SDL's XDG_RUNTIME_DIR complaint is not shown
    (video,) = (run_dir / "videos").glob("*.mp4")
    frames = np.stack([frame for frame in imageio.get_reader(video)])  # len() is inf
    assert len(frames) >= 3 and frames.shape[-1] == 3
    # Not blank: grey road, white markings and coloured cars, and the scene changes over time.
    assert all(frame.std() > 10 for frame in frames)
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 20
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1


def test_envs_lists_every_scenario():
    result = neurodrive("envs")
    assert result.returncode == 0, result.stderr
    for env_id in SCENARIOS:
        assert env_id in result.stdout
    for env_id in ("merge-v1", "intersection-v2", "racetrack-large-v1", "u-turn-v1", "parking-parked-v0"):
        assert env_id in result.stdout  # highway-env 1.12's newer ids, read from its registry
    assert "multi-agent" not in result.stdout
    assert "out of date" not in result.stderr  # gymnasium's per-env warning is muted


def test_bad_config_fails_before_any_work(tmp_path):
    root = tmp_path / "runs"
    result = neurodrive("train", str(EXPERIMENTS / "smoke.yaml"), "--set", f"logging.root={root}",
                        "--set", "env.backend=gpu")
    assert result.returncode == 2
    assert "env.backend" in result.stderr and "highway-env" in result.stderr
    assert not root.exists()


@pytest.mark.slow
def test_evaluate_errors_name_the_problem(tmp_path, run_dir):
    result = neurodrive("evaluate", str(tmp_path / "missing"))
    assert result.returncode == 2 and "no such run folder" in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["agent"] = {"algo": "ppo"}
    (foreign / "config.yaml").write_text(yaml.safe_dump(config))
    (foreign / "model.zip").write_bytes((run_dir / "model.zip").read_bytes())
    result = neurodrive("evaluate", str(foreign))
    assert result.returncode == 2 and "cannot load as agent.algo='ppo'" in result.stderr


def test_run_names_are_unique(tmp_path):
    from experiments.config import load_config
    from experiments.runs.folder import create_run_dir

    config = load_config(EXPERIMENTS / "smoke.yaml", [f"logging.root={tmp_path}"])
    assert len({create_run_dir(config) for _ in range(3)}) == 3


def train_briefly(experiment: Path, root: Path, *settings: str) -> subprocess.CompletedProcess:
    """``neurodrive train`` under ``root`` with one evaluation episode, no checkpoints and ``settings``."""
    quick = [f"logging.root={root}", "training.eval_episodes=1", "training.eval_n_envs=1",
             "training.checkpoint_every=0", "logging.progress_bar=false", *settings]
    return neurodrive("train", str(experiment), *(arg for setting in quick for arg in ("--set", setting)))


@pytest.mark.slow
def test_train_with_a_dopamine_module_logs_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train_briefly(EXPERIMENTS / "dopamine" / "dqn_distributional.yaml", tmp_path,
                           "training.total_timesteps=300", "agent.hyperparameters.learning_starts=50",
                           "training.eval_every=0", "neuro.dopamine.n_channels=5")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "dqn_distributional").iterdir()
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert {"neuro/dopamine/td_error_mean", "neuro/dopamine/signal_std", "neuro/dopamine/value_spread",
            "neuro/dopamine/channel_value/tau_0.100"} <= set(events.Tags()["scalars"])
    assert "neuro/dopamine/signal" in events.Tags()["histograms"]
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    assert b"neuro.dopamine.type" in hparams and b"distributional" in hparams


@pytest.mark.slow
def test_train_with_modulators_logs_every_value_and_signal(tmp_path):
    """PPO with a modulator of each kind: TensorBoard scalars per update, HParams, eval.json's values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train_briefly(EXPERIMENTS / "modulation" / "ppo_surprise.yaml", tmp_path,
                           "training.total_timesteps=256", "env.n_envs=2", "agent.hyperparameters.n_steps=32",
                           "agent.hyperparameters.batch_size=32", "agent.hyperparameters.n_epochs=1",
                           "training.eval_every=128", "neuro.exploration={type: surprise}",
                           "neuro.discount={type: reward_rate}")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "ppo_surprise").iterdir()
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"neuro/learning_rate/learning_rate", "neuro/learning_rate/associability", "neuro/exploration/ent_coef",
            "neuro/exploration/exploration_associability", "neuro/discount/gamma", "neuro/discount/reward_rate"} <= tags
    assert len(events.Scalars("neuro/learning_rate/learning_rate")) >= 2  # one point per logged update
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    assert b"neuro.learning_rate.type" in hparams and b"neuro.discount.type" in hparams
    final = json.loads((run_dir / "eval.json").read_text())["final"]["neuro"]
    assert set(final) >= {"learning_rate", "ent_coef", "gamma", "associability", "reward_rate"}
    assert 0.2 * 5e-4 <= final["learning_rate"] <= 5 * 5e-4 and 0.6 <= final["gamma"] <= 0.95
    written = events.Scalars("neuro/learning_rate/learning_rate")[-1].value
    assert written == pytest.approx(final["learning_rate"], rel=1e-6)


@pytest.mark.slow
def test_spiking_run_logs_spikes_and_energy_and_evaluate_prints_them(tmp_path):
    """A spiking DQN: firing rates and energy in TensorBoard and eval.json, then `evaluate` and `record`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train_briefly(EXPERIMENTS / "spiking" / "dqn_spiking.yaml", tmp_path, "training.total_timesteps=300",
                           "agent.hyperparameters.learning_starts=50", "training.eval_every=150",
                           "agent.policy_kwargs.net_arch=[32, 32]",
                           "agent.snn.encoder=poisson")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "dqn_spiking").iterdir()
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"snn/firing_rate/encoder", "snn/firing_rate/hidden_0", "snn/firing_rate/hidden_1",
            "snn/sops_per_decision", "snn/energy_pj_per_decision", "snn/ann_energy_pj_per_decision",
            "eval/snn/energy_ratio"} <= tags
    hparams = b"".join(events.PluginTagToContent("hparams").values())
    assert b"agent.snn.encoder" in hparams and b"poisson" in hparams
    final = json.loads((run_dir / "eval.json").read_text())["final"]["snn"]
    ann_macs = 25 * 32 + 32 * 32 + 32 * 5  # the ANN twin of 25 inputs, [32, 32], 5 actions
    assert final["ann_macs_per_decision"] == ann_macs and final["macs_per_decision"] == 0  # Poisson: all spikes
    assert 0 < final["firing_rate/encoder"] < 1 and final["sops_per_decision"] > 0

    evaluated = neurodrive("evaluate", str(run_dir), "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr
    shown = " ".join(evaluated.stdout.split())  # the caveat wraps at the terminal's width
    assert "snn/energy_pj_per_decision" in shown and "memory traffic ignored" in shown
    saved = json.loads((run_dir / "evaluate-envpool.json").read_text())["snn"]
    assert saved["ann_energy_pj_per_decision"] == pytest.approx(ann_macs * 4.6)
    assert neurodrive("record", str(run_dir), "--episodes", "1").returncode == 0
    assert list((run_dir / "videos").glob("*.mp4"))


@pytest.mark.slow
def test_bench_smoke(tmp_path):
    """The benchmark runs and writes its figures (speeds are measured there, never asserted here)."""
    out = tmp_path / "bench.json"
    result = neurodrive("bench", "--section", "env", "--quick", "--repeats", "1", "--skip-highway-env",
                        "--out", str(out))
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert {row["n_envs"] for row in results["rows"]} == {1, 8, 64}
    assert {row["backend"] for row in results["rows"]} == {"envpool-raw", "envpool-adapter"}
    ratio = results["ratios"][-1]
    assert ratio["n_envs"] == 64 and ratio["adapter_over_raw"] > 0
    assert "neurodrive bench" in results["command"]
