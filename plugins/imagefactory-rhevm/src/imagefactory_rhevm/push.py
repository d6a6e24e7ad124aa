"""Push a target image into oVirt as a template.

Steps: log in (bad credentials fail before anything exists), choose the cluster and storage
domain (`placement`), create a disk of the body's format and size, upload the body into it
through an image transfer (`upload`: imageio, resumable), finalize the transfer and wait until
the engine has verified the disk, create a VM from the Blank template with the disk attached,
make a template of the VM (the engine copies the disk), and remove the VM with its disk. The
engine offers no call that turns a disk into a template directly, hence the temporary VM.
Whatever fails or is cancelled removes what the push made, so a failed push leaves nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ovirtsdk4
import ovirtsdk4.services
from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    ImageView,
    PushResult,
    Template,
)
from ovirtsdk4 import types

from .convert import Body, describe, inspect
from .engine import connected, engine_errors, gone, wait_until
from .placement import Placement, place
from .provider import Account, account_from_request
from .upload import open_destination, upload

INACTIVITY_TIMEOUT = 120
"""Seconds the engine waits for the next imageio request before it pauses the transfer."""
DISCARD_TIMEOUT = 120.0
_BLANK_TEMPLATE = "Blank"


@dataclass
class _Made:
    """What the push has created on the engine so far (ids), for the clean-up."""

    disk: str | None = None
    transfer: str | None = None
    vm: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class _Names:
    template: str
    vm: str
    disk: str
    description: str


def push(ctx: BuildContext, template: Template | None, target_image: ImageView,
         provider: str | dict[str, Any], credentials: dict[str, Any],
         parameters: Mapping[str, Any]) -> PushResult:
    """Upload `target_image`'s body to the engine `provider` names and make it a template."""
    account = account_from_request(provider, credentials, parameters, ctx.outbound)
    ctx.add_secret(account.password)
    for note in account.notes:
        ctx.progress(0, note)
    body = _describe_body(ctx, target_image)
    names = _names(template, target_image, ctx.image_id, parameters)
    ctx.progress(0, f"Connecting to {account.describe()}")
    with connected(ctx, account, ctx.outbound) as system:
        placement = place(system, account.cluster, account.storage_domain)
        ctx.log(f"the template goes to cluster {placement.cluster.name!r}, its disk to storage "
                f"domain {placement.storage_domain.name!r}")
        made = _Made()
        try:
            disk = _create_disk(ctx.scaled(1, 3), system, body, placement, names, account, made)
            _transfer(ctx.scaled(3, 90), system, disk, body, target_image.body_path, account,
                      made)
            vm_service = _create_vm(ctx.scaled(90, 93), system, disk, placement, names,
                                    parameters, account, made)
            template_id, disk_ids = _create_template(ctx.scaled(93, 99), system, placement,
                                                     names, account, made)
            _remove_vm(ctx, vm_service, account)
            made.vm = None
        except BaseException:
            _discard(ctx, system, made)
            raise
    ctx.progress(100, f"Template {names.template} ({template_id}) is ready in cluster "
                      f"{placement.cluster.name}")
    return PushResult(
        identifier_on_provider=template_id,
        provider_account_identifier=account.username,
        properties={"name": names.template, "cluster": placement.cluster.name,
                    "storage_domain": placement.storage_domain.name,
                    "disk_format": body.disk_format, "disk_ids": disk_ids},
    )


def _describe_body(ctx: BuildContext, target_image: ImageView) -> Body:
    """A target image this plugin made records its format and virtual size; any other body
    is inspected with qemu-img."""
    path = target_image.body_path
    recorded = target_image.properties
    if recorded.get("disk_format") in ("qcow2", "raw") and "virtual_size" in recorded:
        return Body(str(recorded["disk_format"]), int(recorded["virtual_size"]),
                    path.stat().st_size)
    return describe(inspect(ctx, path), path)


def _names(template: Template | None, target_image: ImageView, image_id: str,
           parameters: Mapping[str, Any]) -> _Names:
    explicit = parameters["rhevm_template_name"]
    base = template.name if template else "imagefactory"
    name = explicit or re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{base}-{image_id}").strip("-")[:255]
    described = f"imagefactory provider image {image_id} of target image {target_image.id}"
    if target_image.base_image_id:
        described += f" (base image {target_image.base_image_id})"
    return _Names(template=name, vm=f"imagefactory-{image_id}"[:64], disk=f"{name}-disk"[:255],
                  description=described)


