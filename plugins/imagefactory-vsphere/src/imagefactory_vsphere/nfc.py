"""Sending a disk through an HttpNfcLease, the way ImportVApp receives the files of a VM.

The lease names one URL per device; its host is ``*`` when the vCenter means "me", so the
push's own vCenter host is put there. The VMDK is POSTed in one request, in 1 MiB writes
(http.client's own 8 KiB ones cost a third of the throughput), from a byte range of the body
(the whole file, or the VMDK member of an OVA). While it goes, a keep-alive thread reports the
percentage to the lease (``HttpNfcLeaseProgress``) every few seconds: a lease that hears
nothing expires (300 s by default) and the vCenter drops the import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imagefactory_core.plugin import BuildContext, BuildError
from pyVmomi import vim

from .session import TIMEOUT, Session, api_errors, connection_class

CHUNK = 1024 * 1024
KEEPALIVE_SECONDS = 5.0
READY_TIMEOUT = 600.0
CONTENT_TYPE = "application/x-vnd.vmware-streamVmdk"


@dataclass(frozen=True)
class Source:
    """A byte range of a file: what is sent."""

    path: Path
    offset: int
    size: int


def wait_until_ready(ctx: BuildContext, session: Session, lease: Any) -> None:
    """Wait while the vCenter prepares the import (creates the VM and its disks)."""
    deadline = time.monotonic() + READY_TIMEOUT
    with api_errors("waiting for the import lease", session.account):
        while (state := lease.state) == vim.HttpNfcLease.State.initializing:
            if time.monotonic() > deadline:
                raise BuildError(f"the import lease was not ready after {READY_TIMEOUT:.0f} s")
            ctx.cancel_event.wait(0.2)
            ctx.check_cancelled()
        if state != vim.HttpNfcLease.State.ready:
            error = lease.error
            raise BuildError(f"the vCenter refused the import: {getattr(error, 'msg', state)}")


def device_url(session: Session, lease: Any, import_key: str) -> str:
    """The URL the lease gives for the device `import_key`, on the account's vCenter host."""
    for device in lease.info.deviceUrl:
        if device.importKey == import_key:
            url = urlsplit(device.url)
            netloc = f"{session.account.host}:{session.account.port}" if url.hostname == "*" \
                else url.netloc
            return url._replace(netloc=netloc).geturl()
    raise BuildError(f"the import lease has no device {import_key!r}")


def send(ctx: BuildContext, session: Session, lease: Any, url: str, source: Source) -> None:
    """POST `source` to `url` with the session's cookie, reporting progress to `ctx` and
    keeping the lease alive."""
    sent = [0]
    keepalive = _KeepAlive(session, lease, lambda: 100 * sent[0] // max(source.size, 1))
    keepalive.start()
    try:
        _post(ctx, session, url, source, sent)
    finally:
        keepalive.stop()
    keepalive.raise_failure()


def _post(ctx: BuildContext, session: Session, url: str, source: Source,
          sent: list[int]) -> None:
    account = session.account
    parts = urlsplit(url)
    conn = connection_class(ctx.outbound)(parts.hostname or "", parts.port or 443,
                                          context=account.ssl_context, timeout=TIMEOUT)
    total_mib = source.size / 2**20
    reported = -1
    try:
        with api_errors(f"uploading the disk to {parts.netloc}", account):
            conn.putrequest("POST", parts.path + (f"?{parts.query}" if parts.query else ""),
                            skip_accept_encoding=True)
            for name, value in (("Content-Type", CONTENT_TYPE),
                                ("Content-Length", source.size), ("Cookie", session.cookie)):
                conn.putheader(name, str(value))
            conn.endheaders()
            buffer = memoryview(bytearray(CHUNK))
            with source.path.open("rb", buffering=0) as stream:
                stream.seek(source.offset)
                while sent[0] < source.size:
                    ctx.check_cancelled()
                    read = stream.readinto(buffer[:min(CHUNK, source.size - sent[0])])
                    if not read:
                        raise BuildError(f"{source.path.name} ended "
                                         f"{source.size - sent[0]} bytes early")
                    conn.send(buffer[:read])
                    sent[0] += read
                    percent = 100 * sent[0] // source.size
                    if percent != reported:
                        reported = percent
                        ctx.progress(percent, f"Uploaded {sent[0] / 2**20:.0f} of "
                                              f"{total_mib:.0f} MiB" if percent % 10 == 0
                                     else None)
            answer = conn.getresponse()
            detail = answer.read(2000).decode("utf-8", "replace").strip()
    finally:
        conn.close()
    if answer.status not in (200, 201):
        raise BuildError(f"the vCenter answered the disk upload with {answer.status} "
                         f"{answer.reason}: {detail[:300]}")


class _KeepAlive:
    """A thread that tells the lease how far the upload is, every KEEPALIVE_SECONDS."""

    def __init__(self, session: Session, lease: Any, percent: Callable[[], int]):
        self.session, self.lease, self.percent = session, lease, percent
        self.stopping = threading.Event()
        self.failure: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="nfc-keepalive", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(KEEPALIVE_SECONDS):
            try:
                self.lease.HttpNfcLeaseProgress(min(self.percent(), 99))
            except Exception as exc:  # the upload fails on its own if the lease is gone
                self.failure = exc
                return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def raise_failure(self) -> None:
        if self.failure is not None:
            with api_errors("keeping the import lease alive", self.session.account):
                raise self.failure
