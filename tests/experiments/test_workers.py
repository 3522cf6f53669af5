"""The worker runner with real processes: each exit status as the rule in experiments/workers.py
states it, a job's value or error handed back, time limits, and Ctrl-C shared with the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import worker_jobs

from experiments.workers import CONFIG_ERROR, DONE, INTERRUPTED, Job, JobResult, run_jobs
from tests_support import REPO


def test_each_job_ends_by_the_rule_and_the_others_go_on() -> None:
    jobs = [Job("returns", worker_jobs.returns, ({"steps": [1, 2]},)), Job("raises", worker_jobs.raises),
            Job("config", worker_jobs.config_error), Job("killed", worker_jobs.killed)]
    seen: list[str] = []
    results = {result.job.name: result for result in run_jobs(jobs, workers=2,
                                                               on_exit=lambda result: seen.append(result.job.name))}
    assert sorted(seen) == sorted(results) == ["config", "killed", "raises", "returns"]
    assert (results["returns"].exitcode, results["returns"].value, results["returns"].ok) == (DONE, {"steps": [1, 2]},
                                                                                           True)
    assert (results["raises"].exitcode, results["raises"].error) == (1, "ValueError: boom")
    assert (results["config"].exitcode, results["config"].error) == (
        CONFIG_ERROR, "ConfigError: training.total_timesteps: must be > 0")
    assert (results["killed"].exitcode, results["killed"].error) == (-signal.SIGKILL, None)
    assert results["killed"].reason() == "exit status -9"
    assert not any(result.ok for name, result in results.items() if name != "returns")


def test_an_answer_larger_than_a_pipe_buffer_comes_back_whole() -> None:
    big = "x" * 2**22  # 4 MiB: the worker blocks writing it until the parent reads
    [result] = run_jobs([Job("big", worker_jobs.returns, (big,))], timeout_s=60)
    assert result.ok and result.value == big


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_killed() -> None:
    start = time.monotonic()
    [result] = run_jobs([Job("slow", worker_jobs.sleeps, (60,))], timeout_s=2)
    assert 2 <= time.monotonic() - start < 20
    assert result.timed_out and not result.ok and result.exitcode == -signal.SIGKILL


@pytest.mark.slow
def test_at_most_workers_jobs_run_at_once() -> None:
    # Three 1.5 s sleeps, one worker at a time: at least 4.5 s; two at a time, the third waits for a free one.
    start = time.monotonic()
    run_jobs([Job(f"sleep{index}", worker_jobs.sleeps, (1.5,)) for index in range(3)], workers=1)
    assert time.monotonic() - start >= 4.5


def test_a_worker_that_exits_130_stops_the_others_which_save(tmp_path: Path) -> None:
    """Ctrl-C reached one worker only: the run stops as after Ctrl-C, the others saving first."""
    results: list[JobResult] = []
    jobs = [Job("saver", worker_jobs.saves_on_interrupt, (str(tmp_path), "saver")),
            Job("interrupted", worker_jobs.interrupted), Job("never started", worker_jobs.returns, (1,))]
    with pytest.raises(KeyboardInterrupt, match="interrupted was interrupted"):
        run_jobs(jobs, workers=2, on_exit=results.append, grace_s=1)
    assert [(result.job.name, result.exitcode) for result in results] == [("interrupted", INTERRUPTED)]
    assert (tmp_path / "saver.saved").read_text() == "1"


PARENT = textwrap.dedent("""
    import sys
    import worker_jobs
    from experiments.workers import Job, run_jobs

    folder, grace_s = sys.argv[1], float(sys.argv[2])
    try:
        run_jobs([Job(name, worker_jobs.saves_on_interrupt, (folder, name)) for name in ("a", "b")], workers=2,
                 grace_s=grace_s)
    except KeyboardInterrupt:
        print("interrupted")
        sys.exit(130)
""")


def start_parent(folder: Path, grace_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(folder), str(grace_s)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not all((folder / f"{name}.started").exists() for name in ("a", "b")):
        assert parent.poll() is None, parent.communicate()
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    return parent


@pytest.mark.slow
def test_ctrl_c_to_the_parent_alone_reaches_the_workers_which_save(tmp_path: Path) -> None:
    parent = start_parent(tmp_path, grace_s=1)
    os.kill(parent.pid, signal.SIGINT)  # a script's parent, its workers out of reach of the signal
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 130, err
    assert out.strip() == "interrupted"
    assert (tmp_path / "a.saved").read_text() == (tmp_path / "b.saved").read_text() == "1"


def test_ctrl_c_in_a_terminal_lets_each_worker_save_once(tmp_path: Path) -> None:
    parent = start_parent(tmp_path, grace_s=30)
    start = time.monotonic()
    os.killpg(parent.pid, signal.SIGINT)  # the whole process group, as a terminal sends it
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 130, err
    # Each saved after the one SIGINT (a second one would cut its save short), and the parent did not
    # wait out the grace period: the workers exited once saved.
    assert (tmp_path / "a.saved").read_text() == (tmp_path / "b.saved").read_text() == "1"
    assert time.monotonic() - start < 20
