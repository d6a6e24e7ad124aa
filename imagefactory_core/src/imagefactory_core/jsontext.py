"""JSON text from clients, parsed with bounded nesting.

`json.loads` recurses once per level: a body of 100 000 ``[`` raises `RecursionError`, which is
no `ValueError` and so escapes every parser's error handling as a 500; nesting just under the
interpreter's limit parses, and then every recursive walk over the value (redaction, storing,
checking parameters) risks the same. No image request needs more than a few levels, so a value
nested deeper than `MAX_DEPTH` is refused as malformed, whatever the parser manages.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""Levels of objects and arrays a client's JSON value may have (``{"a": [1]}`` has 2)."""


class TooDeep(ValueError):
    """The JSON text nests objects and arrays deeper than `MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"objects and arrays are nested more than {MAX_DEPTH} levels deep")


def loads(text: str | bytes) -> Any:
    """`json.loads` that raises `ValueError` (`TooDeep` for nesting) for anything it refuses.

    Non-UTF-8 bytes raise `UnicodeDecodeError`, a `ValueError` too.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise TooDeep()
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` levels, walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
