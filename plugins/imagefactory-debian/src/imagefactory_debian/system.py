"""What makes one image itself: host name, file system identities, root password.

The root password is stored as a SHA-512 crypt hash (``chpasswd --crypt-method SHA512`` inside
the tree, fed on standard input, so the clear text is in no command line and no log line), or
the root account is locked when the template has no ``<rootpw>`` (``configure-image.sh``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from imagefactory_core.plugin import BuildContext, BuildError

from .esp import fstab_id, new_volume_id
from .rootfs import SCRIPTS, RootFS


@dataclass(frozen=True)
class Identity:
    hostname: str
    root_uuid: str  # of the ext4 root file system
    esp_volume_id: str  # of the FAT EFI system partition, as mkfs.fat takes it

    @classmethod
    def new(cls, template_name: str) -> Identity:
        return cls(hostname(template_name), str(uuid.uuid4()), new_volume_id())


def hostname(name: str) -> str:
    """A valid host name (RFC 1123 label) from the template's name: ``My_Image`` → ``my-image``."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return label or "debian"


def configure(ctx: BuildContext, root: RootFS, identity: Identity, rootpw: str | None) -> None:
    if rootpw is not None and "\n" in rootpw:
        raise BuildError("<rootpw> must be a single line")
    if rootpw:
        ctx.add_secret(rootpw)
    root.run_script(ctx, SCRIPTS / "configure-image.sh", identity.hostname, identity.root_uuid,
                    fstab_id(identity.esp_volume_id),
                    input=f"{rootpw}\n".encode() if rootpw else b"")


def finalize(ctx: BuildContext, root: RootFS) -> None:
    root.run_script(ctx, SCRIPTS / "finalize-image.sh")
