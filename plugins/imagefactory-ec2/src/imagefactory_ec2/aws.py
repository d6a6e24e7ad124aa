"""boto3 clients for one push or delete, and AWS errors turned into messages a user can act on.

Retries live in botocore, not in our loops: every client retries throttling, 5xx and
connection errors with exponential backoff; the EBS client uses the "adaptive" mode, which also
slows the whole upload down when AWS throttles PutSnapshotBlock. Every retried call is safe to
repeat: PutSnapshotBlock overwrites the same block, StartSnapshot and ImportSnapshot carry the
idempotency token botocore fills in.

Every connection obeys the operator's outbound policy (``ctx.outbound``): the host is resolved
and each address checked when the connection is made, so an endpoint whose name resolves to a
loopback, link-local or private address is refused unless the operator allows it. A refusal
ends the call at once (it is not a connection error worth retrying).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from imagefactory_core.plugin import BuildError, OutboundPolicy, OutboundRefused

from .credentials import Ec2Credentials
from .provider import Ec2Provider

AUTH_ERRORS = frozenset({
    "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException", "IncompleteSignature",
})
PERMISSION_ERRORS = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "OptInRequired",
})
GONE = frozenset({"InvalidSnapshot.NotFound", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
                  "NoSuchKey", "NoSuchBucket", "NoSuchUpload"})
"""Answers meaning the thing to delete is not there (any more): for a delete, that is done."""


class AwsClients:
    """Creates (once each) the clients of one provider account.

    Create clients from one thread only (boto3 sessions are not thread-safe); the clients
    themselves may then be shared by upload threads.
    """

    def __init__(self, provider: Ec2Provider, credentials: Ec2Credentials,
                 outbound: OutboundPolicy, *, pool: int = 10):
        self.provider = provider
        self.outbound = outbound
        self._session = boto3.session.Session(
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            region_name=provider.region,
        )
        self._pool = pool
        self._clients: dict[str, BaseClient] = {}

    def client(self, service: str) -> BaseClient:
        if service not in self._clients:
            client = self._session.client(
                service, endpoint_url=self.provider.endpoint(service),
                config=_config(service, self._pool,
                               path_style=self.provider.endpoint(service) is not None))
            _obey(client, self.outbound)
            self._clients[service] = client
        return self._clients[service]

    @property
    def ec2(self) -> BaseClient:
        return self.client("ec2")

    @property
    def ebs(self) -> BaseClient:
        return self.client("ebs")

    @property
    def s3(self) -> BaseClient:
        return self.client("s3")

    @property
    def sts(self) -> BaseClient:
        return self.client("sts")


def _obey(client: BaseClient, outbound: OutboundPolicy) -> None:
    """Make every connection of `client` obey `outbound`.

    botocore has no public way to choose its connections; its HTTP session keeps the urllib3
    pool classes in one mapping that all its pool managers share, so replacing those classes
    there (before the first request) covers every connection, proxies included.
    """
    pools = client._endpoint.http_session._pool_classes_by_scheme
    for scheme, pool in list(pools.items()):
        pools[scheme] = outbound.pool_class(pool)
    client.meta.events.register_first("needs-retry", _refused)


def _refused(caught_exception: Exception | None = None, **_: Any) -> None:
    """A ``needs-retry`` handler: a connection the outbound policy refused ends the call with
    the reason (botocore would retry it as a connection error, eight times with backoff)."""
    cause = getattr(caught_exception, "kwargs", {}).get("error")
    if isinstance(cause, OutboundRefused):
        url = urlsplit(str(caught_exception.kwargs.get("endpoint_url")))  # type: ignore[union-attr]
        raise BuildError(f"cannot connect to {url.scheme}://{url.netloc}: {cause.reason}")


@cache
def _user_agent() -> str:
    from importlib.metadata import version

    return f"imagefactory-ec2/{version('imagefactory-ec2')}"


def _config(service: str, pool: int, *, path_style: bool) -> Config:
    extra: dict[str, Any] = {}
    if service == "s3" and path_style:
        extra["s3"] = {"addressing_style": "path"}  # compatible endpoints rarely do virtual hosts
    return Config(
        retries={"mode": "adaptive" if service == "ebs" else "standard", "max_attempts": 8},
        max_pool_connections=pool,
        connect_timeout=15,
        read_timeout=120,
        user_agent_extra=_user_agent(),
        # not the environment's HTTP(S)_PROXY: a proxy would take the request on to whatever
        # address the endpoint names, past the outbound policy's check
        proxies={},
        **extra,
    )


@contextlib.contextmanager
def calling(doing: str, *, gone_is_fine: bool = False) -> Iterator[None]:
    """Turn any AWS error inside the block into `explain`'s `BuildError`.

    With `gone_is_fine`, an answer saying the resource does not exist ends the block quietly:
    deleting what is already deleted succeeds.
    """
    try:
        yield
    except ClientError as exc:
        if not (gone_is_fine and error_code(exc) in GONE):
            raise explain(exc, doing) from exc
    except BotoCoreError as exc:
        raise explain(exc, doing) from exc


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError (``InvalidSnapshot.NotFound`` …), else None."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def explain(exc: BaseException, doing: str) -> BuildError:
    """A `BuildError` saying what failed while `doing` something, and what to check."""
    if isinstance(exc, EndpointConnectionError):
        return BuildError(f"{doing}: cannot reach {exc.kwargs.get('endpoint_url')}; check the "
                          "provider's region and endpoints")
    if isinstance(exc, ClientError):
        code, message, status = _parts(exc)
        if code in AUTH_ERRORS or status == 401:
            return BuildError(f"{doing}: the provider rejected the credentials ({code}: "
                              f"{message}); check access_key and secret_access_key")
        if code in PERMISSION_ERRORS:
            return BuildError(f"{doing}: the credentials are not allowed to do this ({code}: "
                              f"{message})")
        return BuildError(f"{doing}: {code}: {message}")
    return BuildError(f"{doing}: {exc}")


def _parts(exc: ClientError) -> tuple[str, str, int | None]:
    """Code, message and HTTP status. Some endpoints answer a JSON API with an XML error body,
    which botocore then reports with the status as code and the raw XML as message."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "error")
    message = str(error.get("Message") or "")
    if message.lstrip().startswith("<"):
        inner_code = re.search(r"<Code>([^<]*)</Code>", message)
        inner_message = re.search(r"<Message>([^<]*)</Message>", message)
        code = inner_code.group(1) if inner_code else code
        message = inner_message.group(1) if inner_message else ""
    return code, message or "no details given", status
