"""Driving a plastic spiking actor's three-factor rule while an on-policy agent collects its rollout.

After each env step (``PlasticityStep``, wrapped around the rollout's callback by
``OnPolicyNeuroAgent.collect_rollouts``):

1. the decision just made is replayed into the plastic layers' traces (``PlasticReadout.record_decision``),
   the readout's post-synaptic spikes gated by the actions taken;
2. the one-step TD error of the critic, ``delta_t = r_t + gamma V(s_{t+1}) (1 - terminated) - V(s_t)``
   (a time limit bootstraps from the value of the final observation, as SB3's PPO does), becomes the
   dopamine module's learning signal (``DopamineModule.transform``; the raw error without a module);
3. each plastic weight moves by ``learning_rate x dopamine x eligibility`` (per env, averaged over envs);
4. the traces of the envs whose episode ended are cleared for the next one (and those of envs that
   ``learn()`` reset, before their first decision).

The decision is replayed, not taken from the rollout's forward pass, so that nothing else deciding
in between (an evaluation callback) can reach the traces. Every rollout logs the traces' norms, the
TD error, the dopamine signal and the weight change per update under ``neuro/plasticity/``.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor

from neuro.snn.network import PlasticReadout

__all__ = ["PlasticityStep", "plastic_actor", "with_plasticity"]


def plastic_actor(agent: BaseAlgorithm) -> PlasticReadout | None:
    """The policy's decision network when it learns by a three-factor rule (a ``PlasticReadout``: the
    ``spiking`` or ``spiking_cnn`` part with ``plasticity``), else None."""
    decision_network = getattr(agent.policy, "decision_network", None)
    network = decision_network() if decision_network is not None else None
    return network if isinstance(network, PlasticReadout) and network.plastic else None


def with_plasticity(agent: BaseAlgorithm, callback: BaseCallback) -> BaseCallback:
    """The rollout's callback, with the plasticity step before it when the agent's actor is plastic."""
    network = plastic_actor(agent)
    return callback if network is None else PlasticityStep(agent, callback, network)


class PlasticityStep(BaseCallback):
    """Runs the three-factor update after every env step of a rollout, then the wrapped callback.

    :param agent: the on-policy agent (its ``policy`` has a critic, its ``neuro`` maybe a dopamine module).
    :param callback: the rollout's own callback, called as SB3 would call it.
    :param network: the plastic actor.
    """

    def __init__(self, agent: BaseAlgorithm, callback: BaseCallback, network: PlasticReadout) -> None:
        super().__init__()
        self.agent = agent
        self.inner = callback
        self.network = network
        self._rollout_locals: dict[str, Any] = {}
        self._td_errors: list[th.Tensor] = []
        self._signals: list[th.Tensor] = []
        self._changes: list[float] = []

    # SB3's collect_rollouts calls these four on its callback.
    def on_rollout_start(self) -> None:
        self.inner.on_rollout_start()

    def update_locals(self, locals_: dict[str, Any]) -> None:
        self._rollout_locals = locals_
        self.inner.update_locals(locals_)

    def on_step(self) -> bool:
        self.plasticity_step(self._rollout_locals)
        return self.inner.on_step()

    def on_rollout_end(self) -> None:
        self._record()
        self.inner.on_rollout_end()

    def _on_step(self) -> bool:
        return True

    def plasticity_step(self, step: dict[str, Any]) -> None:
        """One env step's update from the rollout's locals (``obs_tensor``, ``actions``, ``values``,
        ``rewards``, ``new_obs``, ``dones``, ``infos``)."""
        agent, policy, network = self.agent, cast(ActorCriticPolicy, self.agent.policy), self.network
        starts = getattr(agent, "_last_episode_starts", None)
        with th.no_grad():
            if starts is not None:  # the envs reset by learn() start an episode too
                network.episode_start(th.as_tensor(np.asarray(starts, dtype=bool), device=policy.device))
            features = policy.extract_features(step["obs_tensor"])
            features = features[0] if isinstance(features, tuple) else features  # the actor's, when not shared
            actions = th.as_tensor(np.asarray(step["actions"]).reshape(-1), device=policy.device).long()
            chosen = th.nn.functional.one_hot(actions, network.out_features)
            network.record_decision(features, chosen)
            dopamine = agent.neuro.get("dopamine") if hasattr(agent, "neuro") else None
            td_error = self._td_error(step, dopamine)
            signal = td_error if dopamine is None else dopamine.transform(td_error)
            change = network.apply_dopamine(signal.to(policy.device))
            network.episode_start(th.as_tensor(np.asarray(step["dones"], dtype=bool), device=policy.device))
        self._td_errors.append(td_error)
        self._signals.append(signal)
        self._changes.append(change["weight_change"])

    def _td_error(self, step: dict[str, Any], dopamine: Any = None) -> th.Tensor:
        """delta_t of each env, with the critic's values (the acting statistic of a multi-channel one), less
        ``dopamine``'s baseline (average_reward's rate) when it has one."""
        agent, policy = self.agent, cast(ActorCriticPolicy, self.agent.policy)
        rewards = th.as_tensor(np.asarray(step["rewards"], dtype=np.float32))
        dones = np.asarray(step["dones"], dtype=bool)
        next_values = policy.predict_values(obs_as_tensor(step["new_obs"], policy.device))
        next_values = next_values.flatten().cpu().float()
        terminated = th.zeros(len(dones))
        for env in np.flatnonzero(dones):
            info = step["infos"][env]
            final = info.get("terminal_observation")
            if info.get("TimeLimit.truncated", False) and final is not None:
                obs, _ = policy.obs_to_tensor(final)
                next_values[env] = policy.predict_values(obs).flatten()[0].cpu()
            else:
                next_values[env] = 0.0
                terminated[env] = 1.0
        values = step["values"].flatten().cpu().float()
        gamma = float(agent.gamma)  # type: ignore[attr-defined]
        td_error = rewards + gamma * next_values - values
        if dopamine is not None:
            baseline = dopamine.baseline(terminated, gamma)  # average_reward's rate
            td_error = td_error - baseline
        return td_error

    def _record(self) -> None:
        """The rollout's plasticity figures under ``neuro/plasticity/``."""
        if not self._td_errors:
            return
        logger = self.agent.logger
        td_error, signal = th.cat(self._td_errors), th.cat(self._signals)
        logger.record("neuro/plasticity/td_error_mean", float(td_error.mean()))
        logger.record("neuro/plasticity/dopamine_mean", float(signal.mean()))
        logger.record("neuro/plasticity/dopamine_std", float(signal.std()) if signal.numel() > 1 else 0.0)
        logger.record("neuro/plasticity/weight_change", float(np.mean(self._changes)))
        logger.record("neuro/plasticity/updates", len(self._changes))
        for key, value in self.network.plasticity_stats().items():
            if key.endswith(("_norm",)):
                logger.record(f"neuro/plasticity/{key}", value)
        self._td_errors, self._signals, self._changes = [], [], []


def check_plasticity(agent: BaseAlgorithm, drives_plasticity: bool) -> None:
    """Refuse a plastic actor that nothing would drive (off-policy agents), or a dopamine module whose
    signal is not one value per env (several value channels)."""
    if plastic_actor(agent) is None:
        return
    if not drives_plasticity:
        raise ValueError(f"agent.snn.plasticity: {type(agent).__name__} does not drive a three-factor rule; "
                         "the on-policy agents do (ppo, a2c)")
    dopamine = getattr(agent, "neuro", {}).get("dopamine")
    if dopamine is not None and dopamine.n_channels > 1:
        raise ValueError("neuro.dopamine: a plastic actor takes one dopamine signal per env; "
                         f"{type(dopamine).__name__} has {dopamine.n_channels} value channels")
