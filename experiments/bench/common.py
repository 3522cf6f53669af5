"""What every bench section shares: the machine description and the table formatting."""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Any

from experiments.files import library_versions

PACKAGES: tuple[str, ...] = ("envpool", "highway-env", "stable-baselines3", "torch", "gymnasium", "numpy")


def machine_info() -> dict[str, Any]:
    """CPU count, load, Python and library versions."""
    versions = library_versions(PACKAGES)
    return {
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "versions": versions,
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def spread(values: list[float] | None) -> str:
    if not values:
        return "-"
    return f"{min(values):,.0f} – {max(values):,.0f}"

