"""Backend fidelity: do EnvPool's native ports drive like highway-env?

``neurodrive fidelity`` runs fixed policies (always IDLE, always FASTER and uniform random on
discrete meta-actions; zero and uniform random on continuous actions), and optionally a trained
agent, on both backends of each scenario. It reports mean return, episode length, crash rate and
mean speed with 95% confidence intervals, and the envpool - highway-env difference with its 95%
CI. A difference is *flagged* when its CI excludes zero and its size exceeds a tolerance (a share
of the highway-env mean, with an absolute floor per metric). A native port that repeats one
traffic layout (identical first observations, or zero return spread under a constant policy)
while highway-env does not is flagged too. A scenario is ``verified`` when no fixed policy is
flagged, else ``differs``; ``ENVPOOL_VERIFIED`` in ``envs/scenarios.py`` must list exactly the
verified ones (``docs/fidelity.md`` holds the measured table, and a test checks the two agree).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from rich.markup import escape
from rich.table import Table
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from envs.evaluation import DrivingMetrics, Predictor, evaluate_driving
from envs.factory import make_vec_env
from envs.scenarios import SCENARIOS, highway_env_default_config
from experiments.analysis.fidelity_options import (
    CANDIDATE,
    COMPARED_BACKENDS,
    DEFAULT_EPISODES,
    DEFAULT_TOLERANCE,
    REFERENCE,
    fidelity_scenarios,
)
from experiments.config.bounds import MAX_EPISODES
from experiments.config.toolkit import ConfigError
from experiments.files import library_versions, write_json_atomic
from experiments.statistics import CONFIDENCE, Estimate, mean_ci, newcombe_diff_ci, welch_diff_ci, wilson_ci

METRICS: tuple[str, ...] = ("return", "length", "crash_rate", "speed")
# Smallest difference that counts, whatever the reference mean (near-zero means would flag noise).
ABSOLUTE_FLOORS: dict[str, float] = {"return": 0.5, "length": 0.5, "crash_rate": 0.05, "speed": 0.5}
ENVPOOL_N_ENVS = 8  # highway-env runs one env in-process: SubprocVecEnv would compete for the cores
FIDELITY_STREAM = 3  # seed stream unseen by training (0), its evaluations (1) and `evaluate` (2)
VERSIONED = ("highway-env", "envpool", "gymnasium", "stable-baselines3", "numpy", "scipy")
_UNVERIFIED_WARNING = r"the EnvPool port of .* is not verified"


# --- flagging ---------------------------------------------------------------------------------


def tolerance(metric: str, reference_mean: float, relative: float) -> float:
    """Largest difference tolerated: ``relative * |reference mean|``, at least the metric's floor."""
    if metric not in ABSOLUTE_FLOORS:
        raise ValueError(f"metric: unknown {metric!r}; allowed: {', '.join(ABSOLUTE_FLOORS)}")
    return max(relative * abs(reference_mean), ABSOLUTE_FLOORS[metric])


def is_flagged(difference: Estimate, tolerated: float) -> bool:
    """A difference counts when its CI excludes zero and it is larger than tolerated."""
    return difference.excludes_zero() and abs(difference.value) > tolerated


# --- policies -----------------------------------------------------------------------------------


class ConstantPolicy:
    """Always the same action, in every env."""

    def __init__(self, action: Any, n_envs: int) -> None:
        self.actions = np.stack([np.asarray(action)] * n_envs)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        return self.actions.copy(), state


class UniformRandomPolicy:
    """Actions drawn uniformly from the action space by a seeded generator."""

    def __init__(self, action_space: spaces.Space, n_envs: int, seed: int) -> None:
        if not isinstance(action_space, spaces.Discrete | spaces.Box):
            raise ValueError(f"action_space: {action_space} is not Discrete or Box")
        self.action_space, self.n_envs = action_space, n_envs
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return space.start + self.rng.integers(space.n, size=self.n_envs), state
        draws = self.rng.uniform(space.low, space.high, size=(self.n_envs, *space.shape))
        return draws.astype(space.dtype), state


@dataclass(frozen=True)
class FixedPolicy:
    """A named policy that does not learn; ``constant`` ones expose a repeated traffic layout."""

    name: str
    build: Callable[[spaces.Space, int, int], Predictor]
    constant: bool = False


