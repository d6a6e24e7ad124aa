"""Two-legged OAuth 1.0a for the REST API (DESIGN.md §6).

A client signs every request with its consumer key and shared secret, and sends no token.
oauthlib's `SignatureOnlyEndpoint` checks the signature. This middleware decides which requests
need one and turns every failure into a 400 or 401 (as RFC 5849 §3.2 says) that says what went
wrong.

oauthlib reports every failure as the same bare ``False``. So the middleware checks the protocol
parameters itself first (header present and well-formed, version, method, timestamp and nonce
format, timestamp window), each with its own message. None of these checks depends on the
consumer key, and an unknown key and a wrong signature get the very same answer (the service log
says which it was): the API does not tell anyone which keys exist.

The nonce is recorded only once the signature verified. oauthlib asks about the nonce before it
checks the signature, so recording it there would let anyone who knows a key write rows into the
nonce store with forged requests.

OAuth protocol parameters are accepted in the ``Authorization`` header only, the method
RFC 5849 §3.5.1 recommends. Form bodies (``application/x-www-form-urlencoded``) are part of the
signature base string (§3.4.1.3.1); JSON and XML bodies are not signed, so only TLS protects them.
"""

from __future__ import annotations

import heapq
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol
from urllib.parse import quote
from urllib.request import parse_http_list

import falcon
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    RequestValidator,
    SignatureOnlyEndpoint,
)
from oauthlib.oauth1.rfc5849.signature import collect_parameters

__all__ = ["ALWAYS_SIGNED", "CHALLENGE", "MemoryNonceStore", "NonceStore", "OAuthMiddleware"]

log = logging.getLogger(__name__)

CHALLENGE = 'OAuth realm="imagefactory"'
"""The ``WWW-Authenticate`` challenge sent with every 401."""

ALWAYS_SIGNED = "always_signed"
"""A resource whose class sets this attribute true needs a signature for reads too, whenever
the middleware is on, whatever `protect_reads` says."""

NOT_VERIFIED = (
    "The OAuth signature could not be verified with this consumer key. Check the consumer key"
    " and its shared secret, and that the client signed the URL it sent to (scheme, host, port,"
    " path and query) and, for form posts, the form fields."
)
"""The one answer to an unknown consumer key and to a wrong signature alike."""

FORM_URLENCODED = "application/x-www-form-urlencoded"
SIGNATURE_METHODS = (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256)
# Any other method (including TRACE, CONNECT and methods not yet invented) counts as a write, so
# an unexpected method needs a signature.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MANDATORY_PARAMETERS = (
    "oauth_consumer_key",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)
# Characters that a client (requests among them) leaves unencoded in a path: RFC 3986 sub-delims,
# ":", "@" and "/". Letters, digits and "-._~" are never encoded.
PATH_SAFE = "/:@!$&'()*+,;="
# Keys and nonces are stored by the shared nonce store; this bound lets it use a VARCHAR(255).
MAX_TOKEN_LENGTH = 255


class NonceStore(Protocol):
    """Remembers the nonces clients have used, so that a captured request cannot be replayed.

    In a deployment with several API workers, every worker must use the same store.
    """

    def use(self, client_key: str, nonce: str, timestamp: int) -> bool:
        """Record that `client_key` sent `nonce` with `timestamp`.

        Returns True the first time this triple is seen and False on every later call. When
        workers race on the same triple, exactly one of them must get True.

        The store may forget a triple once `timestamp` is further in the past than the
        middleware's timestamp window. The middleware refuses such a request before it asks the
        store.
        """
        ...


class MemoryNonceStore:
    """A `NonceStore` that lives in one process (tests, single-process servers). Thread-safe.

    `window` must be at least the middleware's `timestamp_window`: if the store forgets a triple
    while the middleware still accepts its timestamp, the request can be replayed.
    """

    def __init__(self, window: int = 600, *, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str, int]] = set()
        # Min-heap ordered by timestamp. Clients' clocks differ, so requests do not arrive in
        # timestamp order.
        self._by_age: list[tuple[int, str, str]] = []

    def use(self, client_key: str, nonce: str, timestamp: int) -> bool:
        entry = (client_key, nonce, timestamp)
        with self._lock:
            self._forget_older_than(int(self._clock()) - self.window)
            if entry in self._seen:
                return False
            self._seen.add(entry)
            heapq.heappush(self._by_age, (timestamp, client_key, nonce))
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_older_than(self, cutoff: int) -> None:
        while self._by_age and self._by_age[0][0] < cutoff:
            timestamp, client_key, nonce = heapq.heappop(self._by_age)
            self._seen.discard((client_key, nonce, timestamp))


