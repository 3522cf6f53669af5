"""The evaluation history: eval.json and best_model.zip, against a model that records what it saves."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.runs.history import EvaluationHistory


class SavingModel:
    """Stands in for an SB3 model: ``save`` writes the current ``step`` to the file."""

    def __init__(self) -> None:
        self.step = 0

    def save(self, path: Path) -> None:
        Path(path).write_text(str(self.step))


def _evaluate(history: EvaluationHistory, model: SavingModel, step: int, mean_return: float) -> None:
    model.step = step
    history.add({"step": step, "mean_return": mean_return}, model)  # type: ignore[arg-type]


def _history(tmp_path: Path, records=()) -> EvaluationHistory:
    return EvaluationHistory(tmp_path / "eval.json", tmp_path / "best_model.zip", records)


def test_keeps_the_first_of_the_highest_returns(tmp_path: Path) -> None:
    model, history = SavingModel(), _history(tmp_path)
    saved = []
    for step, mean_return in [(100, 10.0), (200, 12.0), (300, 11.0), (400, 12.0), (500, 13.5), (600, 2.0)]:
        _evaluate(history, model, step, mean_return)
        saved.append(int((tmp_path / "best_model.zip").read_text()))
    assert saved == [100, 200, 200, 200, 500, 500]
    assert history.best == {"step": 500, "mean_return": 13.5}
    written = json.loads((tmp_path / "eval.json").read_text())
    assert written["best"] == {"step": 500, "mean_return": 13.5}
    assert written["final"] == {"step": 600, "mean_return": 2.0}
    assert [record["step"] for record in written["evaluations"]] == [100, 200, 300, 400, 500, 600]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.zip", "eval.json"]  # no temp file left


def test_a_resumed_run_must_beat_its_earlier_evaluations(tmp_path: Path) -> None:
    model = SavingModel()
    history = _history(tmp_path, [{"step": 100, "mean_return": 20.0}, {"step": 200, "mean_return": 25.0}])
    _evaluate(history, model, 300, 24.0)
    assert not (tmp_path / "best_model.zip").exists()
    _evaluate(history, model, 400, 26.0)
    assert (tmp_path / "best_model.zip").read_text() == "400"


def test_records_are_not_shared_with_callers(tmp_path: Path) -> None:
    """A checkpoint gets a copy: evaluations made after it do not leak into what it saved."""
    model, history = SavingModel(), _history(tmp_path)
    _evaluate(history, model, 100, 1.0)
    saved = history.records
    _evaluate(history, model, 200, 2.0)
    assert [record["step"] for record in saved] == [100]


def test_restoring_the_checkpoint_best_model_drops_a_later_one(tmp_path: Path) -> None:
    """A run evaluated at 300 (its best) after its checkpoint at 250, then died: resuming from 250
    must bring back the model of step 200, the best evaluation the resumed history lists."""
    model, history = SavingModel(), _history(tmp_path)
    _evaluate(history, model, 100, 1.0)
    _evaluate(history, model, 200, 5.0)
    kept = tmp_path / "checkpoint_best.zip"
    kept.write_text((tmp_path / "best_model.zip").read_text())
    checkpoint_records = history.records
    _evaluate(history, model, 300, 9.0)
    assert (tmp_path / "best_model.zip").read_text() == "300"

    resumed = _history(tmp_path, checkpoint_records)
    resumed.restore_best_model(kept)
    assert (tmp_path / "best_model.zip").read_text() == "200"
    assert json.loads((tmp_path / "eval.json").read_text())["best"] == {"step": 200, "mean_return": 5.0}
    resumed_without_best = _history(tmp_path, [])
    resumed_without_best.restore_best_model(None)
    assert not (tmp_path / "best_model.zip").exists()


def test_an_old_checkpoint_without_a_best_model_keeps_the_file(tmp_path: Path, caplog) -> None:
    """Checkpoints made before they kept the best model: there is nothing better than the file."""
    (tmp_path / "best_model.zip").write_text("300")
    resumed = _history(tmp_path, [{"step": 200, "mean_return": 5.0}])
    with caplog.at_level("WARNING", logger="neurodrive.run"):
        resumed.restore_best_model(None)
    assert (tmp_path / "best_model.zip").read_text() == "300"
    assert "holds no best model" in caplog.text
