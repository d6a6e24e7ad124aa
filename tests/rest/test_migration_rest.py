"""What a client of the original Image Factory sends, answered as the seed document says:
a body-less DELETE of a provider image (forgotten, left on its cloud, and saying so), the
``parameters.callbacks`` of a DELETE (they hear the deletion), and ``multipart/form-data``
bodies (``curl -F``, text and file parts alike)."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.testing import wait_for_status
from urllib3 import encode_multipart_formdata

from tests.plugins import fake_cloud

from .conftest import SEED_CREDENTIALS, fake_tdl

Client = falcon.testing.TestClient


def post(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result = client.simulate_post(path, json=body)
    assert result.status_code == 202, result.text
    return dict(next(iter(result.json.values())))


def image(client: Client, href: str) -> dict[str, Any]:
    result = client.simulate_get(href)
    assert result.status_code == 200, result.text
    return dict(next(iter(result.json.values())))


def complete_base(client: Client, **parameters: Any) -> str:
    base = post(client, "/imagefactory/base_images",
                {"base_image": {"template": fake_tdl(), "parameters": parameters}})
    href = f"/imagefactory/base_images/{base['id']}"
    if not parameters:
        assert wait_for_status(client, href)["status"] == "COMPLETE"
    return href


def pushed(client: Client) -> tuple[str, str]:
    """A provider image on the fake cloud: its href and its id there."""
    provider = post(client, "/imagefactory/provider_images", {"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS}})
    href = f"/imagefactory/provider_images/{provider['id']}"
    done = wait_for_status(client, href)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["identifier_on_provider"] in fake_cloud.CLOUD
    return href, done["identifier_on_provider"]


def multipart(fields: list[tuple[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body, content_type = encode_multipart_formdata(fields)
    return body, {"Content-Type": content_type}


# -- DELETE of a provider image ----------------------------------------------------------------
def test_the_seeds_body_less_delete_forgets_the_image_and_leaves_it_on_the_cloud(client,
                                                                                caplog):
    href, cloud_id = pushed(client)
    with caplog.at_level(logging.INFO, logger="imagefactory_core.builds.deletion"):
        result = client.simulate_delete(href)
    assert result.status_code == 204, result.text
    assert result.content == b""
    forgotten = image(client, href)
    assert forgotten["status"] == "DELETED"
    assert forgotten["status_detail"] == {
        "activity": f"Forgotten: still on fakecloud as {cloud_id} (a DELETE without "
                    "credentials leaves the cloud image in place)",
        "error": None}
    assert forgotten["identifier_on_provider"] == cloud_id
    assert cloud_id in fake_cloud.CLOUD
    log_lines = client.simulate_get(f"{href}/log").text.splitlines()
    assert log_lines[-2].endswith(f"Forgotten without credentials: the image stays on "
                                  f"fakecloud as {cloud_id}"), log_lines
    assert log_lines[-1].endswith("== DELETED"), log_lines
    said = [r.getMessage() for r in caplog.records if "forgotten" in r.getMessage()]
    assert said == [f"provider image {href.rsplit('/', 1)[1]} forgotten by a DELETE without "
                    f"credentials; it stays on fakecloud as {cloud_id}"]
    assert href.rsplit("/", 1)[1] not in client.simulate_get(
        "/imagefactory/provider_images").text
    assert client.simulate_delete(href).status_code == 204  # again: nothing more happens
    assert image(client, href)["status_detail"] == forgotten["status_detail"]


@pytest.mark.parametrize("body", [
    {"provider_image": {}},
    {"provider_image": {"parameters": {}}},
], ids=["empty object", "parameters only"])
def test_a_delete_that_names_no_cloud_forgets_too(client, body):
    href, cloud_id = pushed(client)
    assert client.simulate_delete(href, json=body).status_code == 204
    assert image(client, href)["status"] == "DELETED"
    assert cloud_id in fake_cloud.CLOUD


def test_a_delete_with_credentials_also_removes_the_image_from_the_cloud(client):
    href, cloud_id = pushed(client)
    body, headers = multipart([("provider", "p1"), ("target", "fakecloud"),
                               ("credentials", SEED_CREDENTIALS)])
    result = client.simulate_delete(href, body=body, headers=headers)
    assert result.status_code == 204, result.text
    deleted = wait_for_status(client, href)
    assert deleted["status"] == "DELETED", deleted["status_detail"]
    assert cloud_id not in fake_cloud.CLOUD


@pytest.mark.parametrize(("fields", "message"), [
    ({"target": "fakecloud"}, "give 'credentials' (and 'provider', 'target') to delete it "
                              "there, or none of them to forget the image"),
    ({"target": "fakecloud", "credentials": SEED_CREDENTIALS, "provider": "p1",
      "template": fake_tdl()}, "template: a DELETE takes only target, provider, credentials "
                               "and parameters"),
    ({"parameters": {"fake_gate": "/tmp"}}, "parameter(s) fake_gate: a DELETE takes only "
                                            "'callbacks'"),
    ({"parameters": {"callbacks": ["http://10.0.0.1/hook"]}}, "private"),
    ({"parameters": {"callbacks": ["ftp://127.0.0.1/hook"]}}, "is not an http(s) URL"),
], ids=["a cloud without credentials", "a creation field", "a build parameter", "private callback",
        "not http"])
def test_a_delete_the_service_cannot_do_is_a_400_and_changes_nothing(client, fields, message):
    href, cloud_id = pushed(client)
    result = client.simulate_delete(href, json={"provider_image": fields})
    assert result.status_code == 400, result.text
    assert message in result.json["description"]
    assert image(client, href)["status"] == "COMPLETE"
    assert cloud_id in fake_cloud.CLOUD


def test_the_cloud_fields_are_for_provider_images_only(client):
    href = complete_base(client)
    result = client.simulate_delete(href, json={"base_image": {
        "provider": "p1", "credentials": SEED_CREDENTIALS}})
    assert result.status_code == 400, result.text
    assert result.json["description"] == ("provider, credentials: only provider images are "
                                          "deleted on a cloud; DELETE a base image without them")
    assert image(client, href)["status"] == "COMPLETE"


# -- callbacks of a DELETE ---------------------------------------------------------------------
def test_the_callbacks_of_a_delete_hear_the_deletion_of_a_base_image(client, receiver):
    href = complete_base(client)
    result = client.simulate_delete(href, params={
        "parameters": json.dumps({"callbacks": [receiver.url("/deleted")]})})
    assert result.status_code == 204, result.text
    receiver.wait_for("DELETED", "/deleted")
    assert receiver.statuses("/deleted") == ["DELETED"]
    sent = receiver.requests[-1]["document"]["base_image"]
    assert sent["href"].endswith(href)


def test_the_callbacks_of_a_delete_hear_a_cloud_delete_and_a_forgetting(client, receiver):
    on_cloud, _ = pushed(client)
    body, headers = multipart([
        ("credentials", SEED_CREDENTIALS), ("provider", "p1"),
        ("parameters", json.dumps({"callbacks": [receiver.url("/cloud")]}))])
    assert client.simulate_delete(on_cloud, body=body, headers=headers).status_code == 204
    receiver.wait_for("DELETED", "/cloud")
    assert receiver.statuses("/cloud") == ["DELETING", "DELETING", "DELETED"]

    forgotten, _ = pushed(client)
    result = client.simulate_delete(forgotten, json={"provider_image": {
        "parameters": {"callbacks": receiver.url("/forgotten")}}})
    assert result.status_code == 204, result.text
    receiver.wait_for("DELETED", "/forgotten")
    assert receiver.statuses("/forgotten") == ["DELETED"]
    activity = receiver.requests[-1]["document"]["provider_image"]["status_detail"]["activity"]
    assert activity.startswith("Forgotten: still on fakecloud as ")


def test_the_callbacks_of_a_delete_hear_how_a_cancelled_build_ends(client, receiver, gate):
    """The build's own callbacks hear it too, each once; the delete's hear only the delete."""
    href = complete_base(client, callbacks=[receiver.url("/build")], **gate.parameter())
    image_id = href.rsplit("/", 1)[1]
    gate.wait_held(image_id)
    result = client.simulate_delete(href, json={"base_image": {"parameters": {
        "callbacks": [receiver.url("/delete"), receiver.url("/build")]}}})
    assert result.status_code == 204, result.text
    assert wait_for_status(client, href)["status"] == "DELETED"
    receiver.wait_for("DELETED", "/delete")
    receiver.wait_for("DELETED", "/build")
    assert receiver.statuses("/delete") == ["DELETING", "DELETED"]
    assert receiver.statuses("/build") == ["PENDING", "BUILDING", "DELETING", "DELETED"]


# -- multipart/form-data -----------------------------------------------------------------------
def test_a_multipart_post_with_the_template_as_a_file_part_builds(client):
    body, headers = multipart([
        ("template", ("web.tdl", fake_tdl("multipart").encode(), "application/octet-stream")),
        ("parameters", json.dumps({"fake_build_seconds": 0})),
    ])
    result = client.simulate_post("/imagefactory/base_images", body=body, headers=headers)
    assert result.status_code == 202, result.text
    created = result.json["base_image"]
    assert "<name>multipart</name>" in created["template"]
    assert created["parameters"] == {"fake_build_seconds": 0}
    done = wait_for_status(client, f"/imagefactory/base_images/{created['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]


def test_a_multipart_push_with_the_seeds_xml_credentials_as_a_text_part(client):
    body, headers = multipart([("template", fake_tdl()), ("target", "fakecloud"),
                               ("provider", "p1"), ("credentials", SEED_CREDENTIALS)])
    result = client.simulate_post("/imagefactory/provider_images", body=body, headers=headers)
    assert result.status_code == 202, result.text
    href = f"/imagefactory/provider_images/{result.json['provider_image']['id']}"
    done = wait_for_status(client, href)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert "good" not in client.simulate_get(href).text  # the password never comes back


def test_a_multipart_part_in_another_charset_is_decoded_as_it_says(client):
    tdl = fake_tdl("caf\u00e9")
    body, content_type = encode_multipart_formdata([("template", tdl)])
    body = body.replace(tdl.encode(), tdl.encode("latin-1")).replace(
        b'name="template"\r\n', b'name="template"\r\nContent-Type: text/plain; '
                                b'charset=latin-1\r\n')
    result = client.simulate_post("/imagefactory/base_images", body=body,
                                  headers={"Content-Type": content_type})
    assert result.status_code == 202, result.text
    assert "<name>caf\u00e9</name>" in result.json["base_image"]["template"]


@pytest.mark.parametrize(("fields", "message"), [
    ([("target", "fakecloud"), ("target", "fakecloud")], "form field target given more than "
                                                          "once"),
    ([("colour", "blue")], "unknown field(s) colour"),
    ([("template", b"\xff\xfe<template/>")], "form field template is not utf-8 text"),
    ([(f"f{n}", "x") for n in range(8)], "maximum number of form body parts exceeded (it "
                                         "takes at most 7 parts"),
], ids=["repeated", "unknown", "not utf-8", "too many parts"])
def test_a_multipart_body_the_service_cannot_read_is_a_400(client, fields, message):
    body, headers = multipart(fields)
    result = client.simulate_post("/imagefactory/target_images", body=body, headers=headers)
    assert result.status_code == 400, result.text
    assert message in result.json["description"]
    assert client.simulate_get("/imagefactory/target_images").json == {"target_images": []}


def test_a_multipart_body_without_a_boundary_is_a_400(client):
    result = client.simulate_post("/imagefactory/base_images", body=b"template=x",
                                  headers={"Content-Type": "multipart/form-data"})
    assert result.status_code == 400, result.text
    assert "boundary" in result.json["description"].lower()


def test_an_unsupported_content_type_names_every_accepted_one(client):
    result = client.simulate_post("/imagefactory/base_images", body=b"template=x",
                                  headers={"Content-Type": "text/plain"})
    assert result.status_code == 415
    assert result.json["description"] == (
        "unsupported Content-Type 'text/plain': use application/json, application/xml, "
        "application/x-www-form-urlencoded or multipart/form-data")
