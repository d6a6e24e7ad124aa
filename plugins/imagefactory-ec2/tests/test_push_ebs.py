"""Push through the EBS direct APIs and delete again, against real moto servers (no mocks)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from imagefactory_core.plugin import BuildError
from imagefactory_ec2 import (
    imagefactory_create_target_image,
    imagefactory_delete_from_provider,
    imagefactory_push_image,
)


def push(kit, endpoint: dict[str, Any], disk, **overrides: Any):
    ctx = overrides.pop("ctx", None) or kit.ctx()
    target = overrides.pop("target_image", None) or kit.target(disk)
    arguments = {"template": kit.template(), "provider": kit.provider(endpoint),
                 "credentials": kit.json_credentials(endpoint), "parameters": kit.parameters(),
                 **overrides}
    result = imagefactory_push_image(ctx=ctx, target_image=target, target="ec2", **arguments)
    return ctx, result


def test_push_writes_exactly_the_nonzero_blocks(kit, any_moto) -> None:
    disk = kit.disk()
    ctx, result = push(kit, any_moto, disk)
    ebs, ec2 = kit.client(any_moto, "ebs"), kit.client(any_moto, "ec2")
    snapshot_id = result.properties["snapshot_id"]

    block_size = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["BlockSize"]
    assert block_size == any_moto["ebs_block_size"]  # read from moto's answer, not assumed
    expected = kit.nonzero_blocks(disk, block_size)
    assert kit.snapshot_blocks(ebs, snapshot_id) == expected  # same blocks, same bytes
    # the allocated run of zeros was read but not sent; the holes were not even read
    [summary] = [line for line in ctx.lines if "blocks written" in line]
    written, skipped = re.search(r"(\d+) blocks written, (\d+) zero blocks skipped",
                                 summary).groups()
    assert int(written) == len(expected)
    assert int(skipped) >= 1
    assert len(expected) * block_size < disk.stat().st_size / 5

    image = ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"][0]
    assert image["Name"].endswith(ctx.image_id)
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["imagefactory:provider_image_id"] == ctx.image_id
    assert [s["SnapshotId"] for s in kit.tagged_snapshots(ec2, ctx.image_id)] == [snapshot_id]
    assert result.provider_account_identifier == any_moto["account_id"]  # from STS
    assert result.properties["region"] == any_moto["region"]
    kit.assert_progress_monotone(ctx)


def test_ami_is_registered_as_aws_keeps_it(kit, moto_endpoint_aws_blocks) -> None:
    """Stock moto drops RegisterImage's details; the AWS-like flavour keeps them as AWS does."""
    disk = kit.disk()
    ctx, result = push(kit, moto_endpoint_aws_blocks, disk,
                       credentials=kit.xml_credentials(moto_endpoint_aws_blocks))
    ec2 = kit.client(moto_endpoint_aws_blocks, "ec2")
    image = ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"][0]
    assert image["Architecture"] == "x86_64"
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["VirtualizationType"] == "hvm"
    assert image["EnaSupport"] is True
    assert image["BootMode"] == "uefi-preferred"  # the disk has an ESP and BIOS boot code
    [mapping] = image["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/xvda"
    assert mapping["Ebs"]["SnapshotId"] == result.properties["snapshot_id"]
    assert mapping["Ebs"]["VolumeType"] == "gp3"
    assert mapping["Ebs"]["VolumeSize"] == 1  # 32 MiB rounds up to 1 GiB
    assert result.provider_account_identifier == "123456789012"  # from <account_number>
    assert not any(moto_endpoint_aws_blocks["secret_access_key"] in line for line in ctx.lines)


def test_arm64_and_boot_mode_parameter(kit, moto_endpoint_aws_blocks) -> None:
    disk = kit.disk()
    _, arm = push(kit, moto_endpoint_aws_blocks, disk, template=kit.template("aarch64"))
    _, bios = push(kit, moto_endpoint_aws_blocks, disk,
                   parameters=kit.parameters({"ec2_boot_mode": "legacy-bios"}))
    ec2 = kit.client(moto_endpoint_aws_blocks, "ec2")
    images = ec2.describe_images(ImageIds=[arm.identifier_on_provider,
                                           bios.identifier_on_provider])["Images"]
    by_id = {image["ImageId"]: image for image in images}
    assert by_id[arm.identifier_on_provider]["Architecture"] == "arm64"
    assert by_id[arm.identifier_on_provider]["BootMode"] == "uefi"
    assert by_id[bios.identifier_on_provider]["BootMode"] == "legacy-bios"


def test_vmdk_target_is_converted_for_the_ebs_upload(kit, moto_endpoint_aws_blocks) -> None:
    """A VMDK body is converted to raw for the EBS upload."""
    raw = kit.disk()
    vmdk_ctx = kit.ctx()
    imagefactory_create_target_image(ctx=vmdk_ctx, template=kit.template(),
                                     base_image=kit.target(raw), source_disk=raw, target="ec2",
                                     parameters=kit.parameters({"ec2_image_format": "vmdk"}))
    ctx, result = push(kit, moto_endpoint_aws_blocks, vmdk_ctx.body_path)
    ebs = kit.client(moto_endpoint_aws_blocks, "ebs")
    assert kit.snapshot_blocks(ebs, result.properties["snapshot_id"]) == \
        kit.nonzero_blocks(raw, moto_endpoint_aws_blocks["ebs_block_size"])
    assert any("qemu-img convert" in line for line in ctx.lines)


def test_provider_as_ec2_region_string(kit, moto_endpoint_aws_blocks, monkeypatch) -> None:
    """``ec2-us-east-1`` as in the seed; AWS_ENDPOINT_URL (boto3's own setting) points it here."""
    endpoint = moto_endpoint_aws_blocks
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint["endpoint_url"])
    _, result = push(kit, endpoint, kit.disk(), provider="ec2-us-east-1",
                     credentials=kit.xml_credentials(endpoint))
    assert result.properties["region"] == "us-east-1"
    ec2 = kit.client(endpoint, "ec2")
    assert ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"]


