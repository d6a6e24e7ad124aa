"""Upload a file into an image transfer: imageio's HTTP API, byte for byte, resumable.

imageio takes a disk as ranges: ``PUT /images/<ticket>`` with ``Content-Range`` writes one,
``PATCH {"op": "zero"}`` zeroes one without sending it, ``PATCH {"op": "flush"}`` makes it all
durable. ``OPTIONS`` tells what the ticket allows (features, how many writers at once).

The file is split into pieces: the data extents of the (sparse) file, at most `PIECE` bytes
each, and the holes between them, which are zeroed (a disk on block storage is not zero when
it is made). Each piece is one request, sent without a flush; a piece whose connection breaks
(reset, timeout) or that meets a server error is sent again on a new connection, up to
`ATTEMPTS` times, while the pieces already acknowledged stay done: an interrupted transfer
resumes where it broke instead of starting over. Up to the ticket's ``max_writers`` pieces are
in flight at once, each worker on its own connection. Every connection goes through the
outbound policy (``ctx.outbound``): the engine names the imageio host, and the service must not
be led to an address the operator did not allow.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from imagefactory_core.plugin import BuildCancelled, BuildContext, BuildError, OutboundRefused

from .transport import CONNECT_TIMEOUT, READ_TIMEOUT

MIB = 1024 * 1024
PIECE = 64 * MIB
CHUNK = 4 * MIB
MAX_WORKERS = 4
ATTEMPTS = 5
_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Piece:
    """A range of the file: data to send, or a hole to zero."""

    offset: int
    length: int
    zero: bool = False


@dataclass(frozen=True)
class Destination:
    """The transfer URL chosen and what its ticket allows."""

    url: str
    writers: int
    can_zero: bool
    can_flush: bool


class _Transient(Exception):
    """A piece failed in a way that sending it again may cure."""


def pieces(path: Path) -> list[Piece]:
    """The file's data extents (at most PIECE bytes each) and holes, in order."""
    size = path.stat().st_size
    found: list[Piece] = []
    with path.open("rb") as source:
        fd = source.fileno()
        offset = 0
        while offset < size:
            try:
                data = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                data = size
            if data > offset:
                found.append(Piece(offset, data - offset, zero=True))
            if data >= size:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
            for start in range(data, hole, PIECE):
                found.append(Piece(start, min(PIECE, hole - start)))
            offset = hole
    return found


class _Body:
    """A piece's bytes for requests: a length (so Content-Length is sent, not chunks) and
    chunks read into one buffer. Each chunk counts as progress; when the piece is sent again,
    what its broken attempt counted is taken back. Cancellation is checked before each chunk."""

    def __init__(self, path: Path, piece: Piece, ctx: BuildContext,
                 progress: _Progress) -> None:
        self._path, self._piece, self._ctx, self._progress = path, piece, ctx, progress
        self._counted = 0

    def __len__(self) -> int:
        return self._piece.length

    def __iter__(self) -> Iterator[memoryview]:
        self._progress.add(-self._counted)
        self._counted = 0
        buffer = bytearray(min(CHUNK, self._piece.length))
        view = memoryview(buffer)
        with self._path.open("rb", buffering=0) as source:
            source.seek(self._piece.offset)
            left = self._piece.length
            while left:
                self._ctx.check_cancelled()
                count = source.readinto(view[:min(left, len(buffer))])
                if not count:
                    raise BuildError(f"{self._path} ended before offset "
                                     f"{self._piece.offset + self._piece.length}")
                yield view[:count]
                left -= count
                self._counted += count
                self._progress.add(count)


@dataclass
class _Progress:
    """Bytes done (sent or zeroed) out of `total`, reported to the context as they grow, with
    an activity line every tenth."""

    ctx: BuildContext
    total: int
    done: int = 0
    reported: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, count: int) -> None:
        if not count:
            return
        with self.lock:
            self.done += count
            percent = 100 * self.done // self.total if self.total else 100
            if percent <= self.reported:
                return
            activity = None
            if percent // 10 > self.reported // 10:
                activity = f"Uploaded {self.done / MIB:.0f} of {self.total / MIB:.0f} MiB"
            self.reported = percent
            self.ctx.progress(percent, activity)


