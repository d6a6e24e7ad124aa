"""What a cloud tells one instance about itself, whichever way (metadata service, config drive)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import uuid
from dataclasses import dataclass, field


def throwaway_ssh_key(comment: str = "imagefactory-test") -> str:
    """A well-formed ed25519 public key line (random key material, no private key anywhere)."""
    blob = b"".join(struct.pack(">I", len(part)) + part
                    for part in (b"ssh-ed25519", secrets.token_bytes(32)))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


@dataclass(frozen=True)
class Instance:
    """One instance: its name, key, user-data and identity.

    `uuid` is the hypervisor's identity of the machine (SMBIOS, Nova's instance id); EC2's
    instance id is derived from it. `mac` is derived too unless given."""

    hostname: str = field(default_factory=lambda: f"imagefactory-{secrets.token_hex(3)}")
    ssh_public_key: str = field(default_factory=throwaway_ssh_key)
    user_data: bytes = b""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def ec2_instance_id(self) -> str:
        return "i-0" + self.uuid.replace("-", "")[:16]

    def mac(self, prefix: str) -> str:
        """A MAC address in the cloud's range `prefix` (``fa:16:3e`` for OpenStack), stable
        for this instance."""
        digest = hashlib.sha256(self.uuid.encode()).digest()
        octets = prefix.split(":")
        return ":".join([*octets, *(f"{b:02x}" for b in digest[:6 - len(octets)])])
