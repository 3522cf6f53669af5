"""Analysis of measured runs: statistics (confidence intervals) and the backend fidelity report."""
