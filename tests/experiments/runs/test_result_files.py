"""Result files follow the umask like every other file a run writes (they used to be 0600)."""

import os
import stat

import pytest

from experiments.files import current_umask, write_json_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_json_results_get_the_mode_of_any_new_file(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    write_json_atomic(tmp_path / "run.json", {"status": "finished"})
    (tmp_path / "plain.txt").write_text("x")  # what the OS gives an ordinary new file under this umask
    assert mode(tmp_path / "run.json") == mode(tmp_path / "plain.txt") == expected
    write_json_atomic(tmp_path / "run.json", {"status": "rewritten"})  # a rewrite keeps it
    assert mode(tmp_path / "run.json") == expected
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
