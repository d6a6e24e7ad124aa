"""The request body of a Glance upload: the image file, read in big chunks, watched as it goes.

Every chunk handed to the HTTP client reports progress, checks for cancellation and feeds the
digests Glance will report, so the checksum is verified against the bytes actually sent without
reading the file a second time.

The body is an iterable with a length rather than a file object on purpose: requests then sends
a Content-Length (Glance preallocates and can check the size) and urllib3 sends each chunk as it
is, where a file object would be read 16 KiB at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK_SIZE = 4 * 1024 * 1024

# Glance always reports an MD5 "checksum" and, by default, a SHA-512 "os_hash_value".
STREAMED_DIGESTS = ("md5", "sha512")


class UploadBody:
    """Iterate over `path` in CHUNK_SIZE pieces.

    `on_chunk(sent, total)` runs before each chunk is handed over; it may raise (for example
    `BuildCancelled`), which aborts the upload. After a complete iteration `digests` holds the
    hex digests of STREAMED_DIGESTS over everything sent.
    """

    def __init__(self, path: Path, on_chunk: Callable[[int, int], None]) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._on_chunk = on_chunk
        self._hashes: dict[str, hashlib._Hash] = {}
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        # Start afresh on every iteration: a retried request sends the body again.
        self._hashes = {name: hashlib.new(name, usedforsecurity=False)
                        for name in STREAMED_DIGESTS}
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
