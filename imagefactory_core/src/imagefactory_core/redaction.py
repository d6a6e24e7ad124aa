"""Keep secrets out of responses, logs and the database.

`rootpw` in templates is handled by `tdl.redact_template`; this module covers the request
parameters: user-info in callback URLs, and any parameter whose name says it is secret. It also
defines `REDACTED`, the one mask every redaction writes in place of a secret; it imports nothing
of the package, so any module can take the mask from here without an import cycle.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "*****"
_SECRET_NAME = re.compile(r"(passw(or)?d|passphrase|secret|token|credential|private_?key|"
                          r"rootpw|access_?key|api_?key|auth(?!or))", re.I)


def redact_url(url: str) -> str:
    """``https://user:pw@host/x`` → ``https://*****@host/x``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable as a URL: mask whatever could be user-info
        return re.sub(r"//[^/]*@", f"//{REDACTED}@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of `parameters` fit to store and show."""
    clean: dict[str, Any] = {}
    for key, value in parameters.items():
        if _SECRET_NAME.search(key):
            clean[key] = REDACTED
        elif key == "callbacks":
            # one URL may be given as a plain string (iterating it would store its characters)
            urls = [value] if isinstance(value, str) else value
            clean[key] = [redact_url(str(u)) for u in urls]
        else:
            clean[key] = _redact_value(value)
    return clean


def _redact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return redact_parameters(value)
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    return value
