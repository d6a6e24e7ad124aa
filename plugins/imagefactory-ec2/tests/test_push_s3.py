"""The S3 path (``ec2_upload: s3``): a real multipart upload into moto's S3, then ImportSnapshot.

moto implements neither ImportSnapshot, DescribeImportSnapshotTasks nor CancelImportTask (HTTP
500 NotImplementedError), so those three calls, and only those, are answered by a botocore
Stubber; every other call (S3, RegisterImage, CreateTags, DeleteSnapshot …) goes to moto. The
"imported" snapshot is one the test creates in moto beforehand, standing in for what EC2 would
have made of the staged object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.stub import ANY, Stubber
from imagefactory_core.plugin import BuildCancelled, BuildError
from imagefactory_ec2 import (
    imagefactory_create_target_image,
    imagefactory_delete_from_provider,
    imagefactory_push_image,
)
from imagefactory_ec2.aws import AwsClients

TASK_ID = "import-snap-0123456789abcdef0"
STUBBED = ("ImportSnapshot", "DescribeImportSnapshotTasks", "CancelImportTask")


class ImportStubber(Stubber):
    """A Stubber that answers only the `STUBBED` operations and lets every other call reach
    moto. (`Stubber.activate` would hook all of the client's operations; this registers the
    same two handlers for those three only.)"""

    def activate(self) -> None:
        events = self.client.meta.events
        for operation in STUBBED:
            events.register_first(f"before-parameter-build.ec2.{operation}",
                                  self._assert_expected_params,
                                  unique_id=f"{self._expected_params_event_id}-{operation}")
            events.register(f"before-call.ec2.{operation}", self._get_response_handler,
                            unique_id=f"{self._event_id}-{operation}")


@dataclass
class FakeImport:
    """The answers the stub gives, and what the staged object looked like at ImportSnapshot."""

    s3: BaseClient
    answers: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    stubbers: list[Stubber] = field(default_factory=list)
    staged: dict[str, Any] = field(default_factory=dict)
    staged_sha256: str = ""

    def task(self, status: str, **detail: str) -> None:
        self.answers.append(("describe_import_snapshot_tasks", {"ImportSnapshotTasks": [{
            "ImportTaskId": TASK_ID, "SnapshotTaskDetail": {"Status": status, **detail}}]},
            {"ImportTaskIds": [TASK_ID]}))

    def look_at_staged_object(self, params: dict[str, Any], **_: Any) -> None:
        """Read back what S3 stores under the key ImportSnapshot is given, every byte."""
        bucket = params["DiskContainer"]["UserBucket"]
        self.staged = self.s3.get_object(Bucket=bucket["S3Bucket"], Key=bucket["S3Key"])
        digest = hashlib.sha256()
        for chunk in self.staged["Body"].iter_chunks(1024 * 1024):
            digest.update(chunk)
        self.staged_sha256 = digest.hexdigest()

    def assert_all_answered(self) -> None:
        assert len(self.stubbers) == 1
        self.stubbers[0].assert_no_pending_responses()


@pytest.fixture
def fake_import(kit, moto_endpoint_aws_blocks, monkeypatch) -> FakeImport:
    fake = FakeImport(kit.client(moto_endpoint_aws_blocks, "s3"))
    real_client = AwsClients.client

    def client(self: AwsClients, service: str) -> BaseClient:
        made = real_client(self, service)
        if service == "ec2" and all(stub.client is not made for stub in fake.stubbers):
            stub = ImportStubber(made)
            for method, answer, expected in fake.answers:
                stub.add_response(method, answer, expected)
            made.meta.events.register("before-parameter-build.ec2.ImportSnapshot",
                                      fake.look_at_staged_object)
            stub.activate()
            fake.stubbers.append(stub)
        return made

    monkeypatch.setattr(AwsClients, "client", client)
    return fake


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def stand_in_snapshot(ec2: BaseClient) -> str:
    """A snapshot in moto playing the one ImportSnapshot would have created."""
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    return ec2.create_snapshot(VolumeId=volume, Description="stands in for an import")[
        "SnapshotId"]


def expect_import(fake: FakeImport, image_format: str, bucket: str, key: str) -> None:
    fake.answers.append(("import_snapshot", {"ImportTaskId": TASK_ID}, {
        "Description": ANY, "TagSpecifications": ANY,
        "DiskContainer": {"Description": ANY, "Format": image_format,
                          "UserBucket": {"S3Bucket": bucket, "S3Key": key}}}))


def push(kit, endpoint, ctx, disk, parameters: dict[str, Any]):
    return imagefactory_push_image(
        ctx=ctx, template=kit.template(), target_image=kit.target(disk), target="ec2",
        provider=kit.provider(endpoint), credentials=kit.xml_credentials(endpoint),
        parameters=kit.parameters({"ec2_upload": "s3", **parameters}))


@pytest.mark.parametrize(("image_format", "bucket"), [
    ("raw", None),  # the default bucket, created on first use
    ("vmdk", "my-staging-bucket"),
])
def test_s3_multipart_upload_then_import(kit, moto_endpoint_aws_blocks, fake_import,
                                         image_format: str, bucket: str | None) -> None:
    endpoint = moto_endpoint_aws_blocks
    ec2, s3 = kit.client(endpoint, "ec2"), kit.client(endpoint, "s3")
    disk = kit.disk()
    if image_format == "vmdk":
        made = kit.ctx()
        imagefactory_create_target_image(ctx=made, template=kit.template(),
                                         base_image=kit.target(disk), source_disk=disk,
                                         target="ec2",
                                         parameters=kit.parameters({"ec2_image_format": "vmdk"}))
        disk = made.body_path
    ctx = kit.ctx()
    expected_bucket = bucket or "imagefactory-import-123456789012-us-east-1"
    key = f"imagefactory/{ctx.image_id}.{image_format}"
    snapshot_id = stand_in_snapshot(ec2)
    expect_import(fake_import, image_format.upper(), expected_bucket, key)
    fake_import.task("active", Progress="40", StatusMessage="converting")
    fake_import.task("completed", SnapshotId=snapshot_id)

    result = push(kit, endpoint, ctx, disk, {"ec2_s3_bucket": bucket} if bucket else {})

    fake_import.assert_all_answered()
    # the object ImportSnapshot was pointed at holds exactly the image's bytes, sent in parts
    assert fake_import.staged_sha256 == sha256_of(disk)
    assert fake_import.staged["ContentLength"] == disk.stat().st_size
    assert fake_import.staged["ETag"].strip('"').split("-")[1] == str(
        -(-disk.stat().st_size // (8 * 1024 * 1024)))
    # … and is gone again; the bucket stays for the next push
    assert s3.list_objects_v2(Bucket=expected_bucket).get("KeyCount") == 0
    image = ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"][0]
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snapshot_id
    assert image["BootMode"] == ("uefi-preferred" if image_format == "raw" else "legacy-bios")
    assert {t["Key"] for t in image["Tags"]} >= {"Name", "imagefactory:provider_image_id"}
    assert result.properties == {"region": "us-east-1", "upload": "s3",
                                 "s3_bucket": expected_bucket, "s3_key": key,
                                 "snapshot_id": snapshot_id}
    kit.assert_progress_monotone(ctx)
    assert any(percent == 66 for percent, _ in ctx.reports)  # the import task's own 40 %

    imagefactory_delete_from_provider(
        ctx=kit.ctx(), provider_image=kit.provider_image(ctx.image_id, result), target="ec2",
        provider=kit.provider(endpoint), credentials=kit.json_credentials(endpoint),
        parameters=kit.parameters())
    assert ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"] == []
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidSnapshot\.NotFound"):
        ec2.describe_snapshots(SnapshotIds=[snapshot_id])


def test_failed_import_removes_the_staged_object(kit, moto_endpoint_aws_blocks,
                                                 fake_import) -> None:
    endpoint = moto_endpoint_aws_blocks
    ctx = kit.ctx()
    expect_import(fake_import, "RAW", "imagefactory-import-123456789012-us-east-1",
                  f"imagefactory/{ctx.image_id}.raw")
    fake_import.task("deleted", StatusMessage="ClientError: Disk validation failed")
    fake_import.task("deleted")  # asked again while cleaning up: finished, nothing to cancel
    with pytest.raises(BuildError, match=rf"ImportSnapshot {TASK_ID} failed: ClientError: "
                                         "Disk validation failed"):
        push(kit, endpoint, ctx, kit.disk(), {})
    fake_import.assert_all_answered()
    s3 = kit.client(endpoint, "s3")
    with pytest.raises(s3.exceptions.ClientError, match="404"):
        s3.head_object(Bucket="imagefactory-import-123456789012-us-east-1",
                       Key=f"imagefactory/{ctx.image_id}.raw")


def test_cancel_during_import_cancels_the_task(kit, moto_endpoint_aws_blocks, fake_import,
                                               on_progress) -> None:
    endpoint = moto_endpoint_aws_blocks
    ctx = kit.ctx()
    on_progress(ctx, lambda percent: percent >= 60 and ctx.cancel_event.set())
    expect_import(fake_import, "RAW", "imagefactory-import-123456789012-us-east-1",
                  f"imagefactory/{ctx.image_id}.raw")
    fake_import.task("active", Progress="40")
    fake_import.task("active", Progress="40")  # asked again while cleaning up: still running
    fake_import.answers.append(("cancel_import_task",
                                {"ImportTaskId": TASK_ID, "State": "deleting"},
                                {"ImportTaskId": TASK_ID}))
    with pytest.raises(BuildCancelled):
        push(kit, endpoint, ctx, kit.disk(), {})
    fake_import.assert_all_answered()  # CancelImportTask was called
    assert any(line == f"removed import task {TASK_ID}" for line in ctx.lines)
    s3 = kit.client(endpoint, "s3")
    with pytest.raises(s3.exceptions.ClientError, match="404"):
        s3.head_object(Bucket="imagefactory-import-123456789012-us-east-1",
                       Key=f"imagefactory/{ctx.image_id}.raw")
