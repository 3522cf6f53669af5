"""Saved state from older versions still loads (``neuro.migrations``): real pickles of parts whose
state is an old one, and a whole model saved before the parts were grouped under ``neuro``."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from neuro.dopamine import AsymmetricTD, BiasedSaturatingTD, DistributionalTD, SaturatingTD, StandardTD
from neuro.migrations import acting_weights_of_channel, grouped_parts
from neuro.modulation import VolatilityLearningRate


def old_pickle(cls: type, state: dict) -> bytes:
    """The bytes an older version wrote for an instance of ``cls`` whose ``__dict__`` was ``state``."""
    part = cls.__new__(cls)
    part.__dict__.update(state)  # as the old version held it; pickle writes __dict__
    return pickle.dumps(part)


def test_old_dopamine_modules_load_with_the_rule_they_ran():
    standard = pickle.loads(old_pickle(StandardTD, {}))
    assert type(standard) is StandardTD and standard.loss == "huber"  # SB3's loss, which it ran
    asymmetric = pickle.loads(old_pickle(AsymmetricTD, {"kappa": 0.4}))
    assert (asymmetric.gain_positive, asymmetric.gain_negative, asymmetric.loss) == (0.6, 1.4, "squared")
    saturating = pickle.loads(old_pickle(SaturatingTD, {"compression": 0.2, "ceiling": 1.0}))
    assert type(saturating) is BiasedSaturatingTD and saturating.loss == "squared"
    # It learns on the compressed signal, as the old saturating module did: 0.2 * -1, min(3, 1).
    assert torch.equal(saturating.transform(torch.tensor([-1.0, 3.0])), torch.tensor([-0.2, 1.0]))


def test_an_old_distributional_module_acts_on_its_median_channel_and_its_codes_loss():
    taus = [0.1, 0.5, 0.9]
    old = {"taus": taus, "code": "quantile", "n_channels": 3, "acting_channel": 1,
           "_gain_positive": 2 * torch.tensor(taus), "_gain_negative": 2 * (1 - torch.tensor(taus)),
           "_last_values": None}
    quantile = pickle.loads(old_pickle(DistributionalTD, old))
    assert quantile.acting_weights == (0.0, 1.0, 0.0) and quantile.loss == "absolute"
    assert not hasattr(quantile, "acting_channel")
    with pytest.warns(UserWarning, match="per-pair Huber loss now learns with squared"):
        expectile = pickle.loads(old_pickle(DistributionalTD, {**old, "code": "expectile", "acting": "mean",
                                                               "acting_weights": (0.0, 1.0, 0.0), "loss": "huber"}))
    assert expectile.loss == "squared"


def test_an_old_volatility_modulator_starts_its_own_filter_level_with_the_learner():
    old = {"process_noise": None, "observation_noise": None, "memory": 1000, "adaptation": 0.01,
           "gain_ref": None, "lo": 0.2, "hi": 5.0, "_posterior_variance": 0.05, "_log_ratio": 3.0,
           "_mean_square": 1.2, "_previous_error": 0.4, "_gain": 0.9, "_gain_average": 0.8}
    modulator = pickle.loads(old_pickle(VolatilityLearningRate, old))
    assert (modulator._lag, modulator._pending_error, modulator._applied_rate) == (0.0, 0.0, 0.0)
    assert modulator._gain == 0.9  # the rest as saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0.2 * 1e-3 <= modulator.value(1e-3, 1.0) <= 5.0 * 1e-3


def test_agent_state_of_older_versions():
    attributes = {"dopamine": "saved module", "gamma": 0.9}
    assert grouped_parts(attributes, {"learning_rate": "lr"}) == {"learning_rate": "lr", "dopamine": "saved module"}
    assert attributes == {"gamma": 0.9}  # removed from the instance dict, where it would hide the property
    assert grouped_parts({}, {"dopamine": "new"}) == {"dopamine": "new"}
    assert acting_weights_of_channel(3, 2) == (0.0, 0.0, 1.0)
    assert acting_weights_of_channel(2, None) == (1.0, 0.0)


def test_a_model_saved_before_the_parts_were_grouped_loads_its_module(tmp_path):
    from agents.dopamine_dqn import DopamineDQN
    from envs import make_vec_env

    model = DopamineDQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=0), device="cpu",
                        learning_starts=0, buffer_size=100, policy_kwargs={"net_arch": [8]})
    model.__dict__["dopamine"] = pickle.loads(old_pickle(AsymmetricTD, {"kappa": 0.3}))  # the old attribute
    model.save(tmp_path / "old.zip", exclude=["neuro"])  # the old file has no neuro section
    loaded = DopamineDQN.load(tmp_path / "old.zip", device="cpu")
    assert type(loaded.dopamine) is AsymmetricTD and loaded.dopamine.kappa == 0.3
    assert loaded.dopamine.gain_negative == pytest.approx(1.3) and "dopamine" not in loaded.__dict__