def test_provider_as_json_text_with_per_service_endpoints(kit, moto_endpoint_aws_blocks) -> None:
    url = moto_endpoint_aws_blocks["endpoint_url"]
    provider = (f'{{"region": "us-east-1", "ec2_endpoint": "{url}", "ebs_endpoint": "{url}", '
                f'"sts_endpoint": "{url}", "s3_endpoint": "{url}"}}')
    _, result = push(kit, moto_endpoint_aws_blocks, kit.disk(), provider=provider)
    assert result.identifier_on_provider.startswith("ami-")


def test_delete_removes_ami_and_snapshots(kit, any_moto) -> None:
    ctx, result = push(kit, any_moto, kit.disk())
    ec2 = kit.client(any_moto, "ec2")
    record = kit.provider_image(ctx.image_id, result)
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(
        ImageIds=[result.identifier_on_provider])["Images"][0]["BlockDeviceMappings"]]

    delete_ctx = kit.ctx()
    imagefactory_delete_from_provider(ctx=delete_ctx, provider_image=record, target="ec2",
                                      provider=kit.provider(any_moto),
                                      credentials=kit.xml_credentials(any_moto),
                                      parameters=kit.parameters())
    assert ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"] == []
    for snapshot_id in {result.properties["snapshot_id"], *snapshot_ids}:
        with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidSnapshot\.NotFound"):
            ec2.describe_snapshots(SnapshotIds=[snapshot_id])
    assert kit.tagged_snapshots(ec2, ctx.image_id) == []
    # a repeated DELETE (say, after a DELETEFAILED) finds nothing left and succeeds
    imagefactory_delete_from_provider(ctx=kit.ctx(), provider_image=record, target="ec2",
                                      provider=kit.provider(any_moto),
                                      credentials=kit.json_credentials(any_moto),
                                      parameters=kit.parameters())


def test_delete_reports_what_the_cloud_refuses(kit, moto_endpoint_aws_blocks) -> None:
    """Another AMI still uses the snapshot: EC2 refuses, the DELETE fails with the reason."""
    endpoint = moto_endpoint_aws_blocks
    ctx, result = push(kit, endpoint, kit.disk())
    ec2 = kit.client(endpoint, "ec2")
    snapshot_id = result.properties["snapshot_id"]
    other = ec2.register_image(Name=f"other-{ctx.image_id}", RootDeviceName="/dev/xvda",
                               Architecture="x86_64", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                     "Ebs": {"SnapshotId": snapshot_id}}])
    with pytest.raises(BuildError, match=rf"DeleteSnapshot {snapshot_id}: InvalidSnapshot.InUse"):
        imagefactory_delete_from_provider(
            ctx=kit.ctx(), provider_image=kit.provider_image(ctx.image_id, result),
            target="ec2", provider=kit.provider(endpoint),
            credentials=kit.json_credentials(endpoint), parameters=kit.parameters())
    assert ec2.describe_images(ImageIds=[result.identifier_on_provider])["Images"] == []
    ec2.deregister_image(ImageId=other["ImageId"])
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_delete_refuses_another_region(kit, moto_endpoint_aws_blocks) -> None:
    endpoint = moto_endpoint_aws_blocks
    ctx, result = push(kit, endpoint, kit.disk())
    with pytest.raises(BuildError, match="pushed to us-east-1, but the DELETE names region "
                                         "eu-west-1"):
        imagefactory_delete_from_provider(
            ctx=kit.ctx(), provider_image=kit.provider_image(ctx.image_id, result),
            target="ec2", provider={**kit.provider(endpoint), "region": "eu-west-1"},
            credentials=kit.json_credentials(endpoint), parameters=kit.parameters())
