"""Agents by name: a registry from a YAML ``algo`` name to an SB3 algorithm class, and ``build``.

A user's own class loads by dotted path (``mypkg.mymod:MyAlgo``), and so does a policy class
(``agent.policy``). Hyperparameters pass through to the class unchanged (a YAML ``train_freq`` pair
as SB3's tuple), but are checked against its signature and ``agents.hyperparameters``' ranges before
anything is built. An algorithm takes neuro parts when it lists their kinds
in ``neuro_parts`` and accepts them all in one ``neuro`` argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sb3_contrib import RecurrentPPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from agents import recurrent_policies as _recurrent_policies  # noqa: F401  (registers RecurrentPPO's network policy)
from agents.dopamine_dqn import DopamineDQN
from agents.dopamine_ppo import DopaminePPO
from agents.hyperparameters import (
    check_combinations,
    check_hyperparameter_values,
    check_policy_kwargs,
    sb3_hyperparameters,
    sb3_policy_kwargs,
)
from agents.neuro_agent import check_modulators
from agents.neuro_algorithms import NeuroA2C, NeuroQRDQN, NeuroRecurrentPPO, NeuroSAC, NeuroTD3, NeuroTQC
from agents.spiking_policies import NetworkPolicy, SpikingPolicy, network_policy_for, spiking_policy_for
from neuro.modulation import MODULATOR_REGISTRIES
from neuro.parts import POLICY_PARTS, part_registry
from neuro.registry import SpecError, constructor_signature, is_dotted_path, load_object

__all__ = ["ALGORITHMS", "SPIKING", "algorithm_name", "build", "check_hyperparameters", "check_neuro",
           "check_policy", "check_policy_space", "default_policy", "get_algorithm", "neuro_parts", "register_algorithm"]

# DQN and PPO take a TD-error module (``neuro.dopamine``); every algorithm takes the modulators of
# the meta-parameters it has (``agents.neuro_algorithms``). With the default parts each is stock SB3.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "dqn": DopamineDQN,
    "ppo": DopaminePPO,
    "a2c": NeuroA2C,
    "sac": NeuroSAC,
    "td3": NeuroTD3,
    "qrdqn": NeuroQRDQN,
    "tqc": NeuroTQC,
    "recurrent_ppo": NeuroRecurrentPPO,
}

SPIKING = "spiking"  # agent.policy: the algorithm's spiking policy (agents.spiking_policies)
# Aliases a network part replaces the MLP of: the algorithm's network policy is used in their place.
_MLP_ALIASES = ("MlpPolicy", "MultiInputPolicy")

# Arguments the run loop sets itself; a config must not pass them as hyperparameters.
_RESERVED = (
    "policy", "env", "seed", "tensorboard_log", "verbose", "policy_kwargs", "device", "_init_setup_model",
    "neuro",
)


def register_algorithm(name: str) -> Callable[[type[BaseAlgorithm]], type[BaseAlgorithm]]:
    """Class decorator: make ``algo: name`` resolve to the decorated class."""

    def decorator(cls: type[BaseAlgorithm]) -> type[BaseAlgorithm]:
        ALGORITHMS[name.lower()] = cls
        return cls

    return decorator


def get_algorithm(name: str) -> type[BaseAlgorithm]:
    """Resolve an algorithm name or dotted path; the error lists the registered names."""
    if name.lower() in ALGORITHMS:
        return ALGORITHMS[name.lower()]
    if is_dotted_path(name):
        cls = load_object(name)
        if not (inspect.isclass(cls) and issubclass(cls, BaseAlgorithm)):
            raise ValueError(f"agent.algo: {name!r} is not an SB3 BaseAlgorithm subclass")
        return cls
    raise ValueError(
        f"agent.algo: unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)} "
        "or a dotted path package.module:Class"
    )


def algorithm_name(cls: type[BaseAlgorithm]) -> str:
    for name, registered in ALGORITHMS.items():
        if registered is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def constructor_arguments(cls: type[BaseAlgorithm]) -> list[str]:
    """Named constructor arguments, following ``**kwargs`` up the class hierarchy."""
    return [parameter.name for parameter in constructor_signature(cls)[0]]


def neuro_parts(cls: type[BaseAlgorithm]) -> tuple[str, ...]:
    """The kinds of neuro part an algorithm consumes (its ``neuro_parts``)."""
    return tuple(getattr(cls, "neuro_parts", ()))


def check_hyperparameters(cls: type[BaseAlgorithm], hyperparameters: dict[str, Any]) -> None:
    """Fail early on a hyperparameter the algorithm does not take, listing those it does, or on a value
    out of its type and range (``agents.hyperparameters``)."""
    accepted = constructor_arguments(cls)
    allowed = [name for name in accepted if name not in _RESERVED]
    for key in hyperparameters:
        if key in _RESERVED:
            raise ValueError(f"agent.hyperparameters.{key}: set by the run, not a hyperparameter")
        if key not in accepted:
            raise ValueError(
                f"agent.hyperparameters.{key}: {cls.__name__} has no such argument; "
                f"allowed: {', '.join(allowed)}"
            )
    check_hyperparameter_values(cls, hyperparameters)


def check_neuro(cls: type[BaseAlgorithm], neuro: dict[str, Any] | None,
                hyperparameters: dict[str, Any] | None = None) -> None:
    """Every neuro part is known, consumed by the algorithm and valid (specs), and the modulators
    fit the algorithm's settings (``hyperparameters``); builds nothing."""
    modulators: dict[str, type] = {}
    for kind, spec in (neuro or {}).items():
        registry = part_registry(kind)
        if kind not in neuro_parts(cls):
            takers = [name for name, algo in ALGORITHMS.items() if kind in neuro_parts(algo)]
            raise ValueError(f"neuro.{kind}: {algorithm_name(cls)} takes no {kind} part; "
                             f"algorithms that do: {', '.join(takers) or 'none'}")
        if isinstance(spec, registry.base):
            part_cls = type(spec)
        elif spec is None:
            continue
        else:
            part_cls, _ = registry.split(spec)
        if kind in MODULATOR_REGISTRIES:
            modulators[kind] = part_cls
    hyperparameters = hyperparameters or {}
    n_steps = 1
    if issubclass(cls, OffPolicyAlgorithm):
        n_steps = max(int(hyperparameters.get("n_steps", 1)),
                      int((hyperparameters.get("replay_buffer_kwargs") or {}).get("n_steps", 1)))
    check_modulators(cls, modulators, n_steps, ALGORITHMS)
    if "exploration" in modulators and issubclass(cls, OnPolicyAlgorithm):
        ent_coef = hyperparameters.get("ent_coef", constructor_default(cls, "ent_coef"))
        if not ent_coef:
            raise ValueError(f"agent.hyperparameters.ent_coef: an exploration modulator scales the entropy "
                             f"coefficient, which is {ent_coef!r} here; set ent_coef > 0")


