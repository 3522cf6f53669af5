"""Registries of neuro parts: a YAML ``type:`` name, or a user's dotted path, to a class.

One ``Registry`` per kind of part (``dopamine`` today; modulators, encoders and spiking layers
next). A spec is ``{type: name or package.module:Class, **params}``. Its parameters are checked
against the class's constructor signature, annotations included (``Annotated[float, Field(gt=0)]``),
without building anything, so a config file is fully checked before any run starts; a class may
add a static ``check_combination(**params)`` for checks that span parameters (its ``ValueError``
starts with the field). Every error starts with the part's config path (``neuro.dopamine.kappa: ...``).

That model is a part's one parameter model: ``@validated`` on a part's ``__init__`` runs the same
model when the part is built in Python, and ``check_combination`` always receives the validated
parameters with their defaults filled in (only those its signature names), so it never repeats a
default. A part's name is its registry key (``Registry.name_of``), not an attribute of the class.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, create_model

T = TypeVar("T")


class SpecError(ValueError):
    """A neuro part's spec is invalid; the message starts with the part's config path."""


def load_object(dotted_path: str) -> Any:
    """Import ``package.module:Name`` (or ``package.module.Name``)."""
    if ":" in dotted_path:
        module_name, _, attr = dotted_path.partition(":")
    else:
        module_name, _, attr = dotted_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as error:  # TypeError: "." is a relative import
        raise ValueError(f"cannot load {dotted_path!r}: {error}") from None


def is_dotted_path(name: str) -> bool:
    return ":" in name or "." in name


def constructor_signature(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """The named constructor parameters of ``cls`` (annotations resolved) and whether it takes any
    keyword beyond them.

    ``**kwargs`` is followed up the class hierarchy to the next ``__init__`` (SB3's pattern); a class
    without ``__init__`` takes what its base takes (``object``: nothing); a ``**kwargs`` that reaches
    ``object`` is open-ended, since the class must consume those keywords itself.
    """
    parameters: list[inspect.Parameter] = []
    open_ended = False
    for klass in cls.__mro__:
        if klass is object:
            break
        if "__init__" not in vars(klass):
            continue
        init = vars(klass)["__init__"]
        try:
            hints = typing.get_type_hints(init, include_extras=True)
        except Exception:  # an annotation that does not resolve is checked as Any
            hints = {}
        seen = {p.name for p in parameters}
        open_ended = False
        for parameter in list(inspect.signature(init).parameters.values())[1:]:  # skip self
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL and parameter.name not in seen:
                parameters.append(parameter.replace(annotation=hints.get(parameter.name, Any)))
        if not open_ended:
            break
    return parameters, open_ended


@cache
def parameter_model(cls: type) -> type[BaseModel]:
    """A pydantic model of ``cls``'s constructor parameters: types, bounds and defaults."""
    parameters, open_ended = constructor_signature(cls)
    fields: dict[str, Any] = {}
    for parameter in parameters:
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (parameter.annotation, default)
    config = ConfigDict(extra="allow" if open_ended else "forbid", arbitrary_types_allowed=True)
    return create_model(f"{cls.__name__}Parameters", __config__=config, **fields)


def interface_members(base: type) -> list[str]:
    """The methods and attributes a part of kind ``base`` must have: the base's ``interface`` (what
    the agents call), or else every public member it has."""
    declared = getattr(base, "interface", None)
    if declared is not None:
        return sorted(declared)
    return sorted(name for name, value in inspect.getmembers(base)
                  if not name.startswith("_") and not inspect.isclass(value))


def combination_arguments(check: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The validated parameters a ``check_combination`` names (all of them if it takes ``**kwargs``)."""
    signature = inspect.signature(check).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        return dict(params)
    return {name: value for name, value in params.items() if name in signature}


def validated_parameters(cls: type, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked by ``cls``'s parameter model and its ``check_combination``: every parameter,
    defaults filled in and validators applied. Raises pydantic's ``ValidationError``, or a
    ``ValueError`` that starts with the field for a combination."""
    model = parameter_model(cls).model_validate(dict(params))
    values = {**dict(model), **(model.model_extra or {})}
    check_combination = getattr(cls, "check_combination", None)
    if check_combination is not None:  # a part's checks that span its parameters
        check_combination(**combination_arguments(check_combination, values))
    return values


def validated(init: Callable[..., None]) -> Callable[..., None]:
    """Decorator for a part's ``__init__``: the arguments pass the part's parameter model and
    ``check_combination`` (the registry's checks) and reach ``__init__`` validated, so a part built in
    Python is checked exactly as one built from a spec. The error names the class and the field."""
    parameters = list(inspect.signature(init).parameters.values())[1:]
    if any(p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL) for p in parameters):
        raise TypeError(f"@validated {init.__qualname__}: the parameter model needs named parameters only")

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        # The class whose __init__ this is (type(self) may be a subclass calling it through super()).
        owner = next(klass for klass in type(self).__mro__ if vars(klass).get("__init__") is checked)
        if len(args) > len(parameters):
            raise TypeError(f"{init.__qualname__} takes {len(parameters)} arguments, got {len(args)}")
        given = dict(zip((p.name for p in parameters), args, strict=False)) | kwargs
        try:
            values = validated_parameters(owner, given)
        except ValidationError as error:
            raise ValueError("; ".join(
                f"{owner.__name__}.{'.'.join(str(part) for part in item['loc'])}: " + validation_message(
                    item, "no such parameter", "required parameter is missing", quote_checked_input=True)
                for item in error.errors())) from None
        except ValueError as error:
            raise ValueError(f"{owner.__name__}.{error}") from None
        init(self, **values)

    return checked


def validation_message(item: Mapping[str, Any], unknown_key: str, missing: str, quote_checked_input: bool) -> str:
    """One pydantic error item as a sentence, the wording shared by every config schema and registry.

    :param unknown_key: the sentence for a key the schema does not have (it lists the allowed ones).
    :param missing: the sentence for a required key that is absent.
    :param quote_checked_input: also quote the input after a custom check's own message.
    """
    if item["type"] == "extra_forbidden":
        return unknown_key
    if item["type"] == "missing":
        return missing
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "value_error" and not quote_checked_input:
        return message
    return f"{message} (got {item.get('input')!r})"


class Registry(Generic[T]):
    """YAML ``type:`` names to the classes of one kind of neuro part.

    :param kind: the part's key under ``neuro:`` (``dopamine``).
    :param base: the interface every part of this kind implements (a user's class may subclass it
        or provide every public method it has).
    :param default: the type a spec without ``type:`` gets.
    :param where: the spec's config path in error messages (default ``neuro.<kind>``).
    """

    def __init__(self, kind: str, base: type[T], default: str | None = None, where: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.default = default
        self.where = where or f"neuro.{kind}"
        self.entries: dict[str, type[T]] = {}

    def name_of(self, cls: type) -> str:
        """The ``type:`` name of a class: its registry key, or its dotted path."""
        for name, registered in self.entries.items():
            if registered is cls:
                return name
        return f"{cls.__module__}:{cls.__qualname__}"

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``type: name`` resolves to the decorated class."""

        def decorator(cls: type[T]) -> type[T]:
            self.entries[name] = cls
            return cls

        return decorator

    def resolve(self, type_name: str) -> type[T]:
        """The class of a registered name or a dotted path; the error lists what is allowed."""
        if type_name in self.entries:
            return self.entries[type_name]
        if not is_dotted_path(type_name):
            raise SpecError(f"{self.where}.type: unknown {self.kind} type {type_name!r}; allowed: "
                            f"{', '.join(self.entries)} or a dotted path package.module:Class")
        try:
            cls: type[T] = load_object(type_name)

        except ValueError as error:
            raise SpecError(f"{self.where}.type: {error}") from None
        missing = [name for name in interface_members(self.base) if not hasattr(cls, name)]
        if not inspect.isclass(cls) or missing:
            raise SpecError(f"{self.where}.type: {type_name!r} does not implement the {self.kind} interface "
                            f"(missing: {', '.join(missing) or 'not a class'}); subclass "
                            f"{self.base.__module__}.{self.base.__qualname__}")
        return cls

    def split(self, spec: dict[str, Any] | None, given: dict[str, Any] | None = None) -> tuple[type[T], dict[str, Any]]:
        """Resolve a spec's class and check its parameters; builds nothing. Returns the class and the
        spec's parameters as validated (every one of the spec's, none of ``given``).

        :param given: constructor arguments the caller supplies (an encoder's ``in_features``), checked
            with the spec's but not part of it.
        """
        if spec is not None and not isinstance(spec, dict):
            raise SpecError(f"{self.where}: expected a mapping {{type: ..., **params}}, got {spec!r}")
        params = dict(spec or {})
        type_name = params.pop("type", self.default)
        if type_name is None:
            raise SpecError(f"{self.where}.type: required; allowed: {', '.join(self.entries)}")
        cls = self.resolve(str(type_name))
        try:
            values = validated_parameters(cls, {**params, **(given or {})})
        except ValidationError as error:
            raise SpecError(self._format(cls, type_name, error, hidden=tuple(given or ()))) from None
        except ValueError as error:  # check_combination's, which starts with the field
            raise SpecError(f"{self.where}.{error}") from None
        return cls, {name: values[name] for name in params}

    def check(self, spec: dict[str, Any] | None, given: dict[str, Any] | None = None) -> None:
        """Fail with a ``SpecError`` naming the field, without building the part."""
        self.split(spec, given)

    def make(self, spec: dict[str, Any] | T | None, **given: Any) -> T:
        """Build a part from its spec (an instance of the base passes through); ``given`` as in ``split``."""
        if isinstance(spec, self.base):
            return spec
        cls, params = self.split(spec, given)  # type: ignore[arg-type]
        try:
            return cls(**params, **given)
        except TypeError as error:  # a constructor the signature check could not see through
            raise SpecError(f"{self.where}: cannot build {cls.__name__} from {params}: {error}") from None

    def _format(self, cls: type, type_name: str, error: ValidationError, hidden: tuple[str, ...] = ()) -> str:
        allowed = ", ".join(name for name in parameter_model(cls).model_fields if name not in hidden) or "none"
        return "; ".join(
            f"{self.where}.{'.'.join(str(part) for part in item['loc'])}: " + validation_message(
                item, f"{type_name} takes no such parameter; allowed: {allowed}", "required parameter is missing",
                quote_checked_input=True)
            for item in error.errors()
        )


# Parameter constraints for neuro parts' constructor annotations: ``kappa: Annotated[float, OpenInterval(-1, 1)]``.
# The registry checks them before anything is built; the message follows the field's config path.


def OpenInterval(low: float, high: float) -> AfterValidator:  # noqa: N802  (reads as a type)
    def check(value: float) -> float:
        if not low < value < high:
            raise ValueError(f"must be in ({low:g}, {high:g})")
        return value

    return AfterValidator(check)


def HalfOpenInterval(low: float, high: float) -> AfterValidator:  # noqa: N802
    """``(low, high]``."""

    def check(value: float) -> float:
        if not low < value <= high:
            raise ValueError(f"must be in ({low:g}, {high:g}]")
        return value

    return AfterValidator(check)


def Positive() -> AfterValidator:  # noqa: N802
    def check(value: float) -> float:
        if not value > 0:
            raise ValueError("must be > 0")
        return value

    return AfterValidator(check)
