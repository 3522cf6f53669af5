"""DQN with a pessimistic dopamine rule on highway-fast-v0, in SB3's idiom: an env, an agent, learn.

    python examples/dopamine_dqn.py                                  # 20k steps, about a minute on 2 cores
    python examples/dopamine_dqn.py --steps 300 --save /tmp/dqn.zip  # a smoke run of seconds

``neuro=`` takes what a config's ``neuro:`` section holds; with ``{"dopamine": {"type": "standard"}}``
(or no ``neuro``) the agent is stock SB3 DQN. Prints the greedy evaluation as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os

from agents import DopamineDQN
from envs import evaluate_driving, make_vec_env

SCENARIO = "highway-fast-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=int(os.environ.get("NEURODRIVE_EXAMPLE_STEPS", 20_000)))
    parser.add_argument("--episodes", type=int, default=10, help="greedy evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained model here (an SB3 zip)")
    args = parser.parse_args()

    env = make_vec_env(SCENARIO, n_envs=4, seed=args.seed)  # EnvPool's native port where it is verified
    model = DopamineDQN(
        "MlpPolicy", env,
        neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3}},  # pessimistic: negative errors weigh more
        learning_rate=5e-4, buffer_size=15_000, learning_starts=200, batch_size=32, gamma=0.8,
        target_update_interval=50, exploration_fraction=0.7, policy_kwargs={"net_arch": [256, 256]},
        seed=args.seed,
    )
    model.learn(args.steps)
    if args.save:
        model.save(args.save)

    # Evaluation episodes come from their own seed stream, unseen in training.
    eval_env = make_vec_env(SCENARIO, n_envs=1, seed=args.seed, stream=1)
    metrics = evaluate_driving(model, eval_env, n_episodes=args.episodes)
    eval_env.close()
    env.close()
    summary = metrics.summary()
    print(json.dumps({"steps": model.num_timesteps, "dopamine": repr(model.dopamine),
                      **{key: summary[key] for key in ("n_episodes", "mean_return", "crash_rate", "mean_speed")}}))


if __name__ == "__main__":
    main()
