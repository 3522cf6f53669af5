"""Interrupt real `neurodrive train` processes, resume them, and compare with uninterrupted runs."""

import errno
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.registry import get_algorithm
from experiments.config import load_config
from experiments.runs.checkpoints import latest_checkpoint
from experiments.runs.errors import CheckpointError
from experiments.runs.session import resume, train
from neuro.guards import NonFiniteError
from tests_support import BOTH_BACKENDS, EXPERIMENTS

# DQN on the highway-env backend with one env: the case where resuming is exact.
EXACT = ["env.backend=highway-env", "env.n_envs=1", "training.total_timesteps=500", "training.checkpoint_every=50",
         "training.eval_every=200", "training.eval_episodes=1", "agent.hyperparameters.learning_starts=40"]


# Every kind of modulator, with state that a resume must carry: traces, a Kalman filter, perturbations.
MODULATED = ["neuro.learning_rate={type: volatility}", "neuro.exploration={type: reward_trend}",
             "neuro.discount={type: meta, hold: 20}"]

# A spiking DQN with Poisson encoding: its spikes draw from torch's RNG, which the checkpoint carries.
SPIKING = ["agent.policy=spiking", "agent.snn={timesteps: 3, encoder: poisson}"]


def overrides(root: Path, name: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [f"logging.root={root}", f"name={name}", *EXACT, *extra]


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def only_run(root: Path, name: str) -> Path:
    (run_dir,) = (root / name).iterdir()
    return run_dir


def parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    return get_algorithm("dqn").load(run_dir / "model.zip").policy.state_dict()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    return train(load_config(EXPERIMENTS / "smoke.yaml", overrides(root, "reference")))


@pytest.fixture(scope="module")
def modulated_reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("modulated_reference")
    return train(load_config(EXPERIMENTS / "smoke.yaml", overrides(root, "reference", tuple(MODULATED))))


@pytest.fixture(scope="module")
def spiking_reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spiking_reference")
    return train(load_config(EXPERIMENTS / "smoke.yaml", overrides(root, "reference", tuple(SPIKING))))


def interrupt_and_resume(tmp_path: Path, signum: int, extra: tuple[str, ...] = ()) -> tuple[Path, int]:
    args = ["train", str(EXPERIMENTS / "smoke.yaml")]
    for item in overrides(tmp_path, "interrupted", extra):
        args += ["--set", item]
    process = cli(*args)
    deadline = time.time() + 120
    while not list(tmp_path.glob("interrupted/*/checkpoints/latest.json")):
        assert process.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.5))  # a random point in training
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    run_dir = only_run(tmp_path, "interrupted")
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    assert process.returncode != 0
    if signum == signal.SIGINT:
        assert process.returncode == 130
        assert f"neurodrive train --resume {run_dir}" in stderr
        meta = json.loads((run_dir / "run.json").read_text())
        assert meta["status"] == "interrupted" and meta["steps"] == checkpoint.step
    resumed = cli("train", "--resume", str(run_dir))
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    return run_dir, checkpoint.step


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, reference, signum):
    run_dir, checkpoint_step = interrupt_and_resume(tmp_path, signum)
    assert_same_as_reference(run_dir, reference, checkpoint_step)


@pytest.mark.slow
def test_an_interrupted_modulated_run_resumes_to_the_uninterrupted_result(tmp_path, modulated_reference):
    """The same with a modulator of each kind: their state travels in the checkpoint."""
    run_dir, checkpoint_step = interrupt_and_resume(tmp_path, signal.SIGKILL, tuple(MODULATED))
    assert_same_as_reference(run_dir, modulated_reference, checkpoint_step)
    final = json.loads((run_dir / "eval.json").read_text())["final"]["neuro"]
    assert {"learning_rate", "epsilon", "gamma", "kalman_gain", "reward_trend"} <= final.keys()
    ours, theirs = EventAccumulator(str(run_dir / "tb")), EventAccumulator(str(modulated_reference / "tb"))
    ours.Reload()
    theirs.Reload()
    for tag in ("neuro/learning_rate/learning_rate", "neuro/learning_rate/kalman_gain", "neuro/exploration/epsilon",
                "neuro/discount/gamma"):
        assert [(e.step, e.value) for e in ours.Scalars(tag)] == [(e.step, e.value) for e in theirs.Scalars(tag)]


@pytest.mark.slow
def test_an_interrupted_spiking_run_resumes_to_the_uninterrupted_result(tmp_path, spiking_reference):
    run_dir, checkpoint_step = interrupt_and_resume(tmp_path, signal.SIGKILL, tuple(SPIKING))
    assert_same_as_reference(run_dir, spiking_reference, checkpoint_step)
    ours, theirs = (json.loads((folder / "eval.json").read_text())["final"]["snn"]
                    for folder in (run_dir, spiking_reference))
    assert ours == theirs and ours["firing_rate/encoder"] > 0


