"""Spiking policies in SB3: each algorithm's spiking network where SB3's MLP was, training loops
untouched (the platform agent and stock SB3 give bit-identical spiking models on one seed), spikes
counted for decisions only, save/load round-trips, dopamine modules and modulators without special
cases, the TensorBoard figures, and clear refusals."""

import csv

import gymnasium
import numpy as np
import pytest
import torch
from sb3_contrib import QRDQN
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.callbacks import SpikeLogCallback
from agents.registry import build, check_policy, get_algorithm
from agents.spiking_policies import (
    SpikingActorCriticPolicy,
    SpikingDQNPolicy,
    SpikingQRDQNPolicy,
    SpikingSACPolicy,
    SpikingTD3Policy,
    separate_spike_counts,
)
from envs import make_vec_env
from neuro.snn.network import SpikingMLP

DISCRETE = {
    "dqn": {"learning_starts": 32, "buffer_size": 500, "batch_size": 16, "target_update_interval": 40},
    "qrdqn": {"learning_starts": 32, "buffer_size": 500, "batch_size": 16, "target_update_interval": 40},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "a2c": {"n_steps": 8},
}
CONTINUOUS = {"sac": {"learning_starts": 16, "buffer_size": 200, "batch_size": 16},
              "td3": {"learning_starts": 16, "buffer_size": 200, "batch_size": 16}}
POLICIES = {"dqn": SpikingDQNPolicy, "qrdqn": SpikingQRDQNPolicy, "ppo": SpikingActorCriticPolicy,
            "a2c": SpikingActorCriticPolicy, "sac": SpikingSACPolicy, "td3": SpikingTD3Policy}
SNN = {"timesteps": 4, "encoder": "population"}


def highway(n_envs: int = 1, seed: int = 0):
    return make_vec_env("highway-fast-v0", n_envs, seed=seed, backend="envpool")


def pendulum():
    return DummyVecEnv([lambda: gymnasium.make("Pendulum-v1")])


def spiking_networks(model) -> list[SpikingMLP]:
    return [module for module in model.policy.modules() if isinstance(module, SpikingMLP)]


@pytest.mark.parametrize("algo", [*DISCRETE, *CONTINUOUS])
def test_spiking_policy_trains_and_round_trips(algo, tmp_path):
    env = highway() if algo in DISCRETE else pendulum()
    hyperparameters = {**DISCRETE, **CONTINUOUS}[algo]
    model = build(algo, env, "spiking", hyperparameters, {"net_arch": [32, 32]}, seed=1, device="cpu", snn=SNN)
    assert type(model.policy) is POLICIES[algo]
    decision = model.policy.decision_network()
    assert isinstance(decision, SpikingMLP) and decision.timesteps == 4 and decision.hidden == [32, 32]
    # Online and target networks spike alike (DQN, QR-DQN, TD3); SAC's and PPO's one actor.
    assert len(spiking_networks(model)) == {"dqn": 2, "qrdqn": 2, "td3": 2}.get(algo, 1)
    model.learn(96)
    observations = np.stack([env.observation_space.sample() for _ in range(6)])
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "model")
    loaded = get_algorithm(algo).load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is POLICIES[algo] and loaded.policy.snn == model.policy.snn
    loaded_actions, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, loaded_actions)
    for ours, theirs in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize(("ours_algo", "stock_cls", "hyperparameters"), [
    ("dqn", DQN, DISCRETE["dqn"]),
    ("qrdqn", QRDQN, DISCRETE["qrdqn"]),
    ("ppo", PPO, DISCRETE["ppo"]),
])
def test_platform_agent_trains_a_spiking_policy_exactly_as_stock_sb3(ours_algo, stock_cls, hyperparameters):
    # The spiking network changes the policy, not the algorithm: the platform agent (default neuro parts)
    # and SB3's own class, same seed and env, end with identical weights.
    policy_cls = POLICIES[ours_algo]
    policy_kwargs = {"net_arch": [16, 16], "snn": {"timesteps": 3}}
    ours = build(ours_algo, highway(seed=3), "spiking", hyperparameters, {"net_arch": [16, 16]}, seed=3,
                 device="cpu", snn={"timesteps": 3})
    ours.learn(160)
    stock = stock_cls(policy_cls, highway(seed=3), seed=3, device="cpu", policy_kwargs=policy_kwargs,
                      **hyperparameters)
    stock.learn(160)
    for (name, mine), theirs in zip(ours.policy.state_dict().items(), stock.policy.state_dict().values(),
                                    strict=True):
        assert torch.equal(mine, theirs), name


