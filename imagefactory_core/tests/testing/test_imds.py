"""The EC2 instance metadata service (IMDSv2) over real HTTP: token semantics and the tree
cloud-init's Ec2 datasource reads, also through the relay QEMU runs for each guest connection."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from imagefactory_core.testing import Ec2MetadataService, Instance, Network, Placement
from imagefactory_core.testing.boot.qemu import RELAY

NETWORK = Network(subnet="169.254.0.0/16", mac="02:00:00:aa:bb:cc")
INSTANCE = Instance(hostname="probe-host", user_data=b"#!/bin/sh\necho hello\n",
                    uuid="0f5f4a3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def imds(clock: Clock):
    with Ec2MetadataService(INSTANCE, NETWORK, Placement(region="eu-west-1",
                                                         zone="eu-west-1b"), clock) as service:
        yield service


def token(imds: Ec2MetadataService, ttl: int = 60) -> str:
    answer = requests.put(f"{imds.url}/latest/api/token",
                          headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-aws-ec2-metadata-token-ttl-seconds"] == str(ttl)
    return answer.text


def get(imds: Ec2MetadataService, path: str, session_token: str | None) -> requests.Response:
    headers = {"X-aws-ec2-metadata-token": session_token} if session_token else {}
    return requests.get(f"{imds.url}{path}", headers=headers, timeout=5)


def test_every_read_without_a_token_is_refused_with_401(imds):
    for path in ("/", "/latest/meta-data/", "/latest/meta-data/instance-id",
                 "/2021-03-23/user-data", "/latest/dynamic/instance-identity/document"):
        assert get(imds, path, None).status_code == 401, path
    assert get(imds, "/latest/meta-data/instance-id", "made-up-token").status_code == 401


@pytest.mark.parametrize("ttl", ["", "0", "21601", "ten"])
def test_a_token_needs_a_ttl_of_1_to_21600_seconds(imds, ttl):
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": ttl} if ttl else {}
    assert requests.put(f"{imds.url}/latest/api/token", headers=headers,
                        timeout=5).status_code == 400


def test_a_token_asked_through_a_proxy_is_refused(imds):
    answer = requests.put(f"{imds.url}/latest/api/token", timeout=5,
                          headers={"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                   "X-Forwarded-For": "203.0.113.9"})
    assert answer.status_code == 403


def test_a_token_works_until_it_expires(imds, clock):
    session = token(imds, ttl=60)
    assert get(imds, "/latest/meta-data/instance-id", session).text == INSTANCE.ec2_instance_id
    clock.now += 59
    assert get(imds, "/latest/meta-data/instance-id", session).status_code == 200
    clock.now += 1
    assert get(imds, "/latest/meta-data/instance-id", session).status_code == 401
    assert get(imds, "/latest/meta-data/instance-id", token(imds)).status_code == 200


def test_only_put_gets_a_token_and_only_get_reads(imds):
    assert requests.get(f"{imds.url}/latest/api/token", timeout=5).status_code == 405
    session = token(imds)
    assert requests.post(f"{imds.url}/latest/meta-data/instance-id", timeout=5,
                         headers={"X-aws-ec2-metadata-token": session}).status_code == 405


def test_the_tree_has_what_cloud_inits_ec2_datasource_reads(imds):
    session = token(imds)
    assert "2021-03-23" in get(imds, "/", session).text.split("\n")
    listing = get(imds, "/2021-03-23/meta-data/", session).text.split("\n")
    assert {"instance-id", "local-hostname", "hostname", "mac", "public-keys/", "placement/",
            "network/"} <= set(listing)
    assert get(imds, "/2021-03-23/meta-data/local-hostname", session).text == \
        "probe-host.ec2.internal"
    assert get(imds, "/latest/meta-data/placement/availability-zone", session).text == \
        "eu-west-1b"
    assert get(imds, "/latest/meta-data/public-keys/", session).text == "0=imagefactory"
    assert get(imds, "/latest/meta-data/public-keys/0/", session).text == "openssh-key"
    assert get(imds, "/latest/meta-data/public-keys/0/openssh-key", session).text == \
        INSTANCE.ssh_public_key
    nic = f"/latest/meta-data/network/interfaces/macs/{NETWORK.mac}"
    assert get(imds, f"{nic}/device-number", session).text == "0"
    assert get(imds, f"{nic}/local-ipv4s", session).text == "169.254.2.15"
    assert get(imds, "/latest/meta-data/mac", session).text == NETWORK.mac
    assert get(imds, "/latest/user-data", session).content == INSTANCE.user_data
    identity = get(imds, "/latest/dynamic/instance-identity/document", session).json()
    assert identity["instanceId"] == INSTANCE.ec2_instance_id
    assert identity["region"] == "eu-west-1"
    assert get(imds, "/latest/meta-data/no-such-thing", session).status_code == 404
    assert get(imds, "/1999-01-01/meta-data/", session).status_code == 404


def test_no_user_data_is_a_404():
    with Ec2MetadataService(Instance(), NETWORK) as service:
        assert get(service, "/latest/user-data", token(service)).status_code == 404


def test_requests_are_recorded_with_the_status_answered(imds):
    session = token(imds)
    get(imds, "/latest/meta-data/instance-id", session)
    get(imds, "/latest/meta-data/instance-id", None)
    assert [(r.method, r.path, r.status) for r in imds.requests] == [
        ("PUT", "/latest/api/token", 200), ("GET", "/latest/meta-data/instance-id", 200),
        ("GET", "/latest/meta-data/instance-id", 401)]
    assert imds.requests[1].headers["x-aws-ec2-metadata-token"] == session


def test_the_relay_carries_a_guest_connection_to_the_service(imds):
    """What QEMU runs for each connection the guest opens to 169.254.169.254:80."""
    request = (b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n"
               b"X-aws-ec2-metadata-token-ttl-seconds: 30\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")
    relay = subprocess.run([sys.executable, "-I", "-S", str(RELAY), "127.0.0.1",
                            str(imds.port)], input=request, capture_output=True, timeout=30)
    assert relay.returncode == 0, relay.stderr
    head, _, body = relay.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert get(imds, "/latest/meta-data/instance-id", body.decode()).status_code == 200


def test_the_identity_document_is_json_of_the_placement():
    placement = Placement(region="ap-south-1", zone="ap-south-1a", instance_type="m7i.large")
    with Ec2MetadataService(INSTANCE, NETWORK, placement) as service:
        document = get(service, "/latest/dynamic/instance-identity/document", token(service))
    assert json.loads(document.text)["instanceType"] == "m7i.large"
