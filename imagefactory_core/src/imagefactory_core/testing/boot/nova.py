"""What OpenStack Nova tells an instance: the ``openstack/latest/`` documents that its config
drive holds and its metadata service serves, and that service itself.

``meta_data.json`` (uuid, name, hostname, keys, availability zone …), ``network_data.json``
(the NIC by MAC address, on a DHCP network: what Nova writes for a Neutron subnet with DHCP),
``user_data`` when there is any, empty vendor data. Nova's metadata service also answers the
EC2-compatible paths (``/latest/meta-data/…``, without tokens: Nova has no IMDSv2), which
cloud-init's OpenStack datasource reads too.
"""

from __future__ import annotations

import json

from .httpservice import NOT_FOUND, Answer, MetadataService
from .imds import Placement, ec2_tree, lookup, version_of
from .instance import Instance
from .qemu import Network

VERSION = "latest"
KEY_NAME = "imagefactory"


def nova_documents(instance: Instance, network: Network,
                   zone: str = "nova") -> dict[str, bytes]:
    """The files under ``openstack/`` by path (``openstack/latest/meta_data.json`` …)."""
    meta_data = {
        "uuid": instance.uuid, "name": instance.hostname,
        "hostname": f"{instance.hostname}.novalocal", "launch_index": 0,
        "availability_zone": zone, "project_id": "0" * 32, "devices": [],
        "public_keys": {KEY_NAME: instance.ssh_public_key},
        "keys": [{"name": KEY_NAME, "type": "ssh", "data": instance.ssh_public_key}],
        "meta": {},
    }
    network_data = {
        "links": [{"id": "tap-imagefactory0", "vif_id": "00000000-0000-4000-8000-000000000001",
                   "type": "ovs", "mtu": 1500, "ethernet_mac_address": network.mac}],
        "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap-imagefactory0",
                      "network_id": "00000000-0000-4000-8000-000000000002"}],
        "services": [],
    }
    base = f"openstack/{VERSION}"
    documents = {
        f"{base}/meta_data.json": json.dumps(meta_data, indent=2).encode(),
        f"{base}/network_data.json": json.dumps(network_data, indent=2).encode(),
        f"{base}/vendor_data.json": b"{}",
        f"{base}/vendor_data2.json": b"{}",
    }
    if instance.user_data:
        documents[f"{base}/user_data"] = instance.user_data
    return documents


class NovaMetadataService(MetadataService):
    """Nova's metadata service for one instance (``/openstack/…`` and the EC2-compatible
    paths)."""

    def __init__(self, instance: Instance, network: Network) -> None:
        super().__init__()
        self.documents = nova_documents(instance, network)
        self.ec2 = ec2_tree(instance, network, Placement(zone="nova"), domain="novalocal")

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method not in ("GET", "HEAD"):
            return Answer(405)
        path = path.split("?", 1)[0].strip("/")
        if path == "openstack" or path.startswith("openstack/"):
            return self._openstack(path)
        versioned = version_of(path)
        return lookup(self.ec2, versioned[1]) if versioned else NOT_FOUND

    def _openstack(self, path: str) -> Answer:
        if path in self.documents:
            kind = "application/json" if path.endswith(".json") else "application/octet-stream"
            return Answer(200, self.documents[path], content_type=kind)
        prefix = f"{path}/"
        children = sorted({name[len(prefix):].split("/", 1)[0]
                           for name in self.documents if name.startswith(prefix)})
        return Answer(200, "\n".join(children).encode()) if children else NOT_FOUND
