"""Backpropamine: a recurrent layer whose recurrent weights change within an episode under a
neuromodulatory signal (the ``backpropamine`` network part).

A recurrent part is no stateless ``(batch, in) -> (batch, out)`` module: besides the ``NetworkPart``
interface it gives the recurrent policy (``agents.recurrent_policies``) three members:

- ``state_size``: how many floats one env's state takes (the activation, the Hebbian trace and, in
  ``retroactive`` mode, the eligibility trace, flattened; see ``BackpropamineLayer.state_size``);
- ``initial_state(batch)``: the state at an episode's start, ``(batch, state_size)`` of zeros;
- ``sequence(inputs, state, episode_starts, modulation=None)``: inputs ``(T, batch, in)``, state
  ``(batch, state_size)``, episode starts ``(T, batch)`` (1 where step t starts an episode: the state
  is reset before it), optional external modulation ``(T, batch)``; returns the outputs
  ``(T, batch, out)`` and the state after the last step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from neuro.networks import NETWORKS, NetworkPart
from neuro.registry import OpenInterval, Positive, validated

__all__ = ["BackpropamineLayer"]


@NETWORKS.register("backpropamine")
class BackpropamineLayer(NetworkPart):
    """A plastic recurrent layer with neuromodulated Hebbian traces (Miconi, Rawal, Clune & Stanley,
    ICLR 2019).

    Rule: ``x(t) = tanh(x(t-1) (W + A * Hebb(t)) + U o(t) + b)``; ``simple``:
    ``Hebb(t+1) = clip(Hebb(t) + M(t) x(t-1)^T x(t))``; ``retroactive``:
    ``E(t+1) = (1 - eta) E(t) + eta x(t-1)^T x(t)``, ``Hebb(t+1) = clip(Hebb(t) + M(t) E(t))``, clip to
    [-clip, clip]. Row vectors, as the paper's code: ``Hebb[i, j]`` is the trace of the connection from
    unit i (pre, at t-1) to unit j (post, at t). W, A, U, b, eta and the modulation head
    ``M(t) = tanh(w_M x(t) + b_M)`` are learned by backprop; x, Hebb and E are per-episode state.

    :param in_features: size of the input o(t).
    :param hidden: SB3's ``net_arch``: one size, that of the recurrent layer.
    :param out_features: a linear readout of x(t) of this size, or ``None`` for the latent x(t).
    :param mode: ``simple`` or ``retroactive`` neuromodulation (eligibility trace E).
    :param modulation: ``network`` (M(t) from the head) or ``dopamine`` (M(t) given to ``sequence``
        from outside: the agent's dopamine module's signal, a third factor).
    :param plastic: False is the same layer with A fixed at 0 and no traces (the non-plastic twin).
    :param clip: the traces' bound (the paper's 1).
    :param eta: the eligibility trace's initial rate (learned through a logit, so it stays in (0, 1)).
    :param alpha_init: A starts uniform in [0, alpha_init) (the paper: 0.01).
    """

    @validated
    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int | None,
                 mode: Literal["simple", "retroactive"] = "simple",
                 modulation: Literal["network", "dopamine"] = "network", plastic: bool = True,
                 clip: Annotated[float, Positive()] = 1.0, eta: Annotated[float, OpenInterval(0, 1)] = 0.1,
                 alpha_init: Annotated[float, OpenInterval(0, 1)] = 0.01) -> None:
        super().__init__()
        if len(hidden) != 1:
            raise ValueError(f"hidden: one recurrent layer size (net_arch: [32]), got {list(hidden)}")
        size = int(hidden[0])
        self.size, self.mode, self.modulation, self.plastic, self.clip = size, mode, modulation, plastic, clip
        self.input = nn.Linear(in_features, size)  # U, b
        self.w = nn.Parameter(torch.empty(size, size))
        nn.init.orthogonal_(self.w)  # a stable start for tanh recurrence (Saxe et al. 2014)
        if plastic:
            self.alpha = nn.Parameter(alpha_init * torch.rand(size, size))
            self.modulation_head = nn.Linear(size, 1)
            self.eta_logit = nn.Parameter(torch.tensor(math.log(eta / (1 - eta))))
        else:
            self.register_buffer("alpha", torch.zeros(size, size))  # not learned: the twin never becomes plastic
        self.readout = nn.Linear(size, out_features) if out_features is not None else None
        self.out_features = size if out_features is None else out_features
        self.recording = False  # set while the policy decides: ``stats`` covers decisions, not updates
        self._stats: dict[str, list[float]] = {}

    @property
    def traces(self) -> int:
        """How many (size x size) traces one env keeps: 0 (non-plastic), 1 (Hebb) or 2 (Hebb, E)."""
        return 0 if not self.plastic else 1 if self.mode == "simple" else 2

    @property
    def state_size(self) -> int:
        """Floats per env: x (size) + size^2 per trace (hidden 32, retroactive: 2080; simple: 1056)."""
        return self.size + self.traces * self.size * self.size

    @property
    def eta(self) -> Tensor:
        return torch.sigmoid(self.eta_logit)

    def initial_state(self, batch: int) -> Tensor:
        return torch.zeros(batch, self.state_size, device=self.w.device)

    def forward(self, features: Tensor) -> Tensor:
        """One step from the initial state (the stateless interface; the policy calls ``sequence``)."""
        outputs, _ = self.sequence(features.unsqueeze(0), self.initial_state(features.shape[0]),
                                   torch.zeros(1, features.shape[0], device=features.device))
        return outputs[0]

    def sequence(self, inputs: Tensor, state: Tensor, episode_starts: Tensor,
                 modulation: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run T steps; see the module docstring for the shapes."""
        if self.plastic and (modulation is None) == (self.modulation == "dopamine"):
            raise ValueError(f"modulation: the layer's modulation is {self.modulation!r}; an external signal "
                             "is given exactly when it is 'dopamine'")
        size, batch = self.size, state.shape[0]
        drive = self.input(inputs)  # U o(t) + b for all T at once
        x = state[:, :size]
        hebb = state[:, size:size + size * size].reshape(batch, size, size) if self.traces else None
        trace = state[:, size + size * size:].reshape(batch, size, size) if self.traces == 2 else None
        outputs = []
        for t in range(inputs.shape[0]):
            keep = (1.0 - episode_starts[t]).view(batch, 1)  # the initial state is zeros: reset = multiply
            x = x * keep
            recurrent = x @ self.w
            if hebb is not None:
                hebb = hebb * keep.view(batch, 1, 1)
                recurrent = recurrent + (x.unsqueeze(1) @ (self.alpha * hebb)).squeeze(1)
            x_new = torch.tanh(recurrent + drive[t])
            if hebb is not None:
                m = (modulation[t] if modulation is not None
                     else torch.tanh(self.modulation_head(x_new)).squeeze(-1)).view(batch, 1, 1)
                outer = x.unsqueeze(2) * x_new.unsqueeze(1)  # x(t-1)^T x(t): [pre, post]
                if trace is None:
                    update = m * outer
                else:
                    trace = trace * keep.view(batch, 1, 1)
                    update = m * trace  # Hebb(t+1) uses E(t): the eligibility before this step's pairing
                    trace = (1 - self.eta) * trace + self.eta * outer
                new_hebb = torch.clamp(hebb + update, -self.clip, self.clip)
                if self.recording:
                    self._record(new_hebb, new_hebb - hebb, m, trace)
                hebb = new_hebb
            x = x_new
            outputs.append(x)
        out = torch.stack(outputs)
        parts = [x] + [t.reshape(batch, -1) for t in (hebb, trace) if t is not None]
        new_state = torch.cat(parts, dim=1)
        return (self.readout(out) if self.readout is not None else out), new_state

    @torch.no_grad()
    def _record(self, hebb: Tensor, change: Tensor, m: Tensor, trace: Tensor | None) -> None:
        figures = {"hebb_norm": hebb.flatten(1).norm(dim=1).mean(), "modulation_mean": m.mean(),
                   "modulation_abs": m.abs().mean(),
                   # the plastic part of the weights moves by A * dHebb each step
                   "weight_change": (self.alpha * change).flatten(1).norm(dim=1).mean()}
        if trace is not None:
            figures["eligibility_norm"] = trace.flatten(1).norm(dim=1).mean()
        for key, value in figures.items():
            self._stats.setdefault(key, []).append(float(value))

    def stats(self) -> dict[str, float]:
        """Means over the steps recorded since the last call (trace norms per env, M, the plastic
        weight change per step ``|A * dHebb|``), the learned A's mean magnitude and eta; starts over."""
        figures = {key: sum(values) / len(values) for key, values in self._stats.items() if values}
        self._stats = {}
        figures["alpha_abs"] = float(self.alpha.detach().abs().mean())
        if self.plastic and self.mode == "retroactive":
            figures["eta"] = float(self.eta.detach())
        return figures
