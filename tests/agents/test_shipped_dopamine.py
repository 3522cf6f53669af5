"""Every dopamine setting the shipped YAML files use learns the statistic its docstring names.

The settings are collected from the files themselves: each experiment file, each comparison's variants
(on its base experiment, with its fixed overrides), and each sweep's module choices with both ends of
every range it searches for that module. A new preset is checked without anyone adding it here, and an
algorithm with no harness below fails the collection test.

Each setting is trained on the crash loop (``small_mdps.CrashLoop``): highway's reward scale (0.5 or 1 a
step, a crash ends the episode with 0), gamma 0.9, a return bootstrapped a geometric number of times, TD
errors of several units at a crash, so a Huber threshold of 1 bites. DQN learns on an exact replay of
the one-step law (``tabular_agents``); PPO collects its own rollouts on the env. References are numpy
truths from ``small_mdps``, independent of ``neuro/`` and ``agents/``:

- a single-value rule: the nested fixed point of its one-step rule as its docstring states it (the loss's
  slope times the sign-dependent gain), solved by brentq;
- distributional channels: the return's expectiles (Monte Carlo, 10^6 returns) or the fixed point of QR's
  projected Bellman operator, and the acting statistic from the statistic's definition.

Tolerances state what they allow: minibatch noise at the final learning rate, and the approximation
each docstring names (imputation for expectiles, the N-atom projection for quantiles).
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import small_mdps
import torch
from tabular_agents import Transition, counts, fit, q_table, tabular_dqn
from threadpoolctl import threadpool_limits

import experiments
from agents.dopamine_ppo import DopaminePPO
from agents.registry import get_algorithm
from experiments.compare.spec import load_comparison
from experiments.config import load_config, set_path, validate_config
from experiments.sweeps.spec import load_sweep
from neuro.dopamine import DOPAMINE_MODULES

PRESETS = Path(experiments.__file__).parent / "presets"
LOOP = small_mdps.DEFAULT_LOOP
GAMMA = small_mdps.LOOP_GAMMA  # 0.9
HARNESSES = ("dqn", "ppo")


@dataclass(frozen=True)
class Setting:
    algo: str
    dopamine: str  # the module's spec as sorted JSON
    gae_lambda: float | None  # PPO's, as the file ships it

    @property
    def spec(self) -> dict[str, Any]:
        return json.loads(self.dopamine)


def _setting(config: Any) -> Setting | None:
    algo = config.agent.algo
    if "dopamine" not in get_algorithm(algo).neuro_parts:
        return None
    spec = config.neuro.get("dopamine") or {"type": "standard"}
    # A parameter spelt out at its default is the same setting as one left out: train it once.
    defaults = inspect.signature(DOPAMINE_MODULES.resolve(spec["type"]).__init__).parameters
    spec = {key: value for key, value in spec.items() if key not in defaults or value != defaults[key].default}
    gae_lambda = config.agent.hyperparameters.get("gae_lambda", 0.95) if algo == "ppo" else None
    return Setting(algo, json.dumps(spec, sort_keys=True), gae_lambda)


def _sweep_settings(path: Path) -> list[Any]:
    """A sweep's configs: each module choice, with each end of each range searched for it."""
    sweep = load_sweep(path)
    parameters = {p: s for p, s in sweep.spec.parameters.items() if p.startswith("neuro.dopamine.")}
    types = parameters.pop("neuro.dopamine.type").probe_values() if "neuro.dopamine.type" in parameters else [None]
    configs = []
    for module in types:
        chosen = {} if module is None else {"neuro.dopamine.type": module}
        searched = [(p, s) for p, s in parameters.items()
                    if all(chosen.get(k) == v for k, v in s.condition.items())]
        assignments = [{**chosen, p: value} for p, s in searched for value in s.probe_values()] or [chosen]
        configs += [sweep.experiment(assignment, seed=0) for assignment in assignments]
    return configs


def shipped_settings() -> dict[Setting, list[str]]:
    """Every (algorithm, dopamine spec) a shipped file trains, with the files (and variants) that use it."""
    found: dict[Setting, list[str]] = {}
    for path in sorted(PRESETS.rglob("*.yaml")):
        where = str(path.relative_to(PRESETS))
        if path.parent.name == "compare":
            comparison = load_comparison(path)
            configs = []
            for name, overrides in comparison.variants.items():
                raw = copy.deepcopy(comparison.base)
                for key, value in {**comparison.fixed, **overrides}.items():
                    set_path(raw, key, value)
                configs.append((f"{where}:{name}", validate_config(raw, where)))
        elif path.parent.name == "sweeps":
            configs = [(where, config) for config in _sweep_settings(path)]
        else:
            configs = [(where, load_config(path))]
        for label, config in configs:
            setting = _setting(config)
            if setting is not None:
                found.setdefault(setting, []).append(label)
    return found


