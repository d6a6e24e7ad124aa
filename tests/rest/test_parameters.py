"""Declared parameters through the REST API: checked at POST time against the plugins the
request calls, resolved per plugin (request > configuration section > default), operator-only
ones refused unless the operator allows the client, every plugin given its own values."""

from __future__ import annotations

from typing import Any

import pytest
from imagefactory_core.testing import make_config, wait_for_status

from .conftest import SEED_CREDENTIALS, fake_tdl

MIRROR = "http://127.0.0.1:9/fake-mirror/"


@pytest.fixture
def imagefactory_config(tmp_path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, plugins={"FakeOS": {"marker": "the-os-plugin-settings"},
                                          "FakeCloud": {"marker": "the-cloud-settings"}})


def post(client: Any, collection: str, status: int = 202, **fields: Any) -> dict[str, Any]:
    singular = collection[:-1]
    result = client.simulate_post(f"/imagefactory/{collection}", json={singular: fields})
    assert result.status_code == status, result.text
    return result.json[singular] if status == 202 else result.json


def settled_body(client: Any, storage: Any, collection: str, image: dict[str, Any]) -> bytes:
    done = wait_for_status(client, f"/imagefactory/{collection}/{image['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    return (storage / f"{image['id']}.body").read_bytes()


def test_each_plugin_gets_its_own_configuration_section(client, storage):
    image = post(client, "target_images", template=fake_tdl("configured"), target="fakecloud")
    body = settled_body(client, storage, "target_images", image)
    assert b"target content with marker: the-os-plugin-settings\n" in body
    assert b"the-cloud-settings" not in body
    shown = client.simulate_get(f"/imagefactory/target_images/{image['id']}").json
    assert shown["target_image"]["properties"]["marker"] == "the-cloud-settings"


def test_a_request_value_wins_over_the_configuration_for_every_plugin_it_reaches(client,
                                                                               storage):
    """A parameter both plugins declare reaches each; target content gets the request's
    values too (not the configuration's)."""
    image = post(client, "target_images", template=fake_tdl("overridden"), target="fakecloud",
                 parameters={"marker": "from-the-request", "fake_format": "QCOW2"})
    body = settled_body(client, storage, "target_images", image)
    assert b"target content with marker: from-the-request\n" in body
    base = client.simulate_get(f"/imagefactory/base_images/{image['base_image_id']}/raw_image")
    assert b"marker: from-the-request\n" in base.content
    properties = client.simulate_get(
        f"/imagefactory/target_images/{image['id']}").json["target_image"]["properties"]
    assert properties == {**properties, "marker": "from-the-request", "disk_format": "qcow2"}


@pytest.mark.parametrize(("parameters", "message"), [
    ({"fake_build_seconds": "soon"}, "parameter 'fake_build_seconds' (request): cannot use "
                                     "'soon': expected a number, from 0 to 600"),
    ({"fake_build_seconds": 601}, "expected a number, from 0 to 600"),
    ({"fake_build_seconds": True}, "expected a number"),
    ({"fake_format": "vhd"}, "parameter 'fake_format' (request): cannot use 'vhd': expected "
                             "a string, one of raw, qcow2"),
    ({"fake_fromat": "raw"}, "unknown parameter 'fake_fromat'; this request takes: callbacks, "
                             "fake_build_seconds, fake_cloud_file, fake_format, fake_gate, "
                             "fake_mirror, fake_push_seconds, fake_token, marker"),
    ({"generate_icicle": "true"}, "parameter 'generate_icicle' of the original Image Factory "
                                  "is not supported: ICICLE manifests are always generated"),
    ({"fake_mirror": MIRROR}, "parameter 'fake_mirror' (of FakeOS) is set by the operator "
                              "only"),
])
def test_a_bad_parameter_is_a_400_saying_what_is_allowed_and_creates_nothing(
        client, parameters, message):
    answer = post(client, "target_images", 400, template=fake_tdl(), target="fakecloud",
                  parameters=parameters)
    assert message in answer["description"]
    for collection in ("base_images", "target_images"):
        assert client.simulate_get(f"/imagefactory/{collection}").json[collection] == []


def test_only_the_parameters_of_the_plugins_a_request_calls_are_known(client):
    """A base image request calls the OS plugin only: the cloud plugin's parameters are
    unknown there."""
    answer = post(client, "base_images", 400, template=fake_tdl(),
                  parameters={"fake_push_seconds": 1})
    assert ("unknown parameter 'fake_push_seconds'; this request takes: callbacks, "
            "fake_build_seconds, fake_gate, fake_mirror, fake_token, marker") \
        in answer["description"]


def test_a_push_from_a_target_image_takes_the_cloud_plugins_parameters_only(client, storage):
    target = post(client, "target_images", template=fake_tdl(), target="fakecloud")
    settled_body(client, storage, "target_images", target)
    answer = client.simulate_post(
        f"/imagefactory/target_images/{target['id']}/provider_images",
        json={"provider_image": {"provider": "p", "credentials": SEED_CREDENTIALS,
                                 "parameters": {"fake_build_seconds": 1}}})
    assert answer.status_code == 400, answer.text
    assert "unknown parameter 'fake_build_seconds'" in answer.json["description"]
    pushed = client.simulate_post(
        f"/imagefactory/target_images/{target['id']}/provider_images",
        json={"provider_image": {"provider": "p", "credentials": SEED_CREDENTIALS,
                                 "parameters": {"fake_push_seconds": "0.01"}}})
    assert pushed.status_code == 202, pushed.text
    done = wait_for_status(client,
                           f"/imagefactory/provider_images/{pushed.json['provider_image']['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]


def test_form_and_xml_bodies_are_typed_the_same_way(client, storage):
    xml = (f"<base_image><parameters><parameter name='marker' value='from-xml'/>"
           f"<fake_build_seconds>0.01</fake_build_seconds></parameters>{fake_tdl('x')}"
           "</base_image>")
    result = client.simulate_post("/imagefactory/base_images", body=xml,
                                  headers={"Content-Type": "application/xml"})
    assert result.status_code == 202, result.text
    body = settled_body(client, storage, "base_images", result.json["base_image"])
    assert b"marker: from-xml\n" in body


class TestOperatorOnly:
    """``fake_mirror`` is operator-only: the configuration sets it, and may let clients."""

    @pytest.fixture
    def imagefactory_config(self, tmp_path):  # type: ignore[no-untyped-def]
        return make_config(tmp_path, plugins={"FakeOS": {"fake_mirror": MIRROR}},
                           operator_parameters={"*": ["fake_mirror"]})

    def test_the_configured_value_reaches_the_plugin(self, client, storage):
        body = settled_body(client, storage, "base_images",
                            post(client, "base_images", template=fake_tdl()))
        assert f"mirror: {MIRROR}\n".encode() in body

    def test_an_allowed_client_may_set_it_and_the_value_reaches_target_content(self, client,
                                                                             storage):
        mirror = "http://127.0.0.1:9/per-request/"
        image = post(client, "target_images", template=fake_tdl(), target="fakecloud",
                     parameters={"fake_mirror": mirror})
        body = settled_body(client, storage, "target_images", image)
        assert f"target content with marker: None\nmirror: {mirror}\n".encode() in body

    def test_values_are_checked_even_when_allowed(self, client):
        answer = post(client, "base_images", 400, template=fake_tdl(),
                      parameters={"fake_mirror": "http://127.0.0.1:9/a b\nDeb [trusted=yes]"})
        assert "expected an http:// or https:// URL" in answer["description"]
