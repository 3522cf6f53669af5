"""The algorithm registry: names, dotted paths, hyperparameter checks, and parity with stock SB3."""

import textwrap
import warnings

import pytest
import torch
from sb3_contrib import QRDQN, TQC, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from agents.neuro_agent import NeuroAgent, OffPolicyNeuroAgent, OnPolicyNeuroAgent
from agents.registry import (
    ALGORITHMS,
    build,
    check_hyperparameters,
    get_algorithm,
    register_algorithm,
)
from envs import make_vec_env


def test_names_map_to_sb3_classes():
    stock = {"dqn": DQN, "ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3,
             "qrdqn": QRDQN, "tqc": TQC, "recurrent_ppo": RecurrentPPO}
    assert ALGORITHMS.keys() == stock.keys()
    # Each is its SB3 class with the neuro mixin: with the default parts, stock SB3 (test_dopamine_agents,
    # tests/agents/test_modulated_agents.py).
    for name, cls in ALGORITHMS.items():
        assert issubclass(cls, stock[name]) and issubclass(cls, NeuroAgent), name
        # The mixin stands right before the SB3 class, in the family of its algorithm.
        assert cls.__mro__[cls.__mro__.index(NeuroAgent) + 1] is stock[name] or name in ("dqn", "ppo"), name
        family = OnPolicyNeuroAgent if issubclass(stock[name], OnPolicyAlgorithm) else OffPolicyNeuroAgent
        assert issubclass(cls, family), name
    assert ALGORITHMS["dqn"] is DopamineDQN and ALGORITHMS["ppo"] is DopaminePPO
    assert get_algorithm("PPO") is DopaminePPO


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="agent.algo: unknown algorithm 'dqm'; allowed: dqn, ppo"):
        get_algorithm("dqm")


def test_dotted_path_loads_a_users_class(tmp_path, monkeypatch):
    (tmp_path / "my_algos.py").write_text(textwrap.dedent("""
        from stable_baselines3 import DQN

        class MyDQN(DQN):
            pass

        not_an_algorithm = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_algorithm("my_algos:MyDQN").__name__ == "MyDQN"
    with pytest.raises(ValueError, match="not an SB3 BaseAlgorithm"):
        get_algorithm("my_algos:not_an_algorithm")
    with pytest.raises(ValueError, match="cannot load 'my_algos:Missing'"):
        get_algorithm("my_algos:Missing")


def test_register_decorator():
    @register_algorithm("my_ppo")
    class MyPPO(PPO):
        pass

    try:
        assert get_algorithm("my_ppo") is MyPPO
    finally:
        del ALGORITHMS["my_ppo"]


def test_hyperparameter_check_names_the_key_and_the_allowed_ones():
    check_hyperparameters(DQN, {"gamma": 0.9, "buffer_size": 100})
    with pytest.raises(ValueError, match=r"agent.hyperparameters.gama: DQN has no such argument; "
                                         r"allowed: learning_rate, buffer_size"):
        check_hyperparameters(DQN, {"gama": 0.9})
    with pytest.raises(ValueError, match="agent.hyperparameters.seed: set by the run"):
        check_hyperparameters(DQN, {"seed": 1})


def test_build_equals_stock_sb3_on_the_same_seed():
    """Hyperparameters pass through unchanged: the registry's DQN and a stock DQN built on the
    same env and seed start with identical parameters and learn identical parameters."""
    hyperparameters = {"learning_rate": 1e-3, "buffer_size": 500, "learning_starts": 20,
                       "batch_size": 16, "gamma": 0.7, "target_update_interval": 25}
    policy_kwargs = {"net_arch": [32, 32], "activation_fn": "torch.nn.ReLU"}
    # SB3 seeds the global RNGs when a model is built: build and train one model at a time.
    ours = build("dqn", make_vec_env("highway-fast-v0", 1, seed=3), None, hyperparameters,
                 policy_kwargs, seed=3, device="cpu")
    assert ours.gamma == 0.7 and ours.batch_size == 16
    ours.learn(120)
    stock = DQN("MlpPolicy", make_vec_env("highway-fast-v0", 1, seed=3), seed=3, device="cpu",
                policy_kwargs={"net_arch": [32, 32], "activation_fn": torch.nn.ReLU}, **hyperparameters)
    stock.learn(120)
    for (name, ours_param), stock_param in zip(ours.policy.state_dict().items(),
                                               stock.policy.state_dict().values(), strict=True):
        assert torch.equal(ours_param, stock_param), name


@pytest.mark.parametrize("algo, env_id, hyperparameters", [
    ("dqn", "highway-fast-v0", {"learning_starts": 16, "buffer_size": 200}),
    ("qrdqn", "highway-fast-v0", {"learning_starts": 16, "buffer_size": 200}),
    ("ppo", "highway-fast-v0", {"n_steps": 32, "batch_size": 32}),
    ("a2c", "highway-fast-v0", {"n_steps": 8}),
    ("recurrent_ppo", "highway-fast-v0", {"n_steps": 32, "batch_size": 32}),
    ("ppo", "racetrack-v0", {"n_steps": 32, "batch_size": 32}),
    ("sac", "racetrack-v0", {"learning_starts": 16, "buffer_size": 200}),
    ("td3", "racetrack-v0", {"learning_starts": 16, "buffer_size": 200}),
    ("tqc", "racetrack-v0", {"learning_starts": 16, "buffer_size": 200}),
])
def test_every_algorithm_trains_a_few_steps(algo, env_id, hyperparameters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # racetrack's native port is unverified (a warning)
        env = make_vec_env(env_id, 2, seed=0, backend="envpool")
    model = build(algo, env, hyperparameters=hyperparameters, policy_kwargs={"net_arch": [16]},
                  seed=0, device="cpu")
    model.learn(64)
    assert model.num_timesteps >= 64
    for parameter in model.policy.parameters():
        assert torch.isfinite(parameter).all()


def test_policy_by_dotted_path(tmp_path, monkeypatch):
    """``agent.policy`` takes a user's policy class by dotted path, as feature extractors do."""
    from stable_baselines3.dqn.policies import DQNPolicy

    from agents.registry import check_policy

    (tmp_path / "my_policies.py").write_text(textwrap.dedent("""
        from stable_baselines3.dqn.policies import DQNPolicy

        class WiderQ(DQNPolicy):
            def __init__(self, *args, **kwargs):
                kwargs["net_arch"] = [48]
                super().__init__(*args, **kwargs)

        class NotAPolicy:
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build("dqn", make_vec_env("highway-fast-v0", 1), policy="my_policies:WiderQ", seed=0, device="cpu")
    assert type(model.policy).__name__ == "WiderQ" and isinstance(model.policy, DQNPolicy)
    assert model.policy.q_net.q_net[0].out_features == 48
    with pytest.raises(ValueError, match="agent.policy: 'my_policies:NotAPolicy' is not an SB3 policy class"):
        check_policy(DopamineDQN, "my_policies:NotAPolicy")
    with pytest.raises(ValueError, match="agent.policy: DopamineDQN has no policy 'Mlp'; allowed: MlpPolicy"):
        check_policy(DopamineDQN, "Mlp")
