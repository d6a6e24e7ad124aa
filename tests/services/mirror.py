"""A package mirror on 127.0.0.1 that relays to a real one and records what was asked.

Tests point a build at it to prove which mirror the build used. It relays GET requests (with
the headers apt's conditional and partial downloads use) and their answers unchanged. Asked
as an HTTP proxy (``GET http://host/path``), it fetches that URL: tests use it as an operator's
apt proxy too.
"""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import requests

FORWARDED_REQUEST = ("Range", "If-Modified-Since", "If-Range", "If-None-Match")
FORWARDED_ANSWER = ("Content-Type", "Content-Length", "Content-Range", "Last-Modified", "ETag",
                    "Accept-Ranges")


class MirrorRelay:
    """Serves ``http://127.0.0.1:<port>/`` as `upstream`; `paths` lists what was asked."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.paths: list[str] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                relay.paths.append(self.path)
                headers = {k: v for k in FORWARDED_REQUEST if (v := self.headers.get(k))}
                headers["Accept-Encoding"] = "identity"  # the bytes are relayed as they come
                url = self.path if self.path.startswith("http://") else relay.upstream + self.path
                with requests.get(url, headers=headers, stream=True,
                                  timeout=60, allow_redirects=True) as answer:
                    self.send_response(answer.status_code)
                    for name in FORWARDED_ANSWER:
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.end_headers()
                    shutil.copyfileobj(answer.raw, self.wfile)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MirrorRelay:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