def meta_action_index(env_id: str, meta_action: str) -> int | None:
    """Index of a DiscreteMetaAction (``IDLE``, ``FASTER``...) in ``env_id``'s action space, as
    highway-env numbers it; ``None`` where the scenario has no such action."""
    from highway_env.envs.common.action import DiscreteMetaAction

    action = highway_env_default_config(env_id).get("action", {})
    if action.get("type") != "DiscreteMetaAction":
        return None
    longitudinal, lateral = action.get("longitudinal", True), action.get("lateral", True)
    table = (DiscreteMetaAction.ACTIONS_ALL if longitudinal and lateral
             else DiscreteMetaAction.ACTIONS_LONGI if longitudinal else DiscreteMetaAction.ACTIONS_LAT)
    return {name: index for index, name in table.items()}.get(meta_action)


def fixed_policies(env_id: str, action_space: spaces.Space) -> list[FixedPolicy]:
    """IDLE, FASTER and random on meta-actions; zero and random on continuous actions."""
    random = FixedPolicy("random", lambda space, n, seed: UniformRandomPolicy(space, n, seed))
    if isinstance(action_space, spaces.Box):
        zero = np.zeros(action_space.shape, dtype=action_space.dtype)
        return [FixedPolicy("zero", lambda space, n, seed: ConstantPolicy(zero, n), constant=True), random]
    policies = []
    for meta_action in ("IDLE", "FASTER"):
        index = meta_action_index(env_id, meta_action)
        if index is not None:
            policies.append(FixedPolicy(meta_action.lower(), _constant(index),
                                        constant=meta_action == "IDLE"))
    if not policies:
        raise ValueError(f"{env_id}: action space {action_space} has no meta-actions to hold constant")
    return [*policies, random]


def _constant(index: int) -> Callable[[spaces.Space, int, int], Predictor]:
    return lambda space, n, seed: ConstantPolicy(index, n)


# --- wrappers -----------------------------------------------------------------------------------


def observation_digest(observation: Any) -> str:
    """A hash of one env's observation (a dict observation hashes its keys in order)."""
    digest = hashlib.sha1()
    parts = observation.items() if isinstance(observation, dict) else [("", observation)]
    for key, value in sorted(parts, key=lambda item: item[0]):
        array = np.ascontiguousarray(value)
        digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _env_obs(observations: VecEnvObs, env_idx: int) -> Any:
    if isinstance(observations, dict):
        return {key: value[env_idx] for key, value in observations.items()}
    return observations[env_idx]


class FirstObservations(VecEnvWrapper):
    """Records a digest of each episode's first observation (on reset and after each real end)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.digests: list[str] = []

    def reset(self) -> VecEnvObs:
        observations = self.venv.reset()
        self.digests.extend(observation_digest(_env_obs(observations, i)) for i in range(self.num_envs))
        return observations

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        for env_idx in np.flatnonzero(dones):
            self.digests.append(observation_digest(_env_obs(observations, int(env_idx))))
        return observations, rewards, dones, infos


class EpisodeCap(VecEnvWrapper):
    """Ends an episode that reaches ``max_steps`` as if truncated, so a port whose episodes never
    end still yields statistics. The env itself is not reset (no backend offers a per-env reset
    here), so the next counted episode continues the same one; ``capped`` counts these ends."""

    def __init__(self, venv: VecEnv, max_steps: int) -> None:
        super().__init__(venv)
        self.max_steps = max_steps
        self.lengths = np.zeros(self.num_envs, dtype=int)
        self.capped = 0
        self.env_steps = 0

    def reset(self) -> VecEnvObs:
        self.lengths[:] = 0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        self.env_steps += self.num_envs
        self.lengths += 1
        over = (self.lengths >= self.max_steps) & ~dones
        for env_idx in np.flatnonzero(over):
            infos[env_idx] = {**infos[env_idx], "TimeLimit.truncated": True,
                              "terminal_observation": _env_obs(observations, int(env_idx))}
        self.capped += int(over.sum())
        dones = dones | over
        self.lengths[dones] = 0
        return observations, rewards, dones, infos


def max_episode_steps(env_id: str) -> int:
    """Twice highway-env's time limit in policy steps (1000 where the scenario has none)."""
    config = highway_env_default_config(env_id)
    duration, frequency = config.get("duration"), config.get("policy_frequency")
    if duration and frequency:
        return int(2 * round(duration * frequency))
    return 1000


# --- measurement --------------------------------------------------------------------------------


