"""From a request's provider and credentials to an openstacksdk connection to Glance.

Provider forms (compatible with the original imagefactory's):

* ``{"glance-host": h, "glance-port": p}`` (optional ``"scheme"``, default http): that Glance
  endpoint, used directly. With Keystone credentials its token comes from Keystone; without an
  ``auth_url`` (or with strategy ``noauth``) no token is sent, for a Glance without auth.
* ``{"auth_url": url}``: Keystone v3 password auth; Glance is found in the service catalog.
* ``{"cloud": name}`` or the plain string ``name``: a cloud of clouds.yaml (the plugin config's
  ``clouds_file``, else openstacksdk's usual places); credentials given override its user and
  project, never its endpoints or region.

The ``glance-host``/``auth_url`` forms may add ``region_name``.

Where the service connects, and how it trusts TLS, is the operator's choice, not the request's
(the request would otherwise send the password, or the operator's own, to a host of its
choosing): a named cloud must be one the operator lists (parameter ``clouds``), a Keystone or
Glance URL one of the operator's ``endpoints`` whose literal address the outbound policy allows,
TLS verification comes from ``tls_verify``/``ca_bundle`` (or the cloud's clouds.yaml), and
every connection is checked against the outbound policy when it is made (`connect`).

Credentials: the seed's XML ``<provider_credentials><openstack_credentials>`` arrives as
``{"openstack_credentials": {...}}``; JSON may wrap the same keys or give them flat:
``username``, ``password``, ``tenant`` (or ``project_name`` / ``project_id``), ``auth_url``,
``strategy`` (``keystone`` or ``noauth``), ``user_domain_name`` and ``project_domain_name``
(default ``Default``). They live in this call only: never logged, stored or returned.

Environment variables (``OS_*``) are ignored on purpose: the service's own environment must
not leak into, or silently complete, a user's request.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import keystoneauth1.exceptions
import keystoneauth1.session
import openstack.connection
import openstack.exceptions
from imagefactory_core.plugin import BuildError, OutboundPolicy, OutboundRefused
from openstack.config import OpenStackConfig

STRATEGIES = ("keystone", "noauth")
CONNECT_RETRIES = 3
_KEYSTONE_REQUIRED = ("username", "password", "tenant")
_TLS_FIELDS = ("verify", "insecure", "cacert", "cert", "key")
"""Fields that would weaken or replace TLS verification: the operator's alone."""
_CLOUD_FIELDS = ("auth_url", "glance-host", "glance-port", "scheme", "region_name", "endpoint")
"""Where a named cloud is: its clouds.yaml says, a request may not move it."""


@dataclass(frozen=True)
class OperatorRules:
    """What the operator lets a request use: the plugin's operator-only parameters and the
    outbound policy."""

    clouds: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    tls_verify: bool = True
    ca_bundle: str | None = None
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)

    @classmethod
    def of(cls, parameters: Mapping[str, Any], outbound: OutboundPolicy) -> OperatorRules:
        """The rules in resolved `parameters` (a DELETE gets the push's: one recorded before
        these parameters existed allows no cloud and no endpoint)."""
        return cls(clouds=tuple(parameters.get("clouds") or ()),
                   endpoints=tuple(parameters.get("endpoints") or ()),
                   tls_verify=parameters.get("tls_verify", True),
                   ca_bundle=parameters.get("ca_bundle"), outbound=outbound)

    @property
    def verify(self) -> bool | str | None:
        """openstacksdk's ``verify`` for endpoints a request names (None: its default)."""
        if self.ca_bundle:
            return str(Path(self.ca_bundle).expanduser())
        return None if self.tls_verify else False

    def check_endpoint(self, url: str, what: str) -> None:
        refused = self.outbound.endpoint_refusal(url, self.endpoints,
                                                 "plugins.openstack.endpoints")
        if refused:
            raise BuildError(f"OpenStack {what}: {refused}")


@dataclass(frozen=True)
class Account:
    """Where Glance is and how to authenticate to it. `auth` is None for no token at all."""

    cloud: str | None
    auth: Mapping[str, str] | None
    glance_url: str | None
    region_name: str | None = None
    verify: bool | str | None = None

    def __repr__(self) -> str:
        # The auth mapping holds the password: keep it out of tracebacks and logs.
        return f"Account({self.describe()})"

    def describe(self) -> str:
        """Who talks to which service, for log lines and error messages (no secrets)."""
        parts = []
        if self.cloud:
            parts.append(f"cloud {self.cloud!r}")
        if self.auth and "auth_url" in self.auth:
            project = self.auth.get("project_name") or self.auth.get("project_id")
            parts.append(f"Keystone {self.auth['auth_url']} as user {self.auth.get('username')!r}"
                         f" in project {project!r}")
        if self.glance_url:
            parts.append(f"Glance {self.glance_url}" + ("" if self.auth is not None or self.cloud
                                                         else " without authentication"))
        return ", ".join(parts)


