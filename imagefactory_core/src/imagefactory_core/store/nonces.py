"""OAuth nonce store in the metadata database, so every server process sees every nonce."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from .schema import oauth_nonces


class SqlNonceStore:
    """`NonceStore` backed by the `oauth_nonces` table; old entries are pruned as it goes."""

    def __init__(self, engine: Engine, window: int = 600):
        self.engine = engine
        self.window = window
        self._last_prune = 0.0

    def use(self, client_key: str, nonce: str, timestamp: int) -> bool:
        now = time.time()
        try:
            with self.engine.begin() as conn:
                if now - self._last_prune > 60:
                    conn.execute(delete(oauth_nonces).where(
                        oauth_nonces.c.timestamp < int(now) - 2 * self.window))
                    self._last_prune = now
                conn.execute(insert(oauth_nonces).values(
                    client_key=client_key, nonce=nonce, timestamp=timestamp))
        except IntegrityError:
            return False
        return True