def _request(session: requests.Session, method: str, url: str, verify: bool | str,
             **kwargs: Any) -> requests.Response:
    try:
        answer = session.request(method, url, verify=verify, allow_redirects=False,
                                 timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
    except requests.exceptions.SSLError as exc:
        raise BuildError(f"TLS verification of imageio at {url} failed: {exc}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError) as exc:
        refused = OutboundRefused.behind(exc)
        if refused is not None:
            raise BuildError(f"imageio at {url}: {refused.reason}") from exc
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    if answer.status_code >= 500:
        raise _Transient(f"HTTP {answer.status_code}: {answer.text.strip()[:300]}")
    if answer.status_code >= 300:  # a redirect too: the data goes to the URL checked only
        raise BuildError(f"imageio refused {method} {url} (HTTP {answer.status_code}): "
                         f"{answer.text.strip()[:300]}")
    return answer


def open_destination(ctx: BuildContext, transfer_url: str, proxy_url: str | None,
                     verify: bool | str) -> Destination:
    """Ask the transfer URL what its ticket allows; when the imageio host cannot be reached,
    go through the engine's imageio proxy (`proxy_url`) instead, as oVirt's clients do."""
    session = ctx.outbound.session()
    try:
        for url in (transfer_url, proxy_url):
            if not url:
                continue
            try:
                options = _request(session, "OPTIONS", url, verify).json()
            except _Transient as exc:
                ctx.log(f"imageio at {url} cannot be reached ({exc})")
                continue
            ctx.log(f"uploading to imageio at {url}")
            features = options.get("features") or []
            return Destination(url, max(1, min(int(options.get("max_writers", 1)), MAX_WORKERS)),
                               "zero" in features, "flush" in features)
    finally:
        session.close()
    raise BuildError("neither the transfer URL nor the proxy URL of the image transfer can be "
                     "reached")


def upload(ctx: BuildContext, path: Path, destination: Destination,
           verify: bool | str) -> None:
    """Send `path` to `destination` (module doc), reporting bytes done as progress."""
    todo: queue.Queue[Piece] = queue.Queue()
    for piece in pieces(path):
        todo.put(piece)
    progress = _Progress(ctx, path.stat().st_size)
    failures: list[BaseException] = []
    workers = [threading.Thread(target=_work, name=f"imageio-upload-{n}",
                                args=(ctx, path, destination, verify, todo, progress, failures))
               for n in range(destination.writers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        cancelled = [failure for failure in failures if isinstance(failure, BuildCancelled)]
        raise (cancelled or failures)[0]
    if destination.can_flush:
        session = ctx.outbound.session()
        try:
            _retrying(ctx, "flushing the disk", lambda: _request(
                session, "PATCH", destination.url, verify, json={"op": "flush"}))
        finally:
            session.close()


def _work(ctx: BuildContext, path: Path, destination: Destination, verify: bool | str,
          todo: queue.Queue[Piece], progress: _Progress, failures: list[BaseException]) -> None:
    """One worker: take pieces until none is left or any worker failed."""
    session = ctx.outbound.session()
    try:
        while not failures:
            try:
                piece = todo.get_nowait()
            except queue.Empty:
                return
            _send(ctx, session, path, destination, verify, piece, progress)
    except BaseException as exc:
        failures.append(exc)
    finally:
        session.close()


def _send(ctx: BuildContext, session: requests.Session, path: Path, destination: Destination,
          verify: bool | str, piece: Piece, progress: _Progress) -> None:
    end = piece.offset + piece.length
    if not piece.zero:
        body = _Body(path, piece, ctx, progress)  # counts its own progress, chunk by chunk
        _retrying(ctx, f"sending bytes {piece.offset}-{end - 1}", lambda: _put(
            session, destination, verify, piece, body))
        return
    if destination.can_zero:
        _retrying(ctx, f"zeroing bytes {piece.offset}-{end - 1}", lambda: _request(
            session, "PATCH", destination.url, verify,
            json={"op": "zero", "offset": piece.offset, "size": piece.length, "flush": False}))
    else:
        _retrying(ctx, f"sending the zeros of bytes {piece.offset}-{end - 1}", lambda: _put(
            session, destination, verify, piece, _Zeros(piece)))
    progress.add(piece.length)


def _put(session: requests.Session, destination: Destination, verify: bool | str,
         piece: Piece, body: _Body | _Zeros) -> requests.Response:
    """Write `body` at the piece's offset, without a flush (one comes at the end)."""
    end = piece.offset + piece.length
    return _request(session, "PUT", f"{destination.url}?flush=n", verify, data=body,
                    headers={"Content-Range": f"bytes {piece.offset}-{end - 1}/*",
                             "Content-Type": "application/octet-stream"})


class _Zeros:
    """A hole's bytes, for a ticket that cannot zero."""

    def __init__(self, piece: Piece) -> None:
        self._length = piece.length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        chunk = bytes(min(CHUNK, self._length))
        for start in range(0, self._length, CHUNK):
            yield chunk[:min(CHUNK, self._length - start)]


def _retrying(ctx: BuildContext, what: str, action: Any) -> None:
    """Run `action` until it succeeds, again after each transient failure (logged)."""
    for attempt in range(1, ATTEMPTS + 1):
        ctx.check_cancelled()
        try:
            action()
            return
        except _Transient as exc:
            if attempt == ATTEMPTS:
                raise BuildError(f"{what} failed {ATTEMPTS} times; the last time: {exc}") \
                    from exc
            delay = _RETRY_DELAYS[attempt - 1]
            ctx.log(f"{what} failed ({exc}): sending again in {delay:g} s "
                    f"(attempt {attempt + 1} of {ATTEMPTS})")
            ctx.cancel_event.wait(delay)
