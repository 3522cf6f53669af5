"""Throughput benchmarks: env steps/s of the backends, and training steps/s with each TD-error module.

Section ``env``: raw EnvPool vs the platform's EnvPool adapter vs highway-env.

All backends run ``highway-fast-v0`` with uniformly random actions (pre-generated, so drawing
them costs nothing inside the timed loops). For each ``n_envs`` the raw pool and the adapter are
built once, warmed up, then timed in alternating repeats over the same fixed step count; the
reported figure is the median of the repeats.

Raw EnvPool resets a finished env on its *next* ``step`` (that env-step ignores the action and
returns reward 0), whereas the adapter resets in the same step. Raw throughput is therefore
reported twice: all env-steps per second, and "useful" transitions per second (env-steps minus
those auto-reset steps).

Section ``neuro``: training steps/s of DQN and PPO (the ``experiments/highway_*.yaml`` configs,
EnvPool backend, CPU, one torch thread) with each dopamine module, against stock SB3 on the same
config. Every model is built and warmed up once (DQN past ``learning_starts``, PPO one rollout and
update); each repeat then times ``model.learn(N)`` of stock and every module once, in a shuffled
order, so load drift on the machine hits all alike. Overhead is ``1 - module / stock`` (medians).

Section ``training``: the shipped configs' training steps/s against the same model on a zero-cost
VecEnv (the learner-bound limit), and each row's peak memory (``experiments/bench_training.py``).

Usage::

    neurodrive bench   (or, from the repository root, python scripts/benchmark.py)
    neurodrive bench [--section env|neuro|training|all] [--quick] [--out bench.json] [--repeats N]
                     [--neuro-repeats N] [--training-repeats N] [--skip-highway-env]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from experiments.bench_training import run_training_section
from experiments.files import library_versions

ENV_ID = "highway-fast-v0"
N_ENVS: tuple[int, ...] = (1, 8, 64)
HIGHWAY_ENV_N_ENVS: tuple[int, ...] = (1, 2)
TARGET_N_ENVS = 64
TARGET_RATIO = 0.95
PACKAGES: tuple[str, ...] = ("envpool", "highway-env", "stable-baselines3", "torch", "gymnasium", "numpy")

# Neuro section: the TD-error modules timed against stock SB3 (YAML-style ``neuro.dopamine`` specs).
DOPAMINE_SPECS: tuple[dict[str, Any], ...] = (
    {"type": "standard"},
    {"type": "asymmetric", "kappa": 0.3},
    {"type": "saturating", "compression": 0.2, "ceiling": 1.0},
    {"type": "opponent", "gain_positive": 1.0, "gain_negative": 1.5},
    {"type": "average_reward", "eta": 0.01},
    {"type": "distributional", "n_channels": 11},
    {"type": "distributional", "n_channels": 51},
)
NEURO_POLICY_KWARGS: dict[str, Any] = {"net_arch": [256, 256]}
MAX_OVERHEAD = 0.10
MAX_OVERHEAD_DISTRIBUTIONAL = 0.25  # for distributional modules with up to MAX_DISTRIBUTIONAL_CHANNELS
MAX_DISTRIBUTIONAL_CHANNELS = 51


@dataclass(frozen=True)
class Settings:
    """How long and how often each configuration is timed.

    :param repeats: timed repeats per (backend, n_envs) for the EnvPool backends.
    :param repeat_s: target duration of one raw EnvPool repeat; sets the fixed step count.
    :param warmup_s: untimed stepping before the repeats (also calibrates the step count).
    :param highway_env_steps: vectorised steps per highway-env repeat.
    :param highway_env_repeats: timed repeats per highway-env configuration.
    :param seed: run seed for the envs and the random actions.
    """

    repeats: int = 5
    repeat_s: float = 1.5
    warmup_s: float = 0.4
    highway_env_steps: int = 20
    highway_env_repeats: int = 3
    seed: int = 0


FULL = Settings()
QUICK = Settings(repeats=3, repeat_s=0.25, warmup_s=0.1, highway_env_steps=5, highway_env_repeats=2)


@dataclass(frozen=True)
class AlgoConfig:
    """One algorithm's training config, as in its ``experiments/highway_*.yaml``.

    :param algo: registry name, also the stock SB3 class name in lower case.
    :param n_envs: parallel EnvPool envs.
    :param hyperparameters: constructor arguments, the same for stock SB3 and every module.
    """

    algo: str
    n_envs: int
    hyperparameters: dict[str, Any]


NEURO_CONFIGS: tuple[AlgoConfig, ...] = (
    AlgoConfig("dqn", 1, {  # experiments/highway_dqn.yaml
        "learning_rate": 5e-4, "buffer_size": 15000, "learning_starts": 200, "batch_size": 32, "gamma": 0.8,
        "train_freq": 1, "gradient_steps": 1, "target_update_interval": 50, "exploration_fraction": 0.7,
    }),
    AlgoConfig("ppo", 16, {  # experiments/highway_ppo.yaml
        "learning_rate": 5e-4, "n_steps": 128, "batch_size": 256, "n_epochs": 10, "gamma": 0.8,
        "gae_lambda": 0.95, "ent_coef": 0.01,
    }),
)


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
class Row:
    """Throughput of one backend at one ``n_envs``: env-steps per second, median of the repeats."""

    backend: str
    n_envs: int
    threads: int
    vec_env: str
    env_steps_per_repeat: int
    repeats: list[float]
    steps_per_s: float
    # Raw EnvPool only: env-steps that were not EnvPool auto-reset steps.
    useful_repeats: list[float] | None = None
    useful_per_s: float | None = None
    auto_reset_steps: int | None = None
    total_env_steps: int | None = None


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


def random_actions(space: Any, n_steps: int, n_envs: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random actions for ``n_steps`` vectorised steps, shape ``(n_steps, n_envs, ...)``."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        low = int(space.start)
        return rng.integers(low, low + int(space.n), size=(n_steps, n_envs), dtype=space.dtype)
    if isinstance(space, spaces.Box):
        shape = (n_steps, n_envs, *space.shape)
        return rng.uniform(space.low, space.high, size=shape).astype(space.dtype)
    raise TypeError(f"unsupported action space {space!r}")


def make_raw_pool(n_envs: int, threads: int, seed: int) -> Any:
    """A raw EnvPool gymnasium pool, synchronous (``batch_size == num_envs``)."""
    import envpool

    from envs import env_seeds

    return envpool.make(
        ENV_ID,
        env_type="gymnasium",
        num_envs=n_envs,
        batch_size=n_envs,
        num_threads=threads,
        env_seed=env_seeds(seed, n_envs),
    )


class RawRunner:
    """Steps a raw pool and counts EnvPool's auto-reset env-steps across calls."""

    def __init__(self, pool: Any, n_envs: int) -> None:
        self.pool = pool
        self.pool.reset()
        self._prev_done = np.zeros(n_envs, dtype=bool)

    def run(self, actions: np.ndarray) -> tuple[float, int]:
        """Step once per row of ``actions``; return (seconds, auto-reset env-steps among them)."""
        flags: list[tuple[np.ndarray, np.ndarray]] = []
        step = self.pool.step
        start = time.perf_counter()
        for batch in actions:
            _, _, terminated, truncated, _ = step(batch)
            flags.append((terminated, truncated))
        elapsed = time.perf_counter() - start
        # Counting happens after the clock stops: EnvPool returns fresh arrays on every step.
        dones = np.stack([terminated | truncated for terminated, truncated in flags])
        auto_resets = int(self._prev_done.sum() + dones[:-1].sum())
        self._prev_done = dones[-1]
        return elapsed, auto_resets


