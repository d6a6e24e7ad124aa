"""Pushing a target image into an EC2 account as an AMI: the steps, in order, each registered
for undoing so that a failed or cancelled push leaves nothing behind.

EBS path (default): [qemu-img to raw if needed] → snapshot through the EBS direct APIs → wait
until completed → RegisterImage → tags. S3 path: multipart upload → ImportSnapshot → remove the
staged object → RegisterImage → tags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    ImageView,
    PushResult,
    Template,
)

from . import ami, s3_import
from .aws import AwsClients, calling
from .boot_mode import detect_boot_mode
from .cleanup import Undo
from .credentials import parse_credentials
from .disk_format import convert, detect_format
from .ebs_upload import upload_snapshot
from .provider import check_endpoints, parse_provider
from .settings import PushSettings

_AMI_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9()\[\] ./'@_-]+")


@dataclass(frozen=True)
class ImageFacts:
    """What the AMI is called and which machines run it, from the template."""

    name: str
    architecture: str
    description: str

    @classmethod
    def of(cls, template: Template | None, target_image: ImageView) -> ImageFacts:
        if template is None:
            raise BuildError(f"target image {target_image.id} has no template: its "
                             "architecture is unknown")
        return cls(template.name.strip() or "imagefactory", ami.ec2_architecture(template.os.arch),
                   (template.description or "").strip())

    def ami_name(self, image_id: str) -> str:
        """Unique in the account (AWS requires it), 3-128 of the characters AWS allows."""
        suffix = f"-{image_id}"
        return _AMI_NAME_UNSAFE.sub("-", self.name)[: 128 - len(suffix)] + suffix


def push(ctx: BuildContext, template: Template | None, target_image: ImageView,
         provider: str | Mapping[str, Any], credentials: Mapping[str, Any],
         parameters: Mapping[str, Any]) -> PushResult:
    settings = PushSettings.read(parameters)
    where = parse_provider(provider)
    check_endpoints(where, parameters["endpoints"], ctx.outbound)
    secret = parse_credentials(credentials)
    for value in secret.secrets:
        ctx.add_secret(value)
    facts = ImageFacts.of(template, target_image)
    clients = AwsClients(where, secret, ctx.outbound, pool=settings.threads + 2)
    account = secret.account_number or _caller_account(clients)
    name = facts.ami_name(ctx.image_id)
    description = facts.description or f"{facts.name}, built by imagefactory"
    tags = {"Name": name, "imagefactory:provider_image_id": ctx.image_id,
            "imagefactory:target_image_id": target_image.id}
    if target_image.base_image_id:
        tags["imagefactory:base_image_id"] = target_image.base_image_id
    disk = target_image.body_path
    disk_format = detect_format(disk)
    properties: dict[str, Any] = {"region": where.region, "upload": settings.upload}
    ctx.log(f"pushing {disk_format} image {target_image.id} to EC2 {where.region} "
            f"(account {account}) through {settings.upload.upper()}")
    with Undo(ctx) as undo:
        if settings.upload == "ebs":
            if disk_format != "raw":
                ctx.progress(0, f"Converting the {disk_format} image to raw for EBS")
                raw = ctx.workdir / "ec2-upload.raw"
                convert(ctx, disk, disk_format, raw, "raw")
                disk, disk_format = raw, "raw"
            snapshot_id = _snapshot_via_ebs(ctx.scaled(0, 95), clients, disk, description, tags,
                                            settings, undo)
        else:
            bucket = settings.s3_bucket or s3_import.default_bucket(account, where.region)
            key = f"imagefactory/{ctx.image_id}.{disk_format}"
            properties.update(s3_bucket=bucket, s3_key=key)
            snapshot_id = _snapshot_via_s3(ctx.scaled(0, 95), clients, disk, disk_format,
                                           bucket, key, description, tags, settings, undo)
        properties["snapshot_id"] = snapshot_id
        ctx.progress(95, "Registering the AMI")
        boot_mode = settings.boot_mode or _boot_mode(ctx, disk, disk_format, facts.architecture)
        ami_id = ami.register_ami(clients.ec2, ami.AmiSpec(
            name=name, description=description, architecture=facts.architecture,
            boot_mode=boot_mode, snapshot_id=snapshot_id))
        undo.push(f"AMI {ami_id}", lambda: ami.deregister_ami(clients.ec2, ami_id))
        ami.tag(clients.ec2, [ami_id, snapshot_id], tags)
    ctx.progress(100, f"AMI {ami_id} registered in {where.region}")
    return PushResult(identifier_on_provider=ami_id, provider_account_identifier=account,
                      properties=properties)


def _caller_account(clients: AwsClients) -> str:
    """The account the credentials belong to, when the request did not name it."""
    with calling("STS GetCallerIdentity (to learn the account number)"):
        return str(clients.sts.get_caller_identity()["Account"])


def _snapshot_via_ebs(ctx: BuildContext, clients: AwsClients, disk: Path, description: str,
                      tags: Mapping[str, str], settings: PushSettings, undo: Undo) -> str:
    ec2 = clients.ec2
    ctx.progress(0, "Writing the image into an EBS snapshot (EBS direct APIs)")

    def started(snapshot_id: str) -> None:
        undo.push(f"snapshot {snapshot_id}", lambda: ami.delete_snapshot(ec2, snapshot_id))

    snapshot = upload_snapshot(ctx.scaled(0, 95), clients.ebs, disk, description=description,
                               tags=tags, threads=settings.threads, on_started=started)
    ctx.progress(95, f"Waiting for snapshot {snapshot.snapshot_id} to complete")
    ami.wait_for_snapshot(ctx, ec2, snapshot.snapshot_id)
    return snapshot.snapshot_id


def _snapshot_via_s3(ctx: BuildContext, clients: AwsClients, disk: Path, disk_format: str,
                     bucket: str, key: str, description: str, tags: Mapping[str, str],
                     settings: PushSettings, undo: Undo) -> str:
    if disk_format not in s3_import.IMPORT_FORMATS:
        raise BuildError(f"ImportSnapshot takes raw, VMDK or VHD images, not {disk_format}")
    s3, ec2 = clients.s3, clients.ec2
    ctx.progress(0, f"Uploading the image to s3://{bucket}/{key}")
    s3_import.ensure_bucket(ctx, s3, bucket, clients.provider.region)
    undo.push(f"staged object s3://{bucket}/{key}",
              lambda: s3_import.delete_object(s3, bucket, key))
    s3_import.upload_object(ctx.scaled(0, 50), s3, disk, bucket, key, threads=settings.threads)
    ctx.progress(50, "Importing the staged image as a snapshot (EC2 ImportSnapshot)")

    def started(task_id: str) -> None:
        undo.push(f"import task {task_id}", lambda: s3_import.cancel_import(ec2, task_id))

    snapshot_id = s3_import.import_snapshot(ctx.scaled(50, 100), ec2, bucket, key, disk_format,
                                            description=description, tags=tags,
                                            on_started=started)
    undo.push(f"snapshot {snapshot_id}", lambda: ami.delete_snapshot(ec2, snapshot_id))
    try:
        s3_import.delete_object(s3, bucket, key)
        ctx.log(f"removed the staged object s3://{bucket}/{key}")
    except BuildError as exc:  # the AMI is still good; DELETE of the image retries this
        ctx.log(f"could not remove the staged object: {exc}")
    return snapshot_id


def _boot_mode(ctx: BuildContext, disk: Path, disk_format: str, architecture: str) -> str:
    """Read it from the partition table; Graviton (arm64) only boots UEFI."""
    if architecture == "arm64":
        return "uefi"
    detected = None
    if disk_format in ("raw", "vhd"):  # a fixed VHD is the raw disk plus a footer
        fd = os.open(disk, os.O_RDONLY)
        try:
            detected = detect_boot_mode(fd)
        finally:
            os.close(fd)
    ctx.log(f"boot mode: {detected or 'legacy-bios (not detectable from the disk)'}")
    return detected or "legacy-bios"
