"""Neuro overhead: training steps/s of DQN and PPO with each dopamine module, against stock SB3.

The configs are the shipped ``experiments/presets/highway_dqn.yaml`` and ``highway_ppo.yaml`` (EnvPool
backend, CPU, one torch thread), loaded and built through the platform's one build path with each
module set as ``neuro.dopamine``; the stock SB3 reference is SB3's own class on the same config.
Every model is built and warmed up once (DQN past ``learning_starts``, PPO one rollout and update);
each repeat then times ``model.learn(N)`` of stock and every module once, in a shuffled order, so
load drift on the machine hits all alike. Overhead is ``1 - module / stock`` (medians).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from experiments.bench.common import fmt_pct, fmt_rate, peak_rss_mib, spread
from experiments.config import ConfigError, ExperimentConfig, load_config
from experiments.presets import PRESETS
from experiments.runs.build import build_run, resolve_backend

# Neuro section: the TD-error modules timed against stock SB3 (YAML-style ``neuro.dopamine`` specs).
DOPAMINE_SPECS: tuple[dict[str, Any], ...] = (
    {"type": "standard"},
    {"type": "asymmetric", "kappa": 0.3},
    {"type": "saturating", "compression": 0.2, "ceiling": 1.0},
    {"type": "biased_saturating", "compression": 0.2, "ceiling": 1.0},
    {"type": "opponent", "gain_positive": 1.0, "gain_negative": 1.5},
    {"type": "average_reward", "eta": 0.01},
    {"type": "distributional", "n_channels": 11},  # expectile code: imputed target samples
    {"type": "distributional", "n_channels": 51},
    {"type": "distributional", "n_channels": 11, "code": "quantile", "acting": "cvar=0.25"},
    {"type": "distributional", "n_channels": 51, "code": "quantile"},
)
# The shipped configs timed, on the native backend; the modules replace their neuro.dopamine.
NEURO_PRESETS: tuple[str, ...] = ("highway_dqn.yaml", "highway_ppo.yaml")
ENV_ID = "highway-fast-v0"
MAX_OVERHEAD = 0.10
MAX_OVERHEAD_DISTRIBUTIONAL = 0.25  # for distributional modules with up to MAX_DISTRIBUTIONAL_CHANNELS
MAX_DISTRIBUTIONAL_CHANNELS = 51


@dataclass(frozen=True)
class NeuroSettings:
    """How long and how often each training configuration is timed.

    :param repeats: timed repeats; each runs stock SB3 and every module once, in a shuffled order.
    :param dqn_steps: env steps per timed DQN ``learn`` (one gradient step each).
    :param dqn_warmup_steps: untimed DQN steps first; past ``learning_starts`` so training runs.
    :param ppo_steps: env steps per timed PPO ``learn`` (2048 per rollout and update).
    :param ppo_warmup_steps: untimed PPO steps first: one rollout and update.
    :param torch_threads: ``torch.set_num_threads``, as the platform's runs (``training.torch_threads``).
    :param seed: seed of every model and env, and of the repeat orders.
    """

    repeats: int = 3
    dqn_steps: int = 2000
    dqn_warmup_steps: int = 400
    ppo_steps: int = 4096
    ppo_warmup_steps: int = 2048
    torch_threads: int = 1
    seed: int = 0

    def steps(self, algo: str) -> tuple[int, int]:
        """(warm-up steps, timed steps per repeat) for ``algo``."""
        if algo == "dqn":
            return self.dqn_warmup_steps, self.dqn_steps
        return self.ppo_warmup_steps, self.ppo_steps


NEURO_FULL = NeuroSettings()
NEURO_QUICK = NeuroSettings(repeats=2, dqn_steps=500, dqn_warmup_steps=300, ppo_steps=2048)


@dataclass
class NeuroRow:
    """Training steps/s of one algorithm with one TD-error module (``spec`` None: stock SB3)."""

    algo: str
    module: str
    spec: dict[str, Any] | None
    steps_per_repeat: int
    repeats: list[float]
    steps_per_s: float | None
    # Modules only: 1 - module / stock, of the medians and (paired) the median of per-repeat ratios.
    overhead: float | None = None
    paired_overhead: float | None = None
    max_overhead: float | None = None
    met: bool | None = None
    skipped: str | None = None


def module_label(spec: dict[str, Any] | None) -> str:
    """``stock SB3`` for no module, else ``type(param=value, ...)``."""
    if spec is None:
        return "stock SB3"
    params = ", ".join(f"{key}={value}" for key, value in spec.items() if key != "type")
    return f"{spec['type']}({params})" if params else str(spec["type"])


def max_overhead(spec: dict[str, Any] | None) -> float | None:
    """The overhead target of a module; None for stock SB3 and for wider distributional modules."""
    if spec is None:
        return None
    if spec["type"] == "distributional":
        wide = spec.get("n_channels", 11) > MAX_DISTRIBUTIONAL_CHANNELS
        return None if wide else MAX_OVERHEAD_DISTRIBUTIONAL
    return MAX_OVERHEAD


def preset_config(name: str, seed: int, torch_threads: int) -> ExperimentConfig:
    """A shipped config on the native backend, with the bench's seed and torch threads."""
    config = load_config(PRESETS / name, [f"training.seed={seed}", "env.backend=envpool",
                                          f"training.torch_threads={torch_threads}"])
    if config.env.id != ENV_ID:
        raise ConfigError(f"{name}: the neuro bench times {ENV_ID}, the preset has {config.env.id}")
    return resolve_backend(config)[0]


