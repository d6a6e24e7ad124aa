"""OAuth nonce store in the metadata database, so every server process sees every nonce."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from .schema import oauth_nonces

PRUNE_SECONDS = 60


class SqlNonceStore:
    """`NonceStore` backed by the `oauth_nonces` table; old entries are pruned as it goes.

    A nonce is accepted by inserting it: the table's primary key refuses a second insert, so
    of two requests with one nonce, on any servers of one database, exactly one is accepted
    (PostgreSQL makes the second insert wait for the first's commit, then refuses it)."""

    def __init__(self, engine: Engine, window: int = 600):
        self.engine = engine
        self.window = window
        self._last_prune = 0.0

    def use(self, client_key: str, nonce: str, timestamp: int) -> bool:
        now = time.time()
        if now - self._last_prune > PRUNE_SECONDS:
            # a transaction of its own: a replay's refused insert must not undo the pruning
            self._last_prune = now
            with self.engine.begin() as conn:
                conn.execute(delete(oauth_nonces).where(
                    oauth_nonces.c.timestamp < int(now) - 2 * self.window))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(oauth_nonces).values(
                    client_key=client_key, nonce=nonce, timestamp=timestamp))
        except IntegrityError:
            return False
        return True