def constructor_default(cls: type[BaseAlgorithm], name: str) -> Any:
    for parameter in constructor_signature(cls)[0]:
        if parameter.name == name:
            return parameter.default
    return None


def resolve_policy(cls: type[BaseAlgorithm], policy: str | None,
                   policy_kwargs: dict[str, Any] | None = None) -> str | type[BasePolicy] | None:
    """A policy alias of the algorithm (``MlpPolicy``), ``spiking`` (its spiking policy), a dotted
    path to a policy class, or None; with a network part in ``policy_kwargs`` (``network``), None or an
    MLP alias is the algorithm's network policy."""
    if policy == SPIKING:
        spiking_cls = spiking_policy_for(cls)
        if spiking_cls is None:
            raise ValueError(f"agent.policy: {algorithm_name(cls)} has no spiking policy; algorithms that do: "
                             f"{', '.join(name for name, algo in ALGORITHMS.items() if spiking_policy_for(algo))}")
        return spiking_cls
    if "network" in (policy_kwargs or {}) and (policy is None or policy in _MLP_ALIASES):
        network_cls = network_policy_for(cls)
        if network_cls is None:
            takers = [name for name, algo in ALGORITHMS.items() if network_policy_for(algo)]
            raise ValueError(f"agent.policy_kwargs.network: {algorithm_name(cls)} has no network policy; "
                             f"algorithms that do: {', '.join(takers)}")
        return network_cls
    if policy is None or not is_dotted_path(policy):
        if policy is not None and policy not in getattr(cls, "policy_aliases", {}):
            aliases = ", ".join(getattr(cls, "policy_aliases", {}))
            raise ValueError(f"agent.policy: {cls.__name__} has no policy {policy!r}; "
                             f"allowed: {aliases}, {SPIKING} or a dotted path package.module:Class")
        return policy
    policy_cls = load_object(policy)
    if not (inspect.isclass(policy_cls) and issubclass(policy_cls, BasePolicy)):
        raise ValueError(f"agent.policy: {policy!r} is not an SB3 policy class (BasePolicy subclass)")
    return policy_cls


