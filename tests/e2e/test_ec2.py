"""The whole ec2 flow through the REST API, on the session's real Debian image and a real
moto server: base → ec2 target (the session's, `ec2_target` in conftest) → AMI → DELETE,
checked against moto with boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from imagefactory_core.testing import wait_for_status

from .conftest import build

pytestmark = pytest.mark.slow


def credentials_xml(endpoint: dict[str, Any]) -> str:
    """The seed's <provider_credentials> form (certificate and key are accepted, ignored)."""
    return f"""<provider_credentials>
  <ec2_credentials>
    <account_number>{endpoint['account_id']}</account_number>
    <access_key>{endpoint['access_key']}</access_key>
    <secret_access_key>{endpoint['secret_access_key']}</secret_access_key>
    <certificate>-----BEGIN CERTIFICATE-----ignored-----END CERTIFICATE-----</certificate>
    <key>-----BEGIN PRIVATE KEY-----ignored-----END PRIVATE KEY-----</key>
  </ec2_credentials>
</provider_credentials>"""


def provider_for(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {"region": endpoint["region"], "endpoint_url": endpoint["endpoint_url"]}


def client(endpoint: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint["endpoint_url"],
                        region_name=endpoint["region"],
                        aws_access_key_id=endpoint["access_key"],
                        aws_secret_access_key=endpoint["secret_access_key"])


def test_target_image_is_a_raw_disk_with_cloud_init(e2e_app, ec2_target, bookworm_base):
    assert ec2_target["base_image_id"] == bookworm_base["id"]
    assert ec2_target["properties"]["disk_format"] == "raw"
    packages = ec2_target["icicle"]
    assert 'name="cloud-init-' in packages
    assert 'name="cloud-init-' not in bookworm_base["icicle"]
    body = e2e_app.services.store.body_path(ec2_target["id"])
    assert body.stat().st_size == 3 * 1024**3


def test_push_register_and_delete_an_ami(e2e_app, e2e_client, ec2_target,
                                         moto_endpoint_aws_blocks):
    endpoint = moto_endpoint_aws_blocks
    form = {"target": "ec2", "provider": json.dumps(provider_for(endpoint)),
            "credentials": credentials_xml(endpoint),
            "parameters": {"endpoints": [endpoint["endpoint_url"]]}}
    pushed = build(e2e_client, "provider_images", form,
                   path=f"/imagefactory/target_images/{ec2_target['id']}/provider_images")
    assert pushed["status"] == "COMPLETE", pushed["status_detail"]
    assert endpoint["secret_access_key"] not in json.dumps(pushed)
    ami_id = pushed["identifier_on_provider"]
    assert ami_id.startswith("ami-")
    assert pushed["provider_account_identifier"] == endpoint["account_id"]

    ec2 = client(endpoint, "ec2")
    (ami,) = ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert ami["Architecture"] == "x86_64"
    assert ami["RootDeviceName"] == "/dev/xvda"
    (mapping,) = [m for m in ami["BlockDeviceMappings"] if "Ebs" in m]
    snapshot_id = mapping["Ebs"]["SnapshotId"]
    tags = {t["Key"]: t["Value"] for t in ami.get("Tags", [])}
    assert pushed["id"] in tags.values()

    ebs = client(endpoint, "ebs")
    listing = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    block_size = listing["BlockSize"]
    assert block_size == endpoint["ebs_block_size"]
    uploaded = {b["BlockIndex"]: b["BlockToken"] for b in listing["Blocks"]}
    while listing.get("NextToken"):
        listing = ebs.list_snapshot_blocks(SnapshotId=snapshot_id, NextToken=listing["NextToken"])
        uploaded.update({b["BlockIndex"]: b["BlockToken"] for b in listing["Blocks"]})
    body = e2e_app.services.store.body_path(ec2_target["id"])
    zero = bytes(block_size)
    with body.open("rb") as disk:
        index = 0
        nonzero = 0
        while chunk := disk.read(block_size):
            if chunk.rstrip(b"\0"):
                nonzero += 1
                assert index in uploaded, f"block {index} has data but was not uploaded"
                got = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index,
                                             BlockToken=uploaded[index])["BlockData"].read()
                assert got == chunk.ljust(block_size, b"\0"), f"block {index} differs"
            else:
                assert index not in uploaded or chunk == zero[:len(chunk)]
            index += 1
    assert nonzero == len(uploaded)
    assert nonzero < index / 2  # zero blocks were skipped

    href = f"/imagefactory/provider_images/{pushed['id']}"
    result = e2e_client.simulate_delete(href, json={"provider_image": {
        "target": "ec2", "provider": provider_for(endpoint),
        "credentials": credentials_xml(endpoint)}})
    assert result.status_code == 204
    assert wait_for_status(e2e_client, href, timeout=120)["status"] == "DELETED"
    assert ec2.describe_images(ImageIds=[ami_id])["Images"] == []
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert snapshot_id not in {s["SnapshotId"] for s in snapshots}


def test_wrong_credentials_fail_clearly_and_leave_nothing(e2e_client, ec2_target,
                                                          moto_endpoint_iam):
    endpoint = moto_endpoint_iam
    ec2 = client(endpoint, "ec2")

    def snapshots() -> set[str]:  # moto starts with public snapshots of its own
        return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}

    snapshots_before = snapshots()
    wrong = {**endpoint, "secret_access_key": "not-the-secret"}
    pushed = build(e2e_client, "provider_images", {
        "target": "ec2", "provider": provider_for(endpoint), "credentials": credentials_xml(wrong),
        "target_image_id": ec2_target["id"],
        "parameters": {"endpoints": [endpoint["endpoint_url"]]}})
    assert pushed["status"] == "FAILED"
    error = pushed["status_detail"]["error"]
    assert "not-the-secret" not in error
    assert any(word in error.lower() for word in ("signature", "credentials", "denied",
                                                   "unauthorized", "security token"))
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert snapshots() == snapshots_before
