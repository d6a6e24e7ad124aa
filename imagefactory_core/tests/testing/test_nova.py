"""OpenStack Nova's view of an instance: the config drive ISO (read back by blkid and pycdlib,
independently of how it was written) and the metadata service over real HTTP."""

from __future__ import annotations

import io
import json
import subprocess

import pycdlib
import requests
from imagefactory_core.testing import (
    Instance,
    Network,
    NovaMetadataService,
    nova_documents,
    write_config_drive,
)

INSTANCE = Instance(hostname="nova-host", user_data=b"#!/bin/sh\necho nova\n")
NETWORK = Network(mac="fa:16:3e:01:02:03")


def read_rock_ridge(iso_path, rr_path: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=rr_path)
        return out.getvalue()
    finally:
        iso.close()


def test_the_documents_are_what_cloud_init_reads_from_nova():
    documents = nova_documents(INSTANCE, NETWORK)
    meta = json.loads(documents["openstack/latest/meta_data.json"])
    assert meta["uuid"] == INSTANCE.uuid
    assert meta["hostname"] == "nova-host.novalocal"
    assert meta["public_keys"] == {"imagefactory": INSTANCE.ssh_public_key}
    network = json.loads(documents["openstack/latest/network_data.json"])
    (link,) = network["links"]
    assert link["ethernet_mac_address"] == NETWORK.mac
    assert network["networks"][0]["type"] == "ipv4_dhcp"
    assert network["networks"][0]["link"] == link["id"]
    assert documents["openstack/latest/user_data"] == INSTANCE.user_data
    assert "openstack/latest/user_data" not in nova_documents(Instance(), NETWORK)


def test_the_config_drive_is_an_iso9660_labelled_config_2(tmp_path):
    drive = write_config_drive(tmp_path / "cd.iso", nova_documents(INSTANCE, NETWORK))
    probe = subprocess.run(["blkid", "-o", "export", str(drive)], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert "TYPE=iso9660" in probe
    assert "LABEL=config-2" in probe


def test_the_config_drive_holds_the_documents_under_their_own_names(tmp_path):
    documents = nova_documents(INSTANCE, NETWORK)
    drive = write_config_drive(tmp_path / "cd.iso", documents)
    for name, content in documents.items():
        assert read_rock_ridge(drive, f"/{name}") == content, name
    iso = pycdlib.PyCdlib()
    iso.open(str(drive))
    try:
        names = sorted(child.rock_ridge.name().decode() for child in
                       iso.list_children(rr_path="/openstack/latest")
                       if child.rock_ridge and not child.is_dot() and not child.is_dotdot())
        joliet = sorted(child.file_identifier().decode("utf-16_be") for child in
                        iso.list_children(joliet_path="/openstack/latest")
                        if not child.is_dot() and not child.is_dotdot())
    finally:
        iso.close()
    expected = sorted(name.rsplit("/", 1)[1] for name in documents)
    assert names == expected
    assert joliet == expected  # what Windows guests (cloudbase-init) read


def test_the_metadata_service_serves_the_documents_and_ec2_paths():
    with NovaMetadataService(INSTANCE, NETWORK) as service:
        def get(path: str) -> requests.Response:
            return requests.get(f"{service.url}{path}", timeout=5)

        assert get("/openstack").text.split("\n") == ["latest"]
        assert set(get("/openstack/latest/").text.split("\n")) >= {
            "meta_data.json", "network_data.json", "user_data"}
        assert get("/openstack/latest/meta_data.json").json()["name"] == "nova-host"
        assert get("/openstack/latest/user_data").content == INSTANCE.user_data
        assert get("/openstack/2099-01-01/meta_data.json").status_code == 404
        # Nova's EC2-compatible API: no tokens (Nova has no IMDSv2)
        assert get("/latest/meta-data/local-hostname").text == "nova-host.novalocal"
        assert get("/2009-04-04/meta-data/placement/availability-zone").text == "nova"
        assert requests.put(f"{service.url}/latest/api/token", timeout=5).status_code == 405
