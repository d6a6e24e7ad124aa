"""EC2's instance metadata service (IMDS), version 2 only, as an instance sees it.

IMDSv2 (what AWS accounts increasingly enforce, ``HttpTokens=required``): a session token is
asked for with ``PUT /latest/api/token`` and the header
``X-aws-ec2-metadata-token-ttl-seconds: 1-21600``; every other request carries it in
``X-aws-ec2-metadata-token``. A request without a token, or with an unknown or expired one, is
refused with 401; a PUT through a proxy (``X-Forwarded-For``) with 403, as AWS does.

The tree holds what cloud-init's Ec2 datasource reads: ``meta-data/`` (instance-id, hostnames,
placement, public-keys, the NIC under ``network/interfaces/macs/<mac>/``…), ``user-data`` and
``dynamic/instance-identity/document``. Any version path (``latest``, ``2021-03-23`` …) serves
the same tree.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .httpservice import NOT_FOUND, Answer, MetadataService
from .instance import Instance
from .qemu import Network

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
MAX_TTL = 21600
VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2008-02-01", "2008-09-01", "2009-04-04",
            "2011-01-01", "2012-01-12", "2014-02-25", "2016-09-02", "2018-09-24",
            "2021-03-23", "latest")

Tree = Mapping[str, "str | Tree"]


@dataclass(frozen=True)
class Placement:
    region: str = "us-east-1"
    zone: str = "us-east-1a"
    instance_type: str = "t3.micro"
    account: str = "123456789012"


def ec2_tree(instance: Instance, network: Network, placement: Placement,
             domain: str = "ec2.internal") -> dict[str, str | Tree]:
    """The metadata tree of `instance` on `network`: ``meta-data``, ``dynamic``, and
    ``user-data`` when the instance has any."""
    mac = network.mac
    address = network.guest_address
    cidr = network.subnet
    name = f"{instance.hostname}.{domain}"
    interface = {
        "device-number": "0", "interface-id": "eni-0imagefactory0001", "local-hostname": name,
        "local-ipv4s": address, "mac": mac, "owner-id": placement.account,
        "security-group-ids": "sg-0imagefactory0001", "security-groups": "default",
        "subnet-id": "subnet-0imagefactory01", "subnet-ipv4-cidr-block": cidr,
        "vpc-id": "vpc-0imagefactory0001", "vpc-ipv4-cidr-block": cidr,
        "vpc-ipv4-cidr-blocks": cidr,
    }
    identity = {
        "accountId": placement.account, "architecture": "x86_64",
        "availabilityZone": placement.zone, "imageId": "ami-0imagefactory0001",
        "instanceId": instance.ec2_instance_id, "instanceType": placement.instance_type,
        "privateIp": address, "region": placement.region, "version": "2017-09-30",
        "pendingTime": "2026-01-01T00:00:00Z", "kernelId": None, "ramdiskId": None,
        "billingProducts": None, "marketplaceProductCodes": None, "devpayProductCodes": None,
    }
    tree: dict[str, str | Tree] = {
        "meta-data": {
            "ami-id": "ami-0imagefactory0001", "ami-launch-index": "0",
            "ami-manifest-path": "(unknown)",
            "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
            "hostname": name, "instance-action": "none",
            "instance-id": instance.ec2_instance_id, "instance-life-cycle": "on-demand",
            "instance-type": placement.instance_type, "local-hostname": name,
            "local-ipv4": address, "mac": mac,
            "network": {"interfaces": {"macs": {mac: interface}}},
            "placement": {"availability-zone": placement.zone,
                          "availability-zone-id": "use1-az1", "region": placement.region},
            "public-keys": {"0=imagefactory": {"openssh-key": instance.ssh_public_key}},
            "reservation-id": "r-0imagefactory0001", "security-groups": "default",
            "services": {"domain": "amazonaws.com", "partition": "aws"},
        },
        "dynamic": {"instance-identity": {"document": json.dumps(identity, indent=2)}},
    }
    if instance.user_data:
        tree["user-data"] = instance.user_data.decode("utf-8", "surrogateescape")
    return tree


def lookup(tree: Tree, path: str) -> Answer:
    """A path below a version (``meta-data/placement/region``) answered as EC2 does: a leaf's
    text, or a directory's listing (one entry a line, sub-directories with a trailing ``/``,
    public keys as ``0=name``)."""
    node: str | Tree = tree
    for part in [p for p in path.split("/") if p]:
        if isinstance(node, str):
            return NOT_FOUND
        key = next((k for k in node if k == part or k.split("=", 1)[0] == part), None)
        if key is None:
            return NOT_FOUND
        node = node[key]
    if isinstance(node, str):
        return Answer(200, node.encode("utf-8", "surrogateescape"))
    listing = [key if isinstance(value, str) or "=" in key else f"{key}/"
               for key, value in node.items()]
    return Answer(200, "\n".join(listing).encode())


def version_of(path: str) -> tuple[str, str] | None:
    """``/2021-03-23/meta-data/x`` → (``2021-03-23``, ``meta-data/x``); None for no version."""
    version, _, rest = path.lstrip("/").partition("/")
    return (version, rest) if version in VERSIONS else None


class Ec2MetadataService(MetadataService):
    """IMDSv2 for one instance; `requests` records what the guest asked (tokens included)."""

    def __init__(self, instance: Instance, network: Network, placement: Placement | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.tree = ec2_tree(instance, network, placement or Placement())
        self._clock = clock
        self._tokens: dict[str, float] = {}

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        path = path.split("?", 1)[0]
        if path == TOKEN_PATH:
            return self._token(method, headers) if method == "PUT" else Answer(405)
        if method not in ("GET", "HEAD"):
            return Answer(405)
        expiry = self._tokens.get(headers.get(TOKEN_HEADER, ""))
        if expiry is None or expiry <= self._clock():
            return Answer(401, b"Unauthorized")
        if path in ("", "/"):
            return Answer(200, "\n".join(VERSIONS).encode())
        versioned = version_of(path)
        return lookup(self.tree, versioned[1]) if versioned else NOT_FOUND

    def _token(self, method: str, headers: dict[str, str]) -> Answer:
        if "x-forwarded-for" in headers:
            return Answer(403, b"Forbidden")
        try:
            ttl = int(headers.get(TTL_HEADER, ""))
        except ValueError:
            return Answer(400, b"Bad Request")
        if not 1 <= ttl <= MAX_TTL:
            return Answer(400, b"Bad Request")
        token = secrets.token_urlsafe(42)
        self._tokens[token] = self._clock() + ttl
        return Answer(200, token.encode(), {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": str(ttl)})
