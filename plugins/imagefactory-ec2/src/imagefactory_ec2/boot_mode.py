"""Which firmware can boot a raw disk, read from its partition table.

EC2's BootMode must match the disk: an AMI registered ``uefi`` whose disk has no EFI system
partition does not boot, and neither does a ``legacy-bios`` AMI whose MBR has no boot code. A disk
that can do both (the Debian plugin's) gets ``uefi-preferred``: UEFI where the instance type has
it, BIOS elsewhere.
"""

from __future__ import annotations

import os
import uuid

SECTOR = 512
ESP_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
BIOS_BOOT_GUID = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
MBR_ESP_TYPE = 0xEF


def detect_boot_mode(fd: int) -> str | None:
    """``uefi-preferred``, ``uefi``, ``legacy-bios``, or None when the disk shows neither."""
    mbr = os.pread(fd, SECTOR, 0)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return None
    bios = any(mbr[:440])  # BIOS runs this boot code; syslinux and GRUB both put theirs here
    gpt = _gpt_types(fd)
    if gpt:
        uefi = ESP_GUID in gpt
        bios = bios or BIOS_BOOT_GUID in gpt
    else:
        uefi = MBR_ESP_TYPE in {mbr[446 + 16 * i + 4] for i in range(4)}
    if uefi and bios:
        return "uefi-preferred"
    if uefi:
        return "uefi"
    return "legacy-bios" if bios else None


def _gpt_types(fd: int) -> set[uuid.UUID]:
    header = os.pread(fd, 92, SECTOR)
    if header[:8] != b"EFI PART":
        return set()
    entries_lba = int.from_bytes(header[72:80], "little")
    count = min(int.from_bytes(header[80:84], "little"), 1024)
    entry_size = int.from_bytes(header[84:88], "little")
    if entry_size < 16:
        return set()
    table = os.pread(fd, count * entry_size, entries_lba * SECTOR)
    return {uuid.UUID(bytes_le=table[i:i + 16]) for i in range(0, len(table), entry_size)
            if len(table[i:i + 16]) == 16}
