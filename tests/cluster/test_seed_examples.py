"""The seed document's examples (shared/seed/imagefactory-rest-api-v2.txt, replayed one by one
against the app in tests/rest/test_seed_examples.py) through a cluster: each request goes to
either of two API servers, the jobs run on two workers, bodies and logs are in S3. Same
methods, paths, body forms and answers, with the database's queue and with Celery's."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import pytest

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from .conftest import Cluster

pytestmark = pytest.mark.slow


def test_seed_examples_through_either_api_server(cluster: Cluster):
    cluster.start()
    first, second = cluster.apis

    assert first.request("GET", "").json()["name"] == "imagefactory"
    base = first.post("/base_images", {"base_image": {"template": fake_tdl()}})
    assert base["status"] == "NEW"
    base_path = f"/base_images/{base['id']}"

    nested = f"{base_path}/target_images"
    answer = second.request("POST", nested, data="<target_image>\n    <target>fakecloud"
                            "</target>\n</target_image>",
                            headers={"Content-Type": "application/xml"})
    assert answer.status_code == 202, answer.text
    target = answer.json()["target_image"]
    assert target["base_image_id"] == base["id"]
    target_path = f"/target_images/{target['id']}"

    pushes = f"{base_path}/target_images/{target['id']}/provider_images"
    form = urlencode({"target": "fakecloud", "provider": "fake-us-east-1",
                      "credentials": SEED_CREDENTIALS})
    answer = first.request("POST", pushes, data=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 202, answer.text
    assert "good" not in answer.text and "alice" not in answer.text
    pushed = answer.json()["provider_image"]
    pushed_path = f"/provider_images/{pushed['id']}"

    built = second.wait_for(base_path)
    assert built["status"] == "COMPLETE", built["status_detail"]
    assert 'name="httpd-1.0-1.x86_64"' in built["icicle"]
    made = first.wait_for(target_path)
    assert made["status"] == "COMPLETE", made["status_detail"]
    assert 'name="fake-cloud-agent-1.0-1.x86_64"' in made["icicle"]
    done = second.wait_for(pushed_path)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["provider_account_identifier"] == "alice"
    cloud_id = done["identifier_on_provider"]
    assert cloud_id in json.loads((cluster.root / "cloud.json").read_text())

    # both servers serve the same bodies and logs, from S3
    bodies = [server.request("GET", f"{target_path}/raw_image") for server in cluster.apis]
    assert [b.status_code for b in bodies] == [200, 200]
    assert bodies[0].content == bodies[1].content
    assert bodies[0].content.startswith(b"FAKEOS f17jeos 17\n")
    assert hashlib.sha256(bodies[0].content).hexdigest() == done["properties"]["sha256"]
    partial = second.request("GET", f"{target_path}/raw_image", headers={"Range": "bytes=0-5"})
    assert partial.status_code == 206 and partial.content == b"FAKEOS"
    logs = [server.request("GET", f"{base_path}/log").text for server in cluster.apis]
    assert logs[0] == logs[1] and "wrote 4194304 bytes" in logs[0]

    listing = first.request("GET", "/base_images").json()["base_images"]
    assert [entry["base_image"]["id"] for entry in listing] == [base["id"]]
    children = second.get(base_path)["target_images"]["target_images"]
    assert [entry["target_image"]["id"] for entry in children] == [target["id"]]

    answer = second.request("DELETE", pushed_path, json={"provider_image": {
        "provider": "fake-us-east-1", "credentials": SEED_CREDENTIALS, "target": "fakecloud"}})
    assert answer.status_code == 204, answer.text
    assert first.wait_for(pushed_path)["status"] == "DELETED"
    assert cloud_id not in json.loads((cluster.root / "cloud.json").read_text())
    assert cluster.query("SELECT image_id FROM jobs") == []

    plugins = {p["id"] for p in second.request("GET", "/plugins").json()["plugins"]
               if p["status"] != "disabled"}
    assert plugins == {"tests.plugins.fake_os", "tests.plugins.fake_cloud"}
