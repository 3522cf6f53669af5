"""Network parts in SB3's policies (``policy_kwargs.network``): the spiking network through the registry
trains as ``agent.policy: spiking`` does, the ``mlp`` part trains as SB3's own MLP, saved models round-trip,
and the refusals name the field and what is allowed."""

import csv

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.logger import configure

from agents.callbacks import SpikeLogCallback
from agents.registry import build, check_policy, get_algorithm, resolve_policy
from agents.spiking_policies import NetworkActorCriticPolicy, NetworkDQNPolicy, separate_spike_counts
from envs import make_vec_env
from experiments.config import ConfigError, validate_config
from neuro.networks import MLP
from neuro.snn.network import SpikingMLP

HYPERPARAMETERS = {
    "dqn": {"learning_starts": 32, "buffer_size": 500, "batch_size": 16, "target_update_interval": 40},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
}


def highway(seed: int = 0):
    return make_vec_env("highway-fast-v0", 1, seed=seed, backend="envpool")


def assert_same_weights(ours, theirs) -> None:
    for (name, mine), other in zip(ours.policy.state_dict().items(), theirs.policy.state_dict().values(), strict=True):
        assert torch.equal(mine, other), name


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_the_spiking_part_trains_as_the_spiking_policy_does(algo):
    # The two shapes of a spiking agent are one network: policy_kwargs.network through the registry, and
    # agent.policy: spiking with agent.snn; same seed, same weights after training, spikes counted alike.
    snn = {"timesteps": 3, "critic": "spiking"} if algo == "ppo" else {"timesteps": 3}
    spec = {"type": "spiking", "timesteps": 3}
    kwargs = {"value_network": spec} if algo == "ppo" else {}
    # Each model learns right after it is built: construction reseeds the global generators.
    ours = build(algo, highway(3), None, HYPERPARAMETERS[algo], {"net_arch": [16, 16], "network": spec, **kwargs},
                 seed=3, device="cpu")
    assert type(ours.policy) is {"dqn": NetworkDQNPolicy, "ppo": NetworkActorCriticPolicy}[algo]
    assert isinstance(ours.policy.decision_network(), SpikingMLP)
    ours.learn(96)
    first = build(algo, highway(3), "spiking", HYPERPARAMETERS[algo], {"net_arch": [16, 16]}, seed=3, device="cpu",
                  snn=snn)
    first.learn(96)
    assert_same_weights(ours, first)
    observations = np.stack([ours.observation_space.sample() for _ in range(4)])
    with separate_spike_counts(ours.policy) as stats:
        ours.predict(observations, deterministic=True)
    assert stats["decisions"] == 4 and stats["sops_per_decision"] > 0


@pytest.mark.parametrize(("algo", "stock_cls", "activation"), [("dqn", DQN, "relu"), ("ppo", PPO, "tanh")])
def test_the_mlp_part_trains_exactly_as_sb3s_own_mlp(algo, stock_cls, activation):
    # From the same weights and random streams, the policy with the mlp part and stock SB3's MlpPolicy
    # end with identical weights: the plug point changes nothing but the network it is given.
    def stock():
        return stock_cls("MlpPolicy", highway(4), seed=4, device="cpu", policy_kwargs={"net_arch": [16, 16]},
                         **HYPERPARAMETERS[algo])

    initial = [value.clone() for value in stock().policy.state_dict().values()]
    # Each model learns right after it is built (construction reseeds the global generators), from SB3's
    # initial weights and the same torch stream (the construction drew different amounts from it).
    ours = build(algo, highway(4), None, HYPERPARAMETERS[algo],
                 {"net_arch": [16, 16], "network": {"type": "mlp", "activation": activation}}, seed=4, device="cpu")
    assert isinstance(ours.policy.decision_network(), MLP)
    assert [tuple(value.shape) for value in ours.policy.state_dict().values()] == [tuple(v.shape) for v in initial]
    ours.policy.load_state_dict(dict(zip(ours.policy.state_dict(), initial, strict=True)))
    torch.manual_seed(9)
    ours.learn(96)
    theirs = stock()
    torch.manual_seed(9)
    theirs.learn(96)
    assert_same_weights(ours, theirs)


