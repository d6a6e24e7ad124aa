"""HTTP receivers for callback tests on 127.0.0.1: one that records and answers from a script,
one that accepts and never answers (or resets)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """An HTTP server that records every request and answers from a script of status codes
    (then 200)."""

    def __init__(self, answers: list[int] | None = None, redirect_to: str | None = None):
        self.answers = list(answers or [])
        self.redirect_to = redirect_to
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.requests.append({
                        "method": "PUT", "path": self.path, "status": status,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "raw": body, "document": json.loads(body),
                    })
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str, userinfo: str | None = None) -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def statuses(self, path: str | None = None, delivered_only: bool = True) -> list[str]:
        with self.lock:
            return [next(iter(r["document"].values()))["status"] for r in self.requests
                    if (path is None or r["path"] == path)
                    and (not delivered_only or r["status"] < 400)]

    def wait_for(self, status: str, path: str | None = None, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while status not in self.statuses(path):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} callback within {timeout} s: "
                                     f"{self.statuses(path, delivered_only=False)}")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeadReceiver:
    """Accepts connections and never answers, keeping them open until closed (or, with
    `reset`, resets each at once: the sender sees its connection broken)."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.listener.settimeout(0.05)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(connection)
            if self.reset:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                connection.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_accepted(self, timeout: float = 60.0) -> None:
        """Wait until the service connected (a PUT is waiting for an answer)."""
        deadline = time.monotonic() + timeout
        while not self.accepted:
            if time.monotonic() > deadline:
                raise AssertionError(f"no connection within {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for connection in self.accepted:
            connection.close()
        self.listener.close()
