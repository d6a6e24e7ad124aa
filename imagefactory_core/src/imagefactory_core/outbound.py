"""Requests the service makes to URLs a client supplied (status callbacks), under the address
policy of the build sandbox's egress (`imagefactory_core.sandbox.policy`).

A client must not turn the service into a probe of its own network: by default only public
addresses are reached; loopback, link-local (the cloud metadata services), private, shared,
reserved and multicast addresses are refused unless the operator allows them
(``outbound_allow``). The name is resolved and checked when each connection is made (the
connection goes to exactly the address checked, so DNS rebinding gains nothing), which covers
redirects too. Any port is allowed.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .sandbox.policy import EgressPolicy, EgressRefused


class OutboundRefused(NewConnectionError):
    """The destination's address is not one the policy allows."""


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
        try:
            destinations = self.policy.destinations(self._dns_host, self.port)
        except EgressRefused as refused:
            raise OutboundRefused(self, f"refused by the outbound policy: {refused}") from None
        failure: OSError | None = None
        for family, address in destinations:
            sock = socket.socket(family, socket.SOCK_STREAM)
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(self.timeout if isinstance(self.timeout, int | float) else None)
            try:
                sock.connect(address)
                return sock
            except OSError as error:
                sock.close()
                failure = error
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")


class _PolicyAdapter(HTTPAdapter):
    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        checked_http = type("CheckedHTTPConnection", (_Checked, HTTPConnection),
                            {"policy": self.policy})
        checked_https = type("CheckedHTTPSConnection", (_Checked, HTTPSConnection),
                             {"policy": self.policy})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPPool", (HTTPConnectionPool,),
                         {"ConnectionCls": checked_http}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": checked_https}),
        }


def session(allow: tuple[str, ...] | list[str], **adapter: Any) -> requests.Session:
    """A requests session whose every connection obeys the outbound policy; `adapter` goes to
    the `HTTPAdapter` (``max_retries``)."""
    checked = requests.Session()
    adapter_for_both = _PolicyAdapter(policy(allow), **adapter)
    checked.mount("http://", adapter_for_both)
    checked.mount("https://", adapter_for_both)
    return checked
