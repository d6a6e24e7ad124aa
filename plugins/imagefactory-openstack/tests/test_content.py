"""What the plugin asks the OS to contain, and what it tells Glance about the image."""

from collections.abc import Callable
from pathlib import Path

import imagefactory_openstack as plugin
import pytest
from imagefactory_core.plugin import ImageView, OSSpec, Template
from imagefactory_core.testing import ParameterError, plugin_parameters
from imagefactory_openstack.metadata import image_name, image_properties


def test_content_brings_cloud_init_serial_console_and_classic_nic_names(
        template: Template) -> None:
    content = plugin.imagefactory_target_content(target="openstack-kvm", template=template,
                                                 parameters=plugin_parameters(plugin))
    assert content is not None
    assert content.packages == ("cloud-init", "openssh-server", "cloud-guest-utils")
    assert "rm -f /etc/ssh/ssh_host_*" in content.commands
    grub = content.files["/etc/default/grub.d/90-imagefactory-openstack.cfg"].decode()
    assert "console=ttyS0,115200n8" in grub and "net.ifnames=0" in grub
    assert b"OpenStack" in content.files["/etc/cloud/cloud.cfg.d/90-imagefactory-openstack.cfg"]
    commands = "\n".join(content.commands)
    assert "/etc/systemd/network/99-default.link" in commands
    assert "update-grub" in commands and "extlinux.conf" in commands


def test_content_picks_the_family_growpart_package() -> None:
    rhel = Template(xml="<template/>", name="r", os=OSSpec(
        name="RHEL-9", version="9.4", arch="x86_64", install_type="url"))
    content = plugin.imagefactory_target_content(target="openstack", template=rhel,
                                                 parameters=plugin_parameters(plugin))
    assert content is not None
    assert content.packages == ("cloud-init", "openssh-server", "cloud-utils-growpart")


def test_properties_describe_os_hardware_and_origin(
        template: Template, target_image: Callable[[Path], ImageView]) -> None:
    target = target_image(Path("/x"))
    properties = image_properties(template, target, "prov-1", plugin_parameters(plugin, {
        "openstack_image_properties": {"hw_qemu_guest_agent": "yes", "hw_vif_model": "e1000"}}))
    assert properties == {
        "os_distro": "debian", "os_version": "12", "architecture": "x86_64",
        "hw_disk_bus": "virtio", "hw_vif_model": "e1000", "hw_firmware_type": "bios",
        "hw_qemu_guest_agent": "yes", "imagefactory_provider_image_id": "prov-1",
        "imagefactory_target_image_id": target.id,
        "imagefactory_base_image_id": target.base_image_id,
    }
    assert image_properties(None, target, "p", plugin_parameters(
        plugin, {"openstack_firmware": "UEFI"}))["hw_firmware_type"] == "uefi"


def test_bad_firmware_and_properties_are_refused() -> None:
    with pytest.raises(ParameterError, match=r"'openstack_firmware'.*one of bios, uefi"):
        plugin_parameters(plugin, {"openstack_firmware": "efi"})
    with pytest.raises(ParameterError, match=r"'openstack_image_properties'.*a JSON object"):
        plugin_parameters(plugin, {"openstack_image_properties": ["a"]})


def test_image_name_is_tdl_name_and_id_unless_given(template: Template) -> None:
    defaults = plugin_parameters(plugin)
    assert image_name(template, "abc", defaults) == "jeos-abc"
    assert image_name(None, "abc", defaults) == "imagefactory-abc"
    named = plugin_parameters(plugin, {"openstack_image_name": "web"})
    assert image_name(template, "abc", named) == "web"