def _is_token(value: str) -> bool:
    """True for a consumer key or nonce that we accept: 1-255 printable ASCII characters."""
    return 0 < len(value) <= MAX_TOKEN_LENGTH and value.isascii() and value.isprintable()


class _Validator(RequestValidator):
    """The policy oauthlib's `SignatureOnlyEndpoint` asks about: clients, nonces, methods."""

    # TLS is terminated by the server or by a proxy in front of it, and plain HTTP is allowed
    # for development (``--no-ssl``). oauthlib cannot tell which case it is in.
    enforce_ssl = False
    allowed_signature_methods = SIGNATURE_METHODS
    # Stands in for an unknown key so that oauthlib's checks take the same time either way.
    dummy_client = "imagefactory-unknown-client"

    def __init__(self, clients: Mapping[str, str], window: int) -> None:
        super().__init__()
        self._clients = clients
        self._window = window
        self._dummy_secret = secrets.token_urlsafe(32)

    @property
    def timestamp_lifetime(self) -> int:
        # oauthlib checks the timestamp against this value. Its default, 600 s, would override a
        # larger window.
        return self._window

    def check_client_key(self, client_key: str) -> bool:
        # The default demands 20-30 alphanumerics, but configured keys are usually names like
        # "client1". Whether a key is known is decided by the lookup below.
        return _is_token(client_key)

    def check_nonce(self, nonce: str) -> bool:
        # The default demands 20-30 alphanumerics. requests-oauthlib sends up to 30 digits, and
        # other clients send UUIDs or base64.
        return _is_token(nonce)

    def timestamp_fresh(self, timestamp: int) -> bool:
        """True if `timestamp` is within the window around the server's clock, either side."""
        return abs(time.time() - timestamp) <= self._window

    def validate_client_key(self, client_key: str, request: OAuthRequest) -> bool:
        return client_key in self._clients

    def get_client_secret(self, client_key: str, request: OAuthRequest) -> str:
        return self._clients.get(client_key, self._dummy_secret)

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: OAuthRequest,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        """Only the timestamp: oauthlib asks before it checks the signature, and a nonce is
        recorded (`OAuthMiddleware._use_nonce`) only once the signature verified."""
        return self.timestamp_fresh(int(timestamp))