@dataclass
class BackendSample:
    """One policy's episodes on one backend."""

    backend: str
    metrics: DrivingMetrics
    first_observations: list[str]
    capped: int
    seconds: float
    env_steps: int

    @property
    def n_episodes(self) -> int:
        return self.metrics.n_episodes

    @property
    def distinct_first_observations(self) -> int:
        return len(set(self.first_observations))

    def values(self, metric: str) -> list[float]:
        m = self.metrics
        by_metric: dict[str, list[Any]] = {"return": m.returns, "length": m.lengths, "crash_rate": m.crashed,
                                           "speed": m.speeds}
        return by_metric[metric]

    def estimate(self, metric: str) -> Estimate | None:
        """Mean with a t-interval; crash rate with a Wilson interval; ``None`` without data."""
        values = self.values(metric)
        if len(values) < 2:
            return None
        if metric == "crash_rate":
            return wilson_ci(int(sum(values)), len(values))
        return mean_ci(values)

    def to_dict(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        for metric in METRICS:
            estimate = self.estimate(metric)
            values = self.values(metric)
            metrics[metric] = None if estimate is None else {
                **estimate.to_dict(), "sd": float(np.std(values, ddof=1)), "n": len(values)}
        return {
            "episodes": self.n_episodes,
            "metrics": metrics,
            "distinct_first_observations": self.distinct_first_observations,
            "first_observations": len(self.first_observations),
            "capped_episodes": self.capped,
            "seconds": round(self.seconds, 3),
            "env_steps_per_second": round(self.env_steps / self.seconds, 1) if self.seconds > 0 else None,
            "per_episode": {"returns": self.metrics.returns, "lengths": self.metrics.lengths,
                            "crashed": self.metrics.crashed, "speeds": self.metrics.speeds},
        }


def difference(metric: str, candidate: BackendSample, reference: BackendSample) -> Estimate | None:
    """``candidate - reference``: Newcombe for the crash rate, Welch for the means."""
    a, b = candidate.values(metric), reference.values(metric)
    if len(a) < 2 or len(b) < 2:
        return None
    if metric == "crash_rate":
        return newcombe_diff_ci(int(sum(a)), len(a), int(sum(b)), len(b))
    return welch_diff_ci(a, b)


@dataclass
class PolicyComparison:
    """One policy on both backends, with each metric's difference and whether it is flagged."""

    policy: str
    samples: dict[str, BackendSample]
    relative_tolerance: float
    in_verdict: bool = True
    constant: bool = False

    def differences(self) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for metric in METRICS:
            diff = difference(metric, self.samples[CANDIDATE], self.samples[REFERENCE])
            reference = self.samples[REFERENCE].estimate(metric)
            if diff is None or reference is None:
                out[metric] = None
                continue
            tolerated = tolerance(metric, reference.value, self.relative_tolerance)
            out[metric] = {**diff.to_dict(), "tolerance": tolerated, "flagged": is_flagged(diff, tolerated)}
        return out

    def flags(self) -> list[str]:
        flags = []
        for metric, diff in self.differences().items():
            if diff is not None and diff["flagged"]:
                flags.append(f"{self.policy} {metric}: {_cell(diff, signed=True)} beyond tolerance "
                             f"{_number(diff['tolerance'])}")
        return flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "in_verdict": self.in_verdict,
            "backends": {backend: sample.to_dict() for backend, sample in self.samples.items()},
            "differences": self.differences(),
        }


LAYOUT_SIGNALS = ("first_observation", "return_spread")


def layout_signals(comparisons: Iterable[PolicyComparison], backend: str) -> dict[str, str | None]:
    """Signs that ``backend`` replays one traffic layout, each with its evidence or ``None``:
    ``first_observation``, one first observation in every episode start of a policy;
    ``return_spread``, the same return in every episode of a constant policy."""
    signals: dict[str, str | None] = dict.fromkeys(LAYOUT_SIGNALS)
    for comparison in comparisons:
        sample = comparison.samples[backend]
        starts = len(sample.first_observations)
        if signals["first_observation"] is None and starts >= 2 and sample.distinct_first_observations == 1:
            signals["first_observation"] = (f"{backend}: one first observation in all {starts} episode "
                                            f"starts ({comparison.policy})")
        returns = sample.metrics.returns
        if signals["return_spread"] is None and comparison.constant and len(returns) >= 2 and np.ptp(returns) == 0:
            signals["return_spread"] = f"{backend}: every always-{comparison.policy} return is {returns[0]:.4g}"
    return signals


