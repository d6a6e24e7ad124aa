"""What the fake engine holds, and the engine's rules for changing it.

Entities are plain records; `Inventory` changes them under one lock and raises `Fault` where
the real engine answers with a fault (a name in use, a locked disk, a missing storage domain).
Work the engine does in the background shows as it does there: a new disk is ``locked`` for a
moment, a transfer ``initializing``, a template ``locked`` while its disk is copied.

Disks are files on the storage domain's directory; an upload writes them through a real imageio
ticket (`imageio.Imageio`), so what arrives is on disk to compare.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .imageio import Imageio

BLANK_TEMPLATE_ID = "00000000-0000-0000-0000-000000000000"
SETTLE = 0.1
"""Seconds a new disk stays locked, a new transfer initializing, a template locked at least."""


class Fault(Exception):
    """An engine fault: HTTP `status`, the fault's `reason` and `detail`."""

    def __init__(self, status: int, detail: str, reason: str = "Operation Failed") -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason = status, detail, reason


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class DataCenter:
    id: str
    name: str


@dataclass
class Cluster:
    id: str
    name: str
    data_center: str


@dataclass
class StorageDomain:
    id: str
    name: str
    type: str  # data, export, iso
    data_center: str | None
    status: str  # as attached: active, maintenance; unattached without a data center
    master: bool
    available: int
    path: Path


@dataclass
class Disk:
    id: str
    name: str
    description: str
    format: str  # cow, raw
    provisioned_size: int
    initial_size: int | None
    storage_domain: str
    path: Path
    status: str = "locked"
    ready_at: float = 0.0
    vm: str | None = None
    template: str | None = None
    interface: str = "virtio_scsi"
    bootable: bool = False

    @property
    def volume_size(self) -> int:
        """The size of the volume file: a qcow2 volume holds the file, a raw one the disk."""
        if self.format == "cow":
            return self.initial_size or self.provisioned_size
        return self.provisioned_size


@dataclass
class Transfer:
    id: str
    disk: str
    format: str
    phase: str
    ticket: str | None
    inactivity_timeout: int
    ready_at: float
    transferred: int = 0
    finished_at: float | None = None


@dataclass
class Vm:
    id: str
    name: str
    description: str
    cluster: str
    os_type: str
    status: str = "down"
    disks: list[str] = field(default_factory=list)


@dataclass
class Template:
    id: str
    name: str
    description: str
    cluster: str | None
    os_type: str
    status: str = "locked"
    disks: list[str] = field(default_factory=list)
    source_vm: str | None = None


