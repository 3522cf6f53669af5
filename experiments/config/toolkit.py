"""The config toolkit shared by experiment, sweep and comparison files.

A strict pydantic base model, YAML reading, dotted-path assignment (``--set`` and a sweep's
parameters) and one error format: every error names the field by its dotted path and says what
is allowed. Imports pydantic and PyYAML only, so ``neurodrive --help`` stays fast.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from experiments.config.errors import ConfigError
from neuro.registry import validation_message


class StrictModel(BaseModel):
    """Base of every config schema: unknown keys are errors; fields may be written by alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``3e-4`` as a float (YAML 1.1 wants ``3.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (_Loader is a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: malformed YAML: {_yaml_problem(error)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's complaint and where, on one line (PyYAML's own text quotes the source over many)."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())
    problem = error.problem or error.context or "cannot parse"
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (an empty file is an empty one)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a raw config dict; missing or null mappings on the way are created
    (so ``neuro.dopamine.kappa`` works whether ``neuro.dopamine`` is absent or ``null``)."""
    keys = path.split(".")
    if not all(keys):
        raise ConfigError(f"{path}: empty key in the dotted path")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        if node.get(key) is None:
            node[key] = {}
        if not isinstance(node[key], dict):
            raise ConfigError(f"{path}: {'.'.join(keys[:depth + 1])} is not a mapping (it is {node[key]!r})")
        node = node[key]
    node[keys[-1]] = copy.deepcopy(value)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``a.b.c=value`` override (the value is parsed as YAML) to a raw config dict."""
    path, sep, text = assignment.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY.PATH=VALUE")
    path = path.strip()
    try:
        set_path(raw, path, parse_yaml(text, f"--set {path}"))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith("--set") else f"--set {message}") from None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the choice closest to a misspelt ``name``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


# "unknown algorithm 'dqm'; allowed: dqn, ppo" and "... has no such argument; allowed: gamma, ...":
# the names a registry's message lists, to suggest the nearest.
_ALLOWED = re.compile(r"(?:'(?P<name>[^']+)'.*)?; allowed: (?P<choices>[^;()]+)")


def _with_suggestion(path: str, text: str) -> str:
    match = _ALLOWED.search(text)
    if match is None or "did you mean" in text:
        return text
    name = match["name"] or path.rpartition(".")[2]
    choices = [choice.strip() for choice in match["choices"].split(",")]
    return text + did_you_mean(name, choices)


def format_validation_error(error: ValidationError, source: str | Callable[[str], str],
                            schema: type[BaseModel], prefix: str | Callable[[str], str] = "") -> str:
    """One line: ``<source>: <dotted path>: <what is wrong>`` for the first error (unknown keys list
    the allowed ones; a near miss gets "did you mean"), then how many more and where.

    :param source: where the values came from; a function of the field's path when several places
        wrote them (a file and ``--set``).
    :param prefix: put before each path (a comparison names ``variants.<name>.``); may depend on the path.
    """
    problems: list[tuple[str, str]] = []
    # unknown keys first: a misspelt required key is also reported missing, and the misspelling is the news
    for item in sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden"):
        location = ".".join(printable(part) for part in item["loc"])
        allowed = allowed_keys(schema, item["loc"][:-1])
        unknown = f"unknown key; allowed: {', '.join(allowed)}"
        message = validation_message(item, unknown, "required field is missing", quote_checked_input=False)
        path, text = location or "(top level)", message
        if re.match(r"^[\w.-]+: ", message) and message.startswith(location):
            path, _, text = message.partition(": ")  # the message already starts with the field's (deeper) path
        problems.append((path, _with_suggestion(path, text)))
    (path, text), more = problems[0], [other for other, _ in problems[1:]]
    named = [f"{prefix if isinstance(prefix, str) else prefix(field)}{field}" for field in (path, *more)]
    line = f"{source if isinstance(source, str) else source(path)}: {named[0]}: {text}"
    return line + (f" (and {len(more)} more: {', '.join(named[1:])})" if more else "")


def printable(part: Any) -> str:
    """A path part as written, or quoted where it holds a newline or another unprintable character."""
    text = str(part)
    return text if text.isprintable() else repr(text)


def allowed_keys(schema: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys of the schema model at ``location``, as written in a file (aliases)."""
    node: Any = schema
    for part in location:
        node = _unwrap_union(node)
        if _is_model(node):
            field = node.model_fields.get(str(part))
            if field is None:
                field = next((f for f in node.model_fields.values() if f.alias == str(part)), None)
            if field is None:
                return []
            node = field.annotation
        elif typing.get_origin(node) in (dict, list):
            node = typing.get_args(node)[-1]  # a mapping key or list index selects the value type
        else:
            return []
    node = _unwrap_union(node)
    if not _is_model(node):
        return []
    return [info.alias or name for name, info in node.model_fields.items()]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap_union(annotation: Any) -> Any:
    """``X | None`` and ``int | list[int]``: the member that can hold keys (a model, dict or list)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            if _is_model(member) or typing.get_origin(member) in (dict, list):
                return member
    return annotation