def _text(value: Any) -> str | None:
    """A credential or provider value as stripped text; empty and absent values are None.

    XML element text arrives with the document's indentation around it.
    """
    if value is None or isinstance(value, Mapping):
        return None
    text = str(value).strip()
    return text or None


def _flatten_credentials(credentials: Mapping[str, Any] | None) -> dict[str, str]:
    inner = (credentials or {}).get("openstack_credentials", credentials or {})
    if not isinstance(inner, Mapping):
        raise BuildError("OpenStack credentials must be <openstack_credentials> or a JSON object")
    flat = {key: _text(value) for key, value in inner.items()}
    return {key: value for key, value in flat.items() if value is not None}


def _keystone_url(url: str) -> str:
    """Keystone's v2.0 API is gone: the seed era's ``…/v2.0`` URLs mean the same Keystone's v3."""
    return re.sub(r"/v2\.0/?$", "/v3", url)


def _glance_url(provider: Mapping[str, Any]) -> str | None:
    host, port = _text(provider.get("glance-host")), _text(provider.get("glance-port"))
    if host is None and port is None:
        return None
    if host is None or port is None:
        raise BuildError("an OpenStack provider needs both glance-host and glance-port")
    scheme = _text(provider.get("scheme")) or "http"
    if scheme not in ("http", "https"):
        raise BuildError(f"provider scheme must be http or https, not {scheme!r}")
    return f"{scheme}://{host}:{port}"


def _password_auth(creds: Mapping[str, str], auth_url: str) -> dict[str, str]:
    if "tenant" not in creds and ("project_name" in creds or "project_id" in creds):
        creds = {**creds, "tenant": creds.get("project_name") or creds["project_id"]}
    missing = [key for key in _KEYSTONE_REQUIRED if key not in creds]
    if missing:
        raise BuildError(f"OpenStack credentials lack {', '.join(missing)} "
                         f"(needed for Keystone at {auth_url})")
    project_key = "project_id" if "project_id" in creds else "project_name"
    return {
        "auth_url": _keystone_url(auth_url),
        "username": creds["username"],
        "password": creds["password"],
        project_key: creds["tenant"],
        "user_domain_name": creds.get("user_domain_name", "Default"),
        "project_domain_name": creds.get("project_domain_name", "Default"),
    }


def _credential_overrides(creds: Mapping[str, str]) -> dict[str, str]:
    """The credentials given for a clouds.yaml cloud, as openstacksdk auth keys."""
    renamed = {"tenant": "project_name"}
    keys = ("username", "password", "tenant", "project_name", "project_id",
            "user_domain_name", "project_domain_name")
    return {renamed.get(key, key): creds[key] for key in keys if key in creds}


def _named_cloud(cloud: str, provider: Mapping[str, Any], creds: Mapping[str, str],
                 rules: OperatorRules) -> None:
    """Refuse a cloud the operator did not list, and any attempt to move it elsewhere."""
    if cloud not in rules.clouds:
        raise BuildError(f"cloud {cloud!r} is not one requests may name; the operator lists "
                         "those in the configuration (plugins.openstack.clouds)")
    for source, given in (("provider", provider), ("credentials", creds)):
        moved = [name for name in _CLOUD_FIELDS if name in given]
        if moved:
            raise BuildError(f"{source} field {moved[0]!r} cannot be given for cloud {cloud!r}:"
                             " a named cloud's endpoints and region are the operator's "
                             "(clouds.yaml)")