def build_training_model(config: ExperimentConfig, spec: dict[str, Any] | None) -> Any:
    """Through the one build path: the platform's agent with TD-error module ``spec``, or for
    ``spec`` None stock SB3's own class (``stable_baselines3:DQN``, ``:PPO``) on the same config,
    the reference."""
    if spec is None:
        agent = config.agent.model_copy(update={"algo": f"stable_baselines3:{config.agent.algo.upper()}"})
        return build_run(config.model_copy(update={"agent": agent}), with_eval_env=False).model
    return build_run(config.model_copy(update={"neuro": {"dopamine": dict(spec)}}), with_eval_env=False).model


def timed_learn(model: Any, steps: int) -> float:
    """Env steps per second of ``model.learn(steps)``, continuing the model's run."""
    gc.collect()
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    return (model.num_timesteps - before) / elapsed


def bench_neuro_algo(
    config: ExperimentConfig, settings: NeuroSettings, rng: np.random.Generator, console: Console
) -> tuple[list[NeuroRow], list[list[str]]]:
    """Stock SB3 and every module on ``config``, timed in shuffled interleaved repeats.

    Returns the rows (stock first) and the order each repeat ran them in. A module the algorithm
    refuses (``ValueError`` from ``build``) gets a skipped row carrying the error.
    """
    algo = config.agent.algo
    warmup_steps, steps = settings.steps(algo)
    specs: list[dict[str, Any] | None] = []
    models: list[Any] = []
    skipped: list[NeuroRow] = []
    with console.status(f"{algo}: building and warming up") as status:
        for spec in (None, *DOPAMINE_SPECS):
            try:
                model = build_training_model(config, spec)
            except ValueError as error:  # ConfigError included: a module the algorithm refuses
                if spec is None:
                    raise
                skipped.append(NeuroRow(algo, module_label(spec), spec, steps, [], None,
                                        max_overhead=max_overhead(spec), skipped=str(error)))
                continue
            status.update(f"{algo}: warm-up, {module_label(spec)}")
            model.learn(warmup_steps, reset_num_timesteps=False)
            specs.append(spec)
            models.append(model)

        rates: list[list[float]] = [[] for _ in models]
        orders: list[list[str]] = []
        for repeat in range(settings.repeats):
            order = [int(i) for i in rng.permutation(len(models))]
            orders.append([module_label(specs[i]) for i in order])
            for i in order:
                status.update(f"{algo}: repeat {repeat + 1}/{settings.repeats}, {module_label(specs[i])}")
                rates[i].append(timed_learn(models[i], steps))
    for model in models:
        model.get_env().close()

    stock_rates = rates[0]
    stock = statistics.median(stock_rates)
    rows = [NeuroRow(algo, module_label(None), None, steps, stock_rates, stock)]
    for spec, module_rates in zip(specs[1:], rates[1:], strict=True):
        median = statistics.median(module_rates)
        overhead = 1.0 - median / stock
        target = max_overhead(spec)
        rows.append(NeuroRow(
            algo, module_label(spec), spec, steps, module_rates, median, overhead=overhead,
            paired_overhead=statistics.median(1.0 - m / s for m, s in zip(module_rates, stock_rates, strict=True)),
            max_overhead=target, met=None if target is None else overhead <= target,
        ))
    return rows + skipped, orders