def test_a_network_policy_round_trips_with_its_spec(tmp_path):
    spec = {"type": "spiking", "timesteps": 2, "encoder": "poisson"}
    model = build("dqn", highway(), None, HYPERPARAMETERS["dqn"], {"net_arch": [16], "network": spec}, seed=1,
                  device="cpu")
    model.learn(48)
    observations = np.stack([model.observation_space.sample() for _ in range(4)])
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "model")
    loaded = get_algorithm("dqn").load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is NetworkDQNPolicy and loaded.policy.network == spec
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)
    # The target's Poisson encoder draws a stream of its own, as under agent.policy: spiking.
    assert loaded.policy.q_net_target.q_net.encoder.seed == loaded.policy.q_net.q_net.encoder.seed + 1


@pytest.mark.parametrize(("network", "logged"), [({"type": "spiking", "timesteps": 2}, True), ({"type": "mlp"}, False)])
def test_the_spike_log_follows_the_part_not_the_policy_shape(tmp_path, network, logged):
    model = build("ppo", highway(), None, HYPERPARAMETERS["ppo"], {"net_arch": [16], "network": network}, seed=0,
                  device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(64, callback=SpikeLogCallback())
    with open(tmp_path / "progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(row["snn/sops_per_decision"]) for row in rows if row.get("snn/sops_per_decision")]
    assert bool(values) is logged and all(value > 0 for value in values)


def test_an_mlp_alias_with_a_network_part_is_the_network_policy():
    for alias in ("MlpPolicy", "MultiInputPolicy", None):
        assert resolve_policy(get_algorithm("dqn"), alias, {"network": {"type": "mlp"}}) is NetworkDQNPolicy
    assert resolve_policy(get_algorithm("dqn"), "MlpPolicy") == "MlpPolicy"


def test_refusals_name_the_field_and_the_allowed_values():
    dqn = get_algorithm("dqn")
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network.type: unknown network type 'lstm'; "
                                         r"allowed: mlp, (?:backpropamine, )?spiking, (?:backpropamine, )?cnn, "
                                         r"(?:backpropamine, )?spiking_cnn"):
        check_policy(dqn, None, None, {"network": {"type": "lstm"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network: agent.policy: spiking builds its network "
                                         r"from agent.snn; give one of them"):
        check_policy(dqn, "spiking", None, {"network": {"type": "spiking"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network: tqc has no network policy; "
                                         r"algorithms that do: dqn, ppo, a2c, sac, td3, qrdqn, recurrent_ppo$"):
        check_policy(get_algorithm("tqc"), None, None, {"network": {"type": "mlp"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network: recurrent_ppo takes a recurrent network "
                                         r"part .*got 'mlp'$"):
        check_policy(get_algorithm("recurrent_ppo"), None, None, {"network": {"type": "mlp"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.value_network: only PPO/A2C's critic"):
        check_policy(dqn, None, None, {"network": {"type": "mlp"}, "value_network": {"type": "mlp"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.value_network.beta: must be in \(0, 1\]"):
        check_policy(get_algorithm("ppo"), None, None,
                     {"network": {"type": "mlp"}, "value_network": {"type": "spiking", "beta": 2}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network: only a network policy reads it"):
        check_policy(dqn, "stable_baselines3.dqn.policies:DQNPolicy", None, {"network": {"type": "mlp"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.value_network: only a network policy reads it"):
        check_policy(get_algorithm("ppo"), None, None, {"value_network": {"type": "mlp"}})
    with pytest.raises(ValueError, match=r"^agent.policy_kwargs.network: required by a network policy; "
                                         r"allowed types: mlp, (?:backpropamine, spiking|spiking, backpropamine)"):
        check_policy(dqn, "agents.spiking_policies:NetworkDQNPolicy")


def test_a_bad_network_in_an_experiment_file_is_a_config_error():
    raw = {"name": "x", "training": {"total_timesteps": 10},
           "agent": {"algo": "dqn", "policy_kwargs": {"network": {"type": "spiking", "timesteps": 0}}}}
    with pytest.raises(ConfigError,
                       match=r"agent.policy_kwargs.network.timesteps: Input should be greater than or equal to 1"):
        validate_config(raw)
