"""``neurodrive train | evaluate | record | envs``: one run folder at a time."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from experiments.config.bounds import MAX_ENVS, MAX_EPISODES, MAX_VIDEOS, check_flag, check_process_envs
from experiments.config.errors import ConfigError
from experiments.terminal import make_console


def add_run_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train an agent from an experiment file, or resume a run")
    train.add_argument("config", nargs="?", help="experiment YAML file (experiments/presets/*.yaml)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field by dotted path, e.g. agent.hyperparameters.gamma=0.9")
    train.set_defaults(handler=train_command)

    evaluate = commands.add_parser("evaluate", help="greedy evaluation of a trained run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--episodes", type=int, default=20)
    evaluate.add_argument("--backend", choices=("highway-env", "envpool"), default=None,
                          help="default: the backend the run trained on")
    evaluate.add_argument("--n-envs", type=int, default=1)
    evaluate.add_argument("--seed", type=int, default=None)
    evaluate.add_argument("--model", choices=("final", "best"), default="final",
                          help="final: model.zip; best: best_model.zip, kept at the best training evaluation")
    evaluate.set_defaults(handler=evaluate_command)

    record = commands.add_parser("record", help="render the agent driving to mp4 (headless)")
    record.add_argument("run_dir")
    record.add_argument("--episodes", type=int, default=1)
    record.add_argument("--seed", type=int, default=None)
    record.set_defaults(handler=record_command)

    envs = commands.add_parser("envs", help="list scenarios, backends, spaces and defaults")
    envs.set_defaults(handler=envs_command)


def train_command(args: argparse.Namespace) -> int:
    from envs.scenarios import note_superseded
    from experiments.config import load_config
    from experiments.runs.errors import RunInterrupted
    from experiments.runs.session import resume, train

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
            note_superseded(config.env.id)
            run_dir = train(config, command=command)
    except RunInterrupted as stop:
        print(f"interrupted at step {stop.step}; checkpoint saved. Resume with: "
              f"neurodrive train --resume {stop.run_dir}", file=sys.stderr)
        return 130
    print("\n".join(run_summary(run_dir)))
    return 0


def run_summary(run_dir: Path) -> list[str]:
    """What a user wants to know when ``train`` ends: where, the final and the best evaluation, and
    the commands that come next."""
    from experiments.runs.folder import RunFolder
    from experiments.runs.history import describe_evaluation

    run = RunFolder(run_dir)
    meta = run.read_meta()
    lines = [f"run folder: {run_dir}",
             f"{meta['status']} after {meta.get('steps', 0):,} steps in {meta.get('wall_time_s', 0):.1f} s"]
    evaluations = run.read_evaluations() if run.eval_path.is_file() else {}
    final, best = evaluations.get("final"), evaluations.get("best")
    if final is not None:
        lines.append(f"final evaluation (step {final['step']:,}): {describe_evaluation(final)}")
    if best is not None:
        lines.append(f"best model: {run.best_model_path} (step {best['step']:,}, return {best['mean_return']:.2f})")
    quoted = shlex.quote(str(run_dir))
    lines += ["next:",
              f"  neurodrive evaluate {quoted} --model best   # fresh episodes, unseen in training",
              f"  neurodrive record {quoted}",
              f"  tensorboard --logdir {shlex.quote(str(run_dir / 'tb'))}"]
    return lines


def evaluate_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from envs.evaluation import ACTION_KEYS
    from experiments.runs.evaluate import evaluate_run
    from neuro.snn.config import ENERGY_CAVEAT

    check_flag("--episodes", args.episodes, MAX_EPISODES)
    check_flag("--n-envs", args.n_envs, MAX_ENVS)
    check_process_envs("--n-envs", args.n_envs, args.backend)
    metrics, out, spike_stats = evaluate_run(args.run_dir, args.episodes, args.backend, args.n_envs, args.seed,
                                             args.model)
    table = Table(title=f"evaluation ({metrics.n_episodes} episodes)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    summary = metrics.summary()
    for key, value in summary.items():
        if key in ACTION_KEYS or key == "by_driver":
            continue  # shown compactly below; every count and fraction is in the saved file
        shown = "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(key, shown)
    table.add_row("actions", metrics.describe_actions() or "-")
    for driver, figures in (summary["by_driver"] or {}).items():  # env.drivers: each drawn behaviour's episodes
        table.add_row(f"drivers/{driver}", f"return {figures['mean_return']:.3f}, crash rate "
                                           f"{figures['crash_rate']:.3f} ({figures['n_episodes']} episodes)")
    dominant = summary["dominant_action"]
    table.add_row("dominant_action", "-" if dominant is None else f"{dominant['action']} ({dominant['fraction']:.1%})")
    for key, value in spike_stats.items():  # a spiking policy's figures per decision, beside return and crashes
        if key != "decisions":
            table.add_row(f"snn/{key}", f"{value:,.3f}" if "rate" in key or "ratio" in key else f"{value:,.0f}")
    console = make_console()
    console.print(table)
    if spike_stats:
        console.print(f"energy: {ENERGY_CAVEAT}")
    console.print(f"saved {out}")
    return 0


def record_command(args: argparse.Namespace) -> int:
    from experiments.runs.evaluate import record_run

    check_flag("--episodes", args.episodes, MAX_VIDEOS, "each is a video file")
    console = make_console()
    for video in record_run(args.run_dir, args.episodes, args.seed):
        console.print(f"video: {video}")
    return 0


def envs_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from envs.catalog import describe_scenarios

    table = Table(title="driving scenarios")
    for column in ("id", "description", "backends", "observation", "action", "duration"):
        table.add_column(column)
    for row in describe_scenarios():
        table.add_row(row["id"], row["description"], row["backends"], row["observation"],
                      row["action"], str(row["duration"]))
    make_console().print(table)
    return 0
