"""Screen strong-agent candidates for highway-fast-v0: train each for a wall-clock budget on the
native backend, then evaluate greedily on EnvPool (500 episodes) and highway-env (100 episodes).

As run on 2026-11-28 for the strong-agent target (docs/benchmarks.md): two rounds of 8 candidates
in parallel on a borrowed 16-core machine (2 cores each, ~the speed of one 2-core run here),
330 s then 170 s of training each (round 2 with HE_EVAL=0)::

    PYTHONPATH=. python scripts/screen_strong_agent.py NAME SECONDS OUT.json [SEED]

Kept as run, including one flaw that matters when reading its DQN rows: ``learn`` is given an
open-ended budget (10**9 steps), so DQN's exploration schedule (a fraction of that budget) kept
epsilon near 1.0 throughout; those DQN agents learned from almost random behaviour. The shipped
config (experiments/presets/highway_fast_strong.yaml) uses the platform's run loop and a real schedule.
Observation standardisation here is SB3's VecNormalize; the platform ships the same rule inside
the policy (agents.extractors:RunningNormalization).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from agents.extractors import EgoAttention
from agents.registry import build
from envs.evaluation import evaluate_driving
from envs.factory import make_vec_env

V10 = {"observation": {"type": "Kinematics", "vehicles_count": 10}}
PPO = dict(algo="ppo", n_envs=32, hp=dict(learning_rate=5e-4, n_steps=64, batch_size=512, n_epochs=5, gamma=0.9,
                                          gae_lambda=0.95, ent_coef=0.01), pk=dict(net_arch=[256, 256]))
DQN = dict(algo="dqn", n_envs=16, hp=dict(learning_rate=5e-4, buffer_size=200_000, learning_starts=10_000,
                                          batch_size=64, gamma=0.9, train_freq=1, gradient_steps=2,
                                          target_update_interval=1000, exploration_fraction=0.2,
                                          exploration_final_eps=0.05), pk=dict(net_arch=[256, 256]))
ATTN = dict(features_extractor_class=EgoAttention, net_arch=[256, 256])


def variant(base, norm=False, config=None, pk=None, **hp):
    return dict(algo=base["algo"], n_envs=base["n_envs"], hp={**base["hp"], **hp}, pk=pk or base["pk"],
                norm=norm, config=config or {})


RS = {"reward_speed_range": [25, 30]}
QR = dict(algo="qrdqn", n_envs=16, hp=DQN["hp"], pk=dict(net_arch=[256, 256], n_quantiles=25))
QR = dict(algo="qrdqn", n_envs=16, hp=DQN["hp"], pk=dict(net_arch=[256, 256], n_quantiles=25))
RS = {"reward_speed_range": [25, 30]}  # training reward only; evaluation uses the default range
CANDIDATES = {
    # round 1, 330 s each
    "ppo_norm": variant(PPO, norm=True),
    "ppo_norm_g95": variant(PPO, norm=True, gamma=0.95),
    "ppo_norm_v10_g95": variant(PPO, norm=True, config=V10, gamma=0.95),
    "ppo_attn_v10_g95": variant(PPO, config=V10, pk=ATTN, gamma=0.95),
    "ppo_norm_g95_ent03": variant(PPO, norm=True, gamma=0.95, ent_coef=0.03),
    "dqn_norm": variant(DQN, norm=True),
    "dqn_norm_g95": variant(DQN, norm=True, gamma=0.95),
    "dqn_attn_v10": variant(DQN, config=V10, pk=ATTN),
    # round 2, 170 s each
    "dqn_norm_g95_rs": variant(DQN, norm=True, gamma=0.95, config=RS),
    "qrdqn_norm_g95": variant(QR, norm=True, gamma=0.95),
    "dqn_norm_g95_b256_gs1": variant(DQN, norm=True, gamma=0.95, batch_size=256, gradient_steps=1),
    "dqn_norm_g95_tu5000": variant(DQN, norm=True, gamma=0.95, target_update_interval=5000),
    "dqn_norm_g95_v10": variant(DQN, norm=True, gamma=0.95, config=V10),
    "dqn_norm_g98": variant(DQN, norm=True, gamma=0.98),
    "ppo_norm_g95_rs": variant(PPO, norm=True, gamma=0.95, config=RS),
}


class NormalizedPolicy:
    def __init__(self, model, norm):
        self.model, self.norm = model, norm

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.norm is not None:
            observation = self.norm.normalize_obs(observation)
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)


class Budget(BaseCallback):
    def __init__(self, seconds, probes, probe_fn):
        super().__init__()
        self.seconds, self.probes, self.probe_fn = seconds, sorted(probes), probe_fn
        self.history = []

    def _on_training_start(self):
        self.start = time.perf_counter()

    def _on_step(self):
        elapsed = time.perf_counter() - self.start
        if self.probes and elapsed >= self.probes[0]:
            self.probes.pop(0)
            t0 = time.perf_counter()
            record = self.probe_fn()
            self.start += time.perf_counter() - t0  # probes do not count as training time
            record.update(steps=self.num_timesteps, train_s=round(elapsed, 1))
            self.history.append(record)
            print(name, record, flush=True)
        return elapsed < self.seconds


def summary(metrics):
    s = metrics.summary()
    return {"return": round(s["mean_return"], 2), "crash": round(s["crash_rate"], 3),
            "length": round(s["mean_length"], 1), "speed": round(s.get("mean_speed") or 0, 2)}


if __name__ == "__main__":
    name, seconds, out = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    spec = CANDIDATES[name]
    eval_config = {k: v for k, v in spec["config"].items() if k != "reward_speed_range"}
    torch.set_num_threads(1)
    env = make_vec_env("highway-fast-v0", spec["n_envs"], seed, "envpool", spec["config"], num_threads=2)
    norm = None
    if spec["norm"]:
        env = norm = VecNormalize(env, norm_obs=True, norm_reward=False)
    model = build(spec["algo"], env, None, spec["hp"], dict(spec["pk"]), seed=seed, device="cpu")
    policy = NormalizedPolicy(model, norm)

    def probe():
        eval_env = make_vec_env("highway-fast-v0", 16, seed, "envpool", eval_config, num_threads=1, stream=1)
        if norm is not None:
            norm.training = False
        result = summary(evaluate_driving(policy, eval_env, 200))
        if norm is not None:
            norm.training = True
        eval_env.close()
        return result

    budget = Budget(seconds, [seconds * f for f in (0.25, 0.5, 0.75)], probe)
    started = time.perf_counter()
    model.learn(10**9, callback=budget)
    train_s = time.perf_counter() - started
    steps = model.num_timesteps
    if norm is not None:
        norm.training = False
    eval_env = make_vec_env("highway-fast-v0", 16, seed, "envpool", eval_config, num_threads=1, stream=2)
    envpool_final = summary(evaluate_driving(policy, eval_env, 500))
    eval_env.close()
    he_final, he_s = None, 0.0
    if os.environ.get("HE_EVAL", "1") == "1":
        he_env = make_vec_env("highway-fast-v0", 1, seed, "highway-env", eval_config, stream=2)
        t0 = time.perf_counter()
        he_final = summary(evaluate_driving(policy, he_env, 100))
        he_s = time.perf_counter() - t0
    result = {"name": name, "seed": seed, "steps": steps, "train_s": round(train_s, 1),
              "steps_per_s": round(steps / train_s), "history": budget.history,
              "envpool_500": envpool_final, "highway_env_100": he_final, "he_eval_s": round(he_s, 1)}
    out.write_text(json.dumps(result))
    model.save(out.with_suffix(".zip"))
    print("DONE", json.dumps(result), flush=True)