def check_policy(cls: type[BaseAlgorithm], policy: str | None, snn: dict[str, Any] | None = None,
                 policy_kwargs: dict[str, Any] | None = None) -> None:
    """The policy resolves, ``snn`` (``agent.snn``) goes with a spiking policy that can use it, and the
    network parts in ``policy_kwargs`` with a network policy, their specs valid (nothing built)."""
    try:
        policy_cls = resolve_policy(cls, policy, policy_kwargs)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith("agent.policy") else f"agent.policy: {message}") from None
    check_network_parts(cls, policy_cls, policy_kwargs or {})
    checked_cls = policy_class(cls, policy_cls)
    if checked_cls is not None:
        check_policy_kwargs(checked_cls, policy_kwargs or {}, issubclass(cls, OnPolicyAlgorithm))
    if snn is None:
        return
    if not is_spiking_policy(policy_cls):
        raise ValueError(f"agent.snn: only a spiking policy reads it; set agent.policy: {SPIKING} "
                         f"(or a SpikingPolicy subclass), got {policy!r}")
    if snn.get("critic", "ann") != "ann" and not issubclass(cls, OnPolicyAlgorithm):
        raise ValueError(f"agent.snn.critic: only PPO/A2C's critic can spike; {algorithm_name(cls)}'s stays "
                         "an ANN (allowed here: ann)")


def policy_class(cls: type[BaseAlgorithm], policy: str | type[BasePolicy] | None) -> type | None:
    """The class of a resolved policy (an alias looked up; None: the MLP alias the run defaults to), or
    None for an alias the algorithm does not list."""
    if inspect.isclass(policy):
        return policy
    aliases = getattr(cls, "policy_aliases", {})
    if policy is None:
        policy = "MlpLstmPolicy" if issubclass(cls, RecurrentPPO) else "MlpPolicy"
    found = aliases.get(policy)
    return found if inspect.isclass(found) else None


def check_network_parts(cls: type[BaseAlgorithm], policy_cls: str | type[BasePolicy] | None,
                        policy_kwargs: dict[str, Any]) -> None:
    """The network parts in ``policy_kwargs`` (``neuro.parts.POLICY_PARTS``) are valid and read by the policy."""
    if is_network_policy(policy_cls) and not is_spiking_policy(policy_cls) and "network" not in policy_kwargs:
        raise ValueError(f"agent.policy_kwargs.network: required by a network policy; allowed types: "
                         f"{', '.join(POLICY_PARTS['network'].entries)} or a dotted path package.module:Class")
    for key in (key for key in POLICY_PARTS if key in policy_kwargs):
        where = f"agent.policy_kwargs.{key}"
        if is_spiking_policy(policy_cls):
            raise ValueError(f"{where}: agent.policy: {SPIKING} builds its network from agent.snn; give one "
                             f"of them (policy_kwargs.network: {{type: spiking, ...}} without agent.policy)")
        if not is_network_policy(policy_cls):
            raise ValueError(f"{where}: only a network policy reads it (with policy_kwargs.network, agent.policy "
                             "unset, an MLP alias or a NetworkPolicy subclass)")
        if key == "value_network" and not issubclass(cls, OnPolicyAlgorithm):
            raise ValueError(f"{where}: only PPO/A2C's critic takes a network part; {algorithm_name(cls)}'s "
                             "critics stay SB3's MLPs")
        registry = POLICY_PARTS[key]
        try:
            part_cls, _ = registry.split(policy_kwargs[key], {"in_features": 1, "hidden": [1], "out_features": None})
        except SpecError as error:  # one registry for both keys: the error names the key it came from
            raise ValueError(str(error).replace(registry.where, where, 1)) from None
        if issubclass(cls, RecurrentPPO) and not hasattr(part_cls, "sequence"):
            raise ValueError(f"{where}: recurrent_ppo takes a recurrent network part (one with state_size, "
                             f"initial_state, sequence: backpropamine), got {policy_kwargs[key].get('type')!r}")


def is_spiking_policy(policy: str | type[BasePolicy] | None) -> bool:
    return inspect.isclass(policy) and issubclass(policy, SpikingPolicy)


def is_network_policy(policy: str | type[BasePolicy] | None) -> bool:
    return inspect.isclass(policy) and issubclass(policy, NetworkPolicy)


def default_policy(cls: type[BaseAlgorithm], env: VecEnv) -> str:
    """The alias SB3 users pick for the observation space: ``CnnPolicy`` for an image (SB3's
    ``is_image_space``: uint8, rank 3; SB3 scales it to [0, 1] and transposes a channel-last one),
    ``MultiInputPolicy`` for a Dict, else ``MlpPolicy``; RecurrentPPO's ``*LstmPolicy`` of each."""
    from gymnasium import spaces

    from envs.observations import is_image_observation

    space = env.observation_space
    kind = "MultiInput" if isinstance(space, spaces.Dict) else "Cnn" if is_image_observation(space) else "Mlp"
    return f"{kind}LstmPolicy" if issubclass(cls, RecurrentPPO) else f"{kind}Policy"


