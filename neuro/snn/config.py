"""``agent.snn``: the settings of a spiking policy, checked without importing torch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from neuro.registry import HalfOpenInterval, SpecError

# Energy per operation at 45 nm (Horowitz, ISSCC 2014): a 32-bit float multiply-accumulate costs
# 4.6 pJ (3.7 multiply + 0.9 add); a synaptic operation (a spike reaching one synapse) is one add.
# A neuron update (one membrane per time step) is a leak and an integration, U = beta U + I: one
# multiply and one add, 4.6 pJ, charged alike to LIF layers, the population encoder's neurons and the
# non-spiking readout membranes; the threshold comparison and the reset are left out (as the ANN's
# ReLU is). The compute estimate ignores memory traffic, which dominates on real hardware; the optional
# memory term charges one 32-bit weight read per SOP or MAC from a 1 MB SRAM (Horowitz: 100 pJ per
# 64-bit word, so 50 pJ per weight), and still ignores membrane, activation and DRAM traffic.
MAC_ENERGY_PJ = 4.6
SOP_ENERGY_PJ = 0.9
NEURON_UPDATE_ENERGY_PJ = 4.6
WEIGHT_READ_ENERGY_PJ = 50.0
ENERGY_CAVEAT = ("45 nm compute only (Horowitz 2014): 4.6 pJ/MAC, 0.9 pJ/SOP, 4.6 pJ/neuron update "
                 "(leak multiply + integrate add), 4.6 pJ/plasticity update (trace, eligibility or weight); "
                 "memory traffic ignored")
MEMORY_CAVEAT = ("with memory: + 50 pJ per weight read (one per SOP or MAC, 1 MB SRAM, Horowitz 2014); "
                 "membrane, activation and DRAM traffic still ignored")


# A plasticity operation (one synapse's eligibility c = c decay + STDP, one pre or post trace x = x decay + S,
# or one weight w += lr DA c) is a multiply and an add: charged as a MAC, 4.6 pJ (Horowitz 2014).
PLASTICITY_OP_ENERGY_PJ = 4.6

MAX_TIMESTEPS = 1000  # simulation steps per forward pass: every decision costs T layer passes


class PlasticitySettings(BaseModel):
    """``agent.snn.plasticity``: which layers learn online by a three-factor rule, and the rule.

    :param type: the rule (``rstdp``: ``neuro.snn.plasticity.RewardSTDP``) or a dotted path.
    :param layers: ``readout``: a spiking output layer (one LIF neuron per action) learned by the rule on
        top of hidden layers trained by surrogate gradients; ``all``: every layer learned by the rule,
        no backprop in the network.
    :param logit_gain: the actions' logits are ``logit_gain`` x the output neurons' firing rates.

    The rule's own parameters (``learning_rate``, ``a_plus``, ``a_minus``, ``tau_plus``, ``tau_minus``,
    ``tau_eligibility``, ...) sit beside these and are checked against the rule's signature.
    """

    model_config = ConfigDict(extra="allow")

    type: str = "rstdp"
    layers: Literal["readout", "all"] = "readout"
    logit_gain: PositiveFloat = 5.0

    @model_validator(mode="after")
    def _known_rule(self) -> PlasticitySettings:
        from neuro.snn.plasticity import PLASTICITY_RULES  # torch: imported only when a plasticity section is checked

        try:
            PLASTICITY_RULES.check(self.rule_spec(), given={"n_pre": 1, "n_post": 1})
        except SpecError as error:
            raise ValueError(str(error).removeprefix("agent.snn.plasticity").lstrip(".: ") or str(error)) from None
        return self

    def rule_spec(self) -> dict[str, Any]:
        """The rule's spec for ``PLASTICITY_RULES``: its type and its own parameters."""
        return {"type": self.type, **(self.model_extra or {})}


class SnnConfig(BaseModel):
    """``agent.snn``: how a spiking policy's networks are built (the layer sizes are SB3's ``net_arch``).

    :param timesteps: simulation steps T per forward pass.
    :param encoder: ``direct``, ``poisson``, ``population`` or a dotted path, or ``{type: ..., **params}``.
    :param neurons: the neuron model (``lif``: leaky integrate-and-fire, ``neuro.snn.neurons.LIF``).
    :param beta: membrane decay per step, (0, 1].
    :param threshold: firing threshold (0.5 as PopSAN; with the orthogonal init the layers start
        at firing rates of about 0.1-0.25 on inputs in [-1, 1]).
    :param surrogate_slope: slope of the fast-sigmoid surrogate gradient.
    :param learn_beta: learn one decay per neuron.
    :param reset: ``subtract`` the threshold after a spike, or reset to ``zero``.
    :param readout_decay: decay of the non-spiking readout membrane; 1 reads the firing rates (PopSAN's
        decoder), below 1 weights late steps more (DSQN's leaky output membrane, normalised).
    :param critic: PPO/A2C only: the value network ``ann`` (default) or ``spiking`` as well.
    :param init: the spiking layers' initialisation: ``orthogonal`` (gain sqrt(2), zero bias: the layers
        fire from the start) or ``torch`` (PyTorch's ``nn.Linear`` default, as SB3's DQN and SAC
        networks). An ANN twin takes the same choice through ``agents.spiking_policies``' twin policies.
    :param convolutions: for image observations: ``[out_channels, kernel, stride]`` per convolution makes the
        network a spiking CNN (``neuro.snn.conv.SpikingCNN``, the ``spiking_cnn`` part; NatureCNN's:
        ``[[32, 8, 4], [64, 4, 2], [64, 3, 1]]``) ahead of the ``net_arch`` layers; None: the spiking MLP.
    :param plasticity: layers learned online by a three-factor rule (``PlasticitySettings``), or None.
    """

    model_config = ConfigDict(extra="forbid")

    timesteps: Annotated[int, Field(ge=1, le=MAX_TIMESTEPS)] = 5
    encoder: str | dict[str, Any] = "direct"
    neurons: Literal["lif"] = "lif"
    beta: Annotated[float, HalfOpenInterval(0.0, 1.0)] = 0.9
    threshold: PositiveFloat = 0.5
    surrogate_slope: PositiveFloat = 25.0
    learn_beta: bool = False
    reset: Literal["subtract", "zero"] = "subtract"
    readout_decay: Annotated[float, HalfOpenInterval(0.0, 1.0)] = 1.0
    critic: Literal["ann", "spiking"] = "ann"
    init: Literal["orthogonal", "torch"] = "orthogonal"
    convolutions: list[tuple[PositiveInt, PositiveInt, PositiveInt]] | None = None
    plasticity: PlasticitySettings | None = None

    @model_validator(mode="after")
    def _plastic_convolutions(self) -> SnnConfig:
        if self.convolutions is not None and self.plasticity is not None and self.plasticity.layers != "readout":
            raise ValueError("plasticity.layers: a spiking CNN (convolutions) learns its readout alone by the rule; "
                             f"allowed: readout (got {self.plasticity.layers!r})")
        return self

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, encoder: str | dict[str, Any]) -> str | dict[str, Any]:
        from neuro.snn.encoders import ENCODERS  # torch: imported only when an snn section is checked

        try:
            ENCODERS.check(encoder_spec(encoder), given={"in_features": 1})
        except SpecError as error:  # pydantic adds the field path; keep the registry's own words
            raise ValueError(str(error).removeprefix("agent.snn.encoder").lstrip(".: ") or str(error)) from None
        return encoder


def encoder_spec(encoder: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": encoder} if isinstance(encoder, str) else dict(encoder)
