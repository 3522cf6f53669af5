"""docs/architecture.md held to the code: every file or folder it names exists, every Python name it puts
in backticks is defined (a dotted ``package.module.Name`` imports and has the attribute; a bare ``Name`` or
``name()`` is defined somewhere in the four packages), every ``module:Name`` loads, and every neuro part
it names (``standard``, ``learning_rate: surprise``, ``neuro.learning_rate.eta``) is registered with that
parameter. Also: every name a package lists in ``__all__`` resolves."""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

from tests_support import REPO

DOC = REPO / "docs" / "architecture.md"
PACKAGES = ("agents", "envs", "neuro", "experiments")
PATH_SUFFIXES = (".py", ".md", ".yaml")
# Names the doc takes from other libraries: where each is defined.
EXTERNAL = {
    "Leaky": "snntorch", "Annotated": "typing", "BaseAlgorithm": "stable_baselines3.common.base_class",
    "OnPolicyAlgorithm": "stable_baselines3.common.on_policy_algorithm", "TimeLimit": "gymnasium.wrappers",
    "VecEnvWrapper": "stable_baselines3.common.vec_env",
}

PLACEHOLDERS = {"Class", "MyRule", "MyEncoder", "MyAlgo", "MyBase"}  # "a class of yours" in the how-to recipes
PROSE = {"HParams", "TensorBoard"}  # words of the fenced sketch that are no Python names
ENVIRONMENT = {"SDL_VIDEODRIVER"}  # variables the doc warns about, which the code never sets
# What the check may find false in the doc and let pass: nothing (a false item fails the test).
KNOWN_FALSE: set[str] = set()

# Bare names only: `nn.Module` is another library's (a dotted project name is checked whole).
CAMEL = re.compile(r"(?<![\w.])[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*\b")
CONSTANT = re.compile(r"(?<![\w.])_?[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")
CALLED = re.compile(r"(?<![\w.])(_?[a-z][a-z0-9_]*)\(")
DOTTED = re.compile(r"(?<![\w.])((?:agents|envs|neuro|experiments)(?:\.[A-Za-z_]\w*)+)")
CLASS_MEMBER = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9]*)\.([a-z_]\w*)\b")
OBJECT_PATH = re.compile(r"^(?:\w+\s*:\s*)?\{?\s*(?:type:\s*)?([A-Za-z_][\w.]*:[A-Za-z_]\w*)")


@cache
def string_literals() -> frozenset[str]:
    """Every string constant in the four packages (environment variable names among them)."""
    return frozenset(node.value for package in PACKAGES for path in (REPO / package).rglob("*.py")
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Constant) and isinstance(node.value, str))


def files_named(name: str) -> list[Path]:
    return [path for top in (*PACKAGES, "docs", "scripts", "tests") for path in (REPO / top).rglob(name)]


@cache
def defined_names() -> frozenset[str]:
    """Every name the four packages define: module-level functions, classes and assignments, and the
    methods and attributes of their classes."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {target.id for target in targets if isinstance(target, ast.Name)}
                    names |= {target.attr for target in targets if isinstance(target, ast.Attribute)}
    return frozenset(names)


def resolve_dotted(dotted: str) -> object:
    """Import the longest module prefix of ``a.b.c.Name`` and get the rest as attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def is_python(dotted: str) -> bool:
    try:
        resolve_dotted(dotted)
    except (ImportError, AttributeError):
        return False
    return True


def inline_spans() -> list[tuple[int, str, str]]:
    """(line number, the line, the text) of every inline code span outside fenced blocks."""
    spans, fenced = [], False
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            spans += [(number, line, span) for span in re.findall(r"`([^`]+)`", line)]
    return spans


def fenced_text() -> str:
    return "\n".join(re.findall(r"^```\w*\n(.*?)^```", DOC.read_text(), flags=re.S | re.M))


def path_problems() -> list[str]:
    """A path span (``a/b``, ``x.py``, ``y.md``, ``z.yaml``) names a file or folder under the repository
    root, under a folder named earlier in its table row (``neuro/`` ... ``snn/`` ... ``network.py``), or,
    for a ready YAML file or a doc, under experiments/presets/ or docs/."""
    problems = []
    rows: dict[int, list[Path]] = {}
    for number, line, span in inline_spans():
        if "<" in span or " " in span or not re.fullmatch(r"[\w./-]+", span):
            continue
        if not (span.endswith("/") or span.endswith(PATH_SUFFIXES)):
            continue  # `neuro/exploration/epsilon` is a TensorBoard tag; folders end with a slash
        bases = rows.setdefault(number, [REPO, REPO / "experiments" / "presets", REPO / "docs"])
        found = next((base / span for base in reversed(bases) if (base / span).exists()), None)
        if found is None and "/" not in span and len(files_named(span)) == 1:
            found = files_named(span)[0]  # a bare file name the repository has once
        if found is None:

            problems.append(f"path `{span}` (line {number}) does not exist")
        elif found.is_dir() and line.startswith("|"):
            bases.append(found)  # later spans in the row may be relative to it
    return problems


