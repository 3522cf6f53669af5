"""Spiking agents learn: a spiking DQN and a spiking PPO (the ready files, short budgets) beat a
uniformly random policy's return on highway-fast-v0 across seeds, by a one-sided Welch t-test."""

import numpy as np
import pytest
from scipy import stats

from envs.evaluation import evaluate_driving
from experiments.config import load_config
from experiments.runs.build import POSTHOC_EVAL_STREAM, build_run, make_env, resolve_backend
from tests_support import EXPERIMENTS

SEEDS = (0, 100, 200, 300, 400)  # EnvPool seeds env i with seed + i: spaced seeds keep the streams apart
EPISODES = 20
ALPHA = 0.01


class RandomPolicy:
    def __init__(self, env, seed: int) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.array([self.space.sample() for _ in range(len(observation))]), None


def returns_after_training(preset: str, steps: int, seed: int) -> tuple[float, float]:
    """Mean return of the trained agent and of a random policy on the same unseen evaluation episodes."""
    config, _ = resolve_backend(load_config(EXPERIMENTS / "spiking" / preset,
                                            [f"training.seed={seed}", f"training.total_timesteps={steps}"]))
    built = build_run(config, with_eval_env=False)
    try:
        built.model.learn(steps)
        env = make_env(config, POSTHOC_EVAL_STREAM, n_envs=4, seed=seed)
        try:
            agent = evaluate_driving(built.model, env, EPISODES, warn_dominant=False)
            random = evaluate_driving(RandomPolicy(env, seed), env, EPISODES, warn_dominant=False)
        finally:
            env.close()
    finally:
        built.close()
    return float(np.mean(agent.returns)), float(np.mean(random.returns))


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "steps"), [("dqn_spiking.yaml", 4000), ("ppo_spiking.yaml", 8192)])
def test_spiking_agent_beats_a_random_policy_across_seeds(preset, steps):
    agent, random = zip(*(returns_after_training(preset, steps, seed) for seed in SEEDS), strict=True)
    test = stats.ttest_ind(agent, random, equal_var=False, alternative="greater")
    assert test.pvalue < ALPHA, (preset, agent, random, test)
    assert min(agent) > max(random), (agent, random)  # not carried by one lucky seed