SHIPPED = shipped_settings()


def test_the_collection_finds_every_kind_of_file_and_a_harness_for_each_algorithm():
    """The files' own settings: the strong agent's, a comparison variant's and a sweep's range ends are
    among them, and every algorithm that takes a dopamine module has a harness here."""
    labels = [label for users in SHIPPED.values() for label in users]
    assert "highway_fast_strong.yaml" in labels
    assert "compare/dqn_risk.yaml:cvar" in labels
    assert any(label == "sweeps/dqn_dopamine.yaml" for label in labels)
    kappas = {s.spec.get("kappa") for s in SHIPPED if s.spec["type"] == "asymmetric" and s.algo == "dqn"}
    assert {-0.8, 0.3, 0.8} <= kappas
    assert {s.algo for s in SHIPPED} <= set(HARNESSES), {s.algo for s in SHIPPED}


# ------------------------------------------------------------------------------------------------
# Independent references
# ------------------------------------------------------------------------------------------------


def one_step_rule(spec: dict[str, Any], algo: str):
    """What one gradient step moves V by for a TD error d, as the module's docstring states its rule:
    the loss's slope (``clip(d, -1, 1)`` for SB3's Huber, ``d`` for squared; PPO's GAE takes the error
    unclipped whatever ``loss`` says) times the sign-dependent gain."""
    huber = algo == "dqn" and spec.get("loss", "huber") == "huber"

    def slope(d):
        return np.clip(d, -1.0, 1.0) if huber else d

    kind = spec["type"]
    if kind in ("standard", "saturating", "average_reward"):  # saturating compresses only the recording
        return slope
    if kind == "asymmetric":
        kappa = spec.get("kappa", 0.0)
        return lambda d: np.where(d > 0, 1.0 - kappa, 1.0 + kappa) * slope(d)
    if kind == "opponent":
        positive, negative = spec.get("gain_positive", 1.0), spec.get("gain_negative", 1.0)
        return lambda d: np.where(d > 0, positive, negative) * slope(d)
    if kind == "biased_saturating":
        compression, ceiling = spec.get("compression", 0.2), spec.get("ceiling", 1.0)
        cap = min(ceiling, 1.0) if huber else ceiling
        return lambda d: np.where(d > 0, np.minimum(d, cap), compression * slope(d))
    raise AssertionError(f"no reference for dopamine type {kind!r}: add its rule here")


def loop_law() -> list[Transition]:
    """The loop's one-step law in exact proportions (per 25: 3 crashes, 11 of each reward)."""
    return [Transition(0, 0, reward, 0, terminated, counts(probability, 25))
            for probability, reward, terminated in LOOP.outcomes()]


# ------------------------------------------------------------------------------------------------
# Harnesses
# ------------------------------------------------------------------------------------------------


def train_dqn(spec: dict[str, Any], seed: int = 0):
    """Tabular DopamineDQN on the exact law; returns (channel values at the loop state, acting value, model)."""
    model = tabular_dqn(small_mdps.CrashLoop(), spec, loop_law(), gamma=GAMMA, seed=seed, batch_size=500)
    fit(model, 2000)
    channels = q_table(model, 1)[0, :, 0]
    with torch.no_grad():
        acting = float(model.q_net(torch.tensor([0]))[0, 0])
    return channels, acting, model


def train_ppo(spec: dict[str, Any], gae_lambda: float, seed: int = 0):
    """Tabular DopaminePPO (a value table: net_arch []) on the loop's own rollouts; returns the channel
    values and the acting value of the loop state."""
    model = DopaminePPO("MlpPolicy", small_mdps.CrashLoop(), policy_kwargs={"net_arch": []}, neuro={"dopamine": spec},
                        gamma=GAMMA, gae_lambda=gae_lambda, n_steps=1000, batch_size=250, n_epochs=4,
                        learning_rate=lambda progress: 0.05 * max(progress, 0.05), seed=seed, device="cpu")
    model.learn(60_000)
    with torch.no_grad():
        channels = model.policy.all_values(torch.tensor([0])).numpy()[0].astype(np.float64)
        acting = float(model.policy.predict_values(torch.tensor([0]))[0, 0])
    return channels, acting, model


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _id(setting: Setting) -> str:
    spec = setting.spec
    params = ",".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{setting.algo}-{spec['type']}" + (f"-{params}" if params else "")