def assert_same_as_reference(run_dir: Path, reference: Path, checkpoint_step: int) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["steps"] == 500
    assert [r["from_step"] for r in meta["resumed"]] == [checkpoint_step]
    # Exact continuation: same parameters and same evaluations as the run never interrupted.
    ours, theirs = parameters(run_dir), parameters(reference)
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    assert json.loads((run_dir / "eval.json").read_text())["evaluations"] == \
        json.loads((reference / "eval.json").read_text())["evaluations"]
    # The best model is the one at eval.json's best evaluation, even when the interrupted run had
    # evaluated (and saved a best model) after the checkpoint it resumed from.
    best = json.loads((run_dir / "eval.json").read_text())["best"]
    assert get_algorithm("dqn").load(run_dir / "best_model.zip").num_timesteps == best["step"]
    best_ours, best_theirs = (get_algorithm("dqn").load(folder / "best_model.zip").policy.state_dict()
                              for folder in (run_dir, reference))
    for name in best_ours:
        assert torch.equal(best_ours[name], best_theirs[name]), name
    # TensorBoard continues at the right step: what the interrupted run logged after its checkpoint
    # is purged, so the curves hold exactly the steps (and values) of the uninterrupted run.
    ours, theirs = EventAccumulator(str(run_dir / "tb")), EventAccumulator(str(reference / "tb"))
    ours.Reload()
    theirs.Reload()
    assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 2
    for tag in ("eval/mean_return", "train/loss", "rollout/exploration_rate", "rollout/ep_rew_mean"):
        assert [(e.step, e.value) for e in ours.Scalars(tag)] == [(e.step, e.value) for e in theirs.Scalars(tag)]
    assert [e.step for e in ours.Scalars("eval/mean_return")] == [200, 400, 500]


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    import experiments.runs.checkpoints as checkpoints

    real_dump = checkpoints.dump_with_render_state  # what writes a checkpoint's state
    calls = []

    def dump_then_disk_full(obj, handle):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(handle.name))
        return real_dump(obj, handle)

    monkeypatch.setattr(checkpoints, "dump_with_render_state", dump_then_disk_full)
    config = load_config(EXPERIMENTS / "smoke.yaml", [f"logging.root={tmp_path}", "training.eval_every=0"])
    with pytest.raises(CheckpointError, match=r"checkpoint at step 200: cannot write .*No space left on device; "
                                              r"the previous checkpoint \(step 100\) is kept"):
        train(config)
    run_dir = only_run(tmp_path, "smoke")
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    assert checkpoint.step == 100
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["latest.json", "step_000000100"]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and meta["last_checkpoint_step"] == 100
    monkeypatch.setattr(checkpoints, "dump_with_render_state", real_dump)
    resume(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


NAN_MODULE = '''
import torch
from neuro.dopamine import DopamineModule

class GoesNaN(DopamineModule):
    """Identity until its 60th call, then NaN: a stand-in for a module that blows up."""

    def __init__(self):
        self.calls = 0

    def transform(self, td_error, reward=None):
        self.calls += 1
        return td_error * float("nan") if self.calls >= 60 else td_error
'''


def test_a_nan_stops_the_run_naming_quantity_and_step(tmp_path, monkeypatch):
    (tmp_path / "nan_module.py").write_text(NAN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_config(EXPERIMENTS / "smoke.yaml", [
        f"logging.root={tmp_path}", "neuro.dopamine={type: 'nan_module:GoesNaN'}", "training.eval_every=0",
        "training.checkpoint_every=60", "agent.hyperparameters.learning_starts=50"])
    with pytest.raises(NonFiniteError, match=r"non-finite dopamine_signal \(NaN or inf\) at step 170"):
        train(config)
    run_dir = only_run(tmp_path, "smoke")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and "dopamine_signal" in meta["error"]
    assert not (run_dir / "model.zip").exists()
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    assert meta["last_checkpoint_step"] == checkpoint.step == 120
    model = get_algorithm("dqn").load(checkpoint.model_path)
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_same_seed_same_results(tmp_path, backend, algo):
    common = [f"env.backend={backend}", "training.total_timesteps=256", "training.eval_every=128",
              "training.eval_episodes=2", "training.checkpoint_every=0"]
    if algo == "ppo":
        common += ["agent.algo=ppo", "agent.hyperparameters={n_steps: 64, batch_size: 64, n_epochs: 2}"]
    runs = [train(load_config(EXPERIMENTS / "smoke.yaml", [f"logging.root={tmp_path / str(i)}", *common]))
            for i in range(2)]
    first, second = (get_algorithm(algo).load(r / "model.zip").policy.state_dict() for r in runs)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    evaluations = [json.loads((r / "eval.json").read_text())["evaluations"] for r in runs]
    assert evaluations[0] == evaluations[1] and len(evaluations[0]) == 2
    meta = json.loads((runs[0] / "run.json").read_text())
    assert meta["seed"] == 0 and meta["command"] and meta["versions"]["torch"]
    assert meta["platform_commit"] is None or len(meta["platform_commit"]) == 40
