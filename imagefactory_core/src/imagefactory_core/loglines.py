"""Service log records whose client-supplied parts cannot start a line of their own.

Request paths arrive percent-encoded and are logged decoded (gunicorn's access log writes the
decoded request line; the OAuth middleware names the refused path), so a URL holding "%0A"
would put a line of the client's choosing into the operator's log ("… INFO admin logged in").
`OneLineArgs` escapes control characters in a record's arguments, the part that carries
outside data; the format string is the program's own and keeps its layout.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

# C0 and C1 controls and the Unicode line and paragraph separators: whatever a log viewer may
# take for the end of a line or a terminal for a command.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with every control character written as a Python escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), text)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, BaseException):
        return one_line(str(value))
    return value


class OneLineArgs(logging.Filter):
    """A filter (for a handler or a logger) that escapes control characters in the arguments of
    every record it sees. Tracebacks, added by the formatter, keep their lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(value) for value in record.args)
        elif isinstance(record.args, MutableMapping):  # gunicorn's access log atoms
            for key, value in list(record.args.items()):
                record.args[key] = _escaped(value)
        return True
