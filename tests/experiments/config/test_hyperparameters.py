"""Values inside agent.hyperparameters, agent.policy_kwargs and training: each bad one is one ConfigError line
naming the field and what is allowed, before any run folder; every shipped preset and SB3's own defaults pass;
what the checks refuse, stock SB3 refuses too (or trains on nonsense)."""

import inspect
import math
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

from agents.hyperparameters import CLASS_KWARGS, hyperparameter_table
from agents.registry import _RESERVED, ALGORITHMS, build, constructor_signature
from experiments.compare.spec import load_comparison
from experiments.config import ConfigError, load_config
from experiments.sweeps.spec import load_sweep
from tests_support import EXPERIMENTS, REPO

BASES = {
    "dqn": "env: {id: highway-fast-v0, n_envs: 1}\nagent: {algo: dqn}",
    "ppo": "env: {id: highway-fast-v0, n_envs: 1}\nagent: {algo: ppo}",
    "sac": "env: {id: racetrack-v0, n_envs: 1}\nagent: {algo: sac}",
    "tqc": "env: {id: racetrack-v0, n_envs: 1}\nagent: {algo: tqc}",
}


def experiment(tmp_path, algo: str = "dqn"):
    path = tmp_path / "experiment.yaml"
    path.write_text(f"name: t\n{BASES[algo]}\ntraining: {{total_timesteps: 1000}}\n"
                    f"logging: {{root: {tmp_path / 'runs'}}}\n")
    return path


# (algo, --set, the field the one line names, a piece of what it says is allowed)
ISSUE_EXAMPLES = [
    ("dqn", "agent.hyperparameters.learning_rate=abc", "agent.hyperparameters.learning_rate", "a number > 0"),
    ("dqn", "agent.hyperparameters.train_freq=0", "agent.hyperparameters.train_freq", "an integer >= 1 or a pair"),
    ("dqn", "agent.policy_kwargs.net_arch=[64,-64]", "agent.policy_kwargs.net_arch.1", "an integer in [1, "),
    ("dqn", "training.device=abc", "training.device", "cpu, cuda, cuda:N (N a GPU index), mps or auto"),
    ("dqn", "agent.hyperparameters.n_steps=[1]", "agent.hyperparameters.n_steps", "an integer in [1, "),
    ("ppo", "agent.hyperparameters.n_steps=[1]", "agent.hyperparameters.n_steps", "an integer in [1, "),
    ("dqn", "agent.hyperparameters.n_steps=.inf", "agent.hyperparameters.n_steps", "an integer in [1, "),
    ("dqn", "agent.hyperparameters.replay_buffer_kwargs=5", "agent.hyperparameters.replay_buffer_kwargs",
     "null or a mapping"),
    ("dqn", "agent.hyperparameters.gamma=inf", "agent.hyperparameters.gamma", "a number in [0, 1]"),
    ("dqn", "agent.hyperparameters.gamma=.inf", "agent.hyperparameters.gamma", "a number in [0, 1]"),
    ("ppo", "agent.hyperparameters.gamma=1.3", "agent.hyperparameters.gamma", "a number in [0, 1]"),
    ("dqn", "agent.hyperparameters.learning_starts=.nan", "agent.hyperparameters.learning_starts", "an integer >= 0"),
    ("dqn", "agent.hyperparameters.exploration_fraction=-0.2", "agent.hyperparameters.exploration_fraction",
     "a number in [0, 1]"),
    ("ppo", "agent.hyperparameters.ent_coef=-0.01", "agent.hyperparameters.ent_coef", "a number >= 0"),
    ("sac", "agent.hyperparameters.ent_coef=-0.01", "agent.hyperparameters.ent_coef", "'auto'"),
    ("dqn", "training.torch_threads=1000000", "training.torch_threads", f"this machine has {os.cpu_count()} CPUs"),
    ("dqn", "agent.policy_kwargs.activation_fn=os:system", "agent.policy_kwargs.activation_fn",
     "a torch.nn.Module subclass"),
]

