"""Everything a service said or kept, gathered as bytes, and a search of it for secrets.

A secret counts as leaked when its clear text is found, or a form a reader could turn back into
it: percent-encoded (URLs, form bodies) or base64 (standard or URL-safe alphabet, at any of the
three alignments it could have inside a longer encoded text).
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import requests


def forms(secret: str) -> dict[str, bytes]:
    """`secret` as it could appear: its name of form → bytes to look for."""
    raw = secret.encode()
    found = {"clear text": raw, "percent-encoded": quote(secret, safe="").encode(),
             "form-encoded": quote_plus(secret).encode()}
    for shift in range(3):
        for alphabet, encode in (("base64", base64.b64encode),
                                 ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * shift + raw)
            # The first group mixes in what precedes the secret, the last what follows it.
            found[f"{alphabet}, offset {shift}"] = encoded[4 if shift else 0:-4]
    return found


@dataclass
class Evidence:
    """(where, bytes) pairs: responses, log files, callback bodies, database rows, files."""

    items: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, where: str, data: bytes | str) -> None:
        self.items.append((where, data.encode() if isinstance(data, str) else data))

    def add_response(self, response: requests.Response) -> None:
        request = response.request
        where = f"{request.method} {request.url} -> {response.status_code}"
        headers = "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        self.add(f"{where} (headers)", headers)
        self.add(f"{where} (body)", response.content)

    def add_database(self, path: Path) -> int:
        """Every row of every table of the SQLite database at `path`; returns the row count."""
        rows = 0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = [name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for number, row in enumerate(db.execute(f'SELECT * FROM "{table}"')):
                    rows += 1
                    for column, value in enumerate(row):
                        if value is not None:
                            data = value if isinstance(value, bytes) else str(value)
                            self.add(f"database table {table} row {number} column {column}",
                                     data)
        return rows

    def add_tree(self, root: Path) -> int:
        """Every regular file under `root`, byte for byte; returns the file count."""
        files = [path for path in sorted(root.rglob("*")) if path.is_file()]
        for path in files:
            self.add(f"file {path}", path.read_bytes())
        return len(files)

    def leaks(self, secrets: Mapping[str, str]) -> list[str]:
        """One line per secret and form found: how many places, and the first few."""
        found = []
        for name, secret in secrets.items():
            for form, needle in forms(secret).items():
                places = [(where, data) for where, data in self.items if needle in data]
                found += [f"{name} ({form}) in {len(places)} places, e.g. {where}: "
                          f"...{_around(data, needle)}..." for where, data in places[:2]]
        return found


def _around(data: bytes, needle: bytes, width: int = 80) -> str:
    at = data.index(needle)
    return data[max(0, at - width):at + len(needle) + width].decode("utf-8", "replace")
