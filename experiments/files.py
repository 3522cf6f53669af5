"""Small file helpers shared by the run loop, checkpoints, sweeps and reports."""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (``os.umask`` can only
    set it, and setting it for a moment would give another thread's new files the wrong mode)."""
    try:
        match = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        return int(match[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and a rename, so a crash never leaves half a file.

    The file gets the mode any new file would (0666 less the umask): the temp file is created 0600,
    which would keep results from colleagues who may read the rest of the folder.
    """
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2)
        temp_name = handle.name
    try:
        os.chmod(temp_name, 0o666 & ~current_umask())
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise


def library_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Python's version and each installed distribution's (``None`` when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
