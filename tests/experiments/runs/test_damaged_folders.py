"""Damaged and read-only run folders: `train --resume`, `evaluate` and `record` either fall back on what is
intact or say in one line what is wrong, before any work; never a traceback.

One real run is trained per module (300 steps, checkpoints at steps 100 and 200); each test damages a copy.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from experiments.cli import main
from experiments.config import load_config
from experiments.runs.session import train
from tests_support import EXPERIMENTS

STEPS = ["training.total_timesteps=300", "training.checkpoint_every=100", "training.eval_every=0",
         "training.eval_episodes=1", "env.n_envs=2"]
LAST, FIRST = "step_000000200", "step_000000100"  # the checkpoints a 300-step run leaves


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    return train(load_config(EXPERIMENTS / "smoke.yaml", [f"logging.root={root}", *STEPS]))


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run, as if it had been interrupted after its last checkpoint."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    meta = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**meta, "status": "interrupted", "steps": 200}))
    (copy / "model.zip").unlink()
    return copy


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def resume_cli(capsys, caplog):
    """``neurodrive train --resume RUN`` in this process: its exit status, and its error line and warnings."""
    caplog.set_level("WARNING", logger="neurodrive")

    def run_command(run: Path) -> tuple[int, str]:
        code = main(["train", "--resume", str(run)])
        return code, capsys.readouterr().err + caplog.text
    return run_command


def resumed_from(run: Path) -> dict:
    """The last resume record, once the run has finished."""
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["steps"] == 300
    return meta["resumed"][-1]


# --- latest.json ------------------------------------------------------------------------------

@pytest.mark.parametrize("pointer, why", [
    ('{"step": 300, "folder": "step_000000300"}', "step_000000300, which is missing"),
    ('{"step": 2', "latest.json is unreadable"),
    ("{}", "latest.json names no checkpoint folder"),
    ('{"step": 200, "folder": "../../elsewhere"}', "latest.json names no checkpoint folder"),
], ids=["missing-folder", "malformed", "empty", "outside"])
def test_a_damaged_latest_json_resumes_from_the_newest_checkpoint_folder(run, resume_cli, pointer, why):
    (run / "checkpoints" / "latest.json").write_text(pointer)
    code, err = resume_cli(run)
    assert code == 0, err
    record = resumed_from(run)
    assert record["from_step"] == 200
    assert any(why in note for note in record["skipped"]) and why in err


def test_a_missing_latest_json_still_finds_the_checkpoints(run, resume_cli):
    (run / "checkpoints" / "latest.json").unlink()
    code, err = resume_cli(run)
    assert code == 0, err
    assert resumed_from(run)["from_step"] == 200


# --- truncated checkpoint files ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["state.pkl", "rng.pt", "model.zip", "replay_buffer.pkl"])
def test_a_truncated_file_falls_back_on_the_previous_checkpoint_naming_it(run, resume_cli, name):
    truncate(run / "checkpoints" / LAST / name)
    code, err = resume_cli(run)
    assert code == 0, err
    record = resumed_from(run)
    assert record["from_step"] == 100
    (note,) = record["skipped"]
    assert note.startswith(f"{LAST}: {name}") and "damaged" in note
    assert f"skipped checkpoint {LAST}: {name}" in err


def test_no_intact_checkpoint_is_one_line_naming_each(run, resume_cli):
    truncate(run / "checkpoints" / LAST / "state.pkl")
    truncate(run / "checkpoints" / FIRST / "rng.pt")
    before = (run / "run.json").read_text()
    code, err = resume_cli(run)
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "no intact checkpoint" in line and f"{LAST}: state.pkl" in line and f"{FIRST}: rng.pt" in line
    assert "Traceback" not in err
    assert (run / "run.json").read_text() == before  # nothing written


# --- run.json ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_run_json_is_written_anew(run, resume_cli, damage):
    meta = run / "run.json"
    meta.unlink() if damage == "missing" else truncate(meta)
    code, err = resume_cli(run)
    assert code == 0, err
    assert f"run.json {'is missing' if damage == 'missing' else 'is damaged'}" in err
    record = resumed_from(run)
    assert record["from_step"] == 200
    saved = json.loads(meta.read_text())
    assert saved["experiment"] == "smoke" and saved["seed"] == 0 and saved["algo"] == "dqn"


# --- a config edited between training and resume ---------------------------------------------------

def test_a_changed_n_envs_is_refused_before_any_work(run, resume_cli):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["env"]["n_envs"] = 3
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = sorted(path.name for path in (run / "checkpoints").iterdir())
    code, err = resume_cli(run)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: env.n_envs:") and "says 3" in line and "trained with 2" in line
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == before


# --- read-only run folders -------------------------------------------------------------------------

@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` and everything in it unwritable, even for root (the immutable flag)."""
    paths = [folder, *folder.rglob("*")]
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(path.stat().st_mode & ~0o222)
        undo = lambda: [path.chmod(path.stat().st_mode | 0o200) for path in paths]  # noqa: E731
    else:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
        subprocess.run(["chattr", "-R", "+i", str(folder)], check=True)
        undo = lambda: subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)  # noqa: E731
    try:
        yield
    finally:
        undo()


@pytest.mark.parametrize("command", [["evaluate", "--episodes", "1"], ["record"], ["train", "--resume"]])
def test_a_read_only_run_folder_is_one_line_naming_it(trained, tmp_path, capsys, command):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    if command[0] == "train":  # a run to resume
        meta = json.loads((copy / "run.json").read_text())
        (copy / "run.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    args = [*command, str(copy)] if command[0] == "train" else [command[0], str(copy), *command[1:]]
    with read_only(copy):
        code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {copy}") and "cannot write" in line
