"""Brain-inspired parts in plain torch/numpy (no SB3 import), testable on their own.

Each is a small class whose docstring states its update rule and cites its paper
(``docs/architecture.md`` lists them). ``neuro.parts.NEURO_PARTS`` maps each kind's key under
``neuro:`` to its registry. Nothing is imported here, so a light import (``neuro.guards``'s error
type) does not pull in torch.
"""
