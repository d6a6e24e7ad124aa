"""The fake engine answers ovirt-engine-sdk-python (its own pycurl transport) as the engine
does, refusals included: what the rhevm plugin's tests rely on."""

from collections.abc import Iterator

import ovirtsdk4
import pytest
from ovirtsdk4 import types

from tests.services.ovirt_support.engine import Engine

pytestmark = pytest.mark.slow  # a real imageio daemon


@pytest.fixture
def system(ovirt_engine: Engine) -> Iterator[ovirtsdk4.services.SystemService]:
    connection = ovirtsdk4.Connection(url=ovirt_engine.api_url, username=ovirt_engine.username,
                                      password=ovirt_engine.password,
                                      ca_file=str(ovirt_engine.ca_file))
    yield connection.system_service()
    connection.close()


def domain_id(system: ovirtsdk4.services.SystemService, name: str) -> str:
    return next(sd.id for sd in system.storage_domains_service().list() if sd.name == name)


def test_sso_refuses_a_wrong_password_and_the_api_a_missing_token(ovirt_engine: Engine) -> None:
    wrong = ovirtsdk4.Connection(url=ovirt_engine.api_url, username=ovirt_engine.username,
                                 password="wrong", ca_file=str(ovirt_engine.ca_file))
    with pytest.raises(ovirtsdk4.AuthError, match="access_denied : Cannot authenticate user"):
        wrong.system_service().get()
    forged = ovirtsdk4.Connection(url=ovirt_engine.api_url, token="forged",
                                  ca_file=str(ovirt_engine.ca_file))
    with pytest.raises(ovirtsdk4.Error):  # 401, then a new token: SSO refuses no user
        forged.system_service().clusters_service().list()


def test_the_inventory_reads_as_the_sdk_expects(system: ovirtsdk4.services.SystemService) -> None:
    api = system.get()
    assert (api.product_info.name, api.product_info.version.major) == ("oVirt Engine", 4)
    clusters = {c.name: c for c in system.clusters_service().list()}
    assert set(clusters) == {"Default", "Remote"}
    attached = (system.data_centers_service()
                .data_center_service(clusters["Default"].data_center.id)
                .storage_domains_service().list())
    data = next(sd for sd in attached if sd.name == "data")
    assert (data.type, data.status, data.master) == (types.StorageDomainType.DATA,
                                                     types.StorageDomainStatus.ACTIVE, True)


def test_a_disk_transfer_vm_and_template_and_what_the_engine_refuses(
        system: ovirtsdk4.services.SystemService, ovirt_engine: Engine) -> None:
    disks = system.disks_service()
    with pytest.raises(ovirtsdk4.Error, match="Storage Domain doesn't exist"):
        disks.add(types.Disk(name="d", format=types.DiskFormat.RAW, provisioned_size=2**20,
                             storage_domains=[types.StorageDomain(id="0" * 36)]))
    with pytest.raises(ovirtsdk4.Error, match="is not an active data domain"):
        disks.add(types.Disk(name="d", format=types.DiskFormat.RAW, provisioned_size=2**20,
                             storage_domains=[types.StorageDomain(
                                 id=domain_id(system, "parked"))]))
    disk = disks.add(types.Disk(name="fake-engine-test", format=types.DiskFormat.RAW,
                                provisioned_size=2**20, storage_domains=[
                                    types.StorageDomain(id=domain_id(system, "data"))]))
    assert disk.status == types.DiskStatus.LOCKED
    transfers = system.image_transfers_service()
    with pytest.raises(ovirtsdk4.Error, match="Disk is locked"):
        transfers.add(types.ImageTransfer(disk=types.Disk(id=disk.id)))
    ovirt_engine.inventory.disk(disk.id).ready_at = 1.0  # done being made
    with pytest.raises(ovirtsdk4.Error, match="needs the NBD backend"):
        transfers.add(types.ImageTransfer(disk=types.Disk(id=disk.id),
                                          format=types.DiskFormat.COW))
    transfer = transfers.add(types.ImageTransfer(disk=types.Disk(id=disk.id),
                                                 format=types.DiskFormat.RAW))
    assert transfer.phase == types.ImageTransferPhase.INITIALIZING
    service = transfers.image_transfer_service(transfer.id)
    ovirt_engine.inventory.transfers[transfer.id].ready_at = 0.0
    assert service.get().phase == types.ImageTransferPhase.TRANSFERRING
    assert ovirt_engine.imageio.ticket(ovirt_engine.inventory.transfers[transfer.id].ticket)
    service.finalize()
    with pytest.raises(ovirtsdk4.Error, match="Cannot finalize image transfer in phase"):
        service.finalize()

    vms = system.vms_service()
    with pytest.raises(ovirtsdk4.NotFoundError, match="cluster Nowhere"):
        vms.add(types.Vm(name="fake-engine-test", cluster=types.Cluster(name="Nowhere"),
                         template=types.Template(name="Blank")))
    vm = vms.add(types.Vm(name="fake-engine-test", cluster=types.Cluster(name="Default"),
                          template=types.Template(name="Blank")))
    ovirt_engine.inventory.disk(disk.id).ready_at = 1.0
    vms.vm_service(vm.id).disk_attachments_service().add(types.DiskAttachment(
        disk=types.Disk(id=disk.id), interface=types.DiskInterface.VIRTIO, bootable=True))
    with pytest.raises(ovirtsdk4.Error, match="attached to a VM"):
        disks.disk_service(disk.id).remove()
    templates = system.templates_service()
    with pytest.raises(ovirtsdk4.Error, match="Template name is already in use"):
        templates.add(types.Template(name="Blank", vm=types.Vm(id=vm.id)))
    template = templates.add(types.Template(name="fake-engine-test", vm=types.Vm(id=vm.id)))
    assert vms.vm_service(vm.id).get().status == types.VmStatus.IMAGE_LOCKED
    ovirt_engine.inventory.settle()
    assert templates.template_service(template.id).get().status == types.TemplateStatus.OK
    vms.vm_service(vm.id).remove()
    with pytest.raises(ovirtsdk4.NotFoundError):
        disks.disk_service(disk.id).get()
    [attachment] = templates.template_service(template.id).disk_attachments_service().list()
    templates.template_service(template.id).remove()
    with pytest.raises(ovirtsdk4.NotFoundError):
        disks.disk_service(attachment.disk.id).get()
