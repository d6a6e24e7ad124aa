"""From a request's provider and credentials to the engine account a push or delete uses.

The provider is a JSON object (compatible with the original imagefactory's)::

    {"api-url": "https://engine.example/ovirt-engine/api", "cluster": "Default",
     "storage-domain": "data", "ca-file": "/etc/pki/ovirt-engine/ca.pem", "timeout": 1800}

``api-url`` is required. ``cluster`` (default: the ``rhevm_cluster`` parameter, ``_any_``) and
``storage-domain`` (default: ``rhevm_storage_domain``, else the cluster's data center's master
data domain) say where the template goes. ``ca-file`` pins the CA that the engine's and
imageio's certificates must chain to; ``insecure: true`` turns verification off, only where the
operator allows it (``allow_insecure``). ``timeout`` shortens the operator's ``timeout``.
The original's NFS export-domain fields (``nfs-host``, ``nfs-path``, ``nfs-dir``) are accepted
and ignored: disks are uploaded through imageio now. Its ``username`` is taken when the
credentials give none; a ``password`` is refused, because a provider is stored and shown with
the image (credentials are not).

Credentials: the seed's ``<provider_credentials><rhevm_credentials>`` arrives as
``{"rhevm_credentials": {"username": …, "password": …}}``; JSON may give the same keys flat.

The engine is where the service sends the password, so its URL must be one the operator lists
(``endpoints``) and, when it is a literal address, one the outbound policy allows; every
connection is checked again when it is made (`transport`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from imagefactory_core.plugin import BuildError, OutboundPolicy

from .settings import ANY_CLUSTER, NAME_PATTERN

LEGACY_NFS_FIELDS = ("nfs-host", "nfs-path", "nfs-dir")
KNOWN_FIELDS = ("api-url", "cluster", "storage-domain", "ca-file", "insecure", "timeout",
                "username", *LEGACY_NFS_FIELDS)
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Account:
    """Where the engine is, who logs in, how TLS is verified and where the template goes.

    `verify` is True (the system's CAs), a CA bundle's path, or False (no verification).
    `notes` are what the log should say about the provider (fields accepted but not used).
    """

    api_url: str
    username: str
    password: str = field(repr=False)
    verify: bool | str = True
    cluster: str = ANY_CLUSTER
    storage_domain: str | None = None
    timeout: float = 1800.0
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """Who talks to which engine, for log lines and error messages (no secrets)."""
        return f"oVirt engine {self.api_url} as {self.username!r}"


def _text(value: Any) -> str | None:
    """A value as stripped text (XML element text arrives indented); empty is None."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def _provider_object(provider: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(provider, str) and provider.lstrip().startswith("{"):
        try:
            provider = json.loads(provider)
        except json.JSONDecodeError as exc:
            raise BuildError(f"the oVirt provider is not valid JSON: {exc}") from None
    if not isinstance(provider, Mapping):
        raise BuildError('an oVirt provider is a JSON object: {"api-url": '
                         '"https://engine.example/ovirt-engine/api", "cluster": …}')
    return provider


def _credentials(credentials: Mapping[str, Any] | None) -> dict[str, str]:
    inner = (credentials or {}).get("rhevm_credentials", credentials or {})
    if not isinstance(inner, Mapping):
        raise BuildError("oVirt credentials must be <rhevm_credentials> or a JSON object")
    flat = {key: _text(value) for key, value in inner.items()}
    return {key: value for key, value in flat.items() if value is not None}


def _flag(provider: Mapping[str, Any], name: str) -> bool:
    value = provider.get(name, False)
    if isinstance(value, bool):
        return value
    text = (_text(value) or "false").lower()
    if text not in ("true", "false"):
        raise BuildError(f"provider field {name!r} must be true or false, not {value!r}")
    return text == "true"


def _name(value: Any, what: str, default: str | None) -> str | None:
    text = _text(value)
    if text is None:
        return default
    if not _NAME.fullmatch(text):
        raise BuildError(f"provider field {what!r}: {text!r} is not an oVirt name (letters, "
                         "digits, '.', '_' and '-')")
    return text


def _timeout(provider: Mapping[str, Any], ceiling: float) -> float:
    text = _text(provider.get("timeout"))
    if text is None:
        return ceiling
    try:
        asked = float(text)
    except ValueError:
        raise BuildError(f"provider field 'timeout' must be a number of seconds, not "
                         f"{text!r}") from None
    if not asked > 0:
        raise BuildError("provider field 'timeout' must be above 0 seconds")
    return min(asked, ceiling)


def _verify(provider: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool | str:
    ca_file = _text(provider.get("ca-file"))
    if _flag(provider, "insecure"):
        if ca_file is not None:
            raise BuildError("provider fields 'ca-file' and 'insecure' contradict each other: "
                             "pin a CA or turn verification off")
        if not parameters["allow_insecure"]:
            raise BuildError("provider field 'insecure' is not accepted: this service verifies "
                             "the engine's TLS certificate (the operator may allow turning it "
                             "off: plugins.rhevm.allow_insecure)")
        return False
    if ca_file is not None:
        if not PurePosixPath(ca_file).is_absolute():
            raise BuildError(f"provider field 'ca-file' must be an absolute path, not "
                             f"{ca_file!r}")
        return ca_file
    operator_ca: str | None = parameters["ca_file"]
    return operator_ca or True


def account_from_request(provider: str | Mapping[str, Any],
                         credentials: Mapping[str, Any] | None,
                         parameters: Mapping[str, Any], outbound: OutboundPolicy) -> Account:
    """Read the provider and credentials of a push or delete request (formats: module doc),
    refusing what the operator does not allow: its `endpoints`, `allow_insecure` and
    `outbound` policy. `parameters` are the plugin's resolved values (for a delete, the
    push's), which also give the cluster and storage domain a provider does not name."""
    fields = _provider_object(provider)
    if "password" in fields:
        raise BuildError("provider field 'password' is not accepted: a provider is stored and "
                         "shown with the image; give the password in <rhevm_credentials>")
    unknown = sorted(set(fields) - set(KNOWN_FIELDS))
    if unknown:
        raise BuildError(f"unknown oVirt provider field(s): {', '.join(unknown)}; expected "
                         f"{', '.join(KNOWN_FIELDS)}")
    api_url = _text(fields.get("api-url"))
    if api_url is None:
        raise BuildError("the oVirt provider needs an api-url (https://engine.example"
                         "/ovirt-engine/api)")
    refused = outbound.endpoint_refusal(api_url, parameters["endpoints"] or (),
                                        "plugins.rhevm.endpoints")
    if refused:
        raise BuildError(f"oVirt provider api-url: {refused}")
    creds = _credentials(credentials)
    username = creds.get("username") or _text(fields.get("username"))
    if username is None:
        raise BuildError("oVirt credentials lack username (user@profile, e.g. admin@internal)")
    if "password" not in creds:
        raise BuildError("oVirt credentials lack password")
    legacy = [name for name in LEGACY_NFS_FIELDS if name in fields]
    notes = (f"provider field(s) {', '.join(legacy)} are no longer needed and are ignored: the "
             "disk is uploaded through imageio straight into a data storage domain, with no "
             "NFS export domain",) if legacy else ()
    return Account(api_url=api_url, username=username, password=creds["password"],
                   verify=_verify(fields, parameters),
                   cluster=_name(fields.get("cluster"), "cluster", parameters["rhevm_cluster"])
                   or ANY_CLUSTER,
                   storage_domain=_name(fields.get("storage-domain"), "storage-domain",
                                        parameters["rhevm_storage_domain"]),
                   timeout=_timeout(fields, float(parameters["timeout"])), notes=notes)
