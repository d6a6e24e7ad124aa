"""AMIs and their snapshots: waiting for a snapshot, registering it as an AMI, tagging, and
removing both again (after a failed push, or on DELETE)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botocore.client import BaseClient
from imagefactory_core.plugin import BuildContext, BuildError

from .aws import calling

ROOT_DEVICE = "/dev/xvda"
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "i386": "i386", "i686": "i386",
                 "aarch64": "arm64", "arm64": "arm64"}
SNAPSHOT_WAIT_SECONDS = 4 * 3600


@dataclass(frozen=True)
class AmiSpec:
    name: str
    description: str
    architecture: str  # EC2's name: x86_64, i386, arm64
    boot_mode: str
    snapshot_id: str


def ec2_architecture(arch: str) -> str:
    try:
        return ARCHITECTURES[arch.lower()]
    except KeyError:
        raise BuildError(f"EC2 has no '{arch}' machines; it runs "
                         f"{', '.join(sorted(set(ARCHITECTURES.values())))}") from None


def wait_for_snapshot(ctx: BuildContext, ec2: BaseClient, snapshot_id: str) -> None:
    """Poll until EBS has sealed the snapshot (AMIs can only use completed ones)."""
    deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
    delay = 0.5
    while True:
        ctx.check_cancelled()
        with calling(f"waiting for snapshot {snapshot_id}"):
            snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        if snapshot["State"] == "completed":
            return
        if snapshot["State"] == "error":
            raise BuildError(f"snapshot {snapshot_id} failed: "
                             f"{snapshot.get('StateMessage') or 'no reason given'}")
        if time.monotonic() > deadline:
            raise BuildError(f"snapshot {snapshot_id} still {snapshot['State']} after "
                             f"{SNAPSHOT_WAIT_SECONDS // 3600} h ({snapshot.get('Progress')})")
        ctx.cancel_event.wait(delay)
        delay = min(delay * 2, 15.0)


def register_ami(ec2: BaseClient, spec: AmiSpec) -> str:
    """Register an HVM, ENA-enabled AMI whose root device is the snapshot on a gp3 volume
    (of the snapshot's size: EC2's default when a mapping names a snapshot)."""
    with calling(f"EC2 RegisterImage of {spec.snapshot_id}"):
        return ec2.register_image(
            Name=spec.name, Description=spec.description[:255], Architecture=spec.architecture,
            VirtualizationType="hvm", EnaSupport=True, BootMode=spec.boot_mode,
            RootDeviceName=ROOT_DEVICE,
            BlockDeviceMappings=[{"DeviceName": ROOT_DEVICE, "Ebs": {
                "SnapshotId": spec.snapshot_id, "VolumeType": "gp3",
                "DeleteOnTermination": True}}],
        )["ImageId"]


def tag(ec2: BaseClient, resource_ids: Iterable[str], tags: Mapping[str, str]) -> None:
    with calling("EC2 CreateTags"):
        ec2.create_tags(Resources=list(resource_ids),
                        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def snapshots_of(ec2: BaseClient, ami_id: str) -> list[str]:
    """The snapshot ids in the AMI's block device mappings; none when the AMI is gone."""
    images: list[dict] = []
    with calling(f"EC2 DescribeImages {ami_id}", gone_is_fine=True):
        images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    return [m["Ebs"]["SnapshotId"] for image in images
            for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def deregister_ami(ec2: BaseClient, ami_id: str) -> None:
    with calling(f"EC2 DeregisterImage {ami_id}", gone_is_fine=True):
        ec2.deregister_image(ImageId=ami_id)


def delete_snapshot(ec2: BaseClient, snapshot_id: str) -> None:
    with calling(f"EC2 DeleteSnapshot {snapshot_id}", gone_is_fine=True):
        ec2.delete_snapshot(SnapshotId=snapshot_id)
