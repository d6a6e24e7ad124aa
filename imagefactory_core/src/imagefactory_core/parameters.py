"""Declared parameters: what a plugin (or the core) accepts in a request's ``parameters``.

Every knob of a plugin is a `Parameter`: its name, type, default, allowed values or range,
help text, whether it is secret and whether only the operator may set it. The core does the
rest once, for every plugin alike:

* at POST time it checks the request's parameters against the declarations of every plugin the
  request (or its cascade) will call: a wrong type or value, an unknown name or an operator-only
  parameter the client may not set is a 400 that says what is allowed;
* at start-up it checks each plugin's section of the configuration file the same way, so a typo
  stops the service with a message instead of failing builds later;
* when a job runs, each plugin gets its own resolved, typed values: the request's, else its
  configuration section's, else the declared default.

Values are JSON values (str, int, float, bool, list of str, dict), so a job that carries them
can be sent to another host.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from . import jsontext
from .errors import InvalidRequest
from .redaction import redact_url, secret_name

ParameterType = Literal["string", "integer", "number", "boolean", "url", "list", "object"]
TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "url", "list", "object")

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# Characters that have no place in a URL handed to a tool: white space, quotes, and what shells,
# apt configuration files or sources.list lines would read as syntax.
_URL_FORBIDDEN = re.compile(r"[\s\"'<>\\^`{|}\x00-\x1f\x7f]")
_SCHEMA_TYPE = {"string": "string", "url": "string", "integer": "integer", "number": "number",
                "boolean": "boolean", "list": "array", "object": "object"}

# Parameters of the original Image Factory that this one does not take, and why: a client
# migrating from it gets an answer instead of a bare "unknown parameter".
ORIGINAL_PARAMETERS = {
    "generate_icicle": "ICICLE manifests are always generated",
    "snapshot": "snapshot builds on a provider are not supported; build a base image, then a "
                "target image, then push it",
    "oz_overrides": "builds do not use Oz; use the OS plugin's own parameters",
    "libvirt_xml": "builds do not use Oz or libvirt domain XML",
}


class ParameterError(InvalidRequest):
    """A parameter's value or name is not acceptable (HTTP 400)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter a plugin accepts.

    Attributes:
        name: lower-case letters, digits and ``_``; the key in a request's ``parameters`` and in
            the plugin's section of the configuration file.
        type: ``string``, ``integer``, ``number``, ``boolean``, ``url`` (http or https, no white
            space, quotes or control characters), ``list`` (of strings) or ``object``.
        default: the value when neither the request nor the configuration gives one (None: unset).
        help: one sentence for the API and the generated documentation.
        choices: the allowed values (strings are matched ignoring case, the declared spelling
            is what the plugin gets); for lists, the allowed items.
        minimum, maximum: the range of an integer or number.
        pattern: a regular expression every string (or list item) must match whole.
        secret: the value reaches the plugin in clear but is never stored, shown or logged.
        operator_only: only the configuration file sets it, unless the operator lets a client
            set it (configuration ``operator_parameters``). Use it for whatever decides where
            the service connects or what it spends: mirrors, proxies, endpoints, caches, limits.
    """

    name: str
    type: ParameterType = "string"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    secret: bool = False
    operator_only: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"parameter name {self.name!r} must be lower-case letters, digits "
                             "and _ (starting with a letter)")
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: type {self.type!r} is not one of "
                             f"{', '.join(TYPES)}")
        if self.default is not None:
            object.__setattr__(self, "default", self.coerce(self.default, "default"))

    # -- checking values ------------------------------------------------------------------------
    def coerce(self, value: Any, source: str = "request") -> Any:
        """`value` as this parameter's type, or `ParameterError` saying what is allowed.

        Strings are accepted for every type, since form and XML bodies carry nothing else.
        """
        if value is None:
            return None
        converted = getattr(self, f"_as_{self.type}")(value)
        if converted is _BAD:
            raise self._error(value, source, f"expected {self.describe_type()}")
        self._check_bounds(converted, value, source)
        return converted

    def describe_type(self) -> str:
        """What a valid value looks like, for messages and docs."""
        text = {"string": "a string", "integer": "a whole number", "number": "a number",
                "boolean": "true or false", "url": "an http:// or https:// URL",
                "list": "a list of strings", "object": "a JSON object"}[self.type]
        if self.choices:
            text += f", one of {', '.join(str(c) for c in self.choices)}"
        if self.minimum is not None and self.maximum is not None:
            text += f", from {_number(self.minimum)} to {_number(self.maximum)}"
        elif self.minimum is not None:
            text += f", at least {_number(self.minimum)}"
        elif self.maximum is not None:
            text += f", at most {_number(self.maximum)}"
        if self.pattern:
            text += f", matching {self.pattern}"
        return text

    def _error(self, value: Any, source: str, why: str) -> ParameterError:
        if self.secret or secret_name(self.name):
            shown = "(secret, not shown)"
        elif self.type == "url" and isinstance(value, str) and "@" in value:
            shown = _short(redact_url(value))  # user:password@ is a credential in any URL
        else:
            shown = _short(value)
        return ParameterError(f"parameter {self.name!r} ({source}): cannot use {shown}: {why}")

    def _check_bounds(self, converted: Any, raw: Any, source: str) -> None:
        items = converted if self.type == "list" else [converted]
        for item in items:
            if self.choices and item not in self.choices:
                raise self._error(raw, source, f"expected {self.describe_type()}")
            if self.pattern and isinstance(item, str) and not re.fullmatch(self.pattern, item):
                raise self._error(raw, source, f"expected {self.describe_type()}")
        if self.type in ("integer", "number") and (
                (self.minimum is not None and converted < self.minimum)
                or (self.maximum is not None and converted > self.maximum)):
            raise self._error(raw, source, f"expected {self.describe_type()}")

    def _choice(self, text: str) -> str:
        """The declared spelling of a choice given in another case."""
        for choice in self.choices:
            if isinstance(choice, str) and choice.lower() == text.lower():
                return choice
        return text

    def _as_string(self, value: Any) -> Any:
        return self._choice(value.strip()) if isinstance(value, str) else _BAD

    def _as_url(self, value: Any) -> Any:
        if not isinstance(value, str) or _URL_FORBIDDEN.search(value.strip()):
            return _BAD
        text = value.strip()
        try:
            parts = urlsplit(text)
            usable = (parts.scheme in ("http", "https") and bool(parts.hostname)
                      and parts.port != 0)
        except ValueError:
            usable = False
        return text if usable else _BAD

    def _as_integer(self, value: Any) -> Any:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if value.is_integer() else _BAD
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        return _BAD

    def _as_number(self, value: Any) -> Any:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return _BAD
        else:
            return _BAD
        return float(number) if math.isfinite(number) else _BAD

    def _as_boolean(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if type(value) is int and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
            return value.strip().lower() in _TRUE
        return _BAD

    def _as_list(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = jsontext.loads(text)
                except ValueError:
                    return _BAD
            else:
                value = [part for part in re.split(r"[\s,]+", text) if part]
        if not isinstance(value, list | tuple) or not all(
                isinstance(item, str) and item.strip() for item in value):
            return _BAD
        return [self._choice(item.strip()) for item in value]

    def _as_object(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = jsontext.loads(value)
            except ValueError:
                return _BAD
        return dict(value) if isinstance(value, dict) else _BAD

    # -- describing -----------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        """A JSON Schema of the value (for the OpenAPI document and ``/plugins/<id>``)."""
        schema: dict[str, Any] = {"type": _SCHEMA_TYPE[self.type]}
        if self.help:
            schema["description"] = self.help
        if self.type == "url":
            schema["format"] = "uri"
        if self.type == "list":
            schema["items"] = {"type": "string"}
            if self.choices:
                schema["items"]["enum"] = list(self.choices)
        elif self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.pattern:
            target = schema["items"] if self.type == "list" else schema
            target["pattern"] = f"^(?:{self.pattern})$"
        if self.default is not None and not self.secret:
            schema["default"] = self.default
        if self.secret:
            schema["writeOnly"] = True
        return schema

    def metadata(self) -> dict[str, Any]:
        """The ``/plugins/<id>`` view of the declaration."""
        return {"name": self.name, "type": self.type, "help": self.help,
                "default": None if self.secret else self.default,
                "choices": list(self.choices) or None, "minimum": self.minimum,
                "maximum": self.maximum, "pattern": self.pattern, "secret": self.secret,
                "operator_only": self.operator_only}


class _Bad:
    """The marker a converter returns for a value it cannot use."""


_BAD = _Bad()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- the core's own parameters ------------------------------------------------------------------
CORE = "core"
"""The owner name of the parameters the core itself declares."""

CORE_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("callbacks", "list",
              help="http(s) URLs that receive a PUT of the image JSON on every status change"),
)


# -- checking a request -------------------------------------------------------------------------
@dataclass(frozen=True)
class Declarations:
    """The parameters of the plugins one request calls, each under its owner's name."""

    by_owner: Mapping[str, Sequence[Parameter]] = field(default_factory=dict)

    def owners(self, name: str) -> list[tuple[str, Parameter]]:
        return [(owner, p) for owner, params in self.by_owner.items() for p in params
                if p.name == name]

    def names(self) -> list[str]:
        return sorted({p.name for params in self.by_owner.values() for p in params})

    def check(self, request: Mapping[str, Any], granted: Iterable[str]) -> dict[str, Any]:
        """The request's parameters as typed values, or a `ParameterError` for the first bad one.

        `granted` names the operator-only parameters this client may set (``*``: all of them).
        """
        allowed = set(granted)
        typed: dict[str, Any] = {}
        for name, value in request.items():
            owners = self.owners(name)
            if not owners:
                raise ParameterError(self._unknown(name))
            for owner, parameter in owners:
                if parameter.operator_only and not ({"*", name} & allowed):
                    raise ParameterError(
                        f"parameter {name!r} (of {owner}) is set by the operator only: it "
                        "decides where the service connects or what it spends. Ask the "
                        "operator to set it in the configuration, or to let your client set "
                        "it (configuration key operator_parameters)")
                typed[name] = parameter.coerce(value)
        return typed

    def _unknown(self, name: str) -> str:
        known = ", ".join(self.names()) or "none"
        if name in ORIGINAL_PARAMETERS:
            return (f"parameter {name!r} of the original Image Factory is not supported: "
                    f"{ORIGINAL_PARAMETERS[name]}. Parameters this request takes: {known}")
        return (f"unknown parameter {name!r}; this request takes: {known} (GET "
                "/imagefactory/plugins/<id> describes each plugin's parameters)")


