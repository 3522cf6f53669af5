"""``neurodrive bench``: env throughput, neuro-module overhead, training against the learner-bound
limit, and command start-up, each figure measured side by side in one run."""
