"""A logged-in vSphere API session through pyvmomi, every connection under the outbound policy.

pyvmomi talks through ``http.client`` connections of its own making, which neither requests
sessions nor urllib3 pools reach: the SOAP stub's connection class is replaced by one whose
socket comes from ``ctx.outbound.connect`` (the host resolved and every address checked
when the connection is made) and is then wrapped in the account's TLS context, which checks
the vCenter's certificate and host name. The NFC upload uses the same class.

The API version spoken is 6.5's (``vim.version.version11``): every vCenter still supported
accepts it, and everything a push needs (OvfManager, ImportVApp, HttpNfcLease, MarkAsTemplate)
is older.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import BuildError, OutboundPolicy, OutboundRefused
from pyVmomi import SoapStubAdapter, vim, vmodl

from .account import Account

API_VERSION = "vim.version.version11"
TIMEOUT = 300.0  # seconds without an answer before a call fails


def connection_class(outbound: OutboundPolicy) -> type[http.client.HTTPSConnection]:
    """An HTTPSConnection class whose connections obey `outbound`."""

    class PolicyConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            sock = outbound.connect(self.host, self.port, timeout)
            # As http.client's own connect does: pyvmomi writes a request's head and body
            # apart, and Nagle's algorithm would hold the body until the delayed ACK (40 ms
            # for every call).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    return PolicyConnection


@dataclass
class Session:
    """A logged-in session: `content` is the ServiceContent, `cookie` the session cookie an
    NFC upload presents."""

    account: Account
    stub: Any
    content: Any

    @property
    def cookie(self) -> str:
        return str(self.stub.cookie)


@contextlib.contextmanager
def logged_in(account: Account, outbound: OutboundPolicy) -> Iterator[Session]:
    """Log in to the account's vCenter (bad credentials fail here, before anything exists);
    log out on exit."""
    stub = SoapStubAdapter(url=account.api_url, version=API_VERSION,
                           sslContext=account.ssl_context, httpConnectionTimeout=TIMEOUT)
    stub.scheme = connection_class(outbound)
    with api_errors(f"connecting to {account.describe()}", account):
        instance = vim.ServiceInstance("ServiceInstance", stub)
        content = instance.RetrieveContent()
        content.sessionManager.Login(account.username, account.password, None)
    try:
        yield Session(account, stub, content)
    finally:
        with contextlib.suppress(Exception):  # the session times out on the server anyway
            content.sessionManager.Logout()
        stub.DropConnections()


@contextlib.contextmanager
def api_errors(action: str, account: Account) -> Iterator[None]:
    """Turn what pyvmomi and the network raise into a `BuildError` saying what failed."""
    try:
        yield
    except vim.fault.InvalidLogin:
        raise BuildError(f"{action} failed: the vCenter refused the username or password "
                         "(InvalidLogin)") from None
    except vmodl.MethodFault as fault:
        raise BuildError(f"{action} failed: {fault.msg or type(fault).__name__} "
                         f"({type(fault).__name__})") from None
    except OutboundRefused as refused:
        raise BuildError(f"{action} failed: {refused.reason}") from None
    except ssl.SSLCertVerificationError as exc:
        raise BuildError(f"{action} failed: the certificate of {account.host} is not "
                         f"trusted ({exc.verify_message}); the operator's ca_file or the "
                         "provider's ca_cert names the CA that signed it") from None
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        raise BuildError(f"{action} failed: {type(exc).__name__}: {exc}") from None
