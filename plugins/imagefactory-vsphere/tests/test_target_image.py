"""The vsphere target image: a streamOptimized VMDK (checked with qemu-img, not only by what
the plugin records), or an OVA whose manifest and descriptor hold."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import imagefactory_vsphere as plugin
from imagefactory_core.plugin import ImageView
from imagefactory_ova.ovf import schema_errors
from lxml import etree

from .conftest import MIB


def qemu_info(path: Path, fmt: str = "vmdk") -> dict:
    done = subprocess.run(["qemu-img", "info", "--output=json", "-f", fmt, str(path)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_target_image_is_a_stream_optimized_vmdk(vmdk_target: ImageView):
    info = qemu_info(vmdk_target.body_path)
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert info["virtual-size"] == 64 * MIB == vmdk_target.properties["virtual_size"]
    assert vmdk_target.properties | {"populated_size": 0} == {
        "disk_format": "vmdk", "vsphere_package": "vmdk", "vmdk_subformat": "streamOptimized",
        "virtual_size": 64 * MIB, "populated_size": 0,
        "vmdk_size": vmdk_target.body_path.stat().st_size, "guest_id": "debian12_64Guest",
        "disk_adapter": "lsilogic", "nic": "vmxnet3", "firmware": "bios",
        "hardware_version": "vmx-13", "cpu_count": 1, "memory_mb": 2048}
    assert 6 * MIB <= vmdk_target.properties["populated_size"] <= 8 * MIB
    # the VMDK holds the raw disk's data
    assert vmdk_target.body_path.stat().st_size < 16 * MIB


def test_the_data_survives_the_conversion(vmdk_target: ImageView, raw_disk: Path,
                                          tmp_path: Path):
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw",
                    str(vmdk_target.body_path), str(back)], check=True)
    assert back.read_bytes() == raw_disk.read_bytes()


def test_an_ova_target_image_holds_descriptor_manifest_and_vmdk(ova_target: ImageView,
                                                                tmp_path: Path):
    with tarfile.open(ova_target.body_path) as archive:
        names = archive.getnames()
        assert names == ["jeos.ovf", "jeos.mf", "jeos-disk1.vmdk"]
        archive.extractall(tmp_path, filter="data")
    manifest = dict(line.split("= ") for line in (tmp_path / "jeos.mf").read_text().splitlines())
    for name in ("jeos.ovf", "jeos-disk1.vmdk"):
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert manifest[f"SHA256({name})"] == digest == ova_target.properties["sha256"][name]
    descriptor = (tmp_path / "jeos.ovf").read_bytes()
    assert schema_errors(descriptor) == []
    document = etree.fromstring(descriptor)
    ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1",
          "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
                  "CIM_ResourceAllocationSettingData"}
    assert document.xpath("//rasd:ResourceSubType/text()", namespaces=ns)[0] == "VirtualSCSI"
    assert document.xpath("//ovf:File/@ovf:size", namespaces=ns) == [
        str((tmp_path / "jeos-disk1.vmdk").stat().st_size)]
    info = qemu_info(tmp_path / "jeos-disk1.vmdk")
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert ova_target.properties["disk_format"] == "ova"


def test_target_content_installs_open_vm_tools(template):
    content = plugin.imagefactory_target_content(target="vsphere", template=template,
                                                 parameters={})
    assert content is not None and content.packages == ("open-vm-tools",)
