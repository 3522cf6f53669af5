"""Train from a config mapping, the same experiment `neurodrive train` runs from a YAML file.

    python examples/train_from_config.py                              # 20k steps, about a minute on 2 cores
    python examples/train_from_config.py --steps 400 --root /tmp/runs # a smoke run of seconds

``experiments.train`` validates the config before any work (a bad one raises ``ConfigError`` with the
command line's one-line message), builds the run by the one build path and returns its run folder.
Prints the run folder and its final evaluation as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os

from experiments import train

CONFIG = {  # what a YAML experiment file holds; experiments/presets/ has ready ones
    "name": "example_dopamine_dqn",
    "env": {"id": "highway-fast-v0", "n_envs": 4},
    "agent": {"algo": "dqn", "hyperparameters": {"learning_rate": 5e-4, "learning_starts": 200, "gamma": 0.8,
                                                 "target_update_interval": 50, "exploration_fraction": 0.7}},
    "neuro": {"dopamine": {"type": "asymmetric", "kappa": 0.3}},
    "training": {"total_timesteps": 20_000, "eval_every": 5_000, "eval_episodes": 10},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=int(os.environ.get("NEURODRIVE_EXAMPLE_STEPS", 20_000)))
    parser.add_argument("--root", default="runs", help="where the run folder goes (logging.root)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Overrides by dotted path, as `--set` gives them on the command line (or a list of "a.b=c" strings).
    run = train(CONFIG, overrides={
        "training.total_timesteps": args.steps,
        "training.eval_every": max(args.steps // 2, 1),  # two evaluations, however short the run
        "training.seed": args.seed,
        "logging.root": args.root,
        "logging.progress_bar": False,
    })
    final = run.read_evaluations()["final"]
    print(json.dumps({"run_dir": str(run.path), "status": run.read_meta()["status"], "step": final["step"],
                      "mean_return": final["mean_return"], "crash_rate": final["crash_rate"]}))


if __name__ == "__main__":
    main()
