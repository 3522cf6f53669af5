"""Spiking agents against their ANN twins: training steps/s, a MAC-proportional model of it, decision
latency, energy per decision and peak memory.

The pairs are the shipped twin configs under ``experiments/presets/spiking/`` (DQN, PPO and SAC; each
spiking file differs from its ANN twin only in ``agent.policy`` and ``agent.snn``) and the grayscale-image
DQN pair under ``experiments/presets/vision/`` (``dqn_cnn``: a spiking CNN against its NatureCNN twin, the
files differing only in ``agent.policy_kwargs.network``), built through the
platform's one build path with the bench's seed and one torch thread. They run on the fastest env
that keeps the scenario: the backend ``auto`` picks when that is EnvPool's verified port; otherwise
EnvPool's unverified port when ``choose_backend`` allows it (SAC's racetrack-v0: its highway-env
reference runs tens of steps/s), with a note; otherwise a ``ZeroCostVecEnv`` with the scenario's spaces.

For each pair both models are built and warmed up (off-policy past ``learning_starts``, PPO one rollout
and update); each repeat then times ``model.learn(N)`` of both in a shuffled order, so load drift hits
both alike. Meanwhile perf_counter accumulators time the networks' work: the decisions
(``policy._predict``; PPO's rollout ``policy.forward``), the optimizer steps (``optimizer.step`` of
every optimizer) and the forward/backward passes of the updates (``model.train``, less the optimizer
steps and the replay sampling inside it, which are no MAC work that grows with T).

On a CPU a spiking network pays its dense matrix products T times. The MAC model predicts the spiking
agent's speed from the ANN twin's time per step: the time outside the networks and the optimizer's
stay (Adam touches each parameter once, whatever T), decision time scales by the MAC ratio of the
networks that decide and forward/backward time by that of the networks the updates run (critics and
targets included, each weighted by the rows it sees per env step, a backward pass counted as two
forwards). It is a model, not a bound: fixed per-call costs do not scale with MACs, so a spiking agent
can beat it. Targets: spiking >= 80% of the model, and, for PPO, >= 33% of the ANN twin. Decision
latency (one observation, batch 1, what a car waits for) is timed per agent in alternation. After
that each agent decides greedily on its env for a few hundred decisions: the spiking agent's synaptic
operations, neuron updates and firing rates, and the ANN twin's MACs with its zero activations
skipped, for energy estimates against both the dense and the zero-skipping ANN.
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
from experiments.bench.section import BenchOptions
from experiments.bench.training import ZeroCostVecEnv, time_in_fresh_process
from experiments.config import ConfigError, ExperimentConfig, load_config
from experiments.presets import PRESETS
from neuro.snn.config import MEMORY_CAVEAT
from neuro.snn.network import ENERGY_CAVEAT, SpikingMLP
from neuro.snn.operations import NetworkLoad, forward_macs, mac_ratios
from neuro.snn.sparsity import ZeroSkippingMacs

MIN_RATIO_TO_MODEL = 0.80  # every spiking agent, of its MAC model's prediction
MIN_RATIO_TO_ANN = {"ppo": 0.33}  # rollouts are forward passes and the env takes part of the time
BACKWARD_FORWARDS = 2.0  # a backward pass costs about two forward passes (input and weight gradients)
# The fields a spiking config may change from its ANN twin.
TWIN_DIFFERENCES: dict[str, Any] = {"name": True, "agent": {"policy": True, "snn": True}}
# A network-part twin (``policy_kwargs.network``) differs there instead; the spiking side names one of these.
SPIKING_PARTS = ("spiking", "spiking_cnn")
NETWORK_TWIN_DIFFERENCES: dict[str, Any] = {"name": True, "agent": {"policy_kwargs": {"network": True}}}


@dataclass(frozen=True)
class SpikingPair:
    """A spiking config and its ANN twin (files under ``experiments/presets``).

    :param overrides: ``--set``-style overrides applied to both (the tests shrink the runs with them).
    :param name: told apart from another pair of the same algorithm (the row's key: ``algo_name``).
    """

    algo: str
    ann: str
    spiking: str
    overrides: tuple[str, ...] = ()
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.algo}_{self.name}" if self.name else self.algo


PAIRS: tuple[SpikingPair, ...] = (
    SpikingPair("dqn", "spiking/dqn_ann.yaml", "spiking/dqn_spiking.yaml"),
    SpikingPair("ppo", "spiking/ppo_ann.yaml", "spiking/ppo_spiking.yaml"),
    SpikingPair("sac", "spiking/sac_ann.yaml", "spiking/sac_spiking.yaml"),
    SpikingPair("dqn", "vision/dqn_grayscale_ann_twin.yaml", "vision/dqn_grayscale_spiking.yaml", name="cnn"),
)


@dataclass(frozen=True)
class SpikingSettings:
    """How long each pair is timed.

    :param repeats: timed repeats; each runs the ANN twin and the spiking agent once, shuffled.
    :param dqn_steps: env steps per timed DQN ``learn`` (one gradient step each).
    :param ppo_steps: env steps per timed PPO ``learn`` (2048 per rollout and update).
    :param sac_steps: env steps per timed SAC ``learn`` (one gradient step each).
    :param dqn_cnn_steps: env steps per timed ``learn`` of the image DQN pair (one gradient step each on
        batches of 4x128x64 images: a few steps/s on a CPU).
    :param energy_decisions: greedy decisions of each agent for the energy figures.
    :param latency_calls: batch-1 decisions timed per agent for the decision latency.
    :param fresh_process_memory: peak RSS of each row from its own fresh process (else this process's, cumulative).
    :param torch_threads: ``torch.set_num_threads``, as the configs' ``training.torch_threads`` default.
    :param seed: seed of every model and env, and of the repeat orders.
    """

    repeats: int = 3
    dqn_steps: int = 2000
    ppo_steps: int = 8192
    sac_steps: int = 400
    dqn_cnn_steps: int = 200
    energy_decisions: int = 500
    latency_calls: int = 2000
    fresh_process_memory: bool = True
    torch_threads: int = 1
    seed: int = 0

    def steps(self, key: str) -> int:
        """Timed env steps per repeat for a pair's ``key`` (its algorithm, or ``dqn_cnn``)."""
        return {"dqn": self.dqn_steps, "ppo": self.ppo_steps, "sac": self.sac_steps,
                "dqn_cnn": self.dqn_cnn_steps}[key]


SPIKING_FULL = SpikingSettings()
SPIKING_QUICK = SpikingSettings(repeats=2, dqn_steps=500, ppo_steps=2048, sac_steps=100, dqn_cnn_steps=40,
                                energy_decisions=200, latency_calls=400)


# --- MACs per env step of an agent (counting a network: neuro.snn.operations) ---------------------------


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
        return [NetworkLoad("q_net", 1.0, backward * rows, forward_macs(model.policy.q_net)),
                NetworkLoad("q_net_target", 0.0, rows, forward_macs(model.policy.q_net_target))]
    if isinstance(model.policy, SACPolicy):
        return [NetworkLoad("actor", 1.0, (backward + 1.0) * rows, forward_macs(model.policy.actor)),
                NetworkLoad("critic", 0.0, 2.0 * backward * rows, forward_macs(model.policy.critic)),
                NetworkLoad("critic_target", 0.0, rows, forward_macs(model.policy.critic_target))]
    raise ValueError(f"agent.algo: the spiking bench counts MACs of DQN, PPO/A2C and SAC, not {type(model).__name__}")


# --- the MAC model and the verdicts -------------------------------------------------------------


@dataclass
class RepeatTiming:
    """One timed ``learn``: env steps, wall seconds, and the seconds spent in the networks' work."""

    steps: int
    elapsed_s: float
    decide_s: float
    learn_s: float  # forward/backward of the gradient updates: replay sampling and optimizer steps excluded
    sample_s: float  # replay sampling inside the updates
    optimizer_s: float = 0.0  # optimizer steps inside the updates

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.elapsed_s


def network_time_fractions(timings: list[RepeatTiming]) -> tuple[float, float]:
    """(decision, update) shares of the wall time, pooled over the repeats."""
    elapsed = sum(timing.elapsed_s for timing in timings)
    return sum(t.decide_s for t in timings) / elapsed, sum(t.learn_s for t in timings) / elapsed


def optimizer_fraction(timings: list[RepeatTiming]) -> float:
    """The optimizer steps' share of the wall time, pooled over the repeats."""
    return sum(t.optimizer_s for t in timings) / sum(t.elapsed_s for t in timings)


def mac_model_steps_per_s(ann_steps_per_s: float, decide_fraction: float, learn_fraction: float,
                          decide_ratio: float, learn_ratio: float) -> float:
    """Steps/s of the ANN twin had its MAC work cost the spiking MACs: per step the time outside the
    networks and the optimizer's stays (``learn_fraction`` is forward/backward only), decision and
    forward/backward time scale by their MAC ratios."""
    rest = 1.0 - decide_fraction - learn_fraction
    return ann_steps_per_s / (rest + decide_fraction * decide_ratio + learn_fraction * learn_ratio)


@dataclass(frozen=True)
class Verdicts:
    """A spiking agent's throughput against its MAC model (target ``MIN_RATIO_TO_MODEL``) and its twin
    (target ``MIN_RATIO_TO_ANN`` where the algorithm has one)."""

    ratio_to_model: float
    met_model: bool
    ratio_to_ann: float
    min_ratio_to_ann: float | None
    met_ann: bool | None


def judge(algo: str, spiking_steps_per_s: float, ann_steps_per_s: float, model_steps_per_s: float) -> Verdicts:
    ratio_to_model = spiking_steps_per_s / model_steps_per_s
    ratio_to_ann = spiking_steps_per_s / ann_steps_per_s
    target = MIN_RATIO_TO_ANN.get(algo)
    return Verdicts(ratio_to_model, ratio_to_model >= MIN_RATIO_TO_MODEL, ratio_to_ann, target,
                    None if target is None else ratio_to_ann >= target)


# --- building and timing -------------------------------------------------------------------------


def pair_config(name: str, overrides: tuple[str, ...], seed: int, torch_threads: int) -> ExperimentConfig:
    """A twin config with the bench's seed and torch threads (backend not yet resolved)."""
    return load_config(PRESETS / name, [f"training.seed={seed}", f"training.torch_threads={torch_threads}",
                                        *overrides])


def check_twins(pair: SpikingPair, ann: ExperimentConfig, spiking: ExperimentConfig) -> None:
    """The two configs of ``pair`` run ``pair.algo`` and differ only in ``agent.policy`` / ``agent.snn``,
    or only in ``agent.policy_kwargs.network``, a spiking part's type on the spiking side and not the other."""
    for name, config in ((pair.ann, ann), (pair.spiking, spiking)):
        if config.agent.algo != pair.algo:
            raise ConfigError(f"{name}: agent.algo is {config.agent.algo!r}, the spiking bench pairs {pair.algo!r}")
    if "network" in spiking.agent.policy_kwargs:
        networks = [(config.agent.policy_kwargs.get("network") or {}).get("type") for config in (spiking, ann)]
        if networks[0] not in SPIKING_PARTS or networks[1] in SPIKING_PARTS:
            raise ConfigError(f"{pair.spiking} must name a spiking network part ({', '.join(SPIKING_PARTS)}) in "
                              f"agent.policy_kwargs.network and {pair.ann} an ANN one; got {networks}")
        if ann.model_dump(exclude=NETWORK_TWIN_DIFFERENCES) != spiking.model_dump(exclude=NETWORK_TWIN_DIFFERENCES):
            raise ConfigError(f"{pair.spiking} and {pair.ann} differ beyond agent.policy_kwargs.network")
        return
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


def optimizers(model: BaseAlgorithm) -> list[Any]:
    """Every torch optimizer a model steps: the policy's, SAC's actor and critic's, its entropy coefficient's."""
    policy = model.policy
    found = [getattr(policy, "optimizer", None), getattr(getattr(policy, "actor", None), "optimizer", None),
             getattr(getattr(policy, "critic", None), "optimizer", None), getattr(model, "ent_coef_optimizer", None)]
    unique: dict[int, Any] = {id(optimizer): optimizer for optimizer in found if optimizer is not None}
    return list(unique.values())


class NetworkTimer:
    """perf_counter accumulators around a model's network work, installed on the instance: its
    decisions (``policy._predict``; PPO's rollouts call ``policy.forward``), its gradient updates
    (``model.train``), and inside them the replay sampling and the optimizer steps (no MAC work that
    grows with T: taken off the updates' forward/backward time and reported on their own)."""

    def __init__(self, model: BaseAlgorithm) -> None:
        self.decide_s = self.train_s = self.sample_s = self.optimizer_s = 0.0
        policy = model.policy
        decide = "forward" if isinstance(model, OnPolicyAlgorithm) else "_predict"
        setattr(policy, decide, self._timed(getattr(policy, decide), "decide_s"))
        model.train = self._timed(model.train, "train_s")  # type: ignore[attr-defined]
        buffer = getattr(model, "replay_buffer", None)
        if buffer is not None:
            buffer.sample = self._timed(buffer.sample, "sample_s")
        for optimizer in optimizers(model):
            optimizer.step = self._timed(optimizer.step, "optimizer_s")

    def _timed(self, call: Callable[..., Any], total: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                setattr(self, total, getattr(self, total) + time.perf_counter() - start)

        return timed

    def reset(self) -> None:
        self.decide_s = self.train_s = self.sample_s = self.optimizer_s = 0.0


def timed_learn(model: BaseAlgorithm, timer: NetworkTimer, steps: int) -> RepeatTiming:
    """One ``model.learn(steps)``, continuing the model's run, with its network time."""
    gc.collect()
    timer.reset()
    before = model.num_timesteps
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    return RepeatTiming(model.num_timesteps - before, elapsed, timer.decide_s,
                        timer.train_s - timer.sample_s - timer.optimizer_s, timer.sample_s, timer.optimizer_s)


def greedy_decisions(model: BaseAlgorithm, decisions: int) -> None:
    """``decisions`` greedy decisions (at least) of a model on its own env."""
    env = model.get_env()
    assert env is not None
    observations = env.reset()
    for _ in range(math.ceil(decisions / env.num_envs)):
        actions, _ = model.predict(observations, deterministic=True)  # type: ignore[arg-type]
        observations, *_ = env.step(actions)


def ann_decision_layers(model: BaseAlgorithm) -> list[nn.Linear | nn.Conv2d]:
    """The ``nn.Linear`` and ``nn.Conv2d`` layers an ANN twin's decision runs, the one reading the features
    first: DQN's Q-network; PPO's actor and action head; SAC's actor and its mean and log-std heads."""
    policy = model.policy
    if isinstance(policy, DQNPolicy):
        modules: list[nn.Module] = [policy.q_net.q_net]
    elif isinstance(model, OnPolicyAlgorithm):
        modules = [policy.mlp_extractor.policy_net, policy.action_net]  # type: ignore[union-attr,list-item]
    elif isinstance(policy, SACPolicy):
        modules = [policy.actor.latent_pi, policy.actor.mu, policy.actor.log_std]  # type: ignore[list-item]
    else:
        raise ValueError(f"agent.algo: the spiking bench measures DQN, PPO/A2C and SAC, not {type(model).__name__}")
    return [layer for module in modules for layer in module.modules() if isinstance(layer, nn.Linear | nn.Conv2d)]


def decision_energy(spiking: BaseAlgorithm, ann: BaseAlgorithm, decisions: int) -> dict[str, float]:
    """``SpikeCounts.stats()`` of ``decisions`` greedy decisions of the spiking agent on its env, against
    the dense ANN and the ANN twin's own MACs with zero activations skipped (its greedy decisions on its
    env, ``ZeroSkippingMacs``); with the twin's measured input densities per layer."""
    spiking.policy.take_spike_counts()  # type: ignore[operator]  # drop what the training rollouts counted
    greedy_decisions(spiking, decisions)
    counts = spiking.policy.take_spike_counts()  # type: ignore[operator]
    meter = ZeroSkippingMacs(ann_decision_layers(ann), dense_layers=1)
    with meter.counting():
        greedy_decisions(ann, decisions)
    macs = meter.counts()
    stats = counts.stats(sparse_ann_macs=macs.sparse_per_row)
    stats["ann_measured_dense_macs_per_decision"] = macs.dense_per_row  # equals ann_macs_per_decision (tested)
    stats.update({f"ann_input_density/layer_{index}": density for index, density in enumerate(macs.densities)})
    return stats


def decision_latencies(models: dict[str, BaseAlgorithm], calls: int, rng: np.random.Generator,
                       rounds: int = 10) -> dict[str, float]:
    """Median seconds of one greedy decision on one observation (batch 1, the policy's ``_predict`` under
    no_grad, as when driving) per model; the models take turns in shuffled rounds so drift hits all."""
    import torch

    observations = {}
    for kind, model in models.items():
        env = model.get_env()
        assert env is not None
        first = env.reset()
        one = {key: value[:1] for key, value in first.items()} if isinstance(first, dict) else first[:1]
        observations[kind] = model.policy.obs_to_tensor(one)[0]  # type: ignore[arg-type]  # never a tuple here
    per_round = max(calls // rounds, 1)
    samples: dict[str, list[float]] = {kind: [] for kind in models}
    kinds = list(models)
    with torch.no_grad():
        for kind in kinds:  # warm-up
            for _ in range(10):
                models[kind].policy._predict(observations[kind], deterministic=True)
        for _ in range(rounds):
            for kind in (kinds[int(i)] for i in rng.permutation(len(kinds))):
                predict, observation = models[kind].policy._predict, observations[kind]
                for _ in range(per_round):
                    start = time.perf_counter()
                    predict(observation, deterministic=True)
                    samples[kind].append(time.perf_counter() - start)
    return {kind: statistics.median(values) for kind, values in samples.items()}


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


def _memory_child(config_name: str, env_label: str, job: MemoryJob) -> dict[str, Any]:
    return memory_run(config_name, job)  # called as time_in_fresh_process calls its target


# --- the section ---------------------------------------------------------------------------------


@dataclass
class SpikingRow:
    """One pair: throughputs, the MAC model and verdicts, decision latency, energy, peak memory."""

    algo: str  # the pair's key: its algorithm, or dqn_cnn
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
    ann_learn_fraction: float  # forward/backward of the updates
    ann_optimizer_fraction: float
    spiking_decide_fraction: float
    spiking_learn_fraction: float
    spiking_optimizer_fraction: float
    measured_net_time_ratio: float  # spiking decision + forward/backward seconds per step over the ANN's, beside R
    optimizer_time_ratio: float  # spiking optimizer seconds per step over the ANN's (stays near 1 with T)
    model_steps_per_s: float
    model_steps_per_s_one_ratio: float  # t_rest + t_opt + (t_decide + t_fb) * R: one ratio for all MAC work
    ratio_to_model: float
    min_ratio_to_model: float
    met_model: bool
    latency_s_ann: float  # one greedy decision, batch 1, median
    latency_s_spiking: float
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
    steps = settings.steps(pair.key)
    models: dict[str, BaseAlgorithm] = {}
    timers: dict[str, NetworkTimer] = {}
    envs: dict[str, tuple[str, str | None]] = {}  # kind -> the env's label and note
    timings: dict[str, list[RepeatTiming]] = {"ann": [], "spiking": []}
    orders: list[list[str]] = []
    with console.status(f"{pair.key}: building and warming up") as status:
        try:
            for kind, config in configs.items():
                models[kind], label, note = build_model(config)
                envs[kind] = (label, note)
                timers[kind] = NetworkTimer(models[kind])
                status.update(f"{pair.key}: warm-up, {kind}")
                models[kind].learn(warmup_steps(models[kind]), reset_num_timesteps=False)
            kinds = list(models)
            for repeat in range(settings.repeats):
                order = [kinds[int(i)] for i in rng.permutation(len(kinds))]
                orders.append(order)
                for kind in order:
                    status.update(f"{pair.key}: repeat {repeat + 1}/{settings.repeats}, {kind}")
                    timings[kind].append(timed_learn(models[kind], timers[kind], steps))
            status.update(f"{pair.key}: decision latency, batch 1")
            latency = decision_latencies(models, settings.latency_calls, rng)
            status.update(f"{pair.key}: energy per decision, the spiking agent and its twin")
            energy = decision_energy(models["spiking"], models["ann"], settings.energy_decisions)
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
    mac_model = mac_model_steps_per_s(ann_rate, ann_decide, ann_learn, ratios["decide"], ratios["learn"])
    one_ratio_model = mac_model_steps_per_s(ann_rate, ann_decide, ann_learn, ratios["all"], ratios["all"])
    verdicts = judge(pair.algo, spiking_rate, ann_rate, mac_model)

    def optimizer_s_per_step(runs: list[RepeatTiming]) -> float:
        return sum(t.optimizer_s for t in runs) / sum(t.steps for t in runs)

    def net_s_per_step(runs: list[RepeatTiming]) -> float:
        return sum(t.decide_s + t.learn_s for t in runs) / sum(t.steps for t in runs)

    label, note = envs["spiking"]
    row = SpikingRow(
        algo=pair.key, ann_config=pair.ann, spiking_config=pair.spiking, env=label, env_note=note,
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
        ann_optimizer_fraction=optimizer_fraction(timings["ann"]),
        spiking_decide_fraction=spiking_decide, spiking_learn_fraction=spiking_learn,
        spiking_optimizer_fraction=optimizer_fraction(timings["spiking"]),
        measured_net_time_ratio=net_s_per_step(timings["spiking"]) / net_s_per_step(timings["ann"]),
        optimizer_time_ratio=optimizer_s_per_step(timings["spiking"]) / optimizer_s_per_step(timings["ann"]),
        model_steps_per_s=mac_model, model_steps_per_s_one_ratio=one_ratio_model,
        ratio_to_model=verdicts.ratio_to_model, min_ratio_to_model=MIN_RATIO_TO_MODEL, met_model=verdicts.met_model,
        latency_s_ann=latency["ann"], latency_s_spiking=latency["spiking"],
        energy=energy, ann_timings=[asdict(t) for t in timings["ann"]],
        spiking_timings=[asdict(t) for t in timings["spiking"]],
    )
    dumped = {kind: config.model_dump(mode="json", include={"env", "agent"}) for kind, config in configs.items()}
    return row, orders, dumped


def peak_memory(pair: SpikingPair, settings: SpikingSettings) -> tuple[float, float]:
    """Peak RSS (MiB) of the ANN twin and the spiking agent, each in its own fresh process."""
    job = MemoryJob(pair.overrides, settings.steps(pair.key), settings.seed, settings.torch_threads)
    peaks = [time_in_fresh_process(name, "its fast env (memory)", job,  # type: ignore[arg-type]  # _memory_child's
                                   target=_memory_child)["peak_rss_mib"]

             for name in (pair.ann, pair.spiking)]
    return peaks[0], peaks[1]


# --- the networks alone: why a hand-written LIF --------------------------------------------------


def gradient_step_times(network: nn.Module, inputs: int, batch: int, seconds: float) -> dict[str, float]:
    """Seconds per Adam step of ``network`` on a squared loss over random ``(batch, inputs)`` rows, one
    thread, split into forward + backward and the optimizer step (whose cost does not grow with T)."""
    import torch

    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    observations = torch.rand(batch, inputs) * 2 - 1
    totals = {"forward_backward_s": 0.0, "optimizer_s": 0.0}

    def step() -> None:
        start = time.perf_counter()
        loss = network(observations).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        middle = time.perf_counter()
        optimizer.step()
        totals["forward_backward_s"] += middle - start
        totals["optimizer_s"] += time.perf_counter() - middle

    for _ in range(5):
        step()
    totals.update(forward_backward_s=0.0, optimizer_s=0.0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return {name: value / count for name, value in totals.items()}


def forward_latency_s(network: nn.Module, inputs: int, seconds: float) -> float:
    """Median seconds of one forward pass on one row (batch 1) under no_grad: a decision's latency."""
    import torch

    observation = torch.rand(1, inputs) * 2 - 1
    samples: list[float] = []
    with torch.no_grad():
        for _ in range(10):
            network(observation)
        begin = time.perf_counter()
        while time.perf_counter() - begin < seconds:
            start = time.perf_counter()
            network(observation)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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
        membranes = [neuron.init_leaky() for neuron in self.neurons]  # type: ignore[operator]  # snnTorch Leaky
        total = 0
        for _ in range(self.timesteps):
            spikes = features
            for index, (layer, neuron) in enumerate(zip(self.layers, self.neurons, strict=True)):
                spikes, membranes[index] = neuron(layer(spikes), membranes[index])
            total = total + self.readout(spikes)
        return total / self.timesteps


def network_speeds(seconds: float, inputs: int = 25, hidden: tuple[int, ...] = (256, 256), outputs: int = 5,
                   timesteps: int = 5, batch: int = 128) -> dict[str, Any]:
    """The networks alone, one thread: an ANN, this platform's ``SpikingMLP`` and an snnTorch ``Leaky``
    stack of the same shape (Kinematics input, direct encoding), measured in turn, each twice, best kept:
    forward + backward and the Adam step of a batch apart, and the batch-1 forward latency; the MAC
    ratios that the forward/backward time should follow."""
    layers: list[nn.Module] = []
    for size_in, size_out in zip([inputs, *hidden[:-1]], hidden, strict=True):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    spiking = SpikingMLP(inputs, list(hidden), outputs, {"timesteps": timesteps})
    networks: dict[str, nn.Module] = {
        "ann": nn.Sequential(*layers, nn.Linear(hidden[-1], outputs)),
        "spiking_mlp": spiking,
        "snntorch_leaky": LeakyStack(inputs, list(hidden), outputs, timesteps, beta=0.9, threshold=0.5),
    }
    steps: dict[str, list[dict[str, float]]] = {name: [] for name in networks}
    latencies: dict[str, list[float]] = {name: [] for name in networks}
    for _ in range(2):
        for name, network in networks.items():
            steps[name].append(gradient_step_times(network, inputs, batch, seconds))
            latencies[name].append(forward_latency_s(network, inputs, seconds / 2))
    forward_backward = {name: min(t["forward_backward_s"] for t in runs) for name, runs in steps.items()}
    optimizer = {name: min(t["optimizer_s"] for t in runs) for name, runs in steps.items()}
    latency = {name: min(values) for name, values in latencies.items()}
    ann_macs = sum(a * b for a, b in zip([inputs, *hidden], [*hidden, outputs], strict=True))
    return {
        "shape": {"inputs": inputs, "hidden": list(hidden), "outputs": outputs, "timesteps": timesteps,
                  "batch": batch},
        "forward_backward_s": forward_backward,
        "optimizer_s": optimizer,
        "latency_s": latency,
        "forward_backward_time_ratio": {name: value / forward_backward["ann"]
                                        for name, value in forward_backward.items()},
        "latency_ratio": {name: value / latency["ann"] for name, value in latency.items()},
        "mac_ratio": {"ann": 1.0, "spiking_mlp": spiking.dense_macs() / ann_macs, "snntorch_leaky": float(timesteps)},
    }


def run_spiking_section(quick: bool, console: Console, repeats: int | None = None,
                        settings: SpikingSettings | None = None,
                        pairs: tuple[SpikingPair, ...] = PAIRS) -> dict[str, Any]:
    """Time every pair, measure energy and memory; return the ``spiking`` figures (:func:`print_spiking_section`
    prints them)."""
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
            row, orders[pair.key], configs[pair.key] = bench_pair(pair, settings, rng, console)
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
    judged = [row.met_model for row in rows] + [row.met_ann for row in rows if row.met_ann is not None]
    return {
        "device": "cpu",
        "settings": asdict(settings),
        "pairs": [asdict(pair) for pair in pairs],
        "configs": configs,
        "target": {
            "metric": "spiking steps/s / the MAC model's steps/s (medians); PPO also spiking steps/s / ANN twin's",
            "model": "ANN twin's time per step with decision time x R_decide and forward/backward time x R_learn, "
                     "optimizer steps and the rest unscaled "
                     "(MAC ratios, spiking/ANN, of the networks each runs per env step)",
            "min_ratio_to_model": MIN_RATIO_TO_MODEL,
            "min_ratio_to_ann": MIN_RATIO_TO_ANN,
            "met": all(judged) if judged else None,
        },
        "networks": networks,
        "rows": [asdict(row) for row in rows],
        "orders": orders,
        "memory": "peak RSS of each row's own fresh process (imports included)" if settings.fresh_process_memory
                  else "peak RSS of the bench process after the row: cumulative, every model run so far",
        "energy_caveat": ENERGY_CAVEAT,
        "memory_caveat": MEMORY_CAVEAT,
        "load_avg_1min_start_end": [load_start, os.getloadavg()[0]],
        "wall_s": wall_s,
    }


# --- the report ----------------------------------------------------------------------------------


def print_network_speeds(console: Console, networks: dict[str, Any]) -> None:
    shape = networks["shape"]
    table = Table(title=f"networks alone, one thread, {shape['inputs']}-{'-'.join(map(str, shape['hidden']))}-"
                        f"{shape['outputs']}, T = {shape['timesteps']}: Adam steps on batches of {shape['batch']}, "
                        "forward + backward apart from the optimizer, and batch-1 decision latency")
    for column in ("network", "fwd+bwd ms", "x ANN", "MAC ratio", "Adam step ms", "latency µs (batch 1)", "x ANN"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for name in networks["forward_backward_s"]:
        table.add_row(name, f"{networks['forward_backward_s'][name] * 1e3:.2f}",
                      f"{networks['forward_backward_time_ratio'][name]:.2f}", f"{networks['mac_ratio'][name]:.2f}",
                      f"{networks['optimizer_s'][name] * 1e3:.3f}", f"{networks['latency_s'][name] * 1e6:,.0f}",
                      f"{networks['latency_ratio'][name]:.2f}")
    console.print(table)
    console.print("SpikingMLP computes a direct encoder's first layer once and reads out once; the Leaky stack "
                  "steps every layer at every step (snnTorch's usual loop). Only forward + backward should follow "
                  "the MAC ratio: Adam updates each parameter once whatever T.", soft_wrap=True)


def _verdict(met: bool | None, target: float | None) -> str:
    if met is None or target is None:
        return "-"
    return f"[green]PASS >= {target:.0%}[/green]" if met else f"[red]FAIL >= {target:.0%}[/red]"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_spiking_report(console: Console, rows: list[SpikingRow], settings: SpikingSettings, quick: bool) -> None:
    """Throughput and memory, the MAC model, decision latency and energy per decision: one table each,
    then the verdicts."""
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

    table = Table(title="MAC model: the ANN twin's time per step with its forward/backward and decision time "
                        "scaled by the MAC ratio (a model, not a bound)",
                  caption="model = 1 / (t_rest + t_opt + t_decide R_decide + t_fb R_learn), the ANN twin's seconds "
                          "per step pooled over repeats; R: spiking/ANN MACs per env step, all networks (critics, "
                          "targets); MAC work x, opt x: the spiking agent's measured decision + forward/backward, "
                          "and optimizer, seconds per step over the ANN's")
    for column in ("algo", "R decide", "R learn", "R", "ANN time decide + fb + opt", "model steps/s",
                   "spiking/model", "verdict", "MAC work x", "opt x"):
        table.add_column(column, justify="left" if column in ("algo", "verdict") else "right")
    for row in rows:
        table.add_row(row.algo, f"{row.mac_ratio_decide:.2f}", f"{row.mac_ratio_learn:.2f}", f"{row.mac_ratio:.2f}",
                      f"{row.ann_decide_fraction:.0%} + {row.ann_learn_fraction:.0%} + "
                      f"{row.ann_optimizer_fraction:.0%}",
                      fmt_rate(row.model_steps_per_s), f"{row.ratio_to_model:.0%}",
                      _verdict(row.met_model, row.min_ratio_to_model), f"{row.measured_net_time_ratio:.2f}",
                      f"{row.optimizer_time_ratio:.2f}")
    console.print(table)

    table = Table(title="Decision latency: one greedy decision on one observation (batch 1, no_grad), median")
    for column in ("algo", "ANN µs", "spiking µs", "spiking/ANN"):
        table.add_column(column, justify="left" if column == "algo" else "right")
    for row in rows:
        table.add_row(row.algo, f"{row.latency_s_ann * 1e6:,.0f}", f"{row.latency_s_spiking * 1e6:,.0f}",
                      f"{row.latency_s_spiking / row.latency_s_ann:.2f}")
    console.print(table)

    table = Table(title="Energy per decision (greedy decisions on their env): the spiking agent against the dense "
                        "ANN and its ANN twin skipping zero activations")
    for column in ("algo", "SOPs", "MACs", "neuron upd.", "E_SNN pJ", "ANN MACs dense / sparse", "E_ANN pJ dense",
                   "E_ANN pJ sparse", "SNN/dense", "SNN/sparse", "+memory: /dense /sparse", "firing rate per layer"):
        table.add_column(column, justify="left" if column in ("algo", "firing rate per layer") else "right")
    for row in rows:
        energy = row.energy
        rates = ", ".join(f"{key.removeprefix('firing_rate/')} {value:.3f}" for key, value in energy.items()
                          if key.startswith("firing_rate/"))
        table.add_row(row.algo, f"{energy['sops_per_decision']:,.0f}", f"{energy['macs_per_decision']:,.0f}",
                      f"{energy['neuron_updates_per_decision']:,.0f}", f"{energy['energy_pj_per_decision']:,.0f}",
                      f"{energy['ann_macs_per_decision']:,.0f} / {energy['sparse_ann_macs_per_decision']:,.0f}",
                      f"{energy['ann_energy_pj_per_decision']:,.0f}",
                      f"{energy['sparse_ann_energy_pj_per_decision']:,.0f}", f"{energy['energy_ratio']:.2f}",
                      f"{energy['energy_ratio_sparse_ann']:.2f}",
                      f"{energy['energy_ratio_with_memory']:.2f} {energy['energy_ratio_sparse_ann_with_memory']:.2f}",
                      rates)
    console.print(table)
    console.print(f"Energy: {ENERGY_CAVEAT}. E_SNN = SOPs x 0.9 + MACs x 4.6 + neuron updates x 4.6 pJ; E_ANN: the "
                  "same layer sizes as an ANN, dense or skipping the zero activations its twin measured on the "
                  "same number of decisions (the observation layer dense on both sides); the decision network "
                  f"only. {MEMORY_CAVEAT}.", highlight=False, soft_wrap=True)

    for row in rows:
        if row.env_note is not None:
            console.print(f"{row.algo}: {row.env_note}", highlight=False, soft_wrap=True)
    missed = [f"{row.algo} {row.ratio_to_model:.0%}" for row in rows if not row.met_model]
    verdict = "[green]MET[/green] for all" if not missed else f"[red]NOT MET[/red] for {', '.join(missed)} of"
    console.print(f"Target (spiking >= {MIN_RATIO_TO_MODEL:.0%} of its MAC model): {verdict} {len(rows)} "
                  "pairs measured", highlight=False, soft_wrap=True)
    for row in rows:
        if row.met_ann is not None:
            verdict = "[green]MET[/green]" if row.met_ann else "[red]NOT MET[/red]"
            console.print(f"Target ({row.algo} spiking >= {row.min_ratio_to_ann:.0%} of its ANN twin): {verdict}, "
                          f"{row.ratio_to_ann:.0%}", highlight=False)
    if quick:
        console.print("--quick: short runs and 2 repeats, a smoke test; take the verdicts from a full run",
                      soft_wrap=True)


def print_spiking_section(figures: dict[str, Any], quick: bool, console: Console) -> None:
    print_network_speeds(console, figures["networks"])
    print_spiking_report(console, [SpikingRow(**row) for row in figures["rows"]],
                         SpikingSettings(**figures["settings"]), quick)
    console.print(f"Spiking section: {figures['wall_s']:.1f} s wall")


class SpikingSection:
    """``spiking``: the spiking agents against their ANN twins and their MAC model, latency and energy."""

    name = "spiking"

    def run(self, options: BenchOptions, console: Console) -> dict[str, Any]:
        return run_spiking_section(options.quick, console, repeats=options.repeats)

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Console) -> None:
        print_spiking_section(figures, options.quick, console)


SECTION = SpikingSection()
