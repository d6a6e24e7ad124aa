"""One real Debian build and an ec2 push (to moto, `tests.services.moto`) through a cluster with
the installed plugins: PostgreSQL, Celery on Redis, bodies in S3, two API servers, and two
workers limited to some plugins as docs/scale-out.md shows (one takes the Debian builds,
the other the ec2 pushes), so the push reads the disk the other worker made from S3 only.

A single request makes the base image, its ec2 target image and the AMI; a DELETE through the
other API server removes the AMI again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.e2e.conftest import BUILD_TIMEOUT, MIRROR, bookworm_tdl
from tests.e2e.test_ec2 import credentials_xml, provider_for

from .conftest import Cluster

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("queue_url", ["celery"], indirect=True)
def test_a_debian_build_and_an_ec2_push_through_the_cluster(
        cluster: Cluster, shared_cache_dir: Path, moto_endpoint_aws_blocks: dict[str, Any]):
    ec2_endpoint = moto_endpoint_aws_blocks
    # the installed plugins, as in tests/e2e: clients may name the mirror and the cloud's
    # endpoints; the build sandbox may reach the mirror, the service the clouds on loopback
    real = {"plugin_modules": [], "disabled_plugins": [], "plugins": {},
            "cache_path": str(shared_cache_dir),
            "operator_parameters": {"*": ["mirror", "apt_proxy", "endpoints"]},
            "sandbox_egress_allow": [urlsplit(MIRROR).hostname],
            "outbound_allow": ["127.0.0.1"]}
    first, second = cluster.api(**real).start(), cluster.api(**real).start()
    builder = cluster.worker(**real, worker_plugins=["debian"]).start()
    pusher = cluster.worker(**real, worker_plugins=["ec2"]).start()

    answer = first.request("POST", "/provider_images", json={"provider_image": {
        "template": bookworm_tdl("cluster-bookworm", disk="2G"), "target": "ec2",
        "provider": json.dumps(provider_for(ec2_endpoint)),
        "credentials": credentials_xml(ec2_endpoint),
        "parameters": {"endpoints": [ec2_endpoint["endpoint_url"]]}}})
    assert answer.status_code == 202, answer.text
    pushed = answer.json()["provider_image"]
    path = f"/provider_images/{pushed['id']}"
    done = second.wait_for(path, timeout=BUILD_TIMEOUT)
    assert done["status"] == "COMPLETE", (done["status_detail"], cluster.logs())
    assert ec2_endpoint["secret_access_key"] not in json.dumps(done)
    ami_id = done["identifier_on_provider"]
    assert ami_id.startswith("ami-")

    target = second.get(f"/target_images/{done['target_image_id']}")
    base = first.get(f"/base_images/{target['base_image_id']}")
    assert base["status"] == target["status"] == "COMPLETE"
    assert 'name="less-' in base["icicle"] and 'name="cloud-init-' in target["icicle"]
    # each job ran on the worker of its plugin
    assert cluster.owner(base["id"]) == cluster.owner(target["id"]) == builder.id
    assert cluster.owner(pushed["id"]) == pusher.id
    head = first.request("HEAD", f"/target_images/{target['id']}/raw_image")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == 2 * 1024**3

    ec2 = boto3.client("ec2", endpoint_url=ec2_endpoint["endpoint_url"],
                       region_name=ec2_endpoint["region"],
                       aws_access_key_id=ec2_endpoint["access_key"],
                       aws_secret_access_key=ec2_endpoint["secret_access_key"])
    (ami,) = ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert pushed["id"] in {t["Value"] for t in ami.get("Tags", [])}

    answer = first.request("DELETE", path, json={"provider_image": {
        "target": "ec2", "provider": provider_for(ec2_endpoint),
        "credentials": credentials_xml(ec2_endpoint)}})
    assert answer.status_code == 204, answer.text
    assert second.wait_for(path, timeout=120)["status"] == "DELETED"
    assert ec2.describe_images(ImageIds=[ami_id])["Images"] == []
    assert cluster.query("SELECT image_id FROM jobs") == []