class OAuthMiddleware:
    """Falcon WSGI middleware: requires a two-legged OAuth 1.0a signature where the policy says.

    Writes (any method but GET, HEAD and OPTIONS) always need a signature. Reads need one when
    `protect_reads` is set, and reads of a resource that sets `ALWAYS_SIGNED` (image bodies and
    build logs: what the seed service did not serve) need one always; those are authenticated
    once routing found the resource, so a path's spelling cannot dodge the check. Requests whose
    `req.path` is in `exempt_paths` never need one.

    When a request is signed correctly, `req.context.oauth_client` is set to the consumer key.
    When no signature was needed, it is None. Any other request gets `falcon.HTTPBadRequest`
    (malformed, incomplete or unsupported OAuth parameters) or `falcon.HTTPUnauthorized` with
    the ``OAuth realm="imagefactory"`` challenge (no signature, or not a valid one).

    The signature is checked against the URI the client saw. Scheme and host come from
    `req.prefix`, or, with `trust_proxy_headers`, from ``Forwarded`` / ``X-Forwarded-Proto`` /
    ``X-Forwarded-Host``. Set it only behind a proxy that overwrites those headers. The path is
    the one the client sent, not `req.path`, which Falcon may have normalised (see `_signed_uri`).

    Form body parameters are read with `req.get_media()`, which caches them for the responder.
    The responder therefore gets exactly the parameters that were signed. This relies on the
    app's form handler returning a mapping of names to a string or a list of strings, as
    Falcon's `URLEncodedFormHandler` does. `auto_parse_form_urlencoded` must stay off: it
    consumes the body before the middleware can see it.
    """

    def __init__(
        self,
        clients: Mapping[str, str],
        nonce_store: NonceStore,
        *,
        protect_reads: bool = False,
        timestamp_window: int = 600,
        trust_proxy_headers: bool = False,
        exempt_paths: Collection[str] = (),
    ) -> None:
        if timestamp_window <= 0:
            raise ValueError(f"timestamp_window must be positive, not {timestamp_window}")
        for key, secret in clients.items():
            if not _is_token(key):
                raise ValueError(
                    f"OAuth client key {key!r} must be 1-{MAX_TOKEN_LENGTH} printable ASCII"
                    " characters"
                )
            if not secret:
                raise ValueError(f"OAuth client {key!r} has an empty shared secret")
        if isinstance(nonce_store, MemoryNonceStore) and nonce_store.window < timestamp_window:
            raise ValueError(
                f"the nonce store forgets nonces after {nonce_store.window} s but timestamps are"
                f" accepted for {timestamp_window} s, so requests could be replayed"
            )
        self._clients = dict(clients)
        self._protect_reads = protect_reads
        self._trust_proxy_headers = trust_proxy_headers
        self._exempt_paths = frozenset(exempt_paths)
        self._nonces = nonce_store
        self._validator = _Validator(self._clients, timestamp_window)
        self._endpoint = _DecodedFormEndpoint(self._validator)
        self._window = timestamp_window

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Authenticate `req` before routing, so an unsigned write reaches no resource."""
        req.context.oauth_client = None
        if req.path in self._exempt_paths or (
            req.method in READ_METHODS and not self._protect_reads
        ):
            return
        req.context.oauth_client = self._authenticate(req)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        """Authenticate an open read that reached an `ALWAYS_SIGNED` resource."""
        if (
            getattr(resource, ALWAYS_SIGNED, False)
            and req.context.oauth_client is None
            and req.path not in self._exempt_paths
        ):
            req.context.oauth_client = self._authenticate(req)

    def _authenticate(self, req: falcon.Request) -> str:
        params = self._protocol_parameters(req)
        client_key = params["oauth_consumer_key"]
        self._check_parameters(req, params)

        headers = {"Authorization": req.auth or ""}
        body = None
        if _is_form(req):
            headers["Content-Type"] = FORM_URLENCODED
            body = _form_fields(req)
        try:
            valid, request = self._endpoint.validate_request(
                self._signed_uri(req), req.method, body, headers
            )
        except ValueError:
            # oauthlib decodes the query string strictly and raises rather than returning False.
            raise self._reject(
                req,
                "The query string is not valid application/x-www-form-urlencoded data, so its"
                " OAuth signature cannot be checked. Percent-encode it as RFC 3986 says.",
                client_key,
            ) from None
        if valid:
            self._use_nonce(req, params)
            return client_key

        verdicts: dict[str, Any] = request.validator_log if request is not None else {}
        if verdicts.get("client") is False:
            raise self._reject(req, NOT_VERIFIED, client_key, reason="unknown consumer key")
        if verdicts.get("signature") is False:
            raise self._reject(req, NOT_VERIFIED, client_key, reason="bad signature")
        raise self._reject(
            req,
            "The OAuth request could not be verified. Send the oauth_* parameters once, in the"
            " Authorization header only, not also in the query string or form body.",
            client_key,
        )

    def _use_nonce(self, req: falcon.Request, params: Mapping[str, str]) -> None:
        """Record the verified request's nonce, or refuse the request as a replay."""
        if not self._nonces.use(
            params["oauth_consumer_key"], params["oauth_nonce"], int(params["oauth_timestamp"])
        ):
            raise self._reject(
                req,
                "This oauth_nonce was already used with this oauth_timestamp: the request was"
                " replayed. Sign every request afresh, with a new nonce.",
                params["oauth_consumer_key"],
            )

    def _protocol_parameters(self, req: falcon.Request) -> dict[str, str]:
        """The decoded oauth_* parameters of the Authorization header, or a 401."""
        header = req.auth
        if not header:
            raise self._reject(
                req,
                "Missing Authorization header. This request needs a two-legged OAuth 1.0a"
                " signature (HMAC-SHA1 or HMAC-SHA256) made with your consumer key and shared"
                " secret.",
                title="Authentication required",
            )
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "oauth":
            # Name the scheme only when it looks like one: a header without a scheme may be a
            # bare token, which must not be echoed or logged.
            which = (
                f"uses the {scheme!r} scheme"
                if credentials and scheme.isalnum() and len(scheme) <= 20
                else "does not name the OAuth scheme"
            )
            raise self._reject(
                req,
                f"The Authorization header {which}. This service accepts only OAuth 1.0a"
                " (Authorization: OAuth ...).",
            )
        try:
            pairs = collect_parameters(
                headers={"Authorization": header}, exclude_oauth_signature=False
            )
        except ValueError:
            raise self._bad_request(
                req,
                "The OAuth Authorization header is malformed: it must be a comma-separated list"
                ' of name="percent-encoded value" pairs.',
            ) from None
        params = dict(pairs)
        # oauthlib keeps the last of repeated names; RFC 5849 §3.2 makes a repeat a 400
        names = Counter(item.split("=", 1)[0].strip() for item in parse_http_list(credentials))
        repeated = sorted(name for name, count in names.items() if count > 1)
        if repeated:
            raise self._bad_request(
                req, f"The OAuth Authorization header gives {', '.join(repeated)} more than once."
            )
        missing = [name for name in MANDATORY_PARAMETERS if not params.get(name)]
        if missing:
            raise self._bad_request(
                req,
                f"The OAuth Authorization header lacks {', '.join(missing)}. A signed request"
                f" carries all of {', '.join(MANDATORY_PARAMETERS)}.",
                params.get("oauth_consumer_key"),
            )
        return params

    def _check_parameters(self, req: falcon.Request, params: Mapping[str, str]) -> None:
        """Refuse, with the reason, what oauthlib would refuse without one.

        Nothing here depends on whether the consumer key is known (see the module's docstring).
        """
        client_key = params["oauth_consumer_key"]
        if params.get("oauth_version", "1.0") != "1.0":
            raise self._bad_request(
                req, 'oauth_version must be "1.0" when present (OAuth 1.0a).', client_key
            )
        method = params["oauth_signature_method"]
        if method not in SIGNATURE_METHODS:
            raise self._bad_request(
                req,
                f"Unsupported signature method {method[:40]!r}. Sign with HMAC-SHA1 or"
                " HMAC-SHA256.",
                client_key,
            )
        if not _is_token(client_key):
            raise self._bad_request(
                req, f"oauth_consumer_key must be 1-{MAX_TOKEN_LENGTH} printable ASCII characters."
            )
        if not self._validator.check_nonce(params["oauth_nonce"]):
            raise self._bad_request(
                req,
                f"oauth_nonce must be 1-{MAX_TOKEN_LENGTH} printable ASCII characters.",
                client_key,
            )
        elsewhere = self._oauth_parameters_outside_the_header(req)
        if elsewhere:
            raise self._bad_request(
                req,
                f"OAuth parameters ({', '.join(elsewhere)}) also appear in the query string or"
                " form body. Send the oauth_* parameters once, in the Authorization header only.",
                client_key,
            )
        timestamp = params["oauth_timestamp"]
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise self._bad_request(
                req,
                "oauth_timestamp must be the number of seconds since 1970-01-01T00:00:00Z.",
                client_key,
            )
        if not self._validator.timestamp_fresh(int(timestamp)):
            raise self._reject(
                req,
                f"oauth_timestamp {timestamp} is outside the allowed window of"
                f" {self._window} s around the server's time ({int(time.time())}). Check the"
                " client's clock and sign the request just before sending it.",
                client_key,
            )

    @staticmethod
    def _oauth_parameters_outside_the_header(req: falcon.Request) -> list[str]:
        """oauth_* names in the query string or a form body (RFC 5849 §3.5: one place only)."""
        names = set(req.params)
        if _is_form(req):
            names.update(req.get_media())
        return sorted(name for name in names if name.startswith("oauth_"))

    def _signed_uri(self, req: falcon.Request) -> str:
        """The request URI as the client signed it.

        `req.uri` is built from `req.path`. Falcon drops a trailing slash from that path when
        `strip_url_path_trailing_slash` is on, and it holds decoded text while the client
        signed percent-encoded text. So the path is rebuilt from the raw ``PATH_INFO`` bytes
        (PEP 3333 tunnels them as latin-1). They are percent-encoded as requests and oauthlib
        encode a path, so that "/a b/café" is signed and checked as "/a%20b/caf%C3%A9".
        """
        path = quote((req.env.get("PATH_INFO") or "/").encode("latin-1"), safe=PATH_SAFE)
        prefix = req.forwarded_prefix if self._trust_proxy_headers else req.prefix
        query = f"?{req.query_string}" if req.query_string else ""
        return prefix + path + query

    @staticmethod
    def _reject(
        req: falcon.Request,
        description: str,
        client_key: str | None = None,
        *,
        title: str = "Authentication failed",
        reason: str | None = None,
    ) -> falcon.HTTPUnauthorized:
        """A 401: the request is not (or not validly) signed. `reason`, when the answer keeps
        it from the client, is for the service log only."""
        _log_refusal(req, 401, reason or description, client_key)
        return falcon.HTTPUnauthorized(title=title, description=description, challenges=[CHALLENGE])

    @staticmethod
    def _bad_request(
        req: falcon.Request, description: str, client_key: str | None = None
    ) -> falcon.HTTPBadRequest:
        """A 400: the OAuth parameters are malformed, missing, repeated or unsupported
        (RFC 5849 §3.2), whoever sent them."""
        _log_refusal(req, 400, description, client_key)
        return falcon.HTTPBadRequest(title="Malformed OAuth request", description=description)


