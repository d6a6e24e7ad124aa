"""Shared pieces of the vsphere plugin's tests: a synthetic disk, target images made from it
by the plugin, the simulator's provider and credentials, and a pyvmomi view of the simulator
to check what the plugin did.

The plugin is configured as an operator would to reach the local vCenter simulator: its SDK
URL is the plugin's ``endpoints``, and the build contexts' outbound policy allows 127.0.0.1.
The provider pins the simulator's self-signed certificate (``ca_cert``), so TLS is verified.
"""

from __future__ import annotations

import itertools
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagefactory_vsphere as plugin
import pytest
from imagefactory_core.plugin import ImageKind, ImageView, OSSpec, Template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.services.vsphere_support.simulator import Simulator

MIB = 1024 * 1024
OUTBOUND_ALLOW = ("127.0.0.1",)
_ids = itertools.count(1)


def new_id(kind: str) -> str:
    return f"test-{kind}-{os.getpid()}-{next(_ids)}"


@pytest.fixture(scope="session")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 MiB sparse, 6 MiB of data: random and repetitive, as a base image looks to qemu-img."""
    path = tmp_path_factory.mktemp("disk") / "base.raw"
    with path.open("wb") as disk:
        disk.truncate(64 * MIB)
        disk.seek(1 * MIB)
        disk.write(os.urandom(4 * MIB))
        disk.seek(40 * MIB)
        disk.write(b"imagefactory vsphere test\n" * (2 * MIB // 26))
    return path


def debian_template() -> Template:
    return Template(xml="<template/>", name="jeos",
                    os=OSSpec(name="Debian", version="12", arch="x86_64", install_type="url",
                              install_url="http://deb.debian.org/debian"))


@pytest.fixture
def template() -> Template:
    return debian_template()


@pytest.fixture
def new_context(tmp_path: Path) -> Callable[..., RecordingBuildContext]:
    """Build contexts under this test's tmp_path whose outbound policy allows 127.0.0.1
    unless `outbound_allow` says otherwise."""
    def make(outbound_allow: tuple[str, ...] = OUTBOUND_ALLOW) -> RecordingBuildContext:
        image_id = new_id("image")
        return make_build_context(tmp_path / image_id, image_id, outbound_allow=outbound_allow)
    return make


def run_create_target(ctx: RecordingBuildContext, disk: Path, **request: Any) -> ImageView:
    """Run the create-target hook with the parameters the core would resolve from `request`;
    return the target image as a push receives it."""
    result = plugin.imagefactory_create_target_image(
        ctx=ctx, template=debian_template(),
        base_image=ImageView(id=new_id("base"), kind=ImageKind.BASE, body_path=disk),
        source_disk=disk, target="vsphere", parameters=plugin_parameters(plugin, request))
    assert result is not None
    return ImageView(id=ctx.image_id, kind=ImageKind.TARGET, body_path=ctx.body_path,
                     properties=result.properties, target="vsphere")


@pytest.fixture(scope="session")
def vmdk_target(raw_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageView:
    """The plugin's default target image of the raw disk (a streamOptimized VMDK)."""
    ctx = make_build_context(tmp_path_factory.mktemp("vmdk"), "vmdk-target")
    return run_create_target(ctx, raw_disk)


@pytest.fixture(scope="session")
def ova_target(raw_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageView:
    """The raw disk as an OVA target image (vsphere_package ova, paravirtual SCSI)."""
    ctx = make_build_context(tmp_path_factory.mktemp("ova"), "ova-target")
    return run_create_target(ctx, raw_disk, vsphere_package="ova",
                             vsphere_disk_adapter="pvscsi")


@pytest.fixture
def parameters(vsphere_simulator: Simulator) -> Callable[..., dict[str, Any]]:
    """The plugin's parameters for `request`, configured with the simulator as its endpoint
    and `config` besides."""
    def resolve(config: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
        return plugin_parameters(plugin, request,
                                 {"endpoints": [vsphere_simulator.url], **(config or {})})
    return resolve


@pytest.fixture
def provider(vsphere_simulator: Simulator) -> dict[str, Any]:
    """The simulator's provider JSON, its certificate pinned."""
    return {"api-url": vsphere_simulator.url, "datastore": vsphere_simulator.datastore,
            "network_name": vsphere_simulator.network,
            "ca_cert": vsphere_simulator.ca_file.read_text()}


@pytest.fixture
def credentials(vsphere_simulator: Simulator) -> dict[str, Any]:
    """The seed's <provider_credentials><vsphere_credentials> as the core parses it."""
    return {"vsphere_credentials": {"username": vsphere_simulator.username,
                                    "password": vsphere_simulator.password}}


@pytest.fixture(scope="session")
def vcenter(vsphere_simulator: Simulator) -> Iterator[Any]:
    """pyvmomi's own ServiceContent of the simulator, to check what the plugin did."""
    context = ssl.create_default_context(cafile=str(vsphere_simulator.ca_file))
    instance = SmartConnect(host=vsphere_simulator.host, port=vsphere_simulator.port,
                            user=vsphere_simulator.username, pwd=vsphere_simulator.password,
                            sslContext=context)
    yield instance.RetrieveContent()
    Disconnect(instance)


def find_vm(content: Any, instance_uuid: str) -> Any:
    return content.searchIndex.FindByUuid(None, instance_uuid, True, True)


@pytest.fixture
def vm_by_uuid(vcenter: Any) -> Callable[[str], Any]:
    return lambda uuid: find_vm(vcenter, uuid)


@pytest.fixture
def all_vm_names(vcenter: Any) -> Callable[[], set[str]]:
    """The names of the VMs and templates in the VM folders (the simulator keeps a destroyed
    template in its resource pool's list: searching from the root folder would find it)."""
    def names() -> set[str]:
        datacenter = vcenter.rootFolder.childEntity[0]
        view = vcenter.viewManager.CreateContainerView(datacenter.vmFolder,
                                                       [vim.VirtualMachine], True)
        try:
            return {vm.name for vm in view.view}
        finally:
            view.Destroy()
    return names
