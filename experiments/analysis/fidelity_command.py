"""``neurodrive fidelity``: its arguments (light) and the command, which imports the measurement
(``experiments.analysis.fidelity``: scipy, SB3) only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.analysis.fidelity_options import (
    CANDIDATE,
    DEFAULT_EPISODES,
    DEFAULT_TOLERANCE,
    REFERENCE,
    fidelity_scenarios,
    parse_scenarios,
)
from experiments.config.errors import ConfigError
from experiments.terminal import make_console

if TYPE_CHECKING:
    from envs.evaluation import Predictor
    from experiments.analysis.fidelity import FidelitySettings


def add_fidelity_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neurodrive fidelity`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "fidelity", help="compare EnvPool's native ports with highway-env on fixed policies (95%% CIs)")
    parser.add_argument("--scenarios", default=None, metavar="A,B",
                        help="comma-separated ids (default: every scenario with both backends, "
                             "as `neurodrive envs` lists them)")
    parser.add_argument("--episodes", type=int, default=None, metavar="N",
                        help="episodes per policy on each backend (default: 200 envpool, 40 highway-env)")
    parser.add_argument("--envpool-episodes", type=int, default=None, metavar="N", help="overrides --episodes")
    parser.add_argument("--highway-env-episodes", type=int, default=None, metavar="N", help="overrides --episodes")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="flag differences larger than this share of the highway-env mean (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", metavar="RUN_DIR", default=None,
                        help="also compare a trained agent on its scenario (reported, not in the verdict)")
    parser.add_argument("--out", default="fidelity.json", help="JSON report path (default fidelity.json)")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="also write the tables as markdown")
    parser.set_defaults(handler=fidelity_command)
    return parser


def episodes_from_args(args: argparse.Namespace) -> dict[str, int]:
    """Per-backend episodes: the backend's own flag, else ``--episodes``, else the default."""
    chosen = {}
    for backend, specific in ((CANDIDATE, args.envpool_episodes), (REFERENCE, args.highway_env_episodes)):
        chosen[backend] = specific if specific is not None else (
            args.episodes if args.episodes is not None else DEFAULT_EPISODES[backend])
    return chosen


def command_line(args: argparse.Namespace, settings: FidelitySettings) -> str:
    """The full command that reproduces this run, every setting spelled out."""
    parts = ["neurodrive", "fidelity", "--scenarios", ",".join(settings.scenarios),
             "--envpool-episodes", str(settings.episodes[CANDIDATE]),
             "--highway-env-episodes", str(settings.episodes[REFERENCE]),
             "--tolerance", f"{settings.relative_tolerance:g}", "--seed", str(settings.seed)]
    if args.run:
        parts += ["--run", str(args.run)]
    parts += ["--out", str(args.out)]
    if args.markdown:
        parts += ["--markdown", str(args.markdown)]
    return " ".join(parts)


def _load_agent(run_dir: str) -> tuple[Predictor, str, dict[str, Any]]:
    from envs.scenarios import envpool_kwargs
    from experiments.runs.build import config_errors
    from experiments.runs.folder import RunFolder

    run = RunFolder(Path(run_dir))
    config = run.load_config()
    if config.env.id not in fidelity_scenarios():
        raise ConfigError(f"--run: the run's scenario {config.env.id!r} has no EnvPool port; "
                          f"allowed: {', '.join(fidelity_scenarios())}")
    with config_errors():
        envpool_kwargs(config.env.id, config.env.config)  # raises naming a key the port cannot honour
    return run.load_model(config), config.env.id, dict(config.env.config)


def settings_from_args(args: argparse.Namespace) -> tuple[FidelitySettings, Predictor | None]:
    """Validate every flag (and load the agent) before any episode runs."""
    from experiments.analysis.fidelity import FidelitySettings

    agent, agent_scenario, configs = None, None, {}
    if args.run:
        agent, agent_scenario, config = _load_agent(args.run)
        configs[agent_scenario] = config
        scenarios = parse_scenarios(args.scenarios if args.scenarios is not None else agent_scenario)
        if agent_scenario not in scenarios:
            raise ConfigError(f"--run: the run's scenario {agent_scenario!r} is not among --scenarios "
                              f"({', '.join(scenarios)})")
    else:
        scenarios = parse_scenarios(args.scenarios)
    settings = FidelitySettings(tuple(scenarios), episodes_from_args(args), args.seed, args.tolerance,
                                agent_scenario, configs)
    return settings, agent


def fidelity_command(args: argparse.Namespace) -> int:
    """``neurodrive fidelity``: measure, print the tables, write JSON (and markdown)."""
    from experiments.analysis.fidelity import render_table, render_verdicts, run_fidelity, write_report

    settings, agent = settings_from_args(args)
    console = make_console()
    log = make_console(stderr=True)
    report = run_fidelity(settings, command_line(args, settings), agent, progress=log.log)
    console.print(render_table(report))
    console.print(render_verdicts(report))
    write_report(report, Path(args.out), Path(args.markdown) if args.markdown else None)
    console.print(f"saved {args.out}" + (f" and {args.markdown}" if args.markdown else ""))
    return 0