# Tolerances, each stated with its reason and what was measured (seeds 0-1).
# DQN: minibatch noise at 2% of the learning rate (measured at most 0.03); PPO: rollout noise at 5% of
# it (measured at most 0.04).
SINGLE_VALUE_TOLERANCE = {"dqn": 0.06, "ppo": 0.08}
# The rate's own noise at eta 0.01 (about 0.01 here) times 1 / (1 - gamma) = 10 (measured 0.04-0.09).
AVERAGE_REWARD_TOLERANCE = 0.15
# Expectile channels against the return's expectiles: Rowland et al.'s imputation leaves DQN's tabular
# fixed point off them by up to 0.2 on the extreme channels of this law with an atom at 0 (measured
# 0.10-0.17) and 0.1 on the others (measured at most 0.07); PPO's GAE with lambda 0.95 sums one-step
# signals, an approximation of the distributional lambda-return, which adds up to about 0.1 (measured
# 0.22 on channel 0, 0.10 inside). The tau = 0.5 channel is plain TD: the mean.
EXPECTILE_TOLERANCE = {"dqn": (0.2, 0.1), "ppo": (0.3, 0.15)}  # (every channel, channels with 0.1 < tau < 0.9)


def _params() -> list[Any]:
    """Every setting; the fast lane trains one DQN setting per rule, the one closest to its defaults (about
    2 s each); the others and PPO's (60k steps, about 25 s each) run in the slow lane, which CI runs."""
    fast = {min((s for s in SHIPPED if s.algo == "dqn" and s.spec["type"] == rule), key=lambda s: (len(s.spec), _id(s)))
            for rule in {s.spec["type"] for s in SHIPPED if s.algo == "dqn"}}
    return [pytest.param(s, id=_id(s), marks=[] if s in fast else [pytest.mark.slow]) for s in sorted(SHIPPED, key=_id)]


@pytest.mark.parametrize("setting", _params())
def test_each_shipped_setting_learns_its_documented_statistic(setting):
    spec = setting.spec
    if setting.algo == "dqn":
        channels, acting, model = train_dqn(spec)
    else:
        channels, acting, model = train_ppo(spec, setting.gae_lambda)
    label = f"{_id(setting)} (used by {', '.join(SHIPPED[setting])})"

    if spec["type"] == "distributional":
        check_distributional(spec, channels, acting, setting.algo, label)
        return
    if spec["type"] == "average_reward":
        rate = model.dopamine.reward_rate
        mean_reward = sum(p * r for p, r, _ in LOOP.outcomes())
        assert rate == pytest.approx(mean_reward, abs=0.05), label
        reference = small_mdps.nested_fixed_point(one_step_rule(spec, setting.algo), LOOP, GAMMA,
                                                  baseline=(rate, rate / (1.0 - GAMMA)))
        assert acting == pytest.approx(reference, abs=AVERAGE_REWARD_TOLERANCE), label
        return
    reference = small_mdps.nested_fixed_point(one_step_rule(spec, setting.algo), LOOP, GAMMA)
    assert acting == pytest.approx(reference, abs=SINGLE_VALUE_TOLERANCE[setting.algo]), label


def check_distributional(spec: dict[str, Any], channels: np.ndarray, acting: float, algo: str, label: str) -> None:
    n = spec.get("n_channels", 11)
    taus = small_mdps.channel_taus(n) if spec.get("taus") is None else np.sort(spec["taus"])
    returns = small_mdps.loop_returns(LOOP, GAMMA)
    level = spec.get("acting", "mean")
    if spec.get("code", "expectile") == "expectile":
        true = np.asarray(small_mdps.expectile(returns[::4], taus))
        inner = (taus > 0.1) & (taus < 0.9)
        every, inside = EXPECTILE_TOLERANCE[algo]
        assert channels[inner] == pytest.approx(true[inner], abs=inside), (label, channels, true)
        assert channels == pytest.approx(true, abs=every), (label, channels, true)
        assert level == "mean", "add the acting statistic's reference"
        assert acting == pytest.approx(small_mdps.loop_mean(LOOP, GAMMA), abs=SINGLE_VALUE_TOLERANCE[algo]), label
        return
    # QR's projected fixed point (11 atoms), within minibatch noise (measured at most 0.03).
    projected = small_mdps.loop_projected_quantiles(taus, LOOP, GAMMA)
    assert channels == pytest.approx(projected, abs=0.06), (label, channels, projected)
    kind, _, value = level.partition("=")
    if kind == "cvar":  # the exact CVaR of N atoms of mass 1/N each, from the statistic's definition
        expected = small_mdps.cvar(projected, float(value))
    elif kind == "mean":
        expected = float(projected.mean())
    else:
        expected = float(np.interp(float(value), taus, projected))
    assert acting == pytest.approx(expected, abs=0.03), label  # measured at most 0.001
