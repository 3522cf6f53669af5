"""Benchmark entry point: the same as `neurodrive bench` (logic in experiments/bench/).

    python scripts/benchmark.py [--section env|neuro|training|startup|spiking|grid|all] [--quick] [--repeats N]
                                 [--out bench.json]
"""

from experiments.bench.command import main

if __name__ == "__main__":
    main()
