"""What every SB3 algorithm with neuro parts shares: the whole ``neuro:`` section in one argument,
and the hooks that write modulated meta-parameters where SB3 reads them.

SB3 would silently undo a meta-parameter written from a callback, so each is written in the hook
that owns it:

- learning rate: ``_update_learning_rate``, which SB3 calls at every ``train()`` to reset the
  optimizers' ``param_groups[*]["lr"]`` from its schedule;
- exploration: DQN's epsilon in ``_on_step`` (where SB3 recomputes it after every env step), the
  entropy coefficient of PPO/A2C before ``train()`` (which reads ``ent_coef``);
- discount: ``gamma`` of the algorithm and of its rollout buffer together, before each rollout, so
  the rollout's time-limit bootstrap, its GAE and the next ``train()`` use one gamma. A replay buffer
  with precomputed n-step discounts cannot follow it: refused.

Modulators read the TD errors of each update from ``observe_td_errors``, the one place where an
agent hands them over (the dopamine module's signal when the agent has one), and the rewards of each
env step from a ``RewardTap`` around the env while a rollout is collected.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from neuro.dopamine import DopamineModule
from neuro.modulation import MODULATOR_REGISTRIES, Modulator, TDErrorSummary
from neuro.parts import make_neuro

logger = logging.getLogger("neurodrive.neuro")


class RewardTap(VecEnvWrapper):
    """Hands each env step's mean reward (over the envs) to the modulators that read rewards."""

    def __init__(self, venv: VecEnv, readers: list[Modulator]) -> None:
        super().__init__(venv)
        self.readers = readers

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        reward = float(np.mean(rewards))
        for reader in self.readers:
            reader.observe_reward(reward)
        return observations, rewards, dones, infos


def one_step_td_errors(advantages: np.ndarray, episode_starts: np.ndarray, decay: float) -> np.ndarray:
    """The one-step TD errors behind GAE advantages: delta_t = A_t - decay (1 - start_{t+1}) A_{t+1}
    (``decay`` = gamma lambda), and delta_T = A_T at the rollout's end, inverting GAE's recursion."""
    td_errors = advantages.copy()
    td_errors[:-1] -= decay * (1.0 - episode_starts[1:]) * advantages[1:]
    return td_errors


def check_modulators(cls: type, modulators: dict[str, type], n_steps: int,
                     algorithms: dict[str, type] | None = None) -> None:
    """Refuse a modulator the algorithm cannot honour: one that reads TD errors on an algorithm that
    does not hand them over, a discount modulator over precomputed n-step discounts.

    :param algorithms: the registry's algorithms by name, to list those that take the modulator.
    """
    for kind, modulator in modulators.items():
        if getattr(modulator, "reads_td_errors", False) and not getattr(cls, "exposes_td_errors", False):
            takers = [name for name, algo in (algorithms or {}).items()
                      if kind in getattr(algo, "neuro_parts", ()) and getattr(algo, "exposes_td_errors", False)]
            raise ValueError(f"neuro.{kind}.type: {getattr(modulator, 'name', modulator.__name__)} reads TD errors, "
                             f"which {cls.__name__} does not hand over"
                             + (f"; algorithms that do: {', '.join(takers)}" if takers else ""))
    if "discount" in modulators and n_steps > 1:
        raise ValueError(f"neuro.discount: agent.hyperparameters.n_steps={n_steps} precomputes n-step discounts in "
                         "the replay buffer, which cannot follow a modulated gamma; use n_steps: 1 or drop the "
                         "discount modulator")


