"""A request body the server answers without reading (a 413 over the size limit, a 401 before
the OAuth check looks at it, a 411 for a body without a length) must not break the client's
next request on that connection.

gunicorn drains at most 64 KiB of such a body after the response and closes the connection if
more is left, yet its response said "Connection: keep-alive": a client that sent its next
request on the connection got it dropped (a `RemoteDisconnected`, or a broken pipe). Such a
response now says "Connection: close"; a small unread body still leaves the connection open.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
import requests

from .conftest import ServerProcess, sign
from .test_slow_clients import REQUEST_LINE, connect, read_answer, read_until_closed

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the default max_request_bytes
GET = REQUEST_LINE + b"Host: 127.0.0.1\r\nAccept: application/json\r\n\r\n"


def post_head(length: int | None) -> bytes:
    framing = (f"Content-Length: {length}" if length is not None
               else "Transfer-Encoding: chunked")
    return ("POST /imagefactory/base_images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()


def chunked(body: bytes, size: int = 16 * 1024) -> bytes:
    pieces = [body[at:at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


REQUESTS = {
    "413 over the size limit": (post_head(MAX_REQUEST_BYTES + 1), b"x" * (MAX_REQUEST_BYTES + 1),
                                413),
    "401 unsigned, 200 KB": (post_head(200_000), b"x" * 200_000, 401),
    "411 chunked": (post_head(None), chunked(b"x" * 40_000), 411),
}


@pytest.fixture
def server(servers) -> ServerProcess:
    return servers().start()  # plain HTTP, the servers' default


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send `data` without waiting for the server to read it all (it may never)."""

    def send() -> None:
        with contextlib.suppress(OSError):  # the server closed without reading the rest
            sock.sendall(data)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def answer_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    received = read_until_closed(sock, timeout=30)
    head = received.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    fields = {name.strip().lower(): value.strip().lower()
              for name, _, value in (line.partition(":") for line in head[1:])}
    return int(head[0].split()[1]), fields


@pytest.mark.parametrize("case", REQUESTS)
def test_an_answer_that_leaves_a_large_body_unread_says_connection_close(server, sockets, case):
    head, body, status = REQUESTS[case]
    sock = connect(server)
    sockets.append(sock)
    sender = send_in_background(sock, head + body)
    answered, fields = answer_head(sock)  # read to the server's close: it does close
    assert answered == status
    assert fields.get("connection") == "close", fields
    sender.join(30)


def test_an_answer_that_leaves_a_small_body_unread_keeps_the_connection(server, sockets):
    sock = connect(server)
    sockets.append(sock)
    pending = bytearray()
    sock.sendall(post_head(100) + b"x" * 100)
    assert read_answer(sock, pending)[0] == 401
    sock.sendall(GET)
    assert read_answer(sock, pending)[0] == 200


@pytest.mark.parametrize("case", ["413 over the size limit", "401 unsigned, 200 KB"])
def test_a_session_goes_on_after_a_refused_body(server, case):
    """What a client sees: its refused POST, then its next requests, all answered."""
    session = requests.Session()
    session.auth = sign() if case.startswith("413") else None
    body = REQUESTS[case][1]
    refused = session.post(f"{server.url}/base_images", data=body, timeout=30,
                           headers={"Content-Type": "application/json"})
    assert refused.status_code == REQUESTS[case][2], refused.text
    session.auth = sign()
    for _ in range(3):
        assert session.get(server.url, headers={"Accept": "application/json"},
                           timeout=30).status_code == 200
    session.close()