@dataclass
class ScenarioReport:
    """Every policy's comparison on one scenario, and the verdict they give."""

    scenario: str
    comparisons: list[PolicyComparison]
    config: dict[str, Any] = field(default_factory=dict)

    def _fixed(self) -> list[PolicyComparison]:
        return [c for c in self.comparisons if c.in_verdict]

    def layout(self) -> dict[str, dict[str, str | None]]:
        return {backend: layout_signals(self._fixed(), backend) for backend in COMPARED_BACKENDS}

    def flags(self) -> list[str]:
        """The fixed-policy findings that make the verdict ``differs``: flagged differences, and each
        layout signal the native port shows while highway-env does not."""
        flags = [flag for comparison in self._fixed() for flag in comparison.flags()]
        layout = self.layout()
        for signal in LAYOUT_SIGNALS:
            if layout[CANDIDATE][signal] and not layout[REFERENCE][signal]:
                flags.append(f"repeats one traffic layout ({layout[CANDIDATE][signal]})")
        return flags

    @property
    def verdict(self) -> str:
        return "differs" if self.flags() else "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "verdict": self.verdict,
            "flags": self.flags(),
            "repeats_layout": self.layout(),
            "config": self.config,
            "policies": [comparison.to_dict() for comparison in self.comparisons],
        }


@dataclass(frozen=True)
class FidelitySettings:
    """What one fidelity run measures; ``episodes`` is per backend, for each policy."""

    scenarios: tuple[str, ...]
    episodes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EPISODES))
    seed: int = 0
    relative_tolerance: float = DEFAULT_TOLERANCE
    agent_scenario: str | None = None  # the scenario the agent is compared on
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # env config per scenario

    def __post_init__(self) -> None:
        for backend in COMPARED_BACKENDS:
            if not 2 <= self.episodes.get(backend, 0) <= MAX_EPISODES:
                raise ConfigError(f"--{backend}-episodes: must be an int in [2, {MAX_EPISODES}] (a CI needs two "
                                  f"episodes), got {self.episodes.get(backend)}")
        if not 0.0 < self.relative_tolerance:
            raise ConfigError(f"--tolerance: must be > 0, got {self.relative_tolerance}")
        if self.seed < 0:
            raise ConfigError(f"--seed: must be >= 0, got {self.seed}")
        for name in self.scenarios:
            if name not in fidelity_scenarios():
                raise ConfigError(f"--scenarios: unknown scenario {name!r}; allowed: "
                                 f"{', '.join(fidelity_scenarios())}")


PolicySource = Callable[[spaces.Space, int, int], Predictor] | Predictor


def run_policy(env_id: str, backend: str, policy: PolicySource, episodes: int, seed: int,
               config: dict[str, Any] | None = None) -> BackendSample:
    """``episodes`` episodes of one policy on one backend; ``policy`` is a trained model or a
    ``build(action_space, n_envs, seed)`` factory."""
    n_envs = ENVPOOL_N_ENVS if backend == CANDIDATE else 1
    n_envs = min(n_envs, episodes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UNVERIFIED_WARNING)
        env = make_vec_env(env_id, n_envs, seed, backend, config or None,  # type: ignore[arg-type]  # a backend name
                           stream=FIDELITY_STREAM)
    first = FirstObservations(env)
    capped = EpisodeCap(first, max_episode_steps(env_id))
    predictor = policy if hasattr(policy, "predict") else policy(env.action_space, n_envs, seed)
    start = time.perf_counter()
    try:
        # Fixed policies hold one action on purpose; only a trained agent's collapse is news.
        metrics = evaluate_driving(predictor, capped, episodes, deterministic=True,
                                   success=SCENARIOS[env_id].success, warn_dominant=hasattr(policy, "predict"))
    finally:
        capped.close()
    seconds = time.perf_counter() - start
    return BackendSample(backend, metrics, first.digests, capped.capped, seconds, capped.env_steps)


def measure_scenario(env_id: str, settings: FidelitySettings, agent: Predictor | None = None,
                     progress: Callable[[str], None] = lambda _: None) -> ScenarioReport:
    """Every fixed policy (and the agent, if given) on both backends of one scenario."""
    config = settings.configs.get(env_id, {})
    action_space = _action_space(env_id, config)
    comparisons = []
    runs: list[tuple[str, PolicySource, bool, bool]] = [
        (policy.name, policy.build, True, policy.constant) for policy in fixed_policies(env_id, action_space)]
    if agent is not None:
        runs.append(("agent", agent, False, False))
    for name, policy, in_verdict, constant in runs:
        samples = {}
        for backend in COMPARED_BACKENDS:
            sample = run_policy(env_id, backend, policy, settings.episodes[backend], settings.seed, config)
            progress(f"{env_id} {name} {backend}: {sample.n_episodes} episodes in {sample.seconds:.1f} s")
            samples[backend] = sample
        comparisons.append(PolicyComparison(name, samples, settings.relative_tolerance, in_verdict, constant))
    return ScenarioReport(env_id, comparisons, config)