MORE_BAD = [
    ("dqn", "agent.hyperparameters.gradient_steps=0", "agent.hyperparameters.gradient_steps", "or -1"),
    ("dqn", "agent.hyperparameters.tau=0", "agent.hyperparameters.tau", "a number in (0, 1]"),
    ("dqn", "agent.hyperparameters.batch_size=true", "agent.hyperparameters.batch_size", "an integer in [1, "),
    ("dqn", "agent.hyperparameters.buffer_size=1e6", "agent.hyperparameters.buffer_size", "an integer in [1, "),
    ("dqn", "agent.hyperparameters.buffer_size=1000000000000000", "agent.hyperparameters.buffer_size",
     "this machine has"),
    ("dqn", "agent.hyperparameters.train_freq=[4,epoch]", "agent.hyperparameters.train_freq", "step | episode"),
    ("dqn", "agent.hyperparameters.replay_buffer_kwargs={n_steps: 3}",
     "agent.hyperparameters.replay_buffer_kwargs.n_steps", "allowed: handle_timeout_termination"),
    ("dqn", "agent.hyperparameters.replay_buffer_class=os:system", "agent.hyperparameters.replay_buffer_class",
     "an SB3 ReplayBuffer subclass"),
    ("dqn", "agent.hyperparameters.optimize_memory_usage=true", "agent.hyperparameters.optimize_memory_usage",
     "handle_timeout_termination: false"),
    ("ppo", "agent.hyperparameters.clip_range=0", "agent.hyperparameters.clip_range", "a number > 0"),
    ("ppo", "agent.hyperparameters.n_epochs=0", "agent.hyperparameters.n_epochs", "an integer >= 1"),
    ("ppo", "agent.hyperparameters.normalize_advantage=yes please", "agent.hyperparameters.normalize_advantage",
     "true or false"),
    ("ppo", "agent.hyperparameters.batch_size=1", "agent.hyperparameters.batch_size", "normalize_advantage"),
    ("ppo", "agent.hyperparameters.n_steps=1", "agent.hyperparameters.n_steps", "n_steps x env.n_envs must be > 1"),
    ("ppo", "agent.hyperparameters.ent_coef=auto", "agent.hyperparameters.ent_coef", "a number >= 0"),
    ("ppo", "agent.policy_kwargs.net_arch={pi: [64], qf: [64]}", "agent.policy_kwargs.net_arch.qf",
     "allowed: pi, vf"),
    ("ppo", "agent.policy_kwargs.use_sde=true", "agent.policy_kwargs.use_sde", "agent.hyperparameters.use_sde"),
    ("ppo", "agent.policy_kwargs.ortho_init=2", "agent.policy_kwargs.ortho_init", "true or false"),
    ("ppo", "agent.policy_kwargs.log_std_init=.nan", "agent.policy_kwargs.log_std_init", "a finite number"),
    ("dqn", "agent.policy_kwargs.net_arc=[64]", "agent.policy_kwargs.net_arc", "did you mean net_arch?"),
    ("dqn", "agent.policy_kwargs.net_arch={pi: [64]}", "agent.policy_kwargs.net_arch", "a list of layer widths"),
    ("dqn", "agent.policy_kwargs.optimizer_class=torch.nn:ReLU", "agent.policy_kwargs.optimizer_class",
     "a torch.optim.Optimizer subclass"),
    ("dqn", "agent.policy_kwargs.features_extractor_class=builtins:eval",
     "agent.policy_kwargs.features_extractor_class", "an SB3 BaseFeaturesExtractor subclass"),
    ("dqn", "agent.policy_kwargs.optimizer_kwargs={lr: 0.1}", "agent.policy_kwargs.optimizer_kwargs.lr",
     "agent.hyperparameters.learning_rate"),
    ("dqn", "agent.policy_kwargs.optimizer_kwargs={eps: -1}", "agent.policy_kwargs.optimizer_kwargs.eps",
     "a number > 0"),
    ("dqn", "agent.policy_kwargs.optimizer_kwargs={betas: [0.9, 1.5]}", "agent.policy_kwargs.optimizer_kwargs.betas",
     "in [0, 1)"),
    ("sac", "agent.hyperparameters.ent_coef=auto_-1", "agent.hyperparameters.ent_coef", "auto_<initial value > 0>"),
    ("sac", "agent.hyperparameters.target_entropy=lots", "agent.hyperparameters.target_entropy", "'auto' or"),
    ("sac", "agent.policy_kwargs.n_critics=1000000", "agent.policy_kwargs.n_critics", "an integer in [1, 64]"),
    ("tqc", "agent.hyperparameters.top_quantiles_to_drop_per_net=25",
     "agent.hyperparameters.top_quantiles_to_drop_per_net", "below policy_kwargs.n_quantiles (25)"),
    ("dqn", "training.device=cuda:x", "training.device", "cuda:N"),
    ("dqn", "env.config.action={type: ContinuousAction}", "env.config.action.type",
     "allowed with it: DiscreteMetaAction, DiscreteAction"),
    ("sac", "env.config.action={type: DiscreteMetaAction}", "env.config.action.type",
     "allowed with it: ContinuousAction"),
    ("tqc", "env.config.action={type: DiscreteAction}", "env.config.action.type", "allowed with it: ContinuousAction"),
]