def resolve(declared: Sequence[Parameter], request: Mapping[str, Any],
            config: Mapping[str, Any]) -> dict[str, Any]:
    """One plugin's values: the (typed) request's, else the (typed) configuration's, else the
    declared default. Every declared name is present."""
    values: dict[str, Any] = {}
    for parameter in declared:
        for source in (request, config):
            if source.get(parameter.name) is not None:
                values[parameter.name] = source[parameter.name]
                break
        else:
            values[parameter.name] = parameter.default
    return values


def check_config(owner: str, declared: Sequence[Parameter],
                 section: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's configuration section as typed values; unknown keys and bad values raise
    `ParameterError` naming the section."""
    by_name = {p.name: p for p in declared}
    typed: dict[str, Any] = {}
    for key, value in section.items():
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ParameterError(f"configuration plugins.{owner}: unknown key {key!r}; the "
                                 f"plugin's parameters are: {known}")
        typed[key] = by_name[key].coerce(value, f"configuration plugins.{owner}")
    return typed


def secret_values(declared: Iterable[Parameter], values: Mapping[str, Any]) -> list[str]:
    """The clear text of every secret value (to mask in logs and errors): the values of
    parameters declared secret, and, as the stored copy redacts them, of parameters or keys
    inside them at any depth whose names say they are secret (`redaction.secret_name`)."""
    found: list[str] = []
    for parameter in declared:
        value = values.get(parameter.name)
        if parameter.secret and value is not None:
            found += _leaves(value)
        elif value is not None:
            found += _named_leaves(value, secret_name(parameter.name))
    return found


def _named_leaves(value: Any, secret: bool) -> list[str]:
    """The leaves of `value` under a secret name (all of them when `secret`); booleans are
    flags, not secrets, and masking "True" would garble every log."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items()
                for leaf in _named_leaves(item, secret or secret_name(str(key)))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _named_leaves(item, secret)]
    text = str(value)
    return [text] if secret and not isinstance(value, bool) and text.strip() else []


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    text = str(value)
    return [text] if text.strip() else []
