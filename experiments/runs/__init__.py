"""Runs: the one build path (``build``), the training session, checkpoints, run folders and
post-hoc evaluation. Every command that trains, resumes, benchmarks or evaluates a model goes
through ``experiments.runs.build``."""
