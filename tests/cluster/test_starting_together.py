"""A whole cluster started at once on an empty PostgreSQL database: two API servers and two
workers race to migrate it, and it is migrated once. (tests/postgresql/test_servers.py starts
API servers alone together; here the workers, which open the same store, race them.)"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.script import ScriptDirectory
from imagefactory_core.store.database import MIGRATIONS

from tests.rest.conftest import fake_tdl
from tests.server.conftest import start_together

from .conftest import Cluster

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("queue_url", ["database"], indirect=True)
def test_api_servers_and_workers_starting_together_migrate_once(cluster: Cluster):
    processes: list[Any] = [cluster.api(), cluster.api(), cluster.worker(), cluster.worker()]
    start_together(processes)
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert cluster.query("SELECT version_num FROM alembic_version") == [(head,)]
    for process in processes:
        assert "Traceback" not in process.log() and "ERROR" not in process.log(), process.log()
    workers = {worker.id for worker in cluster.workers}
    assert workers <= {row[0] for row in cluster.query("SELECT id FROM instances")}

    first, second = cluster.apis
    made = [api.post("/base_images", {"base_image": {"template": fake_tdl(f"together-{n}")}})
            for n, api in enumerate((first, second, first, second))]
    for image in made:
        done = second.wait_for(f"/base_images/{image['id']}")
        assert done["status"] == "COMPLETE", done["status_detail"]
