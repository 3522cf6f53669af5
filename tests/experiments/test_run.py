"""The run loop's best-model keeper, against a model that records what it saves."""

from __future__ import annotations

from pathlib import Path

from experiments.run import BestModelKeeper


class SavingModel:
    """Stands in for an SB3 model: ``save`` writes the current ``step`` to the file."""

    def __init__(self) -> None:
        self.step = 0

    def save(self, path: Path) -> None:
        Path(path).write_text(str(self.step))


def _evaluate(keeper: BestModelKeeper, model: SavingModel, step: int, mean_return: float) -> None:
    model.step = step
    keeper({"step": step, "mean_return": mean_return})


def test_keeps_the_first_of_the_highest_returns(tmp_path: Path) -> None:
    model, path = SavingModel(), tmp_path / "best_model.zip"
    keeper = BestModelKeeper(model, path)  # type: ignore[arg-type]
    saved = []
    for step, mean_return in [(100, 10.0), (200, 12.0), (300, 11.0), (400, 12.0), (500, 13.5), (600, 2.0)]:
        _evaluate(keeper, model, step, mean_return)
        saved.append(int(path.read_text()))
    assert saved == [100, 200, 200, 200, 500, 500]
    assert keeper.best == {"step": 500, "mean_return": 13.5}
    assert [p.name for p in tmp_path.iterdir()] == ["best_model.zip"]  # no temp file left


def test_a_resumed_run_must_beat_its_earlier_evaluations(tmp_path: Path) -> None:
    model, path = SavingModel(), tmp_path / "best_model.zip"
    history = [{"step": 100, "mean_return": 20.0}, {"step": 200, "mean_return": 25.0}]
    keeper = BestModelKeeper(model, path, history)  # type: ignore[arg-type]
    _evaluate(keeper, model, 300, 24.0)
    assert not path.exists()
    _evaluate(keeper, model, 400, 26.0)
    assert path.read_text() == "400"