def _create_disk(ctx: BuildContext, system: ovirtsdk4.services.SystemService, body: Body,
                 placement: Placement, names: _Names, account: Account,
                 made: _Made) -> types.Disk:
    """An empty disk of the body's format: as big as the disk inside (provisioned) and, for
    qcow2, with room for the file itself (initial size on block storage)."""
    ctx.progress(0, f"Creating a {body.virtual_size / 2**30:.1f} GiB {body.disk_format} disk "
                    f"on storage domain {placement.storage_domain.name}")
    disks = system.disks_service()
    with engine_errors("creating the disk"):
        disk = disks.add(types.Disk(
            name=names.disk, description=names.description,
            format=types.DiskFormat(body.ovirt_format), sparse=True,
            provisioned_size=body.virtual_size,
            initial_size=body.file_size if body.disk_format == "qcow2" else None,
            content_type=types.DiskContentType.DATA,
            storage_domains=[types.StorageDomain(id=placement.storage_domain.id)]))
    made.disk = disk.id
    ctx.log(f"created disk {disk.id}")
    service = disks.disk_service(disk.id)
    return wait_until(ctx, f"disk {disk.id} to be created",
                      lambda: _disk_ok(service.get()), account.timeout)


def _disk_ok(disk: types.Disk) -> types.Disk | None:
    if disk.status == types.DiskStatus.OK:
        return disk
    if disk.status == types.DiskStatus.ILLEGAL:
        raise BuildError(f"disk {disk.id} became illegal")
    return None


def _transfer(ctx: BuildContext, system: ovirtsdk4.services.SystemService, disk: types.Disk,
              body: Body, path: Path, account: Account, made: _Made) -> None:
    """Upload `path` into `disk` through an image transfer, finalize it, and wait until the
    engine has checked the disk."""
    transfers = system.image_transfers_service()
    ctx.progress(0, "Starting the image transfer")
    with engine_errors(f"starting an image transfer to disk {disk.id}"):
        transfer = transfers.add(types.ImageTransfer(
            disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.UPLOAD,
            format=types.DiskFormat(body.ovirt_format), inactivity_timeout=INACTIVITY_TIMEOUT))
    made.transfer = transfer.id
    service = transfers.image_transfer_service(transfer.id)
    transfer = wait_until(ctx, f"image transfer {transfer.id} to start",
                          lambda: _started(service.get()), account.timeout)
    destination = open_destination(ctx, str(transfer.transfer_url),
                                   transfer.proxy_url, account.verify)
    ctx.progress(1, f"Uploading {body.file_size / 2**20:.1f} MiB ({body.disk_format}) to "
                    f"disk {disk.id}")
    upload(ctx.scaled(1, 96), path, destination, account.verify)
    ctx.progress(96, "Finalizing the image transfer")
    with engine_errors(f"finalizing image transfer {transfer.id}"):
        service.finalize()
    disk_service = system.disks_service().disk_service(disk.id)
    wait_until(ctx, f"the engine to verify disk {disk.id}",
               lambda: _finalized(service, disk_service), account.timeout)
    made.transfer = None
    wait_until(ctx, f"disk {disk.id} to be unlocked", lambda: _disk_ok(disk_service.get()),
               account.timeout)


def _started(transfer: types.ImageTransfer) -> types.ImageTransfer | None:
    phase = transfer.phase
    if phase == types.ImageTransferPhase.TRANSFERRING and transfer.transfer_url:
        return transfer
    if phase in (types.ImageTransferPhase.INITIALIZING, types.ImageTransferPhase.RESUMING,
                 types.ImageTransferPhase.TRANSFERRING):
        return None
    raise BuildError(f"image transfer {transfer.id} went {phase.value if phase else phase} "
                     "before it started")


def _finalized(service: ovirtsdk4.services.ImageTransferService,
               disk_service: ovirtsdk4.services.DiskService) -> bool | None:
    """True once the engine accepted the upload. Engines before 4.4.7 drop a finished
    transfer at once (404): then the disk tells."""
    try:
        transfer = service.get()
    except ovirtsdk4.NotFoundError:
        try:
            disk = disk_service.get()
        except ovirtsdk4.NotFoundError:
            raise BuildError("the engine rejected the upload and removed the disk") from None
        return True if _disk_ok(disk) else None
    phase = transfer.phase
    if phase == types.ImageTransferPhase.FINISHED_SUCCESS:
        return True
    if phase in (types.ImageTransferPhase.FINISHED_FAILURE,
                 types.ImageTransferPhase.FINALIZING_FAILURE,
                 types.ImageTransferPhase.PAUSED_SYSTEM, types.ImageTransferPhase.CANCELLED,
                 types.ImageTransferPhase.CANCELLED_SYSTEM,
                 types.ImageTransferPhase.CANCELLED_USER):
        raise BuildError(f"the engine rejected the upload: image transfer {transfer.id} went "
                         f"{phase.value} (the engine's events say why)")
    return None