class VecEnvRunner:
    """Steps an SB3 VecEnv (the adapter or highway-env) through its ``step`` API."""

    def __init__(self, vec_env: Any) -> None:
        self.vec_env = vec_env
        self.vec_env.reset()

    def run(self, actions: np.ndarray) -> tuple[float, int]:
        """Step once per row of ``actions``; return (seconds, 0): SB3 VecEnvs spend no step on resets."""
        step = self.vec_env.step
        start = time.perf_counter()
        for batch in actions:
            step(batch)
        return time.perf_counter() - start, 0


def warm_up(run: Callable[[np.ndarray], tuple[float, int]], actions: np.ndarray, seconds: float) -> float:
    """Run chunks of ``actions`` for about ``seconds``; return the vectorised steps per second seen."""
    steps, elapsed = 0, 0.0
    while elapsed < seconds:
        chunk_s, _ = run(actions)
        elapsed += chunk_s
        steps += len(actions)
    return steps / elapsed


def bench_envpool_pair(n_envs: int, settings: Settings, rng: np.random.Generator) -> tuple[Row, Row]:
    """Raw EnvPool and the adapter at ``n_envs``, timed in alternating repeats of equal length."""
    from envs import make_vec_env

    threads = min(n_envs, os.cpu_count() or 1)
    raw = RawRunner(make_raw_pool(n_envs, threads, settings.seed), n_envs)
    adapter = VecEnvRunner(make_vec_env(ENV_ID, n_envs, seed=settings.seed, backend="envpool",
                                        num_threads=threads))
    space = raw.pool.action_space
    warmup_actions = random_actions(space, 50, n_envs, rng)
    raw_rate = warm_up(raw.run, warmup_actions, settings.warmup_s)
    warm_up(adapter.run, warmup_actions, settings.warmup_s)
    n_steps = max(20, round(settings.repeat_s * raw_rate))
    actions = [random_actions(space, n_steps, n_envs, rng) for _ in range(settings.repeats)]
    env_steps = n_steps * n_envs

    raw_rates: list[float] = []
    useful_rates: list[float] = []
    adapter_rates: list[float] = []
    auto_resets_total = 0
    for i in range(settings.repeats):
        order = ("raw", "adapter") if i % 2 == 0 else ("adapter", "raw")  # ABBA: no drift bias
        for which in order:
            gc.collect()
            if which == "raw":
                elapsed, auto_resets = raw.run(actions[i])
                raw_rates.append(env_steps / elapsed)
                useful_rates.append((env_steps - auto_resets) / elapsed)
                auto_resets_total += auto_resets
            else:
                elapsed, _ = adapter.run(actions[i])
                adapter_rates.append(env_steps / elapsed)
    raw.pool.close()
    adapter.vec_env.close()

    raw_row = Row(
        backend="envpool-raw", n_envs=n_envs, threads=threads, vec_env="envpool.make",
        env_steps_per_repeat=env_steps, repeats=raw_rates, steps_per_s=statistics.median(raw_rates),
        useful_repeats=useful_rates, useful_per_s=statistics.median(useful_rates),
        auto_reset_steps=auto_resets_total, total_env_steps=env_steps * settings.repeats,
    )
    adapter_row = Row(
        backend="envpool-adapter", n_envs=n_envs, threads=threads, vec_env=type(adapter.vec_env).__name__,
        env_steps_per_repeat=env_steps, repeats=adapter_rates, steps_per_s=statistics.median(adapter_rates),
    )
    return raw_row, adapter_row


