"""Three-factor plasticity of spiking layers: reward-modulated STDP (R-STDP).

A synapse's weight moves by learning rate x dopamine x eligibility (Izhikevich 2007; Fremaux &
Gerstner 2016): pre- and post-synaptic spike timing marks the synapse through an STDP window, the
mark (the eligibility trace) fades over a time constant much longer than the window, and a third
factor arriving later (the agent's dopamine module's signal) turns what is left of it into a weight
change. A rule is an ``nn.Module`` whose traces are buffers: they are saved with the network's state
dict (a resumed run continues from them) and are per row of the batch (one row per env), reset at an
episode's start. Plain torch; the agents drive it (``agents.plasticity``).

``PLASTICITY_RULES`` maps ``agent.snn.plasticity.type`` to a rule; a user's own rule loads by dotted
path and provides ``PlasticityRule.interface``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from neuro.registry import Positive, Registry, validated

__all__ = ["PLASTICITY_RULES", "PlasticityRule", "RewardSTDP"]


class PlasticityRule(nn.Module):
    """A three-factor rule of one synapse matrix (``n_post x n_pre``, as ``nn.Linear.weight``).

    ``step``/``run`` see the spikes and update the traces; ``update`` applies the third factor to a
    weight; ``reset`` clears the traces of the rows whose episode starts; ``operations`` counts the
    synapse and trace updates made (for the energy estimate, ``neuro.snn.network.SpikeCounts``).
    """

    interface: ClassVar[tuple[str, ...]] = ("step", "run", "update", "reset", "stats", "take_operations",
                                            "add_operations")

    def step(self, pre: Tensor, post: Tensor) -> None:
        raise NotImplementedError

    def run(self, pre: Tensor, post: Tensor) -> None:
        """``step`` over the first axis of ``(T, batch, n)`` spike trains."""
        for pre_t, post_t in zip(pre, post, strict=True):
            self.step(pre_t, post_t)

    def update(self, weight: Tensor, dopamine: Tensor | float) -> Tensor:
        raise NotImplementedError

    def reset(self, rows: Tensor | None = None) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, float]:
        return {}

    def take_operations(self) -> int:
        return 0

    def add_operations(self, operations: int) -> None:
        """Put operations taken out back (a measurement in between leaves no trace)."""


PLASTICITY_RULES: Registry[PlasticityRule] = Registry("plasticity", PlasticityRule, default="rstdp",
                                                      where="agent.snn.plasticity")

_TRACES = ("pre_trace", "post_trace", "eligibility")


@PLASTICITY_RULES.register("rstdp")
class RewardSTDP(PlasticityRule):
    """Reward-modulated STDP with an eligibility trace per synapse (Izhikevich 2007, Cerebral Cortex
    17:2443; Fremaux & Gerstner 2016, Front. Neural Circuits 9:85).

    Rule: ``x_pre <- x_pre e^(-dt/tau_plus) + S_pre``, ``x_post <- x_post e^(-dt/tau_minus) + S_post`` (after the
    step's STDP), ``STDP = a_plus x_pre S_post^T - a_minus S_pre x_post^T``, ``c <- c e^(-dt/tau_eligibility) +
    STDP``, ``dw = learning_rate x dopamine x c``.

    Within one step the pre trace holds that step's pre spike and the post trace does not: a layer's
    spike reaches the next layer in the same simulation step, so pre and post in one step is a causal
    pair (potentiation, delay 0) and a post spike only depresses pre spikes that come strictly after it.
    So a pre spike at ``t_i`` and a post spike at ``t_j`` add ``a_plus e^(-(t_j - t_i)/tau_plus)`` if
    ``t_j >= t_i``, else ``-a_minus e^(-(t_i - t_j)/tau_minus)``, to ``c`` at ``max(t_i, t_j)``, which then
    decays with ``tau_eligibility``. A non-spiking input (a held current) enters as its value per step.

    :param n_pre: pre-synaptic neurons (the weight's columns).
    :param n_post: post-synaptic neurons (its rows).
    :param learning_rate: the weight change per unit of dopamine x eligibility.
    :param a_plus: potentiation amplitude (pre before post).
    :param a_minus: depression amplitude (post before pre; Izhikevich 2007: 1.5 a_plus).
    :param tau_plus: decay of the pre trace, in simulation steps (``dt`` units).
    :param tau_minus: decay of the post trace.
    :param tau_eligibility: decay of the eligibility trace (Izhikevich 2007: 1 s against a 20 ms window).
    :param dt: length of one simulation step in the units of the time constants.
    :param weight_bound: clip the weights to ``[-weight_bound, weight_bound]`` after each update (None: no clip).
    """

    pre_trace: Tensor
    post_trace: Tensor
    eligibility: Tensor

    @validated
    def __init__(self, n_pre: Annotated[int, Field(ge=1)], n_post: Annotated[int, Field(ge=1)],
                 learning_rate: Annotated[float, Field(ge=0.0)] = 1e-3,
                 a_plus: Annotated[float, Field(ge=0.0)] = 1.0, a_minus: Annotated[float, Field(ge=0.0)] = 1.0,
                 tau_plus: Annotated[float, Positive()] = 5.0, tau_minus: Annotated[float, Positive()] = 5.0,
                 tau_eligibility: Annotated[float, Positive()] = 25.0, dt: Annotated[float, Positive()] = 1.0,
                 weight_bound: Annotated[float, Positive()] | None = None) -> None:
        super().__init__()
        self.n_pre, self.n_post = n_pre, n_post
        self.learning_rate, self.a_plus, self.a_minus = learning_rate, a_plus, a_minus
        self.tau_plus, self.tau_minus, self.tau_eligibility, self.dt = tau_plus, tau_minus, tau_eligibility, dt
        self.weight_bound = weight_bound
        self.decay_pre = math.exp(-dt / tau_plus)
        self.decay_post = math.exp(-dt / tau_minus)
        self.decay_eligibility = math.exp(-dt / tau_eligibility)
        # Batch size 0 until the first step: the rows are the envs, which the network does not know.
        self.register_buffer("pre_trace", torch.zeros(0, n_pre))
        self.register_buffer("post_trace", torch.zeros(0, n_post))
        self.register_buffer("eligibility", torch.zeros(0, n_post, n_pre))
        self._operations = 0
        self._last: dict[str, float] = {}

    def _rows(self, pre: Tensor) -> None:
        rows = pre.shape[0]
        if self.eligibility.shape[0] == rows:
            return
        if self.eligibility.shape[0]:
            raise ValueError(f"RewardSTDP: traces kept for {self.eligibility.shape[0]} rows (envs), got {rows}; "
                             "reset(None) first to start over")
        self.pre_trace = pre.new_zeros(rows, self.n_pre)
        self.post_trace = pre.new_zeros(rows, self.n_post)
        self.eligibility = pre.new_zeros(rows, self.n_post, self.n_pre)

    @torch.no_grad()
    def step(self, pre: Tensor, post: Tensor) -> None:
        """One simulation step: ``pre`` (batch, n_pre) and ``post`` (batch, n_post) spikes."""
        self._rows(pre)
        pre, post = pre.to(self.pre_trace.dtype), post.to(self.pre_trace.dtype)
        self.pre_trace.mul_(self.decay_pre).add_(pre)  # includes this step's pre spike: delay 0 is causal
        self.post_trace.mul_(self.decay_post)  # excludes this step's post spike
        stdp = self.a_plus * post.unsqueeze(2) * self.pre_trace.unsqueeze(1) \
            - self.a_minus * self.post_trace.unsqueeze(2) * pre.unsqueeze(1)
        self.eligibility.mul_(self.decay_eligibility).add_(stdp)
        self.post_trace.add_(post)
        rows = pre.shape[0]
        self._operations += rows * (self.n_pre * self.n_post + self.n_pre + self.n_post)

    @torch.no_grad()
    def update(self, weight: Tensor, dopamine: Tensor | float) -> Tensor:
        """``weight += learning_rate x dopamine x c`` in place; returns the change.

        :param weight: ``(n_post, n_pre)``, shared by the rows (the envs): its change is the mean over rows
            of ``dopamine_row x c_row``; or ``(batch, n_post, n_pre)``, one independent weight per row.
        :param dopamine: one signal, or one per row, ``(batch,)``.
        """
        signal = torch.as_tensor(dopamine, dtype=self.eligibility.dtype, device=self.eligibility.device)
        if self.eligibility.shape[0] == 0:  # no spikes seen yet: nothing is eligible
            change = torch.zeros_like(weight)
        else:
            modulated = self.eligibility * (signal.reshape(-1, 1, 1) if signal.dim() else signal)
            change = self.learning_rate * (modulated if weight.dim() == 3 else modulated.mean(dim=0))
        weight.add_(change.to(weight.dtype))
        if self.weight_bound is not None:
            weight.clamp_(-self.weight_bound, self.weight_bound)
        self._operations += weight.numel()
        self._last = {"dopamine": float(signal.float().mean()), "weight_change": float(change.norm())}
        return change

    @torch.no_grad()
    def reset(self, rows: Tensor | None = None) -> None:
        """Clear the traces of ``rows`` (a boolean mask over the batch: the envs whose episode starts),
        or forget the batch altogether (None)."""
        if rows is None:
            for name in _TRACES:
                setattr(self, name, getattr(self, name)[:0].clone())
            return
        if self.eligibility.shape[0] == 0:
            return
        keep = (~torch.as_tensor(rows, dtype=torch.bool, device=self.eligibility.device)).to(self.eligibility.dtype)
        self.pre_trace.mul_(keep.unsqueeze(1))
        self.post_trace.mul_(keep.unsqueeze(1))
        self.eligibility.mul_(keep.reshape(-1, 1, 1))

    def stats(self) -> dict[str, float]:
        """The traces' norms (per row, averaged over the rows) and the last update's dopamine and change."""
        if self.eligibility.shape[0] == 0:
            return dict(self._last)
        return {"eligibility_norm": float(self.eligibility.flatten(1).norm(dim=1).mean()),
                "pre_trace_norm": float(self.pre_trace.norm(dim=1).mean()),
                "post_trace_norm": float(self.post_trace.norm(dim=1).mean()), **self._last}

    def take_operations(self) -> int:
        """Synapse and trace updates since the last call: per step and row, every synapse's eligibility and
        every pre and post trace (one multiply-add each); per ``update``, every weight (one multiply-add)."""
        operations, self._operations = self._operations, 0
        return operations

    def add_operations(self, operations: int) -> None:
        self._operations += operations

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # The traces' batch size is the saved run's number of envs: take the saved shape.
        for name in _TRACES:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, getattr(self, name).new_empty(saved.shape))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (f"n_pre={self.n_pre}, n_post={self.n_post}, learning_rate={self.learning_rate}, a_plus={self.a_plus}, "
                f"a_minus={self.a_minus}, tau_plus={self.tau_plus}, tau_minus={self.tau_minus}, "
                f"tau_eligibility={self.tau_eligibility}, dt={self.dt}")
