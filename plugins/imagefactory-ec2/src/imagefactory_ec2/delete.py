"""Deleting a provider image from EC2: the AMI, its snapshots and any staged S3 object.

The order matters: EC2 refuses to delete a snapshot an AMI still uses, so the AMI goes first.
Whatever is already gone counts as deleted, so a DELETE that failed halfway can simply be
repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, ImageView

from . import ami, s3_import
from .aws import AwsClients
from .credentials import parse_credentials
from .provider import check_endpoints, parse_provider


def delete(ctx: BuildContext, provider_image: ImageView, provider: str | Mapping[str, Any],
           credentials: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    where = parse_provider(provider)
    # the push's parameters: one recorded before `endpoints` existed allows none
    check_endpoints(where, parameters.get("endpoints"), ctx.outbound)
    secret = parse_credentials(credentials)
    for value in secret.secrets:
        ctx.add_secret(value)
    properties = provider_image.properties
    pushed_to = properties.get("region")
    if pushed_to and pushed_to != where.region:
        raise BuildError(f"{provider_image.id} was pushed to {pushed_to}, but the DELETE names "
                         f"region {where.region}")
    clients = AwsClients(where, secret, ctx.outbound)
    ami_id = provider_image.identifier_on_provider
    snapshots: list[str] = []
    if ami_id:
        ctx.progress(0, f"Deregistering AMI {ami_id}")
        snapshots = ami.snapshots_of(clients.ec2, ami_id)
        ami.deregister_ami(clients.ec2, ami_id)
    if properties.get("snapshot_id"):
        snapshots.append(properties["snapshot_id"])
    failures = []
    for snapshot_id in dict.fromkeys(snapshots):  # in order, without duplicates
        ctx.progress(50, f"Deleting snapshot {snapshot_id}")
        try:
            ami.delete_snapshot(clients.ec2, snapshot_id)
        except BuildError as exc:
            failures.append(str(exc))
    if properties.get("s3_bucket") and properties.get("s3_key"):
        try:
            s3_import.delete_object(clients.s3, properties["s3_bucket"], properties["s3_key"])
        except BuildError as exc:
            failures.append(str(exc))
    if failures:
        raise BuildError("; ".join(failures))
    ctx.progress(100, f"Deleted {ami_id or provider_image.id} and its snapshots from EC2")
