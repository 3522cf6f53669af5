"""Benchmark entry point: the same as `neurodrive bench` (logic in experiments/bench.py).

    python scripts/benchmark.py [--section env|neuro|all] [--quick] [--out bench.json]
"""

from experiments.bench import main

if __name__ == "__main__":
    main()
