"""Each script in examples/ runs as a user runs it (a fresh interpreter, the repository on the path) with
a tiny budget, and what it prints or saves is checked against an independent reading: stock SB3's
``evaluate_policy``, the asymmetric rule's closed form, the run folder's files read as plain YAML/JSON,
and greedy actions recomputed in numpy from the saved weights."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests_support import REPO

EXAMPLES = REPO / "examples"


def run_example(script: str, *args: str, cwd: Path) -> dict:
    """Run ``examples/<script>`` and return the JSON line it prints last."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's code, not an installed copy's
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                            cwd=cwd, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_example_is_tested():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == [
        "dopamine_dqn.py", "load_run.py", "train_from_config.py"]


@pytest.mark.slow
def test_dopamine_dqn_example(tmp_path):
    import torch
    from stable_baselines3.common.evaluation import evaluate_policy

    from agents import DopamineDQN
    from envs import make_vec_env

    saved = tmp_path / "dqn.zip"
    printed = run_example("dopamine_dqn.py", "--steps", "300", "--episodes", "3", "--save", str(saved), cwd=tmp_path)
    assert printed["steps"] >= 300 and printed["n_episodes"] == 3
    model = DopamineDQN.load(saved)
    # The rule the script asked for, on errors of both signs: (1 - kappa) d and (1 + kappa) d, kappa = 0.3.
    signal = model.dopamine.transform(torch.tensor([2.0, -2.0]))
    assert signal.tolist() == pytest.approx([1.4, -2.6])
    # Its evaluation is what stock SB3 measures on the same episodes (the evaluation seed stream 1).
    eval_env = make_vec_env("highway-fast-v0", n_envs=1, seed=0, stream=1)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=3, return_episode_rewards=True, warn=False)
    eval_env.close()
    assert printed["mean_return"] == pytest.approx(float(np.mean(returns)))


def greedy_actions(model_zip: Path, observations: np.ndarray) -> list[int]:
    """argmax of the Q-network recomputed in numpy from the zip's weights (SB3's MlpPolicy: flatten,
    Linear-ReLU layers, a Linear head), without the agent's code."""
    import torch

    with zipfile.ZipFile(model_zip) as archive:
        state = torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)
    layers = sorted({int(key.split(".")[2]) for key in state if key.startswith("q_net.q_net.")})
    x = observations.reshape(len(observations), -1).astype(np.float64)
    for position, index in enumerate(layers):
        x = x @ state[f"q_net.q_net.{index}.weight"].double().numpy().T + state[f"q_net.q_net.{index}.bias"].numpy()
        if position < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return [int(action) for action in x.argmax(axis=1)]


@pytest.mark.slow
def test_train_from_config_and_load_run_examples(tmp_path):
    from envs import make_vec_env

    root = tmp_path / "runs"
    trained = run_example("train_from_config.py", "--steps", "400", "--root", str(root), cwd=tmp_path)
    run_dir = Path(trained["run_dir"])
    assert run_dir.parent == root / "example_dopamine_dqn"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["training"]["total_timesteps"] == 400 and config["training"]["eval_every"] == 200
    assert config["neuro"] == {"dopamine": {"type": "asymmetric", "kappa": 0.3}}
    meta = json.loads((run_dir / "run.json").read_text())
    history = json.loads((run_dir / "eval.json").read_text())
    assert meta["status"] == trained["status"] == "finished" and meta["steps"] == 400
    assert [record["step"] for record in history["evaluations"]] == [200, 400]
    assert (trained["step"], trained["mean_return"]) == (400, history["final"]["mean_return"])

    loaded = run_example("load_run.py", str(run_dir), cwd=tmp_path)
    assert loaded["model"] == "DopamineDQN" and loaded["model_steps"] == 400
    assert loaded["neuro"] == config["neuro"]
    assert loaded["evaluations"] == [[record["step"], record["mean_return"]] for record in history["evaluations"]]
    best = max(history["evaluations"], key=lambda record: record["mean_return"])
    assert loaded["best"] == [best["step"], best["mean_return"]]
    # The loaded model's greedy actions are the saved network's, on the same observations.
    env = make_vec_env("highway-fast-v0", n_envs=2, seed=0, backend=config["env"]["backend"], stream=2)
    observations = env.reset()
    env.close()
    assert loaded["actions"] == greedy_actions(run_dir / "model.zip", observations)


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(EXAMPLES / "load_run.py"), str(tmp_path)], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode != 0
    assert "not a run folder (config.yaml is missing)" in result.stderr
