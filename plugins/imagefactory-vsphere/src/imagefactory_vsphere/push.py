"""Push a vsphere target image into a vCenter as a VM template.

Steps, as the vSphere client's "Deploy OVF template" does them: log in (bad credentials fail
before anything exists), find the provider's placement, describe the VM in an OVF descriptor
(the network the provider names, the sizes and hardware the target image recorded) and let the
vCenter turn it into an import spec (``OvfManager.CreateImportSpec``), start the import
(``ResourcePool.ImportVApp``: the VM exists from now on), send the VMDK to the lease's URL with
progress and keep-alive, complete the lease and mark the VM as a template. Whatever fails or is
cancelled after the import started aborts the lease and destroys the VM, so a failed push
leaves nothing behind.

The template is identified by its instance UUID, which stays the same when vCenter moves or
re-registers it (its managed object id is recorded too).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    ImageView,
    PushResult,
    Template,
)
from imagefactory_ova import archive, vmware
from imagefactory_ova.guest import guest
from pyVmomi import vim

from . import nfc
from . import vmdk as vmdks
from .account import Account, OperatorRules, account_from_request
from .inventory import Placement, locate
from .session import Session, api_errors, logged_in

TASK_TIMEOUT = 600.0


@dataclass(frozen=True)
class Disk:
    """The VMDK a push sends and what the descriptor says of it."""

    source: nfc.Source
    virtual_size: int
    populated_size: int


def account_of(ctx: BuildContext, provider: str | dict[str, Any],
               credentials: dict[str, Any], parameters: Mapping[str, Any]) -> Account:
    account = account_from_request(provider, credentials,
                                   OperatorRules.of(parameters, ctx.outbound))
    ctx.add_secret(account.password)
    return account


def push(ctx: BuildContext, template: Template | None, target_image: ImageView,
         provider: str | dict[str, Any], credentials: dict[str, Any],
         parameters: Mapping[str, Any]) -> PushResult:
    """Import `target_image`'s VMDK as a template where the provider says."""
    account = account_of(ctx, provider, credentials, parameters)
    disk = _disk(ctx, target_image)
    name = str(parameters["vsphere_template_name"]
               or f"{template.name if template else 'imagefactory'}-{ctx.image_id}")
    ctx.progress(0, f"Connecting to {account.describe()}")
    with logged_in(account, ctx.outbound) as session:
        placement = locate(session)
        ctx.check_cancelled()
        machine = _machine(name, template, target_image, disk, account, parameters)
        spec = _import_spec(session, placement, machine, vmware.descriptor(machine))
        ctx.progress(3, f"Importing {name} into datastore {account.datastore}")
        with api_errors("starting the import (ImportVApp)", account):
            lease = placement.resource_pool.ImportVApp(spec.importSpec, placement.folder)
        vm = None
        try:
            nfc.wait_until_ready(ctx, session, lease)
            vm = lease.info.entity
            url = nfc.device_url(session, lease, spec.fileItem[0].deviceId)
            nfc.send(ctx.scaled(5, 95), session, lease, url, disk.source)
            with api_errors("completing the import", account):
                lease.HttpNfcLeaseProgress(100)
                lease.HttpNfcLeaseComplete()
            ctx.progress(96, f"Marking {name} as a template")
            with api_errors(f"marking {name} as a template", account):
                vm.MarkAsTemplate()
                uuid, moid = vm.config.instanceUuid, vm._moId
        except BaseException:
            _discard(ctx, session, lease, vm)
            raise
    ctx.progress(100, f"Template {name} ({moid}, instance UUID {uuid}) is in "
                      f"{account.api_url}")
    return PushResult(identifier_on_provider=uuid, provider_account_identifier=account.username,
                      properties={"name": name, "managed_object_id": moid,
                                  "instance_uuid": uuid, "api_url": account.api_url,
                                  "datastore": account.datastore, "network": account.network,
                                  "guest_id": machine.guest_id})


