"""The ``neurodrive`` command line: train, evaluate, record, envs, bench, sweep, dashboard, compare, fidelity.

Each command registers its own arguments from a light module and imports its heavy parts (torch,
SB3, optuna, scipy) only when it runs, so ``neurodrive --help`` starts fast. Only configuration
errors (``ConfigError``) exit with status 2 and a one-line message; anything else is a crash, with
its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from experiments.analysis.fidelity_command import add_fidelity_command
from experiments.bench.command import add_bench_command
from experiments.cli.run_commands import add_run_commands
from experiments.compare.command import add_compare_command
from experiments.config.errors import ConfigError
from experiments.runs.errors import CheckpointError
from experiments.sweeps.command import add_sweep_commands
from neuro.guards import NonFiniteError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    quiet_libraries()
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except (NonFiniteError, CheckpointError) as error:
        print(f"error: {error} (run.json names the last good checkpoint)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: `neurodrive train --resume RUN_DIR` continues a run from its last checkpoint; "
              "rerunning a sweep resumes it (interrupted trials are re-queued)", file=sys.stderr)
        return 130


def quiet_libraries() -> None:
    """Keep the libraries' chatter out of a command's output: highway-env's warnings, and matplotlib's
    (which highway-env imports) "building the font cache" and temporary-folder lines."""
    warnings.filterwarnings("ignore", module="highway_env")
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    # matplotlib falls back on a new temporary folder per process where its config or cache folder is
    # not writable, and rebuilds its font cache there every time: one folder per user keeps the cache
    defaults = [Path(os.environ.get(variable) or Path.home() / hidden) / "matplotlib"
                for variable, hidden in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"))]
    if "MPLCONFIGDIR" not in os.environ and not all(map(_writable, defaults)):
        folder = Path(tempfile.gettempdir()) / f"neurodrive-matplotlib-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder)


def _writable(folder: Path) -> bool:
    """Whether ``folder`` is writable, or could be created (its nearest existing parent is writable)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def one_line(message: str) -> str:
    """A message on one line, as the README promises (a library's multi-line text folded in)."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurodrive", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_commands(commands)
    add_bench_command(commands)
    add_sweep_commands(commands)
    add_compare_command(commands)
    add_fidelity_command(commands)
    return parser