def bench_highway_env(n_envs: int, settings: Settings, rng: np.random.Generator) -> Row:
    """highway-env (Python reference) through ``make_vec_env``, timed over a few fixed steps."""
    from envs import make_vec_env

    runner = VecEnvRunner(make_vec_env(ENV_ID, n_envs, seed=settings.seed, backend="highway-env"))
    space = runner.vec_env.action_space
    runner.run(random_actions(space, 3, n_envs, rng))  # warm-up
    rates: list[float] = []
    for _ in range(settings.highway_env_repeats):
        actions = random_actions(space, settings.highway_env_steps, n_envs, rng)
        elapsed, _ = runner.run(actions)
        rates.append(settings.highway_env_steps * n_envs / elapsed)
    vec_env_name = type(runner.vec_env).__name__
    runner.vec_env.close()
    return Row(
        backend="highway-env", n_envs=n_envs, threads=n_envs, vec_env=vec_env_name,
        env_steps_per_repeat=settings.highway_env_steps * n_envs, repeats=rates,
        steps_per_s=statistics.median(rates),
    )


def compute_ratios(raw: Row, adapter: Row) -> dict[str, Any]:
    """Adapter vs raw at one ``n_envs``: ratio of medians, and the median of per-repeat ratios."""
    assert raw.useful_repeats is not None and raw.useful_per_s is not None
    return {
        "n_envs": raw.n_envs,
        "adapter_over_raw": adapter.steps_per_s / raw.steps_per_s,
        "adapter_over_raw_useful": adapter.steps_per_s / raw.useful_per_s,
        "paired_median_adapter_over_raw": statistics.median(
            a / r for a, r in zip(adapter.repeats, raw.repeats, strict=True)
        ),
        "paired_median_adapter_over_raw_useful": statistics.median(
            a / r for a, r in zip(adapter.repeats, raw.useful_repeats, strict=True)
        ),
        "raw_auto_reset_fraction": raw.auto_reset_steps / raw.total_env_steps,
    }


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


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _spread(values: list[float] | None) -> str:
    if not values:
        return "-"
    return f"{min(values):,.0f} – {max(values):,.0f}"


