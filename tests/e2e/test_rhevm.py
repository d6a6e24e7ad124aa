"""The whole rhevm flow through the REST API, on the session's real Debian image, the fake oVirt
engine and the real imageio daemon: base → qcow2 target → template → DELETE. What imageio
received is compared with the target image, the template is looked up with the SDK's own
connection, and pushes the engine cannot take fail with errors that say why."""

from __future__ import annotations

import filecmp
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import ovirtsdk4
import pytest
from imagefactory_core.testing import wait_for_status
from lxml import etree

from tests.services.ovirt_support.engine import Engine

from .conftest import build

pytestmark = pytest.mark.slow


def credentials_xml(username: str, password: str) -> str:
    """The seed's <rhevm_credentials> form."""
    return f"""<provider_credentials>
  <rhevm_credentials>
    <username>{username}</username>
    <password>{password}</password>
  </rhevm_credentials>
</provider_credentials>"""


@pytest.fixture(scope="module")
def rhevm_target(e2e_client, bookworm_base) -> dict[str, Any]:
    image = build(e2e_client, "target_images",
                  {"target": "rhevm", "base_image_id": bookworm_base["id"]})
    assert image["status"] == "COMPLETE", image["status_detail"]
    return image


@pytest.fixture
def admin(ovirt_engine: Engine) -> Iterator[ovirtsdk4.Connection]:
    connection = ovirtsdk4.Connection(url=ovirt_engine.api_url, username=ovirt_engine.username,
                                      password=ovirt_engine.password,
                                      ca_file=str(ovirt_engine.ca_file))
    yield connection
    connection.close()


def push_request(engine: Engine, target: dict[str, Any], password: str | None = None,
                 **provider: Any) -> dict[str, Any]:
    return {"target": "rhevm", "target_image_id": target["id"],
            "provider": json.dumps({"api-url": engine.api_url, "ca-file": str(engine.ca_file),
                                    **provider}),
            "credentials": credentials_xml(engine.username, password or engine.password),
            "parameters": {"endpoints": [engine.api_url]}}


def test_target_image_is_qcow2_compat_1_1_with_the_guest_agent(e2e_app, rhevm_target):
    assert rhevm_target["target"] == "rhevm"
    assert rhevm_target["properties"]["disk_format"] == "qcow2"
    assert rhevm_target["properties"]["qcow2_compat"] == "1.1"
    assert 'name="qemu-guest-agent-' in rhevm_target["icicle"]
    body = e2e_app.services.store.body_path(rhevm_target["id"])
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(body)],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2"
    assert info["format-specific"]["data"]["compat"] == "1.1"
    assert info["virtual-size"] == rhevm_target["properties"]["virtual_size"]


def test_push_makes_a_template_of_what_imageio_received_and_delete_removes_it(
        e2e_app, e2e_client, rhevm_target, ovirt_engine, admin):
    pushed = build(e2e_client, "provider_images",
                   push_request(ovirt_engine, rhevm_target, cluster="_any_",
                                **{"nfs-host": "nfs.example", "nfs-path": "/exports"}))
    assert pushed["status"] == "COMPLETE", pushed["status_detail"]
    assert ovirt_engine.password not in json.dumps(pushed)
    template_id = pushed["identifier_on_provider"]
    assert pushed["provider_account_identifier"] == "admin@internal"
    log = e2e_app.services.store.log_path(pushed["id"]).read_text()
    assert "provider field(s) nfs-host, nfs-path are no longer needed and are ignored" in log
    assert ovirt_engine.password not in log

    templates = admin.system_service().templates_service()
    template = templates.template_service(template_id).get()
    assert template.status.value == "ok"
    attachments = templates.template_service(template_id).disk_attachments_service().list()
    assert len(attachments) == 1
    on_storage = ovirt_engine.inventory.disk(attachments[0].disk.id).path
    body = e2e_app.services.store.body_path(rhevm_target["id"])
    assert subprocess.run(["qemu-img", "compare", "-q", str(on_storage), str(body)]).returncode \
        == 0
    assert filecmp.cmp(on_storage, body, shallow=False)  # byte for byte: the qcow2 itself

    href = f"/imagefactory/provider_images/{pushed['id']}"
    answer = e2e_client.simulate_delete(href, json={"provider_image": {
        "provider": json.dumps({"api-url": ovirt_engine.api_url,
                                "ca-file": str(ovirt_engine.ca_file)}),
        "credentials": credentials_xml(ovirt_engine.username, ovirt_engine.password)}})
    assert answer.status_code == 204, answer.text
    assert wait_for_status(e2e_client, href, timeout=120)["status"] == "DELETED"
    with pytest.raises(ovirtsdk4.NotFoundError):
        templates.template_service(template_id).get()
    with pytest.raises(ovirtsdk4.NotFoundError):
        admin.system_service().disks_service().disk_service(attachments[0].disk.id).get()
    assert not on_storage.exists()


@pytest.mark.parametrize(("password", "provider", "error"), [
    # The core masks every credential value in messages, the user name too.
    ("wrong", {}, "the engine refused the credentials: Error during SSO authentication "
                  "access_denied : Cannot authenticate user '*****': The username or password "
                  "is incorrect."),
    (None, {"cluster": "Nowhere"}, "cluster 'Nowhere' does not exist on the engine; its "
                                   "clusters are: Default, Remote"),
    (None, {"storage-domain": "nope"}, "storage domain 'nope' does not exist on the engine"),
])
def test_a_push_the_engine_cannot_take_fails_with_the_reason(
        e2e_client, rhevm_target, ovirt_engine, password, provider, error):
    disks_before = set(ovirt_engine.inventory.disks)
    pushed = build(e2e_client, "provider_images",
                   push_request(ovirt_engine, rhevm_target, password, **provider))
    assert pushed["status"] == "FAILED"
    assert error in pushed["status_detail"]["error"]
    assert set(ovirt_engine.inventory.disks) == disks_before


def test_an_ova_of_the_rhevm_target_image(e2e_app, e2e_client, rhevm_target, tmp_path):
    """The oVirt OVA layout: vm.ovf, a manifest, and the target image's qcow2 under its disk
    file name, the same disk as the target image's."""
    ova = build(e2e_client, "target_images", {"target": "ova"},
                path=f"/imagefactory/target_images/{rhevm_target['id']}/target_images")
    assert ova["status"] == "COMPLETE", ova["status_detail"]
    assert ova["target_image_id"] == rhevm_target["id"]
    assert ova["properties"]["ova_format"] == "rhevm"
    download = e2e_client.simulate_get(f"/imagefactory/target_images/{ova['id']}/raw_image")
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.content)) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path, filter="data")
    assert names[0] == "vm.ovf"
    (manifest,) = [name for name in names if name.endswith(".mf")]
    (disk,) = [name for name in names if name not in ("vm.ovf", manifest)]
    digests = dict(line.removeprefix("SHA256(").split(")= ")
                   for line in (tmp_path / manifest).read_text().splitlines())
    assert set(digests) == {"vm.ovf", disk}
    for name, digest in digests.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    ovf = etree.parse(str(tmp_path / "vm.ovf")).getroot()
    references = [element.get(f"{{{ovf.nsmap['ovf']}}}href")
                  for element in ovf.iter(f"{{{ovf.nsmap['ovf']}}}File")]
    assert references == [disk]
    body = e2e_app.services.store.body_path(rhevm_target["id"])
    same = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(body),
                           str(tmp_path / disk)], capture_output=True, text=True, check=False)
    assert same.returncode == 0, same.stdout + same.stderr
