"""Env throughput: raw EnvPool vs the platform's EnvPool adapter vs highway-env.

All backends run ``highway-fast-v0`` with uniformly random actions (pre-generated, so drawing
them costs nothing inside the timed loops). For each ``n_envs`` the raw pool and the adapter are
built once, warmed up, then timed in alternating repeats over the same fixed step count; the
reported figure is the median of the repeats.

Observation types (``observation_rows``): each highway-env observation type (and the native port's, which
observes Kinematics only) steps one env, timed in turns over the same step counts, side by side. On
2026-12-07 (2 cores, --quick) the 128 x 64 grayscale frames cost no more than the Kinematics table, which
highway-env builds through pandas each step (60 vs 50 steps/s); the native port ran ~8000.

Raw EnvPool resets a finished env on its *next* ``step`` (that env-step ignores the action and
returns reward 0), whereas the adapter resets in the same step. Raw throughput is therefore
reported twice: all env-steps per second, and "useful" transitions per second (env-steps minus
those auto-reset steps).
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from experiments.bench.common import fmt_rate, spread
from experiments.bench.section import BenchOptions

ENV_ID = "highway-fast-v0"
N_ENVS: tuple[int, ...] = (1, 8, 64)
HIGHWAY_ENV_N_ENVS: tuple[int, ...] = (1, 2)
TARGET_N_ENVS = 64
TARGET_RATIO = 0.95
PACKAGES: tuple[str, ...] = ("envpool", "highway-env", "stable-baselines3", "torch", "gymnasium", "numpy")

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


# The observation types timed side by side (envs.observations.OBSERVATION_TYPES), as the vision presets set them.
GRAYSCALE: dict[str, Any] = {"type": "GrayscaleObservation", "observation_shape": [128, 64], "stack_size": 4,
                             "weights": [0.2989, 0.5870, 0.1140], "scaling": 1.75}
OBSERVATIONS: dict[str, dict[str, Any]] = {
    "Kinematics": {"type": "Kinematics"},
    "OccupancyGrid": {"type": "OccupancyGrid"},
    "GrayscaleObservation": GRAYSCALE,
    "TimeToCollision": {"type": "TimeToCollision"},
    "LidarObservation": {"type": "LidarObservation"},
    "TupleObservation": {"type": "TupleObservation", "observation_configs": [{"type": "Kinematics"}, GRAYSCALE]},
}


@dataclass
class ObservationRow:
    """Throughput of one observation type on one backend (one env): env-steps per second, median of repeats."""

    observation: str
    backend: str
    shape: str
    repeats: list[float]
    steps_per_s: float


def observation_rows(settings: Settings, rng: np.random.Generator, native: bool = True) -> list[ObservationRow]:
    """Every type of ``OBSERVATIONS`` on highway-env, and on the native port where it has one (``native``),
    one env each; the repeats take turns across the types so a slow spell of the machine hits them alike."""
    from envs import make_vec_env
    from envs.observations import NATIVE_TYPES

    cases = [(name, "highway-env") for name in OBSERVATIONS]
    if native:
        cases += [(name, "envpool") for name in OBSERVATIONS if name in NATIVE_TYPES]
    runners = {case: VecEnvRunner(make_vec_env(ENV_ID, 1, seed=settings.seed, backend=case[1],
                                               config={"observation": OBSERVATIONS[case[0]]}))
               for case in cases}
    try:
        rates: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
        for runner in runners.values():
            runner.run(random_actions(runner.vec_env.action_space, 3, 1, rng))  # warm-up: first frames, caches
        for _ in range(settings.highway_env_repeats):
            for case, runner in runners.items():
                actions = random_actions(runner.vec_env.action_space, settings.highway_env_steps, 1, rng)
                elapsed, _ = runner.run(actions)
                rates[case].append(settings.highway_env_steps / elapsed)
        return [ObservationRow(name, backend, _shape(runners[(name, backend)].vec_env.observation_space),
                               rates[(name, backend)], statistics.median(rates[(name, backend)]))
                for name, backend in cases]
    finally:
        for runner in runners.values():
            runner.vec_env.close()


def _shape(space: Any) -> str:
    parts = getattr(space, "spaces", None)
    if isinstance(parts, dict):
        return " + ".join(f"{key} {tuple(part.shape)}" for key, part in parts.items())
    return f"{tuple(space.shape)} {space.dtype}"


def print_observation_rows(console: Console, rows: list[ObservationRow]) -> None:
    table = Table(title=f"{ENV_ID}: env-steps/s by observation type, one env, median of repeats (random actions)")
    for column in ("observation", "backend", "shape", "steps/s", "min – max", "vs Kinematics"):
        table.add_column(column, justify="left" if column in ("observation", "backend", "shape") else "right")
    reference = {row.backend: row.steps_per_s for row in rows if row.observation == "Kinematics"}
    for row in rows:
        base = reference.get(row.backend)
        table.add_row(row.observation, row.backend, row.shape, fmt_rate(row.steps_per_s), spread(row.repeats),
                      f"{row.steps_per_s / base:.2f}x" if base else "-")
    console.print(table)


def compute_ratios(raw: Row, adapter: Row) -> dict[str, Any]:
    """Adapter vs raw at one ``n_envs``: ratio of medians, and the median of per-repeat ratios."""
    assert raw.useful_repeats is not None and raw.useful_per_s is not None
    assert raw.auto_reset_steps is not None and raw.total_env_steps is not None

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
            row.backend, str(row.n_envs), str(row.threads), row.vec_env, fmt_rate(row.steps_per_s),
            spread(row.repeats), fmt_rate(row.steps_per_s / row.n_envs), fmt_rate(row.useful_per_s),
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


def run_env_section(quick: bool, console: Console, repeats: int | None = None,
                    skip_highway_env: bool = False) -> dict[str, Any]:
    """Time every backend at every ``n_envs``; return the env figures (:func:`print_env_section` prints them)."""
    settings = QUICK if quick else FULL
    if repeats is not None:
        settings = replace(settings, repeats=repeats)
    rng = np.random.default_rng(settings.seed)
    wall_start = time.perf_counter()

    rows: list[Row] = []
    ratios: list[dict[str, Any]] = []
    for n_envs in N_ENVS:
        with console.status(f"EnvPool raw vs adapter, n_envs={n_envs}"):
            raw_row, adapter_row = bench_envpool_pair(n_envs, settings, rng)
        rows += [raw_row, adapter_row]
        ratios.append(compute_ratios(raw_row, adapter_row))
    observations: list[ObservationRow] = []
    if not skip_highway_env:
        for n_envs in HIGHWAY_ENV_N_ENVS:
            with console.status(f"highway-env, n_envs={n_envs}"):
                rows.append(bench_highway_env(n_envs, settings, rng))
        with console.status("observation types"):
            observations = observation_rows(settings, rng)

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
    return {
        "env_id": ENV_ID,
        "settings": asdict(settings),
        "rows": [asdict(row) for row in rows],
        "ratios": ratios,
        "target": target,
        "observations": [asdict(row) for row in observations],
        "env_wall_s": wall_s,
    }


def print_env_section(figures: dict[str, Any], console: Console) -> None:
    print_report(console, [Row(**row) for row in figures["rows"]], figures["ratios"], figures["target"])
    if figures.get("observations"):  # absent from figures saved before the observation types were timed
        print_observation_rows(console, [ObservationRow(**row) for row in figures["observations"]])


class EnvSection:
    """``env``: env steps/s of raw EnvPool, the platform's adapter and highway-env."""

    name = "env"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_env_section(options.quick, console, options.repeats, options.skip_highway_env)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_env_section(figures, console)


SECTION = EnvSection()
