"""Analysis of measured runs: the backend fidelity report (its statistics are `experiments.statistics`'s)."""
