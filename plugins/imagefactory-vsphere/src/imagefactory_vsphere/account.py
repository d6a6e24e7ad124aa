"""From a request's provider and credentials to where and as whom the push connects.

The provider is a JSON object, the original imagefactory's form::

    {"api-url": "https://vcenter.example.com/sdk", "datastore": "datastore1",
     "network_name": "VM Network", "compute_resource": "Cluster1",   # optional
     "resource_pool": "Images", "folder": "Templates", "datacenter": "DC1",  # optional
     "ca_cert": "-----BEGIN CERTIFICATE-----…"}                          # optional

``compute_resource`` is a cluster or a standalone host (default: the datacenter's first);
``resource_pool`` a pool in it (default: its root pool); ``folder`` a VM folder of the
datacenter (default: its root VM folder); ``datacenter`` is needed only when several hold a
datastore of that name. ``ca_cert`` pins the certificate authority (PEM text) that must have
signed the vCenter's certificate: it narrows whom the request's own password is sent to.

Credentials: the seed's XML ``<provider_credentials><vsphere_credentials>`` with
``<username>`` and ``<password>`` arrives as ``{"vsphere_credentials": {...}}``; JSON may wrap
the same keys or give them flat. They live in this call only: never logged, stored or
returned.

Where the service connects is the operator's choice: ``api-url`` must be one of the operator's
``endpoints`` (an https URL) whose literal address the outbound policy allows, and every
connection is checked against the policy when it is made. TLS is always verified unless the
operator turned it off (``tls_verify``); a request cannot weaken it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imagefactory_core.plugin import BuildError, OutboundPolicy

REQUIRED = ("api-url", "datastore", "network_name")
OPTIONAL = ("compute_resource", "resource_pool", "folder", "datacenter", "ca_cert")
_TLS_FIELDS = ("tls_verify", "verify", "insecure", "ca_file", "cacert", "thumbprint")
"""Fields that would weaken TLS verification or read the service's files: the operator's."""


@dataclass(frozen=True)
class OperatorRules:
    """What the operator lets a request use: the plugin's operator-only parameters and the
    outbound policy."""

    endpoints: tuple[str, ...] = ()
    tls_verify: bool = True
    ca_file: str | None = None
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)

    @classmethod
    def of(cls, parameters: Mapping[str, Any], outbound: OutboundPolicy) -> OperatorRules:
        return cls(endpoints=tuple(parameters.get("endpoints") or ()),
                   tls_verify=parameters.get("tls_verify", True),
                   ca_file=parameters.get("ca_file"), outbound=outbound)


@dataclass(frozen=True)
class Account:
    """Where to import, as whom, and how the vCenter's certificate is checked."""

    api_url: str
    username: str
    password: str = field(repr=False)
    datastore: str
    network: str
    compute_resource: str | None = None
    resource_pool: str | None = None
    folder: str | None = None
    datacenter: str | None = None
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context,
                                        repr=False, compare=False)

    @property
    def host(self) -> str:
        return urlsplit(self.api_url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.api_url).port or 443

    def describe(self) -> str:
        """Who talks to which vCenter, for log lines and errors (no secrets)."""
        return f"vSphere {self.api_url} as {self.username!r}"


def _text(value: Any) -> str | None:
    """A value as stripped text (XML element text arrives indented); empty is None."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def _provider(provider: str | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(provider, str):
        try:
            provider = json.loads(provider) if provider.strip().startswith("{") else provider
        except json.JSONDecodeError as exc:
            raise BuildError(f"the vSphere provider is not valid JSON: {exc}") from None
    if not isinstance(provider, Mapping):
        raise BuildError("a vSphere provider is a JSON object with api-url, datastore and "
                         "network_name (see docs/plugins/vsphere.md)")
    weakened = [name for name in _TLS_FIELDS if name in provider]
    if weakened:
        raise BuildError(f"provider field {weakened[0]!r} is not accepted from requests: TLS "
                         "verification is the operator's (plugins.vsphere tls_verify and "
                         "ca_file); a provider may pin its CA with ca_cert")
    unknown = sorted(set(provider) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise BuildError(f"unknown vSphere provider field(s): {', '.join(unknown)}; expected "
                         f"{', '.join(REQUIRED + OPTIONAL)}")
    values = {key: _text(value) for key, value in provider.items()}
    missing = [key for key in REQUIRED if not values.get(key)]
    if missing:
        raise BuildError(f"the vSphere provider lacks {', '.join(missing)}")
    return {key: value for key, value in values.items() if value is not None}


def _credentials(credentials: Mapping[str, Any] | None) -> tuple[str, str]:
    inner = (credentials or {}).get("vsphere_credentials", credentials or {})
    if not isinstance(inner, Mapping):
        raise BuildError("vSphere credentials must be <vsphere_credentials> with username and "
                         "password, or a JSON object with them")
    unknown = sorted(set(inner) - {"username", "password"})
    if unknown:
        raise BuildError(f"unknown vSphere credential field(s): {', '.join(unknown)}; "
                         "expected username, password")
    username, password = _text(inner.get("username")), _text(inner.get("password"))
    if not username or not password:
        raise BuildError("vSphere credentials need a username and a password")
    return username, password


def _ssl_context(rules: OperatorRules, ca_cert: str | None) -> ssl.SSLContext:
    if not rules.tls_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        if ca_cert:
            return ssl.create_default_context(cadata=ca_cert)
        return ssl.create_default_context(cafile=rules.ca_file)
    except (ssl.SSLError, ValueError) as exc:
        where = "the provider's ca_cert" if ca_cert else f"ca_file {rules.ca_file}"
        raise BuildError(f"{where} holds no usable CA certificate: {exc}") from None
    except OSError as exc:
        raise BuildError(f"ca_file {rules.ca_file} cannot be read: {exc.strerror}") from None


def account_from_request(provider: str | Mapping[str, Any],
                         credentials: Mapping[str, Any] | None,
                         rules: OperatorRules) -> Account:
    """Read a push's or delete's provider and credentials, refusing what only the operator may
    choose (`rules`). Connects nowhere."""
    fields = _provider(provider)
    url = fields["api-url"]
    if urlsplit(url).scheme != "https":
        raise BuildError(f"api-url {url!r} is not an https:// URL: the password must not "
                         "travel in clear")
    refused = rules.outbound.endpoint_refusal(url, rules.endpoints, "plugins.vsphere.endpoints")
    if refused:
        raise BuildError(f"vSphere api-url: {refused}")
    username, password = _credentials(credentials)
    return Account(api_url=url, username=username, password=password,
                   datastore=fields["datastore"], network=fields["network_name"],
                   compute_resource=fields.get("compute_resource"),
                   resource_pool=fields.get("resource_pool"), folder=fields.get("folder"),
                   datacenter=fields.get("datacenter"),
                   ssl_context=_ssl_context(rules, fields.get("ca_cert")))
