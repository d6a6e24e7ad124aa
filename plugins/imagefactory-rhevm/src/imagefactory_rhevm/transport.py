"""ovirt-engine-sdk-python's connection, sending its requests through the outbound policy.

The SDK sends with pycurl, which resolves the engine's name and connects on its own: nothing
lets the service check the address curl connects to, so a listed engine name that resolves to
a loopback or metadata address (DNS rebinding included) would be reached. `EngineConnection`
keeps everything of the SDK (services, types, XML readers and writers, SSO, the retry after an
expired token) and replaces only its transport: the SDK's ``send``/``wait`` pair and its SSO
request go through a requests session of ``ctx.outbound``, which checks every address when it
connects, with the TLS verification the account asks for. The methods replaced are the
SDK's connection interface of the 4.6 series (its services call ``send`` then ``wait``), which
is why the plugin requires ``ovirt-engine-sdk-python<4.7``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ovirtsdk4
import requests
from imagefactory_core.plugin import BuildError, OutboundPolicy, OutboundRefused
from ovirtsdk4 import http

from .provider import Account

CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 300.0
_USER_AGENT = f"imagefactory-rhevm PythonSDK/{ovirtsdk4.get_version()}"


@dataclass
class _Pending:
    """What ``send`` hands ``wait``: the request, sent when it is waited for."""

    request: http.Request


class EngineConnection(ovirtsdk4.Connection):
    """An `ovirtsdk4.Connection` whose HTTP goes through `session` (see the module doc)."""

    def __init__(self, account: Account, session: requests.Session) -> None:
        super().__init__(url=account.api_url, username=account.username,
                         password=account.password, insecure=account.verify is False,
                         ca_file=account.verify if isinstance(account.verify, str) else None)
        self._session = session
        self._verify = account.verify

    # -- the SDK's transport --------------------------------------------------------------
    def send(self, request: http.Request) -> _Pending:
        self.authenticate()
        return _Pending(request)

    def wait(self, context: _Pending, failed_auth: bool = False) -> http.Response:
        request = context.request
        headers = {**self._headers,
                   **{name: value for name, value in request.headers.items() if value is not None}}
        all_content = (request.query or {}).get("all_content")
        if all_content is not None:
            headers["All-Content"] = all_content
        headers.update({"User-Agent": _USER_AGENT, "Version": "4",
                        "Content-Type": "application/xml", "Accept": "application/xml",
                        "Authorization": f"Bearer {self._sso_token}"})
        body = (request.body or "").encode() if request.method in ("POST", "PUT") else None
        answer = self._http(request.method, self._build_url(request.path, request.query),
                            headers=headers, data=body)
        if answer.status_code == 401 and not failed_auth:
            # An expired token: get another and send once more, as the SDK does.
            self._sso_token = self._get_access_token()
            return self.wait(_Pending(request), failed_auth=True)
        return _response(answer)

    def _get_sso_response(self, url: str, params: Mapping[str, Any] | str = "") -> Any:
        answer = self._http("POST", url, data=params,
                            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"})
        self.check_json_content_type(_response(answer))
        try:
            return answer.json()
        except ValueError as exc:
            raise ovirtsdk4.Error(f"the engine's SSO answered HTTP {answer.status_code} "
                                  f"with a body that is not JSON: {exc}") from None

    def close(self, logout: bool = True) -> None:
        try:
            super().close(logout=logout)
        finally:
            self._session.close()

    def _http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        # No redirects: a 307 from the listed engine would send the SSO form (the password)
        # to a host the operator never listed.
        try:
            return self._session.request(method, url, verify=self._verify,
                                         timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                         allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ovirtsdk4.Error(f"TLS verification of {url} failed: {_innermost(exc)}") \
                from exc
        except requests.exceptions.RequestException as exc:
            refused = OutboundRefused.behind(exc)
            reason = refused.reason if refused else _innermost(exc)
            raise ovirtsdk4.ConnectionError(f"{method} {url}: {reason}") from exc


def _response(answer: requests.Response) -> http.Response:
    """The SDK's response: the body as bytes, headers as ``Name: value`` lines."""
    response = http.Response(body=answer.content, code=answer.status_code,
                             headers=[f"{name}: {value}" for name, value in answer.headers.items()],
                             message=answer.reason)
    return response


def _innermost(exc: BaseException) -> str:
    """The most specific message of an exception chain (urllib3 wraps the useful one)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    message = str(exc)
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | OSError) and str(current):
            message = str(current)
        linked = [current.__cause__, current.__context__,
                  *(arg for arg in current.args if isinstance(arg, BaseException)),
                  getattr(current, "reason", None)]
        current = next((item for item in linked if isinstance(item, BaseException)), None)
    return message


def check_ca_file(account: Account) -> None:
    """A pinned CA bundle that cannot be read as PEM certificates fails here, with one message
    whatever the reason (a request names the path: it learns nothing about the file)."""
    if isinstance(account.verify, str):
        try:
            ssl.create_default_context(cafile=account.verify)
        except (OSError, ValueError, ssl.SSLError):
            raise BuildError(f"CA file {account.verify} is not a readable PEM file of CA "
                             "certificates") from None


def connect(account: Account, outbound: OutboundPolicy) -> EngineConnection:
    """A connection to the engine for `account` whose every connection obeys `outbound`;
    nothing is sent until it is used. Close it (``with``)."""
    check_ca_file(account)
    return EngineConnection(account, outbound.session())
