"""Requests the service makes to URLs a client supplied (status callbacks, cloud endpoints),
under the address policy of the build sandbox's egress (`imagefactory_core.sandbox.policy`).

A client must not turn the service into a probe of its own network: by default only public
addresses are reached; loopback, link-local (the cloud metadata services), private, shared,
reserved and multicast addresses are refused unless the operator allows them
(``outbound_allow``). The name is resolved and checked when each connection is made (the
connection goes to exactly the address checked, so DNS rebinding gains nothing), which covers
redirects too. Any port is allowed.

Plugins get the policy as `OutboundPolicy` (``ctx.outbound``, and the ``outbound`` argument of
``imagefactory_check_provider``): a requests session, urllib3 pool classes for clients built
on urllib3 directly (botocore) or checked sockets for clients built on ``http.client``
(pyvmomi), that obey it, and the check of an endpoint a request names against the plugin's
operator allow-list.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .sandbox.policy import EgressPolicy, EgressRefused


class OutboundRefused(NewConnectionError):
    """The destination's address is not one the policy allows; `reason` says why."""

    def __init__(self, conn: Any, reason: str) -> None:
        super().__init__(conn, reason)
        self.reason = reason

    @classmethod
    def behind(cls, exc: BaseException) -> OutboundRefused | None:
        """The refusal behind `exc`, or None: client libraries (requests, urllib3,
        keystoneauth, SDKs) wrap it in their own connection errors, through causes, contexts,
        ``reason`` attributes and arguments."""
        seen: set[int] = set()
        pending: list[BaseException] = [exc]
        while pending:
            error = pending.pop()
            if id(error) in seen:
                continue
            seen.add(id(error))
            if isinstance(error, cls):
                return error
            linked = [error.__cause__, error.__context__, getattr(error, "reason", None),
                      *error.args]
            pending += [item for item in linked if isinstance(item, BaseException)]
        return None


def policy(allow: tuple[str, ...] | list[str]) -> EgressPolicy:
    """The outbound policy with the operator's allow-list (CIDRs or host names), any port."""
    return EgressPolicy(allow=tuple(allow), ports=())


def refusal(policy: EgressPolicy, url: str) -> str | None:
    """Why `url` cannot be reached under `policy`, or None (resolving its host now)."""
    parts = urlsplit(url)
    try:
        policy.destinations(parts.hostname or "", parts.port or 80)
    except EgressRefused as refused:
        return str(refused)
    return None


class _Checked:
    """A urllib3 connection that connects only to an address `policy` allows."""

    policy: EgressPolicy
    host: str
    port: int
    timeout: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        return _connect(self.policy, self._dns_host, self.port, timeout, self.socket_options,
                        self)


def _connect(policy: EgressPolicy, host: str, port: int, timeout: float | None,
             socket_options: Any = None, conn: Any = None) -> socket.socket:
    """A TCP connection to an address of `host` that `policy` allows, resolved and checked
    now (`OutboundRefused` when none is); `conn` is the urllib3 connection it is for, if any."""
    try:
        destinations = policy.destinations(host, port)
    except EgressRefused as refused:
        raise OutboundRefused(conn, f"refused by the outbound policy: {refused}") from None
    failure: OSError | None = None
    for family, address in destinations:
        sock = socket.socket(family, socket.SOCK_STREAM)
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            failure = error
    raise NewConnectionError(conn, f"Failed to establish a new connection: {failure}")


def _checked_pool(policy: EgressPolicy,
                  pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """A subclass of `pool` whose connections (of its own connection class) obey `policy`."""
    base = pool.ConnectionCls
    connection = type(f"Checked{base.__name__}", (_Checked, base), {"policy": policy})
    return type(f"Checked{pool.__name__}", (pool,), {"ConnectionCls": connection})


class _PolicyAdapter(HTTPAdapter):
    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _checked_pool(self.policy, HTTPConnectionPool),
            "https": _checked_pool(self.policy, HTTPSConnectionPool),
        }