def _action_space(env_id: str, config: dict[str, Any]) -> spaces.Space:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UNVERIFIED_WARNING)
        env = make_vec_env(env_id, 1, 0, CANDIDATE, config or None, stream=FIDELITY_STREAM)  # type: ignore[arg-type]
    try:
        return env.action_space
    finally:
        env.close()


@dataclass
class FidelityReport:
    """A whole fidelity run: settings, provenance and one report per scenario."""

    settings: FidelitySettings
    scenarios: list[ScenarioReport]
    command: str
    date: str
    versions: dict[str, str | None]
    wall_seconds: float

    def verdicts(self) -> dict[str, str]:
        return {report.scenario: report.verdict for report in self.scenarios}

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "date": self.date,
            "versions": self.versions,
            "wall_seconds": round(self.wall_seconds, 1),
            "settings": {
                "episodes": self.settings.episodes,
                "seed": self.settings.seed,
                "relative_tolerance": self.settings.relative_tolerance,
                "absolute_floors": ABSOLUTE_FLOORS,
                "confidence": CONFIDENCE,
                "envpool_n_envs": ENVPOOL_N_ENVS,
                "agent_scenario": self.settings.agent_scenario,
            },
            "verdicts": self.verdicts(),
            "scenarios": [report.to_dict() for report in self.scenarios],
        }


def run_fidelity(settings: FidelitySettings, command: str, agent: Predictor | None = None,
                 progress: Callable[[str], None] = lambda _: None) -> FidelityReport:
    """Measure every scenario in ``settings``; the agent runs on ``settings.agent_scenario`` only."""
    start = time.perf_counter()
    reports = [
        measure_scenario(env_id, settings, agent if env_id == settings.agent_scenario else None, progress)
        for env_id in settings.scenarios
    ]
    return FidelityReport(settings, reports, command, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          library_versions(VERSIONED), time.perf_counter() - start)


# --- output -------------------------------------------------------------------------------------


def _number(x: float, signed: bool = False) -> str:
    """Three significant digits, without exponents for large values."""
    sign = "+" if signed else ""
    return f"{x:{sign},.0f}" if abs(x) >= 1000 else f"{x:{sign}.3g}"


def _cell(estimate: dict[str, Any] | None, signed: bool = False) -> str:
    if estimate is None:
        return "-"
    value, low, high = (_number(estimate[key], signed) for key in ("value", "low", "high"))
    return f"{value} [{low}, {high}]"


def table_rows(report: FidelityReport) -> list[list[str]]:
    """Rows ``scenario, policy, row, episodes, return, length, crash rate, speed``; flagged
    differences are marked ``!``."""
    rows = []
    for scenario in report.scenarios:
        for comparison in scenario.comparisons:
            policy = comparison.policy if comparison.in_verdict else f"{comparison.policy} (not in verdict)"
            for backend, sample in comparison.samples.items():
                data = sample.to_dict()
                rows.append([scenario.scenario, policy, backend, str(data["episodes"]),
                             *(_cell(data["metrics"][m]) for m in METRICS)])
            diffs = comparison.differences()
            rows.append([scenario.scenario, policy, "difference", "",
                         *(_cell(diffs[m], signed=True) + (" !" if (diff := diffs[m]) and diff["flagged"] else "")

                           for m in METRICS)])
    return rows


TABLE_HEADER = ("scenario", "policy", "backend", "episodes", "return", "length", "crash rate", "speed m/s")


def render_table(report: FidelityReport) -> Table:
    table = Table(title="backend fidelity: mean [95% CI]; difference = envpool - highway-env, ! = flagged")
    for column in TABLE_HEADER:
        table.add_column(column)
    for row in table_rows(report):
        table.add_row(*(escape(cell) for cell in row))
    return table


def render_verdicts(report: FidelityReport) -> Table:
    table = Table(title="verdicts")
    for column in ("scenario", "verdict", "flags"):
        table.add_column(column)
    for scenario in report.scenarios:
        table.add_row(scenario.scenario, scenario.verdict, escape("; ".join(scenario.flags()) or "-"))
    return table


