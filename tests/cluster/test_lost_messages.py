"""Celery's broker losing its messages (a Redis restarted without persistence, as the tests'
runs) loses no job: the jobs' rows are the truth, and the workers' sweep (every
`builds.worker.SWEEP_SECONDS`) publishes again a ready job no worker has claimed
`REPUBLISH_SECONDS` after it was last published."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from imagefactory_core.builds.worker import REPUBLISH_SECONDS, SWEEP_SECONDS
from imagefactory_core.store.schema import jobs

from tests.rest.conftest import fake_tdl
from tests.services.redis import flush

from .conftest import Cluster

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("queue_url", ["celery"], indirect=True)
def test_jobs_whose_messages_the_broker_lost_still_run(cluster: Cluster):
    api = cluster.api().start()
    queued = api.post("/base_images", {"base_image": {"template": fake_tdl("lost-message")}})
    path = f"/base_images/{queued['id']}"
    assert cluster.query("SELECT image_id FROM jobs WHERE published_at IS NOT NULL") == [
        (queued["id"],)]
    assert cluster.queue_url is not None
    flush(cluster.queue_url)

    cluster.worker().start()
    time.sleep(3)  # a worker takes a message it has at once: the job's is gone
    assert api.get(path)["status"] == "PENDING"

    # let the republishing delay pass at once, as if the job had waited that long
    engine = sa.create_engine(cluster.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.image_id == queued["id"]).values(
                published_at=datetime.now(UTC) - timedelta(seconds=REPUBLISH_SECONDS + 60)))
    finally:
        engine.dispose()
    done = api.wait_for(path, timeout=SWEEP_SECONDS + 30)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert cluster.query("SELECT image_id FROM jobs") == []
