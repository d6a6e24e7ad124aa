"""Clients following build logs cannot stall a real `imagefactory serve`: with 4 request threads
and ``log_followers`` 2, the third and fourth followers get a 503 at once, and a status read
still answers while two followers hold their threads."""

from __future__ import annotations

import pytest
import requests

from tests.rest.conftest import fake_tdl

from .conftest import ServerProcess, sign, wait_until

pytestmark = pytest.mark.slow

THREADS = 4
FOLLOWERS = 2
# Far longer than any wait here; a status read that does not answer within it is stalled.
PATIENCE = 20


def test_followers_beyond_the_limit_get_a_503_and_status_reads_answer(servers):
    server: ServerProcess = servers(server_threads=THREADS, log_followers=FOLLOWERS).start()
    image = server.post("/base_images", {"base_image": {
        "template": fake_tdl("followed"), "parameters": {"fake_build_seconds": 300}}})
    item = f"/base_images/{image['id']}"
    server.wait_for(item, ("BUILDING",))
    # a follower's headers leave with its first bytes: wait until there are some
    wait_until(lambda: server.request("GET", f"{item}/log").text, PATIENCE, "a log line")
    followers: list[requests.Response] = []
    try:
        for _ in range(THREADS):
            followers.append(requests.get(f"{server.url}{item}/log", params={"follow": "true"},
                                          auth=sign(), stream=True, timeout=PATIENCE))
        assert [f.status_code for f in followers] == [200] * FOLLOWERS + [503] * (
            THREADS - FOLLOWERS), [f.text for f in followers if f.status_code != 200]
        for refused in followers[FOLLOWERS:]:
            assert int(refused.headers["Retry-After"]) > 0
            assert "log_followers" in refused.json()["description"]
        for path in (item, "/base_images", f"{item}/log"):
            answer = requests.get(server.url + path, auth=sign(), timeout=PATIENCE)
            assert answer.status_code == 200, answer.text
        assert server.get(item)["status"] == "BUILDING"
    finally:
        for follower in followers:
            follower.close()
        assert server.request("DELETE", item).status_code == 204
    assert server.wait_for(item)["status"] == "DELETED"
