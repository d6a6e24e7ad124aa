"""The store and the service on a real PostgreSQL server (`tests.services.postgresql`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from imagefactory_core.processes import kill_recorded_groups
from imagefactory_core.store import Sealer
from imagefactory_core.store.schema import instances

from tests.server.conftest import ServerProcess


def age_heartbeat(url: str, instance_id: str, seconds: float = 3600) -> None:
    """Make `instance_id`'s last heartbeat `seconds` old, as if it had stopped beating then:
    how a test lets the staleness delay (`store.instances.STALE_SECONDS`) pass at once."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(sa.update(instances).where(instances.c.id == instance_id)
                                   .values(heartbeat_at=datetime.now(UTC)
                                           - timedelta(seconds=seconds))).rowcount
        assert changed == 1, f"no heartbeat of {instance_id} to age"
    finally:
        engine.dispose()


@pytest.fixture
def shared_servers(postgresql_url: str,
                   tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Make real `imagefactory serve` processes (not started) that share one PostgreSQL
    database, one storage directory (as shared storage would be) and one sealing key (a copy
    in each state directory, as docs/operators.md says); all are killed at the end of the
    test, with the build commands their jobs recorded."""
    made: list[ServerProcess] = []
    key = tmp_path / "secret.key"
    Sealer(key)

    def make(**settings: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server{len(made)}", database_url=postgresql_url,
                               storage_path=str(tmp_path / "storage"), **settings)
        server.state_dir.mkdir(parents=True)
        shutil.copy2(key, server.state_dir / "secret.key")
        made.append(server)
        return server

    yield make
    for server in made:
        server.cleanup()
        for workdir in (server.state_dir / "work").glob("*"):
            kill_recorded_groups(workdir)
