"""Seal secrets at rest.

The database keeps templates with `rootpw` redacted, so a leaked database or backup reveals no
password. A build that must be re-queued after a restart still needs the real template: it is
kept encrypted (Fernet) with a key that lives beside the database, readable by root only.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..errors import BuildError


class Sealer:
    def __init__(self, key_file: Path):
        key_file.parent.mkdir(parents=True, exist_ok=True)
        if not key_file.exists():
            tmp = key_file.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            os.replace(tmp, key_file)
        self._fernet = Fernet(key_file.read_bytes().strip())

    def seal(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode())

    def unseal(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise BuildError(
                "the stored template cannot be decrypted (was secret.key replaced?)"
            ) from exc