class Inventory:
    """The engine's data centers, clusters, storage domains, disks, transfers, VMs and
    templates, and the rules for changing them (see the module doc)."""

    def __init__(self, root: Path, imageio: Imageio) -> None:
        self.root = root
        self.imageio = imageio
        self.lock = threading.RLock()
        self.data_centers: dict[str, DataCenter] = {}
        self.clusters: dict[str, Cluster] = {}
        self.storage_domains: dict[str, StorageDomain] = {}
        self.disks: dict[str, Disk] = {}
        self.transfers: dict[str, Transfer] = {}
        self.vms: dict[str, Vm] = {}
        self.templates: dict[str, Template] = {
            BLANK_TEMPLATE_ID: Template(BLANK_TEMPLATE_ID, "Blank", "Blank template", None,
                                        "other", status="ok")}
        self.transfer_base: str | None = None
        self.proxy_base: str | None = None
        self._copies: list[threading.Thread] = []

    # -- set-up ---------------------------------------------------------------------------
    def add_data_center(self, name: str) -> DataCenter:
        with self.lock:
            made = DataCenter(new_id(), name)
            self.data_centers[made.id] = made
            return made

    def add_cluster(self, name: str, data_center: DataCenter) -> Cluster:
        with self.lock:
            made = Cluster(new_id(), name, data_center.id)
            self.clusters[made.id] = made
            return made

    def add_storage_domain(self, name: str, kind: str, data_center: DataCenter | None, *,
                           status: str = "active", master: bool = False,
                           available: int = 500 * 2**30) -> StorageDomain:
        with self.lock:
            made = StorageDomain(new_id(), name, kind, data_center.id if data_center else None,
                                 status if data_center else "unattached", master, available,
                                 self.root / "storage" / name)
            (made.path / "images").mkdir(parents=True, exist_ok=True)
            self.storage_domains[made.id] = made
            return made

    # -- look-ups -------------------------------------------------------------------------
    def _get(self, table: dict[str, Any], entity_id: str) -> Any:
        found = table.get(entity_id)
        if found is None:
            raise Fault(404, f"Entity not found: {entity_id}", reason="Not Found")
        return found

    def disk(self, disk_id: str) -> Disk:
        with self.lock:
            disk: Disk = self._get(self.disks, disk_id)
            if disk.status == "locked" and disk.ready_at and time.monotonic() >= disk.ready_at:
                disk.status, disk.ready_at = "ok", 0.0
            return disk

    def transfer(self, transfer_id: str) -> Transfer:
        with self.lock:
            transfer: Transfer = self._get(self.transfers, transfer_id)
            now = time.monotonic()
            if transfer.phase == "initializing" and now >= transfer.ready_at:
                transfer.phase = "transferring"
            elif transfer.phase == "finalizing_success" and now >= transfer.ready_at:
                transfer.phase = "finished_success"
            if transfer.ticket and transfer.phase == "transferring":
                info = self.imageio.ticket(transfer.ticket)
                transfer.transferred = int((info or {}).get("transferred") or 0)
            return transfer

    def vm(self, vm_id: str) -> Vm:
        with self.lock:
            return self._get(self.vms, vm_id)  # type: ignore[no-any-return]

    def template(self, template_id: str) -> Template:
        with self.lock:
            return self._get(self.templates, template_id)  # type: ignore[no-any-return]

    def cluster_named(self, ref: dict[str, str | None]) -> Cluster:
        with self.lock:
            for cluster in self.clusters.values():
                if ref.get("id") in (cluster.id,) or ref.get("name") == cluster.name:
                    return cluster
        raise Fault(404, f"Entity not found: cluster {ref.get('id') or ref.get('name')}",
                    reason="Not Found")

    # -- disks ----------------------------------------------------------------------------
    def add_disk(self, name: str, description: str, fmt: str | None,
                 provisioned_size: int | None, initial_size: int | None,
                 storage_domain: str | None) -> Disk:
        with self.lock:
            if fmt not in ("cow", "raw"):
                raise Fault(400, "Cannot add Virtual Disk. The disk format is missing or "
                                 "invalid.")
            if not provisioned_size or provisioned_size <= 0:
                raise Fault(400, "Cannot add Virtual Disk. The provisioned size is missing.")
            domain = self.storage_domains.get(storage_domain or "")
            if domain is None:
                raise Fault(400, "Cannot add Virtual Disk. Storage Domain doesn't exist.")
            if domain.type != "data" or domain.status != "active":
                raise Fault(409, f"Cannot add Virtual Disk. Storage Domain {domain.name} is not "
                                 "an active data domain.")
            disk = Disk(new_id(), name, description, fmt, provisioned_size, initial_size,
                        domain.id, domain.path / "images" / "pending",
                        ready_at=time.monotonic() + SETTLE)
            disk.path = domain.path / "images" / disk.id
            with disk.path.open("wb") as volume:
                volume.truncate(disk.volume_size)
            self.disks[disk.id] = disk
            return disk

    def remove_disk(self, disk_id: str) -> None:
        with self.lock:
            disk = self.disk(disk_id)
            if disk.vm or disk.template:
                raise Fault(409, "Cannot remove Virtual Disk. The disk is attached to "
                                 f"{'a VM' if disk.vm else 'a template'}.")
            if disk.status == "locked":
                raise Fault(409, "Cannot remove Virtual Disk: Disk is locked. Please try again "
                                 "in a few minutes.")
            self._drop_disk(disk)

    def _drop_disk(self, disk: Disk) -> None:
        disk.path.unlink(missing_ok=True)
        del self.disks[disk.id]

    # -- image transfers ------------------------------------------------------------------
    def add_transfer(self, disk_id: str | None, direction: str | None, fmt: str | None,
                     inactivity_timeout: int | None) -> Transfer:
        with self.lock:
            if direction not in (None, "upload"):
                raise Fault(400, "This engine takes uploads only.")
            disk = self.disk(disk_id or "")
            if disk.status != "ok" or any(t.disk == disk.id and t.ticket
                                          for t in self.transfers.values()):
                raise Fault(409, "Cannot transfer Virtual Disk: Disk is locked. Please try "
                                 "again in a few minutes.")
            if disk.vm or disk.template:
                raise Fault(409, "Cannot transfer Virtual Disk: the disk is attached.")
            fmt = fmt or "cow"
            if fmt != disk.format:
                # The real engine serves a format conversion through qemu-nbd (the NBD
                # backend); this fake serves the volume's bytes only.
                raise Fault(400, f"Cannot transfer Virtual Disk: format {fmt} of a {disk.format}"
                                 " disk needs the NBD backend, which this engine lacks.")
            transfer = Transfer(new_id(), disk.id, fmt, "initializing", new_id(),
                                inactivity_timeout or 60, time.monotonic() + SETTLE)
            self.imageio.add_ticket(transfer.ticket or "", disk.path, disk.volume_size,
                                    inactivity_timeout=transfer.inactivity_timeout,
                                    transfer_id=transfer.id)
            disk.status = "locked"
            disk.ready_at = 0.0
            self.transfers[transfer.id] = transfer
            return transfer

    def transfer_urls(self, transfer: Transfer) -> tuple[str, str]:
        """(transfer_url, proxy_url): imageio itself unless a test put something in front."""
        direct = self.imageio.remote_url
        ticket = transfer.ticket or "gone"
        return (f"{self.transfer_base or direct}/images/{ticket}",
                f"{self.proxy_base or direct}/images/{ticket}")

    def finalize_transfer(self, transfer_id: str) -> None:
        """Close the ticket and check the volume as the engine does: a qcow2 disk must hold a
        qcow2 image no bigger than the disk. A failure removes the disk."""
        with self.lock:
            transfer = self.transfer(transfer_id)
            if transfer.phase != "transferring":
                raise Fault(409, f"Cannot finalize image transfer in phase {transfer.phase}.")
            disk = self.disk(transfer.disk)
            self._close_ticket(transfer)
            problem = _verify_volume(disk)
            if problem is None:
                transfer.phase = "finalizing_success"
                transfer.ready_at = time.monotonic() + SETTLE
                disk.status, disk.ready_at = "locked", time.monotonic() + SETTLE
            else:
                transfer.phase = "finished_failure"
                transfer.finished_at = time.monotonic()
                self._drop_disk(disk)

    def cancel_transfer(self, transfer_id: str) -> None:
        """An upload's transfer owns its disk: cancelling removes the disk."""
        with self.lock:
            transfer = self.transfer(transfer_id)
            if transfer.phase not in ("initializing", "transferring", "paused_system",
                                      "paused_user"):
                raise Fault(409, f"Cannot cancel image transfer in phase {transfer.phase}.")
            self._close_ticket(transfer)
            transfer.phase = "cancelled_user"
            disk = self.disks.get(transfer.disk)
            if disk is not None:
                self._drop_disk(disk)

    def _close_ticket(self, transfer: Transfer) -> None:
        if transfer.ticket:
            self.imageio.remove_ticket(transfer.ticket)
            transfer.ticket = None

    # -- VMs ------------------------------------------------------------------------------
    def add_vm(self, name: str | None, description: str, cluster: dict[str, str | None],
               template: dict[str, str | None], os_type: str | None) -> Vm:
        with self.lock:
            if not name:
                raise Fault(400, "Vm [name] required for add")
            if any(vm.name == name for vm in self.vms.values()):
                raise Fault(409, "Cannot add VM. The VM name is already in use, please choose "
                                 "a unique name and try again.")
            found = self.cluster_named(cluster)
            if template.get("id") not in (None, BLANK_TEMPLATE_ID) or \
                    template.get("name") not in (None, "Blank"):
                raise Fault(400, "This engine makes VMs of the Blank template only.")
            vm = Vm(new_id(), name, description, found.id, os_type or "other")
            self.vms[vm.id] = vm
            return vm

    def attach_disk(self, vm_id: str, disk_id: str | None, interface: str | None,
                    bootable: bool) -> Disk:
        with self.lock:
            vm = self.vm(vm_id)
            disk = self.disk(disk_id or "")
            if disk.status != "ok":
                raise Fault(409, "Cannot attach Virtual Disk: Disk is locked.")
            if disk.vm or disk.template:
                raise Fault(409, "Cannot attach Virtual Disk: the disk is already attached.")
            cluster = self.clusters[vm.cluster]
            domain = self.storage_domains[disk.storage_domain]
            if domain.data_center != cluster.data_center:
                raise Fault(409, "Cannot attach Virtual Disk. The disk's storage domain is not in"
                                 " the VM's data center.")
            disk.vm, disk.interface, disk.bootable = vm.id, interface or "virtio", bootable
            vm.disks.append(disk.id)
            return disk

    def remove_vm(self, vm_id: str) -> None:
        """Remove a VM with its disks, as the engine does unless told to keep them."""
        with self.lock:
            vm = self.vm(vm_id)
            if vm.status != "down":
                raise Fault(409, f"Cannot remove VM: VM is {vm.status}.")
            for disk_id in vm.disks:
                disk = self.disks.get(disk_id)
                if disk is not None:
                    self._drop_disk(disk)
            del self.vms[vm.id]

    # -- templates ------------------------------------------------------------------------
    def add_template(self, name: str | None, description: str, vm_id: str | None,
                     cluster: dict[str, str | None] | None) -> Template:
        """Make a template of a VM that is down: its disks are copied in the background,
        the VM is image_locked and the template locked meanwhile."""
        with self.lock:
            if not name:
                raise Fault(400, "Template [name] required for add")
            if any(template.name == name for template in self.templates.values()):
                raise Fault(409, "Cannot add Template. The Template name is already in use, "
                                 "please choose a unique name and try again.")
            vm = self.vm(vm_id or "")
            if vm.status != "down":
                raise Fault(409, f"Cannot add Template: VM is {vm.status}.")
            sources = [self.disk(disk_id) for disk_id in vm.disks]
            if any(disk.status != "ok" for disk in sources):
                raise Fault(409, "Cannot add Template: a disk of the VM is locked.")
            found = self.cluster_named(cluster) if cluster else self.clusters[vm.cluster]
            template = Template(new_id(), name, description, found.id, vm.os_type,
                                source_vm=vm.id)
            copies = []
            for source in sources:
                copy = Disk(new_id(), source.name, source.description, source.format,
                            source.provisioned_size, source.initial_size,
                            source.storage_domain, source.path, template=template.id,
                            interface=source.interface, bootable=source.bootable)
                copy.path = source.path.with_name(copy.id)
                self.disks[copy.id] = copy
                template.disks.append(copy.id)
                copies.append((source.path, copy))
            vm.status = "image_locked"
            self.templates[template.id] = template
            worker = threading.Thread(target=self._copy_disks, args=(template, vm, copies),
                                      name=f"fake-engine-copy-{template.id}", daemon=True)
            self._copies.append(worker)
            worker.start()
            return template

    def _copy_disks(self, template: Template, vm: Vm, copies: list[tuple[Path, Disk]]) -> None:
        started = time.monotonic()
        for source, copy in copies:
            subprocess.run(["cp", "--sparse=always", str(source), str(copy.path)], check=True)
        time.sleep(max(0.0, SETTLE - (time.monotonic() - started)))
        with self.lock:
            for _, copy in copies:
                copy.status = "ok"
            template.status = "ok"
            if vm.id in self.vms:
                vm.status = "down"

    def remove_template(self, template_id: str) -> None:
        """Remove a template with its disks; the Blank template and one VMs use stay."""
        with self.lock:
            template = self.template(template_id)
            if template.id == BLANK_TEMPLATE_ID:
                raise Fault(409, "Cannot remove Template. Blank Template cannot be removed.")
            if template.status == "locked":
                raise Fault(409, "Cannot remove Template: Template is locked.")
            for disk_id in template.disks:
                disk = self.disks.get(disk_id)
                if disk is not None:
                    self._drop_disk(disk)
            del self.templates[template.id]

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until background copies are done (for a clean shutdown)."""
        for worker in self._copies:
            worker.join(timeout)


def _verify_volume(disk: Disk) -> str | None:
    """What the engine would find wrong with an uploaded volume, or None."""
    if disk.format != "cow":
        return None
    done = subprocess.run(["qemu-img", "info", "--output=json", "-f", "qcow2", str(disk.path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"not a qcow2 image: {done.stderr.strip()}"
    info = json.loads(done.stdout)
    if info.get("backing-filename"):
        return "the qcow2 image has a backing file"
    if int(info["virtual-size"]) > disk.provisioned_size:
        return "the qcow2 image is bigger than the disk"
    return None


@contextlib.contextmanager
def default_inventory(root: Path, imageio: Imageio) -> Iterator[Inventory]:
    """The inventory the tests use (described in ``tests/services/ovirt.py``); the storage
    domains' directories are removed at the end."""
    inventory = Inventory(root, imageio)
    default = inventory.add_data_center("Default")
    inventory.add_cluster("Default", default)
    inventory.add_storage_domain("data", "data", default, master=True)
    inventory.add_storage_domain("bigdata", "data", default, available=900 * 2**30)
    inventory.add_storage_domain("iso", "iso", default)
    inventory.add_storage_domain("export", "export", default)
    remote = inventory.add_data_center("Remote")
    inventory.add_cluster("Remote", remote)
    inventory.add_storage_domain("remote-data", "data", remote, master=True)
    inventory.add_storage_domain("parked", "data", remote, status="maintenance")
    inventory.add_storage_domain("loose", "data", None)
    try:
        yield inventory
    finally:
        inventory.settle()
        shutil.rmtree(root / "storage", ignore_errors=True)
