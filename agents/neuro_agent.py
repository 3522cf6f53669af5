"""What every SB3 algorithm with neuro parts shares: the whole ``neuro:`` section in one argument."""

from __future__ import annotations

from typing import Any, ClassVar

from neuro.dopamine import DopamineModule
from neuro.parts import make_neuro


class NeuroAgent:
    """Mixin before an SB3 algorithm class (``class DopamineDQN(NeuroAgent, DQN)``): ``neuro`` holds
    the parts by kind, built from their specs (or passed built) before SB3 sets the model up, so
    ``_setup_model`` and ``train`` can read them. A kind not given gets its registry's default.

    :param neuro: ``{kind: spec or part}`` for the kinds in ``neuro_parts``; any other kind is an error.
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, neuro: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.neuro = make_neuro(neuro, self.neuro_parts)
        super().__init__(*args, **kwargs)

    @property
    def dopamine(self) -> DopamineModule:
        """The TD-error module (``neuro.dopamine``), for agents that take one."""
        return self.neuro["dopamine"]