def session(allow: tuple[str, ...] | list[str], **adapter: Any) -> requests.Session:
    """A requests session whose every connection obeys the outbound policy; `adapter` goes to
    the `HTTPAdapter` (``max_retries``).

    It ignores the environment's proxy settings (``HTTP(S)_PROXY``, .netrc): requests would
    hand a proxied URL to a proxy pool that the checked connections do not cover, and the
    proxy would reach whatever address the URL names."""
    checked = requests.Session()
    checked.trust_env = False
    adapter_for_both = _PolicyAdapter(policy(allow), **adapter)
    checked.mount("http://", adapter_for_both)
    checked.mount("https://", adapter_for_both)
    return checked


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL, host lower-case and port filled in; None
    for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return (parts.scheme, parts.hostname.lower().rstrip("."),
            port or _DEFAULT_PORTS[parts.scheme], parts.path.rstrip("/"))


def endpoint_listed(url: str, endpoints: Sequence[str]) -> bool:
    """Whether `url` is one of the operator's `endpoints`: the same scheme, host and port
    (default ports filled in) as an entry, and a path at or under the entry's path."""
    wanted = _origin(url)
    if wanted is None:
        return False
    for entry in endpoints:
        listed = _origin(entry)
        if listed is not None and listed[:3] == wanted[:3] and (
                wanted[3] == listed[3] or wanted[3].startswith(listed[3] + "/")):
            return True
    return False


@dataclass(frozen=True)
class OutboundPolicy:
    """The operator's outbound policy (configuration ``outbound_allow``), as plugins use it.

    Attributes:
        allow: CIDRs or host names the operator allows beyond public addresses.
    """

    allow: tuple[str, ...] = ()

    @property
    def _egress(self) -> EgressPolicy:
        return policy(self.allow)

    def address_refusal(self, url: str) -> str | None:
        """Why the policy refuses `url` when its host is an IP address, else None. A host
        name is checked when a connection is made: it may resolve differently by then."""
        try:
            address = ipaddress.ip_address(urlsplit(url).hostname or "")
        except ValueError:
            return None
        return self._egress.check_address(address)

    def endpoint_refusal(self, url: str, endpoints: Sequence[str], setting: str) -> str | None:
        """Why a request may not send the service to `url`, or None: it must be one of the
        operator's `endpoints` (the plugin's configuration key `setting`, named in the
        message) and not a literal address the policy refuses."""
        if _origin(url) is None:
            return f"{url!r} is not an http:// or https:// URL"
        if not endpoint_listed(url, endpoints):
            return (f"{url} is not an endpoint this service may use; the operator lists those "
                    f"in the configuration ({setting})")
        refused = self.address_refusal(url)
        if refused:
            return (f"{url} is {refused}, which this service does not connect to (the "
                    "operator may allow it: configuration outbound_allow)")
        return None

    def session(self, **adapter: Any) -> requests.Session:
        """A requests session whose every connection, redirects included, obeys the policy;
        `adapter` goes to requests' ``HTTPAdapter`` (``max_retries`` …)."""
        return session(self.allow, **adapter)

    def connect(self, host: str, port: int, timeout: float | None = None) -> socket.socket:
        """A TCP socket connected to `host`:`port` under the policy: the name is resolved and
        every address checked now, and the socket goes to exactly an allowed one (else
        `OutboundRefused`). For HTTP clients built on neither requests nor urllib3 (pyvmomi's
        ``http.client`` connections): wrap it in TLS with ``server_hostname=host``."""
        return _connect(self._egress, host, port, timeout)

    def pool_class(self, pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
        """A subclass of the urllib3 connection pool class `pool` whose new connections
        resolve the host, check every address and connect only to one the policy allows
        (else `OutboundRefused`). For HTTP clients built on urllib3's pools (botocore)."""
        return _checked_pool(self._egress, pool)
