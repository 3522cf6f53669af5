"""Leaky integrate-and-fire neurons run over all time steps of one forward pass.

snnTorch's ``Leaky`` steps one time step per call and keeps its state on the module; a policy
network runs T steps for every batch, layer after layer, so here one call integrates a whole
layer over T (the layer's input currents for all steps come from one matrix product beforehand).
The dynamics are snnTorch's ``Leaky`` exactly (reset from the previous step's spike, detached;
``tests/neuro/snn/test_neurons.py`` checks the two agree), and the spike's surrogate gradient is
snnTorch's ``fast_sigmoid``.
"""

from __future__ import annotations

from typing import Literal

import torch
from snntorch import surrogate
from torch import nn

ResetMechanism = Literal["subtract", "zero"]


class LIF(nn.Module):
    """A layer of leaky integrate-and-fire neurons (Gerstner & Kistler 2002; snnTorch's ``Leaky``).

    Rule: ``U[t] = beta U[t-1] + I[t] - S[t-1] theta`` (``subtract``; ``zero``: ``U[t] = beta (1 - S[t-1]) U[t-1]
    + I[t]``), ``S[t] = H(U[t] - theta)``, with ``dS/dU`` replaced by the fast-sigmoid surrogate
    ``1 / (1 + k |U - theta|)^2`` (Zenke & Ganguli 2018) so the layer trains by back-propagation through time.

    :param size: number of neurons.
    :param beta: membrane decay per step, in (0, 1]; 1 is a non-leaky integrate-and-fire neuron.
    :param threshold: firing threshold theta.
    :param surrogate_slope: the surrogate's slope k.
    :param learn_beta: learn one decay per neuron (kept in [0, 1] by clamping, as snnTorch does).
    :param reset: ``subtract`` the threshold after a spike, or reset the membrane to ``zero``.
    """

    def __init__(self, size: int, beta: float = 0.9, threshold: float = 1.0, surrogate_slope: float = 25.0,
                 learn_beta: bool = False, reset: ResetMechanism = "subtract") -> None:
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta: must be in (0, 1], got {beta}")
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset: must be 'subtract' or 'zero', got {reset!r}")
        self.size = size
        self.threshold = float(threshold)
        self.reset = reset
        self.learn_beta = learn_beta
        if learn_beta:
            self.beta = nn.Parameter(torch.full((size,), float(beta)))
        else:
            self.register_buffer("beta", torch.tensor(float(beta)), persistent=False)
        self.spike = surrogate.fast_sigmoid(slope=surrogate_slope)

    def forward(self, current: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        """Integrate ``current`` from a zero membrane; the spikes, ``(T, batch, size)``.

        :param current: input current, ``(T, batch, size)``, or ``(batch, size)`` held for ``timesteps`` steps.
        """
        spikes, _ = self._integrate(current, timesteps, keep_membrane=False)
        return spikes

    def trajectory(self, current: torch.Tensor, timesteps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``forward``, with the membrane potentials too: spikes and membranes, both ``(T, batch, size)``."""
        spikes, membranes = self._integrate(current, timesteps, keep_membrane=True)
        return spikes, torch.stack(membranes)

    def _integrate(self, current: torch.Tensor, timesteps: int | None,
                   keep_membrane: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        constant = current.dim() == 2
        steps = timesteps if constant else current.shape[0]
        if steps is None:
            raise ValueError("timesteps: required for a constant current")
        beta = self.beta.clamp(0.0, 1.0)
        membrane = torch.zeros_like(current if constant else current[0])
        previous_spike = torch.zeros_like(membrane)
        spikes, membranes = [], []
        for step in range(steps):
            step_current = current if constant else current[step]
            if self.reset == "subtract":
                membrane = beta * membrane + step_current - previous_spike * self.threshold
            else:
                membrane = beta * (1.0 - previous_spike) * membrane + step_current
            spike = self.spike(membrane - self.threshold)
            previous_spike = spike.detach()  # snnTorch's reset carries no gradient
            spikes.append(spike)
            if keep_membrane:  # only on request: stacking them costs a copy and a backward node per pass
                membranes.append(membrane)
        return torch.stack(spikes), membranes
