"""A scale-out deployment on one machine (docs/scale-out.md): API servers (`imagefactory serve`
with ``build_workers: external``) and build workers (`imagefactory worker`), each a real
process with a state directory of its own, sharing a real PostgreSQL database
(`tests.services.postgresql`), image bodies and logs in S3 (moto's, `tests.services.moto`),
one sealing key and, for the Celery queue, a real Redis (`tests.services.redis`).

`WorkerProcess` starts a worker in its own process group, waits until it takes jobs, and can
SIGKILL it as a crash would. `Cluster` makes API servers and workers (not started) with the
shared settings; everything it made is killed at the end of the test, with the build commands
the workers' jobs recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from imagefactory_core.processes import kill_recorded_groups
from imagefactory_core.statelock import instance_id
from imagefactory_core.store import Sealer

from tests.server.conftest import (
    IMAGEFACTORY,
    REPO,
    ServerProcess,
    kill_process_group,
    wait_until,
)
from tests.storage.conftest import s3_client

START_TIMEOUT = 60.0
READY_LINE = "takes jobs"  # `builds.worker.Worker.run` logs it when it starts taking jobs
CLOUD_PLUGIN = "tests.plugins.fake_cloud"
# installed plugins stay out of the fake clusters: the service under test is the core alone
INSTALLED_PLUGINS = sorted({ep.name for ep in entry_points(group="imagefactory.plugins")})
# A worker whose heartbeat (every 5 s, `store.instances.HEARTBEAT_SECONDS`) is this old is
# dead: its jobs go to another worker. Twice the beat, so a live worker is never taken for
# dead between two beats.
STALE_SECONDS = 15  # the least worker_stale_seconds allows: three heartbeats


class WorkerProcess:
    def __init__(self, root: Path, **settings: Any):
        self.root = root
        self.state_dir = root / "state"
        self.settings: dict[str, Any] = {"state_dir": str(self.state_dir),
                                         "cache_path": str(root / "cache"), **settings}
        self.config_file = root / "imagefactory.conf"
        self.log_file = root / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def id(self) -> str:
        """The worker's instance id, as the jobs it claims record it."""
        return instance_id(self.state_dir)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> WorkerProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.settings))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("IMAGEFACTORY_CONFIG", None)
        seen = self.log().count(READY_LINE)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(IMAGEFACTORY), "worker", "--config", str(self.config_file)],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while self.log().count(READY_LINE) == seen:
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited with {self.proc.returncode}:\n"
                                     + self.log()[-4000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker took no jobs within {START_TIMEOUT} s:\n"
                                     + self.log()[-4000:])
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL the worker's process group, as a crash of its host would end it. The build
        commands it ran live on (they run in sessions of their own), as they would after an
        out-of-memory kill of the worker alone."""
        assert self.proc is not None
        kill_process_group(self.proc)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        for workdir in (self.state_dir / "work").glob("*"):
            kill_recorded_groups(workdir)


def fake_plugins(cloud_file: Path) -> dict[str, Any]:
    """The settings that give a process the test-only plugins alone (as `ServerProcess`), with
    fakecloud's images in `cloud_file`, which every worker shares (a push and the delete of
    its image may run on different workers)."""
    return {"plugin_modules": ["tests.plugins.fake_os", CLOUD_PLUGIN],
            "disabled_plugins": INSTALLED_PLUGINS,
            "plugins": {CLOUD_PLUGIN: {"fake_cloud_file": str(cloud_file)}}}


def s3_storage(s3: dict[str, Any]) -> dict[str, Any]:
    """The storage settings of a new, empty bucket on the S3 server `s3` (a moto endpoint)."""
    bucket = f"images-{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    return {"storage_url": f"s3://{bucket}/imagefactory",
            "storage_endpoint_url": s3["endpoint_url"], "storage_region": s3["region"],
            "storage_access_key": s3["access_key"],
            "storage_secret_key": s3["secret_access_key"], "log_upload_seconds": 0.2}


class Cluster:
    """API servers and build workers sharing a database, storage (`storage`: its settings,
    as `s3_storage`'s), a sealing key and a queue (`queue_url`: None for the database's
    own). Also used by ``bench/cluster``."""

    def __init__(self, root: Path, database_url: str, storage: dict[str, Any],
                 queue_url: str | None, **settings: Any):
        self.root = root
        self.database_url = database_url
        self.queue_url = queue_url
        key = root / "secret.key"
        Sealer(key)
        self.shared: dict[str, Any] = {
            "database_url": database_url,
            **storage,
            "secret_key_path": str(key),
            "worker_stale_seconds": STALE_SECONDS,
            **({"queue_url": queue_url} if queue_url else {}),
            **fake_plugins(root / "cloud.json"),
            **settings,
        }
        self.apis: list[ServerProcess] = []
        self.workers: list[WorkerProcess] = []

    def api(self, **settings: Any) -> ServerProcess:
        server = ServerProcess(self.root / f"api{len(self.apis)}", build_workers="external",
                               **{**self.shared, **settings})
        server.root.mkdir()
        self.apis.append(server)
        return server

    def worker(self, **settings: Any) -> WorkerProcess:
        worker = WorkerProcess(self.root / f"worker{len(self.workers)}",
                               **{**self.shared, **settings})
        self.workers.append(worker)
        return worker

    def start(self, apis: int = 2, workers: int = 2) -> Cluster:
        for _ in range(apis):
            self.api().start()
        for _ in range(workers):
            self.worker().start()
        return self

    def query(self, sql: str, **values: Any) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(sql), values)]
        finally:
            engine.dispose()

    def job_worker(self, image_id: str) -> str | None:
        """The id of the worker whose claim `image_id`'s job row holds (None: unclaimed or
        no row)."""
        rows = self.query("SELECT worker FROM jobs WHERE image_id = :id", id=image_id)
        return rows[0][0] if rows else None

    def owner(self, image_id: str) -> str | None:
        """The instance that last changed `image_id`'s status: the worker that ran its last
        job (`store.instances`)."""
        rows = self.query("SELECT owner FROM images WHERE id = :id", id=image_id)
        return rows[0][0] if rows else None

    def running_on(self, image_id: str) -> WorkerProcess:
        """The worker that claimed `image_id`'s job."""
        claimed = wait_until(lambda: self.job_worker(image_id), 30, f"{image_id} claimed")
        (worker,) = [w for w in self.workers if w.id == claimed]
        return worker

    def logs(self) -> str:
        return "\n".join(f"==== {process.root.name}\n{process.log()[-3000:]}"
                         for process in [*self.apis, *self.workers])

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.cleanup()
        for server in self.apis:
            server.cleanup()


@pytest.fixture(params=["database", "celery"])
def queue_url(request: pytest.FixtureRequest) -> str | None:
    """Each queue in turn: the database's own (None), and Celery on the session's Redis."""
    if request.param == "database":
        return None
    return str(request.getfixturevalue("redis_database"))


@pytest.fixture
def cluster(tmp_path: Path, postgresql_url: str, moto_endpoint: dict[str, Any],
            queue_url: str | None) -> Iterator[Cluster]:
    """A cluster, nothing started yet (`Cluster.start` starts two API servers and two
    workers)."""
    made = Cluster(tmp_path, postgresql_url, s3_storage(moto_endpoint), queue_url)
    try:
        yield made
    finally:
        made.cleanup()
