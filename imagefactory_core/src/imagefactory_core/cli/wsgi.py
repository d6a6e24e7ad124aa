"""A `requests` transport that hands each request to a WSGI application in this process.

Local mode mounts it on its session, so the verbs speak the same REST API to an in-process
service as to a remote one, with the same validation, errors and JSON. The response body is
the application's iterable, read as the verb reads it: a followed build log streams line by
line while the build runs in this process's worker threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import falcon.testing
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from .errors import CliError


class WSGIBody:
    """The application's response iterable, as much of urllib3's response as requests reads."""

    def __init__(self, chunks: Iterable[bytes]):
        self._source: Iterable[bytes] | None = chunks
        self._chunks = iter(chunks)

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        """Each chunk as the application yields it (`amt` is not waited for: a followed log
        must show a line when it is written)."""
        for chunk in self._chunks:
            if chunk:
                yield chunk
        self.close()  # requests closes only a body it did not read to the end

    def read(self, amt: int | None = None) -> bytes:
        return b"".join(self.stream())

    def close(self) -> None:
        """Once, as PEP 3333 servers do: a followed log gives its follower slot back."""
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if close is not None:
            close()


class WSGIAdapter(BaseAdapter):
    def __init__(self, app: Any):
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            raise CliError("local mode cannot send a streamed request body")
        environ = falcon.testing.create_environ(
            path=unquote(url.path), query_string=url.query, method=request.method or "GET",
            headers=dict(request.headers), body=body, scheme=url.scheme,
            host=url.hostname or "localhost", port=url.port, remote_addr="127.0.0.1")
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            started.update(status=status, headers=headers)

        chunks = self.app(environ, start_response)
        response = requests.Response()
        code, _, reason = started["status"].partition(" ")
        response.status_code = int(code)
        response.reason = reason
        response.headers = CaseInsensitiveDict(started["headers"])
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = WSGIBody(chunks)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        if not stream:
            _ = response.content  # read it all now, as requests does without stream=True
            response.raw.close()
        return response

    def close(self) -> None:
        """Nothing to close: the application belongs to whoever mounted this adapter."""
