"""The package layout as docs/architecture.md states it: no import cycle, each folder imports only
the ones below it, experiments/' tools import only its core (never one another), neuro/ stays plain
torch, and light commands start without torch, SB3 or optuna."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import REPO

PACKAGES = ("agents", "envs", "neuro", "experiments")
# Which top-level packages each may import (docs/architecture.md: neuro and envs below agents, experiments on top).
ALLOWED = {
    "neuro": {"neuro"},
    "envs": {"envs"},
    "agents": {"agents", "neuro", "envs"},
    "experiments": {"experiments", "agents", "envs", "neuro"},
}


# Inside experiments/: the core every tool stands on, the tools as siblings over it that never import one
# another, and the CLI on top. A unit is a sub-package or a module; a module belongs to the longest unit
# that prefixes its name.
CORE = (
    "experiments",  # the package itself (every import of a sub-module runs it)
    "experiments.config",  # the config toolkit and the experiment schema
    "experiments.runs",  # the one build path, sessions, run folders
    "experiments.files",
    "experiments.terminal",
    "experiments.presets",  # the ready YAML files
    "experiments.statistics",  # confidence intervals and comparison statistics, for every report
    "experiments.sequential",  # verdicts, Holm, seeds for power and group-sequential designs, for comparisons
    "experiments.workers",  # the one worker-process runner
    "experiments.distributed",  # storage, heartbeats, trials and the queue that sweeps and shared grids share
    "experiments.dashboards",  # TensorBoard / optuna-dashboard servers and a grid's layout
)
TOOLS = ("experiments.analysis", "experiments.bench", "experiments.compare", "experiments.sweeps")
EXPERIMENTS_ALLOWED = {
    **{unit: set(CORE) for unit in CORE},
    **{tool: {*CORE, tool} for tool in TOOLS},
    "experiments.cli": {*CORE, *TOOLS, "experiments.cli"},
}


def unit_of(module: str) -> str:
    """The unit of ``EXPERIMENTS_ALLOWED`` a module of experiments/ belongs to."""
    matches = [unit for unit in EXPERIMENTS_ALLOWED if module == unit or module.startswith(unit + ".")]
    assert matches, f"{module}: in no unit of EXPERIMENTS_ALLOWED (add it to CORE or TOOLS)"
    return max(matches, key=len)


def unit_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import inside experiments/ that ``EXPERIMENTS_ALLOWED`` does not allow."""
    offending = []
    for module, targets in graph.items():
        if module.split(".")[0] != "experiments":
            continue
        unit = unit_of(module)
        offending += [f"{module} -> {target}" for target in sorted(targets)
                      if target.split(".")[0] == "experiments" and unit_of(target) not in EXPERIMENTS_ALLOWED[unit]]
    return offending


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports anywhere (functions included), except under TYPE_CHECKING;
    importing ``a.b.c`` also runs ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
               and ast.unparse(branch.test) == "TYPE_CHECKING" for statement in branch.body
               for node in ast.walk(statement)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (this check reads absolute ones)"
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
            # A package that loads its names lazily (``_EXPORTS``) imports the owning module on use.
            exports = lazy_exports(node.module) if node.module in modules else {}
            names |= {exports[alias.name] for alias in node.names if alias.name in exports}
    found = set()
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            candidate = ".".join(parts[:depth])
            if candidate in modules:
                found.add(candidate)
    return found - {module_name(path)}


def lazy_exports(package: str) -> dict[str, str]:
    """``name -> module`` of a package's lazy ``__getattr__`` exports (light packages only)."""
    return dict(getattr(importlib.import_module(package), "_EXPORTS", {}))


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module are the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return [component for component in components if len(component) > 1]


def test_the_cycle_finder_finds_a_known_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def test_no_import_cycle():
    assert strongly_connected(import_graph()) == []


def test_each_package_imports_only_those_below_it():
    offending = []
    for module, targets in import_graph().items():
        top = module.split(".")[0]
        offending += [f"{module} -> {target}" for target in targets if target.split(".")[0] not in ALLOWED[top]]
    assert offending == []


def test_the_unit_checker_finds_known_violations():
    graph = {
        "experiments.sweeps.command": {"experiments", "experiments.compare.dashboard", "experiments.config"},
        "experiments.runs.build": {"experiments.sweeps.study"},  # the core under a tool
        "experiments.distributed.queue": {"experiments.compare"},
        "experiments.compare.report": {"experiments.statistics", "experiments.compare.spec"},  # allowed
        "experiments.cli": {"experiments.bench.command", "experiments.sweeps.command"},  # allowed: on top
    }
    assert unit_violations(graph) == ["experiments.sweeps.command -> experiments.compare.dashboard",
                                      "experiments.runs.build -> experiments.sweeps.study",
                                      "experiments.distributed.queue -> experiments.compare"]


def test_tools_import_only_the_core_and_the_core_no_tool():
    """compare, sweeps, bench and analysis are siblings over the core (``EXPERIMENTS_ALLOWED``)."""
    assert unit_violations(import_graph()) == []


def test_neuro_does_not_import_sb3():
    for path in (REPO / "neuro").rglob("*.py"):
        assert "stable_baselines3" not in path.read_text(), path


HEAVY = ("torch", "stable_baselines3", "optuna", "scipy")
SIMULATORS = ("highway_env", "envpool", "pygame")


@pytest.mark.parametrize("args, forbidden", [
    (["--help"], HEAVY + SIMULATORS),
    (["sweep", "--help"], HEAVY + SIMULATORS),
    (["train", "--help"], HEAVY + SIMULATORS),
    (["envs"], HEAVY),  # it reads highway-env's registry
])
def test_light_commands_import_no_torch_sb3_or_optuna(args, forbidden):
    probe = (
        "import runpy, sys, json\n"
        f"sys.argv = ['neurodrive', *{args!r}]\n"
        "try:\n    runpy.run_module('experiments.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_models_are_built_in_one_place():
    """``agents.registry.build`` (the model constructor) and ``.load`` of a run's algorithm are called
    from experiments/runs/build.py only: every command builds through it."""
    builders = []
    for path in (REPO / "experiments").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "agents.registry" and \
                    any(alias.name == "build" for alias in node.names):
                builders.append(str(path.relative_to(REPO)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and "get_algorithm" in ast.unparse(node.func.value):
                builders.append(str(path.relative_to(REPO)))
            # An SB3 algorithm class taken directly (``from stable_baselines3 import DQN``,
            # ``getattr(stable_baselines3, ...)``) would be a model built beside the path.
            if isinstance(node, ast.ImportFrom) and node.module in ("stable_baselines3", "sb3_contrib") and \
                    any(alias.name.isupper() or alias.name in ("RecurrentPPO", "QRDQN") for alias in node.names):
                builders.append(str(path.relative_to(REPO)))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" and \
                    ast.unparse(node.args[0]) in ("stable_baselines3", "sb3_contrib"):
                builders.append(str(path.relative_to(REPO)))
    assert sorted(set(builders)) == ["experiments/runs/build.py"]