def print_report(
    console: Console, rows: list[Row], ratios: list[dict[str, Any]], target: dict[str, Any]
) -> None:
    """The throughput table, the ratio table and the target verdict."""
    table = Table(title=f"{ENV_ID}: env-steps/s, median of repeats (random actions)")
    for column in ("backend", "n_envs", "threads", "vec env", "steps/s", "min – max", "per env/s",
                   "useful/s", "auto-reset %", "repeats"):
        table.add_column(column, justify="left" if column in ("backend", "vec env") else "right")
    for row in rows:
        auto_pct = "-"
        if row.auto_reset_steps is not None and row.total_env_steps:
            auto_pct = f"{100 * row.auto_reset_steps / row.total_env_steps:.1f}"
        table.add_row(
            row.backend, str(row.n_envs), str(row.threads), row.vec_env, _fmt_rate(row.steps_per_s),
            _spread(row.repeats), _fmt_rate(row.steps_per_s / row.n_envs), _fmt_rate(row.useful_per_s),
            auto_pct, str(len(row.repeats)),
        )
    console.print(table)

    ratio_table = Table(
        title="adapter / raw EnvPool", caption="ratio of medians; paired: median of per-repeat ratios"
    )
    for column in ("n_envs", "adapter/raw", "paired", "adapter/raw-useful", "paired (useful)"):
        ratio_table.add_column(column, justify="right")
    for ratio in ratios:
        ratio_table.add_row(
            str(ratio["n_envs"]),
            f"{ratio['adapter_over_raw']:.3f}",
            f"{ratio['paired_median_adapter_over_raw']:.3f}",
            f"{ratio['adapter_over_raw_useful']:.3f}",
            f"{ratio['paired_median_adapter_over_raw_useful']:.3f}",
        )
    console.print(ratio_table)

    if target["measured"] is None:
        console.print(f"Target: n_envs={TARGET_N_ENVS} was not measured.")
        return
    verdict = "[green]MET[/green]" if target["met"] else "[red]NOT MET[/red]"
    console.print(
        f"Target (adapter >= {TARGET_RATIO:.0%} of raw EnvPool steps/s at {TARGET_N_ENVS} envs): {verdict}"
        f" — measured {target['measured']:.1%}"
        f" (vs raw useful transitions/s: {target['measured_vs_useful']:.1%})"
    )


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


