"""Read a run folder back: its config, its evaluation history and its model, ready to drive.

    python examples/load_run.py runs/example_dopamine_dqn/<timestamp>-seed0
    python examples/load_run.py RUN_DIR --model best                # best_model.zip instead of model.zip

Prints the history as one JSON line: each evaluation's step and mean return, the best one, and the
greedy actions the loaded model takes on a few observations of the run's scenario.
"""

from __future__ import annotations

import argparse
import json

from envs import make_vec_env
from experiments import load_model, load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", choices=("final", "best"), default="final")
    args = parser.parse_args()

    run = load_run(args.run_dir)  # ConfigError if it is not a run folder
    config = run.load_config()    # the resolved experiment, reloadable as a YAML file
    history = run.read_evaluations()
    model = load_model(run, args.model)  # the algorithm's SB3 class, neuro parts included

    env = make_vec_env(config.env.id, n_envs=2, seed=config.training.seed, backend=config.env.backend, stream=2)
    actions, _ = model.predict(env.reset(), deterministic=True)
    env.close()
    print(json.dumps({
        "experiment": config.name, "algo": config.agent.algo, "neuro": config.neuro,
        "model": type(model).__name__, "model_steps": model.num_timesteps,
        "evaluations": [[record["step"], record["mean_return"]] for record in history["evaluations"]],
        "best": [history["best"]["step"], history["best"]["mean_return"]],
        "actions": [int(action) for action in actions],
    }))


if __name__ == "__main__":
    main()
