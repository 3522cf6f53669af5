"""Encoders: Poisson rates against their intensities, population receptive fields against the range
they must cover, the population neurons' spike counts against the integrate-and-fire closed form."""

import math

import pytest
import torch

from neuro.registry import SpecError
from neuro.snn.encoders import ENCODERS, DirectEncoder, PoissonEncoder, PopulationEncoder


def test_poisson_rates_match_the_input_intensities():
    torch.manual_seed(0)
    features = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0, -0.3, 1.7, -1.2]])
    steps = 20_000
    spikes = PoissonEncoder(8)(features, steps)
    assert spikes.shape == (steps, 1, 16)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    rates = spikes.mean(dim=0).flatten()
    on = features.flatten().clamp(0, 1)
    off = (-features.flatten()).clamp(0, 1)
    expected = torch.cat([on, off])
    # A Bernoulli rate's standard error is sqrt(p (1 - p) / T); 5 of them bound every channel here
    # with probability above 1 - 1e-5, and rates 0 and 1 are exact.
    tolerance = 5 * torch.sqrt(expected * (1 - expected) / steps)
    assert torch.all((rates - expected).abs() <= tolerance)
    assert rates[0] == 0 and rates[4] == 1 and rates[6] == 1  # 1.7 saturates at 1


def test_population_fields_cover_the_input_range():
    encoder = PopulationEncoder(3, population_size=7, low=-2.0, high=2.0)
    grid = torch.linspace(-2.0, 2.0, 401)
    activation = encoder.activation(grid.unsqueeze(1).expand(-1, 3)).view(401, 3, 7)
    best = activation.max(dim=2).values
    # Neighbouring centres are one spacing apart and sigma is that spacing, so the worst point (halfway)
    # sees exp(-(1/2)^2 / 2) = exp(-1/8).
    assert torch.all(best >= math.exp(-1 / 8) - 1e-6)
    assert torch.isclose(best.min(), torch.tensor(math.exp(-1 / 8)), atol=1e-4)
    assert torch.allclose(encoder.mean[0, [0, -1]], torch.tensor([-2.0, 2.0]))
    centre_hits = activation[torch.tensor([0, 400])].max(dim=2).values
    assert torch.allclose(centre_hits, torch.ones(2, 3))


@pytest.mark.parametrize(("activation", "steps"), [(1.0, 6), (0.5, 8), (0.3, 20)])
def test_population_neurons_fire_at_the_integrate_and_fire_rate(activation, steps):
    # The encoding neurons integrate A with no leak and threshold 0.999 (PopSAN): spike k falls at
    # floor(0.999 k / A) + 1, so a neuron at its field's centre fires at every step.
    encoder = PopulationEncoder(1, population_size=2, low=0.0, high=1.0)
    with torch.no_grad():
        encoder.mean.fill_(0.0)
        encoder.std.fill_(1.0)
    x = torch.tensor([[math.sqrt(-2 * math.log(activation))]])  # exp(-x^2 / 2) = activation
    spikes = encoder(x, steps)[:, 0, 0]
    expected_steps = [math.floor(0.999 * k / activation) + 1 for k in range(1, steps + 1)]
    expected = [step for step in expected_steps if step <= steps]
    assert [int(i) + 1 for i in torch.nonzero(spikes).flatten()] == expected


def test_population_fields_learn_through_the_spikes():
    encoder = PopulationEncoder(2, population_size=5)
    spikes = encoder(torch.tensor([[0.3, -0.6], [0.9, 0.1]]), 5)
    (spikes * torch.randn_like(spikes)).sum().backward()
    assert encoder.mean.grad.abs().sum() > 0 and encoder.std.grad.abs().sum() > 0
    assert torch.isfinite(encoder.mean.grad).all() and torch.isfinite(encoder.std.grad).all()


def test_direct_encoder_passes_the_current_through():
    features = torch.randn(4, 3)
    assert DirectEncoder(3)(features, 5) is features and not DirectEncoder.spiking


def test_registry_checks_encoder_specs_by_their_config_path():
    assert isinstance(ENCODERS.make({"type": "population", "population_size": 4}, in_features=2), PopulationEncoder)
    with pytest.raises(SpecError, match=r"agent\.snn\.encoder\.type: unknown encoder type 'rate'; allowed: direct"):
        ENCODERS.check({"type": "rate"}, given={"in_features": 1})
    with pytest.raises(SpecError, match=r"agent\.snn\.encoder\.high: must be > low"):
        ENCODERS.check({"type": "population", "low": 1.0, "high": 0.0}, given={"in_features": 1})
    with pytest.raises(SpecError, match=r"agent\.snn\.encoder\.width: population takes no such parameter"):
        ENCODERS.check({"type": "population", "width": 3}, given={"in_features": 1})


def test_poisson_draws_leave_the_global_generator_alone():
    # Decisions must not move the run's other random streams (SB3's sampling, the twin's exploration).
    torch.manual_seed(3)
    encoder = PoissonEncoder(4)
    expected = torch.rand(5)
    torch.manual_seed(3)
    encoder = PoissonEncoder(4)
    encoder(torch.full((2, 4), 0.5), 8)
    assert torch.equal(torch.rand(5), expected)


def test_poisson_same_seed_same_spikes_and_frozen_noise_repeats():
    features = torch.rand(16, 6) * 2 - 1
    torch.manual_seed(7)  # the run's seed: the encoder's default seed derives from it
    first = PoissonEncoder(6)
    torch.manual_seed(7)
    second = PoissonEncoder(6)
    assert torch.equal(first(features, 5), second(features, 5))
    assert not torch.equal(first(features, 5), first(features, 5))  # a stream: training's noise moves on
    with first.frozen():
        frozen = first(features, 5)
        assert torch.equal(first(features, 5), frozen)  # a deterministic decision: the same spikes each call
    torch.manual_seed(8)
    assert not torch.equal(PoissonEncoder(6)(features, 5), PoissonEncoder(6, seed=first.seed)(features, 5))


def test_poisson_generator_state_travels_with_the_state_dict():
    features = torch.full((3, 4), 0.5)
    encoder = PoissonEncoder(4, seed=11)
    encoder(features, 7)  # advance the stream, as training does
    state = encoder.state_dict()
    expected = encoder(features, 7)
    resumed = PoissonEncoder(4, seed=99)
    resumed.load_state_dict(state)
    assert resumed.seed == 11 and torch.equal(resumed(features, 7), expected)
    # A network saved before the generator existed has no extra state: it still loads (strict), fresh.
    old = PoissonEncoder(4, seed=5)
    old.load_state_dict({}, strict=True)
    assert torch.equal(old(features, 7), PoissonEncoder(4, seed=5)(features, 7))