def build_training_model(config: AlgoConfig, spec: dict[str, Any] | None, seed: int) -> Any:
    """Stock SB3 (``spec`` None) or the platform's ``build`` with TD-error module ``spec``, on its own env."""
    import stable_baselines3

    from agents.registry import build
    from envs import make_vec_env

    env = make_vec_env(ENV_ID, config.n_envs, seed=seed, backend="envpool")
    policy_kwargs = copy.deepcopy(NEURO_POLICY_KWARGS)
    try:
        if spec is None:
            cls = getattr(stable_baselines3, config.algo.upper())
            return cls("MlpPolicy", env, seed=seed, device="cpu", policy_kwargs=policy_kwargs,
                       **config.hyperparameters)
        return build(config.algo, env, hyperparameters=config.hyperparameters, policy_kwargs=policy_kwargs,
                     seed=seed, device="cpu", dopamine=dict(spec))
    except BaseException:
        env.close()
        raise


def timed_learn(model: Any, steps: int) -> float:
    """Env steps per second of ``model.learn(steps)``, continuing the model's run."""
    gc.collect()
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    return (model.num_timesteps - before) / elapsed


def bench_neuro_algo(
    config: AlgoConfig, settings: NeuroSettings, rng: np.random.Generator, console: Console
) -> tuple[list[NeuroRow], list[list[str]]]:
    """Stock SB3 and every module on ``config``, timed in shuffled interleaved repeats.

    Returns the rows (stock first) and the order each repeat ran them in. A module the algorithm
    refuses (``ValueError`` from ``build``) gets a skipped row carrying the error.
    """
    warmup_steps, steps = settings.steps(config.algo)
    specs: list[dict[str, Any] | None] = []
    models: list[Any] = []
    skipped: list[NeuroRow] = []
    with console.status(f"{config.algo}: building and warming up") as status:
        for spec in (None, *DOPAMINE_SPECS):
            try:
                model = build_training_model(config, spec, settings.seed)
            except ValueError as error:
                if spec is None:
                    raise
                skipped.append(NeuroRow(config.algo, module_label(spec), spec, steps, [], None,
                                        max_overhead=max_overhead(spec), skipped=str(error)))
                continue
            status.update(f"{config.algo}: warm-up, {module_label(spec)}")
            model.learn(warmup_steps, reset_num_timesteps=False)
            specs.append(spec)
            models.append(model)

        rates: list[list[float]] = [[] for _ in models]
        orders: list[list[str]] = []
        for repeat in range(settings.repeats):
            order = [int(i) for i in rng.permutation(len(models))]
            orders.append([module_label(specs[i]) for i in order])
            for i in order:
                status.update(f"{config.algo}: repeat {repeat + 1}/{settings.repeats}, {module_label(specs[i])}")
                rates[i].append(timed_learn(models[i], steps))
    for model in models:
        model.get_env().close()

    stock_rates = rates[0]
    stock = statistics.median(stock_rates)
    rows = [NeuroRow(config.algo, module_label(None), None, steps, stock_rates, stock)]
    for spec, module_rates in zip(specs[1:], rates[1:], strict=True):
        median = statistics.median(module_rates)
        overhead = 1.0 - median / stock
        target = max_overhead(spec)
        rows.append(NeuroRow(
            config.algo, module_label(spec), spec, steps, module_rates, median, overhead=overhead,
            paired_overhead=statistics.median(1.0 - m / s for m, s in zip(module_rates, stock_rates, strict=True)),
            max_overhead=target, met=None if target is None else overhead <= target,
        ))
    return rows + skipped, orders


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


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
            row.algo, row.module, "-" if row.skipped else str(row.steps_per_repeat), _fmt_rate(row.steps_per_s),
            _spread(row.repeats),
            _fmt_pct(row.overhead), _fmt_pct(row.paired_overhead),
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
    for config in NEURO_CONFIGS:
        algo_rows, orders[config.algo] = bench_neuro_algo(config, settings, rng, console)
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
        "configs": {config.algo: {"n_envs": config.n_envs, "hyperparameters": config.hyperparameters,
                                  "policy_kwargs": NEURO_POLICY_KWARGS} for config in NEURO_CONFIGS},
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--section", choices=("env", "neuro", "training", "all"), default="all",
                        help="env: env steps/s of the backends; neuro: training overhead of the TD-error modules; "
                             "training: shipped configs vs the learner-bound limit, and peak memory")
    parser.add_argument("--quick", action="store_true",
                        help="short step counts (env ~20 s, neuro under a minute), for a smoke test")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per EnvPool configuration")
    parser.add_argument("--neuro-repeats", type=int, default=None,
                        help="timed repeats of the neuro section (default 3, 2 with --quick)")
    parser.add_argument("--training-repeats", type=int, default=None,
                        help="timed repeats of the training section (default 3, 1 with --quick)")
    parser.add_argument("--skip-highway-env", action="store_true", help="skip the Python highway-env rows")


