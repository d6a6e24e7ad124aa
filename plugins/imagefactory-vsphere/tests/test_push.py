"""Pushes and deletes against govmomi's vCenter simulator (tests/services/vsphere_support):
the template the vCenter ends with, the progress reported, the errors a user gets, and
that nothing is left behind when a push fails or is cancelled."""

from __future__ import annotations

import threading
from typing import Any

import imagefactory_vsphere as plugin
import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError, ImageKind, ImageView
from pyVmomi import vim

from .conftest import debian_template, new_id

pytestmark = pytest.mark.slow  # starts the simulator (about a second once it is built)


def push(ctx: Any, target_image: ImageView, provider: dict[str, Any],
         credentials: dict[str, Any], parameters: dict[str, Any]) -> Any:
    return plugin.imagefactory_push_image(
        ctx=ctx, template=debian_template(), target_image=target_image, target="vsphere",
        provider=provider, credentials=credentials, parameters=parameters)


def delete(ctx: Any, uuid: str | None, provider: dict[str, Any],
           credentials: dict[str, Any], parameters: dict[str, Any]) -> None:
    plugin.imagefactory_delete_from_provider(
        ctx=ctx, provider_image=ImageView(id=new_id("provider"), kind=ImageKind.PROVIDER,
                                          body_path=ctx.body_path, identifier_on_provider=uuid),
        target="vsphere", provider=provider, credentials=credentials, parameters=parameters)


