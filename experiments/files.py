"""Small file helpers shared by the run loop, checkpoints, sweeps and reports."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and a rename, so a crash never leaves half a file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2)
        temp_name = handle.name
    os.replace(temp_name, path)


def library_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Python's version and each installed distribution's (``None`` when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