def _log_refusal(req: falcon.Request, status: int, reason: str, client_key: str | None) -> None:
    # The reason is made only from fixed text, the timestamp and the names of the scheme,
    # parameters or signature method. It never contains a secret, a signature or the body, so
    # it can be logged.
    log.info(
        "OAuth refused %s %s with %s (consumer key %r): %s",
        req.method,
        req.path,
        status,
        client_key,
        reason,
    )


def _is_form(req: falcon.Request) -> bool:
    content_type = req.content_type or ""
    return content_type.split(";", 1)[0].strip().lower() == FORM_URLENCODED


def _form_fields(req: falcon.Request) -> list[tuple[str, str]]:
    """The form fields the responder will get from `req.get_media()`, repeated ones included,
    for `_DecodedFormEndpoint`."""
    pairs: list[tuple[str, str]] = []
    for name, value in req.get_media().items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, item) for item in values)
    return pairs


class _DecodedFormEndpoint(SignatureOnlyEndpoint):
    """oauthlib's endpoint, given a form's fields as Falcon decoded them instead of as text.

    oauthlib decodes a form body with the standard library's ``parse_qsl``, whose peak memory
    is some 85 times the body when the body is all percent-escapes: one 4 MiB form with any
    OAuth header, a made-up key's too, took the worker from 70 to 420 MB. The fields are added
    to the signed parameters already decoded (oauthlib would turn a list of pairs into a dict,
    dropping repeated fields, so they do not go through its `Request`).
    """

    def _create_request(self, uri: str, http_method: str, body: Any,
                        headers: Any) -> OAuthRequest:
        request = super()._create_request(uri, http_method, "", headers)
        request.params = [*request.params, *(body or [])]
        return request


class _HideSignatureBaseStrings(logging.Filter):
    """Drops oauthlib's debug record of a failed signature's base string.

    That string contains every form field, and a provider-image form carries cloud credentials.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Verify HMAC failed")


logging.getLogger("oauthlib.oauth1.rfc5849.signature").addFilter(_HideSignatureBaseStrings())