def account_from_request(provider: str | Mapping[str, Any],
                         credentials: Mapping[str, Any] | None,
                         rules: OperatorRules) -> Account:
    """Read the provider and credentials of a push or delete request (formats: module doc),
    refusing what only the operator may choose (`rules`)."""
    creds = _flatten_credentials(credentials)
    if isinstance(provider, str):
        provider = {"cloud": provider}
    if not isinstance(provider, Mapping):
        raise BuildError("an OpenStack provider is a cloud name or a JSON object")
    for source, given in (("provider", provider), ("credentials", creds)):
        weakened = [name for name in _TLS_FIELDS if name in given]
        if weakened:
            raise BuildError(f"{source} field {weakened[0]!r} is not accepted from requests: "
                             "TLS verification is the operator's (plugins.openstack tls_verify "
                             "and ca_bundle, or the cloud's clouds.yaml)")
    strategy = (creds.get("strategy") or _text(provider.get("strategy")) or "").lower() or None
    if strategy is not None and strategy not in STRATEGIES:
        raise BuildError(f"credential strategy must be one of {', '.join(STRATEGIES)}, "
                         f"not {strategy!r}")
    cloud = _text(provider.get("cloud"))
    if cloud is not None:
        _named_cloud(cloud, provider, creds, rules)
        return Account(cloud=cloud, auth=_credential_overrides(creds), glance_url=None)
    glance_url = _glance_url(provider)
    if glance_url is not None:
        rules.check_endpoint(glance_url, "Glance endpoint (glance-host, glance-port)")
    options = {"glance_url": glance_url, "region_name": _text(provider.get("region_name")),
               "verify": rules.verify}
    auth_url = creds.get("auth_url") or _text(provider.get("auth_url"))
    if strategy == "noauth" or (auth_url is None and strategy is None):
        if glance_url is None:
            raise BuildError("an OpenStack provider without Keystone needs glance-host and "
                             "glance-port")
        return Account(cloud=None, auth=None, **options)
    if auth_url is None:
        raise BuildError("OpenStack credentials lack auth_url (or give it in the provider)")
    auth = _password_auth(creds, auth_url)
    rules.check_endpoint(auth["auth_url"], "Keystone auth_url")
    return Account(cloud=None, auth=auth, **options)


def connect(account: Account, clouds_file: str | None,
            outbound: OutboundPolicy) -> openstack.connection.Connection:
    """An openstacksdk connection for `account` whose every connection (redirects and the
    endpoints the service catalog names included) obeys `outbound`; nothing is sent until it
    is used. Close it with `close`."""
    loader = OpenStackConfig(
        config_files=[clouds_file] if clouds_file else None,
        load_yaml_config=account.cloud is not None,
        load_envvars=False,
        app_name="imagefactory-openstack",
        app_version=version("imagefactory-openstack"),
        session_constructor=functools.partial(  # type: ignore[arg-type]
            keystoneauth1.session.Session, session=outbound.session()),
    )
    # Servers close idle keep-alive connections; a request that races such a close fails with
    # "connection reset" before the server saw it, and is safe to send again.
    options: dict[str, Any] = {"connect_retries": CONNECT_RETRIES}
    if account.cloud is None:
        if account.auth is None:
            options.update(auth_type="none", auth={"endpoint": account.glance_url})
        else:
            options.update(auth_type="password", auth=dict(account.auth))
    elif account.auth:
        options["auth"] = dict(account.auth)
    if account.glance_url:
        options["image_endpoint_override"] = account.glance_url
    if account.region_name:
        options["region_name"] = account.region_name
    if account.verify is not None:
        options["verify"] = account.verify
    with openstack_errors(f"reading the configuration of {account.describe()}"):
        region = loader.get_one(cloud=account.cloud, **options)
    return openstack.connection.Connection(config=region)


def authenticate(conn: openstack.connection.Connection, account: Account) -> str | None:
    """Get a token now, so bad credentials fail before anything is created; return the
    project id the token is scoped to (None without authentication)."""
    if account.auth is None and account.cloud is None:
        return None
    with openstack_errors(f"authenticating to {account.describe()}"):
        conn.authorize()
        return str(conn.current_project_id)


def close(conn: openstack.connection.Connection) -> None:
    """Close `conn` and the requests session `connect` gave it (keystoneauth leaves a session
    it was given open)."""
    conn.close()
    conn.session.session.close()


@contextlib.contextmanager
def openstack_errors(action: str) -> Iterator[None]:
    """Turn openstacksdk and keystoneauth failures into a `BuildError` saying what failed;
    a connection the outbound policy refused says why, once."""
    try:
        yield
    except (openstack.exceptions.SDKException, keystoneauth1.exceptions.ClientException) as exc:
        refused = OutboundRefused.behind(exc)
        if refused is not None:
            raise BuildError(f"{action} failed: {refused.reason}") from exc
        raise BuildError(f"{action} failed: {exc}") from exc


def clouds_file(parameters: Mapping[str, Any]) -> str | None:
    """The clouds.yaml the operator named (``clouds_file``), if any."""
    path = parameters["clouds_file"]
    return str(Path(path).expanduser()) if path else None
