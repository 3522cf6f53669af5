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
        try:
            return self.neuro["dopamine"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} takes no dopamine part") from None

    def _adopt_saved_parts(self) -> None:
        """Call first in ``_setup_model``: a model saved before the parts were grouped under
        ``neuro`` carries its TD-error module as ``dopamine``, which SB3's ``load`` puts in the
        instance dict, where the property above would hide it."""
        saved = self.__dict__.pop("dopamine", None)
        if saved is not None:
            self.neuro = {**self.neuro, "dopamine": saved}
