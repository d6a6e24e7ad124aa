"""The whole vsphere flow through the REST API, on the session's real Debian image and
govmomi's vCenter simulator: base → streamOptimized VMDK target → template in vCenter →
DELETE, checked with pyvmomi; the errors a user gets for wrong credentials and an unknown
datastore; and an OVA made from the vsphere target image (``/target_images/<id>/target_images``),
downloaded and checked: manifest digests, the OVF against the envelope schema, the VMDK."""

from __future__ import annotations

import hashlib
import io
import json
import ssl
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.testing import wait_for_status
from imagefactory_ova.ovf import schema_errors
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.services.vsphere_support.simulator import Simulator

from .conftest import build

pytestmark = pytest.mark.slow


def credentials_xml(simulator: Simulator, password: str | None = None) -> str:
    """The seed's <provider_credentials> form."""
    return f"""<provider_credentials>
  <vsphere_credentials>
    <username>{simulator.username}</username>
    <password>{password or simulator.password}</password>
  </vsphere_credentials>
</provider_credentials>"""


def provider_of(simulator: Simulator, **changes: str) -> dict[str, str]:
    return {"api-url": simulator.url, "datastore": simulator.datastore,
            "network_name": simulator.network, "ca_cert": simulator.ca_file.read_text(),
            **changes}


def qemu_info(path: Path) -> dict[str, Any]:
    done = subprocess.run(["qemu-img", "info", "--output=json", "-f", "vmdk", str(path)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def vsphere_target(e2e_client, bookworm_base) -> dict[str, Any]:
    image = build(e2e_client, "target_images",
                  {"target": "vsphere", "base_image_id": bookworm_base["id"]})
    assert image["status"] == "COMPLETE", image["status_detail"]
    return image


@pytest.fixture(scope="module")
def vcenter(vsphere_simulator: Simulator) -> Iterator[Any]:
    """pyvmomi's own view of the simulator."""
    instance = SmartConnect(host=vsphere_simulator.host, port=vsphere_simulator.port,
                            user=vsphere_simulator.username, pwd=vsphere_simulator.password,
                            sslContext=ssl.create_default_context(
                                cafile=str(vsphere_simulator.ca_file)))
    yield instance.RetrieveContent()
    Disconnect(instance)


def push(e2e_client, target: dict[str, Any], simulator: Simulator,
         provider: dict[str, str] | None = None, password: str | None = None) -> dict[str, Any]:
    return build(e2e_client, "provider_images", {
        "target": "vsphere", "provider": provider or provider_of(simulator),
        "credentials": credentials_xml(simulator, password),
        "parameters": {"endpoints": [simulator.url]}},
        path=f"/imagefactory/target_images/{target['id']}/provider_images", timeout=600)


def test_the_target_image_is_a_stream_optimized_vmdk_with_open_vm_tools(e2e_app,
                                                                        vsphere_target):
    body = e2e_app.services.store.body_path(vsphere_target["id"])
    info = qemu_info(body)
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert info["virtual-size"] == 3 * 1024**3 == vsphere_target["properties"]["virtual_size"]
    assert vsphere_target["properties"]["disk_format"] == "vmdk"
    assert 'name="open-vm-tools-' in vsphere_target["icicle"]


def test_push_makes_a_template_and_delete_destroys_it(e2e_client, vsphere_target,
                                                      vsphere_simulator, vcenter):
    pushed = push(e2e_client, vsphere_target, vsphere_simulator)
    assert pushed["status"] == "COMPLETE", pushed["status_detail"]
    assert vsphere_simulator.password not in json.dumps(pushed)
    uuid = pushed["identifier_on_provider"]
    vm = vcenter.searchIndex.FindByUuid(None, uuid, True, True)
    assert vm is not None and vm.config.template
    assert vm._moId == pushed["properties"]["managed_object_id"]
    assert vm.config.guestId == "debian12_64Guest"
    disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    assert [d.capacityInKB for d in disks] == [3 * 1024 * 1024]
    nics = [d for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert [n.backing.deviceName for n in nics] == [vsphere_simulator.network]
    assert pushed["provider_account_identifier"] == vsphere_simulator.username

    href = f"/imagefactory/provider_images/{pushed['id']}"
    deleted = e2e_client.simulate_delete(href, json={"provider_image": {
        "target": "vsphere", "provider": provider_of(vsphere_simulator),
        "credentials": credentials_xml(vsphere_simulator)}})
    assert deleted.status_code == 204, deleted.text
    assert wait_for_status(e2e_client, href, timeout=120)["status"] == "DELETED"
    assert vcenter.searchIndex.FindByUuid(None, uuid, True, True) is None


def test_wrong_credentials_fail_clearly(e2e_client, vsphere_target, vsphere_simulator):
    pushed = push(e2e_client, vsphere_target, vsphere_simulator, password="wrong-password")
    assert pushed["status"] == "FAILED"
    assert "the vCenter refused the username or password (InvalidLogin)" in \
        pushed["status_detail"]["error"]
    assert pushed["identifier_on_provider"] is None


def test_an_unknown_datastore_fails_clearly(e2e_client, vsphere_target, vsphere_simulator):
    provider = provider_of(vsphere_simulator, datastore="datastore-that-is-not-there")
    pushed = push(e2e_client, vsphere_target, vsphere_simulator, provider=provider)
    assert pushed["status"] == "FAILED"
    assert (f"has no datastore named 'datastore-that-is-not-there'; it has: "
            f"{vsphere_simulator.datastore}") in pushed["status_detail"]["error"]


def test_an_ova_of_the_vsphere_target_image(e2e_client, vsphere_target, tmp_path):
    ova = build(e2e_client, "target_images", {"target": "ova"},
                path=f"/imagefactory/target_images/{vsphere_target['id']}/target_images")
    assert ova["status"] == "COMPLETE", ova["status_detail"]
    assert ova["target_image_id"] == vsphere_target["id"]
    assert ova["properties"]["ova_format"] == "vsphere"
    download = e2e_client.simulate_get(f"/imagefactory/target_images/{ova['id']}/raw_image")
    assert download.status_code == 200
    assert download.headers["content-disposition"].endswith(f'{ova["id"]}.ova"')
    with tarfile.open(fileobj=io.BytesIO(download.content)) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path, filter="data")
    assert names == ["e2e-bookworm.ovf", "e2e-bookworm.mf", "e2e-bookworm-disk1.vmdk"]
    for line in (tmp_path / "e2e-bookworm.mf").read_text().splitlines():
        label, digest = line.split("= ")
        name = label.removeprefix("SHA256(").removesuffix(")")
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    assert schema_errors((tmp_path / "e2e-bookworm.ovf").read_bytes()) == []
    info = qemu_info(tmp_path / "e2e-bookworm-disk1.vmdk")
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
