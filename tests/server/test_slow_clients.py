"""Slow clients against a real server: a request head that trickles in, stalls or never comes
holds no request thread, and has a deadline (`request_head_seconds`); a client that never closes
after a "Connection: close" answer does not stall the server either. Kept-alive, pipelined and
TLS connections and requests with a body still work.

The server runs `server_threads=4`; the starving tests open at least twice that many slow
connections. Against gunicorn's stock `gthread` worker every test here but the pipelining one
fails: its threads (or, for the unclosed connections, its event loop) are taken and status
reads time out; it has no head deadline, and its 431 is not JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from imagefactory_core.httpworker import MAX_WAITING

from tests.rest.conftest import fake_tdl

from .conftest import ServerProcess, sign, wait_until

THREADS = 4
SLOW = 2 * THREADS
READ_BOUND = 2.0
"""A status read takes milliseconds; a thread-starved server never answers within this."""
REQUEST_LINE = b"GET /imagefactory HTTP/1.1\r\n"


def connect(server: ServerProcess, tls: bool | None = None) -> socket.socket:
    """A connection to `server`, TLS (handshake done) when it serves TLS and `tls` is not
    False."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    if server.settings["no_ssl"] or tls is False:
        return sock
    context = ssl.create_default_context(cafile=str(server.cert))
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def server_closed(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (what it answered before is read and dropped)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:  # reset
        return True
    finally:
        sock.setblocking(True)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def read_answer(sock: socket.socket, pending: bytearray) -> tuple[int, bytes]:
    """The next answer on `sock` (bytes read beyond it stay in `pending`)."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; received {bytes(pending)!r}"
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.lower(): value.strip() for name, _, value in
              (line.partition(":") for line in lines[1:])}
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of an answer"
        rest += chunk
    pending[:] = rest[length:]
    return int(lines[0].split()[1]), rest[:length]


def status_read_seconds(server: ServerProcess) -> float:
    """Seconds a status read takes on a new connection."""
    started = time.monotonic()
    try:
        answer = requests.get(server.url, headers={"Accept": "application/json"},
                              timeout=10, verify=server.verify)
    except requests.Timeout:
        raise AssertionError("a status read got no answer within 10 s: slow clients "
                             "starve the server") from None
    assert answer.status_code == 200, answer.text
    return time.monotonic() - started


def _text(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def assert_json_error(answer: bytes, status: int) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    assert b"content-type: application/json" in head.lower(), head
    document = json.loads(body)
    assert document["title"].strip() and document["description"].strip(), document
    return dict(document)


class Trickle:
    """Connections that each send a request line and then one more byte every 0.2 s, never
    ending their head, until the test ends."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.sent: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, sock: socket.socket) -> None:
        sock.sendall(REQUEST_LINE)
        self.sent[sock] = 0
        self.sockets.append(sock)

    def start(self) -> Trickle:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):  # a pace, not a wait: each byte is a new read
            for sock in list(self.sockets):
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")
                    self.sent[sock] += 1

    def under_way(self, count: int) -> bool:
        """Every connection has sent `count` bytes after its request line."""
        return all(sent >= count for sent in self.sent.values())

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(10)


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    made = Trickle()
    yield made
    made.stop()
    for sock in made.sockets:
        sock.close()


def starve(server: ServerProcess, trickle: Trickle, sockets: list[socket.socket]) -> None:
    """Open the slow connections that took every thread of the stock worker: twice as many
    as threads trickling a head, 4 that send nothing and 4 that stop after the request line
    and a header (over TLS, also 4 that stop inside the handshake)."""
    for _ in range(SLOW):
        trickle.add(connect(server))
    for _ in range(4):
        sockets.append(connect(server))
        stalled = connect(server)
        stalled.sendall(REQUEST_LINE + b"Host: x\r\n")
        sockets.append(stalled)
    if not server.settings["no_ssl"]:
        for _ in range(4):
            handshake = connect(server, tls=False)
            handshake.sendall(b"\x16\x03\x01\x02")  # the start of a ClientHello
            sockets.append(handshake)
    trickle.start()
    wait_until(lambda: trickle.under_way(5), 30, "every trickling client to send 5 bytes")


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_slow_heads_do_not_delay_a_status_read(servers, trickle, sockets, tls):
    server: ServerProcess = servers(server_threads=THREADS, request_head_seconds=60,
                                    no_ssl=not tls).start()
    starve(server, trickle, sockets)
    seconds = [status_read_seconds(server) for _ in range(5)]
    assert max(seconds) < READ_BOUND, seconds
    # ... with the slow clients still connected (the server did not just drop them)
    still_open = [sock for sock in trickle.sockets + sockets if not server_closed(sock)]
    assert len(still_open) == len(trickle.sockets) + len(sockets)


