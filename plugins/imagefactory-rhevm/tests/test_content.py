"""What the plugin asks the OS plugin to put into a guest: the guest agents and no NIC names
bound to the build machine."""

from collections.abc import Callable

import imagefactory_rhevm as plugin
import pytest
from imagefactory_core.plugin import Template
from imagefactory_core.testing import plugin_parameters


def content_for(template_for: Callable[..., Template], os_name: str, version: str):
    found = plugin.imagefactory_target_content(
        target="rhevm", template=template_for(os_name=os_name, version=version),
        parameters=plugin_parameters(plugin))
    assert found is not None
    return found


@pytest.mark.parametrize(("os_name", "version"), [
    ("Debian", "12"), ("Debian", "11"), ("Ubuntu", "22.04"), ("Fedora", "40"), ("RHEL-9", "9.4"),
    ("CentOS", "7"),
])
def test_qemu_guest_agent_everywhere_and_no_ovirt_guest_agent_where_the_os_dropped_it(
        template_for, os_name: str, version: str) -> None:
    found = content_for(template_for, os_name, version)
    assert found.packages == ("qemu-guest-agent",)


@pytest.mark.parametrize(("os_name", "version"), [
    ("Debian", "10"), ("Debian", "9"), ("Ubuntu", "18.04"), ("Fedora", "28"),
])
def test_ovirt_guest_agent_where_the_os_packages_it(template_for, os_name: str,
                                                    version: str) -> None:
    assert content_for(template_for, os_name, version).packages == (
        "qemu-guest-agent", "ovirt-guest-agent")


def test_no_qemu_guest_agent_before_rhel_6(template_for) -> None:
    assert content_for(template_for, "RHEL-5", "5.11").packages == ()
    assert content_for(template_for, "CentOS", "6").packages == ("qemu-guest-agent",)


def test_persistent_nic_names_are_removed(template_for) -> None:
    found = content_for(template_for, "Debian", "12")
    assert found.commands == ("rm -f /etc/udev/rules.d/70-persistent-net.rules",)
    assert found.files == {}
