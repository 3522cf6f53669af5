"""What every SB3 algorithm with neuro parts shares: the whole ``neuro:`` section in one argument,
and the hooks that write modulated meta-parameters where SB3 reads them.

SB3 would silently undo a meta-parameter written from a callback, so each is written in the hook
that owns it, one ``MetaParameter`` per kind saying what it is called and which values are valid:

- learning rate (``LEARNING_RATE``): ``_update_learning_rate``, which SB3 calls at every ``train()``
  to reset the optimizers' ``param_groups[*]["lr"]`` from its schedule;
- exploration: off-policy, DQN's epsilon (``EPSILON``) in ``_on_step``, where SB3 recomputes it
  after every env step; on-policy, the entropy coefficient (``ENT_COEF``) before ``train()``, which
  reads ``ent_coef``;
- discount (``GAMMA``): ``gamma`` before each rollout (on-policy: with its rollout buffer's), so the
  rollout's time-limit bootstrap, its GAE and the next ``train()`` use one gamma. A replay buffer
  with precomputed n-step discounts cannot follow it: refused.

``OffPolicyNeuroAgent`` and ``OnPolicyNeuroAgent`` hold what differs between the two families; an
algorithm class puts one of them before its SB3 class.

Modulators read the TD errors of each update from ``observe_td_errors``, the one place where an
agent hands them over (the dopamine module's signal when the agent has one), and the rewards of each
env step from a ``RewardTap`` around the env while a rollout is collected. Every part's ``stats()``
is logged under ``neuro/<kind>/<key>`` when SB3 writes its logs, and each written meta-parameter
under ``neuro/<kind>/<name>`` (``neuro/exploration/epsilon``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import RolloutReturn, TrainFreq
from stable_baselines3.common.utils import update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from agents.neuro_logging import record_part_stats
from agents.plasticity import check_plasticity, with_plasticity
from neuro.dopamine import DopamineModule
from neuro.migrations import grouped_parts
from neuro.modulation import MODULATOR_REGISTRIES, Modulator, TDErrorSummary
from neuro.parts import make_neuro

if TYPE_CHECKING:  # the mixins stand before these classes; the checker sees their attributes
    from stable_baselines3.common.base_class import BaseAlgorithm as _Algorithm
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm as _OffPolicy
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm as _OnPolicy
else:
    _Algorithm = _OffPolicy = _OnPolicy = object

logger = logging.getLogger("neurodrive.neuro")


@dataclass(frozen=True)
class MetaParameter:
    """One meta-parameter a modulator sets: its kind under ``neuro:``, its name in logs and
    ``eval.json``, the values SB3 may be given (``low`` < or <= value < or <= ``high``) and the
    attribute SB3 reads it from (``None``: the optimizers' ``param_groups``)."""

    kind: str
    name: str
    low: float
    high: float = math.inf
    low_inclusive: bool = False
    attribute: str | None = None

    def valid(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        return math.isfinite(value) and above and value < self.high

    def read(self, agent: Any) -> float:
        """The value as it stands in ``agent``."""
        if self.attribute is not None:
            return float(getattr(agent, self.attribute))
        policy = agent.policy
        optimizer = policy.optimizer if hasattr(policy, "optimizer") else policy.actor.optimizer  # SAC, TD3, TQC
        return float(optimizer.param_groups[0]["lr"])


LEARNING_RATE = MetaParameter("learning_rate", "learning_rate", low=0.0)
EPSILON = MetaParameter("exploration", "epsilon", low=0.0, low_inclusive=True, attribute="exploration_rate")
ENT_COEF = MetaParameter("exploration", "ent_coef", low=0.0, low_inclusive=True, attribute="ent_coef")
GAMMA = MetaParameter("discount", "gamma", low=0.0, high=1.0, attribute="gamma")


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
            raise ValueError(f"neuro.{kind}.type: {MODULATOR_REGISTRIES[kind].name_of(modulator)} reads TD errors, "
                             f"which {cls.__name__} does not hand over"
                             + (f"; algorithms that do: {', '.join(takers)}" if takers else ""))
    if "discount" in modulators and n_steps > 1:
        raise ValueError(f"neuro.discount: agent.hyperparameters.n_steps={n_steps} precomputes n-step discounts in "
                         "the replay buffer, which cannot follow a modulated gamma; use n_steps: 1 or drop the "
                         "discount modulator")


class NeuroAgent(_Algorithm):
    """What both families share; put ``OffPolicyNeuroAgent`` or ``OnPolicyNeuroAgent`` before an SB3
    algorithm class (``class DopamineDQN(OffPolicyNeuroAgent, DQN)``). ``neuro`` holds the parts by
    kind, built from their specs (or passed built) before SB3 sets the model up, so ``_setup_model``
    and ``train`` can read them. A kind not given gets its registry's default (``dopamine``: standard
    TD) or is absent (the modulators: the algorithm's own value).

    :param neuro: ``{kind: spec or part}`` for the kinds in ``neuro_parts``; any other kind is an error.
    """

    neuro_parts: ClassVar[tuple[str, ...]] = ()
    exposes_td_errors: ClassVar[bool] = False  # hands each update's TD errors to observe_td_errors
    exploration: ClassVar[MetaParameter]  # what the exploration modulator writes (the families set it)
    gamma: float

    def __init__(self, *args: Any, neuro: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.neuro = make_neuro(neuro, self.neuro_parts)
        self._signal_readers: dict[str, list[Modulator]] = {}  # rebuilt on demand (not saved)
        self._reward_tap: RewardTap | None = None
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
        """Call first in ``_setup_model``: upgrades the parts of a model saved by an older version."""
        self.neuro = grouped_parts(self.__dict__, self.neuro)

    def _saved_n_steps(self) -> int:
        """How many steps each stored transition spans (n-step returns); 1 on-policy."""
        return 1

    def _prepare_parts(self) -> None:
        """First in the families' ``_setup_model``: upgrade saved parts, refuse modulators the
        algorithm cannot honour, hand the modulators the seed."""
        self._adopt_saved_parts()
        check_modulators(type(self), {kind: type(part) for kind, part in self.modulators.items()},
                         self._saved_n_steps())
        for modulator in self.modulators.values():
            modulator.set_seed(self.seed)

    # -- signals -------------------------------------------------------------------------------

    def _readers(self, signal: str) -> list[Modulator]:
        """The modulators that read ``td_errors`` or ``rewards``, listed once (this runs every step)."""
        if signal not in self._signal_readers:
            self._signal_readers[signal] = [
                modulator for modulator in self.modulators.values()
                if (modulator.reads_td_errors if signal == "td_errors" else modulator.reads_rewards)]
        return self._signal_readers[signal]

    def _excluded_save_params(self) -> list[str]:
        # Lists of the modulators and an env wrapper: rebuilt on demand, and saving them would pickle
        # second copies of the modulators.
        return [*super()._excluded_save_params(), "_signal_readers", "_reward_tap"]

    def observe_td_errors(self, signal: th.Tensor | np.ndarray) -> None:
        """The TD errors (the dopamine signal, with a dopamine module) of one update, handed to the
        modulators that read them. Agents call it once after each update."""
        readers = self._readers("td_errors")
        if readers:
            summary = TDErrorSummary.of(signal)
            for modulator in readers:
                modulator.observe_td_errors(summary)

    def _tapped(self, env: VecEnv) -> VecEnv:
        """``env`` with a ``RewardTap`` when a modulator reads rewards."""
        readers = self._readers("rewards")
        if not readers:
            return env
        if self._reward_tap is None or self._reward_tap.venv is not env:  # one wrapper per env: SB3's init is slow
            self._reward_tap = RewardTap(env, readers)
        return self._reward_tap

    # -- the hooks where SB3 reads each meta-parameter ------------------------------------------

    def _modulate(self, parameter: MetaParameter, base: float) -> float:
        """The value of ``parameter``'s modulator for the algorithm's ``base``; a value that is not
        ``valid`` is reported, counted in the modulator's ``ignored_signals`` and replaced by
        ``base``, never written."""
        modulator = self.neuro[parameter.kind]
        value = float(modulator.value(base, self._current_progress_remaining))
        if not parameter.valid(value):
            logger.warning("neuro.%s: %s gave %r; kept the algorithm's %r", parameter.kind,
                           type(modulator).__name__, value, base)
            modulator.ignored_signals += 1
            value = base
        return value

    def _record(self, parameter: MetaParameter, value: float) -> None:
        """The value written, as ``neuro/<kind>/<name>``."""
        self.logger.record(f"neuro/{parameter.kind}/{parameter.name}", value)

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        if LEARNING_RATE.kind not in self.neuro:
            return super()._update_learning_rate(optimizers)
        learning_rate = self._modulate(LEARNING_RATE, self.lr_schedule(self._current_progress_remaining))
        self.logger.record("train/learning_rate", learning_rate)
        self._record(LEARNING_RATE, learning_rate)
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            update_learning_rate(optimizer, learning_rate)
        return None

    def _modulate_gamma(self) -> float | None:
        """Before a rollout: the modulated gamma, written to ``self.gamma``; None without a modulator."""
        if GAMMA.kind not in self.neuro:
            return None
        self.gamma = self._modulate(GAMMA, self._base_gamma)
        self._record(GAMMA, self.gamma)
        return self.gamma

    def _record_parts(self) -> None:
        """Every part's statistics under ``neuro/<kind>/<key>``, when SB3 is about to write its logs."""
        record_part_stats(self.logger, self.neuro)

    def neuro_values(self) -> dict[str, float]:
        """The modulated meta-parameters as they stand, and their modulators' signals (``eval.json``)."""
        parameters = {LEARNING_RATE.kind: LEARNING_RATE, self.exploration.kind: self.exploration,
                      GAMMA.kind: GAMMA}
        values = {parameter.name: parameter.read(self) for kind, parameter in parameters.items()
                  if kind in self.neuro}
        for kind, modulator in self.modulators.items():
            values.update(modulator.stats())
            if modulator.ignored_signals:
                values[f"{kind}_ignored_signals"] = modulator.ignored_signals
        return values


class OffPolicyNeuroAgent(NeuroAgent, _OffPolicy):
    """Before an off-policy SB3 algorithm (DQN, QR-DQN, SAC, TD3, TQC): exploration is epsilon."""

    exploration: ClassVar[MetaParameter] = EPSILON
    replay_buffer: ReplayBuffer
    exploration_rate: float  # DQN's and QR-DQN's epsilon

    def _saved_n_steps(self) -> int:
        return max(self.n_steps, self.replay_buffer_kwargs.get("n_steps", 1))

    def _setup_model(self) -> None:
        self._prepare_parts()
        super()._setup_model()
        check_plasticity(self, drives_plasticity=False)

    def _on_step(self) -> None:
        super()._on_step()  # SB3 recomputes epsilon from its schedule here, after every env step
        if EPSILON.kind in self.neuro:
            self.exploration_rate = min(self._modulate(EPSILON, self.exploration_rate), 1.0)
            self.logger.record("rollout/exploration_rate", self.exploration_rate)
            self._record(EPSILON, self.exploration_rate)

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, train_freq: TrainFreq,
                         replay_buffer: ReplayBuffer, action_noise: ActionNoise | None = None,
                         learning_starts: int = 0, log_interval: int | None = None) -> RolloutReturn:
        self._modulate_gamma()
        return super().collect_rollouts(self._tapped(env), callback, train_freq, replay_buffer, action_noise,
                                        learning_starts, log_interval)

    def dump_logs(self) -> None:
        self._record_parts()
        super().dump_logs()


class OnPolicyNeuroAgent(NeuroAgent, _OnPolicy):
    """Before an on-policy SB3 algorithm (PPO, A2C, RecurrentPPO): exploration is the entropy
    coefficient; without a dopamine module the TD errors handed over are the one-step errors behind
    GAE."""

    exploration: ClassVar[MetaParameter] = ENT_COEF

    def _setup_model(self) -> None:
        self._prepare_parts()
        super()._setup_model()
        check_plasticity(self, drives_plasticity=True)

    def train(self) -> None:
        if ENT_COEF.kind in self.neuro:  # SB3's train() reads ent_coef
            self.ent_coef = self._modulate(ENT_COEF, self._base_ent_coef)
            self._record(ENT_COEF, self.ent_coef)
        super().train()

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        gamma = self._modulate_gamma()
        if gamma is not None:
            rollout_buffer.gamma = gamma  # GAE and the time-limit bootstrap follow the rollout's gamma
        # A plastic spiking actor learns after every env step, from the dopamine of that step (agents.plasticity).
        collected = super().collect_rollouts(self._tapped(env), with_plasticity(self, callback), rollout_buffer,
                                             n_rollout_steps)
        if collected and "dopamine" not in self.neuro and self.exposes_td_errors:
            self.observe_td_errors(one_step_td_errors(rollout_buffer.advantages, rollout_buffer.episode_starts,
                                                      self.gamma * self.gae_lambda))
        return collected

    def dump_logs(self, iteration: int = 0) -> None:
        self._record_parts()
        super().dump_logs(iteration)
