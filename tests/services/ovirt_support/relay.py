"""A TCP relay on 127.0.0.1 that breaks one connection in the middle of a request body.

Put in front of imageio (the fake engine's transfer URL can point at it), it passes bytes both
ways and, once `cut_after` bytes have gone from clients to imageio in total, resets that
client's connection and closes its upstream one: an upload interrupted mid-way, as a network
failure does it. Later connections pass untouched. `forwarded` counts the client bytes passed
on, so a test can tell a resumed upload from one that started over.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator


class CuttingRelay:
    def __init__(self, upstream: tuple[str, int], cut_after: int) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.forwarded = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        threading.Thread(target=self._accept, name="cutting-relay", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(256 * 1024):
                if upload and self._should_cut(len(data)):
                    # SO_LINGER 0: the client gets a TCP reset, imageio an unfinished body.
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                    source.close()
                    # shutdown, not just close: it wakes the other direction's recv too.
                    sink.shutdown(socket.SHUT_RDWR)
                    sink.close()
                    return
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _should_cut(self, count: int) -> bool:
        with self._lock:
            if self.cuts == 0 and self.forwarded + count > self.cut_after:
                self.cuts += 1
                return True
            self.forwarded += count
            return False

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@contextlib.contextmanager
def cutting_relay(upstream_url: str, cut_after: int) -> Iterator[CuttingRelay]:
    host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
    relay = CuttingRelay((host, int(port)), cut_after)
    try:
        yield relay
    finally:
        relay.close()