def add_bench_command(commands: Any) -> None:
    """Register ``neurodrive bench`` on the CLI's subparsers."""
    bench = commands.add_parser("bench", help="benchmark env throughput and neuro-module overhead")
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


def run_env_section(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Time every backend at every ``n_envs``, print the report; return the env results."""
    settings = QUICK if args.quick else FULL
    if args.repeats is not None:
        settings = replace(settings, repeats=args.repeats)
    rng = np.random.default_rng(settings.seed)
    wall_start = time.perf_counter()

    rows: list[Row] = []
    ratios: list[dict[str, Any]] = []
    for n_envs in N_ENVS:
        with console.status(f"EnvPool raw vs adapter, n_envs={n_envs}"):
            raw_row, adapter_row = bench_envpool_pair(n_envs, settings, rng)
        rows += [raw_row, adapter_row]
        ratios.append(compute_ratios(raw_row, adapter_row))
    if not args.skip_highway_env:
        for n_envs in HIGHWAY_ENV_N_ENVS:
            with console.status(f"highway-env, n_envs={n_envs}"):
                rows.append(bench_highway_env(n_envs, settings, rng))

    at_target = next((r for r in ratios if r["n_envs"] == TARGET_N_ENVS), None)
    target = {
        "n_envs": TARGET_N_ENVS,
        "min_ratio": TARGET_RATIO,
        "metric": "adapter steps/s / raw EnvPool steps/s (medians)",
        "measured": None if at_target is None else at_target["adapter_over_raw"],
        "measured_vs_useful": None if at_target is None else at_target["adapter_over_raw_useful"],
        "met": None if at_target is None else at_target["adapter_over_raw"] >= TARGET_RATIO,
    }
    wall_s = time.perf_counter() - wall_start
    print_report(console, rows, ratios, target)
    return {
        "env_id": ENV_ID,
        "settings": asdict(settings),
        "rows": [asdict(row) for row in rows],
        "ratios": ratios,
        "target": target,
        "env_wall_s": wall_s,
    }


def run_bench(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Run the chosen sections, print their tables, write the JSON file; return the results."""
    for name in ("repeats", "neuro_repeats", "training_repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 1")
    console = Console()
    if not console.is_terminal:  # piped or logged: do not squeeze the table into 80 columns
        console = Console(width=150)
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
        results.update(run_env_section(args, console))
    if args.section in ("neuro", "all"):
        results["neuro"] = run_neuro_section(args, console)
    if args.section in ("training", "all"):
        results["training"] = run_training_section(args.quick, console, repeats=args.training_repeats)
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

