"""Pushes that cannot finish: a clear error, and nothing left behind on the cloud.

Wrong keys and missing permissions run against ``moto_endpoint_iam``, a moto that checks every
signature and IAM policy as AWS does (stock moto accepts any key).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError
from imagefactory_ec2 import imagefactory_push_image


def push(kit, ctx, endpoint: dict[str, Any], credentials: dict[str, Any], **overrides: Any):
    arguments = {"template": kit.template(), "provider": kit.provider(endpoint),
                 "credentials": credentials, "parameters": kit.parameters(), **overrides}
    return imagefactory_push_image(ctx=ctx, target_image=kit.target(kit.disk()), target="ec2",
                                   **arguments)


@pytest.mark.parametrize("shape", ["xml", "json"])
def test_wrong_credentials(kit, moto_endpoint_iam, shape: str) -> None:
    """With <account_number> (XML) the first call is StartSnapshot; without it, STS."""
    wrong = {**moto_endpoint_iam, "access_key": "AKIAWRONGWRONGWRONG0",
             "secret_access_key": "wrong-secret-of-the-test"}
    credentials = kit.xml_credentials(wrong) if shape == "xml" else kit.json_credentials(wrong)
    ctx = kit.ctx()
    with pytest.raises(BuildError) as caught:
        push(kit, ctx, moto_endpoint_iam, credentials)
    message = str(caught.value)
    assert "the provider rejected the credentials (InvalidClientTokenId" in message
    assert ("EBS StartSnapshot" if shape == "xml" else "STS GetCallerIdentity") in message
    assert "wrong-secret-of-the-test" not in message
    assert not any("wrong-secret-of-the-test" in line for line in ctx.lines)
    admin = kit.client(moto_endpoint_iam, "ec2")
    assert kit.tagged_snapshots(admin, ctx.image_id) == []


def test_missing_permission_midway_removes_the_snapshot(kit, moto_endpoint_iam) -> None:
    """A user allowed StartSnapshot but not PutSnapshotBlock: the snapshot exists when the
    upload fails, and must be gone afterwards."""
    iam = kit.client(moto_endpoint_iam, "iam")
    user = f"no-blocks-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="no-blocks", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ebs:PutSnapshotBlock", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    limited = {**moto_endpoint_iam, "access_key": key["AccessKeyId"],
               "secret_access_key": key["SecretAccessKey"]}
    ctx = kit.ctx()
    with pytest.raises(BuildError) as caught:
        push(kit, ctx, moto_endpoint_iam, kit.xml_credentials(limited))
    assert "EBS PutSnapshotBlock" in str(caught.value)
    assert "not allowed to do this (AccessDenied" in str(caught.value)
    assert any(line.startswith("removed snapshot snap-") for line in ctx.lines)
    assert kit.tagged_snapshots(kit.client(moto_endpoint_iam, "ec2"), ctx.image_id) == []


def test_cancel_mid_upload_removes_the_snapshot(kit, moto_endpoint, on_progress) -> None:
    ctx = kit.ctx()
    on_progress(ctx, lambda percent: percent >= 30 and ctx.cancel_event.set())
    with pytest.raises(BuildCancelled):
        push(kit, ctx, moto_endpoint, kit.json_credentials(moto_endpoint))
    assert max(percent for percent, _ in ctx.reports) < 60  # it stopped mid-upload
    assert any(line.startswith("removed snapshot snap-") for line in ctx.lines)
    assert kit.tagged_snapshots(kit.client(moto_endpoint, "ec2"), ctx.image_id) == []
    assert kit.client(moto_endpoint, "ec2").describe_images(Filters=[
        {"Name": "tag:imagefactory:provider_image_id", "Values": [ctx.image_id]}])["Images"] == []


def test_unknown_architecture_fails_before_anything_is_created(kit, moto_endpoint) -> None:
    ctx = kit.ctx()
    with pytest.raises(BuildError, match="EC2 has no 'ppc64le' machines"):
        push(kit, ctx, moto_endpoint, kit.json_credentials(moto_endpoint),
             template=kit.template("ppc64le"))
    assert kit.tagged_snapshots(kit.client(moto_endpoint, "ec2"), ctx.image_id) == []