def test_spikes_are_counted_for_decisions_not_for_updates():
    model = build("dqn", highway(), "spiking", DISCRETE["dqn"], {"net_arch": [16]}, seed=0, device="cpu")
    model.learn(64)
    model.policy.take_spike_counts()
    model.train(gradient_steps=3, batch_size=16)  # forward and target passes over replay batches
    assert model.policy.take_spike_counts().decisions == 0
    observations = np.stack([model.observation_space.sample() for _ in range(7)])
    model.predict(observations, deterministic=True)
    counts = model.policy.take_spike_counts()
    assert counts.decisions == 7 and sum(counts.spikes) > 0

    ppo = build("ppo", highway(2), "spiking", DISCRETE["ppo"], {"net_arch": [16]}, seed=0, device="cpu")
    ppo.learn(64)  # one rollout of 32 steps on 2 envs, then an update
    assert ppo.policy.take_spike_counts().decisions == 64


def test_evaluation_counts_are_kept_apart_from_training_counts():
    model = build("dqn", highway(), "spiking", DISCRETE["dqn"], {"net_arch": [16]}, seed=0, device="cpu")
    observations = np.stack([model.observation_space.sample() for _ in range(5)])
    model.predict(observations, deterministic=True)
    with separate_spike_counts(model.policy) as stats:
        model.predict(observations[:2], deterministic=True)
    assert stats["decisions"] == 2 and set(stats) >= {"sops_per_decision", "energy_ratio", "firing_rate/hidden_0"}
    assert model.policy.take_spike_counts().decisions == 5
    ann = build("dqn", highway(), None, DISCRETE["dqn"], {"net_arch": [16]}, seed=0, device="cpu")
    with separate_spike_counts(ann.policy) as ann_stats:
        ann.predict(observations, deterministic=True)
    assert ann_stats == {}


def test_dopamine_channels_and_modulators_ride_on_the_spiking_network():
    neuro = {"dopamine": {"type": "distributional", "n_channels": 5},
             "learning_rate": {"type": "surprise"}, "exploration": {"type": "surprise"}}
    model = build("dqn", highway(), "spiking", DISCRETE["dqn"], {"net_arch": [16]}, seed=0, device="cpu",
                  neuro=neuro)
    q_net = model.policy.q_net
    assert isinstance(q_net.q_net, SpikingMLP) and q_net.q_net.readout.out_features == 5 * 5
    model.learn(160)
    assert q_net.all_channels(torch.zeros(3, *model.observation_space.shape)).shape == (3, 5, 5)
    assert model.neuro_values()["learning_rate"] != pytest.approx(model.learning_rate)  # the modulator acted
    ppo = build("ppo", highway(2), "spiking", {**DISCRETE["ppo"], "ent_coef": 0.01}, {"net_arch": [16]}, seed=0,
                device="cpu", neuro={"dopamine": {"type": "asymmetric", "kappa": 0.3},
                                     "discount": {"type": "td_variance"}},
                snn={"critic": "spiking"})
    ppo.learn(128)
    assert isinstance(ppo.policy.mlp_extractor.value_net, SpikingMLP)
    assert ppo.policy.mlp_extractor.value_net.readout_fan_out == 1