def _disk(ctx: BuildContext, target_image: ImageView) -> Disk:
    """The VMDK of the target image: its body, or the VMDK in the OVA it is. A target image
    this plugin made records its sizes; any other is inspected."""
    body = target_image.body_path
    recorded = target_image.properties
    if recorded.get("vsphere_package") == "ova":
        vmdk = next((m for m in archive.members(body).values() if m.name.endswith(".vmdk")),
                    None)
        if vmdk is None:
            raise BuildError(f"target image {target_image.id} is an OVA without a VMDK")
        source = nfc.Source(body, vmdk.offset, vmdk.size)
    else:
        source = nfc.Source(body, 0, body.stat().st_size)
    if "virtual_size" in recorded and "populated_size" in recorded:
        return Disk(source, int(recorded["virtual_size"]), int(recorded["populated_size"]))
    if source.offset:
        raise BuildError(f"target image {target_image.id} does not record its disk's sizes")
    found = vmdks.inspect(ctx, body)
    return Disk(source, found.virtual_size, found.populated_size)


def _machine(name: str, template: Template | None, target_image: ImageView, disk: Disk,
             account: Account, parameters: Mapping[str, Any]) -> vmware.Machine:
    """The VM the descriptor describes: the target image's recorded hardware, the provider's
    network."""
    recorded = target_image.properties
    os_guest = guest(template.os.name, template.os.version, template.os.arch) if template \
        else guest("Linux", "", "x86_64")
    return vmware.Machine(
        name=name, guest_id=str(recorded.get("guest_id") or os_guest.vsphere_guest_id),
        cim_os_type=os_guest.cim_os_type, os_description=os_guest.description,
        disk_file="disk-0.vmdk", disk_file_size=disk.source.size,
        capacity=disk.virtual_size, populated_size=disk.populated_size,
        controller=str(recorded.get("disk_adapter") or parameters["vsphere_disk_adapter"]),
        nic=str(recorded.get("nic") or parameters["vsphere_nic"]), network=account.network,
        cpus=int(recorded.get("cpu_count") or parameters["vsphere_cpu_count"]),
        memory_mb=int(recorded.get("memory_mb") or parameters["vsphere_memory_mb"]),
        hardware_version=str(recorded.get("hardware_version")
                             or parameters["vsphere_hardware_version"]),
        firmware=str(recorded.get("firmware") or parameters["vsphere_firmware"]))


def _import_spec(session: Session, placement: Placement, machine: vmware.Machine,
                 descriptor: bytes) -> Any:
    """The vCenter's import spec for `descriptor`; its errors fail the push, its warnings
    are logged."""
    params = vim.OvfManager.CreateImportSpecParams(
        entityName=machine.name, diskProvisioning="thin",
        networkMapping=[vim.OvfManager.NetworkMapping(name=machine.network,
                                                      network=placement.network)])
    with api_errors("creating the import spec (OvfManager.CreateImportSpec)",
                    session.account):
        spec = session.content.ovfManager.CreateImportSpec(
            descriptor.decode(), placement.resource_pool, placement.datastore, params)
    if spec.error:
        raise BuildError("the vCenter refused the VM's description: "
                         + "; ".join(e.localizedMessage or type(e.fault).__name__
                                     for e in spec.error))
    if not spec.fileItem:
        raise BuildError("the vCenter's import spec expects no disk upload")
    return spec


def _discard(ctx: BuildContext, session: Session, lease: Any, vm: Any) -> None:
    """Abort the import and destroy the VM it made, even after cancellation. A failure here
    is logged, not raised, so the original error is the one the user sees."""
    try:
        lease.HttpNfcLeaseAbort()
    except Exception as exc:
        ctx.log(f"could not abort the import lease: {exc}")
    if vm is None:
        return
    try:
        destroy(ctx, session, vm)
        ctx.log(f"destroyed the incomplete VM {vm._moId}")
    except vim.fault.ManagedObjectNotFound:
        ctx.log("the vCenter removed the incomplete VM itself")
    except Exception as exc:
        ctx.log(f"could not destroy the incomplete VM {vm._moId}: {exc}")


def destroy(ctx: BuildContext, session: Session, vm: Any) -> None:
    """Destroy `vm` and wait for the task (pyvmomi faults propagate)."""
    task = vm.Destroy_Task()
    deadline = time.monotonic() + TASK_TIMEOUT
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        if time.monotonic() > deadline:
            raise BuildError(f"destroying {vm._moId} did not finish in {TASK_TIMEOUT:.0f} s")
        time.sleep(0.2)
    if task.info.state == vim.TaskInfo.State.error:
        raise task.info.error

