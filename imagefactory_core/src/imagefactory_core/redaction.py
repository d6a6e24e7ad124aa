"""Keep secrets out of responses, logs and the database.

`rootpw` in templates is handled by `tdl.redact_template`; this module covers the request
parameters: callback URLs (only their scheme, host and port are kept), and any parameter whose
name says it is secret. It also defines `REDACTED`, the one mask every redaction writes in place
of a secret; it imports nothing of the package, so any module can take the mask from here
without an import cycle.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "*****"
_SECRET_NAME = re.compile(r"(passw(or)?d|passphrase|secret|token|credential|private_?key|"
                          r"rootpw|access_?key|api_?key|auth(?!or))", re.I)


# RFC 3986 appendix B: splits any string, so there is no unparseable URL to fall back from.
_URL_PARTS = re.compile(r"^(?:([^:/?#]+):)?(?://([^/?#]*))?(.*)$", re.S)


def secret_name(name: str) -> bool:
    """Whether a parameter (or a key inside one) is secret by its name alone."""
    return bool(_SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """What may be shown of a URL a client gave: its scheme, host and port.

    User-info, path, query and fragment may all carry credentials (callback receivers take
    tokens in any of them), so each becomes `REDACTED`:
    ``https://u:pw@host:8443/hook?token=x`` → ``https://*****@host:8443/*****``. A bare ``/``
    path hides nothing and is kept. The result redacts to itself.
    """
    match = _URL_PARTS.match(url)
    assert match is not None  # every group is optional
    scheme, authority, rest = match.groups()
    shown = f"{scheme}:" if scheme else ""
    if authority is not None:
        _user_info, at, host = authority.rpartition("@")
        shown += f"//{REDACTED}@{host}" if at else f"//{host}"
        return shown + (rest if rest in ("", "/") else f"/{REDACTED}")
    return shown + (REDACTED if rest else "")


class UrlArgsRedacted(logging.Filter):
    """A logger filter that shows only the scheme, host and port of the URLs (absolute, or a
    path with its query) in a record's arguments. urllib3 names the URL it retries or redirects
    ("Retrying … after connection broken …: /hook?token=x"); for a callback, that is the
    client's URL with its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(value) if isinstance(value, str) and
                                (value.startswith("/") or "://" in value) else value
                                for value in record.args)
        return True


def redact_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of `parameters` fit to store and show."""
    clean: dict[str, Any] = {}
    for key, value in parameters.items():
        if secret_name(key):
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
