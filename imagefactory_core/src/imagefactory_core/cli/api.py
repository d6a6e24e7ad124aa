"""The service's REST API as the verbs use it: one place for URLs, signing, TLS and errors.

An `Api` talks to a service over HTTP, or to one running inside this process (local mode):
either way through a `requests` session, so every verb works the same in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from .errors import CliError

COLLECTIONS = ("base_images", "target_images", "provider_images")
SETTLED = frozenset({"COMPLETE", "FAILED", "DELETED", "DELETEFAILED"})
TIMEOUT = 60.0  # seconds to connect and between bytes; a followed log sends a line at least


class ApiError(CliError):
    """The service answered with an error status."""

    def __init__(self, status_code: int, message: str):
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


def unwrap(body: dict[str, Any]) -> dict[str, Any]:
    """The image inside ``{"base_image": {…}}``."""
    return dict(next(iter(body.values())))


class Api:
    def __init__(self, url: str, sessions: Callable[[], requests.Session],
                 verify: bool | str = True, *, builds_in_process: bool = False):
        """`url` is the service's base URL (without ``/imagefactory``); `sessions` makes a
        session as each thread needs one. `builds_in_process`: builds run in this process
        (local mode), so the command must wait for what it starts before it exits."""
        self.url = url
        self.base = url + "/imagefactory"
        self._sessions = sessions
        self.session = sessions()
        self.verify = verify
        self.builds_in_process = builds_in_process

    def separate(self) -> Api:
        """The same API with a session of its own (sessions are not shared across threads)."""
        return Api(self.url, self._sessions, self.verify,
                   builds_in_process=self.builds_in_process)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        # per request: a session's `verify` loses to REQUESTS_CA_BUNDLE from the environment
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            response = self.session.request(method, self.base + path, verify=self.verify,
                                            **kwargs)
        except requests.exceptions.SSLError as exc:
            raise CliError(f"TLS with {self.url} failed ({_reason(exc)}); give the service's "
                           "certificate or CA with --ca (or 'ca' in the client configuration)"
                           ) from exc
        except requests.ConnectionError as exc:
            raise CliError(f"cannot reach {self.url} ({_reason(exc)}). Is the service "
                           "running? Name it with --url or IMAGEFACTORY_URL, or build without "
                           "one with --local") from exc
        except requests.Timeout as exc:
            raise CliError(f"{self.url} did not answer within {TIMEOUT:g} s") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _error_message(response))
        return response

    def image(self, collection: str, image_id: str) -> dict[str, Any]:
        return unwrap(self.call("GET", f"/{collection}/{image_id}").json())

    def find(self, image_id: str) -> tuple[str, dict[str, Any]]:
        """The collection of image `image_id`, and the image."""
        for collection in COLLECTIONS:
            try:
                return collection, self.image(collection, image_id)
            except ApiError as exc:
                if exc.status_code != 404:
                    raise
        raise CliError(f"no image {image_id}")

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        singular = collection[:-1]
        return unwrap(self.call("POST", f"/{collection}", json={singular: body}).json())

    def listing(self, collection: str) -> list[dict[str, Any]]:
        """The collection's entries (``_type``, ``id``, ``href``)."""
        return [unwrap(entry) for entry in self.call("GET", f"/{collection}").json()[collection]]

    def log(self, collection: str, image_id: str, follow: bool = False) -> requests.Response:
        """The build log as a streamed response (close it). A followed log has no read
        timeout: a build may be silent for as long as it likes (a step that prints nothing, a
        wait for a free build slot); the service ends the stream when the image settles."""
        return self.call("GET", f"/{collection}/{image_id}/log",
                         params={"follow": "true"} if follow else None, stream=True,
                         timeout=(TIMEOUT, None) if follow else TIMEOUT)


def _reason(exc: requests.RequestException) -> str:
    """What went wrong, without urllib3's wrapping (``HTTPConnectionPool(…): Max retries
    exceeded … (Caused by NewConnectionError('<…object at 0x…>: …'))``)."""
    reason = exc.args[0] if exc.args else exc
    text = str(getattr(reason, "reason", reason))  # urllib3's MaxRetryError says why
    return text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body['title']}: {body['description']}"
    except (ValueError, KeyError, TypeError):
        return response.text.strip() or response.reason
