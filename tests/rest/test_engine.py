"""The build engine seen through the API: cascades, waiting on parents, bounded concurrency,
progress, logs, cancellation by DELETE, failures, and recovery after a stop or a crash.

Slow builds use FakeOS's ``fake_build_seconds``, which runs a real ``sleep`` through
``ctx.run``; each test picks a distinctive duration so it can find its own process in /proc.
"""

from __future__ import annotations

import os
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
from tests.plugins.fake_os import sleepers

from .conftest import SEED_CREDENTIALS, fake_tdl

SETTLED = ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED")
BAD_CREDENTIALS = SEED_CREDENTIALS.replace(">good<", ">wrong<")


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
                timeout: float = 20.0) -> dict[str, Any]:
    return wait_for_status(client, href, statuses or SETTLED, timeout=timeout)


def post(client: falcon.testing.TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result = client.simulate_post(path, json=body)
    assert result.status_code == 202, result.text
    return next(iter(result.json.values()))


def base_body(name: str = "f17jeos", **parameters: Any) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": parameters}}


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


def test_target_on_a_building_base_waits_pending_then_completes(client):
    base = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=1.5))
    base_href = f"/imagefactory/base_images/{base['id']}"
    wait_status(client, base_href, "BUILDING")
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    href = f"/imagefactory/target_images/{target['id']}"
    waiting = image(client, href)
    assert waiting["status"] == "PENDING"
    assert base["id"] in waiting["status_detail"]["activity"]
    assert image(client, base_href)["status"] == "BUILDING"
    done = wait_status(client, href)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert image(client, base_href)["status"] == "COMPLETE"


def test_failing_base_fails_the_waiting_target_and_provider_naming_the_parent(client):
    pushed = post(client, "/imagefactory/provider_images", {"provider_image": {
        "template": fake_tdl("fail-me"), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS, "parameters": {"fake_build_seconds": 0.5}}})
    provider = wait_status(client, f"/imagefactory/provider_images/{pushed['id']}")
    target_id = pushed["target_image_id"]
    target = image(client, f"/imagefactory/target_images/{target_id}")
    base_id = target["base_image_id"]
    base = image(client, f"/imagefactory/base_images/{base_id}")
    assert base["status"] == "FAILED"
    assert "fail-me" in base["status_detail"]["error"]
    assert target["status"] == "FAILED"
    assert base_id in target["status_detail"]["error"]
    assert "fail-me" in target["status_detail"]["error"]
    assert provider["status"] == "FAILED"
    assert target_id in provider["status_detail"]["error"]
    log = client.simulate_get(f"/imagefactory/provider_images/{pushed['id']}/log").text
    assert target_id in log


def test_base_failing_while_a_nested_target_waits_fails_it(client):
    base = post(client, "/imagefactory/base_images",
                base_body("fail-me", fake_build_seconds=0.75))
    base_href = f"/imagefactory/base_images/{base['id']}"
    wait_status(client, base_href, "BUILDING")
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    done = wait_status(client, f"/imagefactory/target_images/{target['id']}")
    assert done["status"] == "FAILED"
    assert base["id"] in done["status_detail"]["error"]
    assert done["percent_complete"] < 100


# -- concurrency, progress, logs -------------------------------------------------------------
def test_concurrency_is_bounded_and_waiting_builds_are_pending(apps):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    first = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=44.25))
    second = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=44.25))
    hrefs = [f"/imagefactory/base_images/{i['id']}" for i in (first, second)]

    def statuses() -> list[str]:
        return [image(client, h)["status"] for h in hrefs]

    wait_until(lambda: "BUILDING" in statuses() and len(sleepers(44.25)) == 1, 10,
               "one build to start")
    time.sleep(0.5)
    assert sorted(statuses()) == ["BUILDING", "PENDING"]
    assert len(sleepers(44.25)) == 1
    pending = hrefs[statuses().index("PENDING")]
    assert image(client, pending)["status_detail"]["activity"] == "Queued"
    for href in sorted(hrefs, key=lambda h: h != pending):
        assert client.simulate_delete(href).status_code == 204
    for href in hrefs:
        assert wait_status(client, href)["status"] == "DELETED"
    wait_until(lambda: not sleepers(44.25), 10, "the sleep to end")


