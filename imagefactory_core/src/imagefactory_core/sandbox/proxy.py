"""The host's end of the egress path: an HTTP proxy that applies the egress policy.

It serves connections the sandbox's pid 1 passes over a Unix socket pair (see
`imagefactory_core.sandbox.relay`): ``CONNECT host:port`` (TLS and anything else) and plain
HTTP requests in absolute form (``GET http://host/path``, sent on with ``Connection: close``).
The destination is resolved here and checked with `EgressPolicy.destinations`, and the proxy
connects to exactly an address it checked. A refusal is a ``403`` whose body says why, and a
``sandbox: egress …`` line in the build log; so is every allowed connection. The standard
library suffices for this (no caching, no authentication, one upstream per client connection).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Callable

from .policy import EgressPolicy, EgressRefused

HEAD_LIMIT = 64 * 1024
IDLE_SECONDS = 300.0
CONNECT_SECONDS = 15.0
_HOP_BY_HOP = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization",
               b"te", b"trailer", b"upgrade"}


class BadRequest(Exception):
    pass


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(8192)
        if not chunk:
            raise BadRequest("the connection closed before a request")
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise BadRequest("request head too large")
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _host_port(authority: str, default: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit("//" + authority)
    if not parsed.hostname:
        raise BadRequest(f"no host in {authority!r}")
    try:
        port = parsed.port or default
    except ValueError:
        raise BadRequest(f"bad port in {authority!r}") from None
    return parsed.hostname, port


def parse_request(head: bytes, absolute: bool = False) -> tuple[str, str, int, bytes | None]:
    """(method, host, port, head to send upstream or None for CONNECT) of a proxy request;
    `absolute` keeps the absolute URL in the request line (for another proxy)."""
    lines = head.split(b"\r\n")
    try:
        request_line = lines[0].decode("ascii")
        method, target, version = request_line.split(" ")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed request line") from None
    if not request_line.isprintable() or not version.startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    if method == "CONNECT":
        host, port = _host_port(target, 443)
        return method, host, port, None
    url = urllib.parse.urlsplit(target)
    if url.scheme != "http":
        raise BadRequest("only http:// URLs and CONNECT are proxied")
    host, port = _host_port(url.netloc.rsplit("@", 1)[-1], 80)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = [line for line in lines[1:]
               if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    if absolute:
        path = f"http://{host}:{port}{path}"
    upstream = b"\r\n".join([f"{method} {path} {version}".encode(), *headers,
                             b"Connection: close", b"", b""])
    return method, host, port, upstream


def _respond(client: socket.socket, status: str, text: str) -> None:
    body = (text + "\n").encode()
    client.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: "
                   f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def _connect(destinations: list[tuple[socket.AddressFamily, tuple]]) -> socket.socket:
    error: OSError | None = None
    for family, address in destinations:
        upstream = socket.socket(family, socket.SOCK_STREAM)
        upstream.settimeout(CONNECT_SECONDS)
        try:
            upstream.connect(address)
        except OSError as failure:
            upstream.close()
            error = failure
            continue
        upstream.settimeout(IDLE_SECONDS)
        return upstream
    assert error is not None
    raise error


def _through(via: str, method: str, host: str,
             port: int) -> tuple[socket.socket, bytes]:
    """A connection to the operator's proxy `via` and what it already sent past its answer;
    for CONNECT, with the tunnel to host:port already established through it."""
    parts = urllib.parse.urlsplit(via)
    assert parts.hostname
    proxy = socket.create_connection((parts.hostname, parts.port or 80),
                                     timeout=CONNECT_SECONDS)
    early = b""
    if method == "CONNECT":
        proxy.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                      .encode())
        try:
            answer, early = _read_head(proxy)
        except BadRequest as error:
            proxy.close()
            raise OSError(f"the upstream proxy: {error}") from None
        status = answer.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            proxy.close()
            raise OSError(f"the upstream proxy answered {status.decode(errors='replace')}")
    proxy.settimeout(IDLE_SECONDS)
    return proxy, early


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class EgressProxy:
    """Serves the connections arriving on `channel` until the sandbox closes it."""

    def __init__(self, channel: socket.socket, policy: EgressPolicy,
                 log: Callable[[str], None]) -> None:
        self.channel = channel
        self.policy = policy
        self.log = log

    def start(self) -> None:
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 16, 8)
            except OSError:
                return
            if not message and not fds:
                return
            for fd in fds:
                client = socket.socket(fileno=fd)
                threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(IDLE_SECONDS)
            try:
                head, rest = _read_head(client)
                method, host, port, upstream_head = parse_request(head, bool(self.policy.via))
            except (BadRequest, OSError) as error:
                self.log(f"sandbox: egress: bad request: {error}")
                _respond(client, "400 Bad Request", f"imagefactory sandbox proxy: {error}")
                return
            try:
                destinations = self.policy.destinations(host, port)
            except EgressRefused as refusal:
                self.log(f"sandbox: egress refused: {method} {host}:{port}: {refusal}")
                _respond(client, "403 Forbidden", f"imagefactory sandbox egress policy: {refusal}")
                return
            early = b""
            try:
                if self.policy.via:
                    upstream, early = _through(self.policy.via, method, host, port)
                else:
                    upstream = _connect(destinations)
            except OSError as error:
                self.log(f"sandbox: egress: {method} {host}:{port}: {error}")
                _respond(client, "502 Bad Gateway", f"imagefactory sandbox proxy: {error}")
                return
            with upstream:
                self.log(f"sandbox: egress: {method} {host}:{port} "
                         f"({upstream.getpeername()[0]})")
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + early)
                if upstream_head:
                    upstream.sendall(upstream_head)
                if rest:
                    upstream.sendall(rest)
                back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                back.start()
                _pump(client, upstream)
                back.join()
