"""The S3 path (``ec2_upload: s3``): a parallel multipart upload of the image to S3, EC2
ImportSnapshot of the staged object, then the object is removed.

It moves every byte, holes included, and EC2 converts afterwards, so it is slower than the EBS
direct path; it is there for VMDK and VHD images and for accounts or clouds without the EBS
direct APIs. ImportSnapshot needs the ``vmimport`` service role in the account (the VM Import
prerequisite), which the account owner creates once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError
from imagefactory_core.plugin import BuildContext, BuildError

from .aws import calling, error_code, explain
from .parallel import for_each

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
"""Parts in flight at once = upload threads, so memory is threads x part size (128 MiB at 16)."""
MAX_PARTS = 10_000  # S3's limit; bigger images get bigger parts
IMPORT_FORMATS = {"raw": "RAW", "vmdk": "VMDK", "vhd": "VHD"}
IMPORT_WAIT_SECONDS = 6 * 3600
FINISHED = ("completed", "deleting", "deleted")


def default_bucket(account: str, region: str) -> str:
    return f"imagefactory-import-{account}-{region}"


def ensure_bucket(ctx: BuildContext, s3: BaseClient, bucket: str, region: str) -> None:
    """Create the staging bucket unless it exists (it is kept for later pushes)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if error_code(exc) == "403":  # HEAD answers carry no error body, only the status
            raise BuildError(f"S3 bucket {bucket} exists but these credentials may not use it; "
                             "name another one with ec2_s3_bucket") from exc
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise explain(exc, f"S3 bucket {bucket}") from exc
    except BotoCoreError as exc:
        raise explain(exc, f"S3 bucket {bucket}") from exc
    location = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    with calling(f"S3 CreateBucket {bucket}"):
        s3.create_bucket(Bucket=bucket, **location)
    ctx.log(f"created S3 bucket {bucket}")


def _parts(size: int) -> tuple[int, Iterator[tuple[int, int, int]]]:
    part_size = max(PART_SIZE, -(-size // MAX_PARTS // MIB) * MIB)
    return part_size, ((n + 1, offset, min(part_size, size - offset))
                       for n, offset in enumerate(range(0, size, part_size)))


def upload_object(ctx: BuildContext, s3: BaseClient, disk: Path, bucket: str, key: str, *,
                  threads: int) -> None:
    """Multipart-upload `disk` to ``s3://bucket/key``; abort the upload if anything fails."""
    with calling(f"S3 CreateMultipartUpload s3://{bucket}/{key}"):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags: dict[int, str] = {}  # distinct keys from many threads: atomic under the GIL
    try:
        with open(disk, "rb") as image:
            size = os.fstat(image.fileno()).st_size
            part_size, parts = _parts(size)
            ctx.log(f"uploading {size} bytes to s3://{bucket}/{key} in parts of {part_size}")

            def send(part: tuple[int, int, int]) -> int:
                number, offset, length = part
                body = os.pread(image.fileno(), length, offset)
                etags[number] = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                               PartNumber=number, Body=body)["ETag"]
                return length

            with calling(f"S3 UploadPart to s3://{bucket}/{key}"):
                for_each(ctx, parts, send, threads=threads, total=size)
        with calling(f"S3 CompleteMultipartUpload s3://{bucket}/{key}"):
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [
                    {"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]})
    except BaseException:
        try:  # S3 keeps (and bills) the parts of an unfinished upload until it is aborted
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as exc:
            ctx.log(f"could not abort multipart upload {upload_id} of s3://{bucket}/{key}: {exc}")
        raise


def delete_object(s3: BaseClient, bucket: str, key: str) -> None:
    with calling(f"S3 DeleteObject s3://{bucket}/{key}", gone_is_fine=True):
        s3.delete_object(Bucket=bucket, Key=key)


def import_snapshot(ctx: BuildContext, ec2: BaseClient, bucket: str, key: str, disk_format: str,
                    *, description: str, tags: Mapping[str, str],
                    on_started: Callable[[str], None]) -> str:
    """ImportSnapshot of ``s3://bucket/key``; wait for it and return the snapshot id.

    `on_started` gets the import task id, so the caller can cancel the task if this fails or is
    cancelled. Progress is the task's own.
    """
    with calling("EC2 ImportSnapshot"):
        task_id = ec2.import_snapshot(
            Description=description[:255],
            DiskContainer={"Description": description[:255], "Format": IMPORT_FORMATS[disk_format],
                           "UserBucket": {"S3Bucket": bucket, "S3Key": key}},
            TagSpecifications=[{"ResourceType": "import-snapshot-task",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["ImportTaskId"]
    on_started(task_id)
    ctx.log(f"import task {task_id} started")
    deadline = time.monotonic() + IMPORT_WAIT_SECONDS
    delay = 1.0
    while True:
        ctx.check_cancelled()
        detail = _task(ec2, task_id)
        status = detail.get("Status", "")
        if status == "completed":
            return str(detail["SnapshotId"])
        if status in FINISHED:
            raise BuildError(f"EC2 ImportSnapshot {task_id} failed: "
                             f"{detail.get('StatusMessage') or status}")
        if time.monotonic() > deadline:
            raise BuildError(f"EC2 ImportSnapshot {task_id} still {status} after "
                             f"{IMPORT_WAIT_SECONDS // 3600} h")
        if str(detail.get("Progress", "")).isdigit():
            ctx.progress(int(detail["Progress"]))
        ctx.cancel_event.wait(delay)
        delay = min(delay * 2, 30.0)


def cancel_import(ec2: BaseClient, task_id: str) -> None:
    """Cancel the import task unless it has finished anyway."""
    if _task(ec2, task_id).get("Status") not in FINISHED:
        with calling(f"EC2 CancelImportTask {task_id}"):
            ec2.cancel_import_task(ImportTaskId=task_id)


def _task(ec2: BaseClient, task_id: str) -> dict:
    with calling(f"EC2 DescribeImportSnapshotTasks {task_id}"):
        tasks = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"]
    if not tasks:
        raise BuildError(f"EC2 lost import task {task_id}")
    return tasks[0].get("SnapshotTaskDetail", {})
