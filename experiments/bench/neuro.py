"""Neuro overhead: training steps/s of DQN and PPO with each dopamine module, against stock SB3, and
with each neuromodulator (``neuro.learning_rate``, ``exploration``, ``discount``), against the platform
agent without one.

The configs are the shipped ``experiments/presets/highway_dqn.yaml`` and ``highway_ppo.yaml`` (EnvPool
backend, CPU, one torch thread), loaded and built through the platform's one build path with each
module set as ``neuro.dopamine``; the stock SB3 reference is SB3's own class on the same config.
Each modulator is attached, with its default parameters, to the platform agent with
``neuro.dopamine: standard``; that agent (the ``standard`` module's row, no modulator) is its
reference. Every model is built and warmed up once (DQN past ``learning_starts``, PPO one rollout and
update); each repeat then times ``model.learn(N)`` of stock, every module and every modulator once, in
a shuffled order, so load drift on the machine hits all alike. Overhead is ``1 - row / reference``
(medians).
"""

from __future__ import annotations

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
from experiments.bench.section import BenchOptions
from experiments.config import ConfigError, ExperimentConfig, load_config
from experiments.presets import PRESETS
from experiments.runs.build import build_run, resolve_backend
from neuro.modulation import MODULATOR_REGISTRIES
from neuro.registry import Registry, SpecError

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


def _takes_defaults(registry: Registry[Any], name: str) -> bool:
    try:
        registry.check({"type": name})
    except SpecError:  # a required parameter (``schedule``'s shape): no default spec to time
        return False
    return True


# Neuromodulators timed against the platform agent with REFERENCE_DOPAMINE and no modulator: every one the
# registries hold that runs on its default parameters, as (kind under ``neuro:``, spec). PPO's exploration
# modulator scales ent_coef: highway_ppo.yaml's 0.01, the same in the reference.
REFERENCE_DOPAMINE: dict[str, Any] = {"type": "standard"}
MODULATOR_SPECS: tuple[tuple[str, dict[str, Any]], ...] = tuple(
    (kind, {"type": name}) for kind, registry in MODULATOR_REGISTRIES.items() for name in registry.entries
    if _takes_defaults(registry, name)
)
# What one bench row times: (kind, spec); ("dopamine", None) is stock SB3.
VARIANTS: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("dopamine", None), *(("dopamine", spec) for spec in DOPAMINE_SPECS), *MODULATOR_SPECS,
)
# The shipped configs timed, on the native backend; the modules replace their neuro.dopamine.
NEURO_PRESETS: tuple[str, ...] = ("highway_dqn.yaml", "highway_ppo.yaml")
ENV_ID = "highway-fast-v0"
MAX_OVERHEAD = 0.10
MAX_OVERHEAD_DISTRIBUTIONAL = 0.25  # for distributional modules with up to MAX_DISTRIBUTIONAL_CHANNELS
MAX_DISTRIBUTIONAL_CHANNELS = 51
MAX_OVERHEAD_MODULATOR = 0.05  # per modulator, against the platform agent without one


@dataclass(frozen=True)
class NeuroSettings:
    """How long and how often each training configuration is timed.

    :param repeats: timed repeats; each runs stock SB3, every module and every modulator once, shuffled.
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
    """Training steps/s of one algorithm with one neuro part: a TD-error module (``kind`` dopamine;
    ``spec`` None: stock SB3) or a modulator (``kind`` learning_rate, exploration or discount)."""

    algo: str
    kind: str
    module: str
    spec: dict[str, Any] | None
    steps_per_repeat: int
    repeats: list[float]
    steps_per_s: float | None
    # The row the overhead is against (stock SB3 for the modules, the standard module for the modulators).
    reference: str | None = None
    reference_steps_per_s: float | None = None
    # 1 - row / reference, of the medians and (paired) the median of per-repeat ratios.
    overhead: float | None = None
    paired_overhead: float | None = None
    max_overhead: float | None = None
    met: bool | None = None
    skipped: str | None = None


def module_label(spec: dict[str, Any] | None, kind: str = "dopamine") -> str:
    """``stock SB3`` for no module, else ``type(param=value, ...)``, ``kind: type(...)`` for a modulator."""
    if spec is None:
        return "stock SB3"
    params = ", ".join(f"{key}={value}" for key, value in spec.items() if key != "type")
    label = f"{spec['type']}({params})" if params else str(spec["type"])
    return label if kind == "dopamine" else f"{kind}: {label}"


def max_overhead(spec: dict[str, Any] | None, kind: str = "dopamine") -> float | None:
    """The overhead target of a row; None for stock SB3 and for wider distributional modules."""
    if spec is None:
        return None
    if kind != "dopamine":
        return MAX_OVERHEAD_MODULATOR
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


def build_training_model(config: ExperimentConfig, spec: dict[str, Any] | None, kind: str = "dopamine") -> Any:
    """Through the one build path: the platform's agent with TD-error module ``spec`` (``kind``
    dopamine), or with the ``kind`` modulator ``spec`` beside ``REFERENCE_DOPAMINE``; for ``spec``
    None stock SB3's own class (``stable_baselines3:DQN``, ``:PPO``) on the same config."""
    if spec is None:
        agent = config.agent.model_copy(update={"algo": f"stable_baselines3:{config.agent.algo.upper()}"})
        return build_run(config.model_copy(update={"agent": agent}), with_eval_env=False).model
    neuro = {"dopamine": dict(spec)} if kind == "dopamine" else {"dopamine": dict(REFERENCE_DOPAMINE), kind: dict(spec)}
    return build_run(config.model_copy(update={"neuro": neuro}), with_eval_env=False).model


