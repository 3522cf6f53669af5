"""Training callbacks: periodic driving evaluation, the TensorBoard HParams record and a spiking
policy's firing rates and energy per decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv

from agents.hparams import EVAL_METRICS, HParamValue, experiment_summary, session_start_summary
from agents.spiking_policies import NetworkPolicy, separate_spike_counts
from envs.evaluation import evaluate_driving


class DrivingEvalCallback(BaseCallback):
    """Every ``eval_every`` env steps, evaluate greedily and log ``eval/*`` driving metrics.

    :param on_evaluation: called first with each evaluation record (``step`` plus the summary);
        the run loop's evaluation history stores it (``eval.json``, the best model).
    :param hooks: more callables on each record, every one of them called; one returning ``False``
        stops training (a sweep's pruner uses this). ``stopped_early`` then holds the step.
    :param last_step: the step of the last evaluation a resumed run made; the cadence continues from it.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_every: int,
        n_episodes: int,
        on_evaluation: Callable[[dict[str, Any]], None] | None = None,
        success: Callable[[dict[str, Any]], bool | None] | None = None,
        deterministic: bool = True,
        verbose: int = 0,
        hooks: Sequence[Callable[[dict[str, Any]], bool | None]] = (),
        last_step: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.hooks = list(hooks)
        self.stopped_early: int | None = None
        self.eval_env = eval_env
        self.eval_every = eval_every
        self.n_episodes = n_episodes
        self.on_evaluation = on_evaluation
        self.success = success
        self.deterministic = deterministic
        self._last_eval_step = last_step
        self._warned_dominant = False

    def _on_step(self) -> bool:
        if self.eval_every > 0 and self.num_timesteps - self._last_eval_step >= self.eval_every:
            record = self.evaluate()
            verdicts = [hook(record) for hook in self.hooks]  # every hook sees every record
            if any(verdict is False for verdict in verdicts):
                self.stopped_early = self.num_timesteps
                return False
        return True

    def _on_training_end(self) -> None:
        if self._last_eval_step != self.num_timesteps:  # the final model always gets an evaluation
            record = self.evaluate()
            for hook in self.hooks:
                hook(record)

    def evaluate(self) -> dict[str, Any]:
        self._last_eval_step = self.num_timesteps
        with separate_spike_counts(self.model.policy) as spike_stats:  # kept apart from training's decisions
            # The collapse warning once a run: each evaluation's own line and eval/action_fraction show the share.
            metrics = evaluate_driving(
                self.model, self.eval_env, self.n_episodes, self.deterministic, self.success,
                warn_dominant=not self._warned_dominant,
            )
        self._warned_dominant = self._warned_dominant or metrics.dominant_action is not None
        record = {"step": self.num_timesteps, **metrics.summary()}
        neuro_values: dict[str, Any] = getattr(self.model, "neuro_values", dict)()  # modulated meta-parameters

        if neuro_values:
            record["neuro"] = neuro_values
        if spike_stats:
            record["snn"] = spike_stats
            for key, value in spike_stats.items():
                self.logger.record(f"eval/snn/{key}", value)
        for key, value in record.items():
            if key not in ("step", "n_episodes") and isinstance(value, (int, float)):
                self.logger.record(f"eval/{key}", value)
        # One scalar per action index / dimension, so a policy drifting onto one action shows as a curve.
        for name, key in (("action_fraction", "action_fractions"), ("action_mean", "action_mean"),
                          ("action_std", "action_std")):
            for index, value in enumerate(record[key] or ()):
                self.logger.record(f"eval/{name}/{index}", value)
        self.logger.dump(self.num_timesteps)
        if self.on_evaluation is not None:
            self.on_evaluation(record)
        if self.verbose:
            dominant = record["dominant_action"]
            collapsed = "" if dominant is None else f", action {dominant['action']} {dominant['fraction']:.1%}"
            print(f"eval @ {record['step']}: return {record['mean_return']:.2f}, "
                  f"crash rate {record['crash_rate']:.2f}{collapsed}")
        return record


class HParamsCallback(BaseCallback):
    """Write the run's TensorBoard HParams record at the start of training (``agents.hparams``).

    Its metrics are the ``eval/*`` scalars, so the HParams dashboard lines runs up side by side
    on their latest evaluation.

    :param summary: also write an experiment summary of this run alone (a lone run). A run that is one
        of a group (a grid's cell, a sweep's trial) writes its session-start record only: the group's
        folder holds the one summary over all of them, which another run's summary would displace.
    """

    def __init__(self, hparams: Mapping[str, HParamValue | None], metrics: tuple[str, ...] = EVAL_METRICS,
                 summary: bool = True) -> None:
        super().__init__()
        self.hparams = dict(hparams)
        self.metrics = metrics
        self.summary = summary

    def _on_training_start(self) -> None:
        writers = [output.writer for output in self.logger.output_formats
                   if isinstance(output, TensorBoardOutputFormat)]
        for writer in writers:
            file_writer = writer.file_writer
            assert file_writer is not None  # SummaryWriter opens it on construction
            if self.summary:
                file_writer.add_summary(experiment_summary([self.hparams], self.metrics))
            file_writer.add_summary(session_start_summary(self.hparams))
            writer.flush()  # written now, even if the run logs nothing else

    def _on_step(self) -> bool:
        return True


class SpikeLogCallback(BaseCallback):
    """Log a spiking policy's firing rate per layer, SOPs and energy per decision (its own and its ANN
    twin's, ``neuro.snn.network.ENERGY_CAVEAT``) under ``snn/``, and a recurrent part's ``stats()`` (traces,
    modulation, plastic weight change) under ``neuro/network/``, averaged over the rollouts between two log
    writes; the decisions of rollouts only, not of gradient updates. Does nothing for other policies."""

    def _on_rollout_end(self) -> None:
        if not isinstance(self.model.policy, NetworkPolicy):
            return
        network_stats = getattr(self.model.policy, "network_stats", None)  # a recurrent part's trace figures
        if network_stats is not None:
            for key, value in network_stats().items():
                self.logger.record_mean(f"neuro/network/{key}", value)
        counts = self.model.policy.take_spike_counts()
        if counts is not None and counts.decisions:
            for key, value in counts.stats().items():
                if key != "decisions":
                    self.logger.record_mean(f"snn/{key}", value)

    def _on_step(self) -> bool:
        return True
