"""The gunicorn worker of `imagefactory serve`: gunicorn's `gthread`, except that a request
head is read by the worker's event loop, never by a request thread.

Why: `gthread` gives a connection to one of its `server_threads` as soon as the connection's
first byte arrives, and the thread then reads the rest of the head with blocking reads. A
client that sends its head a byte at a time holds that thread for as long as it keeps sending:
20 such clients stalled a default service, and a status GET waited more than 60 s. gunicorn 27
has no setting that bounds this.

Here a connection (a new one, a kept-alive one whose next request starts, or one with a
pipelined request behind the last) waits in the event loop, which reads what has arrived
without blocking into a buffer of the connection's own (and drives the TLS handshake the same
way), until its head is complete or certainly invalid. Only then does a thread get it, with the
buffered bytes given back to gunicorn's parser, which finds the whole head there and does not
touch the socket for it. What gunicorn does with the request from then on is unchanged.

Bounds, so that neither threads, memory nor file descriptors depend on what clients do:

- a head must be complete within `head_seconds` of the connection being accepted (TLS
  handshake included), or of its first byte on a kept-alive connection; otherwise the client
  gets a 408 (or, if it sent nothing, just the close);
- a head larger than gunicorn would accept gets a 431 without a thread (gunicorn's parser
  would read once more before refusing it, and that read blocks);
- at most `max_waiting` connections, holding at most `MAX_WAITING_BYTES` of heads, wait at
  once: beyond that the longest-waiting is closed. A client whose head arrives in one packet
  is handed on at its first read, so it is not the one that waits longest;
- a connection closed after its response ("Connection: close") lingers in the event loop, not
  in a blocking read of up to 2 s there as in `gthread`, so a client that never closes its
  side cannot stall the loop; at most `MAX_LINGERING` linger at once.

The request body is still read by the request thread (docs/security.md says what that leaves
open). A body the application leaves unread (a 413, a 401 before the body is looked at) is
drained by gunicorn after the response, 64 KiB at most, and the connection closed if more is
left: such a response says "Connection: close" (gunicorn would say "keep-alive" and then close
without a word, and the client's next request on it would fail).

HTTP/1.x only: gunicorn's HTTP/2 and PROXY-protocol settings are refused at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gsock
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE
from gunicorn.workers.gthread import TConn, ThreadWorker

__all__ = ["HeadBufferingWorker"]

MAX_WAITING = 256
"""Connections whose head is awaited at once (fewer when gunicorn's `worker_connections`, 1000,
is set below 512 plus the threads: at most half of what remains)."""
MAX_WAITING_BYTES = 32 * 1024 * 1024
"""Bytes of incomplete heads held at once (a head gunicorn accepts is at most ~800 KiB)."""
MAX_LINGERING = 256
LINGER_SECONDS = 2.0
"""How long a closing connection waits for the client's close (gunicorn's `close_graceful`)."""
LINGER_MAX_BYTES = 64 * 1024
_RECV_SIZE = 64 * 1024
DRAINED_BYTES = 32 * 1024
"""An unread request body this large or larger closes the connection after the response.
gunicorn drains at most 64 KiB of it (and 1 KiB at a time), so this stays well under."""
_NOT_READY = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)


@dataclass(eq=False)
class _Waiting:
    """A connection whose request head is being read by the event loop."""

    conn: TConn
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    handshaking: bool = False
    events: int = 0  # what the poller watches for; 0: not registered
    _scanned: int = 0

    def head_ended(self) -> bool:
        """Whether gunicorn's parser can decide on the head from the buffer alone: it holds
        the blank line that ends a head, or a bare LF (which the parser refuses at once).
        Only bytes not looked at before are scanned: a head that trickles in costs linear
        time, not quadratic."""
        buf, start = self.buf, self._scanned
        self._scanned = len(buf)
        if buf.find(b"\r\n\r\n", max(0, start - 3)) >= 0:
            return True
        newline = buf.find(b"\n", start)
        while newline >= 0:
            if newline == 0 or buf[newline - 1] != 0x0D:
                return True
            newline = buf.find(b"\n", newline + 1)
        return False


@dataclass(eq=False)
class _Lingering:
    sock: socket.socket
    deadline: float
    drained: int = 0


def head_limit(cfg: Any) -> int:
    """The largest head gunicorn's parser accepts with `cfg`'s limits (as it computes them),
    plus the one empty line it allows before the request line."""
    line = cfg.limit_request_line
    if line == 0:  # unlimited: gunicorn's fast parser's stand-in
        line = 1024 * 1024
    elif line < 0 or line > MAX_REQUEST_LINE:
        line = MAX_REQUEST_LINE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > MAX_HEADERS:
        fields = MAX_HEADERS
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = DEFAULT_MAX_HEADERFIELD_SIZE
    return 2 + line + 2 + fields * (field_size + 2) + 4


def body_left_unread(body: Any) -> bool:
    """Whether too much of request body `body` (gunicorn's `wsgi.input`) is unread for the
    connection to serve another request: `DRAINED_BYTES` or more, a chunked body not read to
    its end (its length is unknown) or a body whose reading failed."""
    if getattr(body, "failed", False):
        return True
    reader = getattr(body, "reader", None)
    if isinstance(reader, LengthReader):
        return bool(reader.length >= DRAINED_BYTES)
    if isinstance(reader, ChunkedReader):
        return reader.parser is not None
    return False


def closing_when_body_unread(wsgi: Any) -> Any:
    """`wsgi`, whose responses say "Connection: close" when they leave too much of the
    request body unread (see `body_left_unread`). `start_response` is bound to gunicorn's
    response, whose `force_close` sets the header (gunicorn drops the application's own)."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if body_left_unread(environ.get("wsgi.input")):
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return wsgi(environ, start)

    return application


def _answer(status: int, reason: str, description: str) -> bytes:
    body = json.dumps({"title": reason, "description": description}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class _Conn(TConn):  # type: ignore[misc]
    """gunicorn's connection, whose graceful close (after a "Connection: close" response,
    called from the event loop) lingers in the event loop instead of blocking it."""

    def __init__(self, worker: HeadBufferingWorker, *args: Any):
        super().__init__(*args)
        self._worker = worker

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self._worker.linger(self.sock)
        else:
            super().close()


class HeadBufferingWorker(ThreadWorker):  # type: ignore[misc]
    """`gthread` with request heads read in the event loop (see the module's docstring).
    `server.py` makes a subclass with the operator's `head_seconds`."""

    head_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        spare = max(1, self.worker_connections - self.cfg.threads)
        self.max_waiting = max(1, min(MAX_WAITING, spare // 2))
        # Idle kept-alive connections must leave room for heads being awaited, or enough of
        # them would stop the worker from accepting at all (gunicorn counts both).
        self.max_keepalived = max(0, spare - self.max_waiting)
        self.head_limit = head_limit(self.cfg)
        self._waiting: dict[TConn, _Waiting] = {}  # oldest (earliest deadline) first
        self._waiting_bytes = 0
        self._lingering: dict[socket.socket, _Lingering] = {}
        self._tls_context: ssl.SSLContext | None = None
        self._tls_stamp: tuple[int, ...] = ()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if ("h2" in cfg.http_protocols or cfg.http2_cleartext != "off"
                or cfg.proxy_protocol != "off"):
            raise RuntimeError(f"{cls.__name__} serves HTTP/1.x only: leave http_protocols, "
                               "http2_cleartext and proxy_protocol at their defaults")

    # -- gunicorn's entry points ------------------------------------------------------------
    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = closing_when_body_unread(self.wsgi)

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        self.nr_conns += 1
        conn = _Conn(self, self.cfg, client, address, listener.getsockname())
        waiting = _Waiting(conn, time.monotonic() + self.head_seconds)
        if self.cfg.is_ssl:
            try:
                conn.sock = self.tls_context().wrap_socket(
                    conn.sock, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            except (OSError, ValueError) as exc:  # e.g. the client is gone already
                self.log.debug("TLS set-up failed for %s: %s", address, exc)
                self._close(conn)
                return
            waiting.handshaking = True
        self._wait(waiting)

    def enqueue_req(self, conn: TConn) -> None:
        """gunicorn calls this when a request may start on a connection it already served
        (a kept-alive one became readable, or a pipelined request is buffered): the head
        is awaited in the event loop first."""
        buffered = conn.parser.unreader.take_buffered() if conn.parser else b""
        self._wait(_Waiting(conn, time.monotonic() + self.head_seconds, bytearray(buffered)))

    def murder_pending(self) -> None:
        """Runs on every turn of gunicorn's loop: also ends the waits that are over."""
        super().murder_pending()
        now = time.monotonic()
        while self._waiting:
            waiting = next(iter(self._waiting.values()))
            if waiting.deadline > now:
                break
            self._time_out(waiting)
        while self._lingering:
            lingering = next(iter(self._lingering.values()))
            if lingering.deadline > now:
                break
            self._end_linger(lingering)

    def _cap_keepalive(self, deadline: float) -> None:
        """On a graceful stop, a head being received gets as long as a kept-alive connection
        (its request is then answered with "Connection: close")."""
        super()._cap_keepalive(deadline)
        for waiting in self._waiting.values():
            waiting.deadline = min(waiting.deadline, deadline)

    def tls_context(self) -> ssl.SSLContext:
        """gunicorn's TLS context for our certificate, made again when the certificate or key
        file changes (gunicorn makes one per connection, which reads the files and the system
        CA store each time: too slow for the event loop)."""
        try:
            stamp = tuple(os.stat(path).st_mtime_ns
                          for path in (self.cfg.certfile, self.cfg.keyfile))
        except OSError:
            stamp = self._tls_stamp
        if self._tls_context is None or stamp != self._tls_stamp:
            try:
                self._tls_context = gsock.ssl_context(self.cfg)
                self._tls_stamp = stamp
            except (OSError, ValueError):
                if self._tls_context is None:
                    raise
                self.log.exception("cannot load the changed TLS certificate: serving the "
                                   "previous one")
        return self._tls_context

    # -- awaiting a head --------------------------------------------------------------------
    def _wait(self, waiting: _Waiting) -> None:
        waiting.conn.sock.setblocking(False)
        self._waiting[waiting.conn] = waiting
        self._waiting_bytes += len(waiting.buf)
        self._enforce_limits()
        if waiting.conn in self._waiting:
            self._advance(waiting)

    def _advance(self, waiting: _Waiting) -> None:
        """Read what has arrived; hand the connection on once its head has ended."""
        conn = waiting.conn
        try:
            if waiting.handshaking:
                conn.sock.do_handshake()
                waiting.handshaking = False
            while not waiting.head_ended():
                if len(waiting.buf) > self.head_limit:
                    self._refuse(waiting, 431, "Request Header Fields Too Large",
                                 "The request line and headers are larger than this server "
                                 f"accepts ({self.head_limit} bytes at most); send fewer or "
                                 "shorter headers.")
                    return
                data = conn.sock.recv(_RECV_SIZE)
                if not data:
                    self._drop(waiting)
                    return
                waiting.buf += data
                self._waiting_bytes += len(data)
                self._enforce_limits()
                if conn not in self._waiting:
                    return
        except _NOT_READY:
            self._watch(waiting, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(waiting, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self.log.debug("connection from %s failed before its request: %s",
                           conn.client, exc)
            self._drop(waiting)
            return
        self._hand_over(waiting)

    def _on_event(self, waiting: _Waiting, _fileobj: Any) -> None:
        if waiting.conn in self._waiting:
            self._advance(waiting)

    def _watch(self, waiting: _Waiting, events: int) -> None:
        if waiting.events == events:
            return
        data = partial(self._on_event, waiting)
        if waiting.events:
            self.poller.modify(waiting.conn.sock, events, data)
        else:
            self.poller.register(waiting.conn.sock, events, data)
        waiting.events = events

    def _forget(self, waiting: _Waiting) -> None:
        del self._waiting[waiting.conn]
        self._waiting_bytes -= len(waiting.buf)
        if waiting.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(waiting.conn.sock)
            waiting.events = 0

    def _hand_over(self, waiting: _Waiting) -> None:
        """Give the connection to a thread, its buffered bytes to gunicorn's parser."""
        self._forget(waiting)
        conn = waiting.conn
        if conn.parser is None:
            # With the parser made here, `init` neither wraps the socket (done) nor sniffs
            # for HTTP/2 (refused at start).
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.init()
        conn.parser.unreader.unread(bytes(waiting.buf))
        super().enqueue_req(conn)

    def _enforce_limits(self) -> None:
        while self._waiting and (len(self._waiting) > self.max_waiting
                                 or self._waiting_bytes > MAX_WAITING_BYTES):
            oldest = next(iter(self._waiting.values()))
            self.log.info("closing the connection from %s: too many request heads are "
                          "awaited at once", _host(oldest.conn))
            self._forget(oldest)
            self._close(oldest.conn)

    def _time_out(self, waiting: _Waiting) -> None:
        self._forget(waiting)
        if not waiting.buf:
            self._close(waiting.conn)  # an idle connection: nothing to answer
            return
        self.log.info("request head from %s not complete within %g s: answering 408",
                      _host(waiting.conn), self.head_seconds)
        self._send_and_close(waiting, _answer(
            408, "Request Timeout",
            f"The request line and headers did not arrive within {self.head_seconds:g} s "
            "of the connection (or of the request's first byte); send them at once."))

    def _refuse(self, waiting: _Waiting, status: int, reason: str, description: str) -> None:
        self._forget(waiting)
        self.log.info("refusing the request from %s: %s", _host(waiting.conn), reason)
        self._send_and_close(waiting, _answer(status, reason, description))

    def _drop(self, waiting: _Waiting) -> None:
        self._forget(waiting)
        self._close(waiting.conn)

    def _send_and_close(self, waiting: _Waiting, answer: bytes) -> None:
        """Best effort: the answer is small enough for the socket buffer, and a client that
        does not take it gets the close alone."""
        with contextlib.suppress(OSError):  # ssl.SSLWantWriteError included
            if not waiting.handshaking:
                waiting.conn.sock.send(answer)
        self.nr_conns -= 1
        self.linger(waiting.conn.sock)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    # -- closing after the last response ----------------------------------------------------
    def linger(self, sock: socket.socket) -> None:
        """Half-close and read until the client closes too (RFC 9112 §9.6: closing with
        unread bytes would reset the connection and could destroy the response), but in the
        event loop, for `LINGER_SECONDS` and `LINGER_MAX_BYTES` at most."""
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close_socket(sock)
            return
        lingering = _Lingering(sock, time.monotonic() + LINGER_SECONDS)
        try:
            self.poller.register(sock, selectors.EVENT_READ, partial(self._on_linger, lingering))
        except (KeyError, ValueError, OSError):
            _close_socket(sock)
            return
        self._lingering[sock] = lingering
        while len(self._lingering) > MAX_LINGERING:
            self._end_linger(next(iter(self._lingering.values())))

    def _on_linger(self, lingering: _Lingering, _fileobj: Any) -> None:
        try:
            while lingering.drained < LINGER_MAX_BYTES:
                data = lingering.sock.recv(4096)
                if not data:
                    break
                lingering.drained += len(data)
        except _NOT_READY:
            return
        except OSError:
            pass
        self._end_linger(lingering)

    def _end_linger(self, lingering: _Lingering) -> None:
        del self._lingering[lingering.sock]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(lingering.sock)
        _close_socket(lingering.sock)


def _host(conn: TConn) -> str:
    client = conn.client
    return str(client[0]) if isinstance(client, tuple) and client else str(client)


def _close_socket(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