def timed_learn(model: Any, steps: int) -> float:
    """Env steps per second of ``model.learn(steps)``, continuing the model's run."""
    gc.collect()
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    return (model.num_timesteps - before) / elapsed


def bench_neuro_algo(
    config: ExperimentConfig, settings: NeuroSettings, rng: np.random.Generator, console: Console,
    variants: tuple[tuple[str, dict[str, Any] | None], ...] = VARIANTS,
) -> tuple[list[NeuroRow], list[list[str]]]:
    """Stock SB3, every module and every modulator (``variants``) on ``config``, timed in shuffled
    interleaved repeats.

    Returns the rows (stock first, then the modules, then the modulators) and the order each repeat
    ran them in. A variant the algorithm refuses (``ValueError`` from ``build``) gets a skipped row
    carrying the error. The variants must hold stock SB3, and ``REFERENCE_DOPAMINE`` if they hold
    modulators.
    """
    algo = config.agent.algo
    warmup_steps, steps = settings.steps(algo)
    built: list[tuple[str, dict[str, Any] | None]] = []
    models: list[Any] = []
    skipped: list[NeuroRow] = []
    with console.status(f"{algo}: building and warming up") as status:
        for kind, spec in variants:
            label = module_label(spec, kind)
            try:
                model = build_training_model(config, spec, kind)
            except ValueError as error:  # ConfigError included: a part the algorithm refuses
                if spec is None or (kind, spec) == ("dopamine", REFERENCE_DOPAMINE):
                    raise
                skipped.append(NeuroRow(algo, kind, label, spec, steps, [], None,
                                        max_overhead=max_overhead(spec, kind), skipped=str(error)))
                continue
            status.update(f"{algo}: warm-up, {label}")
            model.learn(warmup_steps, reset_num_timesteps=False)
            built.append((kind, spec))
            models.append(model)

        labels = [module_label(spec, kind) for kind, spec in built]
        rates: list[list[float]] = [[] for _ in models]
        orders: list[list[str]] = []
        for repeat in range(settings.repeats):
            order = [int(i) for i in rng.permutation(len(models))]
            orders.append([labels[i] for i in order])
            for i in order:
                status.update(f"{algo}: repeat {repeat + 1}/{settings.repeats}, {labels[i]}")
                rates[i].append(timed_learn(models[i], steps))
    for model in models:
        model.get_env().close()

    def reference(kind: str) -> int:  # stock SB3 for the modules, the standard module for the modulators
        return built.index(("dopamine", None if kind == "dopamine" else REFERENCE_DOPAMINE))

    rows: list[NeuroRow] = []
    for (kind, spec), row_rates in zip(built, rates, strict=True):
        median = statistics.median(row_rates)
        if spec is None:
            rows.append(NeuroRow(algo, kind, module_label(None), None, steps, row_rates, median))
            continue
        base_rates = rates[reference(kind)]
        base = statistics.median(base_rates)
        overhead = 1.0 - median / base
        target = max_overhead(spec, kind)
        rows.append(NeuroRow(
            algo, kind, module_label(spec, kind), spec, steps, row_rates, median,
            reference=labels[reference(kind)], reference_steps_per_s=base, overhead=overhead,
            paired_overhead=statistics.median(1.0 - m / s for m, s in zip(row_rates, base_rates, strict=True)),
            max_overhead=target, met=None if target is None else overhead <= target,
        ))
    return rows + skipped, orders


def neuro_table(title: str, caption: str, rows: list[NeuroRow]) -> Table:
    """Steps/s of ``rows`` with their reference's, overhead and verdict."""
    table = Table(title=title, caption=caption)
    for column in ("algo", "module", "steps/repeat", "steps/s", "min – max", "reference", "ref steps/s", "overhead",
                   "paired", "target", "verdict"):
        table.add_column(column, justify="left" if column in ("algo", "module", "reference", "verdict") else "right")
    for row in rows:
        if row.skipped is not None:
            verdict = "skipped"
        elif row.reference is None:
            verdict = "baseline"
        elif row.met is None:
            verdict = "no target"
        else:
            verdict = "[green]PASS[/green]" if row.met else "[red]NOT MET[/red]"
        table.add_row(
            row.algo, row.module, "-" if row.skipped else str(row.steps_per_repeat), fmt_rate(row.steps_per_s),
            spread(row.repeats), row.reference or "-", fmt_rate(row.reference_steps_per_s),
            fmt_pct(row.overhead), fmt_pct(row.paired_overhead),
            "-" if row.max_overhead is None else f"<= {row.max_overhead:.0%}", verdict,
        )
    return table


