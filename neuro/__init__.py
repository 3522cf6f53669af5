"""Brain-inspired parts in plain torch/numpy (no SB3 import), testable on their own.

Dopamine-style TD-error modules, neuromodulators and spiking layers land here, each a small
class whose docstring states its update rule and cites its paper (see DESIGN.md).
"""
