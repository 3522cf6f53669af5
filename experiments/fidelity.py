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

import argparse
import hashlib
import math
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy import stats
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from envs.evaluation import DrivingMetrics, Predictor, evaluate_driving
from envs.factory import make_vec_env
from envs.scenarios import SCENARIOS, envpool_kwargs, highway_env_default_config
from experiments.files import library_versions, write_json_atomic

CANDIDATE, REFERENCE = "envpool", "highway-env"
BACKENDS: tuple[str, str] = (CANDIDATE, REFERENCE)
METRICS: tuple[str, ...] = ("return", "length", "crash_rate", "speed")
# Smallest difference that counts, whatever the reference mean (near-zero means would flag noise).
ABSOLUTE_FLOORS: dict[str, float] = {"return": 0.5, "length": 0.5, "crash_rate": 0.05, "speed": 0.5}
DEFAULT_EPISODES: dict[str, int] = {CANDIDATE: 200, REFERENCE: 40}
DEFAULT_TOLERANCE = 0.1
CONFIDENCE = 0.95
ENVPOOL_N_ENVS = 8  # highway-env runs one env in-process: SubprocVecEnv would compete for the cores
FIDELITY_STREAM = 3  # seed stream unseen by training (0), its evaluations (1) and `evaluate` (2)
VERSIONED = ("highway-env", "envpool", "gymnasium", "stable-baselines3", "numpy", "scipy")
_UNVERIFIED_WARNING = r"the EnvPool port of .* is not verified"


def fidelity_scenarios() -> list[str]:
    """Scenarios both backends have (a highway-env id with an EnvPool port)."""
    return [env_id for env_id, scenario in SCENARIOS.items() if scenario.envpool_id is not None]


