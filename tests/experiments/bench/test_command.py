"""``neurodrive bench``: one ``--repeats`` for every section (the old per-section flags refused with the new
one), and the command running exactly the sections ``--section`` names from the registry, each section's
figures stored in bench.json after its own ``print``."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from experiments.bench import section as section_module
from experiments.bench.command import add_arguments, main
from experiments.bench.section import SECTIONS, BenchOptions, SectionEntry, selected
from experiments.config import ConfigError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="neurodrive bench")
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("flag", ["--neuro-repeats", "--training-repeats", "--spiking-repeats"])
def test_the_old_repeat_flags_are_refused_naming_the_new_one(flag: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse([flag, "2"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"{flag} was replaced by --repeats" in error and "--repeats 2" in error


def test_one_repeats_flag_and_the_sections_come_from_the_registry(capsys: pytest.CaptureFixture) -> None:
    args = parse(["--section", "spiking", "--repeats", "4"])
    assert (args.section, args.repeats) == ("spiking", 4)
    with pytest.raises(SystemExit):
        parse(["--help"])
    shown = capsys.readouterr().out
    assert "--repeats" in shown and "--neuro-repeats" not in shown
    for name in SECTIONS:
        assert f"{name}:" in shown
    with pytest.raises(ConfigError, match=r"--repeats: must be an int in \[1, 1000\]"):
        main(["--section", "startup", "--repeats", "0"])


def test_all_is_every_section_but_the_grid() -> None:
    assert [entry.name for entry in selected("all")] == ["env", "neuro", "training", "startup", "spiking",
                                                                "plasticity"]
    assert [entry.name for entry in selected("grid")] == ["grid"]


def test_every_registered_module_holds_its_section() -> None:
    for name, entry in SECTIONS.items():
        loaded = entry.load()
        assert loaded.name == name and callable(loaded.run) and callable(loaded.print), name


class Recorder:
    """A section that records what the command hands it and in which order."""

    def __init__(self, name: str, calls: list[tuple[str, str, Any]]) -> None:
        self.name, self.calls = name, calls

    def run(self, options: BenchOptions, console: Any) -> dict[str, Any]:
        self.calls.append((self.name, "run", options))
        return {f"{self.name}_figure": 1.5}

    def print(self, figures: dict[str, Any], options: BenchOptions, console: Any) -> None:
        self.calls.append((self.name, "print", figures))


def test_the_command_runs_then_prints_each_chosen_section_and_stores_its_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, Any]] = []
    registry = {}
    for name, in_all, top_level in (("alpha", True, True), ("beta", True, False), ("gamma", False, False)):
        module = types.ModuleType(f"fake_bench_{name}")
        module.SECTION = Recorder(name, calls)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        registry[name] = SectionEntry(name, f"the {name} section", module.__name__, in_all, top_level)
    monkeypatch.setattr(section_module, "SECTIONS", registry)
    out = tmp_path / "bench.json"
    results = main(["--section", "all", "--quick", "--repeats", "2", "--skip-highway-env", "--out", str(out)])
    options = BenchOptions(quick=True, repeats=2, skip_highway_env=True, grid_root=None)
    assert calls == [("alpha", "run", options), ("alpha", "print", {"alpha_figure": 1.5}),
                     ("beta", "run", options), ("beta", "print", {"beta_figure": 1.5})]  # gamma: not in all
    saved = json.loads(out.read_text())
    assert saved["alpha_figure"] == 1.5 and saved["beta"] == {"beta_figure": 1.5} and "gamma" not in saved
    assert saved["mode"] == "quick" and saved == json.loads(json.dumps(results))
