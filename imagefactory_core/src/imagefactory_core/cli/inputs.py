"""What the build verbs send, read from the files and spellings the command line names.

Parameters, in the original's order of precedence: ``--parameters`` (a JSON file, or a JSON
object given inline), then each ``--parameter NAME VALUE``, then each ``--file-parameter NAME
FILE`` (the file's text is the value). Values given as text are typed by the service, which
knows each parameter's declared type ("8" becomes 8 for an integer).

A provider is a name (``ec2-us-east-1``), a JSON object, or a file holding either: ``@PATH``
reads PATH when it is a file and is otherwise the literal name after the ``@`` (the original's
``@ec2-us-east-1``); a bare value that names a file is read too (the original's provider
description file).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import USAGE, CliError


def read_text(path: Path | str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", USAGE) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} {path} is not UTF-8 text", USAGE) from exc


def json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not JSON: {exc}", USAGE) from exc
    if not isinstance(value, dict):
        raise CliError(f"{what} must be a JSON object", USAGE)
    return value


def parameters(given: str | None, pairs: Sequence[Sequence[str]] | None,
               file_pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """The request's parameters from ``--parameters``, ``--parameter``, ``--file-parameter``."""
    values: dict[str, Any] = {}
    if given:
        if given.lstrip().startswith("{"):
            values.update(json_object(given, "--parameters"))
        else:
            values.update(json_object(read_text(given, "parameters file"),
                                       f"parameters file {given}"))
    for name, value in pairs or ():
        values[name] = value
    for name, path in file_pairs or ():
        values[name] = read_text(path, f"file for parameter {name!r}")
    return values


def provider(value: str) -> str | dict[str, Any]:
    """A provider as the API takes it: a name, or a JSON object (see the module's docstring)."""
    if value.startswith("@"):
        literal = value[1:]
        return _provider_text(read_text(literal, "provider file")) \
            if Path(literal).is_file() else literal
    if value.lstrip().startswith("{"):
        return json_object(value, "--provider")
    if Path(value).is_file():
        return _provider_text(read_text(value, "provider file"))
    return value


def _provider_text(text: str) -> str | dict[str, Any]:
    """A provider file's content: a JSON object or string, else the text itself (the
    original's provider definitions are plain names or JSON)."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return stripped
    if isinstance(value, dict | str):
        return value
    raise CliError("a provider file must hold a name or a JSON object", USAGE)


def credentials(path: Path | str) -> str | dict[str, Any]:
    """Credentials as the API takes them: a JSON object, or the original's XML as text."""
    text = read_text(path, "credentials file")
    if text.lstrip().startswith("{"):
        return json_object(text, f"credentials file {path}")
    return text