def check_policy_space(cls: type[BaseAlgorithm], policy: str | type[BasePolicy] | None,
                       policy_kwargs: dict[str, Any] | None, space: Any, snn: dict[str, Any] | None = None) -> None:
    """The policy can read ``space``: a CNN alias needs an image, a network part that reads vectors
    (the spiking MLP) gets no raw image; one line naming ``agent.policy`` and the space otherwise.

    :param snn: ``agent.snn`` of a spiking policy (its ``convolutions`` make it read images)."""
    from envs.observations import is_image_observation

    policy_kwargs = policy_kwargs or {}
    image = is_image_observation(space)
    if isinstance(policy, str) and policy.startswith("Cnn") and not image:
        raise ValueError(f"agent.policy: {policy} reads images (a uint8 Box of rank 3, as GrayscaleObservation "
                         f"gives); this observation is {space}; use {default_policy_for_space(cls, space)}")
    # A Dict's images go through CombinedExtractor's NatureCNN (network_policy_kwargs): only a bare image is refused.
    if is_network_policy(policy) and image and "features_extractor_class" not in policy_kwargs \
            and not _reads_images(policy, policy_kwargs, snn):
        raise ValueError(f"agent.policy: {getattr(policy, '__name__', policy)} feeds its network a flat vector "
                         f"and this observation is an image {space}; use CnnPolicy, a network part that reads "
                         "images (one taking input_shape), or set agent.policy_kwargs.features_extractor_class "
                         "(e.g. stable_baselines3.common.torch_layers:NatureCNN)")


def _reads_images(policy: Any, policy_kwargs: dict[str, Any], snn: dict[str, Any] | None) -> bool:
    """Whether a network policy's network takes images itself: a policy with ``reads_images``, a spiking
    policy with ``agent.snn.convolutions``, or a network part whose constructor takes ``input_shape`` (the
    image's shape, which the network policies hand such a part)."""
    if getattr(policy, "reads_images", False) or (snn or {}).get("convolutions"):
        return True
    network = policy_kwargs.get("network")
    registry = POLICY_PARTS["network"]
    part = type(network) if isinstance(network, registry.base) else None
    if isinstance(network, dict) and network.get("type", registry.default) is not None:
        part = registry.resolve(str(network.get("type", registry.default)))
    return part is not None and "input_shape" in inspect.signature(part).parameters


def default_policy_for_space(cls: type[BaseAlgorithm], space: Any) -> str:
    """``default_policy`` of an observation space (no env needed)."""
    from types import SimpleNamespace

    return default_policy(cls, SimpleNamespace(observation_space=space))  # type: ignore[arg-type]


def network_policy_kwargs(policy_kwargs: dict[str, Any] | None, snn: dict[str, Any] | None,
                          env: VecEnv, spiking: bool) -> dict[str, Any]:
    """A network policy's kwargs: ``snn`` for a spiking policy, and the Dict-observation extractor the
    MultiInput aliases would have chosen."""
    from gymnasium import spaces
    from stable_baselines3.common.torch_layers import CombinedExtractor

    policy_kwargs = dict(policy_kwargs or {})
    if spiking:
        policy_kwargs["snn"] = dict(snn or {})
    if isinstance(env.observation_space, spaces.Dict):
        policy_kwargs.setdefault("features_extractor_class", CombinedExtractor)
    return policy_kwargs


def build(
    algo: str,
    env: VecEnv,
    policy: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
    device: str = "auto",
    neuro: dict[str, Any] | None = None,
    snn: dict[str, Any] | None = None,
) -> BaseAlgorithm:
    """Build an SB3 algorithm on ``env``; ``hyperparameters`` go to its constructor unchanged.

    :param neuro: the neuro parts by kind (``{"dopamine": {"type": "asymmetric", "kappa": 0.3}}``,
        specs or built parts), for algorithms that take them.
    :param snn: a spiking policy's settings (``neuro.snn.SnnConfig`` fields; ``policy="spiking"``), the
        first shape of ``policy_kwargs={"network": {"type": "spiking", **snn}}``.
    """
    cls = get_algorithm(algo)
    hyperparameters = dict(hyperparameters or {})
    check_hyperparameters(cls, hyperparameters)
    check_combinations(cls, hyperparameters, policy_kwargs, env.num_envs)
    check_neuro(cls, neuro, hyperparameters)
    check_policy(cls, policy, snn, policy_kwargs)
    hyperparameters = sb3_hyperparameters(hyperparameters)
    if neuro:
        hyperparameters["neuro"] = dict(neuro)
    policy_cls = resolve_policy(cls, policy, policy_kwargs)
    check_policy_space(cls, policy_cls, policy_kwargs, env.observation_space, snn)
    policy_kwargs = sb3_policy_kwargs(policy_kwargs)
    if is_network_policy(policy_cls):
        policy_kwargs = network_policy_kwargs(policy_kwargs, snn, env, is_spiking_policy(policy_cls))
    return cls(
        policy_cls or default_policy(cls, env),
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        device=device,
        **hyperparameters,
    )
