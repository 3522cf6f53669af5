"""The config toolkit shared by experiment, sweep and comparison files.

A strict pydantic base model, YAML reading, dotted-path assignment (``--set`` and a sweep's
parameters) and one error format: every error names the field by its dotted path and says what
is allowed. Imports pydantic and PyYAML only, so ``neurodrive --help`` stays fast.
"""

from __future__ import annotations

import copy
import re
import types
import typing
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
        raise ConfigError(f"{source}: malformed YAML: {error}") from None


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


def format_validation_error(error: ValidationError, source: str, schema: type[BaseModel], title: str) -> str:
    """One line per error: ``<dotted path>: <what is wrong>``; unknown keys list the allowed ones."""
    lines = [f"{source}: {title}"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        unknown = f"unknown key; allowed: {', '.join(allowed_keys(schema, item['loc'][:-1]))}"
        message = validation_message(item, unknown, "required field is missing", quote_checked_input=False)
        if re.match(r"^[\w.-]+: ", message) and message.startswith(location):
            lines.append(f"  {message}")  # the message already starts with the field's path
        else:
            lines.append(f"  {location or '(top level)'}: {message}")
    return "\n".join(lines)


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
