"""One writer per run folder: a second process that would write a folder being written gets one line naming
the holder's PID; the lock goes with its process, however that process ends."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiments.config import ConfigError, load_config
from experiments.runs.folder import LOCK_NAME, FolderLock
from experiments.runs.session import train
from tests_support import EXPERIMENTS, REPO, wait_for

# A process that holds the lock of a folder until killed.
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from experiments.runs.folder import FolderLock
    FolderLock(Path(sys.argv[1]), "run folder").acquire()
    print("locked", flush=True)
    time.sleep(600)
""")


def hold(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                              cwd=REPO)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_held_folder_is_one_line_naming_the_holder_and_free_once_it_dies(tmp_path):
    holder = hold(tmp_path)
    try:
        with pytest.raises(ConfigError) as error:
            FolderLock(tmp_path, "run folder").acquire()
        assert str(error.value) == (f"{tmp_path}: another process (PID {holder.pid}) is writing this run folder; "
                                    "wait for it to end, or stop it")
    finally:
        holder.kill()  # kill -9: no clean-up runs, the kernel drops the lock
        holder.wait()
    with FolderLock(tmp_path, "run folder"):  # free now, though the file with the dead PID stays
        assert (tmp_path / LOCK_NAME).read_text().strip() != str(holder.pid)


def test_a_lock_is_released_for_the_next_writer_of_the_same_process(tmp_path):
    with FolderLock(tmp_path, "run folder"):
        pass
    with FolderLock(tmp_path, "run folder"):  # e.g. a sweep worker's next trial in the same folder tree
        pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A 300-step run with checkpoints, marked interrupted, whose config now asks for far more steps."""
    root = tmp_path_factory.mktemp("lock")
    run = train(load_config(EXPERIMENTS / "smoke.yaml", [
        f"logging.root={root}", "training.total_timesteps=300", "training.checkpoint_every=100",
        "training.eval_every=0", "training.eval_episodes=1"]))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["training"]["total_timesteps"] = 10_000_000  # the resumed run trains until stopped
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    return run


def neurodrive(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


@pytest.mark.slow
def test_two_resumes_of_one_run_folder_the_second_is_refused_naming_the_first(interrupted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    first = neurodrive("train", "--resume", str(run))
    try:
        wait_for(lambda: first.poll() is None and (run / LOCK_NAME).read_text().strip() == str(first.pid)
                 and json.loads((run / "run.json").read_text()).get("resumed"), 120, "the first resume to train")
        second = neurodrive("train", "--resume", str(run))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert err.strip().splitlines() == [
            f"error: {run}: another process (PID {first.pid}) is writing this run folder; wait for it to end, "
            "or stop it"]
        assert first.poll() is None  # untouched, still training
    finally:
        first.send_signal(signal.SIGINT)  # saves a checkpoint and stops
        first.communicate(timeout=120)
    assert first.returncode == 130
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "interrupted" and len(meta["resumed"]) == 1  # the second left no record


def test_a_file_system_without_locks_warns_and_goes_on(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with FolderLock(tmp_path, "run folder"):
        pass
    assert "cannot lock this run folder (No locks available)" in caplog.text
