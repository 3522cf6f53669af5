"""One `neurodrive compare` per grid folder (without --storage): a second one on the same folder gets one line
naming the first's PID, while the first one's own workers each train their cell under it."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments.compare.spec import load_comparison
from experiments.runs.folder import LOCK_NAME
from tests_support import EXPERIMENTS, REPO, TINY_GRID, wait_for


def locked_by(path: Path) -> int | None:
    try:
        return int((path / LOCK_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_a_second_compare_on_a_grid_being_run_is_refused_naming_the_first(tmp_path):
    path = tmp_path / "grid.yaml"
    body = textwrap.dedent(TINY_GRID).replace("total_timesteps: 200", "total_timesteps: 10000000")
    path.write_text(f"experiment: {EXPERIMENTS / 'smoke.yaml'}\nname: grid\nroot: {tmp_path / 'runs'}\n{body}")
    comparison = load_comparison(path)
    cells = [comparison.cell_dir(cell) for cell in comparison.cells()]
    command = [sys.executable, "-m", "experiments.cli", "compare", str(path)]
    # A new session: the signal reaches the command and its workers, as a terminal's Ctrl-C does.
    first = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, cwd=REPO, start_new_session=True)
    try:
        def both_cells_training() -> bool:
            assert first.poll() is None, first.communicate()[0][-3000:]
            holders = [locked_by(cell) for cell in cells]  # each worker holds its cell's run folder
            return (locked_by(comparison.folder) == first.pid and None not in holders
                    and first.pid not in holders and len(set(holders)) == len(cells)
                    and all((cell / "checkpoints").is_dir() for cell in cells))
        wait_for(both_cells_training, 120, "both workers to be training under the grid's lock")
        second = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.strip().splitlines() == [
            f"error: {comparison.folder}: another process (PID {first.pid}) is writing this comparison folder; "
            "wait for it to end, or stop it"]
        assert all(cell.is_dir() for cell in cells)  # nothing deleted under the first one
    finally:
        os.killpg(first.pid, signal.SIGINT)
        output, _ = first.communicate(timeout=120)
    assert first.returncode == 130, output[-3000:]
