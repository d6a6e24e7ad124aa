"""The request body of a Glance upload: the image file, read in big chunks, watched as it goes.

Every chunk handed to the HTTP client reports progress and checks for cancellation. When the
target image does not record its digest, the body computes it from the bytes actually sent, so
the checksum is verified without reading the file a second time.

The body is an iterable with a length rather than a file object on purpose: requests then sends
a Content-Length (Glance preallocates and can check the size) and urllib3 sends each chunk as it
is, where a file object would be read 16 KiB at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .digest import CHUNK_SIZE


class UploadBody:
    """Iterate over `path` in CHUNK_SIZE pieces.

    `on_chunk(sent, total)` runs before each chunk is handed over and once at the end; it may
    raise (for example `BuildCancelled`), which aborts the upload. After a complete iteration
    `digests` holds the hex digests of the `algorithms` over everything sent.
    """

    def __init__(self, path: Path, on_chunk: Callable[[int, int], None],
                 algorithms: tuple[str, ...] = ()) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._on_chunk = on_chunk
        self._algorithms = algorithms
        self._hashes: dict[str, Any] = {}
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        # Start afresh on every iteration: a retried request sends the body again.
        self._hashes = {name: hashlib.new(name, usedforsecurity=False)
                        for name in self._algorithms}
        self.sent = 0
        with self.path.open("rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                self._on_chunk(self.sent, self.size)
                for digest in self._hashes.values():
                    digest.update(chunk)
                self.sent += len(chunk)
                yield chunk
        self._on_chunk(self.sent, self.size)

    @property
    def digests(self) -> dict[str, str]:
        if self.sent != self.size:
            raise RuntimeError(f"only {self.sent} of {self.size} bytes were sent")
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}
