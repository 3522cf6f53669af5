"""YAML ``type:`` names to neuro classes; a user's own class loads by dotted path."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from neuro.dopamine import DOPAMINE_MODULES, DopamineModule, StandardTD


def load_object(dotted_path: str) -> Any:
    """Import ``package.module:Name`` (or ``package.module.Name``)."""
    if ":" in dotted_path:
        module_name, _, attr = dotted_path.partition(":")
    else:
        module_name, _, attr = dotted_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"cannot load {dotted_path!r}: {error}") from None


def make_dopamine(spec: dict[str, Any] | DopamineModule | None) -> DopamineModule:
    """Build a TD-error module from ``{type: name, **params}`` (``None``: standard TD)."""
    if isinstance(spec, DopamineModule):
        return spec
    params = dict(spec or {})
    type_name = str(params.pop("type", "standard"))
    if type_name in DOPAMINE_MODULES:
        cls = DOPAMINE_MODULES[type_name]
    elif ":" in type_name or "." in type_name:
        cls = load_object(type_name)
        if not (inspect.isclass(cls) and callable(getattr(cls, "transform", None))
                and callable(getattr(cls, "dqn_loss", None))):
            raise ValueError(f"neuro.dopamine.type: {type_name!r} does not implement the TD-error "
                             "module interface (transform, dqn_loss); subclass neuro.dopamine.DopamineModule")
    else:
        raise ValueError(f"neuro.dopamine.type: unknown module {type_name!r}; allowed: "
                         f"{', '.join(DOPAMINE_MODULES)} or a dotted path package.module:Class")
    accepted = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    for key in params:
        if key not in accepted:
            raise ValueError(f"neuro.dopamine.{key}: {type_name} takes no such parameter; "
                             f"allowed: {', '.join(accepted) or 'none'}")
    return cls(**params)


__all__ = ["StandardTD", "load_object", "make_dopamine"]