def _create_vm(ctx: BuildContext, system: ovirtsdk4.services.SystemService, disk: types.Disk,
               placement: Placement, names: _Names, parameters: Mapping[str, Any],
               account: Account, made: _Made) -> ovirtsdk4.services.VmService:
    """A VM of the Blank template in the cluster, with the disk attached as its boot disk."""
    ctx.progress(0, f"Creating the temporary VM {names.vm}")
    vms = system.vms_service()
    with engine_errors("creating the temporary VM"):
        vm = vms.add(types.Vm(
            name=names.vm, description=names.description,
            cluster=types.Cluster(id=placement.cluster.id),
            template=types.Template(name=_BLANK_TEMPLATE),
            os=types.OperatingSystem(type=parameters["rhevm_os_type"])))
    made.vm = vm.id
    ctx.log(f"created VM {vm.id} ({names.vm})")
    service = vms.vm_service(vm.id)
    with engine_errors(f"attaching disk {disk.id} to VM {vm.id}"):
        service.disk_attachments_service().add(types.DiskAttachment(
            disk=types.Disk(id=disk.id), bootable=True, active=True,
            interface=types.DiskInterface(parameters["rhevm_disk_interface"])))
    made.disk = None  # removed with the VM from now on
    wait_until(ctx, f"VM {vm.id} to be ready", lambda: _vm_down(service.get()),
               account.timeout)
    return service


def _vm_down(vm: types.Vm) -> types.Vm | None:
    return vm if vm.status == types.VmStatus.DOWN else None


def _create_template(ctx: BuildContext, system: ovirtsdk4.services.SystemService,
                     placement: Placement, names: _Names, account: Account,
                     made: _Made) -> tuple[str, list[str]]:
    """The template made of the VM, once its disk is copied: its id and its disks' ids."""
    ctx.progress(0, f"Creating template {names.template}")
    templates = system.templates_service()
    with engine_errors(f"creating template {names.template}"):
        template = templates.add(types.Template(
            name=names.template, description=names.description,
            cluster=types.Cluster(id=placement.cluster.id), vm=types.Vm(id=made.vm)))
    made.template = template.id
    ctx.log(f"created template {template.id}; the engine copies the disk into it")
    service = templates.template_service(template.id)
    wait_until(ctx, f"template {template.id} to be ready",
               lambda: _template_ok(service.get()), account.timeout)
    with engine_errors(f"listing the disks of template {template.id}"):
        attachments = service.disk_attachments_service().list()
    return str(template.id), [str(a.disk.id if a.disk else a.id) for a in attachments]


def _template_ok(template: types.Template) -> types.Template | None:
    if template.status == types.TemplateStatus.OK:
        return template
    if template.status == types.TemplateStatus.ILLEGAL:
        raise BuildError(f"template {template.id} became illegal")
    return None


def _remove_vm(ctx: BuildContext, service: ovirtsdk4.services.VmService,
               account: Account) -> None:
    ctx.log("removing the temporary VM and its disk")
    with engine_errors("removing the temporary VM"):
        service.remove()
    wait_until(ctx, "the temporary VM to be removed", lambda: gone(service.get),
               account.timeout)


def _discard(ctx: BuildContext, system: ovirtsdk4.services.SystemService,
             made: _Made) -> None:
    """Remove what a failed or cancelled push made; log, never raise, a failure to (the error
    the user sees is the push's). Runs after cancellation too, so it does not check it."""
    steps: list[tuple[str, Any]] = []
    if made.template:
        steps.append((f"template {made.template}",
                      system.templates_service().template_service(made.template)))
    if made.transfer:
        # An upload's transfer owns its disk: cancelling it removes the disk.
        transfer = system.image_transfers_service().image_transfer_service(made.transfer)
        try:
            transfer.cancel()
            ctx.log(f"cancelled image transfer {made.transfer}")
        except ovirtsdk4.Error as exc:
            ctx.log(f"could not cancel image transfer {made.transfer}: {exc}")
    if made.vm:
        steps.append((f"the temporary VM {made.vm}", system.vms_service().vm_service(made.vm)))
    if made.disk:
        steps.append((f"disk {made.disk}", system.disks_service().disk_service(made.disk)))
    for what, service in steps:
        _remove_quietly(ctx, what, service)


def _remove_quietly(ctx: BuildContext, what: str, service: Any) -> None:
    """Remove an entity once it is not locked (a cancelled transfer's disk, a template being
    copied), and wait until it is gone; a failure is logged."""
    deadline = time.monotonic() + DISCARD_TIMEOUT
    while True:
        try:
            service.remove()
        except ovirtsdk4.NotFoundError:
            ctx.log(f"{what} is gone")
            return
        except ovirtsdk4.Error as exc:
            # 409: still locked (copying, being removed by the engine itself); try again.
            if getattr(exc, "code", None) != 409 or time.monotonic() > deadline:
                ctx.log(f"could not remove {what}: {exc}")
                return
            time.sleep(1.0)
            continue
        break
    while time.monotonic() < deadline:
        if gone(service.get):
            ctx.log(f"removed {what}")
            return
        time.sleep(0.5)
    ctx.log(f"{what} is still there {DISCARD_TIMEOUT:.0f} s after its removal")
