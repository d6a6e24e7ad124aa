"""Each plugin sees its own section of the `plugins` configuration, in every hook it runs."""

import pytest
from imagefactory_core.testing import make_config, wait_for_status

from .conftest import fake_tdl


@pytest.fixture
def imagefactory_config(tmp_path):
    return make_config(tmp_path, plugins={"FakeOS": {"marker": "the-os-plugin-settings"},
                                          "FakeCloud": {"marker": "the-cloud-settings"}})


def test_target_content_is_applied_with_the_os_plugins_settings(client, storage):
    created = client.simulate_post("/imagefactory/target_images", json={"target_image": {
        "template": fake_tdl("configured"), "target": "fakecloud"}})
    assert created.status_code == 202, created.text
    image_id = created.json["target_image"]["id"]
    assert wait_for_status(client, f"/imagefactory/target_images/{image_id}")["status"] == \
        "COMPLETE"
    body = (storage / f"{image_id}.body").read_bytes()
    assert b"os-config: the-os-plugin-settings\n" in body
    assert b"the-cloud-settings" not in body