def print_neuro_report(console: Console, rows: list[NeuroRow], settings: NeuroSettings, quick: bool) -> None:
    """The training steps/s table with the overhead verdict per module."""
    table = Table(
        title=f"{ENV_ID}: training steps/s, stock SB3 vs dopamine modules, median of {settings.repeats} repeats",
        caption="overhead = 1 - module/stock (medians); paired: median of per-repeat overheads; "
                "negative = faster than stock",
    )
    for column in ("algo", "module", "steps/repeat", "steps/s", "min – max", "overhead", "paired",
                   "target", "verdict"):
        table.add_column(column, justify="left" if column in ("algo", "module", "verdict") else "right")
    for row in rows:
        if row.skipped is not None:
            verdict = "skipped"
        elif row.spec is None:
            verdict = "baseline"
        elif row.met is None:
            verdict = "no target"
        else:
            verdict = "[green]PASS[/green]" if row.met else "[red]NOT MET[/red]"
        table.add_row(
            row.algo, row.module, "-" if row.skipped else str(row.steps_per_repeat), fmt_rate(row.steps_per_s),
            spread(row.repeats),
            fmt_pct(row.overhead), fmt_pct(row.paired_overhead),
            "-" if row.max_overhead is None else f"<= {row.max_overhead:.0%}", verdict,
        )
    console.print(table)
    for row in rows:
        if row.skipped is not None:
            console.print(f"{row.algo} {row.module} skipped: {row.skipped}", highlight=False, soft_wrap=True)

    judged = [row for row in rows if row.met is not None]
    missed = [row for row in judged if not row.met]
    goal = (f"overhead <= {MAX_OVERHEAD:.0%} per module, <= {MAX_OVERHEAD_DISTRIBUTIONAL:.0%} for "
            f"distributional with <= {MAX_DISTRIBUTIONAL_CHANNELS} channels")
    if not missed:
        console.print(f"Target ({goal}): [green]MET[/green] for all {len(judged)} modules measured")
    else:
        names = ", ".join(f"{row.algo} {row.module} ({row.overhead:.1%})" for row in missed)
        console.print(f"Target ({goal}): [red]NOT MET[/red] for {len(missed)} of {len(judged)}: {names}",
                      highlight=False, soft_wrap=True)
    if quick:
        console.print("--quick: short runs and 2 repeats, a smoke test; on a shared machine single verdicts can "
                      "flip by 10-20 points, take them from a full run", soft_wrap=True)


def run_neuro_section(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Time every algorithm with every module, print the report; return the ``neuro`` results."""
    import torch

    settings = NEURO_QUICK if args.quick else NEURO_FULL
    if args.neuro_repeats is not None:
        settings = replace(settings, repeats=args.neuro_repeats)
    torch.set_num_threads(settings.torch_threads)
    rng = np.random.default_rng(settings.seed)
    load_start = os.getloadavg()[0]
    wall_start = time.perf_counter()
    rows: list[NeuroRow] = []
    orders: dict[str, list[list[str]]] = {}
    configs = [preset_config(name, settings.seed, settings.torch_threads) for name in NEURO_PRESETS]
    for config in configs:
        algo_rows, orders[config.agent.algo] = bench_neuro_algo(config, settings, rng, console)
        rows += algo_rows
    wall_s = time.perf_counter() - wall_start
    judged = [row.met for row in rows if row.met is not None]
    print_neuro_report(console, rows, settings, args.quick)
    peak = peak_rss_mib()
    console.print(f"Neuro section: {wall_s:.1f} s wall; peak resident memory of the process {peak:,.0f} MiB "
                  "(ru_maxrss, whole process so far)")
    return {
        "env_id": ENV_ID,
        "backend": "envpool",
        "device": "cpu",
        "settings": asdict(settings),
        "configs": {config.agent.algo: config.model_dump(mode="json", include={"env", "agent"})
                    for config in configs},
        "target": {
            "metric": "overhead = 1 - module steps/s / stock SB3 steps/s (medians)",
            "max_overhead": MAX_OVERHEAD,
            "max_overhead_distributional": MAX_OVERHEAD_DISTRIBUTIONAL,
            "max_distributional_channels": MAX_DISTRIBUTIONAL_CHANNELS,
            "met": all(judged) if judged else None,
        },
        "rows": [asdict(row) for row in rows],
        "orders": orders,
        "peak_rss_mib": peak,
        "load_avg_1min_start_end": [load_start, os.getloadavg()[0]],
        "wall_s": wall_s,
    }


