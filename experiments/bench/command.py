"""``neurodrive bench``: throughput and memory figures, measured side by side in one run.

Sections (each in its own module, imported only when it runs):

- ``env`` (``experiments.bench.env``): raw EnvPool vs the platform's EnvPool adapter vs highway-env;
- ``neuro`` (``experiments.bench.neuro``): training steps/s of DQN and PPO with each dopamine
  module against stock SB3 on the same shipped config, and with each neuromodulator against the
  platform agent without one;
- ``training`` (``experiments.bench.training``): the shipped configs' training steps/s against the
  same model on a zero-cost VecEnv (the learner-bound limit), and each row's peak memory;
- ``startup``: wall time and peak memory of ``neurodrive --help`` and friends, in fresh processes;
- ``spiking`` (``experiments.bench.spiking``): training steps/s of the spiking DQN, PPO and SAC agents
  against their ANN twins and their MAC-bound limit, energy per decision, firing rates and peak memory;
- ``grid`` (``experiments.bench.grid``): wall time of the 4 x 5 PPO comparison grid with 2 workers, split
  into training and final evaluation (~30 min; not part of ``all``).

Usage::

    neurodrive bench   (or, from the repository root, python scripts/benchmark.py)
    neurodrive bench [--section env|neuro|training|startup|spiking|grid|all] [--quick] [--out bench.json]
                     [--repeats N] [--neuro-repeats N] [--training-repeats N] [--spiking-repeats N]
                     [--skip-highway-env]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from experiments.config.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--section", choices=("env", "neuro", "training", "startup", "spiking", "grid", "all"),
                        default="all",
                        help="env: env steps/s of the backends; neuro: training overhead of the TD-error modules "
                             "and the neuromodulators; "
                             "training: shipped configs vs the learner-bound limit, and peak memory; "
                             "startup: time and memory of neurodrive --help; "
                             "spiking: spiking agents vs their ANN twins and their MAC model, decision latency, "
                             "energy per decision; "
                             "grid: wall time of the 4 x 5 PPO comparison grid (~30 min; not in all)")
    parser.add_argument("--quick", action="store_true",
                        help="short step counts (env ~20 s, neuro ~2 min, spiking ~1.5 min, grid: the file's quick "
                             "block), for a smoke test")
    parser.add_argument("--grid-root", type=Path, default=None,
                        help="grid section: the folder the comparison runs in (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per EnvPool configuration")
    parser.add_argument("--neuro-repeats", type=int, default=None,
                        help="timed repeats of the neuro section (default 3, 2 with --quick)")
    parser.add_argument("--training-repeats", type=int, default=None,
                        help="timed repeats of the training section (default 3, 1 with --quick)")
    parser.add_argument("--spiking-repeats", type=int, default=None,
                        help="timed repeats of the spiking section (default 3, 2 with --quick)")
    parser.add_argument("--skip-highway-env", action="store_true", help="skip the Python highway-env rows")


def add_bench_command(commands: Any) -> None:
    """Register ``neurodrive bench`` on the CLI's subparsers."""
    bench = commands.add_parser("bench", help="benchmark env throughput, neuro-module overhead, training, start-up "
                                              "and spiking agents")
    add_arguments(bench)
    bench.set_defaults(handler=_bench_command)


def _bench_command(args: argparse.Namespace) -> int:
    run_bench(args, shlex.join(["neurodrive", *sys.argv[1:]]))
    return 0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``scripts/benchmark.py``: parse ``argv``, run the chosen sections, write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_bench(args, shlex.join([sys.executable, *(sys.argv if argv is None else [sys.argv[0], *argv])]))


def run_bench(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Run the chosen sections, print their tables, write the JSON file; return the results."""
    for name in ("repeats", "neuro_repeats", "training_repeats", "spiking_repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1")
    from experiments.bench.common import machine_info
    from experiments.terminal import make_console

    console = make_console()
    started = datetime.datetime.now(datetime.UTC)
    machine = machine_info()
    wall_start = time.perf_counter()

    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "section": args.section,
        "mode": "quick" if args.quick else "full",
        "machine": machine,
    }
    if args.section in ("env", "all"):
        from experiments.bench.env import run_env_section

        results.update(run_env_section(args, console))
    if args.section in ("neuro", "all"):
        from experiments.bench.neuro import run_neuro_section

        results["neuro"] = run_neuro_section(args, console)
    if args.section in ("training", "all"):
        from experiments.bench.training import run_training_section

        results["training"] = run_training_section(args.quick, console, repeats=args.training_repeats)
    if args.section in ("startup", "all"):
        from experiments.bench.startup import run_startup_section

        results["startup"] = run_startup_section(console, repeats=3 if args.quick else 7)
    if args.section in ("spiking", "all"):
        from experiments.bench.spiking import run_spiking_section

        results["spiking"] = run_spiking_section(args.quick, console, repeats=args.spiking_repeats)
    if args.section == "grid":
        from experiments.bench.grid import run_grid_section

        results["grid"] = run_grid_section(args.quick, console, root=args.grid_root)
    wall_s = time.perf_counter() - wall_start
    machine["load_avg_1_5_15_end"] = list(os.getloadavg())
    results["wall_s"] = wall_s
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    load_start, load_end = machine["load_avg_1_5_15"][0], machine["load_avg_1_5_15_end"][0]
    console.print(f"1-min load average: {load_start:.2f} at start, {load_end:.2f} at end "
                  f"({machine['cpu_count']} CPUs); a busy machine widens the min – max spread.")
    console.print(f"Wrote {args.out} (wall time {wall_s:.1f} s)")
    console.print(f"Command: {command}", soft_wrap=True, highlight=False)
    return results