def name_problems() -> list[str]:
    """Python names in inline spans and in the fenced data-flow sketch."""
    problems = []
    defined = defined_names()
    texts = [(span, f"`{span}`") for _, _, span in inline_spans()] + [(fenced_text(), "the fenced sketch")]
    for text, where in texts:
        if "mypkg" in text:
            continue  # a user's own package in a recipe
        for dotted in DOTTED.findall(text):
            try:
                resolve_dotted(dotted)
            except (ImportError, AttributeError) as error:
                if dotted.split(".")[1] not in neuro_kinds():  # else a config path: checked with the registry
                    problems.append(f"`{dotted}` (in {where}) does not resolve: {error}")
        for owner, member in CLASS_MEMBER.findall(text):
            if owner in defined and member not in defined:
                problems.append(f"`{owner}.{member}` (in {where}) is defined nowhere")
        calls = CALLED.findall(text) if where != "the fenced sketch" else []  # the sketch's calls are prose
        for name in {*CAMEL.findall(text), *CONSTANT.findall(text), *calls}:
            if name in PLACEHOLDERS | PROSE | ENVIRONMENT or name in defined or hasattr(builtins, name):
                continue
            if name in string_literals():
                continue  # an environment variable the code reads
            if name in EXTERNAL and hasattr(importlib.import_module(EXTERNAL[name]), name):
                continue
            problems.append(f"name `{name}` (in {where}) is defined nowhere")
    for _, _, span in inline_spans():
        match = OBJECT_PATH.match(span)
        if match and "mypkg" not in span:
            from neuro.registry import load_object

            try:
                load_object(match.group(1))
            except ValueError as error:
                problems.append(f"`{match.group(1)}` (in `{span}`) does not load: {error}")
    return problems


@cache
def neuro_kinds() -> dict[str, object]:
    from neuro.parts import NEURO_PARTS
    from neuro.snn.encoders import ENCODERS

    return {**NEURO_PARTS, "encoder": ENCODERS}


def registry_problems() -> list[str]:
    """``kind: key`` spans (``*`` for every modulator kind), the first column of the dopamine rules' table,
    and ``neuro.<kind>.<parameter>`` config paths name registered parts and parameters."""
    from neuro.modulation import MODULATOR_REGISTRIES
    from neuro.registry import constructor_signature

    kinds = neuro_kinds()
    problems = []
    in_dopamine_table, kind = False, None
    for number, line, span in inline_spans():
        in_dopamine_table = line.startswith("| `standard`") or (in_dopamine_table and line.startswith("|"))
        first_cell = line.startswith("| `") and line.split("|")[1].strip().startswith(f"`{span}`")
        if first_cell:
            kind = None  # a row starts: no kind carried over from the row above
        keys: list[tuple[str, str]] = []
        if match := re.fullmatch(r"([\w*]+): (\w+)", span):
            if match.group(1) in kinds or match.group(1) == "*":
                kind = match.group(1)
                keys = [(kind, match.group(2))] if kind != "*" else [(k, match.group(2)) for k in MODULATOR_REGISTRIES]
        elif kind is not None and line.startswith("|") and re.fullmatch(r"\w+", span) and \
                span in line.split("|")[1]:
            keys = [(kind, span)]  # `discount: reward_rate`, `td_variance`: the same kind
        elif in_dopamine_table and first_cell and re.fullmatch(r"\w+", span):
            keys = [("dopamine", span)]
        for part_kind, key in keys:
            if key not in kinds[part_kind].entries:  # type: ignore[attr-defined]
                problems.append(f"`{span}` (line {number}): {key!r} is not a registered {part_kind} part")
        if (match := re.fullmatch(r"neuro\.(\w+)\.(\w+)", span)) and not is_python(span):

            part_kind, parameter = match.groups()
            entries = getattr(kinds.get(part_kind), "entries", {})
            if not any(parameter in {p.name for p in constructor_signature(cls)[0]} for cls in entries.values()):
                problems.append(f"`{span}` (line {number}): no registered {part_kind} part takes {parameter!r}")
    return problems


def test_the_dopamine_table_is_read():
    """The checks above see what they check: the doc's rule table and its kinds."""
    spans = [span for _, _, span in inline_spans()]
    assert "distributional" in spans and "learning_rate: surprise" in spans and "*: meta" in spans


def test_the_checks_catch_false_items(tmp_path, monkeypatch):
    """A doc with one false item of each kind gets each reported (so a pass above means something)."""
    fake = tmp_path / "architecture.md"
    fake.write_text(DOC.read_text() + "\n".join([
        "", "| folder | owns |", "|---|---|", "| `neuro/` | `nothing.py`, `snn/`: `nothing_either.py` |", "",
        "Paths: `experiments/runs/nothing.py`, `nothing/`. Names: `NoSuchThing`, `no_such_function()`,",
        "`NO_SUCH_CONSTANT`, `neuro.dopamine.NoSuchRule`, `agents.no_such_module`, `Registry.no_such_method`,",
        "`stable_baselines3:NoSuchAlgo`.",
        "", "| part | rule |", "|---|---|", "| `standard` | d |", "| `no_such_rule` | d |",
        "| `learning_rate: no_such_modulator` | x |", "| `discount: reward_rate`, `no_such_discount` | x |",
        "", "A path `neuro.learning_rate.no_such_parameter`.", "",
    ]))
    monkeypatch.setitem(globals(), "DOC", fake)
    found = "\n".join(path_problems() + name_problems() + registry_problems())
    for false in ("`nothing.py`", "`nothing_either.py`", "`experiments/runs/nothing.py`", "`nothing/`",
                  "`NoSuchThing`", "`no_such_function`", "`NO_SUCH_CONSTANT`", "`neuro.dopamine.NoSuchRule`",
                  "`agents.no_such_module`", "`Registry.no_such_method`", "stable_baselines3:NoSuchAlgo",
                  "'no_such_rule' is not a registered dopamine part",
                  "'no_such_modulator' is not a registered learning_rate part",
                  "'no_such_discount' is not a registered discount part", "takes 'no_such_parameter'"):
        assert false in found


def test_architecture_doc_names_what_exists():

    problems = path_problems() + name_problems() + registry_problems()
    assert sorted(set(problems)) == sorted(KNOWN_FALSE), "\n".join(sorted(set(problems) ^ KNOWN_FALSE))


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_resolve(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None
