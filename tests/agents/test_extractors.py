"""Feature extractors: running standardisation against SB3's RunningMeanStd, ego-attention as a set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd

from agents.extractors import EgoAttention, RunningNormalization
from agents.registry import build
from envs.factory import make_vec_env

KINEMATICS = spaces.Box(-1.0, 1.0, (5, 5), dtype=np.float32)


def test_running_moments_equal_sb3_running_mean_std() -> None:
    extractor = RunningNormalization(KINEMATICS)
    reference = RunningMeanStd(shape=(25,))
    rng = np.random.default_rng(0)
    for size in (64, 3, 128, 1, 32):
        batch = rng.normal(3.0, 2.0, size=(size, 25)).astype(np.float32)
        extractor(torch.as_tensor(batch).reshape(size, 5, 5))
        reference.update(batch.astype(np.float64))
    np.testing.assert_allclose(extractor.running_mean.numpy(), reference.mean, atol=1e-5)
    np.testing.assert_allclose(extractor.running_var.numpy(), reference.var, rtol=1e-4)
    assert float(extractor.running_count) == pytest.approx(reference.count)


def test_inputs_come_out_standardised_and_clipped() -> None:
    extractor = RunningNormalization(KINEMATICS, clip=5.0)
    rng = np.random.default_rng(1)
    scales = np.linspace(0.01, 50.0, 25)
    for _ in range(20):
        extractor(torch.as_tensor(rng.normal(7.0, scales, size=(256, 25)), dtype=torch.float32).reshape(-1, 5, 5))
    extractor.eval()
    fresh = torch.as_tensor(rng.normal(7.0, scales, size=(4096, 25)), dtype=torch.float32).reshape(-1, 5, 5)
    out = extractor(fresh).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=0.1)
    far = extractor(torch.full((1, 5, 5), 1e6)).numpy()
    assert far.max() == 5.0


def test_acting_does_not_move_the_statistics() -> None:
    extractor = RunningNormalization(KINEMATICS)
    extractor.eval()
    extractor(torch.randn(64, 5, 5) + 3.0)
    assert float(extractor.running_mean.abs().max()) == 0.0
    assert float(extractor.running_count) == pytest.approx(1e-8)


def test_dqn_learns_statistics_and_model_zip_carries_them(tmp_path) -> None:
    env = make_vec_env("highway-fast-v0", 4, seed=0, backend="envpool")
    model = build("dqn", env, None, {"learning_starts": 64, "batch_size": 32, "target_update_interval": 64},
                  {"net_arch": [32], "features_extractor_class": "agents.extractors:RunningNormalization"}, seed=0)
    model.learn(400)
    online = model.q_net.features_extractor
    assert model._n_updates > 0
    # One update per gradient step (32 replayed observations); acting adds nothing.
    assert float(online.running_count) == pytest.approx(32 * model._n_updates)
    # Kinematics rows are normalised to [-1, 1]; the ego's presence column is always 1: variance ~0.
    assert float(online.running_mean[0]) == pytest.approx(1.0)
    assert float(online.running_var[0]) < 1e-6
    target = model.q_net_target.features_extractor
    assert float(target.running_count) > 1e-8  # copied with the weights at each target update
    model.save(tmp_path / "model.zip")
    loaded = type(model).load(tmp_path / "model.zip")
    torch.testing.assert_close(loaded.q_net.features_extractor.running_mean, online.running_mean)
    torch.testing.assert_close(loaded.q_net.features_extractor.running_var, online.running_var)
    observation = env.reset()
    np.testing.assert_array_equal(loaded.predict(observation, deterministic=True)[0],
                                  model.predict(observation, deterministic=True)[0])
    env.close()


def _kinematics_batch(rng: np.random.Generator, present: int) -> torch.Tensor:
    rows = rng.uniform(-1, 1, size=(8, 5, 5)).astype(np.float32)
    rows[:, :, 0] = 0.0
    rows[:, :present, 0] = 1.0
    return torch.as_tensor(rows)


def test_ego_attention_reads_other_vehicles_as_a_set() -> None:
    torch.manual_seed(0)
    extractor = EgoAttention(KINEMATICS, embed_dim=16, heads=2)
    batch = _kinematics_batch(np.random.default_rng(2), present=5)
    shuffled = batch[:, [0, 3, 1, 4, 2]]
    torch.testing.assert_close(extractor(shuffled), extractor(batch))
    swapped_ego = batch[:, [1, 0, 2, 3, 4]]  # the first row is the ego: it is not interchangeable
    assert not torch.allclose(extractor(swapped_ego), extractor(batch))


def test_ego_attention_ignores_absent_vehicles() -> None:
    torch.manual_seed(0)
    extractor = EgoAttention(KINEMATICS, embed_dim=16, heads=2)
    batch = _kinematics_batch(np.random.default_rng(3), present=3)
    noisy = batch.clone()
    noisy[:, 3:, 1:] = torch.randn(8, 2, 4)  # absent rows' other features are meaningless
    torch.testing.assert_close(extractor(noisy), extractor(batch))
    assert extractor(batch).shape == (8, 32)


def test_ego_attention_rejects_a_flat_observation() -> None:
    with pytest.raises(ValueError, match="features_extractor_class: EgoAttention needs a"):
        EgoAttention(spaces.Box(-1.0, 1.0, (25,), dtype=np.float32))
    with pytest.raises(ValueError, match="embed_dim: must divide by heads=3"):
        EgoAttention(KINEMATICS, embed_dim=16, heads=3)
