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
    """

    def __init__(self, eval_path: Path, best_model_path: Path, records: Sequence[dict[str, Any]] = ()) -> None:
        self.eval_path = eval_path
        self.best_model_path = best_model_path
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
        if previous_best is None or record["mean_return"] > previous_best["mean_return"]:
            temp = self.best_model_path.with_name(f".{self.best_model_path.name}.tmp")
            model.save(temp)
            os.replace(temp, self.best_model_path)
        self.write()

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
