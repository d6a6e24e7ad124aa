"""The build engine seen through the API: cascades, waiting on parents, bounded concurrency,
progress, logs, cancellation by DELETE, failures, deletes on the provider, and recovery after a
stop or a crash.

Slow builds are held at a gate (`tests.plugins.gate`): FakeOS and fakecloud wait, in a real
command run through ``ctx.run``, until the test lets them go. Tests wait for events (a hold
started, a status reached), never for a duration, and see only their own processes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest
from imagefactory_core.api.app import create_app
from imagefactory_core.builds.engine import PUSH_INTERRUPTED, RESTARTED
from imagefactory_core.builds.job import Plan
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.model import ImageKind, Status
from imagefactory_core.plugins import load_plugins
from imagefactory_core.store import ImageStore, Sealer, open_database
from imagefactory_core.tdl import redact_template
from imagefactory_core.testing import make_config, plugin_parameters, wait_for_status

from tests.plugins import fake_cloud, fake_os

from .conftest import SEED_CREDENTIALS, fake_tdl

SETTLED = ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED")
BAD_CREDENTIALS = SEED_CREDENTIALS.replace(">good<", ">Not-The-Password-3f9<")


def fake_plugins():  # type: ignore[no-untyped-def]
    return load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud)])


def image(client: falcon.testing.TestClient, href: str) -> dict[str, Any]:
    result = client.simulate_get(href)
    assert result.status_code == 200, result.text
    return next(iter(result.json.values()))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def wait_status(client: falcon.testing.TestClient, href: str, *statuses: str,
                timeout: float = 60.0) -> dict[str, Any]:
    return wait_for_status(client, href, statuses or SETTLED, timeout=timeout)


def post(client: falcon.testing.TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result = client.simulate_post(path, json=body)
    assert result.status_code == 202, result.text
    return next(iter(result.json.values()))


def base_body(name: str = "f17jeos", **parameters: Any) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": parameters}}


def log_of(client: falcon.testing.TestClient, href: str) -> str:
    result = client.simulate_get(f"{href}/log")
    assert result.status_code == 200, result.text
    return result.text


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Callable[..., falcon.App]]:
    """Make apps with config overrides; every engine is stopped at the end."""
    made: list[falcon.App] = []

    def make(root: Path | None = None, **overrides: Any) -> falcon.App:
        app = create_app(make_config(root or tmp_path, **overrides), fake_plugins())
        made.append(app)
        return app

    yield make
    for app in made:
        app.services.engine.shutdown(timeout=20)


# -- cascades --------------------------------------------------------------------------------
def test_target_request_with_a_template_builds_the_base_first(client):
    target = post(client, "/imagefactory/target_images",
                  {"target_image": {"template": fake_tdl(), "target": "fake"}})
    assert target["target"] == "fakecloud"
    base_id = target["base_image_id"]
    assert base_id
    done = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    base = image(client, f"/imagefactory/base_images/{base_id}")
    assert base["status"] == "COMPLETE"
    children = base["target_images"]["target_images"]
    assert [c["target_image"]["id"] for c in children] == [target["id"]]
    assert 'name="fake-cloud-agent-1.0-1.x86_64"' in done["icicle"]


def test_provider_request_with_a_template_builds_base_and_target_first(client):
    pushed = post(client, "/imagefactory/provider_images", {"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS}})
    done = wait_status(client, f"/imagefactory/provider_images/{pushed['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    target = image(client, f"/imagefactory/target_images/{done['target_image_id']}")
    assert target["status"] == "COMPLETE"
    base = image(client, f"/imagefactory/base_images/{target['base_image_id']}")
    assert base["status"] == "COMPLETE"
    assert fake_cloud.CLOUD[done["identifier_on_provider"]]["provider"] == "p1"


def test_target_on_a_building_base_waits_pending_then_completes(client, gate):
    base = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    base_href = f"/imagefactory/base_images/{base['id']}"
    gate.wait_held(base["id"])
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    href = f"/imagefactory/target_images/{target['id']}"
    waiting = image(client, href)
    assert waiting["status"] == "PENDING"
    assert base["id"] in waiting["status_detail"]["activity"]
    assert image(client, base_href)["status"] == "BUILDING"
    gate.release(base["id"])
    done = wait_status(client, href)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert image(client, base_href)["status"] == "COMPLETE"


def test_failing_base_fails_the_waiting_target_and_provider_naming_the_parent(client, gate):
    """Each image's log says why it failed before its status does (a log follower stops at
    the final status): the lines are read after the status was seen."""
    pushed = post(client, "/imagefactory/provider_images", {"provider_image": {
        "template": fake_tdl("fail-me"), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS, "parameters": gate.parameter()}})
    target_id = pushed["target_image_id"]
    base_id = image(client, f"/imagefactory/target_images/{target_id}")["base_image_id"]
    gate.wait_held(base_id)
    assert image(client, f"/imagefactory/provider_images/{pushed['id']}")["status"] == "PENDING"
    gate.release(base_id)
    provider = wait_status(client, f"/imagefactory/provider_images/{pushed['id']}")
    target = image(client, f"/imagefactory/target_images/{target_id}")
    base = image(client, f"/imagefactory/base_images/{base_id}")
    assert base["status"] == "FAILED"
    assert "fail-me" in base["status_detail"]["error"]
    assert target["status"] == "FAILED"
    assert base_id in target["status_detail"]["error"]
    assert "fail-me" in target["status_detail"]["error"]
    assert provider["status"] == "FAILED"
    assert target_id in provider["status_detail"]["error"]
    for collection, done in (("base_images", base), ("target_images", target),
                             ("provider_images", provider)):
        lines = log_of(client, f"/imagefactory/{collection}/{done['id']}").splitlines()
        assert lines[-2].endswith(f"FAILED: {done['status_detail']['error']}"), lines
        assert lines[-1].endswith("== FAILED"), lines


def test_base_failing_while_a_nested_target_waits_fails_it(client, gate):
    base = post(client, "/imagefactory/base_images", base_body("fail-me", **gate.parameter()))
    base_href = f"/imagefactory/base_images/{base['id']}"
    gate.wait_held(base["id"])
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    assert image(client, f"/imagefactory/target_images/{target['id']}")["status"] == "PENDING"
    gate.release(base["id"])
    done = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert done["status"] == "FAILED"
    assert base["id"] in done["status_detail"]["error"]
    assert done["percent_complete"] < 100


# -- concurrency, progress, logs -------------------------------------------------------------
def test_concurrency_is_bounded_and_waiting_builds_are_pending(apps, gate):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    first = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    second = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    gate.wait_held(first["id"])
    second_href = f"/imagefactory/base_images/{second['id']}"
    waiting = image(client, second_href)
    assert waiting["status"] == "PENDING"
    assert waiting["status_detail"]["activity"] == "Queued"
    assert image(client, f"/imagefactory/base_images/{first['id']}")["status"] == "BUILDING"
    gate.release(first["id"])
    gate.wait_held(second["id"])
    gate.release(second["id"])
    for done in (first, second):
        assert wait_status(client, f"/imagefactory/base_images/{done['id']}")["status"] \
            == "COMPLETE"
    records = [(r.event, r.image_id) for r in gate.records()]
    assert records == [("start", first["id"]), ("end", first["id"]),
                       ("start", second["id"]), ("end", second["id"])]


def test_percent_complete_is_monotone_and_100_at_complete(client, gate):
    base = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    assert base["percent_complete"] == 0
    href = f"/imagefactory/base_images/{base['id']}"
    seen: list[tuple[str, int]] = []

    def observe() -> bool:
        current = image(client, href)
        seen.append((current["status"], current["percent_complete"]))
        return current["status"] in SETTLED

    gate.wait_held(base["id"])
    observe()
    gate.release(base["id"])
    wait_until(observe, 60, "the build to settle")
    percents = [p for _, p in seen]
    assert percents == sorted(percents), seen
    assert seen[-1] == ("COMPLETE", 100), seen
    assert seen[0][0] == "BUILDING" and 0 < seen[0][1] < 100, seen
    assert all(p < 100 for s, p in seen if s != "COMPLETE"), seen


def test_each_image_has_its_own_log_with_the_plugins_lines(client):
    target = post(client, "/imagefactory/target_images", {"target_image": {
        "template": fake_tdl(), "target": "fakecloud",
        "parameters": {"fake_build_seconds": 0.2}}})
    done = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert done["status"] == "COMPLETE"
    base_log = client.simulate_get(f"/imagefactory/base_images/{target['base_image_id']}/log")
    assert base_log.status_code == 200
    assert base_log.headers["content-type"].startswith("text/plain")
    for line in ("== Pretending to install", "$ sleep 0.2", "wrote 4194304 bytes",
                 "== Writing disk", "== COMPLETE"):
        assert line in base_log.text, line
    nested = (f"/imagefactory/base_images/{target['base_image_id']}/target_images/"
              f"{target['id']}/log")
    target_log = client.simulate_get(nested)
    assert target_log.status_code == 200
    assert "== Copying disk" in target_log.text
    assert "fakecloud" in target_log.text
    assert "wrote 4194304 bytes" not in target_log.text
    assert "Copying disk" not in base_log.text
    assert target_log.text == client.simulate_get(
        f"/imagefactory/target_images/{target['id']}/log").text
    assert done["log"].endswith(f"/imagefactory/target_images/{target['id']}/log")


def test_followed_log_streams_until_the_image_settles(client, gate):
    base = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))

    def release_when_held() -> None:
        gate.wait_held(base["id"])
        gate.release(base["id"])

    releaser = threading.Thread(target=release_when_held, daemon=True)
    releaser.start()
    result = client.simulate_get(f"/imagefactory/base_images/{base['id']}/log",
                                 params={"follow": "true"})
    releaser.join(60)
    assert result.status_code == 200
    assert "wrote 4194304 bytes" in result.text
    assert result.text.rstrip().endswith("== COMPLETE"), result.text
    assert image(client, f"/imagefactory/base_images/{base['id']}")["status"] == "COMPLETE"


def test_failed_build_keeps_its_log_and_reason(client, storage):
    base = post(client, "/imagefactory/base_images", base_body("fail-me"))
    done = wait_status(client, f"/imagefactory/base_images/{base['id']}")
    assert done["status"] == "FAILED"
    assert done["status_detail"]["error"] == "FakeOS was asked to fail: template name is fail-me"
    log = client.simulate_get(f"/imagefactory/base_images/{base['id']}/log").text
    assert "FAILED: FakeOS was asked to fail" in log
    assert not (storage / f"{base['id']}.body").exists()


# -- failures outside the plugin -------------------------------------------------------------
def test_a_result_the_store_cannot_record_fails_the_build_and_its_waiting_target(apps, gate):
    """The plugin returns a property the database cannot take: recording COMPLETE raises in
    the engine, outside the plugin call. The image still ends FAILED saying why (the log
    first), the target waiting for it fails naming it, and the only build slot is free."""
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    base = post(client, "/imagefactory/base_images",
                base_body("unstorable-result", **gate.parameter()))
    href = f"/imagefactory/base_images/{base['id']}"
    gate.wait_held(base["id"])
    target = post(client, f"{href}/target_images", {"target_image": {"target": "fakecloud"}})
    gate.release(base["id"])
    done = wait_status(client, href)
    assert done["status"] == "FAILED", done["status_detail"]
    assert done["status_detail"]["error"].startswith(
        "internal error: the result could not be recorded: TypeError: "), done
    lines = log_of(client, href).splitlines()
    assert lines[-2].endswith(f"FAILED: {done['status_detail']['error']}"), lines
    assert lines[-1].endswith("== FAILED"), lines
    waiting = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert waiting["status"] == "FAILED"
    assert base["id"] in waiting["status_detail"]["error"]
    after = post(client, "/imagefactory/base_images", base_body())
    assert wait_status(client, f"/imagefactory/base_images/{after['id']}")["status"] \
        == "COMPLETE"


@pytest.mark.parametrize(("name", "status", "error"), [
    ("broken-log", "COMPLETE", None),
    ("broken-log-then-fail", "FAILED", "FakeOS failed after its log broke"),
])
def test_a_log_the_store_cannot_write_still_ends_the_build(apps, caplog, name, status, error):
    """The image's log becomes unwritable (as on a full or failing disk) at the end of the
    build: the engine's own log writes raise. The build still ends with its real outcome,
    the service log says the build log could not be written, and the slot is free."""
    caplog.set_level(logging.ERROR)
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    broken = post(client, "/imagefactory/base_images", base_body(name))
    done = wait_status(client, f"/imagefactory/base_images/{broken['id']}")
    assert done["status"] == status, done["status_detail"]
    assert done["status_detail"]["error"] == error
    assert any("could not write the end of the build log" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    after = post(client, "/imagefactory/base_images", base_body())
    assert wait_status(client, f"/imagefactory/base_images/{after['id']}")["status"] \
        == "COMPLETE"


class RefusingNotifier:
    """Status callbacks that cannot even be queued (the notifier itself is broken)."""

    def notify(self, urls: list[str], document: dict[str, Any]) -> None:
        raise RuntimeError("can't start new thread")

    def drain(self, timeout: float = 5.0) -> None:
        pass


def test_callbacks_that_cannot_be_queued_change_nothing_about_the_build(apps, caplog):
    caplog.set_level(logging.ERROR)
    client = falcon.testing.TestClient(apps(outbound_allow=["127.0.0.1"]))
    client.app.services.engine.notifier = RefusingNotifier()
    target = post(client, "/imagefactory/target_images", {"target_image": {
        "template": fake_tdl(), "target": "fakecloud",
        "parameters": {"callbacks": ["http://127.0.0.1:9/hook"]}}})
    done = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert any("could not queue the status callbacks" in r.getMessage()
               for r in caplog.records)


# -- cancellation ----------------------------------------------------------------------------
def test_delete_of_a_building_image_kills_its_command_and_ends_deleted(client, storage, gate):
    base = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    href = f"/imagefactory/base_images/{base['id']}"
    pid = gate.wait_held(base["id"])
    assert image(client, href)["status"] == "BUILDING"
    result = client.simulate_delete(href)
    assert result.status_code == 204
    done = wait_status(client, href)
    assert done["status"] == "DELETED", done["status_detail"]
    assert not gate.alive(pid)
    assert not (storage / f"{base['id']}.body").exists()
    assert client.simulate_get("/imagefactory/base_images").json == {"base_images": []}
    assert "$ sh -c" in log_of(client, href)


def test_delete_of_a_pending_image_ends_deleted_without_building(client, gate):
    base = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    base_href = f"/imagefactory/base_images/{base['id']}"
    pid = gate.wait_held(base["id"])
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    href = f"/imagefactory/target_images/{target['id']}"
    assert image(client, href)["status"] == "PENDING"
    assert client.simulate_delete(href).status_code == 204
    assert image(client, href)["status"] == "DELETED"
    assert client.simulate_delete(base_href).status_code == 204
    assert wait_status(client, base_href)["status"] == "DELETED"
    assert image(client, href)["status"] == "DELETED"
    assert not gate.alive(pid)


def test_delete_of_a_base_with_a_target_in_progress_is_409(client, gate):
    target = post(client, "/imagefactory/target_images", {"target_image": {
        "template": fake_tdl(), "target": "fakecloud", "parameters": gate.parameter()}})
    base_href = f"/imagefactory/base_images/{target['base_image_id']}"
    href = f"/imagefactory/target_images/{target['id']}"
    gate.wait_held(target["base_image_id"])
    result = client.simulate_delete(base_href)
    assert result.status_code == 409, result.text
    assert target["id"] in result.json["description"]
    assert image(client, base_href)["status"] == "BUILDING"
    assert image(client, href)["status"] == "PENDING"
    assert client.simulate_delete(href).status_code == 204
    assert client.simulate_delete(base_href).status_code == 204
    assert wait_status(client, base_href)["status"] == "DELETED"
    assert gate.alive_pids() == []


def test_provider_image_fails_on_bad_credentials_with_the_plugins_message(client):
    pushed = post(client, "/imagefactory/provider_images", {"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "p1",
        "credentials": BAD_CREDENTIALS}})
    done = wait_status(client, f"/imagefactory/provider_images/{pushed['id']}")
    assert done["status"] == "FAILED"
    assert "fakecloud refused the credentials" in done["status_detail"]["error"]
    assert done["identifier_on_provider"] is None
    target = image(client, f"/imagefactory/target_images/{pushed['target_image_id']}")
    assert target["status"] == "COMPLETE"
    log = client.simulate_get(f"/imagefactory/provider_images/{pushed['id']}/log").text
    assert "fakecloud refused the credentials" in log


# -- stopping and restarting -----------------------------------------------------------------
def test_stop_fails_running_builds_and_restart_requeues_queued_ones(apps, gate):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    running = post(client, "/imagefactory/base_images", base_body(**gate.parameter()))
    pid = gate.wait_held(running["id"])
    queued = post(client, "/imagefactory/base_images", base_body())
    assert image(client, f"/imagefactory/base_images/{queued['id']}")["status"] == "PENDING"

    client.app.services.engine.shutdown(timeout=20)
    assert not gate.alive(pid)
    stopped = image(client, f"/imagefactory/base_images/{running['id']}")
    assert stopped["status"] == "FAILED"
    assert "service was stopped" in stopped["status_detail"]["error"]
    assert image(client, f"/imagefactory/base_images/{queued['id']}")["status"] == "PENDING"

    again = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    done = wait_status(again, f"/imagefactory/base_images/{queued['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert "re-queued" in again.simulate_get(
        f"/imagefactory/base_images/{queued['id']}/log").text
    still = image(again, f"/imagefactory/base_images/{running['id']}")
    assert still["status"] == "FAILED"
    assert "service was stopped" in still["status_detail"]["error"]


def test_crash_leftovers_are_requeued_or_failed_on_start(apps, tmp_path):
    """Records a crashed process left behind (written straight into the store) are picked up by
    the next app on the same state directory: nothing stays NEW/PENDING/BUILDING."""
    config = make_config(tmp_path)
    store = ImageStore(open_database(config.db_url), config.storage_dir,
                       Sealer(config.secret_key_file))
    tdl = fake_tdl("crashed")

    def record(kind: ImageKind, status: Status, **links: str) -> str:
        created = store.create(kind, redacted_template=redact_template(tdl), parameters={},
                               sealed=sealed_plan(tdl), **links)
        store.update(created.id, status=status, percent_complete=40, activity="Installing")
        return created.id

    building = record(ImageKind.BASE, Status.BUILDING)
    store.body_path(building).write_bytes(b"half a disk")
    waiting = record(ImageKind.TARGET, Status.PENDING, base_image_id=building, target="fakecloud")
    fresh = record(ImageKind.BASE, Status.NEW)
    complete_target = record(ImageKind.TARGET, Status.COMPLETE, base_image_id=fresh,
                             target="fakecloud")
    pushing = record(ImageKind.PROVIDER, Status.BUILDING, target_image_id=complete_target,
                     target="fakecloud", provider="p1")
    deleting = record(ImageKind.BASE, Status.DELETING)
    store.engine.dispose()

    client = falcon.testing.TestClient(apps())
    for image_id, collection in ((building, "base_images"), (waiting, "target_images"),
                                 (fresh, "base_images")):
        done = wait_status(client, f"/imagefactory/{collection}/{image_id}")
        assert done["status"] == "COMPLETE", (collection, done["status_detail"])
        assert done["percent_complete"] == 100
    rebuilt = client.simulate_get(f"/imagefactory/base_images/{building}/raw_image")
    assert rebuilt.content.startswith(b"FAKEOS crashed 17\n")
    assert RESTARTED in client.simulate_get(f"/imagefactory/base_images/{building}/log").text

    pushed = image(client, f"/imagefactory/provider_images/{pushing}")
    assert pushed["status"] == "FAILED"
    assert pushed["status_detail"]["error"] == PUSH_INTERRUPTED
    assert "not run again" in pushed["status_detail"]["error"]
    assert image(client, f"/imagefactory/base_images/{deleting}")["status"] == "DELETED"
    assert image(client, f"/imagefactory/target_images/{complete_target}")["status"] \
        == "COMPLETE"
    for collection in ("base_images", "target_images", "provider_images"):
        for entry in client.simulate_get(f"/imagefactory/{collection}").json[collection]:
            current = image(client, f"/imagefactory/{collection}/{entry[collection[:-1]]['id']}")
            assert current["status"] not in ("NEW", "PENDING", "BUILDING"), current


# -- pushes ----------------------------------------------------------------------------------
def push(client: falcon.testing.TestClient, target_id: str, **parameters: Any) -> str:
    return post(client, f"/imagefactory/target_images/{target_id}/provider_images",
                {"provider_image": {"provider": "p1", "credentials": SEED_CREDENTIALS,
                                    "parameters": parameters}})["id"]


def complete_target(client: falcon.testing.TestClient) -> str:
    target = post(client, "/imagefactory/target_images",
                  {"target_image": {"template": fake_tdl(), "target": "fakecloud"}})
    assert wait_status(client, f"/imagefactory/target_images/{target['id']}")["status"] \
        == "COMPLETE"
    return str(target["id"])


def test_a_slow_push_does_not_hold_up_builds(apps, gate):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1,
                                            max_concurrent_uploads=1))
    target_id = complete_target(client)
    slow = push(client, target_id, **gate.parameter())
    pid = gate.wait_held(slow, "push")
    assert image(client, f"/imagefactory/provider_images/{slow}")["status"] == "BUILDING"
    base = post(client, "/imagefactory/base_images", base_body())
    assert wait_status(client, f"/imagefactory/base_images/{base['id']}")["status"] == "COMPLETE"
    href = f"/imagefactory/provider_images/{slow}"
    assert client.simulate_delete(href).status_code == 204
    assert wait_status(client, href)["status"] == "DELETED"
    assert image(client, href)["identifier_on_provider"] is None
    assert not gate.alive(pid)


def test_a_repeated_delete_of_a_queued_provider_delete_still_deletes_it(apps, gate):
    client = falcon.testing.TestClient(apps(max_concurrent_uploads=1))
    target_id = complete_target(client)
    done = push(client, target_id)
    href = f"/imagefactory/provider_images/{done}"
    cloud_id = wait_status(client, href)["identifier_on_provider"]
    assert cloud_id in fake_cloud.CLOUD
    blocker = push(client, target_id, **gate.parameter())
    gate.wait_held(blocker, "push")

    body = {"provider_image": {"provider": "p1", "credentials": SEED_CREDENTIALS}}
    for _ in range(2):  # a client retrying its DELETE
        assert client.simulate_delete(href, json=body).status_code == 204
        assert image(client, href)["status"] == "DELETING"
    assert client.simulate_delete(f"/imagefactory/provider_images/{blocker}").status_code == 204
    assert wait_status(client, href)["status"] == "DELETED"
    assert cloud_id not in fake_cloud.CLOUD


def sealed_plan(tdl: str, **fake_os_parameters: Any) -> str:
    """The plan the service would have sealed into a FakeOS/fakecloud record."""
    return Plan(template=tdl, os_plugin="FakeOS", cloud_plugin="FakeCloud", target="fakecloud",
                provider="p1",
                parameters={"FakeOS": plugin_parameters(fake_os, fake_os_parameters),
                            "FakeCloud": plugin_parameters(fake_cloud)}).to_json()


def crashed_store(config: Any) -> ImageStore:
    return ImageStore(open_database(config.db_url), config.storage_dir,
                      Sealer(config.secret_key_file))


def test_a_requeued_build_starts_from_a_clean_work_directory(apps, tmp_path, gate):
    config = make_config(tmp_path)
    store = crashed_store(config)
    tdl = fake_tdl("leftovers")
    created = store.create(ImageKind.BASE, redacted_template=redact_template(tdl),
                           parameters=gate.parameter(),
                           sealed=sealed_plan(tdl, **gate.parameter()))
    store.update(created.id, status=Status.BUILDING)
    store.engine.dispose()
    leftover = config.work_dir / created.id / "half-installed-root"
    leftover.mkdir(parents=True)

    client = falcon.testing.TestClient(apps())
    href = f"/imagefactory/base_images/{created.id}"
    gate.wait_held(created.id)
    assert image(client, href)["status"] == "BUILDING"
    assert (config.work_dir / created.id).is_dir()
    assert not leftover.exists()
    assert client.simulate_delete(href).status_code == 204
    assert wait_status(client, href)["status"] == "DELETED"


def test_unreadable_secrets_fail_the_build_but_the_service_starts(apps, tmp_path):
    config = make_config(tmp_path)
    store = crashed_store(config)
    tdl = fake_tdl("lost-key")
    created = store.create(ImageKind.BASE, redacted_template=redact_template(tdl),
                           parameters={}, sealed=sealed_plan(tdl))
    store.update(created.id, status=Status.BUILDING)
    store.engine.dispose()
    config.secret_key_file.unlink()  # an operator replaced the state directory's key

    client = falcon.testing.TestClient(apps())
    assert client.simulate_get("/imagefactory").status_code == 200
    done = image(client, f"/imagefactory/base_images/{created.id}")
    assert done["status"] == "FAILED"
    assert "secret.key" in done["status_detail"]["error"]
    fresh = post(client, "/imagefactory/base_images", base_body())
    assert wait_status(client, f"/imagefactory/base_images/{fresh['id']}")["status"] \
        == "COMPLETE"


def test_a_second_service_on_the_same_state_directory_refuses_to_start(apps, gate):
    """It would take the first one's running builds for a crash's leftovers and 'recover'
    them. The lock names its holder, and goes with a service that stops (or dies)."""
    first = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    running = post(first, "/imagefactory/base_images", base_body(**gate.parameter()))
    gate.wait_held(running["id"])
    with pytest.raises(InvalidRequest) as refused:
        apps()
    assert f"is in use by imagefactory pid {os.getpid()}" in str(refused.value)
    assert image(first, f"/imagefactory/base_images/{running['id']}")["status"] == "BUILDING"
    first.app.services.engine.shutdown(timeout=20)
    second = falcon.testing.TestClient(apps())
    assert second.simulate_get("/imagefactory").status_code == 200


# -- deleting provider images ----------------------------------------------------------------
def delete_body(credentials: str = SEED_CREDENTIALS) -> dict[str, Any]:
    return {"provider_image": {"provider": "p1", "credentials": credentials}}


def test_a_provider_delete_naming_a_cloud_without_credentials_is_a_400_and_changes_nothing(
        client):
    """A body-less DELETE forgets the image (tests/rest/test_migration_rest.py); one that
    names the cloud meant to delete it there."""
    target_id = complete_target(client)
    href = f"/imagefactory/provider_images/{push(client, target_id)}"
    cloud_id = wait_status(client, href)["identifier_on_provider"]
    result = client.simulate_delete(href, json={"provider_image": {"provider": "p1"}})
    assert result.status_code == 400, result.text
    assert result.json["description"] == (
        f"provider image {href.rsplit('/', 1)[1]} is on fakecloud as {cloud_id}: give "
        "'credentials' (and 'provider', 'target') to delete it there, or none of them to "
        "forget the image and leave it on the cloud")
    kept = image(client, href)
    assert kept["status"] == "COMPLETE"
    assert kept["identifier_on_provider"] == cloud_id
    assert cloud_id in fake_cloud.CLOUD


def test_deleting_a_queued_push_never_pushes_it(apps, gate):
    """A push still waiting for an upload slot is deleted at once, without credentials: it
    was never on the cloud."""
    client = falcon.testing.TestClient(apps(max_concurrent_uploads=1))
    target_id = complete_target(client)
    blocker = push(client, target_id, **gate.parameter())
    gate.wait_held(blocker, "push")
    queued = push(client, target_id, marker="queued")
    href = f"/imagefactory/provider_images/{queued}"
    assert image(client, href)["status"] == "PENDING"
    in_cloud = set(fake_cloud.CLOUD)
    assert client.simulate_delete(href).status_code == 204
    assert image(client, href)["status"] == "DELETED"
    gate.release(blocker, "push")
    assert wait_status(client, f"/imagefactory/provider_images/{blocker}")["status"] \
        == "COMPLETE"
    assert image(client, href)["status"] == "DELETED"
    assert image(client, href)["identifier_on_provider"] is None
    assert len(set(fake_cloud.CLOUD) - in_cloud) == 1  # the blocker's image alone
    assert not [r for r in gate.records() if r.image_id == queued]


def test_deleting_a_push_that_never_reached_the_cloud_needs_no_credentials(client):
    target_id = complete_target(client)
    href = f"/imagefactory/provider_images/{push_with(client, target_id, BAD_CREDENTIALS)}"
    failed = wait_status(client, href)
    assert failed["status"] == "FAILED"
    assert failed["identifier_on_provider"] is None
    assert client.simulate_delete(href).status_code == 204
    deleted = image(client, href)
    assert deleted["status"] == "DELETED"
    assert deleted["status_detail"]["activity"] == "Deleted (it was never on the provider)"


def test_a_delete_the_cloud_refuses_is_deletefailed_and_can_be_retried(client):
    target_id = complete_target(client)
    href = f"/imagefactory/provider_images/{push(client, target_id)}"
    cloud_id = wait_status(client, href)["identifier_on_provider"]

    assert client.simulate_delete(href, json=delete_body(BAD_CREDENTIALS)).status_code == 204
    refused = wait_status(client, href)
    assert refused["status"] == "DELETEFAILED", refused["status_detail"]
    assert refused["status_detail"]["error"] == (
        "fakecloud refused the credentials: wrong username or password")
    assert refused["identifier_on_provider"] == cloud_id
    assert cloud_id in fake_cloud.CLOUD
    lines = log_of(client, href).splitlines()
    assert lines[-2].endswith(f"FAILED: {refused['status_detail']['error']}"), lines
    assert lines[-1].endswith("== DELETEFAILED"), lines

    assert client.simulate_delete(href, json=delete_body()).status_code == 204
    assert wait_status(client, href)["status"] == "DELETED"
    assert cloud_id not in fake_cloud.CLOUD


def push_with(client: falcon.testing.TestClient, target_id: str, credentials: str) -> str:
    return post(client, f"/imagefactory/target_images/{target_id}/provider_images",
                {"provider_image": {"provider": "p1", "credentials": credentials}})["id"]
