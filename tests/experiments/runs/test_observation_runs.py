"""Each highway-env observation type through a whole run: train, save, load, evaluate, record a video, and
resume an interrupted run to the uninterrupted one's parameters and evaluations."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from experiments.config import load_config
from experiments.runs.build import observation_space
from experiments.runs.errors import RunInterrupted
from experiments.runs.evaluate import evaluate_run, record_run
from experiments.runs.folder import RunFolder
from experiments.runs.session import resume, train
from tests_support import EXPERIMENTS

GRAYSCALE = {"type": "GrayscaleObservation", "observation_shape": [128, 64], "stack_size": 4,
             "weights": [0.2989, 0.5870, 0.1140], "scaling": 1.75}
OBSERVATIONS = {
    "Kinematics": {"type": "Kinematics"},
    "OccupancyGrid": {"type": "OccupancyGrid"},
    "GrayscaleObservation": GRAYSCALE,
    "TimeToCollision": {"type": "TimeToCollision"},
    "LidarObservation": {"type": "LidarObservation"},
    "TupleObservation": {"type": "TupleObservation", "observation_configs": [{"type": "Kinematics"}, GRAYSCALE]},
}
POLICY = {"GrayscaleObservation": "ChannelCnnPolicy", "TupleObservation": "ChannelMultiInputPolicy"}
# DQN on highway-env with one env, where a resume is exact; a few hundred steps.
RUN = ["env.backend=highway-env", "env.n_envs=1", "training.total_timesteps=200", "training.checkpoint_every=50",
       "training.eval_every=100", "training.eval_episodes=1", "agent.hyperparameters.learning_starts=40",
       "agent.hyperparameters.buffer_size=300"]
INTERRUPT_AT = 130


class InterruptAt(BaseCallback):
    """Ctrl-C at step ``step``, as a user would: the run saves at its next rollout boundary and stops."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_timesteps == self.step:
            os.kill(os.getpid(), signal.SIGINT)
        return True


def parameters(run: RunFolder) -> dict[str, torch.Tensor]:
    return run.load_model(run.load_config()).policy.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("kind", OBSERVATIONS)
def test_each_observation_type_trains_evaluates_records_and_resumes(tmp_path: Path, kind: str) -> None:
    overrides = [f"logging.root={tmp_path}", f"env.config.observation={json.dumps(OBSERVATIONS[kind])}", *RUN]
    reference = RunFolder(train(load_config(EXPERIMENTS / "smoke.yaml", [*overrides, "name=reference"])))
    with pytest.raises(RunInterrupted):
        train(load_config(EXPERIMENTS / "smoke.yaml", [*overrides, "name=interrupted"]),
              callbacks=[InterruptAt(INTERRUPT_AT)])
    (interrupted_dir,) = (tmp_path / "interrupted").iterdir()
    assert json.loads((interrupted_dir / "run.json").read_text())["status"] == "interrupted"
    run = RunFolder(resume(interrupted_dir))

    # Saved and loaded: the model reads the space the config gives (a tuple as its Dict), with its policy.
    model = run.load_model(run.load_config())
    assert model.observation_space == observation_space("highway-fast-v0", {"observation": OBSERVATIONS[kind]})
    assert type(model.policy).__name__ == POLICY.get(kind, "ChannelDQNPolicy")
    # Resumed exactly: the parameters and evaluations of the run never interrupted.
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"][0]["from_step"] == INTERRUPT_AT
    ours, theirs = parameters(run), parameters(reference)
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name
    assert json.loads(run.eval_path.read_text())["evaluations"] == \
        json.loads(reference.eval_path.read_text())["evaluations"]

    metrics, _, _ = evaluate_run(run.path, episodes=1)
    assert metrics.to_dict()["summary"]["n_episodes"] == 1
    (video,) = record_run(run.path, episodes=1)
    import imageio.v2 as imageio

    frames = np.stack([frame for frame in imageio.get_reader(video)])  # noqa: C416  (len() is inf)
    assert len(frames) >= 2 and frames.std() > 10  # real frames of the road