def test_push_makes_a_template_and_delete_destroys_it(new_context, vmdk_target, provider,
                                                      credentials, parameters, vm_by_uuid,
                                                      vsphere_simulator):
    ctx = new_context()
    result = push(ctx, vmdk_target, provider, credentials, parameters())
    vm = vm_by_uuid(result.identifier_on_provider)
    assert vm is not None and vm.config.template
    assert vm.name == f"jeos-{ctx.image_id}" == result.properties["name"]
    assert vm._moId == result.properties["managed_object_id"]
    assert vm.config.guestId == "debian12_64Guest"
    disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    assert [d.capacityInKB * 1024 for d in disks] == [vmdk_target.properties["virtual_size"]]
    controllers = [d for d in vm.config.hardware.device
                   if isinstance(d, vim.vm.device.VirtualSCSIController)]
    assert [type(c) for c in controllers] == [vim.vm.device.VirtualLsiLogicController]
    nics = [d for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert [type(n) for n in nics] == [vim.vm.device.VirtualVmxnet3]
    assert [n.backing.deviceName for n in nics] == [vsphere_simulator.network]
    assert vm.datastore[0].name == vsphere_simulator.datastore
    assert result.provider_account_identifier == vsphere_simulator.username
    percents = [percent for percent, _ in ctx.reports]
    assert percents == sorted(percents) and percents[-1] == 100
    assert any(activity and "Uploaded" in activity for _, activity in ctx.reports)
    assert vsphere_simulator.password not in "\n".join(ctx.lines)

    delete(new_context(), result.identifier_on_provider, provider, credentials, parameters())
    assert vm_by_uuid(result.identifier_on_provider) is None
    again = new_context()
    delete(again, result.identifier_on_provider, provider, credentials, parameters())
    assert any("treated as deleted" in line for line in again.lines)


def test_an_ova_target_image_is_pushed_from_inside_the_archive(new_context, ova_target,
                                                               provider, credentials,
                                                               parameters, vm_by_uuid,
                                                               vsphere_simulator):
    result = push(new_context(), ova_target, provider, credentials,
                  parameters(vsphere_template_name="from-an-ova"))
    vm = vm_by_uuid(result.identifier_on_provider)
    assert vm.name == "from-an-ova"
    controllers = [d for d in vm.config.hardware.device
                   if isinstance(d, vim.vm.device.VirtualSCSIController)]
    assert [type(c) for c in controllers] == [vim.vm.device.ParaVirtualSCSIController]
    log = (vsphere_simulator.log_file).read_text()
    assert f"transferred {ova_target.properties['vmdk_size']} bytes" in log
    delete(new_context(), result.identifier_on_provider, provider, credentials, parameters())


def test_wrong_credentials_fail_before_anything_is_made(new_context, vmdk_target, provider,
                                                        parameters, all_vm_names):
    before = all_vm_names()
    wrong = {"vsphere_credentials": {"username": "administrator@vsphere.local",
                                     "password": "not-the-password"}}
    with pytest.raises(BuildError, match="refused the username or password"):
        push(new_context(), vmdk_target, provider, wrong, parameters())
    assert all_vm_names() == before


def test_an_unknown_datastore_fails_naming_the_ones_there(new_context, vmdk_target, provider,
                                                          credentials, parameters,
                                                          vsphere_simulator):
    with pytest.raises(BuildError, match="has no datastore named 'nope'; it has: "
                                         f"{vsphere_simulator.datastore}"):
        push(new_context(), vmdk_target, {**provider, "datastore": "nope"}, credentials,
             parameters())


def test_an_unknown_network_fails_naming_the_ones_there(new_context, vmdk_target, provider,
                                                        credentials, parameters):
    with pytest.raises(BuildError, match=r"has no network named 'Lab'; it has: .*VM Network"):
        push(new_context(), vmdk_target, {**provider, "network_name": "Lab"}, credentials,
             parameters())


def test_tls_is_verified(new_context, vmdk_target, provider, credentials, parameters):
    """Without the pinned CA, the simulator's self-signed certificate is refused; the
    operator may turn verification off."""
    unpinned = {k: v for k, v in provider.items() if k != "ca_cert"}
    with pytest.raises(BuildError, match=r"certificate of 127\.0\.0\.1 is not trusted"):
        push(new_context(), vmdk_target, unpinned, credentials, parameters())
    result = push(new_context(), vmdk_target, unpinned, credentials,
                  parameters(config={"tls_verify": False}))
    delete(new_context(), result.identifier_on_provider, unpinned, credentials,
           parameters(config={"tls_verify": False}))


def test_the_outbound_policy_applies(new_context, vmdk_target, provider, credentials,
                                    parameters, vsphere_simulator):
    """A literal address is refused before connecting; a name once it resolves."""
    with pytest.raises(BuildError, match="is a loopback address, which this service does "
                                         "not connect to"):
        push(new_context(outbound_allow=()), vmdk_target, provider, credentials, parameters())
    by_name = f"https://localhost:{vsphere_simulator.port}/sdk"
    with pytest.raises(BuildError, match="refused by the outbound policy"):
        push(new_context(outbound_allow=()), vmdk_target, {**provider, "api-url": by_name},
             credentials, parameters(config={"endpoints": [by_name]}))


def test_a_cancelled_push_leaves_no_vm(new_context, vmdk_target, provider, credentials,
                                       parameters, all_vm_names):
    """Cancelled during the upload: the lease is aborted and the VM destroyed."""
    before = all_vm_names()
    ctx = new_context()
    sink = ctx.progress_sink

    def cancel_midway(percent: int, activity: str | None) -> None:
        sink(percent, activity)
        if percent >= 50:
            ctx.cancel_event.set()

    ctx.progress_sink = cancel_midway
    with pytest.raises(BuildCancelled):
        push(ctx, vmdk_target, provider, credentials, parameters())
    assert any("destroyed the incomplete VM" in line for line in ctx.lines), ctx.lines
    assert all_vm_names() == before


def test_concurrent_pushes_make_distinct_templates(new_context, vmdk_target, provider,
                                                   credentials, parameters, vm_by_uuid):
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(
        push(new_context(), vmdk_target, provider, credentials, parameters())))
        for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    uuids = {r.identifier_on_provider for r in results}
    assert len(uuids) == 2 and all(vm_by_uuid(u) is not None for u in uuids)
    for uuid in uuids:
        delete(new_context(), uuid, provider, credentials, parameters())
