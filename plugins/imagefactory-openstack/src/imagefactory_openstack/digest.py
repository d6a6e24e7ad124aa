"""Digests of image bodies, read in chunks so a long read still honours cancellation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

CHUNK_SIZE = 4 * 1024 * 1024

# Glance's default secure hash (os_hash_algo), computed while a push sends the body.
BODY_DIGEST = "sha512"


def file_digest(path: Path, algorithm: str, between_chunks: Callable[[], None]) -> str:
    """The hex digest of `path`; `between_chunks` runs before each chunk (and may raise)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as stream:
        while True:
            between_chunks()
            chunk = stream.read(CHUNK_SIZE)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
