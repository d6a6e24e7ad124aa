"""What happens in a cluster (two API servers, two workers: `conftest.Cluster`) when a process
dies or a client changes its mind, with the database's queue and with Celery's, as
docs/scale-out.md says: a SIGKILLed worker's build is handed to the other worker and COMPLETES;
a SIGKILLed API server loses nothing; a DELETE through one API server stops the build a worker
runs for another.

Builds are held at a gate (`tests.plugins.gate`) until the test lets them go, so the test acts
while they provably run, on which worker the job row says."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from imagefactory_core.builds.engine import RESTARTED

from tests.plugins.gate import Gate
from tests.rest.conftest import fake_tdl
from tests.server.conftest import ServerProcess, wait_until

from .conftest import STALE_SECONDS, Cluster

pytestmark = pytest.mark.slow

# the dead worker's heartbeat goes stale, then a live worker's watcher (every heartbeat)
# hands its job out again
REDELIVERY_SECONDS = STALE_SECONDS + 30


def base_body(name: str, **parameters: Any) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": parameters}}


def log_lines(server: ServerProcess, path: str) -> list[str]:
    answer = server.request("GET", f"{path}/log")
    assert answer.status_code == 200, answer.text
    return answer.text.splitlines()


def test_sigkill_of_the_worker_running_a_build_hands_it_to_the_other(cluster: Cluster,
                                                                     gate: Gate):
    cluster.start()
    first, second = cluster.apis
    held = first.post("/base_images", base_body("redelivered", **gate.parameter()))
    path = f"/base_images/{held['id']}"
    orphan = gate.wait_held(held["id"])
    running = cluster.running_on(held["id"])
    (other,) = [w for w in cluster.workers if w is not running]
    assert second.get(path)["status"] == "BUILDING"

    running.kill()
    assert running.proc is not None and running.proc.returncode == -signal.SIGKILL
    rerun = int(wait_until(lambda: (pid := gate.pid(held["id"])) != orphan and pid,
                           REDELIVERY_SECONDS, "the build to run again on the other worker"))
    assert cluster.job_worker(held["id"]) == other.id
    assert cluster.query("SELECT attempts FROM jobs WHERE image_id = :id",
                         id=held["id"]) == [(2,)]
    assert second.get(path)["status"] == "BUILDING"
    assert "stopped answering; queued again" in other.log()

    gate.release(held["id"])
    built = second.wait_for(path)
    assert built["status"] == "COMPLETE", built["status_detail"]
    assert built["percent_complete"] == 100
    assert any(line.endswith(f"== {RESTARTED}") for line in log_lines(first, path))
    body = first.request("GET", f"{path}/raw_image").content
    assert body.startswith(b"FAKEOS redelivered 17\n")
    assert not gate.alive(rerun)
    assert cluster.query("SELECT image_id FROM jobs") == []


def test_sigkill_of_an_api_server_loses_nothing(cluster: Cluster, gate: Gate):
    cluster.start()
    first, second = cluster.apis
    held = first.post("/base_images", base_body("outlives-its-api", **gate.parameter()))
    held_path = f"/base_images/{held['id']}"
    pid = gate.wait_held(held["id"])
    child = first.post(f"{held_path}/target_images", {"target_image": {"target": "fakecloud"}})
    child_path = f"/target_images/{child['id']}"
    queued = first.post("/base_images", base_body("queued-by-the-dead-api"))
    queued_path = f"/base_images/{queued['id']}"

    first.kill_group()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    assert gate.alive(pid) and gate.pid(held["id"]) == pid
    assert second.get(held_path)["status"] == "BUILDING"
    assert second.wait_for(queued_path)["status"] == "COMPLETE"
    assert second.get(child_path)["status"] == "PENDING"

    gate.release(held["id"])
    for path in (held_path, child_path):
        done = second.wait_for(path)
        assert done["status"] == "COMPLETE", done["status_detail"]
    assert not any(RESTARTED in line for line in log_lines(second, held_path))
    assert all(worker.proc is not None and worker.proc.poll() is None
               for worker in cluster.workers)

    first.start()  # the same API server again, on its state directory
    assert first.get(child_path)["status"] == "COMPLETE"
    assert cluster.query("SELECT image_id FROM jobs") == []


def test_cancellation_through_another_api_server(cluster: Cluster, gate: Gate):
    cluster.start()
    first, second = cluster.apis
    held = first.post("/base_images", base_body("cancelled", **gate.parameter()))
    held_path = f"/base_images/{held['id']}"
    pid = gate.wait_held(held["id"])
    running = cluster.running_on(held["id"])
    waiting = first.post(f"{held_path}/target_images", {"target_image": {"target": "fakecloud"}})
    waiting_path = f"/target_images/{waiting['id']}"

    # a job no worker has claimed yet (it waits for its base image) leaves the queue at once
    answer = second.request("DELETE", waiting_path)
    assert answer.status_code == 204, answer.text
    assert first.get(waiting_path)["status"] == "DELETED"
    assert cluster.query("SELECT image_id FROM jobs WHERE image_id = :id",
                         id=waiting["id"]) == []

    # the running one is stopped by the worker that runs it
    answer = second.request("DELETE", held_path)
    assert answer.status_code == 204, answer.text
    deleted = first.wait_for(held_path)
    assert deleted["status"] == "DELETED", deleted["status_detail"]
    wait_until(lambda: not gate.alive(pid), 30, "the held build's command to be ended")
    assert cluster.query("SELECT image_id FROM jobs") == []
    refused = first.request("GET", f"{held_path}/raw_image")
    assert refused.status_code == 409 and "DELETED" in refused.text, refused.text

    # the worker that ran it lives on, and the workers go on taking jobs
    assert running.proc is not None and running.proc.poll() is None
    after = second.post("/base_images", base_body("after-the-cancel"))
    assert first.wait_for(f"/base_images/{after['id']}")["status"] == "COMPLETE"
