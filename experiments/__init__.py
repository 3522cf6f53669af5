"""Experiment files, the run loop and the ``neurodrive`` command line."""
