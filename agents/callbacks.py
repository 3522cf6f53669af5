"""Training callbacks: periodic driving evaluation and the TensorBoard HParams record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam
from stable_baselines3.common.vec_env import VecEnv

from envs.evaluation import evaluate_driving

EVAL_METRICS = ("eval/mean_return", "eval/crash_rate", "eval/mean_speed", "eval/mean_length")


class DrivingEvalCallback(BaseCallback):
    """Every ``eval_every`` env steps, evaluate greedily and log ``eval/*`` driving metrics.

    :param on_evaluation: called with each evaluation record (``step`` plus the summary); the run
        loop uses it to save ``eval.json`` so a crash later loses no finished evaluation.
    :param hooks: more callables on each record; one returning ``False`` stops training (a sweep's
        pruner uses this). ``stopped_early`` then holds the step.
    :param history: evaluations a resumed run already made; the cadence continues from the last.
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
        history: list[dict[str, Any]] | None = None,
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
        self.history: list[dict[str, Any]] = history if history is not None else []
        self._last_eval_step = self.history[-1]["step"] if self.history else 0

    def _on_step(self) -> bool:
        if self.eval_every > 0 and self.num_timesteps - self._last_eval_step >= self.eval_every:
            record = self.evaluate()
            if any(hook(record) is False for hook in self.hooks):
                self.stopped_early = self.num_timesteps
                return False
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["step"] != self.num_timesteps:
            record = self.evaluate()
            for hook in self.hooks:
                hook(record)

    def evaluate(self) -> dict[str, Any]:
        self._last_eval_step = self.num_timesteps
        metrics = evaluate_driving(
            self.model, self.eval_env, self.n_episodes, self.deterministic, self.success
        )
        record = {"step": self.num_timesteps, **metrics.summary()}
        for key, value in record.items():
            if key not in ("step", "n_episodes") and value is not None:
                self.logger.record(f"eval/{key}", value)
        self.logger.dump(self.num_timesteps)
        self.history.append(record)
        if self.on_evaluation is not None:
            self.on_evaluation(record)
        if self.verbose:
            print(f"eval @ {record['step']}: return {record['mean_return']:.2f}, "
                  f"crash rate {record['crash_rate']:.2f}")
        return record


class HParamsCallback(BaseCallback):
    """Write one TensorBoard HParams record at the start of training.

    Its metrics are the ``eval/*`` scalars, so the HParams dashboard lines runs up side by side
    on their latest evaluation.
    """

    def __init__(self, hparams: dict[str, bool | str | float | int | None],
                 metrics: tuple[str, ...] = EVAL_METRICS) -> None:
        super().__init__()
        self.hparams = hparams
        self.metrics = metrics

    def _on_training_start(self) -> None:
        # SB3's HParam needs a non-empty metric dict; the eval callback later fills these tags.
        self.logger.record(
            "hparams",
            HParam(self.hparams, {metric: 0.0 for metric in self.metrics}),
            exclude=("stdout", "log", "json", "csv"),
        )
        self.logger.dump(self.num_timesteps)  # write it now, even if the run logs nothing else

    def _on_step(self) -> bool:
        return True
