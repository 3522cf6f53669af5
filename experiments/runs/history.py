"""A run's evaluation history: the one owner of its records, ``eval.json`` and ``best_model.zip``."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.files import write_json_atomic

logger = logging.getLogger("neurodrive.run")

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


def best_record(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The first record with the highest mean return (a tie keeps the earlier model)."""
    return max(records, key=lambda record: record["mean_return"], default=None)


def describe_evaluation(record: dict[str, Any]) -> str:
    """One evaluation record as a line: return, crash rate, speed (and success where reported)."""
    speed = record.get("mean_speed")
    parts = [f"return {record['mean_return']:.2f} +- {record['std_return']:.2f}",
             f"crash rate {record['crash_rate']:.0%}",
             "speed -" if speed is None else f"speed {speed:.1f} m/s"]
    if record.get("success_rate") is not None:
        parts.append(f"success {record['success_rate']:.0%}")
    dominant = record.get("dominant_action")
    if dominant:
        parts.append(f"action {dominant['action']} in {dominant['fraction']:.0%} of decisions")
    return f"{', '.join(parts)} ({record['n_episodes']} episodes)"


class EvaluationHistory:
    """Every evaluation of a run, in order; after each one, ``eval.json`` is rewritten and, when it
    beats every earlier one, the model is saved as ``best_model.zip`` (SB3's ``EvalCallback`` best
    model). Both files are replaced atomically (the model first), so a crash keeps the previous ones,
    and ``eval.json``'s ``best`` is the evaluation ``best_model.zip`` was saved at; a resume restores
    the best model its checkpoint kept (``restore_best_model``). The one exception: resuming a
    checkpoint written before checkpoints kept the best model, which a warning names.

    Selection uses the training-time evaluation episodes (seed stream 1); judge the kept model on
    fresh ones (``neurodrive evaluate --model best``, stream 2).

    :param records: the evaluations a resumed run had made by its checkpoint.
    :param log_each: log each evaluation as a line on ``neurodrive.run`` (runs without a progress bar).
    """

    def __init__(self, eval_path: Path, best_model_path: Path, records: Sequence[dict[str, Any]] = (),
                 log_each: bool = False) -> None:
        self.eval_path = eval_path
        self.best_model_path = best_model_path
        self.log_each = log_each
        self._records: list[dict[str, Any]] = [dict(record) for record in records]

    @property
    def records(self) -> list[dict[str, Any]]:
        """A copy of the records (what a checkpoint saves)."""
        return [dict(record) for record in self._records]

    @property
    def last_step(self) -> int:
        return self._records[-1]["step"] if self._records else 0

    @property
    def best(self) -> dict[str, Any] | None:
        return best_record(self._records)

    def add(self, record: dict[str, Any], model: BaseAlgorithm) -> None:
        """Append an evaluation; save the model first if it is the new best, then ``eval.json``."""
        previous_best = self.best
        self._records.append(dict(record))
        new_best = previous_best is None or record["mean_return"] > previous_best["mean_return"]
        if new_best:
            temp = self.best_model_path.with_name(f".{self.best_model_path.name}.tmp")
            model.save(temp)
            os.replace(temp, self.best_model_path)
        self.write()
        if self.log_each:
            logger.info("evaluation at step %d: %s%s", record["step"], describe_evaluation(record),
                        "; new best" if new_best else "")

    def write(self) -> None:
        if not self._records:
            return
        write_json_atomic(self.eval_path, {"evaluations": self._records, "final": self._records[-1],
                                           "best": self.best})

    def restore_best_model(self, saved: Path | None) -> None:
        """On resume: the best model as it stood at the checkpoint (``saved``; ``None``: there was
        none, as before any evaluation), so an evaluation made after the checkpoint, and lost with
        it, leaves no model behind."""
        if saved is not None and saved.is_file():
            temp = self.best_model_path.with_name(f".{self.best_model_path.name}.tmp")
            shutil.copyfile(saved, temp)
            os.replace(temp, self.best_model_path)
        elif not self._records:
            self.best_model_path.unlink(missing_ok=True)
        else:  # a checkpoint written before checkpoints kept the best model: nothing better to restore
            logger.warning("the checkpoint holds no best model; %s is kept as it is and may come from an "
                           "evaluation after the checkpoint", self.best_model_path.name)
        self.write()
