"""Writing a raw disk into a new EBS snapshot with the EBS direct APIs, the way AWS's coldsnap
does: StartSnapshot, PutSnapshotBlock for every block that holds data, CompleteSnapshot.

What makes it fast:

* EBS reads never-written blocks as zeros, so all-zero blocks are not sent, and the holes of a
  sparse image are not even read (``SEEK_DATA``): a 10 GiB image with 1 GiB of data costs 1 GiB.
* Blocks go out from a bounded pool of threads; each thread reads, hashes and sends its own
  block, so memory stays at one block per thread and hashing (which releases the GIL) overlaps
  the network.

The block size is whatever StartSnapshot answers (AWS: 524288 bytes, moto: 512), never assumed.
Each block carries its SHA-256 so EBS rejects a corrupted block, and CompleteSnapshot carries the
LINEAR aggregate (SHA-256 over the block digests in block order) so EBS can check that it got
every block we meant to send.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from botocore.client import BaseClient
from imagefactory_core.plugin import BuildContext, BuildError

from .aws import calling
from .parallel import for_each
from .sparse import block_ranges, data_extents

GIB = 1024**3
SNAPSHOT_TIMEOUT_MINUTES = 60
"""EBS sets a snapshot to error when no block arrives for this long: a push whose worker died
(daemon killed) leaves nothing pending for long even though its clean-up never ran."""


@dataclass(frozen=True)
class UploadedSnapshot:
    snapshot_id: str
    volume_size_gib: int
    block_size: int
    blocks_written: int
    blocks_skipped: int


def volume_size_gib(disk_size: int) -> int:
    """EBS volumes come in whole GiB; at least 1."""
    return max(1, -(-disk_size // GIB))


def upload_snapshot(ctx: BuildContext, ebs: BaseClient, disk: Path, *, description: str,
                    tags: Mapping[str, str], threads: int,
                    on_started: Callable[[str], None]) -> UploadedSnapshot:
    """Upload raw `disk` into a new snapshot, complete it and return it (maybe still pending).

    `on_started` gets the snapshot id as soon as it exists, so the caller can remove it if
    anything later fails. Progress: bytes done over the bytes of the blocks holding data.
    """
    with open(disk, "rb") as image:
        fd = image.fileno()
        size = os.fstat(fd).st_size
        gib = volume_size_gib(size)
        with calling("EBS StartSnapshot"):
            answer = ebs.start_snapshot(
                VolumeSize=gib, Description=description[:255], Timeout=SNAPSHOT_TIMEOUT_MINUTES,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        snapshot_id, block_size = answer["SnapshotId"], int(answer["BlockSize"])
        on_started(snapshot_id)
        ctx.log(f"snapshot {snapshot_id}: {gib} GiB in blocks of {block_size} bytes")
        ranges = block_ranges(data_extents(fd, size), block_size)
        candidates = sum(len(r) for r in ranges)
        zero = bytes(block_size)
        digests: dict[int, bytes] = {}  # distinct keys from many threads: atomic under the GIL

        def put(index: int) -> int:
            data = os.pread(fd, block_size, index * block_size)
            if len(data) < block_size:  # the disk's last, partial block: EBS wants it whole
                data += bytes(block_size - len(data))
            if data != zero:
                digest = hashlib.sha256(data).digest()
                ebs.put_snapshot_block(
                    SnapshotId=snapshot_id, BlockIndex=index, BlockData=data,
                    DataLength=block_size, Checksum=base64.b64encode(digest).decode(),
                    ChecksumAlgorithm="SHA256")
                digests[index] = digest
            return block_size

        with calling(f"EBS PutSnapshotBlock to {snapshot_id}"):
            for_each(ctx, itertools.chain.from_iterable(ranges), put, threads=threads,
                     total=candidates * block_size)
    ctx.log(f"snapshot {snapshot_id}: {len(digests)} blocks written, "
            f"{candidates - len(digests)} zero blocks skipped, holes not read")
    checksum = {}
    if digests:
        linear = hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()
        checksum = {"Checksum": base64.b64encode(linear).decode(), "ChecksumAlgorithm": "SHA256",
                    "ChecksumAggregationMethod": "LINEAR"}
    with calling(f"EBS CompleteSnapshot of {snapshot_id}"):
        status = ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(digests),
                                       **checksum)["Status"]
    if status == "error":
        raise BuildError(f"EBS refused to complete snapshot {snapshot_id}")
    return UploadedSnapshot(snapshot_id, gib, block_size, len(digests), candidates - len(digests))
