"""EC2 credentials from the request: the seed's ``<ec2_credentials>`` XML (already parsed by the
core into a dict) or JSON, with the same keys flat or wrapped in ``ec2_credentials``.

Credentials live only for one push or delete. They are never logged or stored, which is why
`Ec2Credentials` hides its secrets from ``repr`` and the caller registers them with the build
context so that even an accidental log line is masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagefactory_core.plugin import BuildError

REQUIRED = ("access_key", "secret_access_key")
OPTIONAL = ("account_number", "session_token")
IGNORED = ("certificate", "key")
"""Kept by the seed for EC2's retired bundle (instance-store) uploads; accepted and unused."""


@dataclass(frozen=True)
class Ec2Credentials:
    access_key: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    account_number: str | None = None
    session_token: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values a log must never show."""
        return tuple(v for v in (self.access_key, self.secret_access_key, self.session_token) if v)


def parse_credentials(document: Mapping[str, Any] | None) -> Ec2Credentials:
    """Read `document` (``{"ec2_credentials": {...}}`` or the inner dict itself).

    Raises `BuildError` naming missing or unknown keys, never showing a value.
    """
    if not isinstance(document, Mapping) or not document:
        raise BuildError("ec2 needs credentials: <provider_credentials><ec2_credentials> with "
                         "access_key and secret_access_key (or the same keys as JSON)")
    inner = document.get("ec2_credentials", document)
    if not isinstance(inner, Mapping):
        raise BuildError("ec2_credentials must contain access_key and secret_access_key")
    values = {key: _text(value) for key, value in inner.items()}
    unknown = sorted(set(values) - set(REQUIRED) - set(OPTIONAL) - set(IGNORED))
    if unknown:
        raise BuildError(f"unknown ec2 credential field(s): {', '.join(unknown)}; expected "
                         f"{', '.join(REQUIRED + OPTIONAL)}")
    missing = [key for key in REQUIRED if not values.get(key)]
    if missing:
        raise BuildError(f"ec2 credentials lack {' and '.join(missing)}")
    account = values.get("account_number")
    return Ec2Credentials(
        access_key=values["access_key"],
        secret_access_key=values["secret_access_key"],
        account_number=_account_id(account) if account else None,
        session_token=values.get("session_token") or None,
    )


def _text(value: Any) -> str:
    """XML element text arrives with the document's indentation around it."""
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _account_id(account_number: str) -> str:
    """AWS shows account numbers as ``1234-5678-9012``; the API uses ``123456789012``."""
    digits = account_number.replace("-", "").replace(" ", "")
    if not (digits.isdigit() and len(digits) == 12):
        raise BuildError("ec2 credentials: account_number must be a 12-digit AWS account number")
    return digits