class NeuroAgent:
    """Mixin before an SB3 algorithm class (``class DopamineDQN(NeuroAgent, DQN)``): ``neuro`` holds
    the parts by kind, built from their specs (or passed built) before SB3 sets the model up, so
    ``_setup_model`` and ``train`` can read them. A kind not given gets its registry's default
    (``dopamine``: standard TD) or is absent (the modulators: the algorithm's own value).

    :param neuro: ``{kind: spec or part}`` for the kinds in ``neuro_parts``; any other kind is an error.
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ()
    exposes_td_errors: ClassVar[bool] = False  # hands each update's TD errors to observe_td_errors
    # Attributes of the SB3 algorithm this mixin comes before, which the hooks below read and write.
    gamma: float
    ent_coef: Any
    gae_lambda: float
    rollout_buffer: Any

    def __init__(self, *args: Any, neuro: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.neuro = make_neuro(neuro, self.neuro_parts)
        super().__init__(*args, **kwargs)
        # The algorithm's own values, which modulated ones scale; SB3's load restores the saved ones.
        self._base_gamma: float = self.gamma

        self._base_ent_coef: Any = getattr(self, "ent_coef", None)

    @property
    def dopamine(self) -> DopamineModule:
        """The TD-error module (``neuro.dopamine``), for agents that take one."""
        try:
            return self.neuro["dopamine"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} takes no dopamine part") from None

    @property
    def modulators(self) -> dict[str, Modulator]:
        """The attached modulators by kind (``learning_rate``, ``exploration``, ``discount``)."""
        return {kind: part for kind, part in self.neuro.items() if kind in MODULATOR_REGISTRIES}

    def _adopt_saved_parts(self) -> None:
        """Call first in ``_setup_model``: a model saved before the parts were grouped under
        ``neuro`` carries its TD-error module as ``dopamine``, which SB3's ``load`` puts in the
        instance dict, where the property above would hide it."""
        saved = self.__dict__.pop("dopamine", None)
        if saved is not None:
            self.neuro = {**self.neuro, "dopamine": saved}

    def _setup_model(self) -> None:
        self._adopt_saved_parts()
        n_steps = 1 if isinstance(self, OnPolicyAlgorithm) else max(
            getattr(self, "n_steps", 1), self.replay_buffer_kwargs.get("n_steps", 1))  # type: ignore[attr-defined]
        check_modulators(type(self), {kind: type(part) for kind, part in self.modulators.items()}, n_steps)
        for modulator in self.modulators.values():
            modulator.set_seed(self.seed)  # type: ignore[attr-defined]
        super()._setup_model()  # type: ignore[misc]

    # -- signals -------------------------------------------------------------------------------

    def _readers(self, signal: str) -> list[Modulator]:
        """The modulators that read ``td_errors`` or ``rewards``, listed once (this runs every step)."""
        cache = self.__dict__.setdefault("_signal_readers", {})
        if signal not in cache:
            cache[signal] = [modulator for modulator in self.modulators.values()
                             if getattr(modulator, f"reads_{signal}")]
        return cache[signal]

    def _excluded_save_params(self) -> list[str]:
        # Lists of the modulators and an env wrapper: rebuilt on demand, and saving them would pickle
        # second copies of the modulators.
        return [*super()._excluded_save_params(), "_signal_readers", "_reward_tap"]  # type: ignore[misc]

    def observe_td_errors(self, signal: th.Tensor | np.ndarray) -> None:
        """The TD errors (the dopamine signal, with a dopamine module) of one update, handed to the
        modulators that read them. Agents call it once after each update."""
        readers = self._readers("td_errors")
        if readers:
            summary = TDErrorSummary.of(signal)
            for modulator in readers:
                modulator.observe_td_errors(summary)

    # -- the hooks where SB3 reads each meta-parameter ------------------------------------------

    def _modulated(self, kind: str, base: float, valid: Callable[[float], bool]) -> float:
        """The ``kind`` modulator's value for ``base``, recorded with its signals; a value that is
        not finite or not ``valid`` is reported and replaced by ``base``, never written."""
        modulator = self.neuro[kind]
        value = float(modulator.value(base, self._current_progress_remaining))  # type: ignore[attr-defined]
        if not (math.isfinite(value) and valid(value)):
            logger.warning("neuro.%s: %s gave %r; kept the algorithm's %r", kind, type(modulator).__name__, value, base)
            modulator.ignored_signals += 1
            value = base
        record = self.logger.record  # type: ignore[attr-defined]
        for key, stat in modulator.stats().items():
            record(f"neuro/{key}", stat)
        if modulator.ignored_signals:
            record(f"neuro/{kind}_ignored_signals", modulator.ignored_signals)
        return value

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        if "learning_rate" not in self.neuro:
            return super()._update_learning_rate(optimizers)  # type: ignore[misc]
        base = self.lr_schedule(self._current_progress_remaining)  # type: ignore[attr-defined]
        learning_rate = self._modulated("learning_rate", base, lambda value: value > 0)
        self.logger.record("train/learning_rate", learning_rate)  # type: ignore[attr-defined]
        self.logger.record("neuro/learning_rate", learning_rate)  # type: ignore[attr-defined]
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            update_learning_rate(optimizer, learning_rate)
        return None

    def _on_step(self) -> None:
        """Off-policy algorithms: SB3 recomputes epsilon here after every env step."""
        super()._on_step()  # type: ignore[misc]
        if "exploration" in self.neuro:
            epsilon = self._modulated("exploration", self.exploration_rate, lambda value: value >= 0)  # type: ignore[has-type]
            self.exploration_rate = min(epsilon, 1.0)
            self.logger.record("rollout/exploration_rate", self.exploration_rate)  # type: ignore[attr-defined]
            self.logger.record("neuro/epsilon", self.exploration_rate)  # type: ignore[attr-defined]

    def train(self, *args: Any, **kwargs: Any) -> None:
        if "exploration" in self.neuro and isinstance(self, OnPolicyAlgorithm):
            self.ent_coef = self._modulated("exploration", self._base_ent_coef, lambda value: value >= 0)
            self.logger.record("neuro/ent_coef", self.ent_coef)
        super().train(*args, **kwargs)  # type: ignore[misc]

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> Any:
        if "discount" in self.neuro:
            gamma = self._modulated("discount", self._base_gamma, lambda value: 0.0 < value < 1.0)
            self.gamma = gamma
            if getattr(self, "rollout_buffer", None) is not None:
                self.rollout_buffer.gamma = gamma
            self.logger.record("neuro/gamma", gamma)  # type: ignore[attr-defined]
        readers = self._readers("rewards")
        if readers:
            tap = self.__dict__.get("_reward_tap")
            if tap is None or tap.venv is not env:  # one wrapper per env: SB3's wrapper init is slow
                tap = self.__dict__["_reward_tap"] = RewardTap(env, readers)
            env = tap
        collected = super().collect_rollouts(env, *args, **kwargs)  # type: ignore[misc]
        if collected is True and "dopamine" not in self.neuro and self.exposes_td_errors:
            buffer = self.rollout_buffer
            self.observe_td_errors(one_step_td_errors(buffer.advantages, buffer.episode_starts,
                                                      self.gamma * self.gae_lambda))
        return collected

    def neuro_values(self) -> dict[str, float]:
        """The modulated meta-parameters as they stand, and their modulators' signals (``eval.json``)."""
        values: dict[str, float] = {}
        if "learning_rate" in self.neuro:
            policy = self.policy  # type: ignore[attr-defined]
            optimizer = policy.optimizer if hasattr(policy, "optimizer") else policy.actor.optimizer
            values["learning_rate"] = float(optimizer.param_groups[0]["lr"])
        if "exploration" in self.neuro:
            if isinstance(self, OnPolicyAlgorithm):
                values["ent_coef"] = float(self.ent_coef)
            else:
                values["epsilon"] = float(self.exploration_rate)
        if "discount" in self.neuro:
            values["gamma"] = float(self.gamma)
        for kind, modulator in self.modulators.items():
            values.update(modulator.stats())
            if modulator.ignored_signals:
                values[f"{kind}_ignored_signals"] = modulator.ignored_signals
        return values
