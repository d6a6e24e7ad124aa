"""Boot images the way their cloud boots them: QEMU, a cloud's environment, a first-boot probe.

Everything here is re-exported by `imagefactory_core.testing`; docs/plugin-authors.md
("Booting your images like the cloud does") shows how a plugin's tests use it.
"""

from .configdrive import write_config_drive
from .console import BootError, Console
from .environments import (
    BareMachine,
    CloudEnvironment,
    Ec2,
    Hardware,
    OpenStackConfigDrive,
    OpenStackMetadataService,
    smbios,
)
from .firstboot import FirstBoot, GiB, SecondBoot, boot_first_time, disk_size, make_overlay
from .imds import Ec2MetadataService, Placement
from .instance import Instance, throwaway_ssh_key
from .nova import NovaMetadataService, nova_documents
from .probe import Address, GuestFacts
from .qemu import (
    ACCEL_VARIABLE,
    FIRMWARES,
    Forward,
    Machine,
    Network,
    Qemu,
    boot_and_wait,
    usable_accel,
)

__all__ = ["ACCEL_VARIABLE", "FIRMWARES", "Address", "BareMachine", "BootError",
           "CloudEnvironment", "Console", "Ec2", "Ec2MetadataService", "FirstBoot", "Forward",
           "GiB", "GuestFacts", "Hardware", "Instance", "Machine", "Network",
           "NovaMetadataService", "OpenStackConfigDrive", "OpenStackMetadataService",
           "Placement", "Qemu", "SecondBoot", "boot_and_wait", "boot_first_time", "disk_size",
           "make_overlay",
           "nova_documents", "smbios", "throwaway_ssh_key", "usable_accel",
           "write_config_drive"]