def test_a_client_that_never_closes_after_connection_close_does_not_stall_the_server(
        servers, sockets):
    server: ServerProcess = servers(server_threads=THREADS).start()
    for _ in range(SLOW):
        sock = connect(server)
        sock.sendall(REQUEST_LINE + b"Accept: application/json\r\nConnection: close\r\n\r\n")
        sockets.append(sock)  # never closed by the client
    seconds = [status_read_seconds(server) for _ in range(3)]
    assert max(seconds) < READ_BOUND, seconds
    assert [read_answer(sock, bytearray())[0] for sock in sockets] == [200] * SLOW


def test_a_head_not_complete_by_the_deadline_gets_a_408_and_the_close(servers, trickle,
                                                                      sockets):
    deadline = 2.0
    server: ServerProcess = servers(server_threads=THREADS,
                                    request_head_seconds=deadline).start()
    kept_alive = connect(server)  # answered once, then starts its next request slowly
    kept_alive.sendall(REQUEST_LINE + b"Accept: application/json\r\n\r\n")
    assert read_answer(kept_alive, bytearray())[0] == 200
    started = time.monotonic()
    idle = connect(server)
    trickle.add(connect(server))
    trickle.add(kept_alive)
    trickle.start()

    answers = [read_until_closed(sock, timeout=deadline + 10) for sock in trickle.sockets]
    elapsed = time.monotonic() - started
    assert deadline <= elapsed < deadline + 8, elapsed
    for answer in answers:
        description = assert_json_error(answer, 408)["description"]
        assert f"{deadline:g} s" in description, description
    assert read_until_closed(idle, timeout=10) == b""  # nothing sent, nothing to answer
    idle.close()


def test_a_kept_alive_connection_serves_many_requests_and_outlives_the_head_deadline(servers,
                                                                                     sockets):
    server: ServerProcess = servers(server_threads=THREADS, request_head_seconds=1).start()
    session = requests.Session()
    session.auth = sign()
    headers = {"Accept": "application/json"}
    assert session.get(server.url, headers=headers, timeout=10).status_code == 200
    # idle for longer than the head deadline: governed by the keep-alive time instead
    idle = connect(server)
    wait_until(lambda: server_closed(idle), 30, "the server to close an idle new connection")
    created = session.post(server.url + "/base_images", timeout=10, json={
        "base_image": {"template": fake_tdl("kept-alive")}})
    assert created.status_code == 202, created.text
    image = next(iter(created.json().values()))
    again = session.get(f"{server.url}/base_images/{image['id']}", headers=headers, timeout=10)
    assert again.status_code == 200, again.text
    pools = session.get_adapter(server.url).poolmanager.pools
    keys = pools.keys()  # the container refuses iteration itself
    assert [pools[key].num_connections for key in keys] == [1]  # one connection made
    session.close()


def test_pipelined_requests_with_a_body_are_answered_in_order(servers, sockets):
    server: ServerProcess = servers(server_threads=THREADS).start()
    post = requests.Request("POST", server.url + "/base_images", auth=sign(), json={
        "base_image": {"template": fake_tdl("pipelined")}}).prepare()
    assert isinstance(post.body, bytes)
    post_bytes = (f"POST {post.path_url} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
                  + b"".join(_text(name) + b": " + _text(value) + b"\r\n"
                             for name, value in post.headers.items())
                  + b"\r\n" + post.body)
    get = REQUEST_LINE + b"Host: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    sock = connect(server)
    sockets.append(sock)
    pending = bytearray()
    # the first answer is written while the next head is still half sent
    sock.sendall(get + post_bytes[:40])
    assert read_answer(sock, pending)[0] == 200
    sock.sendall(post_bytes[40:] + get + get)
    statuses = [read_answer(sock, pending)[0] for _ in range(3)]
    assert statuses == [202, 200, 200]


def test_a_head_larger_than_the_server_accepts_gets_a_431(servers, sockets):
    server: ServerProcess = servers(server_threads=THREADS).start()
    sock = connect(server)
    sockets.append(sock)
    sock.sendall(REQUEST_LINE)
    header = b"X-Filler: " + b"a" * 8000 + b"\r\n"
    with contextlib.suppress(OSError):  # the server stops reading once it has answered
        for _ in range(110):  # more than gunicorn's 100 fields of 8190 bytes
            sock.sendall(header)
    assert_json_error(read_until_closed(sock, timeout=30), 431)
    assert status_read_seconds(server) < READ_BOUND


def test_beyond_the_limit_of_awaited_heads_the_longest_waiting_is_closed(servers, sockets):
    server: ServerProcess = servers(server_threads=THREADS, request_head_seconds=60).start()
    limit = MAX_WAITING  # gunicorn's default 1000 connections leave room for all of them
    for _ in range(limit + 10):
        sockets.append(connect(server))
    oldest, newest = sockets[:10], sockets[-limit:]
    wait_until(lambda: all(server_closed(sock) for sock in oldest), 30,
               "the server to close the 10 connections waiting longest")
    assert status_read_seconds(server) < READ_BOUND  # closes one more of the oldest
    assert not any(server_closed(sock) for sock in newest[1:])
