"""LIF neurons against closed forms for a constant input, against snnTorch's ``Leaky``, and their
surrogate gradient against its formula."""

import math

import pytest
import snntorch
import torch
from snntorch import surrogate

from neuro.snn.neurons import LIF


def run(current: float, steps: int, **lif_args: object) -> tuple[torch.Tensor, torch.Tensor]:
    spikes, membranes = LIF(1, **lif_args).trajectory(torch.full((1, 1), current), timesteps=steps)
    return spikes.flatten(), membranes.flatten()


def spike_steps(spikes: torch.Tensor) -> list[int]:
    """1-based steps at which the neuron fired."""
    return [int(step) + 1 for step in torch.nonzero(spikes).flatten()]


@pytest.mark.parametrize(("current", "beta", "threshold"), [(0.3, 0.9, 1.0), (0.45, 0.8, 1.0), (0.2, 0.95, 0.5)])
def test_leaky_membrane_follows_the_geometric_sum_until_the_first_spike(current, beta, threshold):
    # U[t] = I (1 - beta^t) / (1 - beta) from U[0] = 0; the first spike is at the first t where this
    # exceeds the threshold: t* = ceil(log(1 - theta (1 - beta) / I) / log(beta)).
    first_spike = math.ceil(math.log(1 - threshold * (1 - beta) / current) / math.log(beta))
    spikes, membranes = run(current, first_spike + 3, beta=beta, threshold=threshold)
    steps = torch.arange(1, first_spike + 1, dtype=torch.float64)
    expected = current * (1 - beta**steps) / (1 - beta)
    assert torch.allclose(membranes[:first_spike].double(), expected, rtol=1e-5)
    assert spike_steps(spikes)[0] == first_spike
    assert spikes[: first_spike - 1].sum() == 0


def test_integrate_and_fire_with_subtractive_reset_fires_at_the_known_steps():
    # beta = 1: U[t] = t I - theta N(t-1), so the k-th spike falls at t_k = floor(k theta / I) + 1.
    current, threshold, steps = 0.35, 1.0, 19
    spikes, _ = run(current, steps, beta=1.0, threshold=threshold)
    expected = [math.floor(k * threshold / current) + 1 for k in range(1, 7)]
    assert expected == [3, 6, 9, 12, 15, 18]
    assert spike_steps(spikes) == expected


def test_zero_reset_makes_the_leaky_neuron_periodic_with_the_first_spike_time():
    # After a spike the membrane restarts from zero, so spikes repeat every t* steps.
    current, beta, threshold = 0.3, 0.9, 1.0
    first_spike = math.ceil(math.log(1 - threshold * (1 - beta) / current) / math.log(beta))
    spikes, _ = run(current, 4 * first_spike, beta=beta, threshold=threshold, reset="zero")
    assert spike_steps(spikes) == [first_spike * k for k in range(1, 5)]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("learn_beta", [False, True])
def test_matches_snntorch_leaky_step_by_step(reset, learn_beta):
    torch.manual_seed(0)
    steps, batch, size = 12, 5, 7
    current = torch.randn(steps, batch, size) * 0.8
    ours = LIF(size, beta=0.85, threshold=0.7, surrogate_slope=25.0, learn_beta=learn_beta, reset=reset)
    reference = snntorch.Leaky(beta=torch.full((size,), 0.85) if learn_beta else 0.85, threshold=0.7,
                               spike_grad=surrogate.fast_sigmoid(slope=25.0), reset_mechanism=reset)
    input_ours = current.clone().requires_grad_(True)
    input_reference = current.clone().requires_grad_(True)
    spikes, membranes = ours.trajectory(input_ours)
    membrane = reference.init_leaky()
    reference_spikes, reference_membranes = [], []
    for step in range(steps):
        spike, membrane = reference(input_reference[step], membrane)
        reference_spikes.append(spike)
        reference_membranes.append(membrane)
    reference_spikes, reference_membranes = torch.stack(reference_spikes), torch.stack(reference_membranes)
    assert torch.equal(spikes, reference_spikes)
    assert torch.allclose(membranes, reference_membranes, atol=1e-6)
    assert 0 < spikes.mean() < 1  # the comparison covers both firing and silent steps
    weights = torch.randn(steps, batch, size)
    ((spikes * weights).sum() + membranes.sum()).backward()
    ((reference_spikes * weights).sum() + reference_membranes.sum()).backward()
    assert torch.allclose(input_ours.grad, input_reference.grad, atol=1e-5)


def test_surrogate_gradient_is_the_fast_sigmoid_derivative():
    # One step from rest: S = H(I - theta), dS/dI = 1 / (1 + k |I - theta|)^2 (Zenke & Ganguli 2018).
    slope, threshold = 25.0, 0.5
    current = torch.tensor([[0.1, 0.45, 0.5, 0.7, 2.0]], requires_grad=True)
    spikes = LIF(5, threshold=threshold, surrogate_slope=slope)(current, timesteps=1)
    spikes.sum().backward()
    expected = 1.0 / (1.0 + slope * (current.detach() - threshold).abs()) ** 2
    assert torch.allclose(current.grad, expected)
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # H(0) = 0: firing needs U > theta


def test_learnable_decay_receives_a_gradient_and_is_clamped():
    lif = LIF(3, beta=0.9, learn_beta=True)
    spikes, membranes = lif.trajectory(torch.full((4, 3), 0.3), timesteps=6)
    (spikes.sum() + membranes.sum()).backward()
    assert lif.beta.grad is not None and torch.all(lif.beta.grad.abs() > 0)
    with torch.no_grad():
        lif.beta.fill_(1.7)  # outside (0, 1]: used as 1, as snnTorch clamps
    _, clamped = lif.trajectory(torch.full((1, 3), 0.3), timesteps=3)
    assert torch.allclose(clamped[:, 0, 0], torch.tensor([0.3, 0.6, 0.9]))


@pytest.mark.parametrize(("field", "value"), [("beta", 0.0), ("beta", 1.5), ("reset", "none")])
def test_bad_parameters_are_refused_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        LIF(2, **{field: value})
