"""The neuro bench times stock SB3 and each module on the same shipped config, both built through
the one build path, and each modulator against the platform agent without one."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import stable_baselines3
import torch
from rich.console import Console

from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from experiments.bench import neuro
from experiments.bench.neuro import (
    DOPAMINE_SPECS,
    MAX_OVERHEAD,
    MAX_OVERHEAD_MODULATOR,
    MODULATOR_SPECS,
    REFERENCE_DOPAMINE,
    VARIANTS,
    build_training_model,
    max_overhead,
    preset_config,
    print_neuro_section,
    run_neuro_section,
)
from neuro.dopamine import StandardTD
from neuro.modulation import MODULATOR_REGISTRIES, MetaDiscount
from neuro.parts import NEURO_PARTS
from neuro.registry import SpecError


def test_the_reference_is_stock_sb3_on_the_same_config_as_the_modules():
    config = preset_config("highway_dqn.yaml", seed=0, torch_threads=1)
    assert config.env.backend == "envpool" and config.agent.hyperparameters["gamma"] == 0.8  # the preset's
    stock = build_training_model(config, None)
    module = build_training_model(config, {"type": "standard"})
    try:
        assert type(stock) is stable_baselines3.DQN and type(module) is DopamineDQN
        for name in ("learning_rate", "buffer_size", "batch_size", "gamma", "target_update_interval"):
            assert getattr(stock, name) == getattr(module, name) == config.agent.hyperparameters[name]
        for ours, theirs in zip(module.policy.state_dict().values(), stock.policy.state_dict().values(), strict=True):
            assert torch.equal(ours, theirs)  # same seed, same network: the same start
    finally:
        stock.get_env().close()
        module.get_env().close()


# The modulators shipped today; a new one registered gets its row without an edit here.
SHIPPED_MODULATORS = {
    ("learning_rate", "surprise"), ("learning_rate", "volatility"), ("learning_rate", "meta"),
    ("exploration", "surprise"), ("exploration", "reward_trend"), ("exploration", "meta"),
    ("discount", "reward_rate"), ("discount", "td_variance"), ("discount", "meta"),
}


def test_one_row_per_modulator_with_default_parameters_and_the_5_percent_target():
    timed = {(kind, spec["type"]) for kind, spec in MODULATOR_SPECS}
    assert SHIPPED_MODULATORS <= timed and len(timed) == len(MODULATOR_SPECS)
    registered = {(kind, name) for kind, registry in NEURO_PARTS.items() if kind != "dopamine"
                  for name in registry.entries}
    assert timed <= registered  # every registered modulator that runs on its defaults, and only those
    for kind, name in registered - timed:
        with pytest.raises(SpecError, match="required parameter is missing"):
            NEURO_PARTS[kind].make({"type": name})
    assert all(list(spec) == ["type"] for _, spec in MODULATOR_SPECS)  # default parameters
    assert REFERENCE_DOPAMINE in DOPAMINE_SPECS  # their reference is timed among the modules
    assert VARIANTS[0] == ("dopamine", None) and all(variant in VARIANTS for variant in MODULATOR_SPECS)
    assert MAX_OVERHEAD_MODULATOR == 0.05
    assert all(max_overhead(spec, kind) == MAX_OVERHEAD_MODULATOR for kind, spec in MODULATOR_SPECS)
    assert max_overhead({"type": "standard"}) == MAX_OVERHEAD  # the modules' targets stay


@pytest.fixture(scope="module")
def quick_section():
    """``run_neuro_section`` in quick mode on stock, the reference and the modulators, no warm-up,
    one repeat; the timing replaced by a recorder: each model's rate is 100 steps/s, 97 with a
    modulator (3% overhead), 90 for ``discount: meta`` (10%: not met)."""
    timed: dict[tuple[str, str], Any] = {}

    def fake_timed_learn(model: Any, steps: int) -> float:
        modulators = getattr(model, "modulators", {})
        label = "stock SB3" if not hasattr(model, "neuro") else (
            ", ".join(f"{kind}: {MODULATOR_REGISTRIES[kind].name_of(type(part))}"
                      for kind, part in modulators.items()) or "standard")
        timed[(model.__class__.__name__, label)] = model
        if not modulators:
            return 100.0
        return 90.0 if "discount" in modulators and type(modulators["discount"]) is MetaDiscount else 97.0

    real_bench = neuro.bench_neuro_algo

    def few_variants(config, settings, rng, console):
        return real_bench(config, settings, rng, console, variants=(VARIANTS[0], ("dopamine", REFERENCE_DOPAMINE),
                                                                    *MODULATOR_SPECS))

    console = Console(record=True, width=200, force_terminal=False)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(neuro, "timed_learn", fake_timed_learn)
        patch.setattr(neuro, "bench_neuro_algo", few_variants)
        patch.setattr(neuro, "NEURO_QUICK", replace(neuro.NEURO_QUICK, dqn_warmup_steps=0, ppo_warmup_steps=0))
        try:
            result = run_neuro_section(True, console, repeats=1)
        finally:
            torch.set_num_threads(threads)  # the section sets the bench's one thread
    print_neuro_section(result, True, console)
    return result, timed, console.export_text()


def test_the_timed_models_carry_the_modulator_beside_the_reference_module(quick_section):
    _, timed, _ = quick_section
    for algo_class, stock_class in ((DopamineDQN, stable_baselines3.DQN), (DopaminePPO, stable_baselines3.PPO)):
        assert type(timed[(stock_class.__name__, "stock SB3")]) is stock_class
        reference = timed[(algo_class.__name__, "standard")]
        assert set(reference.neuro) == {"dopamine"} and type(reference.dopamine) is StandardTD
        for kind, spec in MODULATOR_SPECS:
            model = timed[(algo_class.__name__, f"{kind}: {spec['type']}")]
            assert type(model) is algo_class and set(model.neuro) == {"dopamine", kind}
            assert isinstance(model.neuro[kind], type(MODULATOR_REGISTRIES[kind].make(spec)))
            assert type(model.dopamine) is StandardTD
            for name in ("learning_rate", "batch_size", "gamma"):  # the same config as the reference
                assert getattr(model, name) == getattr(reference, name)
    ppo_reference = timed[("DopaminePPO", "standard")]
    for label in ("exploration: surprise", "exploration: reward_trend", "exploration: meta"):
        # PPO's exploration modulator scales ent_coef: the preset's 0.01 in both, as in the reference
        assert timed[("DopaminePPO", label)]._base_ent_coef == ppo_reference.ent_coef == 0.01


def test_report_and_json_carry_the_modulator_rows_against_the_reference(quick_section):
    result, _, printed = quick_section
    json.dumps(result)
    assert result["target"]["modulators"]["max_overhead"] == MAX_OVERHEAD_MODULATOR
    assert result["target"]["modulators"]["reference"] == {"dopamine": REFERENCE_DOPAMINE}
    assert result["target"]["modulators"]["met"] is False and result["target"]["met"] is False
    for algo in ("dqn", "ppo"):
        rows = {row["module"]: row for row in result["rows"] if row["algo"] == algo}
        assert rows["stock SB3"]["reference"] is None and rows["standard"]["reference"] == "stock SB3"
        for kind, spec in MODULATOR_SPECS:
            row = rows[f"{kind}: {spec['type']}"]
            assert (row["kind"], row["spec"], row["reference"]) == (kind, spec, "standard")
            assert row["reference_steps_per_s"] == 100.0 and row["max_overhead"] == MAX_OVERHEAD_MODULATOR
            not_met = (kind, spec["type"]) == ("discount", "meta")
            assert row["overhead"] == pytest.approx(0.10 if not_met else 0.03) and row["met"] is (not not_met)
    assert "vs neuromodulators" in printed and "exploration: reward_trend" in printed
    assert (f"NOT MET for 2 of {2 * len(MODULATOR_SPECS)}: dqn discount: meta (10.0%), ppo discount: meta (10.0%)"
            in printed)
