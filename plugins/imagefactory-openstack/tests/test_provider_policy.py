"""A push request naming what only the operator may choose is a 400 at POST, before anything
is queued (the plugin's ``imagefactory_check_provider``)."""

from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.testing import make_config

TDL = """<template><name>refused</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch><rootpw>pw</rootpw>
    <install type="url"><url>http://deb.debian.org/debian</url></install></os>
</template>"""
CREDENTIALS = {"username": "u", "password": "the-operators-secret", "tenant": "t"}


@pytest.fixture
def imagefactory_config(tmp_path: Path) -> Any:
    return make_config(tmp_path, plugins={"openstack": {
        "clouds": ["local"], "endpoints": ["https://keystone.example:5000"]}})


@pytest.mark.parametrize(("provider", "credentials", "message"), [
    ("prod", {"password": "x"}, "cloud 'prod' is not one requests may name"),
    ({"cloud": "local"}, {**CREDENTIALS, "auth_url": "http://attacker.example/v3"},
     "credentials field 'auth_url' cannot be given for cloud 'local'"),
    ({"auth_url": "https://keystone.example:5000/v3", "verify": False}, CREDENTIALS,
     "provider field 'verify' is not accepted from requests"),
    ({"auth_url": "http://127.0.0.1:35357/v3"}, CREDENTIALS,
     "http://127.0.0.1:35357/v3 is not an endpoint this service may use"),
    ({"glance-host": "169.254.169.254", "glance-port": 80}, {"strategy": "noauth"},
     "http://169.254.169.254:80 is not an endpoint this service may use"),
])
def test_post_answers_400_naming_the_field_and_creates_nothing(
        imagefactory_client: falcon.testing.TestClient, provider: Any,
        credentials: dict[str, Any], message: str) -> None:
    answer = imagefactory_client.simulate_post("/imagefactory/provider_images", json={
        "provider_image": {"target": "openstack-kvm", "template": TDL, "provider": provider,
                           "credentials": credentials}})
    assert answer.status_code == 400, answer.text
    assert message in answer.json["description"]
    assert "the-operators-secret" not in answer.text
    for collection in ("base_images", "target_images", "provider_images"):
        listed = imagefactory_client.simulate_get(f"/imagefactory/{collection}").json
        assert listed[collection] == []