@pytest.mark.parametrize("algo, override, field, allowed", ISSUE_EXAMPLES + MORE_BAD,
                         ids=[case[1] for case in ISSUE_EXAMPLES + MORE_BAD])
def test_a_bad_value_is_one_line_naming_the_field(tmp_path, algo, override, field, allowed):
    with pytest.raises(ConfigError) as caught:
        load_config(experiment(tmp_path, algo), [override])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--set: {field}: "), message
    assert allowed in message, message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override, field", [
    ("agent.hyperparameters.gamma=1.3", "agent.hyperparameters.gamma"),
    ("agent.policy_kwargs.net_arch=[64,-64]", "agent.policy_kwargs.net_arch.1"),
    ("training.torch_threads=1000000", "training.torch_threads"),
])
def test_the_command_exits_2_with_one_line_before_a_run_folder(tmp_path, override, field):
    path = experiment(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's code, not an installed one
    result = subprocess.run([sys.executable, "-m", "experiments.cli", "train", str(path), "--set", override],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "Warning" not in line
             and not line.startswith("  ")]
    assert len(lines) == 1 and f"{field}: must be" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("algo, overrides", [
    ("dqn", ["agent.hyperparameters.gamma=1.0"]),
    ("dqn", ["agent.hyperparameters.gamma=0"]),
    ("dqn", ["agent.hyperparameters.train_freq=[4,episode]"]),
    ("dqn", ["agent.hyperparameters.train_freq=[16,step]", "env.n_envs=4"]),
    ("dqn", ["agent.hyperparameters.gradient_steps=-1"]),
    ("dqn", ["agent.hyperparameters.exploration_fraction=1", "agent.hyperparameters.exploration_final_eps=0"]),
    ("dqn", ["agent.hyperparameters.exploration_fraction=0"]),
    ("dqn", ["agent.hyperparameters.optimize_memory_usage=true",
             "agent.hyperparameters.replay_buffer_kwargs={handle_timeout_termination: false}"]),
    ("dqn", ["agent.hyperparameters.n_steps=3"]),
    ("dqn", ["agent.policy_kwargs.net_arch=[]", "agent.policy_kwargs.activation_fn=torch.nn:Tanh"]),
    ("dqn", ["agent.policy_kwargs.optimizer_class=torch.optim.SGD",
             "agent.policy_kwargs.optimizer_kwargs={momentum: 0.9, nesterov: true}"]),
    ("dqn", ["agent.policy_kwargs.features_extractor_class=agents.extractors:EgoAttention"]),
    ("ppo", ["agent.hyperparameters.ent_coef=0", "agent.hyperparameters.clip_range_vf=null"]),
    ("ppo", ["agent.hyperparameters.n_steps=1", "env.n_envs=2"]),
    ("ppo", ["agent.hyperparameters.batch_size=1", "agent.hyperparameters.normalize_advantage=false"]),
    ("ppo", ["agent.policy_kwargs.net_arch={pi: [64, 64], vf: [32]}"]),
    ("sac", ["agent.hyperparameters.ent_coef=auto"]),
    ("sac", ["agent.hyperparameters.ent_coef=auto_0.1", "agent.hyperparameters.target_entropy=-2"]),
    ("sac", ["agent.policy_kwargs.net_arch={pi: [64], qf: [64, 64]}"]),
    ("tqc", ["agent.hyperparameters.top_quantiles_to_drop_per_net=0", "agent.policy_kwargs.n_quantiles=5"]),
    ("dqn", ["training.device=cuda:1"]),
    ("dqn", ["training.device=auto", f"training.torch_threads={os.cpu_count()}"]),
])
def test_valid_edge_values_are_accepted(tmp_path, algo, overrides):
    load_config(experiment(tmp_path, algo), overrides)


EXPERIMENT_FILES = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if not {"sweeps", "compare"} & set(p.parts))


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_every_shipped_experiment_still_validates(path):
    load_config(path)  # each has trained before these checks existed


