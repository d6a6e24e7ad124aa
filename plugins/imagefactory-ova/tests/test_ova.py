"""The ova target on real disks: the vsphere layout from a streamOptimized VMDK and the oVirt
layout from a raw disk, each archive read back with tarfile, its manifest digests recomputed,
its descriptor validated against the OVF envelope schema, its disk read with qemu-img."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import imagefactory_ova as plugin
import pytest
from imagefactory_core.plugin import BuildError, ImageKind, ImageView, OSSpec, Template
from imagefactory_core.testing import loaded_plugin, make_build_context, plugin_parameters
from imagefactory_ova.ovf import OVF, RASD, schema_errors
from lxml import etree

MIB = 1024 * 1024
NS = {"ovf": OVF, "rasd": RASD, "vmw": "http://www.vmware.com/schema/ovf"}
TEMPLATE = Template(xml="<template/>", name="web appliance",
                    os=OSSpec(name="Debian", version="12", arch="x86_64", install_type="url",
                              install_url="http://deb.debian.org/debian"))


@pytest.fixture(scope="module")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("disk") / "disk.raw"
    with path.open("wb") as disk:
        disk.truncate(32 * MIB)
        disk.seek(2 * MIB)
        disk.write(os.urandom(3 * MIB))
    return path


@pytest.fixture(scope="module")
def vmdk(raw_disk: Path) -> Path:
    path = raw_disk.with_suffix(".vmdk")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                    "subformat=streamOptimized", str(raw_disk), str(path)], check=True)
    return path


def source(body: Path, target: str, **properties: Any) -> ImageView:
    return ImageView(id=f"source-{target}", kind=ImageKind.TARGET, body_path=body,
                     target=target, base_image_id="base", properties=properties)


def make(tmp_path: Path, image: ImageView, **request: Any) -> tuple[Path, dict[str, Any]]:
    ctx = make_build_context(tmp_path / "ctx", "ova-image")
    result = plugin.imagefactory_create_target_image(
        ctx=ctx, template=TEMPLATE, base_image=image, source_disk=image.body_path,
        target="ova", parameters=plugin_parameters(plugin, request))
    assert result is not None
    return ctx.body_path, result.properties


def unpack(ova: Path, into: Path) -> list[str]:
    with tarfile.open(ova) as archive:
        archive.extractall(into, filter="data")
        return archive.getnames()


def verified_manifest(directory: Path, manifest: str) -> dict[str, str]:
    """The manifest's digests, each checked against the file it names."""
    digests = {}
    for line in (directory / manifest).read_text().splitlines():
        label, digest = line.split("= ")
        name = label.removeprefix("SHA256(").removesuffix(")")
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
        digests[name] = digest
    return digests


def test_vsphere_layout(tmp_path, vmdk):
    ova, properties = make(tmp_path, source(vmdk, "vsphere", guest_id="debian12_64Guest",
                                            disk_adapter="pvscsi", cpu_count=2,
                                            memory_mb=4096, firmware="efi"))
    names = unpack(ova, tmp_path / "x")
    assert names == ["web_appliance.ovf", "web_appliance.mf", "web_appliance-disk1.vmdk"]
    digests = verified_manifest(tmp_path / "x", "web_appliance.mf")
    assert set(digests) == {"web_appliance.ovf", "web_appliance-disk1.vmdk"}
    assert properties["sha256"] == digests and properties["disk_format"] == "ova"
    assert (tmp_path / "x" / "web_appliance-disk1.vmdk").read_bytes() == vmdk.read_bytes()
    descriptor = (tmp_path / "x" / "web_appliance.ovf").read_bytes()
    assert schema_errors(descriptor) == []
    doc = etree.fromstring(descriptor)
    assert doc.xpath("//ovf:OperatingSystemSection/@vmw:osType", namespaces=NS) == [
        "debian12_64Guest"]
    assert doc.xpath("//ovf:OperatingSystemSection/@ovf:id", namespaces=NS) == ["96"]
    assert doc.xpath("//ovf:Disk/@ovf:capacity", namespaces=NS) == [str(32 * MIB)]
    assert doc.xpath("//ovf:Disk/@ovf:format", namespaces=NS) == [
        "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"]
    assert doc.xpath("//rasd:ResourceSubType/text()", namespaces=NS) == ["VirtualSCSI",
                                                                         "VmxNet3"]
    quantities = doc.xpath("//ovf:Item[rasd:ResourceType<5]/rasd:VirtualQuantity/text()",
                           namespaces=NS)
    assert quantities == ["2", "4096"]
    assert doc.xpath("//vmw:Config/@vmw:value", namespaces=NS) == ["efi"]