def test_percent_complete_is_monotone_and_100_at_complete(client):
    base = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=1.0))
    assert base["percent_complete"] == 0
    href = f"/imagefactory/base_images/{base['id']}"
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = image(client, href)
        seen.append((current["status"], current["percent_complete"]))
        if current["status"] in SETTLED:
            break
        time.sleep(0.02)
    percents = [p for _, p in seen]
    assert percents == sorted(percents), seen
    assert seen[-1] == ("COMPLETE", 100), seen
    assert any(0 < p < 100 for s, p in seen if s == "BUILDING"), seen
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


def test_followed_log_streams_until_the_image_settles(client):
    base = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=0.6))
    started = time.monotonic()
    result = client.simulate_get(f"/imagefactory/base_images/{base['id']}/log",
                                 params={"follow": "true"})
    assert result.status_code == 200
    assert time.monotonic() - started < 15
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


# -- cancellation ----------------------------------------------------------------------------
def test_delete_of_a_building_image_kills_its_command_and_ends_deleted(client, storage):
    base = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=41.75))
    href = f"/imagefactory/base_images/{base['id']}"
    wait_status(client, href, "BUILDING")
    wait_until(lambda: len(sleepers(41.75)) == 1, 10, "the build's sleep to start")
    started = time.monotonic()
    result = client.simulate_delete(href)
    assert result.status_code == 204
    done = wait_status(client, href, "DELETED", "FAILED", "COMPLETE")
    assert done["status"] == "DELETED", done["status_detail"]
    assert time.monotonic() - started < 10
    assert sleepers(41.75) == []
    assert not (storage / f"{base['id']}.body").exists()
    assert client.simulate_get("/imagefactory/base_images").json == {"base_images": []}
    assert "$ sleep 41.75" in client.simulate_get(f"{href}/log").text


def test_delete_of_a_pending_image_ends_deleted_without_building(client):
    base = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=42.5))
    base_href = f"/imagefactory/base_images/{base['id']}"
    wait_status(client, base_href, "BUILDING")
    target = post(client, f"{base_href}/target_images", {"target_image": {"target": "fakecloud"}})
    href = f"/imagefactory/target_images/{target['id']}"
    assert image(client, href)["status"] == "PENDING"
    assert client.simulate_delete(href).status_code == 204
    assert image(client, href)["status"] == "DELETED"
    assert client.simulate_delete(base_href).status_code == 204
    assert wait_status(client, base_href)["status"] == "DELETED"
    assert image(client, href)["status"] == "DELETED"
    wait_until(lambda: not sleepers(42.5), 10, "the sleep to end")


def test_delete_of_a_base_with_a_target_in_progress_is_409(client):
    target = post(client, "/imagefactory/target_images", {"target_image": {
        "template": fake_tdl(), "target": "fakecloud",
        "parameters": {"fake_build_seconds": 43.25}}})
    base_href = f"/imagefactory/base_images/{target['base_image_id']}"
    href = f"/imagefactory/target_images/{target['id']}"
    wait_status(client, base_href, "BUILDING")
    result = client.simulate_delete(base_href)
    assert result.status_code == 409, result.text
    assert target["id"] in result.json["description"]
    assert image(client, base_href)["status"] == "BUILDING"
    assert image(client, href)["status"] == "PENDING"
    assert client.simulate_delete(href).status_code == 204
    assert client.simulate_delete(base_href).status_code == 204
    assert wait_status(client, base_href)["status"] == "DELETED"
    wait_until(lambda: not sleepers(43.25), 10, "the sleep to end")


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
def test_stop_fails_running_builds_and_restart_requeues_queued_ones(apps, tmp_path):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    running = post(client, "/imagefactory/base_images", base_body(fake_build_seconds=45.5))
    wait_status(client, f"/imagefactory/base_images/{running['id']}", "BUILDING")
    wait_until(lambda: len(sleepers(45.5)) == 1, 10, "the build's sleep to start")
    queued = post(client, "/imagefactory/base_images", base_body())
    assert image(client, f"/imagefactory/base_images/{queued['id']}")["status"] == "PENDING"

    started = time.monotonic()
    client.app.services.engine.shutdown(timeout=20)
    assert time.monotonic() - started < 15
    assert sleepers(45.5) == []
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
    assert "credentials are never stored" in pushed["status_detail"]["error"]
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


