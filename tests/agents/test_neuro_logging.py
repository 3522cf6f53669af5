"""Every algorithm that takes neuro parts logs them the same way: each part's statistics and each
written meta-parameter under ``neuro/<kind>/<key>``, read here from the keys SB3's logger writes."""

from __future__ import annotations

from typing import Any

import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.registry import ALGORITHMS, build, neuro_parts
from neuro.parts import NEURO_PARTS
from tests_support import KeyRecorder

CONTINUOUS = ("sac", "td3", "tqc")


@pytest.mark.parametrize("algo", [name for name, cls in ALGORITHMS.items() if neuro_parts(cls)])
def test_every_algorithm_logs_its_parts_under_their_kind(algo):
    cls = ALGORITHMS[algo]
    on_policy = issubclass(cls, OnPolicyAlgorithm)
    env = make_vec_env("Pendulum-v1" if algo in CONTINUOUS else "CartPole-v1", n_envs=1, seed=0)
    hyperparameters: dict[str, Any] = (
        {"n_steps": 64, "ent_coef": 0.01, **({"batch_size": 64, "n_epochs": 1} if algo != "a2c" else {})}
        if on_policy else {"learning_starts": 50, "buffer_size": 1000, "batch_size": 16})
    meta = {"type": "meta", "hold": 5}
    neuro = {"learning_rate": meta, "discount": {"type": "reward_rate"}}
    exploration = "exploration" in neuro_parts(cls)
    if exploration:
        neuro["exploration"] = meta
    model = build(algo, env, seed=0, device="cpu", hyperparameters=hyperparameters,
                  policy_kwargs={"net_arch": [16]}, neuro=neuro)
    recorder = KeyRecorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(300, log_interval=1)

    expected = {"neuro/learning_rate/learning_rate", "neuro/learning_rate/meta_learning_rate_offset",
                "neuro/discount/gamma", "neuro/discount/reward_rate"}
    if exploration:
        written = "ent_coef" if on_policy else "epsilon"
        expected |= {f"neuro/exploration/{written}", "neuro/exploration/meta_exploration_offset"}
    assert expected <= recorder.keys, expected - recorder.keys
    neuro_keys = {key for key in recorder.keys if key.startswith("neuro/")}
    assert all(len(key.split("/")) >= 3 and key.split("/")[1] in NEURO_PARTS for key in neuro_keys), neuro_keys
