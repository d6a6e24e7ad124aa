"""Talking to the engine: logging in, its errors as `BuildError`s, and waiting for its
asynchronous work.

The engine answers most changes at once and finishes them later (a disk is ``locked`` until
it exists, a template until its disks are copied), so a step is "ask, then poll the entity
until it reaches the state wanted". Polls start fast and slow down to a few seconds, honour
cancellation, and give up after the account's timeout with a message naming the step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import ovirtsdk4
import ovirtsdk4.services
from imagefactory_core.plugin import BuildContext, BuildError, OutboundPolicy

from . import transport
from .provider import Account

T = TypeVar("T")
FIRST_POLL = 0.2
LONGEST_POLL = 3.0


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the SDK's errors into a `BuildError` saying which `action` failed and why (the
    engine's fault reason and detail, or the connection's error)."""
    try:
        yield
    except ovirtsdk4.AuthError as exc:
        raise BuildError(f"{action} failed: the engine refused the credentials: "
                         f"{_message(exc)}") from exc
    except ovirtsdk4.Error as exc:
        raise BuildError(f"{action} failed: {_message(exc)}") from exc


def _message(exc: ovirtsdk4.Error) -> str:
    fault = getattr(exc, "fault", None)
    if fault is not None and (fault.detail or fault.reason):
        detail = str(fault.detail or fault.reason).strip().removeprefix("[").removesuffix("]")
        return f"{detail} (HTTP {getattr(exc, 'code', '?')})"
    return str(exc)


def wait_until(ctx: BuildContext, what: str, probe: Callable[[], T | None],
               timeout: float) -> T:
    """Call `probe` until it returns something other than None, and return that.

    `probe` raises `BuildError` when the state it sees can no longer become the one wanted.
    After `timeout` seconds the wait fails, naming `what` was awaited.
    """
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    while True:
        with engine_errors(f"waiting for {what}"):
            found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BuildError(f"gave up waiting for {what} after {timeout:.0f} s")
        ctx.cancel_event.wait(delay)
        ctx.check_cancelled()
        delay = min(delay * 1.5, LONGEST_POLL)


def gone(get: Callable[[], object]) -> bool | None:
    """A `wait_until` probe: True once `get` answers 404, else None."""
    try:
        get()
    except ovirtsdk4.NotFoundError:
        return True
    return None


@contextlib.contextmanager
def connected(ctx: BuildContext, account: Account,
              outbound: OutboundPolicy) -> Iterator[ovirtsdk4.services.SystemService]:
    """Log in to the engine (so bad credentials fail first) and yield its system service;
    log out at the end without letting a failure to log out hide the work's own error."""
    connection = transport.connect(account, outbound)
    if account.verify is False:
        ctx.log("TLS certificates of the engine and imageio are not verified (provider "
                "insecure, which the operator allows)")
    try:
        system = connection.system_service()
        with engine_errors(f"logging in to {account.describe()}"):
            api = system.get()
        product = api.product_info
        if product is not None and product.version is not None:
            ctx.log(f"logged in to {product.name} {product.version.full_version}")
        yield system
    finally:
        try:
            connection.close()
        except ovirtsdk4.Error as exc:
            ctx.log(f"logging out of the engine failed: {exc}")
