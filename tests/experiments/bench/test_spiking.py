"""The spiking bench: the MAC model and verdicts on hand-made timings (the optimizer's time unscaled), the
MACs it counts against a hand count of the layers, the optimizer timed apart from forward/backward, the
twin and env checks, and one tiny run of the whole section (real speeds never asserted, only that they
are there, positive and finite)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from rich.console import Console

from agents.registry import build
from experiments.bench import spiking
from experiments.bench.common import peak_rss_mib
from experiments.bench.spiking import (
    PAIRS,
    NetworkTimer,
    RepeatTiming,
    SpikingPair,
    SpikingSettings,
    check_twins,
    fast_env,
    judge,
    mac_model_steps_per_s,
    network_loads,
    network_time_fractions,
    optimizer_fraction,
    pair_config,
    peak_memory,
    print_spiking_section,
    run_spiking_section,
    timed_learn,
)
from experiments.bench.training import ZeroCostVecEnv
from experiments.config import ConfigError
from neuro.snn.network import ENERGY_CAVEAT
from neuro.snn.operations import mac_ratios

# --- the MAC model and the verdicts on hand-made figures -----------------------------------------


def test_mac_model_scales_decisions_and_forward_backward_but_not_the_optimizer() -> None:
    # The ANN twin: 1000 steps/s, 1 ms a step: 0.1 ms deciding, 0.3 ms forward/backward, 0.2 ms in Adam,
    # 0.4 ms elsewhere. Spiking MACs 5x the decisions', 3x the updates': Adam's 0.2 ms stays (it touches
    # each parameter once whatever T): 0.4 + 0.2 + 0.1 * 5 + 0.3 * 3 = 2.0 ms a step, 500 steps/s.
    # (Scaling the optimizer as MAC work would predict 0.4 + 0.5 + 0.5 * 3 = 2.4 ms, 416.7 steps/s.)
    timings = [RepeatTiming(steps=1000, elapsed_s=1.0, decide_s=0.1, learn_s=0.3, sample_s=0.0, optimizer_s=0.2)]
    decide, learn = network_time_fractions(timings)
    assert (decide, learn, optimizer_fraction(timings)) == (pytest.approx(0.1), pytest.approx(0.3),
                                                             pytest.approx(0.2))
    model = mac_model_steps_per_s(1000.0, decide, learn, decide_ratio=5.0, learn_ratio=3.0)
    assert model == pytest.approx(500.0)
    assert mac_model_steps_per_s(1000.0, 0.1, 0.3, 1.0, 1.0) == pytest.approx(1000.0)  # same MACs: the twin

    passed = judge("ppo", 420.0, 1000.0, model)  # 84% of the model, 42% of the twin
    assert passed.ratio_to_model == pytest.approx(0.84) and passed.met_model is True
    assert (passed.ratio_to_ann, passed.min_ratio_to_ann, passed.met_ann) == (pytest.approx(0.42), 0.33, True)
    failed = judge("ppo", 320.0, 1000.0, model)  # 64% of the model, 32% of the twin
    assert failed.ratio_to_model == pytest.approx(0.64) and failed.met_model is False
    assert (failed.ratio_to_ann, failed.met_ann) == (pytest.approx(0.32), False)
    dqn = judge("dqn", 320.0, 1000.0, 350.0)  # no target against the twin for DQN
    assert dqn.met_model is True and (dqn.min_ratio_to_ann, dqn.met_ann) == (None, None)


def test_the_timer_takes_optimizer_steps_off_the_forward_backward_time() -> None:
    hyperparameters = {"batch_size": 16, "buffer_size": 200, "learning_starts": 20, "train_freq": 1}
    model = build("dqn", ZeroCostVecEnv(OBSERVATIONS, spaces.Discrete(3), n_envs=1), None, hyperparameters,
                  {"net_arch": [8]}, seed=0, device="cpu")
    timer = NetworkTimer(model)
    model.learn(30)
    steps = [0]
    step = model.policy.optimizer.step  # the timer's wrapper: count the calls it times
    model.policy.optimizer.step = lambda *a, **k: (steps.__setitem__(0, steps[0] + 1), step(*a, **k))[1]
    timing = timed_learn(model, timer, 40)
    assert steps[0] == 40  # one gradient step per env step past learning_starts
    assert timing.optimizer_s > 0 and timing.learn_s > 0
    assert timer.train_s == pytest.approx(timing.learn_s + timing.sample_s + timing.optimizer_s)


def test_network_time_shares_are_pooled_over_the_repeats() -> None:
    timings = [RepeatTiming(steps=100, elapsed_s=1.0, decide_s=0.1, learn_s=0.4, sample_s=0.05),
               RepeatTiming(steps=100, elapsed_s=3.0, decide_s=0.3, learn_s=1.6, sample_s=0.05)]
    # pooled: 0.4 / 4 and 2.0 / 4 (a mean of the per-repeat shares would give 0.1 and 0.4667)
    assert network_time_fractions(timings) == (pytest.approx(0.1), pytest.approx(0.5))
    assert timings[0].steps_per_s == 100.0


# --- MACs against a hand count of the layers ------------------------------------------------------

OBSERVATIONS = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
SNN = {"timesteps": 4}  # direct encoding: the first layer's product once, the others T = 4 times


def built(algo: str, action_space: spaces.Space, spiking_policy: bool, hyperparameters: dict[str, Any],
          snn: dict[str, Any] | None = None) -> Any:
    env = ZeroCostVecEnv(OBSERVATIONS, action_space, n_envs=1)
    return build(algo, env, "spiking" if spiking_policy else None, hyperparameters, {"net_arch": [8, 6]}, seed=0,
                 device="cpu", snn=(snn or SNN) if spiking_policy else None)


def loads_by_name(model: Any) -> dict[str, tuple[float, float, int]]:
    return {load.name: (load.decide_rows, load.learn_rows, load.macs) for load in network_loads(model)}


def test_dqn_macs_count_every_layer_and_the_target_network() -> None:
    hyperparameters = {"batch_size": 16, "buffer_size": 100, "learning_starts": 0, "train_freq": 4}
    ann = loads_by_name(built("dqn", spaces.Discrete(3), False, hyperparameters))
    snn = loads_by_name(built("dqn", spaces.Discrete(3), True, hyperparameters))
    # 4 -> 8 -> 6 -> 3: ANN 4*8 + 8*6 + 6*3 = 98; spiking 4*8 + 4 * 8*6 + 6*3 = 242 (readout once).
    # Rows per env step: one decision; a gradient step every 4 env steps on 16 rows, forward and
    # backward (3 forwards: 3 * 16 / 4 = 12), and 16 / 4 = 4 target rows.
    assert ann == {"q_net": (1.0, 12.0, 98), "q_net_target": (0.0, 4.0, 98)}
    assert snn == {"q_net": (1.0, 12.0, 242), "q_net_target": (0.0, 4.0, 242)}


def test_ppo_macs_count_the_spiking_actor_and_the_ann_critic() -> None:
    hyperparameters = {"n_steps": 16, "batch_size": 16, "n_epochs": 2}
    ann = loads_by_name(built("ppo", spaces.Discrete(3), False, hyperparameters))
    snn = loads_by_name(built("ppo", spaces.Discrete(3), True, hyperparameters))
    # actor 4 -> 8 -> 6 -> 3 (98 ANN, 242 spiking: SB3's action head reads the rates once);
    # critic 4 -> 8 -> 6 -> 1 = 32 + 48 + 6 = 86, an ANN in both. Updates: 2 epochs x 3 forwards.
    assert ann == {"policy (actor + critic)": (1.0, 6.0, 98 + 86)}
    assert snn == {"policy (actor + critic)": (1.0, 6.0, 242 + 86)}


def test_sac_macs_count_the_population_coded_actor_and_the_ann_critics() -> None:
    hyperparameters = {"batch_size": 16, "buffer_size": 100, "learning_starts": 0}
    action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    snn = {"timesteps": 4, "encoder": {"type": "population", "population_size": 3}}
    ann_model = built("sac", action_space, False, hyperparameters)
    ann = loads_by_name(ann_model)
    spiking_loads = loads_by_name(built("sac", action_space, True, hyperparameters, snn))
    # ANN actor: 4*8 + 8*6 + mean and log-std heads 6*2 + 6*2 = 104.
    # Spiking actor: 12 Gaussians (one MAC each), their spikes 12*8 over 4 steps = 384, 4 * 8*6 = 192,
    # the two heads once: 24; 612 in all. Critics (both kinds): two Q-nets (4+2) -> 8 -> 6 -> 1 = 102 each.
    # Rows per gradient step of 16: actor forward-backward and next-observation forward (4 x 16),
    # critics forward-backward twice (6 x 16), their targets forward once.
    assert ann == {"actor": (1.0, 64.0, 104), "critic": (0.0, 96.0, 204), "critic_target": (0.0, 16.0, 204)}
    assert spiking_loads == {"actor": (1.0, 64.0, 612), "critic": (0.0, 96.0, 204),
                             "critic_target": (0.0, 16.0, 204)}
    ratios = mac_ratios(network_loads(built("sac", action_space, True, hyperparameters, snn)),
                        network_loads(ann_model))
    assert ratios["decide"] == pytest.approx(612 / 104)
    assert ratios["learn"] == pytest.approx((64 * 612 + 112 * 204) / (64 * 104 + 112 * 204))


# --- the pairs and their env ----------------------------------------------------------------------


def test_the_shipped_pairs_are_twins_and_others_are_refused() -> None:
    for pair in PAIRS:
        check_twins(pair, pair_config(pair.ann, (), 0, 1), pair_config(pair.spiking, (), 0, 1))
    distributional = SpikingPair("dqn", "spiking/dqn_ann.yaml", "spiking/dqn_spiking_distributional.yaml")
    with pytest.raises(ConfigError, match="differ beyond agent.policy and agent.snn"):
        check_twins(distributional, pair_config(distributional.ann, (), 0, 1),
                    pair_config(distributional.spiking, (), 0, 1))
    ann, spiking = "vision/dqn_grayscale_ann_twin.yaml", "vision/dqn_grayscale_spiking.yaml"
    with pytest.raises(ConfigError, match="differ beyond agent.policy_kwargs.network"):
        check_twins(SpikingPair("dqn", ann, spiking, name="cnn"), pair_config(ann, (), 0, 1),
                    pair_config(spiking, ("agent.hyperparameters.gamma=0.9",), 0, 1))
    with pytest.raises(ConfigError, match="must name a spiking network part"):
        check_twins(SpikingPair("dqn", ann, ann, name="cnn"), pair_config(ann, (), 0, 1), pair_config(ann, (), 0, 1))
    wrong_algo = SpikingPair("ppo", "spiking/dqn_ann.yaml", "spiking/dqn_spiking.yaml")
    with pytest.raises(ConfigError, match="agent.algo is 'dqn'"):
        check_twins(wrong_algo, pair_config(wrong_algo.ann, (), 0, 1), pair_config(wrong_algo.spiking, (), 0, 1))


def test_without_envpool_a_scenario_runs_on_a_zero_cost_env_with_its_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.runs import build as build_module

    real_choose = build_module.choose_backend

    def no_envpool(env_id: str, backend: str = "auto", config: dict | None = None, drivers: Any = None) -> Any:
        if backend == "envpool":
            raise ValueError("env.backend: envpool is not installed on this platform")
        return real_choose(env_id, backend, config, drivers)

    monkeypatch.setattr(build_module, "choose_backend", no_envpool)
    config, env, label, note = fast_env(pair_config("spiking/sac_ann.yaml", ("env.n_envs=2",), 0, 1))
    assert isinstance(env, ZeroCostVecEnv) and env.num_envs == 2
    assert env.observation_space.shape == (2, 12, 12) and env.action_space.shape == (1,)  # racetrack-v0's
    assert label == "zero-cost (racetrack-v0 spaces)" and note is not None and "envpool is not installed" in note
    assert config.env.backend == "highway-env"


# --- one tiny run of the whole section ------------------------------------------------------------

SMALL = ("agent.policy_kwargs.net_arch=[16, 16]",)
OFF_POLICY = (*SMALL, "agent.hyperparameters.learning_starts=20", "agent.hyperparameters.batch_size=8",
              "agent.hyperparameters.buffer_size=500")
TINY_PAIRS = (
    SpikingPair("dqn", "spiking/dqn_ann.yaml", "spiking/dqn_spiking.yaml", OFF_POLICY),
    SpikingPair("ppo", "spiking/ppo_ann.yaml", "spiking/ppo_spiking.yaml",
                (*SMALL, "env.n_envs=4", "agent.hyperparameters.n_steps=16", "agent.hyperparameters.batch_size=32",
                 "agent.hyperparameters.n_epochs=1")),
    SpikingPair("sac", "spiking/sac_ann.yaml", "spiking/sac_spiking.yaml", OFF_POLICY),
    SpikingPair("dqn", "vision/dqn_grayscale_ann_twin.yaml", "vision/dqn_grayscale_spiking.yaml",
                (*OFF_POLICY, "agent.policy_kwargs.net_arch=[16]",
                 "agent.policy_kwargs.network.convolutions=[[4, 8, 4], [8, 4, 2]]"), name="cnn"),
)
TINY = SpikingSettings(repeats=2, dqn_steps=30, ppo_steps=64, sac_steps=20, dqn_cnn_steps=10, energy_decisions=12,
                       latency_calls=20, fresh_process_memory=False)


@pytest.fixture(scope="module")
def tiny_section() -> tuple[dict[str, Any], str]:
    console = Console(record=True, width=240, force_terminal=False)
    figures = run_spiking_section(True, console, settings=TINY, pairs=TINY_PAIRS)
    print_spiking_section(figures, True, console)
    return figures, console.export_text()


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@pytest.mark.slow
def test_tiny_section_reports_every_pair_with_finite_figures(tiny_section: tuple[dict[str, Any], str]) -> None:
    result, printed = tiny_section
    json.dumps(result)
    assert [row["algo"] for row in result["rows"]] == ["dqn", "ppo", "sac", "dqn_cnn"]
    for row in result["rows"]:
        assert row["steps_per_repeat"] == {"dqn": 30, "ppo": 64, "sac": 20, "dqn_cnn": 10}[row["algo"]]
        assert len(row["ann_repeats"]) == len(row["spiking_repeats"]) == 2
        for name in ("ann_steps_per_s", "spiking_steps_per_s", "model_steps_per_s", "model_steps_per_s_one_ratio",
                     "ratio_to_model", "ratio_to_ann", "measured_net_time_ratio", "peak_rss_mib_ann",
                     "optimizer_time_ratio", "ann_optimizer_fraction", "latency_s_ann", "latency_s_spiking"):
            assert positive(row[name]), name
        assert row["mac_ratio_decide"] > 1 and row["mac_ratio_learn"] > 1 and row["mac_ratio"] > 1  # T = 5
        assert 0 < row["ann_decide_fraction"] + row["ann_learn_fraction"] + row["ann_optimizer_fraction"] < 1
        for timing in row["ann_timings"] + row["spiking_timings"]:
            assert timing["learn_s"] > 0 and timing["decide_s"] >= 0
            assert timing["optimizer_s"] > 0
            assert timing["decide_s"] + timing["learn_s"] + timing["sample_s"] + timing["optimizer_s"] \
                <= timing["elapsed_s"]
        assert isinstance(row["met_model"], bool) and row["min_ratio_to_model"] == 0.80
        assert (row["met_ann"] is None) == (row["algo"] != "ppo")
        energy = row["energy"]
        assert energy["decisions"] >= 12 and positive(energy["energy_pj_per_decision"])
        for name in ("neuron_updates_per_decision", "sparse_ann_macs_per_decision", "energy_ratio_sparse_ann",
                     "energy_ratio_with_memory", "energy_ratio_sparse_ann_with_memory"):
            assert positive(energy[name]), name
        # The twin's measured dense MACs are the same layer sizes the SNN's counts assume.
        assert energy["ann_measured_dense_macs_per_decision"] == energy["ann_macs_per_decision"]
        assert energy["sparse_ann_macs_per_decision"] <= energy["ann_macs_per_decision"]
        rates = [value for key, value in energy.items() if key.startswith("firing_rate/")]
        assert rates and all(0 <= rate <= 1 for rate in rates)
        assert sorted(sum(result["orders"][row["algo"]], [])) == ["ann", "ann", "spiking", "spiking"]
    rows = {row["algo"]: row for row in result["rows"]}
    assert rows["dqn"]["env"] == rows["ppo"]["env"] == "envpool" and rows["dqn"]["env_note"] is None
    assert rows["sac"]["env_note"] is not None  # racetrack-v0: EnvPool's unverified port, or a zero-cost env
    assert "encoder" in " ".join(rows["sac"]["energy"])  # PopSAN's encoding neurons spike
    # The image pair: a zero-cost env with the 4x128x64 grayscale space; convolutions counted on both sides.
    assert rows["dqn_cnn"]["env"] == "zero-cost (highway-fast-v0 spaces)"
    assert "firing_rate/conv_0" in rows["dqn_cnn"]["energy"]
    assert rows["dqn_cnn"]["networks"]["q_net"]["ann_macs"] > 4 * 31 * 15 * 4 * 64  # the first conv alone
    assert result["target"]["met"] == all([row["met_model"] for row in rows.values()] + [rows["ppo"]["met_ann"]])
    for title in ("MAC model", "Decision latency", "Energy per decision", "zero activations", ENERGY_CAVEAT):
        assert title in printed, title
    assert "MAC-bound limit" not in printed


@pytest.mark.slow
def test_peak_memory_comes_from_a_fresh_process_per_row_not_its_parent() -> None:
    # A parent far bigger than any row: on Linux a child's ru_maxrss would start at the parent's RSS.
    ballast = np.ones(2**30 // 8)  # 1 GiB, touched
    parent_peak = peak_rss_mib()
    ann, spiking_peak = peak_memory(TINY_PAIRS[0], SpikingSettings(dqn_steps=20))
    del ballast
    assert 50 < ann < parent_peak - 500 and 50 < spiking_peak < parent_peak - 500  # torch and SB3: > 50 MiB


@pytest.mark.slow
def test_peak_memory_child_names_the_row_when_it_fails() -> None:
    broken = SpikingPair("dqn", "spiking/dqn_ann.yaml", "spiking/dqn_spiking.yaml", ("agent.hyperparameters.nope=1",))
    with pytest.raises(RuntimeError, match="spiking/dqn_ann.yaml"):
        peak_memory(broken, SpikingSettings(dqn_steps=20))


def test_the_section_is_a_bench_choice() -> None:
    import argparse

    from experiments.bench.command import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--section", "spiking", "--repeats", "4"])
    assert (args.section, args.repeats) == ("spiking", 4)
    assert spiking.SECTION.name == "spiking"
    assert spiking.SPIKING_QUICK.repeats == 2 and spiking.SPIKING_FULL.repeats == 3
