"""Clouds as a guest sees them: each environment gives an instance the hardware identity, NIC,
disks and metadata its cloud gives, and nothing else.

An environment is small: `attach` starts what the cloud would run beside the instance (a
metadata service on the host's loopback, a config drive in the work directory) and says what
QEMU must add (`Hardware`); leaving the context stops it. A new cloud (vSphere's guestinfo, a
NoCloud ``cidata`` seed for RHEV-M) is one more subclass.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .configdrive import write_config_drive
from .imds import Ec2MetadataService, Placement
from .instance import Instance
from .nova import NovaMetadataService, nova_documents
from .qemu import Forward, Network, option

METADATA_ADDRESS = "169.254.169.254"
# QEMU forwards only to addresses inside the guest's subnet: link-local clouds get this one.
LINK_LOCAL = "169.254.0.0/16"


@dataclass(frozen=True)
class Hardware:
    """What an environment adds to the machine."""

    network: Network
    smbios: tuple[str, ...] = ()
    cdroms: tuple[Path, ...] = ()
    disk_interface: str = "virtio"


def smbios(table: int, **fields: str) -> str:
    """A ``-smbios`` value: `table` with `fields` (``manufacturer="Amazon EC2"``)."""
    return ",".join([f"type={table}", *(f"{k}={option(v)}" for k, v in fields.items())])


class CloudEnvironment(ABC):
    """A cloud. `name` names it in results and logs. Use one object per boot: environments
    with a metadata service keep it in `service` afterwards, with the `requests` it answered."""

    name: str = "cloud"

    @abstractmethod
    def attach(self, instance: Instance, workdir: Path) -> AbstractContextManager[Hardware]:
        """A context manager: the cloud's services for `instance` run while it is open."""

    def instance_id(self, instance: Instance) -> str:
        """The instance id cloud-init should report."""
        return instance.uuid


class Ec2(CloudEnvironment):
    """An EC2 Nitro instance: IMDSv2 at 169.254.169.254, the DMI identity AWS gives (vendor
    ``Amazon EC2``, a system UUID and serial starting with ``ec2``, which cloud-init's
    ds-identify recognises as AWS), the root volume on NVMe. ENA is not something QEMU has:
    the NIC is virtio-net."""

    name = "ec2"

    def __init__(self, placement: Placement | None = None, disk_interface: str = "nvme") -> None:
        self.placement = placement or Placement()
        self.disk_interface = disk_interface
        self.service: Ec2MetadataService | None = None

    def instance_id(self, instance: Instance) -> str:
        return instance.ec2_instance_id

    @contextmanager
    def attach(self, instance: Instance, workdir: Path) -> Iterator[Hardware]:
        network = Network(subnet=LINK_LOCAL, mac=instance.mac("02"))
        with Ec2MetadataService(instance, network, self.placement) as service:
            self.service = service
            system_uuid = "ec2" + instance.uuid[3:]
            yield Hardware(
                network=dataclasses.replace(
                    network, forwards=(Forward(METADATA_ADDRESS, 80, service.port),)),
                smbios=(smbios(0, vendor="Amazon EC2", version="1.0"),
                        smbios(1, manufacturer="Amazon EC2",
                               product=self.placement.instance_type, serial=system_uuid,
                               uuid=system_uuid),
                        smbios(3, manufacturer="Amazon EC2", asset="Amazon EC2")),
                disk_interface=self.disk_interface)


def _nova_smbios(instance: Instance) -> tuple[str, ...]:
    """The DMI identity libvirt gives Nova's instances (cloud-init's ds-identify looks at the
    product name)."""
    return (smbios(1, manufacturer="OpenStack Foundation", product="OpenStack Nova",
                   version="27.0.0", serial=instance.uuid, uuid=instance.uuid,
                   family="Virtual Machine"),)


class OpenStackConfigDrive(CloudEnvironment):
    """An OpenStack KVM instance with a config drive (``config_drive=true``): an ISO 9660 disk
    labelled ``config-2`` on the IDE CD-ROM, and no metadata service at all."""

    name = "openstack-configdrive"

    @contextmanager
    def attach(self, instance: Instance, workdir: Path) -> Iterator[Hardware]:
        network = Network(mac=instance.mac("fa:16:3e"))
        drive = write_config_drive(workdir / "config-2.iso", nova_documents(instance, network))
        yield Hardware(network=network, smbios=_nova_smbios(instance), cdroms=(drive,))


class OpenStackMetadataService(CloudEnvironment):
    """An OpenStack KVM instance without a config drive: Nova's metadata service at
    169.254.169.254."""

    name = "openstack-metadata"

    def __init__(self) -> None:
        self.service: NovaMetadataService | None = None

    @contextmanager
    def attach(self, instance: Instance, workdir: Path) -> Iterator[Hardware]:
        network = Network(subnet=LINK_LOCAL, mac=instance.mac("fa:16:3e"))
        with NovaMetadataService(instance, network) as service:
            self.service = service
            yield Hardware(
                network=dataclasses.replace(
                    network, forwards=(Forward(METADATA_ADDRESS, 80, service.port),)),
                smbios=_nova_smbios(instance))


class BareMachine(CloudEnvironment):
    """No cloud: QEMU's own DMI identity, DHCP, and no metadata anywhere. An image that needs
    its cloud must fail here (and the harness must say so quickly)."""

    name = "bare"

    @contextmanager
    def attach(self, instance: Instance, workdir: Path) -> Iterator[Hardware]:
        yield Hardware(network=Network())
