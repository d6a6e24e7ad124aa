"""Real `imagefactory serve` processes sharing one PostgreSQL database (and one storage
directory, as shared storage would be): they migrate it once when they start together; each
sees the images and status changes the others make; a nonce one accepted is refused by the
others; a server that starts leaves the builds of a live one alone, waits for its images, and
refuses to delete what it builds; the builds of a server that died are taken over once its
heartbeat is stale."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from imagefactory_core.builds.engine import RESTARTED
from imagefactory_core.store.database import MIGRATIONS

from tests.plugins.gate import Gate
from tests.rest.conftest import fake_tdl
from tests.server.conftest import ServerProcess, sign, start_together, wait_until

from .conftest import age_heartbeat

pytestmark = pytest.mark.slow

STARTING_TOGETHER = 4
PUBLIC = "http://imagefactory.example"  # the address clients use: a load balancer's


def base_body(name: str, **parameters: Any) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": parameters}}


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def log_lines(server: ServerProcess, path: str) -> list[str]:
    answer = server.request("GET", f"{path}/log")
    assert answer.status_code == 200, answer.text
    return answer.text.splitlines()


def test_servers_starting_together_migrate_once(shared_servers, postgresql_url):
    servers = [shared_servers() for _ in range(STARTING_TOGETHER)]
    start_together(servers)
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert query(postgresql_url, "SELECT version_num FROM alembic_version") == [(head,)]
    for server in servers:
        assert "Traceback" not in server.log() and "ERROR" not in server.log(), server.log()
    # each server's build worker joins once it has started
    wait_until(lambda: len(query(postgresql_url, "SELECT id FROM instances"))
               == STARTING_TOGETHER, 30, "every build worker's first heartbeat")

    for server in servers:  # a server that stops says so: its unfinished work is free
        server.signal(signal.SIGTERM, timeout=60)
    assert query(postgresql_url, "SELECT id FROM instances") == []


def test_servers_share_images_nonces_and_builds_and_cancel_each_others(
        shared_servers, gate: Gate, postgresql_url):
    first = shared_servers(trust_proxy_headers=True).start()
    held = first.post("/base_images", base_body("shared", **gate.parameter()))
    held_path = f"/base_images/{held['id']}"
    pid = gate.wait_held(held["id"])

    second = shared_servers(trust_proxy_headers=True).start()
    assert gate.alive(pid) and gate.pid(held["id"]) == pid
    assert [(r.event, r.image_id) for r in gate.records()] == [("start", held["id"])]
    seen = second.get(held_path)
    assert seen["status"] == "BUILDING"
    assert not any(RESTARTED in line for line in log_lines(second, held_path))

    child = second.post(f"{held_path}/target_images", {"target_image": {"target": "fakecloud"}})
    child_path = f"/target_images/{child['id']}"
    assert first.get(child_path)["status"] == "PENDING"

    # one signed request, as a load balancer hands it to the first server, then to the second
    prepared = requests.Request("POST", f"{PUBLIC}/imagefactory/base_images",
                                json=base_body("replayed"), auth=sign()).prepare()
    forwarded = {"X-Forwarded-Host": "imagefactory.example", "X-Forwarded-Proto": "http"}
    prepared.headers.update(forwarded)
    with requests.Session() as session:
        for server, expected in ((first, 202), (second, 401)):
            prepared.url = f"{server.url}/base_images"
            answer = session.send(prepared, timeout=30)
            assert answer.status_code == expected, answer.text
        assert "already used" in answer.json()["description"]
        fresh = requests.Request("POST", f"{PUBLIC}/imagefactory/base_images",
                                 json=base_body("fresh"), auth=sign(),
                                 headers=forwarded).prepare()
        fresh.url = f"{second.url}/base_images"
        assert session.send(fresh, timeout=30).status_code == 202

    gate.release(held["id"])
    assert second.wait_for(held_path)["status"] == "COMPLETE"
    built = second.wait_for(child_path)  # the second settles its job when the base completes
    assert built["status"] == "COMPLETE", built["status_detail"]
    assert first.get(child_path)["status"] == "COMPLETE"
    assert second.request("GET", f"{held_path}/raw_image").content.startswith(b"FAKEOS shared")
    # finished, an image is anyone's to delete
    assert first.request("DELETE", child_path).status_code == 204
    assert second.get(child_path)["status"] == "DELETED"
    # running, too: the worker running it, whichever it is, stops it
    cancelled = first.post("/base_images", base_body("cancelled", **gate.parameter()))
    cancelled_path = f"/base_images/{cancelled['id']}"
    cancelled_pid = gate.wait_held(cancelled["id"])
    assert second.request("DELETE", cancelled_path).status_code == 204
    assert first.wait_for(cancelled_path)["status"] == "DELETED"
    wait_until(lambda: not gate.alive(cancelled_pid), 30, "the build to be stopped")


def test_the_builds_of_a_dead_server_are_taken_over_once_its_heartbeat_is_stale(
        shared_servers, gate: Gate, postgresql_url):
    first = shared_servers().start()
    held = first.post("/base_images", base_body("orphaned", **gate.parameter()))
    held_path = f"/base_images/{held['id']}"
    orphan = gate.wait_held(held["id"])
    # started only now: a worker of its own, running beside, could have claimed the build
    second = shared_servers().start()
    first_id = (first.state_dir / "instance.id").read_text().strip()
    owner = f"SELECT owner FROM images WHERE id = '{held['id']}'"
    assert query(postgresql_url, owner) == [(first_id,)]
    first.kill_group()  # its host died: the second knows only from the heartbeat
    gate.kill_all()

    second.signal(signal.SIGTERM, timeout=60)
    second.start()  # too soon: the first's heartbeat is fresh
    assert second.get(held_path)["status"] == "BUILDING"
    assert gate.pid(held["id"]) == orphan

    age_heartbeat(postgresql_url, first_id)
    second.signal(signal.SIGTERM, timeout=60)
    second.start()
    rerun = int(wait_until(lambda: (p := gate.pid(held["id"])) != orphan and p, 30,
                           "the second server to run the build again"))
    assert gate.alive(rerun)
    gate.release(held["id"])
    done = second.wait_for(held_path)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert any(line.endswith(f"== {RESTARTED}") for line in log_lines(second, held_path))
    second_id = (second.state_dir / "instance.id").read_text().strip()
    assert query(postgresql_url, owner) == [(second_id,)]
