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
- ``grid`` (``experiments.bench.grid``): wall time of the 4 x 10 PPO comparison grid under 3 conditions with 2
  workers, split into training, final evaluation on the native port and the highway-env cross-check (~30 min; not
  part of ``all``).

Each section is one ``Section`` (``experiments.bench.section``): ``run`` measures and returns its
figures, ``print`` shows them; the command runs those ``--section`` names from the registry ``SECTIONS``.

Usage::

    neurodrive bench   (or, from the repository root, python scripts/benchmark.py)
    neurodrive bench [--section env|neuro|training|startup|spiking|plasticity|grid|all] [--quick] [--out bench.json]
                     [--repeats N] [--skip-highway-env] [--grid-root DIR]
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

from experiments.config.bounds import MAX_REPEATS, check_flag

# The per-section repeat flags before one --repeats: refused with the new spelling, not silently ignored.
OLD_REPEAT_FLAGS = ("--neuro-repeats", "--training-repeats", "--spiking-repeats")


class _ReplacedFlag(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string} was replaced by --repeats, which sets the timed repeats of every section "
                     f"run (e.g. --section {str(option_string).split('-')[2]} --repeats {values})")



def add_arguments(parser: argparse.ArgumentParser) -> None:
    from experiments.bench.section import SECTIONS

    parser.add_argument("--section", choices=(*SECTIONS, "all"), default="all",
                        help="; ".join(f"{entry.name}: {entry.help}" for entry in SECTIONS.values()))
    parser.add_argument("--quick", action="store_true",
                        help="short step counts (env ~20 s, neuro ~2 min, spiking ~1.5 min, grid: the file's quick "
                             "block), for a smoke test")
    parser.add_argument("--grid-root", type=Path, default=None,
                        help="grid section: the folder the comparison runs in (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of every section run (defaults: env 5 per EnvPool configuration, 3 with "
                             "--quick; neuro, training and spiking 3, with --quick 2, 1 and 2; startup 7, 3 with "
                             "--quick; the grid runs once)")
    for flag in OLD_REPEAT_FLAGS:
        parser.add_argument(flag, action=_ReplacedFlag, help=argparse.SUPPRESS)
    parser.add_argument("--skip-highway-env", action="store_true", help="env section: skip the Python highway-env rows")


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
    check_flag("--repeats", args.repeats, MAX_REPEATS)
    from experiments.bench.common import machine_info
    from experiments.bench.section import BenchOptions, selected
    from experiments.terminal import make_console

    console = make_console()
    started = datetime.datetime.now(datetime.UTC)
    machine = machine_info()
    wall_start = time.perf_counter()
    options = BenchOptions(quick=args.quick, repeats=args.repeats, skip_highway_env=args.skip_highway_env,
                           grid_root=args.grid_root)

    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "section": args.section,
        "mode": "quick" if args.quick else "full",
        "machine": machine,
    }
    for entry in selected(args.section):
        section = entry.load()
        figures = section.run(options, console)
        section.print(figures, options, console)
        if entry.top_level:
            results.update(figures)
        else:
            results[entry.name] = figures
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