def test_rhevm_layout_converts_a_raw_disk_to_qcow2(tmp_path, raw_disk):
    ova, properties = make(tmp_path, source(raw_disk, "rhevm", disk_format="raw"),
                           ovf_memory_mb=1024)
    names = unpack(ova, tmp_path / "x")
    assert names[:2] == ["vm.ovf", "vm.mf"] and len(names) == 3
    disk_name = names[2]
    verified_manifest(tmp_path / "x", "vm.mf")
    assert properties["ova_format"] == "rhevm"
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", "qcow2", str(tmp_path / "x" / disk_name)],
        capture_output=True, text=True, check=True).stdout)
    assert info["virtual-size"] == 32 * MIB and info["format-specific"]["data"]["compat"] == "1.1"
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                    str(tmp_path / "x" / disk_name), str(back)], check=True)
    assert back.read_bytes() == raw_disk.read_bytes()
    descriptor = (tmp_path / "x" / "vm.ovf").read_bytes()
    assert schema_errors(descriptor) == []
    doc = etree.fromstring(descriptor)
    assert doc.xpath("//ovf:File/@ovf:href", namespaces=NS) == [disk_name]
    assert doc.xpath("//ovf:Disk/@ovf:fileRef", namespaces=NS) == [disk_name]
    disk_id = doc.xpath("//ovf:Disk/@ovf:diskId", namespaces=NS)[0]
    assert doc.xpath("//rasd:HostResource/text()", namespaces=NS) == [f"ovf:/disk/{disk_id}"]
    assert doc.xpath("//ovf:Disk/@ovf:volume-format", namespaces=NS) == ["COW"]
    assert doc.xpath("//ovf:Disk/@ovf:capacity", namespaces=NS) == ["1"]  # GiB, rounded up
    assert doc.xpath("//ovf:Item[rasd:ResourceType=4]/rasd:VirtualQuantity/text()",
                     namespaces=NS) == ["1024"]


@pytest.mark.parametrize(("image", "request_", "says"), [
    ("vsphere", {"ova_format": "rhevm"}, "ova_format rhevm packages a rhevm target image"),
    ("ec2", {}, "an OVA is made from a vsphere or rhevm target image, not from 'ec2'"),
    ("vsphere-ova", {}, "is an OVA already"),
    ("vsphere-sparse", {}, "is a monolithicSparse VMDK; an OVA needs a streamOptimized one"),
])
def test_refusals(tmp_path, raw_disk, vmdk, image, request_, says):
    if image == "vsphere-sparse":
        sparse = tmp_path / "sparse.vmdk"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", str(raw_disk),
                        str(sparse)], check=True)
        view = source(sparse, "vsphere")
    elif image == "vsphere-ova":
        view = source(vmdk, "vsphere", vsphere_package="ova")
    else:
        view = source(vmdk, image)
    with pytest.raises(BuildError, match=says):
        make(tmp_path, view, **request_)


def test_the_schema_catches_what_importers_reject(tmp_path, vmdk):
    """The envelope schema is not a rubber stamp: properties out of CIM order, a missing
    required attribute and an unknown section are each refused."""
    ova, _ = make(tmp_path, source(vmdk, "vsphere"))
    unpack(ova, tmp_path / "x")
    good = (tmp_path / "x" / "web_appliance.ovf").read_text()
    swapped = good.replace("<rasd:Description>Memory Size</rasd:Description>\n"
                           "        <rasd:ElementName>2048MB of memory</rasd:ElementName>",
                           "<rasd:ElementName>2048MB of memory</rasd:ElementName>\n"
                           "        <rasd:Description>Memory Size</rasd:Description>")
    assert swapped != good
    no_id = good.replace('ovf:diskId="vmdisk1" ', "")
    unknown = good.replace("<DiskSection>", "<FloppySection><Info>x</Info></FloppySection>"
                                            "<DiskSection>")
    for broken, says in ((swapped, "Description"), (no_id, "diskId"),
                         (unknown, "FloppySection")):
        errors = schema_errors(broken.encode())
        assert errors and says in " ".join(errors), errors


def test_the_plugin_loads_as_the_service_loads_it():
    shown = loaded_plugin(plugin)
    assert shown["status"] == "loaded" and shown["targets"] == [["ova"]]
    assert plugin.TARGET.from_targets == ("vsphere", "rhevm")