@pytest.mark.parametrize("path", sorted((EXPERIMENTS / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_experiment_still_validates(path):
    load_sweep(path)


@pytest.mark.parametrize("path", sorted((EXPERIMENTS / "compare").glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("quick", [False, True])
def test_every_shipped_comparison_cell_still_validates(path, quick):
    load_comparison(path, quick=quick)  # every variant, scenario and condition


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_hyperparameter_of_the_eight_algorithms_has_a_rule_its_default_meets(algo):
    cls = ALGORITHMS[algo]
    table = hyperparameter_table(cls)
    for parameter in constructor_signature(cls)[0]:
        if parameter.name in _RESERVED or parameter.name in CLASS_KWARGS:
            continue
        rule = table[parameter.name]
        assert rule is not None, f"{algo}.{parameter.name} has no rule"
        if parameter.default is not inspect.Parameter.empty:  # SB3's own defaults are valid settings
            assert rule.accepts(parameter.default), f"{algo}.{parameter.name}={parameter.default!r}"
    assert not table["gamma"].accepts(math.inf) and not table["gamma"].accepts(True)


def cartpole(n_envs: int = 1):
    return make_vec_env("CartPole-v1", n_envs=n_envs)


@pytest.mark.parametrize("make", [
    lambda: PPO("MlpPolicy", cartpole(), n_steps=8, batch_size=1),
    lambda: PPO("MlpPolicy", cartpole(), n_steps=1),
    lambda: DQN("MlpPolicy", cartpole(), optimize_memory_usage=True),
    lambda: DQN("MlpPolicy", cartpole(), replay_buffer_kwargs={"n_steps": 3}),
    lambda: DQN("MlpPolicy", cartpole(), policy_kwargs={"net_arch": [64, -64]}),
    lambda: DQN("MlpPolicy", cartpole(), policy_kwargs={"optimizer_kwargs": {"lr": 0.1}}),
    lambda: DQN("MlpPolicy", cartpole(), train_freq=[4, "episode"]).learn(4),  # SB3 wants the tuple
    lambda: DQN("MlpPolicy", make_vec_env("Pendulum-v1")),  # continuous actions
    lambda: SAC("MlpPolicy", cartpole()),  # discrete actions
])
def test_stock_sb3_fails_on_what_the_checks_refuse(make):
    """Independent truth for the combinations and ranges above: SB3 itself raises on each (after the run
    folder existed, before these checks)."""
    with pytest.raises((AssertionError, ValueError, TypeError, RuntimeError, ZeroDivisionError)):
        make()


def test_checked_values_reach_sb3_as_it_takes_them():
    """A YAML train_freq pair becomes SB3's tuple, a dotted-path class the class."""
    model = build("dqn", cartpole(), hyperparameters={"train_freq": [4, "episode"], "learning_starts": 0},
                  policy_kwargs={"activation_fn": "torch.nn:Tanh", "net_arch": [8]})
    assert model.train_freq == TrainFreq(4, TrainFrequencyUnit.EPISODE)
    assert any(isinstance(layer, torch.nn.Tanh) for layer in model.policy.q_net.modules())
    model.learn(20)
    with pytest.raises(ValueError, match="agent.hyperparameters.train_freq: an episode unit needs env.n_envs: 1"):
        build("dqn", cartpole(2), hyperparameters={"train_freq": [4, "episode"]})


def test_tqc_drops_fewer_quantiles_than_it_has():
    """top_quantiles_to_drop_per_net = n_quantiles leaves TQC nothing to learn from: stock TQC's target is empty."""
    env = make_vec_env(lambda: gym.make("Pendulum-v1"), n_envs=1)
    model = TQC("MlpPolicy", env, top_quantiles_to_drop_per_net=5, policy_kwargs={"n_quantiles": 5},
                learning_starts=0, batch_size=4)
    quantiles = model.critic.quantiles_total - model.top_quantiles_to_drop_per_net * model.critic.n_critics
    assert quantiles == 0


def test_yaml_text_is_checked_as_written(tmp_path):
    """A file (not --set) names itself as the source."""
    path = tmp_path / "e.yaml"
    path.write_text(textwrap.dedent("""
        name: t
        agent: {algo: dqn, hyperparameters: {gamma: 1.3}}
        training: {total_timesteps: 100}
    """))
    with pytest.raises(ConfigError, match=rf"^{path}: agent.hyperparameters.gamma: must be a number in \[0, 1\]"):
        load_config(path)


def test_a_scenario_whose_default_actions_the_algorithm_cannot_take_is_refused_naming_the_default(tmp_path):
    """racetrack-v0 drives with ContinuousAction unless told otherwise: DQN there fails at load, not at build."""
    with pytest.raises(ConfigError) as caught:
        load_config(experiment(tmp_path, "dqn"), ["env.id=racetrack-v0"])
    message = str(caught.value)
    assert "\n" not in message and "env.config.action.type: ContinuousAction (racetrack-v0's default)" in message
    assert "allowed with it: DiscreteMetaAction, DiscreteAction" in message
    assert not (tmp_path / "runs").exists()
    load_config(experiment(tmp_path, "dqn"), ["env.id=racetrack-v0", "env.config.action={type: DiscreteAction}"])