def parse_scenarios(text: str | None) -> list[str]:
    """``a,b`` -> ``[a, b]``; ``None`` -> all; an unknown id errors with the allowed ones."""
    allowed = fidelity_scenarios()
    if text is None:
        return allowed
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen:
        raise ValueError(f"--scenarios: empty; allowed: {', '.join(allowed)}")
    for name in chosen:
        if name not in allowed:
            raise ValueError(f"--scenarios: unknown scenario {name!r}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


# --- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Student-t interval for a mean; a sample without spread gives a zero-width interval."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"mean_ci: need at least 2 values, got {x.size}")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Estimate(mean, mean - half, mean + half)


def wilson_ci(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Wilson score interval for a proportion (sound at 0 and 1, unlike the Wald interval)."""
    if n < 1:
        raise ValueError(f"wilson_ci: need at least 1 trial, got {n}")
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return Estimate(successes / n, float(interval.low), float(interval.high))


def welch_diff_ci(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Welch t-interval for ``mean(a) - mean(b)`` (unequal variances, Welch-Satterthwaite df)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"welch_diff_ci: need at least 2 values per sample, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if vx + vy == 0.0:
        return Estimate(diff, diff, diff)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(vx + vy))
    return Estimate(diff, diff - half, diff + half)


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE) -> Estimate:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (method 10, Newcombe 1998)."""
    p1, p2 = wilson_ci(k1, n1, confidence), wilson_ci(k2, n2, confidence)
    diff = p1.value - p2.value
    low = diff - math.hypot(p1.value - p1.low, p2.high - p2.value)
    high = diff + math.hypot(p1.high - p1.value, p2.value - p2.low)
    return Estimate(diff, low, high)


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
        return {"return": m.returns, "length": m.lengths, "crash_rate": m.crashed, "speed": m.speeds}[metric]

    def estimate(self, metric: str) -> Estimate | None:
        """Mean with a t-interval; crash rate with a Wilson interval; ``None`` without data."""
        values = self.values(metric)
        if len(values) < 2:
            return None
        if metric == "crash_rate":
            return wilson_ci(sum(values), len(values))
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
        return {backend: layout_signals(self._fixed(), backend) for backend in BACKENDS}

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
        for backend in BACKENDS:
            if self.episodes.get(backend, 0) < 2:
                raise ValueError(f"--{backend}-episodes: must be >= 2 (a CI needs two episodes), "
                                 f"got {self.episodes.get(backend)}")
        if not 0.0 < self.relative_tolerance:
            raise ValueError(f"--tolerance: must be > 0, got {self.relative_tolerance}")
        if self.seed < 0:
            raise ValueError(f"--seed: must be >= 0, got {self.seed}")
        for name in self.scenarios:
            if name not in fidelity_scenarios():
                raise ValueError(f"--scenarios: unknown scenario {name!r}; allowed: "
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
        env = make_vec_env(env_id, n_envs, seed, backend, config or None, stream=FIDELITY_STREAM)
    first = FirstObservations(env)
    capped = EpisodeCap(first, max_episode_steps(env_id))
    predictor = policy if hasattr(policy, "predict") else policy(env.action_space, n_envs, seed)
    start = time.perf_counter()
    try:
        metrics = evaluate_driving(predictor, capped, episodes, deterministic=True,
                                   success=SCENARIOS[env_id].success)
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
        for backend in BACKENDS:
            sample = run_policy(env_id, backend, policy, settings.episodes[backend], settings.seed, config)
            progress(f"{env_id} {name} {backend}: {sample.n_episodes} episodes in {sample.seconds:.1f} s")
            samples[backend] = sample
        comparisons.append(PolicyComparison(name, samples, settings.relative_tolerance, in_verdict, constant))
    return ScenarioReport(env_id, comparisons, config)


def _action_space(env_id: str, config: dict[str, Any]) -> spaces.Space:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UNVERIFIED_WARNING)
        env = make_vec_env(env_id, 1, 0, CANDIDATE, config or None, stream=FIDELITY_STREAM)
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
                         *(_cell(diffs[m], signed=True) + (" !" if diffs[m] and diffs[m]["flagged"] else "")
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
        "Generated by `neurodrive fidelity` (`experiments/fidelity.py`); rerun the command to refresh it.",
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
        "these, and `tests/experiments/test_fidelity.py` checks that it does.",
        "",
        "| scenario | verdict | flags |",
        "|---|---|---|",
    ]
    for scenario in report.scenarios:
        flags = "; ".join(scenario.flags()) or "-"
        lines.append(f"| {scenario.scenario} | {scenario.verdict} | {flags.replace('|', '/')} |")
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
            speeds = [comparison.samples[b].to_dict()["env_steps_per_second"] for b in BACKENDS]
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


# --- command line -------------------------------------------------------------------------------


def add_fidelity_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``neurodrive fidelity`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "fidelity", help="compare EnvPool's native ports with highway-env on fixed policies (95% CIs)")
    parser.add_argument("--scenarios", default=None, metavar="A,B",
                        help="comma-separated ids (default: every scenario with both backends: "
                             f"{', '.join(fidelity_scenarios())})")
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
    from experiments.run import RunFolder

    run = RunFolder(Path(run_dir))
    config = run.load_config()
    if config.env.id not in fidelity_scenarios():
        raise ValueError(f"--run: the run's scenario {config.env.id!r} has no EnvPool port; "
                         f"allowed: {', '.join(fidelity_scenarios())}")
    envpool_kwargs(config.env.id, config.env.config)  # raises naming a key the port cannot honour
    return run.load_model(config), config.env.id, dict(config.env.config)


def settings_from_args(args: argparse.Namespace) -> tuple[FidelitySettings, Predictor | None]:
    """Validate every flag (and load the agent) before any episode runs."""
    agent, agent_scenario, configs = None, None, {}
    if args.run:
        agent, agent_scenario, config = _load_agent(args.run)
        configs[agent_scenario] = config
        scenarios = parse_scenarios(args.scenarios if args.scenarios is not None else agent_scenario)
        if agent_scenario not in scenarios:
            raise ValueError(f"--run: the run's scenario {agent_scenario!r} is not among --scenarios "
                             f"({', '.join(scenarios)})")
    else:
        scenarios = parse_scenarios(args.scenarios)
    settings = FidelitySettings(tuple(scenarios), episodes_from_args(args), args.seed, args.tolerance,
                                agent_scenario, configs)
    return settings, agent


def write_report(report: FidelityReport, out: Path, markdown: Path | None) -> None:

    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report.to_dict())
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(report))


def fidelity_command(args: argparse.Namespace) -> int:
    """``neurodrive fidelity``: measure, print the tables, write JSON (and markdown)."""
    settings, agent = settings_from_args(args)
    console = Console(width=None if sys.stdout.isatty() else 200)
    log = Console(stderr=True)
    report = run_fidelity(settings, command_line(args, settings), agent, progress=log.log)
    console.print(render_table(report))
    console.print(render_verdicts(report))
    write_report(report, Path(args.out), Path(args.markdown) if args.markdown else None)
    console.print(f"saved {args.out}" + (f" and {args.markdown}" if args.markdown else ""))
    return 0
