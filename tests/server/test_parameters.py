"""Operator-only parameters on a real OAuth-protected server: the operator grants them to one
client; another signed client is refused, and the granted value reaches the plugin."""

from __future__ import annotations

import pytest
import requests
from requests_oauthlib import OAuth1

from tests.rest.conftest import fake_tdl

from .conftest import ServerProcess

pytestmark = pytest.mark.slow
MIRROR = "http://127.0.0.1:9/granted-mirror/"


def test_an_operator_only_parameter_is_set_only_by_the_client_it_is_granted_to(servers):
    server: ServerProcess = servers(
        clients={"client1": "our-secret", "client2": "other-secret"},
        operator_parameters={"client1": ["fake_mirror"]}).start()
    body = {"base_image": {"template": fake_tdl("granted"),
                           "parameters": {"fake_mirror": MIRROR}}}
    granted = server.post("/base_images", body)

    other = requests.post(server.url + "/base_images", json=body, timeout=30,
                          auth=OAuth1("client2", "other-secret"))
    assert other.status_code == 400, other.text
    assert "'fake_mirror' (of tests.plugins.fake_os) is set by the operator only" in \
        other.json()["description"]

    done = server.wait_for(f"/base_images/{granted['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    body_bytes = server.request("GET", f"/base_images/{granted['id']}/raw_image").content
    assert f"mirror: {MIRROR}\n".encode() in body_bytes