def to_markdown(report: FidelityReport) -> str:
    """The report as markdown: provenance, a ``Verdicts`` table (one ``| scenario | verdict |``
    line per scenario, read by ``read_verdicts``) and the measurements."""
    settings = report.settings
    versions = ", ".join(f"{name} {version}" for name, version in report.versions.items())
    lines = [
        "# Backend fidelity: EnvPool native ports vs highway-env",
        "",
        "Generated by `neurodrive fidelity` (`experiments/analysis/fidelity.py`); rerun the command to refresh it.",
        "",
        "```bash",
        report.command,
        "```",
        "",
        f"Measured {report.date} in {report.wall_seconds / 60:.1f} min on {platform.machine()} "
        f"({os.cpu_count() or 1} cores): {versions}.",
        "",
        f"Episodes per policy: {settings.episodes[CANDIDATE]} on envpool ({ENVPOOL_N_ENVS} envs), "
        f"{settings.episodes[REFERENCE]} on highway-env (1 env); seed {settings.seed}. Means have 95% "
        "Student-t intervals, the crash rate a 95% Wilson interval; a difference (envpool - highway-env) "
        "has a 95% Welch interval (Newcombe's hybrid score interval for the crash rate). It is flagged "
        f"(!) when its interval excludes zero and its size exceeds {settings.relative_tolerance:g} x the "
        "highway-env mean, or the metric's floor where that is larger (" +
        ", ".join(f"{m} {v:g}" for m, v in ABSOLUTE_FLOORS.items()) + "). A native port that repeats one "
        "traffic layout (one first observation in every episode, or no return spread under a constant "
        "policy) while highway-env does not is flagged too. Episodes are cut at twice highway-env's time "
        "limit, or 1000 steps where it has none (`capped_episodes` in the JSON). With up to 12 comparisons "
        "per scenario a chance flag is possible; the tolerance keeps it rare.",
        "",
        "## Verdicts",
        "",
        "A scenario is `verified` when no fixed policy (IDLE, FASTER, random; zero and random for "
        "continuous actions) is flagged; `ENVPOOL_VERIFIED` in `envs/scenarios.py` lists exactly "
        "these, and `tests/experiments/analysis/test_fidelity.py` checks that it does.",
        "",
        "| scenario | verdict | flags |",
        "|---|---|---|",
    ]
    for scenario in report.scenarios:
        flags = "; ".join(scenario.flags()) or "-"
        lines.append(f"| {scenario.scenario} | {scenario.verdict} | {flags.replace('|', '/')} |")
    measured = {scenario.scenario for scenario in report.scenarios}
    unmeasured = [env_id for env_id in fidelity_scenarios() if env_id not in measured]
    if unmeasured:
        lines += ["", f"Not measured in this run (`backend: auto` never picks an unverified port): "
                      f"{', '.join(unmeasured)}."]
    lines += [
        "",
        "## Measurements",
        "",
        "Mean [95% CI]; speed is each episode's mean speed. `!` marks a flagged difference.",
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "---|" * len(TABLE_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    lines += ["", "Throughput of this run (env steps/s, all envs of the backend):", "",
              "| scenario | policy | envpool | highway-env |", "|---|---|---|---|"]
    for scenario in report.scenarios:
        for comparison in scenario.comparisons:
            speeds = [comparison.samples[b].to_dict()["env_steps_per_second"] for b in COMPARED_BACKENDS]
            lines.append(f"| {scenario.scenario} | {comparison.policy} | "
                         + " | ".join("-" if s is None else f"{s:,.0f}" for s in speeds) + " |")
    return "\n".join(lines) + "\n"


_VERDICT_ROW = re.compile(r"^\|\s*([\w.-]+)\s*\|\s*(verified|differs)\s*\|")


def read_verdicts(markdown: str) -> dict[str, str]:
    """``{scenario: verdict}`` from the ``## Verdicts`` table of a ``to_markdown`` document."""
    verdicts: dict[str, str] = {}
    in_section = False
    for line in markdown.splitlines():
        if line.startswith("## "):
            in_section = line.strip() == "## Verdicts"
            continue
        match = _VERDICT_ROW.match(line) if in_section else None
        if match:
            verdicts[match.group(1)] = match.group(2)
    return verdicts


def write_report(report: FidelityReport, out: Path, markdown: Path | None) -> None:

    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report.to_dict())
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(report))
