"""The plugin's parameters: declared here, checked and resolved by the core (request, then the
``plugins.ec2`` section of imagefactory.conf, then the default), read here as typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import Parameter

from .disk_format import FORMATS

UPLOADS = ("ebs", "s3")
BOOT_MODES = ("uefi-preferred", "uefi", "legacy-bios")

PARAMETERS = [
    Parameter("ec2_image_format", "string", "raw", "format of the target image (what "
              "ImportSnapshot takes)", choices=FORMATS),
    Parameter("ec2_upload", "string", "ebs", "how a push writes the snapshot: ebs (EBS direct "
              "APIs) or s3 (S3 multipart upload + ImportSnapshot)", choices=UPLOADS),
    Parameter("ec2_upload_threads", "integer", 16, "concurrent PutSnapshotBlock / UploadPart "
              "requests", minimum=1, maximum=128),
    Parameter("ec2_boot_mode", "string", None, "the AMI's boot mode; unset: read from the "
              "disk", choices=BOOT_MODES),
    Parameter("ec2_s3_bucket", "string", None, "bucket that stages S3 uploads; unset: "
              "imagefactory-import-<account>-<region>",
              pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    Parameter("endpoints", "list", None, "the EC2-compatible endpoints (URLs) a request's "
              "provider may name; unset: none, only AWS's own", pattern=r"https?://\S+",
              operator_only=True),
]


@dataclass(frozen=True)
class PushSettings:
    upload: str  # "ebs": EBS direct APIs; "s3": S3 multipart upload + ImportSnapshot
    threads: int  # concurrent PutSnapshotBlock / UploadPart requests
    boot_mode: str | None  # None: read it from the disk
    s3_bucket: str | None  # None: imagefactory-import-<account>-<region>

    @classmethod
    def read(cls, parameters: Mapping[str, Any]) -> PushSettings:
        return cls(upload=parameters["ec2_upload"], threads=parameters["ec2_upload_threads"],
                   boot_mode=parameters["ec2_boot_mode"], s3_bucket=parameters["ec2_s3_bucket"])
