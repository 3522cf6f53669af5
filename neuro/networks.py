"""Network parts: the networks an SB3 policy builds where it would build an MLP.

A network part is an ``nn.Module`` built as ``Class(in_features, hidden, out_features, **params)``:
it maps ``(batch, in_features)`` to ``(batch, out_features)``, or, with ``out_features=None``, to a
latent of ``hidden[-1]`` that SB3's own heads read (PPO's and SAC's actors). ``hidden`` is SB3's
``net_arch``. An experiment names one in ``agent.policy_kwargs.network: {type: name, **params}``
(``type`` a name in ``NETWORKS`` or ``package.module:Class``); the network policies of
``agents.spiking_policies`` ask this registry for it. Members: ``mlp`` (below) and ``spiking``
(``neuro.snn.network``), ``cnn`` and ``spiking_cnn`` (``neuro.snn.conv``, for images: the policy passes them
``input_shape``); ``neuro.parts`` imports each member's module, which registers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError
from torch import nn

from neuro.registry import Registry, SpecError, constructor_signature, validation_message


class NetworkPart(nn.Module):
    """The interface of a network part; the hooks are what the network policies call.

    :ivar out_features: the size of its output (``hidden[-1]`` for a latent).
    :ivar readout_fan_out: for a latent, the outputs of the SB3 heads that read it (set by the
        policy, for parts that count their operations).
    :cvar settings_model: a pydantic model of the keyword settings a part takes through ``**settings``
        (the registry checks them with the spec); None when its signature names them all.
    """

    out_features: int
    readout_fan_out: int = 0
    settings_model: ClassVar[type[BaseModel] | None] = None

    def deciding(self, deterministic: bool = False) -> AbstractContextManager[Any]:
        """Wraps the policy's decisions (never its gradient updates): where a part counts its work
        or makes its noise a function of the input for a deterministic decision."""
        return nullcontext()

    def separate_target(self) -> None:
        """Called on a target network's copy once SB3 has loaded the online network's state into it
        (a part with a random generator gives its target a stream of its own)."""

    def take_counts(self) -> Any | None:
        """The operation counts of the decisions since the last call (``neuro.snn.SpikeCounts``), or
        None for a part that does not count; starts over."""
        return None

    def add_counts(self, counts: Any) -> None:
        """Put counts from ``take_counts`` back (a measurement in between leaves no trace)."""


class NetworkRegistry(Registry[NetworkPart]):
    """A ``Registry`` that also checks the ``**settings`` of a part that declares their model."""

    def split(self, spec: dict[str, Any] | None, given: dict[str, Any] | None = None
              ) -> tuple[type[NetworkPart], dict[str, Any]]:
        cls, params = super().split(spec, given)
        model = getattr(cls, "settings_model", None)
        if model is not None:
            named = {parameter.name for parameter in constructor_signature(cls)[0]}
            try:
                model.model_validate({key: value for key, value in params.items() if key not in named})
            except ValidationError as error:
                allowed = ", ".join(model.model_fields)
                raise SpecError("; ".join(
                    f"{self.where}.{'.'.join(str(part) for part in item['loc'])}: " + validation_message(
                        item, f"{spec.get('type') if spec else cls.__name__} takes no such parameter; "
                              f"allowed: {allowed}", "required parameter is missing", quote_checked_input=False)
                    for item in error.errors())) from None
        return cls, params


NETWORKS = NetworkRegistry("network", NetworkPart, where="agent.policy_kwargs.network")


@NETWORKS.register("mlp")
class MLP(NetworkPart):
    """SB3's MLP as a network part: ``Linear -> activation`` per hidden layer, then a linear head
    (none for a latent). Layer for layer what SB3's ``create_mlp`` builds; the ANN twin of a spiking
    network on the same plug point.

    :param activation: ``relu`` (SB3's DQN, SAC and TD3) or ``tanh`` (its PPO and A2C).
    :param init: ``torch`` (``nn.Linear``'s default, as SB3) or ``orthogonal`` (gain sqrt(2), zero bias,
        as ``agent.snn.init`` starts a spiking network's layers; the head keeps torch's default).
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                 activation: Literal["relu", "tanh"] = "relu", init: Literal["torch", "orthogonal"] = "torch") -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(n_in, n_out), nn.ReLU() if activation == "relu" else nn.Tanh()]
        initialise([layer for layer in layers if isinstance(layer, nn.Linear)], init)
        if out_features is not None:
            layers.append(nn.Linear(sizes[-1], out_features))
        self.net = nn.Sequential(*layers)
        self.out_features = sizes[-1] if out_features is None else out_features

    def forward(self, features: Any) -> Any:
        return self.net(features)


def initialise(layers: Iterable[nn.Linear | nn.Conv2d], init: str) -> None:
    """``orthogonal``: orthogonal weights with gain sqrt(2) and zero biases (Saxe et al. 2014; torch's
    default leaves deep spiking layers silent at threshold 0.5); ``torch``: ``nn.Linear``'s own default,
    as built. The spiking layers and an ANN twin's hidden layers take the same call."""
    if init not in ("orthogonal", "torch"):
        raise ValueError(f"init: 'orthogonal' or 'torch', got {init!r}")
    if init == "orthogonal":
        for layer in layers:
            nn.init.orthogonal_(layer.weight, gain=2**0.5)
            if layer.bias is not None:  # a convolution may have none
                nn.init.zeros_(layer.bias)
