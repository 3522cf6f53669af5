"""The default policy follows the observation space as an SB3 user picks it (CnnPolicy for an image,
MultiInputPolicy for a Dict, MlpPolicy else; RecurrentPPO's Lstm ones), checked against stock SB3 built
with that alias, and a policy that cannot read the space is one line."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import QRDQN, TQC, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.registry import ALGORITHMS, build, check_policy_space, default_policy, get_algorithm, resolve_policy
from neuro.parts import POLICY_PARTS

STOCK = {"dqn": DQN, "ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3, "qrdqn": QRDQN, "tqc": TQC,
         "recurrent_ppo": RecurrentPPO}
CONTINUOUS = ("sac", "td3", "tqc")
IMAGE = spaces.Box(0, 255, (4, 40, 36), np.uint8)  # GrayscaleObservation's kind, small (NatureCNN takes >= 36)
SPACES = {
    "image": IMAGE,
    "kinematics": spaces.Box(-np.inf, np.inf, (5, 5), np.float32),
    "occupancy": spaces.Box(-np.inf, np.inf, (4, 11, 11), np.float32),  # rank 3 but float: not an image to SB3
    "dict": spaces.Dict({"GrayscaleObservation": IMAGE, "Kinematics": spaces.Box(-1, 1, (5, 5), np.float32)}),
}
# The alias an SB3 user picks for each space (SB3's docs: CnnPolicy for images, MultiInputPolicy for dicts).
ALIAS = {"image": "Cnn", "kinematics": "Mlp", "occupancy": "Mlp", "dict": "MultiInput"}
SMALL = {"dqn": {"buffer_size": 64, "learning_starts": 0}, "qrdqn": {"buffer_size": 64, "learning_starts": 0},
         "sac": {"buffer_size": 64}, "td3": {"buffer_size": 64}, "tqc": {"buffer_size": 64},
         "ppo": {"n_steps": 8, "batch_size": 8}, "a2c": {"n_steps": 8},
         "recurrent_ppo": {"n_steps": 8, "batch_size": 8}}


class SpaceEnv(gym.Env):
    """Observations drawn from ``observation_space``; nothing else matters here."""

    def __init__(self, observation_space: spaces.Space, continuous: bool) -> None:
        self.observation_space = observation_space
        self.action_space = spaces.Box(-1, 1, (2,), np.float32) if continuous else spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def vec_env(space: spaces.Space, algo: str) -> DummyVecEnv:
    return DummyVecEnv([lambda: SpaceEnv(space, algo in CONTINUOUS)])


def extractors(policy: torch.nn.Module) -> list[tuple[str, int]]:
    return [(type(module).__name__, sum(p.numel() for p in module.parameters()))
            for module in policy.modules() if isinstance(module, BaseFeaturesExtractor)]


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_the_default_policy_is_the_one_stock_sb3_builds_from_the_users_alias(algo, space_name):
    space = SPACES[space_name]
    alias = ALIAS[space_name] + ("LstmPolicy" if algo == "recurrent_ppo" else "Policy")
    ours = build(algo, vec_env(space, algo), hyperparameters=SMALL[algo], seed=0)
    stock = STOCK[algo](alias, vec_env(space, algo), seed=0, **SMALL[algo])
    assert default_policy(type(ours), ours.get_env()) == alias
    # The algorithm's own class for the alias (the dopamine DQN/PPO's Channel* policies), built alike:
    assert type(ours.policy) is get_algorithm(algo).policy_aliases[alias]
    assert issubclass(type(ours.policy), type(stock.policy)) or algo in ("dqn", "ppo")
    assert extractors(ours.policy) == extractors(stock.policy)
    assert sum(p.numel() for p in ours.policy.parameters()) == sum(p.numel() for p in stock.policy.parameters())
    assert ours.policy.normalize_images == stock.policy.normalize_images is True


def test_stock_sb3_refuses_a_cnn_on_the_float_grids_that_default_to_the_mlp():
    """Why OccupancyGrid and TimeToCollision go to the MLP: SB3's CnnPolicy asserts on a float grid."""
    with pytest.raises(AssertionError, match="NatureCNN"):
        DQN("CnnPolicy", vec_env(SPACES["occupancy"], "dqn"), buffer_size=64)


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_an_image_reaches_the_cnn_scaled_to_unit_range(algo):
    """SB3's CnnPolicy divides uint8 frames by 255 before NatureCNN: the features equal NatureCNN of x / 255."""
    model = build(algo, vec_env(IMAGE, algo), hyperparameters=SMALL[algo], seed=0)
    extractor = next(m for m in model.policy.modules() if isinstance(m, NatureCNN))
    frames = torch.as_tensor(np.stack([IMAGE.sample() for _ in range(3)]))
    assert frames.dtype == torch.uint8 and frames.max() > 200
    with torch.no_grad():
        expected = extractor(frames.float() / 255.0)
        got = model.policy.extract_features(frames, extractor)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(("algo", "policy", "kwargs", "space", "message"), [
    ("dqn", "spiking", {}, IMAGE, r"^agent\.policy: SpikingDQNPolicy feeds its network a flat vector and this "
                                  r"observation is an image Box\(0, 255, \(4, 40, 36\), uint8\); use CnnPolicy"),
    ("ppo", None, {"network": {"type": "spiking"}}, IMAGE, r"^agent\.policy: NetworkActorCriticPolicy feeds"),
    ("dqn", "CnnPolicy", {}, SPACES["occupancy"], r"^agent\.policy: CnnPolicy reads images .*; use MlpPolicy$"),
    ("recurrent_ppo", "CnnLstmPolicy", {}, SPACES["kinematics"], r"; use MlpLstmPolicy$"),
])
def test_a_policy_that_cannot_read_the_space_is_one_line(algo, policy, kwargs, space, message):
    cls = get_algorithm(algo)
    with pytest.raises(ValueError, match=message) as error:
        check_policy_space(cls, resolve_policy(cls, policy, kwargs), kwargs, space)
    assert "\n" not in str(error.value)


def test_a_network_policy_reads_an_image_through_a_cnn_extractor_a_dict_or_an_image_network(monkeypatch):
    cls = get_algorithm("dqn")
    kwargs = {"features_extractor_class": NatureCNN}
    check_policy_space(cls, resolve_policy(cls, "spiking", kwargs), kwargs, IMAGE)  # NatureCNN, then spikes
    check_policy_space(cls, resolve_policy(cls, "spiking", {}), {}, SPACES["dict"])  # CombinedExtractor's CNN
    # agent.snn.convolutions: the spiking policy builds a spiking CNN (neuro.snn.conv)
    check_policy_space(cls, resolve_policy(cls, "spiking", {}), {}, IMAGE, snn={"convolutions": [[32, 8, 4]]})

    class ImagePart:  # a network part the policy hands the image's shape
        def __init__(self, in_features, hidden, out_features, input_shape):
            pass

    registry = POLICY_PARTS["network"]
    real_resolve = registry.resolve
    monkeypatch.setattr(registry, "resolve", lambda name: ImagePart if name == "image_part" else real_resolve(name))
    kwargs = {"network": {"type": "image_part"}}
    check_policy_space(cls, resolve_policy(cls, None, kwargs), kwargs, IMAGE)
