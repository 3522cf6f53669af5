"""The ``neurodrive`` command line: train, evaluate, record, envs, bench, sweep, dashboard, fidelity."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from experiments.checkpoints import CheckpointError
from experiments.config import ConfigError, load_config
from neuro.guards import NonFiniteError

# Piped output (tests, logs) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    warnings.filterwarnings("ignore", module="highway_env")
    try:
        return args.handler(args)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (NonFiniteError, CheckpointError) as error:
        print(f"error: {error} (run.json names the last good checkpoint)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: `neurodrive train --resume RUN_DIR` continues a run from its last checkpoint; "
              "rerunning a sweep resumes it (interrupted trials are re-queued)", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurodrive", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an agent from an experiment file, or resume a run")
    train.add_argument("config", nargs="?", help="experiment YAML file")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field by dotted path, e.g. agent.hyperparameters.gamma=0.9")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="greedy evaluation of a trained run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--episodes", type=int, default=20)
    evaluate.add_argument("--backend", choices=("highway-env", "envpool"), default=None,
                          help="default: the backend the run trained on")
    evaluate.add_argument("--n-envs", type=int, default=1)
    evaluate.add_argument("--seed", type=int, default=None)
    evaluate.add_argument("--model", choices=("final", "best"), default="final",
                          help="final: model.zip; best: best_model.zip, kept at the best training evaluation")
    evaluate.set_defaults(handler=_evaluate)

    record = commands.add_parser("record", help="render the agent driving to mp4 (headless)")
    record.add_argument("run_dir")
    record.add_argument("--episodes", type=int, default=1)
    record.add_argument("--seed", type=int, default=None)
    record.set_defaults(handler=_record)

    envs = commands.add_parser("envs", help="list scenarios, backends, spaces and defaults")
    envs.set_defaults(handler=_envs)

    from experiments.bench import add_bench_command

    add_bench_command(commands)

    from experiments.sweep import add_sweep_commands

    add_sweep_commands(commands)

    from experiments.fidelity import add_fidelity_command

    add_fidelity_command(commands)
    return parser


def _train(args: argparse.Namespace) -> int:
    from experiments.checkpoints import RunInterrupted
    from experiments.run import resume, train

    command = ["neurodrive", *sys.argv[1:]]
    if (args.config is None) == (args.resume is None):
        raise ConfigError("train: give either CONFIG or --resume RUN_DIR")
    if args.resume and args.overrides:
        raise ConfigError("--set: a resumed run keeps its saved config; start a new run to change it")
    try:
        if args.resume:
            run_dir = resume(args.resume, command=command)
        else:
            config = load_config(args.config, args.overrides)  # all validation before any work
            run_dir = train(config, command=command)
    except RunInterrupted as stop:
        print(f"interrupted at step {stop.step}; checkpoint saved. Resume with: "
              f"neurodrive train --resume {stop.run_dir}", file=sys.stderr)
        return 130
    console.print(f"run folder: {run_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from experiments.run import evaluate_run

    if args.episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {args.episodes}")
    metrics, out = evaluate_run(args.run_dir, args.episodes, args.backend, args.n_envs, args.seed, args.model)
    table = Table(title=f"evaluation ({metrics.n_episodes} episodes)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.summary().items():
        shown = "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(key, shown)
    console.print(table)
    console.print(f"saved {out}")
    return 0


def _record(args: argparse.Namespace) -> int:
    from experiments.run import record_run

    for video in record_run(args.run_dir, args.episodes, args.seed):
        console.print(f"video: {video}")
    return 0


def _envs(args: argparse.Namespace) -> int:
    from envs.catalog import describe_scenarios

    table = Table(title="driving scenarios")
    for column in ("id", "description", "backends", "observation", "action", "duration"):
        table.add_column(column)
    for row in describe_scenarios():
        table.add_row(row["id"], row["description"], row["backends"], row["observation"],
                      row["action"], str(row["duration"]))
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