def test_a_slow_push_does_not_hold_up_builds(apps):
    client = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1,
                                            max_concurrent_uploads=1))
    target_id = complete_target(client)
    slow = push(client, target_id, fake_push_seconds=48.5)
    wait_until(lambda: sleepers(48.5), 10, "the push to start")
    assert image(client, f"/imagefactory/provider_images/{slow}")["status"] == "BUILDING"
    base = post(client, "/imagefactory/base_images", base_body())
    assert wait_status(client, f"/imagefactory/base_images/{base['id']}")["status"] == "COMPLETE"
    href = f"/imagefactory/provider_images/{slow}"
    assert client.simulate_delete(href).status_code == 204
    assert wait_status(client, href)["status"] == "DELETED"
    assert image(client, href)["identifier_on_provider"] is None
    wait_until(lambda: not sleepers(48.5), 10, "the push's command to be killed")


def test_a_repeated_delete_of_a_queued_provider_delete_still_deletes_it(apps):
    client = falcon.testing.TestClient(apps(max_concurrent_uploads=1))
    target_id = complete_target(client)
    done = push(client, target_id)
    href = f"/imagefactory/provider_images/{done}"
    cloud_id = wait_status(client, href)["identifier_on_provider"]
    assert cloud_id in fake_cloud.CLOUD
    blocker = push(client, target_id, fake_push_seconds=47.5)
    wait_until(lambda: sleepers(47.5), 10, "the blocking push to start")

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


def test_a_requeued_build_starts_from_a_clean_work_directory(apps, tmp_path):
    config = make_config(tmp_path)
    store = crashed_store(config)
    tdl = fake_tdl("leftovers")
    created = store.create(ImageKind.BASE, redacted_template=redact_template(tdl),
                           parameters={"fake_build_seconds": 49.5},
                           sealed=sealed_plan(tdl, fake_build_seconds=49.5))
    store.update(created.id, status=Status.BUILDING)
    store.engine.dispose()
    leftover = config.work_dir / created.id / "half-installed-root"
    leftover.mkdir(parents=True)

    client = falcon.testing.TestClient(apps())
    href = f"/imagefactory/base_images/{created.id}"
    wait_until(lambda: sleepers(49.5), 10, "the re-queued build to start")
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


def test_a_second_service_on_the_same_state_directory_refuses_to_start(apps, tmp_path):
    """It would take the first one's running builds for a crash's leftovers and 'recover'
    them. The lock names its holder, and goes with a service that stops (or dies)."""
    first = falcon.testing.TestClient(apps(max_concurrent_local_sessions=1))
    running = post(first, "/imagefactory/base_images", base_body(fake_build_seconds=46.5))
    wait_status(first, f"/imagefactory/base_images/{running['id']}", "BUILDING")
    with pytest.raises(InvalidRequest) as refused:
        apps()
    assert f"is in use by imagefactory pid {os.getpid()}" in str(refused.value)
    assert image(first, f"/imagefactory/base_images/{running['id']}")["status"] == "BUILDING"
    first.app.services.engine.shutdown(timeout=20)
    second = falcon.testing.TestClient(apps())
    assert second.simulate_get("/imagefactory").status_code == 200
