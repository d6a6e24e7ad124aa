"""Target images made from a target image (``CloudTarget.from_targets``, the ova target's
case), through the REST API with the test-only fakepackage target made from fakecloud images:
both URL forms, the links shown, the parameters checked against the called plugin only, the
requests refused, and the parent kept while a derived image is built from it."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest
from imagefactory_core.plugins import PluginHost, load_plugins
from imagefactory_core.testing import wait_for_status

from tests.plugins import fake_cloud, fake_os, fake_package
from tests.plugins.gate import Gate

from .conftest import fake_tdl


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    return load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud),
                                               ("FakePackage", fake_package)])


def post(client: falcon.testing.TestClient, path: str, body: dict[str, Any],
         status: int = 202) -> dict[str, Any]:
    result = client.simulate_post(path, json={"target_image": body})
    assert result.status_code == status, result.text
    return dict(result.json.get("target_image", result.json))


@pytest.fixture
def source(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A COMPLETE fakecloud target image."""
    image = post(client, "/imagefactory/target_images",
                 {"template": fake_tdl("derived"), "target": "fakecloud",
                  "parameters": {"marker": "from-the-source"}})
    done = wait_for_status(client, f"/imagefactory/target_images/{image['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    return done


def test_nested_post_makes_a_target_image_of_the_target_image(client, source, storage):
    made = post(client, f"/imagefactory/target_images/{source['id']}/target_images",
                {"target": "fakepackage", "parameters": {"package_label": "ova-like"}})
    nested = f"/imagefactory/target_images/{source['id']}/target_images/{made['id']}"
    assert made["href"].endswith(nested)
    done = wait_for_status(client, nested)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["target"] == "fakepackage"
    assert done["target_image_id"] == source["id"]
    assert done["base_image_id"] == source["base_image_id"]
    assert done["icicle"] == source["icicle"]
    assert done["properties"] | {"cloud_plugin": "FakePackage"} == {
        "disk_format": "fakepackage", "label": "ova-like", "source_kind": "TargetImage",
        "source_target": "fakecloud", "source_marker": "from-the-source",
        "template_name": "derived", "cloud_plugin": "FakePackage"}
    body = (storage / f"{made['id']}.body").read_bytes()
    assert body == fake_package.HEADER + (storage / f"{source['id']}.body").read_bytes()
    listed = client.simulate_get(f"/imagefactory/target_images/{source['id']}/target_images")
    assert [i["target_image"]["id"] for i in listed.json["target_images"]] == [made["id"]]
    raw = client.simulate_get(f"{nested}/raw_image")
    assert raw.status_code == 200 and raw.content == body
    assert "target_image_id" not in source  # a target image made from a base image


def test_top_level_post_names_the_source_in_the_body(client, source):
    made = post(client, "/imagefactory/target_images",
                {"target": "fakepackage", "target_image_id": source["id"]})
    done = wait_for_status(client, f"/imagefactory/target_images/{made['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["target_image_id"] == source["id"]
    elsewhere = f"/imagefactory/target_images/{made['base_image_id']}/target_images/{made['id']}"
    assert client.simulate_get(elsewhere).status_code == 404


@pytest.mark.parametrize(("body", "says"), [
    ({"target": "fakepackage", "template": fake_tdl()},
     "target 'fakepackage' is made from a target image of fakecloud: give its target_image_id"),
    ({"target": "fakecloud", "target_image_id": "{source}"},
     "target 'fakecloud' is made from base images (give base_image_id or a template), not "
     "from target image {source} ('fakecloud')"),
    ({"target": "fakepackage", "target_image_id": "{source}", "base_image_id": "{base}"},
     "a target image made from a target image takes no base_image_id or template"),
    ({"target": "fakepackage", "target_image_id": "{source}",
      "parameters": {"marker": "x"}}, "marker"),
])
def test_requests_a_derived_target_refuses(client, source, body, says):
    ids = {"source": source["id"], "base": source["base_image_id"]}
    filled = {key: value.format(**ids) if isinstance(value, str) else value
              for key, value in body.items()}
    refused = post(client, "/imagefactory/target_images", filled, status=400)
    assert says.format(**ids) in refused["description"]


def test_a_derived_image_of_a_fakepackage_image_is_refused(client, source):
    made = post(client, f"/imagefactory/target_images/{source['id']}/target_images",
                {"target": "fakepackage"})
    wait_for_status(client, f"/imagefactory/target_images/{made['id']}")
    refused = post(client, f"/imagefactory/target_images/{made['id']}/target_images",
                   {"target": "fakepackage"}, status=400)
    assert "made from target images of fakecloud, not from" in refused["description"]


def test_the_source_is_kept_while_a_derived_image_waits_for_it(client, gate: Gate):
    """A derived image of a target image still being built waits for it (PENDING); the
    source cannot be deleted meanwhile; it completes once the source does."""
    source = post(client, "/imagefactory/target_images",
                  {"template": fake_tdl("held"), "target": "fakecloud",
                   "parameters": gate.parameter()})
    made = post(client, f"/imagefactory/target_images/{source['id']}/target_images",
                {"target": "fakepackage"})
    waiting = client.simulate_get(f"/imagefactory/target_images/{made['id']}")
    assert waiting.json["target_image"]["status"] == "PENDING"
    refused = client.simulate_delete(f"/imagefactory/target_images/{source['id']}")
    assert refused.status_code == 409
    assert made["id"] in refused.json["description"]
    gate.release(source["base_image_id"])
    done = wait_for_status(client, f"/imagefactory/target_images/{made['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