def test_spike_log_callback_writes_firing_rates_and_energy(tmp_path):
    model = build("ppo", highway(2), "spiking", DISCRETE["ppo"], {"net_arch": [16, 16]}, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(128, callback=SpikeLogCallback())
    with open(tmp_path / "progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    for key in ("snn/firing_rate/hidden_0", "snn/firing_rate/hidden_1", "snn/sops_per_decision",
                "snn/energy_pj_per_decision", "snn/ann_energy_pj_per_decision", "snn/energy_ratio"):
        values = [float(row[key]) for row in rows if row.get(key)]
        assert values and all(np.isfinite(values)) and all(value >= 0 for value in values), key
    ann_energy = float(rows[-1]["snn/ann_energy_pj_per_decision"])
    assert ann_energy == pytest.approx((25 * 16 + 16 * 16 + 16 * 5) * 4.6)  # ANN twin: 25-16-16-5


def test_refusals_name_the_field_and_the_allowed_values():
    with pytest.raises(ValueError, match="agent.policy: recurrent_ppo has no spiking policy; algorithms that do: "
                                         "dqn, ppo, a2c, sac, td3, qrdqn"):
        check_policy(get_algorithm("recurrent_ppo"), "spiking")
    with pytest.raises(ValueError, match="agent.policy: tqc has no spiking policy"):
        check_policy(get_algorithm("tqc"), "spiking")
    with pytest.raises(ValueError, match="agent.snn: only a spiking policy reads it; set agent.policy: spiking"):
        check_policy(get_algorithm("dqn"), None, {"timesteps": 5})
    with pytest.raises(ValueError, match="agent.snn.critic: only PPO/A2C's critic can spike; sac's stays an ANN"):
        check_policy(get_algorithm("sac"), "spiking", {"critic": "spiking"})
    with pytest.raises(ValueError, match="allowed: MlpPolicy, CnnPolicy, MultiInputPolicy, spiking"):
        check_policy(get_algorithm("dqn"), "Spiking")


def poisson_dqn(seed: int):
    return build("dqn", highway(), "spiking", DISCRETE["dqn"], {"net_arch": [32]}, seed=seed, device="cpu",
                 snn={"timesteps": 3, "encoder": "poisson"})


def test_deterministic_poisson_policy_repeats_its_actions_and_leaves_the_global_rng_alone():
    model = poisson_dqn(seed=4)
    observations = np.random.default_rng(0).uniform(-1, 1, (256, *model.observation_space.shape)).astype(np.float32)
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    actions, _ = model.predict(observations, deterministic=True)
    assert torch.equal(torch.rand(3), expected_draw)  # the encoder drew from its own generator
    again, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, again)  # same observation, same action: a deterministic policy
    twin, _ = poisson_dqn(seed=4).predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, twin)  # the same seed gives the same actions
    # Stochastic passes (training's) draw from the stream: the Q-values move from pass to pass.
    obs = torch.as_tensor(observations)
    q_net = model.policy.q_net
    assert not torch.equal(q_net(obs), q_net(obs))


def test_poisson_generator_is_saved_with_the_model_and_separate_from_the_target(tmp_path):
    model = poisson_dqn(seed=2)
    model.learn(48)  # the online and target networks' encoders draw during training
    online, target = model.q_net.q_net.encoder, model.q_net_target.q_net.encoder
    assert online.seed != target.seed  # SB3 copies the online state into the target: not the same noise
    model.save(tmp_path / "model.zip")
    loaded = DQN.load(tmp_path / "model.zip", device="cpu")
    for before, after in ((online, loaded.q_net.q_net.encoder), (target, loaded.q_net_target.q_net.encoder)):
        assert after.seed == before.seed and torch.equal(after.generator.get_state(), before.generator.get_state())
    # A model saved before the generator was state (no _extra_state keys) still loads strictly.
    state = {key: value for key, value in model.policy.state_dict().items() if not key.endswith("_extra_state")}
    loaded.policy.load_state_dict(state, strict=True)


@pytest.mark.parametrize("init", ["orthogonal", "torch"])
def test_an_ann_twin_takes_the_spiking_networks_initialisation(init):
    from agents.spiking_policies import TwinDQNPolicy, TwinSACPolicy

    def hidden_layers(module) -> list[torch.nn.Linear]:
        return [layer for layer in module.modules() if isinstance(layer, torch.nn.Linear)]

    cases = [("dqn", highway, TwinDQNPolicy, lambda m: hidden_layers(m.q_net.q_net)[:-1],
              lambda m: list(m.q_net.q_net.layers)),
             ("sac", pendulum, TwinSACPolicy, lambda m: hidden_layers(m.actor.latent_pi),
              lambda m: list(m.actor.latent_pi.layers))]
    for algo, env, twin_cls, ann_hidden, snn_hidden in cases:
        hyperparameters = {**DISCRETE, **CONTINUOUS}[algo]
        ann = build(algo, env(), f"agents.spiking_policies:{twin_cls.__name__}", hyperparameters,
                    {"net_arch": [64, 64], "init": init}, seed=0, device="cpu")
        snn = build(algo, env(), "spiking", hyperparameters, {"net_arch": [64, 64]}, seed=0, device="cpu",
                    snn={"init": init})
        assert type(ann.policy) is twin_cls and len(ann_hidden(ann)) == len(snn_hidden(snn)) == 2
        for layer in ann_hidden(ann) + snn_hidden(snn):
            singular = torch.linalg.svdvals(layer.weight)
            orthogonal = torch.allclose(singular, torch.full_like(singular, 2**0.5), atol=1e-5)
            zero_bias = torch.count_nonzero(layer.bias) == 0
            assert orthogonal == zero_bias == (init == "orthogonal"), (algo, init)
            if init == "torch":  # nn.Linear's default bound 1/sqrt(fan_in) on both sides
                assert layer.weight.abs().max() <= layer.in_features ** -0.5
