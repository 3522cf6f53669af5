"""Spiking agents against their ANN twins: training steps/s, the MAC-bound limit, energy per decision
and peak memory.

The pairs are the shipped twin configs under ``experiments/presets/spiking/`` (DQN, PPO and SAC; each
spiking file differs from its ANN twin only in ``agent.policy`` and ``agent.snn``), built through the
platform's one build path with the bench's seed and one torch thread. They run on the fastest env
that keeps the scenario: the backend ``auto`` picks when that is EnvPool's verified port; otherwise
EnvPool's unverified port when ``choose_backend`` allows it (SAC's racetrack-v0: its highway-env
reference runs tens of steps/s), with a note; otherwise a ``ZeroCostVecEnv`` with the scenario's spaces.

For each pair both models are built and warmed up (off-policy past ``learning_starts``, PPO one rollout
and update); each repeat then times ``model.learn(N)`` of both in a shuffled order, so load drift hits
both alike. Meanwhile perf_counter accumulators time the networks' work: the decisions
(``policy._predict``; PPO's rollout ``policy.forward``) and the gradient updates (``model.train``, less
the replay sampling inside it, which is no network work).

On a CPU a spiking network pays its dense matrix products T times, so its speed limit is the ANN
twin's time per step with the network work scaled by the ratio of MACs: the time outside the
networks stays, decision time scales by the MAC ratio of the networks that decide and update time by
that of the networks the updates run (critics and targets included, each weighted by the rows it
sees per env step, a backward pass counted as two forwards). Targets: spiking >= 80% of that limit,
and, for PPO, >= 33% of the ANN twin. After the timing each spiking agent decides greedily on its env
for a few hundred decisions: synaptic operations, energy estimates and firing rates per decision.
Peak memory of each row comes from a fresh process that builds, warms up and trains that model alone.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from experiments.bench.common import fmt_rate, peak_rss_mib, spread
from experiments.bench.training import ZeroCostVecEnv, time_in_fresh_process
from experiments.config import ConfigError, ExperimentConfig, load_config
from experiments.presets import PRESETS
from neuro.snn.network import ENERGY_CAVEAT, SpikingMLP

MIN_RATIO_TO_LIMIT = 0.80  # every spiking agent, of its MAC-bound limit
MIN_RATIO_TO_ANN = {"ppo": 0.33}  # rollouts are forward passes and the env takes part of the time
BACKWARD_FORWARDS = 2.0  # a backward pass costs about two forward passes (input and weight gradients)
# The fields a spiking config may change from its ANN twin.
TWIN_DIFFERENCES: dict[str, Any] = {"name": True, "agent": {"policy": True, "snn": True}}


@dataclass(frozen=True)
class SpikingPair:
    """A spiking config and its ANN twin (files under ``experiments/presets``).

    :param overrides: ``--set``-style overrides applied to both (the tests shrink the runs with them).
    """

    algo: str
    ann: str
    spiking: str
    overrides: tuple[str, ...] = ()


PAIRS: tuple[SpikingPair, ...] = (
    SpikingPair("dqn", "spiking/dqn_ann.yaml", "spiking/dqn_spiking.yaml"),
    SpikingPair("ppo", "spiking/ppo_ann.yaml", "spiking/ppo_spiking.yaml"),
    SpikingPair("sac", "spiking/sac_ann.yaml", "spiking/sac_spiking.yaml"),
)


@dataclass(frozen=True)
class SpikingSettings:
    """How long each pair is timed.

    :param repeats: timed repeats; each runs the ANN twin and the spiking agent once, shuffled.
    :param dqn_steps: env steps per timed DQN ``learn`` (one gradient step each).
    :param ppo_steps: env steps per timed PPO ``learn`` (2048 per rollout and update).
    :param sac_steps: env steps per timed SAC ``learn`` (one gradient step each).
    :param energy_decisions: greedy decisions of each spiking agent for the energy figures.
    :param fresh_process_memory: peak RSS of each row from its own fresh process (else this process's, cumulative).
    :param torch_threads: ``torch.set_num_threads``, as the configs' ``training.torch_threads`` default.
    :param seed: seed of every model and env, and of the repeat orders.
    """

    repeats: int = 3
    dqn_steps: int = 2000
    ppo_steps: int = 8192
    sac_steps: int = 400
    energy_decisions: int = 500
    fresh_process_memory: bool = True
    torch_threads: int = 1
    seed: int = 0

    def steps(self, algo: str) -> int:
        """Timed env steps per repeat for ``algo``."""
        return {"dqn": self.dqn_steps, "ppo": self.ppo_steps, "sac": self.sac_steps}[algo]


SPIKING_FULL = SpikingSettings()
SPIKING_QUICK = SpikingSettings(repeats=2, dqn_steps=500, ppo_steps=2048, sac_steps=100, energy_decisions=200)


# --- MACs ----------------------------------------------------------------------------------------


def forward_macs(module: nn.Module) -> int:
    """Multiply-accumulates of one forward pass of ``module`` per input row on a CPU: ``dense_macs()``
    of each ``SpikingMLP`` inside it, ``in_features * out_features`` of every other ``nn.Linear``.

    A ``SpikingMLP`` without its own readout counts the SB3 heads reading its rates in ``dense_macs``
    (``readout_fan_out``); those heads are ``nn.Linear`` modules here, so they are counted once, as such.
    """
    spiking = [sub for sub in module.modules() if isinstance(sub, SpikingMLP)]
    inside = {id(sub) for network in spiking for sub in network.modules()}
    total = 0
    for network in spiking:
        total += network.dense_macs()
        if network.readout is None:
            total -= network.hidden[-1] * network.readout_fan_out
    for sub in module.modules():
        if isinstance(sub, nn.Linear) and id(sub) not in inside:
            total += sub.in_features * sub.out_features
    return total


@dataclass(frozen=True)
class NetworkLoad:
    """One network's work per env step: forward rows while deciding, forward-pass equivalents in the
    gradient updates (a backward pass counted as ``BACKWARD_FORWARDS``), and its MACs per row."""

    name: str
    decide_rows: float
    learn_rows: float
    macs: int


def updates_per_env_step(model: BaseAlgorithm) -> float:
    """Gradient steps per env step of an off-policy agent (``train_freq`` in steps)."""
    frequency, unit = model.train_freq  # type: ignore[attr-defined]
    if unit != TrainFrequencyUnit.STEP:
        raise ValueError("agent.hyperparameters.train_freq: the spiking bench counts MACs per env step; "
                         f"got a frequency in {unit.value}s")
    collected = frequency * model.n_envs
    gradient_steps = model.gradient_steps  # type: ignore[attr-defined]
    return (gradient_steps if gradient_steps >= 0 else collected) / collected


def network_loads(model: BaseAlgorithm) -> list[NetworkLoad]:
    """The networks ``model`` runs per env step, with their rows and MACs.

    PPO/A2C: the whole policy (actor and critic) decides once per step and is updated ``n_epochs``
    times per sample. DQN: the Q-network decides (counted on every step, though epsilon-greedy skips
    it on random actions: both nets of a DQN pair are spiking, so the ratio does not move) and is
    updated on ``batch_size`` rows per gradient step, its target reads the next observations. SAC: the
    actor decides, and per gradient step runs forward and backward on the batch and forward on the
    next observations; the critics run forward and backward twice (critic loss, and the actor loss
    through them), their targets once.
    """
    backward = 1.0 + BACKWARD_FORWARDS
    if isinstance(model, OnPolicyAlgorithm):
        epochs = float(getattr(model, "n_epochs", 1))
        return [NetworkLoad("policy (actor + critic)", 1.0, backward * epochs, forward_macs(model.policy))]
    rows = updates_per_env_step(model) * model.batch_size  # type: ignore[attr-defined]
    if isinstance(model.policy, DQNPolicy):  # told apart by policy: algorithm classes are built in runs/build.py
        return [NetworkLoad("q_net", 1.0, backward * rows, forward_macs(model.q_net)),
                NetworkLoad("q_net_target", 0.0, rows, forward_macs(model.q_net_target))]
    if isinstance(model.policy, SACPolicy):
        return [NetworkLoad("actor", 1.0, (backward + 1.0) * rows, forward_macs(model.actor)),
                NetworkLoad("critic", 0.0, 2.0 * backward * rows, forward_macs(model.critic)),
                NetworkLoad("critic_target", 0.0, rows, forward_macs(model.critic_target))]
    raise ValueError(f"agent.algo: the spiking bench counts MACs of DQN, PPO/A2C and SAC, not {type(model).__name__}")


def mac_ratios(spiking: list[NetworkLoad], ann: list[NetworkLoad]) -> dict[str, float]:
    """Spiking MACs over ANN MACs per env step: of the decisions, of the updates, and of all network work."""
    if [load.name for load in spiking] != [load.name for load in ann]:
        raise ValueError("the spiking agent and its twin run different networks: "
                         f"{[load.name for load in spiking]} vs {[load.name for load in ann]}")

    def ratio(rows: Callable[[NetworkLoad], float]) -> float:
        ann_macs = sum(rows(load) * load.macs for load in ann)
        return sum(rows(load) * load.macs for load in spiking) / ann_macs

    return {"decide": ratio(lambda load: load.decide_rows), "learn": ratio(lambda load: load.learn_rows),
            "all": ratio(lambda load: load.decide_rows + load.learn_rows)}


# --- the limit and the verdicts ------------------------------------------------------------------


@dataclass
class RepeatTiming:
    """One timed ``learn``: env steps, wall seconds, and the seconds spent in the networks' work."""

    steps: int
    elapsed_s: float
    decide_s: float
    learn_s: float  # gradient updates, replay sampling excluded
    sample_s: float  # replay sampling inside the updates

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.elapsed_s


def network_time_fractions(timings: list[RepeatTiming]) -> tuple[float, float]:
    """(decision, update) shares of the wall time, pooled over the repeats."""
    elapsed = sum(timing.elapsed_s for timing in timings)
    return sum(t.decide_s for t in timings) / elapsed, sum(t.learn_s for t in timings) / elapsed


def mac_bound_limit(ann_steps_per_s: float, decide_fraction: float, learn_fraction: float,
                    decide_ratio: float, learn_ratio: float) -> float:
    """Steps/s of the ANN twin had its network work cost the spiking MACs: per step the time outside
    the networks stays, decision and update time scale by their MAC ratios."""
    rest = 1.0 - decide_fraction - learn_fraction
    return ann_steps_per_s / (rest + decide_fraction * decide_ratio + learn_fraction * learn_ratio)


@dataclass(frozen=True)
class Verdicts:
    """A spiking agent's throughput against its limit (target ``MIN_RATIO_TO_LIMIT``) and its twin
    (target ``MIN_RATIO_TO_ANN`` where the algorithm has one)."""

    ratio_to_limit: float
    met_limit: bool
    ratio_to_ann: float
    min_ratio_to_ann: float | None
    met_ann: bool | None


def judge(algo: str, spiking_steps_per_s: float, ann_steps_per_s: float, limit_steps_per_s: float) -> Verdicts:
    ratio_to_limit = spiking_steps_per_s / limit_steps_per_s
    ratio_to_ann = spiking_steps_per_s / ann_steps_per_s
    target = MIN_RATIO_TO_ANN.get(algo)
    return Verdicts(ratio_to_limit, ratio_to_limit >= MIN_RATIO_TO_LIMIT, ratio_to_ann, target,
                    None if target is None else ratio_to_ann >= target)


# --- building and timing -------------------------------------------------------------------------


def pair_config(name: str, overrides: tuple[str, ...], seed: int, torch_threads: int) -> ExperimentConfig:
    """A twin config with the bench's seed and torch threads (backend not yet resolved)."""
    return load_config(PRESETS / name, [f"training.seed={seed}", f"training.torch_threads={torch_threads}",
                                        *overrides])


def check_twins(pair: SpikingPair, ann: ExperimentConfig, spiking: ExperimentConfig) -> None:
    """The two configs of ``pair`` run ``pair.algo`` and differ only in ``agent.policy`` / ``agent.snn``."""
    for name, config in ((pair.ann, ann), (pair.spiking, spiking)):
        if config.agent.algo != pair.algo:
            raise ConfigError(f"{name}: agent.algo is {config.agent.algo!r}, the spiking bench pairs {pair.algo!r}")
    if spiking.agent.policy != "spiking" or ann.agent.policy == "spiking":
        raise ConfigError(f"{pair.spiking} must set agent.policy: spiking and {pair.ann} must not")
    if ann.model_dump(exclude=TWIN_DIFFERENCES) != spiking.model_dump(exclude=TWIN_DIFFERENCES):
        raise ConfigError(f"{pair.spiking} and {pair.ann} differ beyond agent.policy and agent.snn")


def fast_env(config: ExperimentConfig) -> tuple[ExperimentConfig, VecEnv, str, str | None]:
    """The config's scenario on the fastest env that keeps it: the backend ``auto`` picks if that is
    EnvPool, else EnvPool's unverified port if ``choose_backend`` allows it, else a ``ZeroCostVecEnv``
    with the scenario's spaces.

    :return: the resolved config, the env, its label and a note saying what was given up (or None).
    """
    from experiments.runs.build import make_env, resolve_backend

    resolved, choice = resolve_backend(config, "auto")  # the config's own backend is set aside: the fast one
    if choice.backend == "envpool":
        return resolved, make_env(resolved), "envpool", None
    try:
        with warnings.catch_warnings():  # the unverified-port warning: said in the note instead
            warnings.filterwarnings("ignore", message="the EnvPool port of .* is not verified")
            resolved, choice = resolve_backend(config, "envpool")
            env = make_env(resolved)
        note = (f"{config.env.id} on EnvPool's native port, {choice.reason}: a throughput stand-in, its statistics "
                "may differ from highway-env's, which `auto` runs, far slower")
        return resolved, env, "envpool (unverified port)", note
    except ValueError as error:  # no envpool here, or its port cannot honour the config
        resolved, _ = resolve_backend(config, "highway-env")
        probe = make_env(resolved, n_envs=1)
        observation_space, action_space = probe.observation_space, probe.action_space
        probe.close()
        env = ZeroCostVecEnv(observation_space, action_space, resolved.env.n_envs, seed=resolved.training.seed)
        note = (f"{config.env.id}: a zero-cost VecEnv with its spaces (EnvPool: {error}); the env's own "
                "cost is left out, energy figures read fixed observations")
        return resolved, env, f"zero-cost ({config.env.id} spaces)", note


def build_model(config: ExperimentConfig) -> tuple[BaseAlgorithm, str, str | None]:
    """The config's model on ``fast_env``, through the one build path; with the env's label and note."""
    from experiments.runs.build import build_run

    resolved, env, label, note = fast_env(config)
    return build_run(resolved, env=env, with_eval_env=False).model, label, note


def warmup_steps(model: BaseAlgorithm) -> int:
    """Untimed steps first: one rollout and update on-policy; past ``learning_starts`` off-policy."""
    if isinstance(model, OnPolicyAlgorithm):
        return model.n_steps * model.n_envs
    return model.learning_starts + 20 * model.n_envs  # type: ignore[attr-defined]


class NetworkTimer:
    """perf_counter accumulators around a model's network work, installed on the instance: its
    decisions (``policy._predict``; PPO's rollouts call ``policy.forward``), its gradient updates
    (``model.train``) and the replay sampling inside them (no network work: taken off the updates)."""

    def __init__(self, model: BaseAlgorithm) -> None:
        self.decide_s = self.train_s = self.sample_s = 0.0
        policy = model.policy
        decide = "forward" if isinstance(model, OnPolicyAlgorithm) else "_predict"
        setattr(policy, decide, self._timed(getattr(policy, decide), "decide_s"))
        model.train = self._timed(model.train, "train_s")  # type: ignore[method-assign]
        buffer = getattr(model, "replay_buffer", None)
        if buffer is not None:
            buffer.sample = self._timed(buffer.sample, "sample_s")  # type: ignore[method-assign]

    def _timed(self, call: Callable[..., Any], total: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                setattr(self, total, getattr(self, total) + time.perf_counter() - start)

        return timed

    def reset(self) -> None:
        self.decide_s = self.train_s = self.sample_s = 0.0


def timed_learn(model: BaseAlgorithm, timer: NetworkTimer, steps: int) -> RepeatTiming:
    """One ``model.learn(steps)``, continuing the model's run, with its network time."""
    gc.collect()
    timer.reset()
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    return RepeatTiming(model.num_timesteps - before, elapsed, timer.decide_s, timer.train_s - timer.sample_s,
                        timer.sample_s)


def decision_energy(model: BaseAlgorithm, decisions: int) -> dict[str, float]:
    """``SpikeCounts.stats()`` of ``decisions`` greedy decisions (at least) of a spiking model on its env."""
    env = model.get_env()
    assert env is not None
    model.policy.take_spike_counts()  # type: ignore[operator]  # drop what the training rollouts counted
    observations = env.reset()
    for _ in range(math.ceil(decisions / env.num_envs)):
        actions, _ = model.predict(observations, deterministic=True)  # type: ignore[arg-type]
        observations, *_ = env.step(actions)
    return model.policy.take_spike_counts().stats()  # type: ignore[operator]


# --- peak memory in fresh processes ---------------------------------------------------------------


@dataclass(frozen=True)
class MemoryJob:
    """What a fresh process runs to measure one row's peak memory: the config, warm-up, one repeat."""

    overrides: tuple[str, ...]
    steps: int
    seed: int
    torch_threads: int


def own_peak_rss_mib() -> float:
    """Peak resident memory of this process's own address space, MiB.

    On Linux ``ru_maxrss`` survives ``execve``: a spawned child reports at least its parent's RSS at the
    fork (a bench parent holding six models outweighs any child). ``VmHWM`` is the high-water mark of
    the address space the child runs in; elsewhere ``ru_maxrss`` is the best there is.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    return peak_rss_mib()


def memory_run(config_name: str, job: MemoryJob) -> dict[str, Any]:
    """In this process: build the config's model on ``fast_env``, warm up, train one repeat; peak RSS."""
    config = pair_config(config_name, job.overrides, job.seed, job.torch_threads)
    model, label, _ = build_model(config)
    model.learn(warmup_steps(model))
    model.learn(job.steps, reset_num_timesteps=False)
    model.get_env().close()  # type: ignore[union-attr]
    return {"env": label, "steps": model.num_timesteps, "peak_rss_mib": own_peak_rss_mib()}


def _memory_child(config_name: str, env_label: str, job: MemoryJob, queue: Any) -> None:
    try:
        queue.put(("ok", memory_run(config_name, job)))
    except BaseException as error:  # reported to the parent, which raises it with the row's name
        queue.put(("error", f"{type(error).__name__}: {error}"))


# --- the section ---------------------------------------------------------------------------------


@dataclass
class SpikingRow:
    """One pair: throughputs, the MAC-bound limit and verdicts, the spiking agent's energy, peak memory."""

    algo: str
    ann_config: str
    spiking_config: str
    env: str
    env_note: str | None
    warmup_steps: int
    steps_per_repeat: int
    ann_repeats: list[float]
    spiking_repeats: list[float]
    ann_steps_per_s: float
    spiking_steps_per_s: float
    ratio_to_ann: float
    min_ratio_to_ann: float | None
    met_ann: bool | None
    networks: dict[str, dict[str, float]]  # name -> rows per env step, ANN and spiking MACs per row
    mac_ratio_decide: float
    mac_ratio_learn: float
    mac_ratio: float  # R: all network work per env step, spiking over ANN
    ann_decide_fraction: float
    ann_learn_fraction: float
    spiking_decide_fraction: float
    spiking_learn_fraction: float
    measured_net_time_ratio: float  # spiking network seconds per step over the ANN's, to set beside R
    limit_steps_per_s: float
    limit_steps_per_s_one_ratio: float  # t_rest + (t_decide + t_learn) * R: one ratio for all network work
    ratio_to_limit: float
    min_ratio_to_limit: float
    met_limit: bool
    energy: dict[str, float]
    peak_rss_mib_ann: float | None = None
    peak_rss_mib_spiking: float | None = None
    ann_timings: list[dict[str, float]] = field(default_factory=list)
    spiking_timings: list[dict[str, float]] = field(default_factory=list)


def bench_pair(pair: SpikingPair, settings: SpikingSettings, rng: np.random.Generator,
               console: Console) -> tuple[SpikingRow, list[list[str]], dict[str, Any]]:
    """Build, warm up and time one pair in shuffled interleaved repeats; then its spiking agent's energy.

    Returns the row (peak memory not yet filled), the order each repeat ran, and the two configs.
    """
    configs = {kind: pair_config(name, pair.overrides, settings.seed, settings.torch_threads)
               for kind, name in (("ann", pair.ann), ("spiking", pair.spiking))}
    check_twins(pair, configs["ann"], configs["spiking"])
    steps = settings.steps(pair.algo)
    models: dict[str, BaseAlgorithm] = {}
    timers: dict[str, NetworkTimer] = {}
    envs: dict[str, tuple[str, str | None]] = {}  # kind -> the env's label and note
    timings: dict[str, list[RepeatTiming]] = {"ann": [], "spiking": []}
    orders: list[list[str]] = []
    with console.status(f"{pair.algo}: building and warming up") as status:
        try:
            for kind, config in configs.items():
                models[kind], label, note = build_model(config)
                envs[kind] = (label, note)
                timers[kind] = NetworkTimer(models[kind])
                status.update(f"{pair.algo}: warm-up, {kind}")
                models[kind].learn(warmup_steps(models[kind]), reset_num_timesteps=False)
            kinds = list(models)
            for repeat in range(settings.repeats):
                order = [kinds[int(i)] for i in rng.permutation(len(kinds))]
                orders.append(order)
                for kind in order:
                    status.update(f"{pair.algo}: repeat {repeat + 1}/{settings.repeats}, {kind}")
                    timings[kind].append(timed_learn(models[kind], timers[kind], steps))
            status.update(f"{pair.algo}: energy per decision of the spiking agent")
            energy = decision_energy(models["spiking"], settings.energy_decisions)
            loads = {kind: network_loads(model) for kind, model in models.items()}
            warmup = warmup_steps(models["ann"])
        finally:
            for model in models.values():
                model.get_env().close()  # type: ignore[union-attr]

    ratios = mac_ratios(loads["spiking"], loads["ann"])
    ann_rate = statistics.median(t.steps_per_s for t in timings["ann"])
    spiking_rate = statistics.median(t.steps_per_s for t in timings["spiking"])
    ann_decide, ann_learn = network_time_fractions(timings["ann"])
    spiking_decide, spiking_learn = network_time_fractions(timings["spiking"])
    limit = mac_bound_limit(ann_rate, ann_decide, ann_learn, ratios["decide"], ratios["learn"])
    one_ratio_limit = mac_bound_limit(ann_rate, ann_decide, ann_learn, ratios["all"], ratios["all"])
    verdicts = judge(pair.algo, spiking_rate, ann_rate, limit)

    def net_s_per_step(runs: list[RepeatTiming]) -> float:
        return sum(t.decide_s + t.learn_s for t in runs) / sum(t.steps for t in runs)

    label, note = envs["spiking"]
    row = SpikingRow(
        algo=pair.algo, ann_config=pair.ann, spiking_config=pair.spiking, env=label, env_note=note,
        warmup_steps=warmup, steps_per_repeat=timings["ann"][0].steps,
        ann_repeats=[t.steps_per_s for t in timings["ann"]],
        spiking_repeats=[t.steps_per_s for t in timings["spiking"]],
        ann_steps_per_s=ann_rate, spiking_steps_per_s=spiking_rate, ratio_to_ann=verdicts.ratio_to_ann,
        min_ratio_to_ann=verdicts.min_ratio_to_ann, met_ann=verdicts.met_ann,
        networks={ann.name: {"decide_rows": ann.decide_rows, "learn_rows": ann.learn_rows, "ann_macs": ann.macs,
                             "spiking_macs": spiking.macs}
                  for ann, spiking in zip(loads["ann"], loads["spiking"], strict=True)},
        mac_ratio_decide=ratios["decide"], mac_ratio_learn=ratios["learn"], mac_ratio=ratios["all"],
        ann_decide_fraction=ann_decide, ann_learn_fraction=ann_learn,
        spiking_decide_fraction=spiking_decide, spiking_learn_fraction=spiking_learn,
        measured_net_time_ratio=net_s_per_step(timings["spiking"]) / net_s_per_step(timings["ann"]),
        limit_steps_per_s=limit, limit_steps_per_s_one_ratio=one_ratio_limit,
        ratio_to_limit=verdicts.ratio_to_limit, min_ratio_to_limit=MIN_RATIO_TO_LIMIT, met_limit=verdicts.met_limit,
        energy=energy, ann_timings=[asdict(t) for t in timings["ann"]],
        spiking_timings=[asdict(t) for t in timings["spiking"]],
    )
    dumped = {kind: config.model_dump(mode="json", include={"env", "agent"}) for kind, config in configs.items()}
    return row, orders, dumped


def peak_memory(pair: SpikingPair, settings: SpikingSettings) -> tuple[float, float]:
    """Peak RSS (MiB) of the ANN twin and the spiking agent, each in its own fresh process."""
    job = MemoryJob(pair.overrides, settings.steps(pair.algo), settings.seed, settings.torch_threads)
    peaks = [time_in_fresh_process(name, "its fast env (memory)", job, target=_memory_child)["peak_rss_mib"]
             for name in (pair.ann, pair.spiking)]
    return peaks[0], peaks[1]


# --- the networks alone: why a hand-written LIF --------------------------------------------------


def gradient_steps_per_s(network: nn.Module, inputs: int, batch: int, seconds: float) -> float:
    """Adam steps/s of ``network`` on a squared loss over random ``(batch, inputs)`` rows, one thread."""
    import torch

    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    observations = torch.rand(batch, inputs) * 2 - 1

    def step() -> None:
        loss = network(observations).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


class LeakyStack(nn.Module):
    """The same spiking network built the usual snnTorch way: ``Leaky`` neurons stepped one time step at
    a time, every layer's product computed at every step, the readout membrane summed over T."""

    def __init__(self, inputs: int, hidden: list[int], outputs: int, timesteps: int, beta: float,
                 threshold: float) -> None:
        import snntorch
        from snntorch import surrogate

        super().__init__()
        sizes = [inputs, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.neurons = nn.ModuleList(snntorch.Leaky(beta=beta, threshold=threshold,
                                                    spike_grad=surrogate.fast_sigmoid()) for _ in hidden)
        self.readout = nn.Linear(hidden[-1], outputs)
        self.timesteps = timesteps

    def forward(self, features: Any) -> Any:
        membranes = [neuron.init_leaky() for neuron in self.neurons]
        total = 0
        for _ in range(self.timesteps):
            spikes = features
            for index, (layer, neuron) in enumerate(zip(self.layers, self.neurons, strict=True)):
                spikes, membranes[index] = neuron(layer(spikes), membranes[index])
            total = total + self.readout(spikes)
        return total / self.timesteps


def network_speeds(seconds: float, inputs: int = 25, hidden: tuple[int, ...] = (256, 256), outputs: int = 5,
                   timesteps: int = 5, batch: int = 128) -> dict[str, Any]:
    """Gradient steps/s of an ANN, this platform's ``SpikingMLP`` and an snnTorch ``Leaky`` stack of the
    same shape (Kinematics input, direct encoding), measured in turn, each twice; ratios to the ANN."""
    layers: list[nn.Module] = []
    for size_in, size_out in zip([inputs, *hidden[:-1]], hidden, strict=True):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    spiking = SpikingMLP(inputs, list(hidden), outputs, {"timesteps": timesteps})
    networks: dict[str, nn.Module] = {
        "ann": nn.Sequential(*layers, nn.Linear(hidden[-1], outputs)),
        "spiking_mlp": spiking,
        "snntorch_leaky": LeakyStack(inputs, list(hidden), outputs, timesteps, beta=0.9, threshold=0.5),
    }
    rates: dict[str, list[float]] = {name: [] for name in networks}
    for _ in range(2):
        for name, network in networks.items():
            rates[name].append(gradient_steps_per_s(network, inputs, batch, seconds))
    best = {name: max(values) for name, values in rates.items()}
    ann_macs = sum(a * b for a, b in zip([inputs, *hidden], [*hidden, outputs], strict=True))
    return {
        "shape": {"inputs": inputs, "hidden": list(hidden), "outputs": outputs, "timesteps": timesteps,
                  "batch": batch},
        "gradient_steps_per_s": best,
        "ratio_to_ann": {name: value / best["ann"] for name, value in best.items()},
        "mac_bound_ratio": ann_macs / spiking.dense_macs(),
        "leaky_dense_mac_ratio": ann_macs / (timesteps * sum(a * b for a, b in zip(
            [inputs, *hidden], [*hidden, outputs], strict=True))),
    }


def run_spiking_section(quick: bool, console: Console, repeats: int | None = None,
                        settings: SpikingSettings | None = None,
                        pairs: tuple[SpikingPair, ...] = PAIRS) -> dict[str, Any]:
    """Time every pair, measure energy and memory, print the report; return the ``spiking`` results."""
    import torch

    settings = settings or (SPIKING_QUICK if quick else SPIKING_FULL)
    if repeats is not None:
        settings = replace(settings, repeats=repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    rng = np.random.default_rng(settings.seed)
    load_start = os.getloadavg()[0]
    wall_start = time.perf_counter()
    rows: list[SpikingRow] = []
    orders: dict[str, list[list[str]]] = {}
    configs: dict[str, dict[str, Any]] = {}
    try:
        with console.status("spiking bench: the networks alone (ANN, SpikingMLP, snnTorch Leaky)"):
            networks = network_speeds(1.0 if quick else 3.0)
        for pair in pairs:
            row, orders[pair.algo], configs[pair.algo] = bench_pair(pair, settings, rng, console)
            if not settings.fresh_process_memory:  # cumulative: this process has run every model so far
                row.peak_rss_mib_ann = row.peak_rss_mib_spiking = peak_rss_mib()
            rows.append(row)
        if settings.fresh_process_memory:
            with console.status("spiking bench: peak memory, one fresh process per row"):
                for pair, row in zip(pairs, rows, strict=True):
                    row.peak_rss_mib_ann, row.peak_rss_mib_spiking = peak_memory(pair, settings)
    finally:
        torch.set_num_threads(threads)
    wall_s = time.perf_counter() - wall_start
    print_network_speeds(console, networks)
    print_spiking_report(console, rows, settings, quick)
    console.print(f"Spiking section: {wall_s:.1f} s wall")
    judged = [row.met_limit for row in rows] + [row.met_ann for row in rows if row.met_ann is not None]
    return {
        "device": "cpu",
        "settings": asdict(settings),
        "pairs": [asdict(pair) for pair in pairs],
        "configs": configs,
        "target": {
            "metric": "spiking steps/s / MAC-bound limit (medians); PPO also spiking steps/s / ANN twin steps/s",
            "limit": "ANN twin's time per step with decision time x R_decide and update time x R_learn "
                     "(MAC ratios, spiking/ANN, of the networks each runs per env step)",
            "min_ratio_to_limit": MIN_RATIO_TO_LIMIT,
            "min_ratio_to_ann": MIN_RATIO_TO_ANN,
            "met": all(judged) if judged else None,
        },
        "networks": networks,
        "rows": [asdict(row) for row in rows],
        "orders": orders,
        "memory": "peak RSS of each row's own fresh process (imports included)" if settings.fresh_process_memory
                  else "peak RSS of the bench process after the row: cumulative, every model run so far",
        "energy_caveat": ENERGY_CAVEAT,
        "load_avg_1min_start_end": [load_start, os.getloadavg()[0]],
        "wall_s": wall_s,
    }


# --- the report ----------------------------------------------------------------------------------


def print_network_speeds(console: Console, networks: dict[str, Any]) -> None:
    shape = networks["shape"]
    table = Table(title=f"networks alone: Adam steps/s, batch {shape['batch']}, one thread, "
                        f"{shape['inputs']}-{'-'.join(map(str, shape['hidden']))}-{shape['outputs']}, "
                        f"T = {shape['timesteps']}")
    for column in ("network", "steps/s", "of the ANN", "MAC-bound"):
        table.add_column(column, justify="left" if column == "network" else "right")
    bounds = {"ann": 1.0, "spiking_mlp": networks["mac_bound_ratio"],
              "snntorch_leaky": networks["leaky_dense_mac_ratio"]}
    for name, rate in networks["gradient_steps_per_s"].items():
        table.add_row(name, fmt_rate(rate), f"{networks['ratio_to_ann'][name]:.2f}", f"{bounds[name]:.2f}")
    console.print(table)
    console.print("SpikingMLP computes a direct encoder's first layer once and reads out once; the Leaky stack "
                  "steps every layer at every step (snnTorch's usual loop).")


def _verdict(met: bool | None, target: float | None) -> str:
    if met is None or target is None:
        return "-"
    return f"[green]PASS >= {target:.0%}[/green]" if met else f"[red]FAIL >= {target:.0%}[/red]"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_spiking_report(console: Console, rows: list[SpikingRow], settings: SpikingSettings, quick: bool) -> None:
    """Throughput and memory, the MAC-bound limit, and energy per decision: one table each, then verdicts."""
    memory = "own fresh process" if settings.fresh_process_memory else "this process so far (cumulative)"
    table = Table(title=f"Training steps/s, spiking agent vs its ANN twin, median of {settings.repeats} repeats",
                  caption=f"torch threads {settings.torch_threads}; peak RSS: {memory}")
    for column in ("algo", "env", "steps/repeat", "ANN steps/s", "min – max", "spiking steps/s", "min – max",
                   "spiking/ANN", "verdict", "peak RSS MiB ANN / spiking"):
        table.add_column(column, justify="left" if column in ("algo", "env", "verdict") else "right")
    for row in rows:
        table.add_row(row.algo, row.env, str(row.steps_per_repeat), fmt_rate(row.ann_steps_per_s),
                      spread(row.ann_repeats), fmt_rate(row.spiking_steps_per_s), spread(row.spiking_repeats),
                      f"{row.ratio_to_ann:.0%}", _verdict(row.met_ann, row.min_ratio_to_ann),
                      f"{_mib(row.peak_rss_mib_ann)} / {_mib(row.peak_rss_mib_spiking)}")
    console.print(table)

    table = Table(title="MAC-bound limit: the ANN twin's time per step with its network work scaled by the MAC ratio",
                  caption="limit = 1 / (t_rest + t_decide R_decide + t_learn R_learn), the ANN twin's seconds per "
                          "step pooled over repeats; R: spiking/ANN MACs per env step, all networks (critics, "
                          "targets); net time x: the spiking agent's measured network seconds per step over the ANN's")
    for column in ("algo", "R decide", "R learn", "R", "ANN net time decide + learn", "limit steps/s",
                   "spiking/limit", "verdict", "net time x"):
        table.add_column(column, justify="left" if column in ("algo", "verdict") else "right")
    for row in rows:
        table.add_row(row.algo, f"{row.mac_ratio_decide:.2f}", f"{row.mac_ratio_learn:.2f}", f"{row.mac_ratio:.2f}",
                      f"{row.ann_decide_fraction:.0%} + {row.ann_learn_fraction:.0%}", fmt_rate(row.limit_steps_per_s),
                      f"{row.ratio_to_limit:.0%}", _verdict(row.met_limit, row.min_ratio_to_limit),
                      f"{row.measured_net_time_ratio:.2f}")
    console.print(table)

    table = Table(title="Energy per decision of the spiking agents (greedy decisions on their env)")
    for column in ("algo", "decisions", "SOPs/decision", "dense MACs/decision", "E_SNN pJ", "E_ANN pJ",
                   "E_SNN/E_ANN", "firing rate per layer"):
        table.add_column(column, justify="left" if column in ("algo", "firing rate per layer") else "right")
    for row in rows:
        energy = row.energy
        rates = ", ".join(f"{key.removeprefix('firing_rate/')} {value:.3f}" for key, value in energy.items()
                          if key.startswith("firing_rate/"))
        table.add_row(row.algo, f"{energy['decisions']:,.0f}", f"{energy['sops_per_decision']:,.0f}",
                      f"{energy['macs_per_decision']:,.0f}", f"{energy['energy_pj_per_decision']:,.0f}",
                      f"{energy['ann_energy_pj_per_decision']:,.0f}", f"{energy['energy_ratio']:.2f}", rates)
    console.print(table)
    console.print(f"Energy: {ENERGY_CAVEAT}; E_ANN: the same layer sizes as an ANN; the decision network only.",
                  highlight=False, soft_wrap=True)

    for row in rows:
        if row.env_note is not None:
            console.print(f"{row.algo}: {row.env_note}", highlight=False, soft_wrap=True)
    missed = [f"{row.algo} {row.ratio_to_limit:.0%}" for row in rows if not row.met_limit]
    verdict = "[green]MET[/green] for all" if not missed else f"[red]NOT MET[/red] for {', '.join(missed)} of"
    console.print(f"Target (spiking >= {MIN_RATIO_TO_LIMIT:.0%} of its MAC-bound limit): {verdict} {len(rows)} "
                  "pairs measured", highlight=False, soft_wrap=True)
    for row in rows:
        if row.met_ann is not None:
            verdict = "[green]MET[/green]" if row.met_ann else "[red]NOT MET[/red]"
            console.print(f"Target ({row.algo} spiking >= {row.min_ratio_to_ann:.0%} of its ANN twin): {verdict}, "
                          f"{row.ratio_to_ann:.0%}", highlight=False)
    if quick:
        console.print("--quick: short runs and 2 repeats, a smoke test; take the verdicts from a full run",
                      soft_wrap=True)
