"""Build logs within bounds: a log stops growing at ``max_log_bytes`` with a line saying so, a
log is sent in chunks (never read whole), at most ``log_followers`` requests follow logs at once
(the next gets a 503 with Retry-After, status reads still answer), and a follower stops after
``log_follow_seconds``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.api.logs import CHUNK
from imagefactory_core.testing import make_config, wait_for_status

from .conftest import fake_tdl

MAX_LOG_BYTES = 8192
FOLLOWERS = 2
TRUNCATED = b"[imagefactory: log truncated at 8192 bytes (configuration key max_log_bytes)"


@pytest.fixture
def imagefactory_config(tmp_path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, max_log_bytes=MAX_LOG_BYTES, log_followers=FOLLOWERS,
                       log_follow_seconds=2)


def post_base(client: falcon.testing.TestClient, **parameters: Any) -> str:
    result = client.simulate_post("/imagefactory/base_images", json={
        "base_image": {"template": fake_tdl(), "parameters": parameters}})
    assert result.status_code == 202, result.text
    return f"/imagefactory/base_images/{result.json['base_image']['id']}"


def wsgi_get(app: falcon.App, path: str, query: str = "") -> tuple[str, dict[str, str], Any]:
    """GET through the WSGI interface itself: the status, headers and the response body
    iterable, not yet read (as a server holds it while it sends)."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers={k.lower(): v for k, v in headers})

    body = app(falcon.testing.create_environ(path=path, query_string=query), start_response)
    return started["status"], started["headers"], body


def test_a_log_stops_at_its_limit_with_a_line_saying_so(client):
    href = post_base(client)
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    image_id = href.rsplit("/", 1)[1]
    store = client.app.services.store
    for number in range(1000):
        store.append_log(image_id, f"line {number:04d} " + "é" * 20)
    store.append_log(image_id, "x" * 100_000)  # one huge line, after the cut: dropped whole
    log = client.simulate_get(f"{href}/log").content
    assert len(log) <= MAX_LOG_BYTES
    assert log.count(b"truncated") == 1
    assert log.rstrip(b"\n").splitlines()[-1].split(b" ", 1)[1].startswith(TRUNCATED)
    assert b"line 0000" in log and b"line 0999" not in log and b"xxx" not in log
    log.decode("utf-8")  # cut between characters, never inside one


def test_a_huge_single_line_is_cut_at_the_limit(client):
    href = post_base(client)
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    store = client.app.services.store
    store.append_log(href.rsplit("/", 1)[1], "y" * (10 * MAX_LOG_BYTES))
    log = client.simulate_get(f"{href}/log").content
    assert MAX_LOG_BYTES - 256 <= len(log) <= MAX_LOG_BYTES
    assert TRUNCATED in log


def test_a_full_log_still_ends_with_why_and_how_the_build_ended(client, gate):
    """The engine's closing lines pass the limit: a reader of a full log learns the verdict."""
    result = client.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": fake_tdl("fail-me"), "parameters": gate.parameter()}})
    href = f"/imagefactory/base_images/{result.json['base_image']['id']}"
    image_id = href.rsplit("/", 1)[1]
    gate.wait_held(image_id)
    client.app.services.store.append_log(image_id, "z" * (2 * MAX_LOG_BYTES))
    gate.release(image_id)
    assert wait_for_status(client, href)["status"] == "FAILED"
    lines = client.simulate_get(f"{href}/log").content.rstrip(b"\n").splitlines()
    assert TRUNCATED in lines[-3]
    reason = b"FAILED: FakeOS was asked to fail: template name is fail-me"
    assert lines[-2].split(b" ", 1)[1] == reason
    assert lines[-1].split(b" ", 1)[1] == b"== FAILED"


def test_a_log_is_sent_in_chunks(client):
    """The log file is bigger than the limit here (written behind the store's back), as an
    operator's larger limit allows: it is sent a chunk at a time, never read whole."""
    href = post_base(client)
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    path = client.app.services.store.log_path(href.rsplit("/", 1)[1])
    written = path.read_bytes() + b"z" * (8 * CHUNK + 17)
    path.write_bytes(written)
    status, headers, body = wsgi_get(client.app, f"{href}/log")
    assert status.startswith("200"), status
    assert int(headers["content-length"]) == len(written)
    chunks = []
    try:
        for chunk in body:
            assert len(chunk) <= CHUNK
            chunks.append(chunk)
    finally:
        body.close()
    assert len(chunks) >= 9
    assert b"".join(chunks) == written


@pytest.fixture
def building(client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An image that builds until the test deletes it."""
    href = post_base(client, fake_build_seconds=300)
    wait_for_status(client, href, ("BUILDING",))
    yield href
    assert client.simulate_delete(href).status_code == 204
    assert wait_for_status(client, href)["status"] == "DELETED"


def test_followers_beyond_the_limit_get_a_503_and_status_reads_answer(client, building):
    app = client.app
    held = []
    try:
        for _ in range(FOLLOWERS):
            status, _, body = wsgi_get(app, f"{building}/log", "follow=true")
            held.append(body)
            assert status.startswith("200"), status
        refused = client.simulate_get(f"{building}/log", params={"follow": "true"})
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert "log_followers" in refused.json["description"]
        assert client.simulate_get(building).json["base_image"]["status"] == "BUILDING"
        assert client.simulate_get(f"{building}/log").status_code == 200  # not following
        held.pop().close()  # a follower that ends (or whose client went) frees its slot
        status, _, body = wsgi_get(app, f"{building}/log", "follow=true")
        held.append(body)
        assert status.startswith("200"), status
    finally:
        for body in held:
            body.close()
    status, _, body = wsgi_get(app, f"{building}/log", "follow=true")
    body.close()
    assert status.startswith("200"), status


def test_a_follower_stops_after_its_time_limit(client, building):
    followed = client.simulate_get(f"{building}/log", params={"follow": "true"})
    assert followed.status_code == 200
    assert followed.text.rstrip("\n").splitlines()[-1].startswith(
        "[imagefactory: stopped following after 2 s (configuration key log_follow_seconds)")
    assert client.simulate_get(building).json["base_image"]["status"] == "BUILDING"


def test_a_follower_of_a_settled_image_gets_the_whole_log_at_once(client):
    href = post_base(client)
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    followed = client.simulate_get(f"{href}/log", params={"follow": "true"})
    assert followed.status_code == 200
    assert followed.content == client.simulate_get(f"{href}/log").content
    assert "== COMPLETE" in followed.text
