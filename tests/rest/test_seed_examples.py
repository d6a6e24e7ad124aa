"""Every HTTPie example of the seed document (shared/seed/imagefactory-rest-api-v2.txt),
replayed against the app: same methods, paths, body forms, status codes and key names.

Departures, on purpose: `rootpw` is redacted in every answer; images carry extra keys
(`log`, `raw_image`, `properties`).
"""

from urllib.parse import urlencode

from imagefactory_core.testing import wait_for_status

from tests.plugins import fake_cloud

from .conftest import SEED_CREDENTIALS, fake_tdl

IMAGE_KEYS = {"_type", "href", "icicle", "id", "parameters", "percent_complete", "status",
              "status_detail", "template"}


def test_api_information(client):
    result = client.simulate_get("/imagefactory")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("application/json")
    assert result.json["name"] == "imagefactory"
    assert result.json["api_version"] == "2.0"
    assert result.json["version"]


def test_listing_images_has_the_seed_shape(client):
    created = [client.simulate_post("/imagefactory/target_images", json={
        "target_image": {"template": fake_tdl(), "target": "fakecloud"}}) for _ in range(2)]
    assert [r.status_code for r in created] == [202, 202]
    result = client.simulate_get("/imagefactory/target_images")
    assert result.status_code == 200
    entries = result.json["target_images"]
    assert [set(e) for e in entries] == [{"target_image"}, {"target_image"}]
    ids = {r.json["target_image"]["id"] for r in created}
    assert {e["target_image"]["id"] for e in entries} == ids
    for entry in entries:
        item = entry["target_image"]
        assert set(item) == {"_type", "href", "id"}
        assert item["_type"] == "TargetImage"
        assert item["href"] == f"http://falconframework.org/imagefactory/target_images/{item['id']}"


def test_base_image_creation_json(client):
    result = client.simulate_post("/imagefactory/base_images",
                                  json={"base_image": {"template": fake_tdl()}})
    assert result.status_code == 202
    image = result.json["base_image"]
    assert set(image) >= IMAGE_KEYS
    assert image["_type"] == "BaseImage"
    assert image["href"] == f"http://falconframework.org/imagefactory/base_images/{image['id']}"
    assert result.headers["location"] == image["href"]
    assert image["icicle"] is None
    assert image["parameters"] == {}
    assert image["percent_complete"] == 0
    assert image["status"] == "NEW"
    assert set(image["status_detail"]) == {"activity", "error"}
    assert image["status_detail"]["error"] is None
    assert "<name>f17jeos</name>" in image["template"]
    assert "changeme" not in image["template"]
    done = wait_for_status(client, f"/imagefactory/base_images/{image['id']}")
    assert done["status"] == "COMPLETE"
    assert done["percent_complete"] == 100
    assert 'name="httpd-1.0-1.x86_64"' in done["icicle"]


def test_target_image_creation_xml_on_nested_path(client):
    base = client.simulate_post("/imagefactory/base_images",
                                json={"base_image": {"template": fake_tdl()}}).json["base_image"]
    path = f"/imagefactory/base_images/{base['id']}/target_images"
    result = client.simulate_post(path, body="<target_image>\n    <target>fakecloud</target>\n"
                                             "</target_image>",
                                  headers={"Content-Type": "application/xml"})
    assert result.status_code == 202, result.text
    image = result.json["target_image"]
    assert IMAGE_KEYS | {"base_image_id", "target"} <= set(image)
    assert image["_type"] == "TargetImage"
    assert image["base_image_id"] == base["id"]
    assert image["target"] == "fakecloud"
    assert image["href"] == f"http://falconframework.org{path}/{image['id']}"
    assert image["status"] == "NEW"
    assert "<name>f17jeos</name>" in image["template"]
    done = wait_for_status(client, f"/imagefactory/target_images/{image['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert 'name="fake-cloud-agent-1.0-1.x86_64"' in done["icicle"]


def test_provider_image_creation_form_on_doubly_nested_path(client):
    target = client.simulate_post("/imagefactory/target_images", json={"target_image": {
        "template": fake_tdl(), "target": "fakecloud"}}).json["target_image"]
    base_id = target["base_image_id"]
    path = (f"/imagefactory/base_images/{base_id}/target_images/{target['id']}"
            "/provider_images")
    form = urlencode({"target": "fakecloud", "provider": "fake-us-east-1",
                      "credentials": SEED_CREDENTIALS})
    result = client.simulate_post(
        path, body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status_code == 202, result.text
    image = result.json["provider_image"]
    assert IMAGE_KEYS | {"identifier_on_provider", "provider", "provider_account_identifier",
                         "target_image_id"} <= set(image)
    assert image["_type"] == "ProviderImage"
    assert image["identifier_on_provider"] is None
    assert image["provider_account_identifier"] is None
    assert image["provider"] == "fake-us-east-1"
    assert image["target_image_id"] == target["id"]
    assert image["href"] == f"http://falconframework.org{path}/{image['id']}"
    assert "good" not in result.text and "alice" not in result.text
    done = wait_for_status(client, f"/imagefactory/provider_images/{image['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["identifier_on_provider"] in fake_cloud.CLOUD
    assert done["provider_account_identifier"] == "alice"


def test_image_inspection_lists_children(client):
    target = client.simulate_post("/imagefactory/target_images", json={"target_image": {
        "template": fake_tdl(), "target": "fakecloud"}}).json["target_image"]
    result = client.simulate_get(f"/imagefactory/base_images/{target['base_image_id']}")
    assert result.status_code == 200
    image = result.json["base_image"]
    assert set(image) >= IMAGE_KEYS
    listed = image["target_images"]["target_images"]
    assert [e["target_image"]["id"] for e in listed] == [target["id"]]


def test_image_deletion_of_provider_image(client):
    pushed = client.simulate_post("/imagefactory/provider_images", json={"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "fake-1",
        "credentials": SEED_CREDENTIALS}}).json["provider_image"]
    href = f"/imagefactory/provider_images/{pushed['id']}"
    done = wait_for_status(client, href)
    assert done["status"] == "COMPLETE", done["status_detail"]
    cloud_id = done["identifier_on_provider"]
    assert cloud_id in fake_cloud.CLOUD
    result = client.simulate_delete(href, json={"provider_image": {
        "provider": "fake-1", "credentials": SEED_CREDENTIALS, "target": "fakecloud"}})
    assert result.status_code == 204
    assert result.content == b""
    assert wait_for_status(client, href)["status"] == "DELETED"
    assert cloud_id not in fake_cloud.CLOUD


def test_plugins_list_and_one(client):
    result = client.simulate_get("/imagefactory/plugins")
    assert result.status_code == 200
    plugins = {p["id"]: p for p in result.json["plugins"]}
    assert set(plugins) == {"FakeOS", "FakeCloud"}
    for plugin in plugins.values():
        assert {"_type", "description", "href", "id", "license", "maintainer", "targets",
                "type", "version"} <= set(plugin)
        assert plugin["_type"] == "plugin"
        assert set(plugin["maintainer"]) == {"email", "name", "url"}
    assert plugins["FakeOS"]["type"] == "os"
    assert plugins["FakeOS"]["targets"] == [["FakeOS", r"\d+", "x86_64"]]
    assert plugins["FakeCloud"]["type"] == "cloud"
    assert plugins["FakeCloud"]["targets"] == [["fakecloud", "fake"]]
    one = client.simulate_get("/imagefactory/plugins/FakeCloud")
    assert one.status_code == 200
    assert one.json["id"] == "FakeCloud"
    assert one.json["href"] == "http://falconframework.org/imagefactory/plugins/FakeCloud"