def print_verdict(console: Console, goal: str, what: str, rows: list[NeuroRow]) -> None:
    """One line: the target met for all judged ``rows``, or which missed it."""
    judged = [row for row in rows if row.met is not None]
    missed = [row for row in judged if not row.met]
    if not missed:
        console.print(f"Target ({goal}): [green]MET[/green] for all {len(judged)} {what} measured")
    else:
        names = ", ".join(f"{row.algo} {row.module} ({row.overhead:.1%})" for row in missed)
        console.print(f"Target ({goal}): [red]NOT MET[/red] for {len(missed)} of {len(judged)}: {names}",
                      highlight=False, soft_wrap=True)


def print_neuro_report(console: Console, rows: list[NeuroRow], settings: NeuroSettings, quick: bool) -> None:
    """The training steps/s tables, modules against stock SB3 and modulators against the platform
    agent, with the overhead verdict per row."""
    modules = [row for row in rows if row.kind == "dopamine"]
    modulators = [row for row in rows if row.kind != "dopamine"]
    console.print(neuro_table(
        f"{ENV_ID}: training steps/s, stock SB3 vs dopamine modules, median of {settings.repeats} repeats",
        "overhead = 1 - module/stock (medians); paired: median of per-repeat overheads; negative = faster than stock",
        modules))
    if modulators:
        console.print(neuro_table(
            f"{ENV_ID}: training steps/s, platform agent (dopamine {module_label(REFERENCE_DOPAMINE)}) vs "
            f"neuromodulators (default parameters), same repeats",
            f"overhead = 1 - modulated/unmodulated (medians); reference: the {module_label(REFERENCE_DOPAMINE)} "
            "row above; negative = faster", modulators))
    for row in rows:
        if row.skipped is not None:
            console.print(f"{row.algo} {row.module} skipped: {row.skipped}", highlight=False, soft_wrap=True)

    print_verdict(console, f"overhead <= {MAX_OVERHEAD:.0%} per module, <= {MAX_OVERHEAD_DISTRIBUTIONAL:.0%} for "
                           f"distributional with <= {MAX_DISTRIBUTIONAL_CHANNELS} channels", "modules", modules)
    if modulators:
        print_verdict(console, f"overhead <= {MAX_OVERHEAD_MODULATOR:.0%} per modulator vs the unmodulated agent",
                      "modulators", modulators)
    if quick:
        console.print("--quick: short runs and 2 repeats, a smoke test; on a shared machine single verdicts can "
                      "flip by 10-20 points, take them from a full run", soft_wrap=True)


def run_neuro_section(quick: bool, console: Console, repeats: int | None = None) -> dict[str, Any]:
    """Time every algorithm with every module and modulator; return the ``neuro`` figures
    (:func:`print_neuro_section` prints them)."""
    import torch

    settings = NEURO_QUICK if quick else NEURO_FULL
    if repeats is not None:
        settings = replace(settings, repeats=repeats)
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
    judged_modulators = [row.met for row in rows if row.met is not None and row.kind != "dopamine"]
    peak = peak_rss_mib()
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
            "met": all(judged) if judged else None,  # every module and modulator
            "modulators": {
                "metric": "overhead = 1 - modulated steps/s / unmodulated platform agent steps/s (medians)",
                "reference": {"dopamine": REFERENCE_DOPAMINE},
                "max_overhead": MAX_OVERHEAD_MODULATOR,
                "met": all(judged_modulators) if judged_modulators else None,
            },
        },
        "rows": [asdict(row) for row in rows],
        "orders": orders,
        "peak_rss_mib": peak,
        "load_avg_1min_start_end": [load_start, os.getloadavg()[0]],
        "wall_s": wall_s,
    }


def print_neuro_section(figures: dict[str, Any], quick: bool, console: Console) -> None:
    print_neuro_report(console, [NeuroRow(**row) for row in figures["rows"]], NeuroSettings(**figures["settings"]),
                       quick)
    console.print(f"Neuro section: {figures['wall_s']:.1f} s wall; peak resident memory of the process "
                  f"{figures['peak_rss_mib']:,.0f} MiB (ru_maxrss, whole process so far)")


class NeuroSection:
    """``neuro``: training overhead of the dopamine modules against stock SB3 and of the neuromodulators."""

    name = "neuro"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_neuro_section(options.quick, console, options.repeats)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_neuro_section(figures, options.quick, console)


SECTION = NeuroSection()
