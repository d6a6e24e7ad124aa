"""`parameters.callbacks`: a PUT of the image JSON to each URL on every status change, received
here by real HTTP servers on 127.0.0.1: Basic auth from the URL's user-info (redacted wherever
the URL is shown), retries on server errors, and a dead receiver never holding up a build or
another receiver's callbacks."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from imagefactory_core.testing import make_config, wait_for_status

from tests.receivers import DeadReceiver, Receiver

from .conftest import SEED_CREDENTIALS, fake_tdl

CALLBACK_TIMEOUT = 2.0
DEAD_TIMEOUT = 600.0  # longer than any wait of a test: a PUT to a dead receiver never ends


@pytest.fixture
def imagefactory_config(tmp_path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, callback_timeout=CALLBACK_TIMEOUT, callback_retries=2,
                       outbound_allow=["127.0.0.1"])


def post_base(client, **parameters: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = client.simulate_post("/imagefactory/base_images", json={
        "base_image": {"template": fake_tdl(), "parameters": parameters}})
    assert result.status_code == 202, result.text
    return result.json["base_image"]


def test_every_status_change_is_put_with_basic_auth_from_the_url(client, receiver):
    url = receiver.url("/hooks/one?tag=x", "builder:cb-pass-4711")
    shown = f"http://*****@127.0.0.1:{receiver.port}/*****"
    base = post_base(client, callbacks=[url], fake_build_seconds=0.2)
    assert base["parameters"]["callbacks"] == [shown]
    href = f"/imagefactory/base_images/{base['id']}"
    done = wait_for_status(client, href)
    assert done["status"] == "COMPLETE"
    receiver.wait_for("COMPLETE")
    assert receiver.statuses() == ["PENDING", "BUILDING", "COMPLETE"]
    expected_auth = "Basic " + base64.b64encode(b"builder:cb-pass-4711").decode()
    for request in receiver.requests:
        assert request["path"] == "/hooks/one?tag=x"
        assert request["authorization"] == expected_auth
        assert request["content_type"] == "application/json"
        assert b"cb-pass-4711" not in request["raw"]
        sent = request["document"]["base_image"]
        assert sent["id"] == base["id"]
        assert sent["href"].endswith(f"/imagefactory/base_images/{base['id']}")
        assert sent["parameters"]["callbacks"] == [shown]
        assert {"_type", "status", "status_detail", "percent_complete", "icicle",
                "template"} <= set(sent)
    final = receiver.requests[-1]["document"]["base_image"]
    assert final["percent_complete"] == 100
    assert final["icicle"] == done["icicle"]
    assert client.simulate_get(href).json["base_image"]["parameters"]["callbacks"] == [shown]
    for where in (client.simulate_get(href).text, client.simulate_get(f"{href}/log").text,
                  client.simulate_get("/imagefactory/base_images").text):
        assert "cb-pass-4711" not in where


def test_each_image_of_a_cascade_reports_to_the_callbacks(client, receiver):
    result = client.simulate_post("/imagefactory/target_images", json={"target_image": {
        "template": fake_tdl(), "target": "fakecloud",
        "parameters": {"callbacks": receiver.url("/cascade")}}})
    assert result.status_code == 202, result.text
    target = result.json["target_image"]
    assert wait_for_status(client, f"/imagefactory/target_images/{target['id']}")["status"] \
        == "COMPLETE"
    receiver.wait_for("COMPLETE")
    deadline = time.monotonic() + 10
    while len(receiver.statuses()) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    by_image: dict[str, list[str]] = {}
    for request in receiver.requests:
        (kind, document), = request["document"].items()
        by_image.setdefault(f"{kind} {document['id']}", []).append(document["status"])
    assert by_image == {
        f"base_image {target['base_image_id']}": ["PENDING", "BUILDING", "COMPLETE"],
        f"target_image {target['id']}": ["PENDING", "BUILDING", "COMPLETE"],
    }


def test_a_failing_receiver_is_retried(client):
    flaky = Receiver(answers=[500, 500])
    try:
        base = post_base(client, callbacks=[flaky.url("/flaky")])
        assert wait_for_status(client, f"/imagefactory/base_images/{base['id']}")["status"] \
            == "COMPLETE"
        flaky.wait_for("COMPLETE")
        statuses = [(r["status"], next(iter(r["document"].values()))["status"])
                    for r in flaky.requests]
        assert statuses[:3] == [(500, "PENDING"), (500, "PENDING"), (200, "PENDING")]
        assert flaky.statuses() == ["PENDING", "BUILDING", "COMPLETE"]
    finally:
        flaky.close()


def test_a_retried_callback_logs_no_path_or_query(client, caplog):
    """urllib3 names the URL it retries: the client's path and query (a token) stay out of the
    service log, which still says which receiver failed."""
    caplog.set_level(logging.DEBUG)
    resetting = DeadReceiver(reset=True)
    try:
        base = post_base(client, callbacks=[resetting.url("/hook/PATH-SECRET?token=Q-SECRET")])
        wait_for_status(client, f"/imagefactory/base_images/{base['id']}")
        client.app.services.engine.notifier.drain(timeout=30)
    finally:
        resetting.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("Retrying") for m in messages), messages
    assert any(f"127.0.0.1:{resetting.port}" in m for m in messages), messages
    assert not [m for m in messages if "SECRET" in m]


class TestAReceiverThatNeverAnswers:
    """A receiver that accepts the connection and never answers holds its own deliveries
    only: with a timeout far beyond the test's waits, everything below happens while its
    first PUT is still waiting, or not at all."""

    @pytest.fixture
    def imagefactory_config(self, tmp_path):  # type: ignore[no-untyped-def]
        return make_config(tmp_path, callback_timeout=DEAD_TIMEOUT, callback_retries=0,
                           outbound_allow=["127.0.0.1"])

    @pytest.fixture
    def dead(self) -> Iterator[DeadReceiver]:
        started = DeadReceiver()
        yield started
        started.close()

    def test_the_build_does_not_wait_for_it(self, client, dead):
        base = post_base(client, callbacks=[dead.url("/never")])
        assert wait_for_status(client, f"/imagefactory/base_images/{base['id']}",
                               timeout=60)["status"] == "COMPLETE"
        dead.wait_accepted()
        second = post_base(client)
        assert wait_for_status(client, f"/imagefactory/base_images/{second['id']}",
                               timeout=60)["status"] == "COMPLETE"

    def test_other_receivers_get_theirs_in_order_meanwhile(self, client, dead, receiver):
        stuck = post_base(client, callbacks=[dead.url("/never")])
        dead.wait_accepted()
        both = post_base(client, callbacks=[dead.url("/never"), receiver.url("/both")])
        others = [post_base(client, callbacks=[receiver.url(f"/own-{n}")]) for n in range(4)]
        for image in (stuck, both, *others):
            assert wait_for_status(client, f"/imagefactory/base_images/{image['id']}",
                                   timeout=60)["status"] == "COMPLETE"
        receiver.wait_for("COMPLETE", "/both", timeout=60)
        for n in range(4):
            receiver.wait_for("COMPLETE", f"/own-{n}", timeout=60)
        for path in ("/both", *(f"/own-{n}" for n in range(4))):
            assert receiver.statuses(path) == ["PENDING", "BUILDING", "COMPLETE"], path
        assert len(dead.accepted) == 1  # its first PUT is still waiting for an answer


def test_deletion_is_a_status_change_too(client, receiver):
    base = post_base(client, callbacks=[receiver.url("/base")])
    href = f"/imagefactory/base_images/{base['id']}"
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    receiver.wait_for("COMPLETE", "/base")
    assert client.simulate_delete(href).status_code == 204
    receiver.wait_for("DELETED", "/base")
    assert receiver.statuses("/base") == ["PENDING", "BUILDING", "COMPLETE", "DELETED"]

    result = client.simulate_post(f"{href}/target_images", json={"target_image": {
        "target": "fakecloud"}})
    assert result.status_code == 409

    pushed = client.simulate_post("/imagefactory/provider_images", json={"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS, "parameters": {"callbacks": [receiver.url("/push")]}}})
    assert pushed.status_code == 202, pushed.text
    provider_href = f"/imagefactory/provider_images/{pushed.json['provider_image']['id']}"
    assert wait_for_status(client, provider_href)["status"] == "COMPLETE"
    deleted = client.simulate_delete(provider_href, json={"provider_image": {
        "provider": "p1", "credentials": SEED_CREDENTIALS}})
    assert deleted.status_code == 204
    assert wait_for_status(client, provider_href)["status"] == "DELETED"
    receiver.wait_for("DELETED", "/push")
    provider_statuses = [s for s in receiver.statuses("/push")]
    assert provider_statuses[-2:] == ["DELETING", "DELETED"], provider_statuses


def test_cancelled_build_reports_its_deletion(client, receiver, gate):
    base = post_base(client, callbacks=[receiver.url("/cancel")], **gate.parameter())
    href = f"/imagefactory/base_images/{base['id']}"
    gate.wait_held(base["id"])
    assert client.simulate_delete(href).status_code == 204
    assert wait_for_status(client, href)["status"] == "DELETED"
    receiver.wait_for("DELETED", "/cancel")
    assert receiver.statuses("/cancel") == ["PENDING", "BUILDING", "DELETING", "DELETED"]


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/hook", "http://10.0.0.1/hook",
                                 "http://u:pw@192.168.1.1/hook"])
def test_a_callback_to_a_refused_address_is_a_400_that_hides_its_user_info(client, url):
    result = client.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": fake_tdl(), "parameters": {"callbacks": [url]}}})
    assert result.status_code == 400, result.text
    assert "which this service does not call" in result.json["description"]
    assert "outbound_allow" in result.json["description"]
    assert "pw@" not in result.text


def test_a_redirect_to_a_refused_address_is_not_followed(client, caplog):
    """The receiver is allowed (loopback, by the operator); where it redirects is checked when
    that connection is made, and the metadata address is refused: no packet goes there."""
    caplog.set_level(logging.WARNING)
    redirecting = Receiver(redirect_to="http://169.254.169.254/latest/meta-data/")
    try:
        redirecting.answers = [307] * 20
        base = post_base(client, callbacks=[redirecting.url("/hook")])
        wait_for_status(client, f"/imagefactory/base_images/{base['id']}")
        client.app.services.engine.notifier.drain(timeout=30)
        assert redirecting.requests, "the allowed receiver was called"
        assert any("not followed" in r.getMessage() and "a link-local address" in
                   r.getMessage() for r in caplog.records), [r.getMessage() for r in
                                                             caplog.records]
    finally:
        redirecting.close()


class TestWithoutTheOperatorsAllowance:
    """Loopback is refused unless the operator allows it: a callback named by host name is
    checked when it is made, and logged, not called."""

    @pytest.fixture
    def imagefactory_config(self, tmp_path):  # type: ignore[no-untyped-def]
        return make_config(tmp_path, callback_timeout=CALLBACK_TIMEOUT, callback_retries=0)

    def test_a_loopback_callback_is_not_called(self, client, receiver, caplog):
        caplog.set_level(logging.WARNING)
        base = post_base(client, callbacks=[f"http://localhost:{receiver.port}/hook"])
        wait_for_status(client, f"/imagefactory/base_images/{base['id']}")
        client.app.services.engine.notifier.drain(timeout=30)
        assert receiver.requests == []
        assert any("not called" in r.getMessage() and "a loopback address" in r.getMessage()
                   for r in caplog.records)
