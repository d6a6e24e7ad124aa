"""The whole openstack-kvm flow through the REST API, on the session's real Debian image and a
real Keystone + Glance: base → qcow2 target → Glance image → DELETE, checked with
openstacksdk; once through Keystone v3 with the seed's credentials, once straight to Glance."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import openstack
import pytest
from imagefactory_core.testing import wait_for_status

from .conftest import build

pytestmark = pytest.mark.slow


def credentials_xml(cloud: dict[str, Any]) -> str:
    """The seed's <openstack_credentials> form."""
    return f"""<provider_credentials>
  <openstack_credentials>
    <username>{cloud['username']}</username>
    <password>{cloud['password']}</password>
    <tenant>{cloud['project_name']}</tenant>
    <auth_url>{cloud['auth_url']}</auth_url>
    <strategy>keystone</strategy>
  </openstack_credentials>
</provider_credentials>"""


def connect(cloud: dict[str, Any]) -> Any:
    keys = ("auth_url", "username", "password", "project_name", "user_domain_name",
            "project_domain_name", "region_name")
    return openstack.connect(**{k: cloud[k] for k in keys})


def digests(path: Any) -> tuple[str, str]:
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            md5.update(chunk)
            sha512.update(chunk)
    return md5.hexdigest(), sha512.hexdigest()


def test_the_requests_mirror_installed_the_target_content(openstack_target, relayed_mirror,
                                                          e2e_app):
    """The target request named a mirror: apt read its package lists from there, while the
    image keeps the sources it was built with."""
    assert any(path.startswith("/dists/bookworm/") for path in relayed_mirror.paths), \
        relayed_mirror.paths
    log = e2e_app.services.store.log_path(openstack_target["id"]).read_text()
    assert relayed_mirror.url in log
    assert openstack_target["parameters"] == {"mirror": relayed_mirror.url}


def test_target_image_is_qcow2_with_cloud_init(openstack_target, bookworm_base):
    assert openstack_target["target"] == "openstack-kvm"
    assert openstack_target["properties"]["disk_format"] == "qcow2"
    assert 'name="cloud-init-' in openstack_target["icicle"]


def test_push_through_keystone_and_delete(e2e_app, e2e_client, openstack_target,
                                          openstack_cloud):
    cloud = openstack_cloud
    path = (f"/imagefactory/base_images/{openstack_target['base_image_id']}/target_images/"
            f"{openstack_target['id']}/provider_images")
    pushed = build(e2e_client, "provider_images", {
        "target": "openstack-kvm", "provider": json.dumps({"auth_url": cloud["auth_url"]}),
        "credentials": credentials_xml(cloud),
        "parameters": {"endpoints": [cloud["auth_url"]]}}, path=path)
    assert pushed["status"] == "COMPLETE", pushed["status_detail"]
    assert cloud["password"] not in json.dumps(pushed)
    glance_id = pushed["identifier_on_provider"]

    conn = connect(cloud)
    image = conn.image.get_image(glance_id)
    assert image.status == "active"
    assert image.disk_format == "qcow2"
    assert image.container_format == "bare"
    body = e2e_app.services.store.body_path(openstack_target["id"])
    md5, sha512 = digests(body)
    assert image.checksum == md5
    assert image.hash_value == sha512
    assert image.size == body.stat().st_size
    assert image.os_distro == "debian"
    assert pushed["provider_account_identifier"] == image.owner

    href = f"{path}/{pushed['id']}"
    result = e2e_client.simulate_delete(href, json={"provider_image": {
        "target": "openstack-kvm", "provider": {"auth_url": cloud["auth_url"]},
        "credentials": credentials_xml(cloud)}})
    assert result.status_code == 204
    assert wait_for_status(e2e_client, href, timeout=120)["status"] == "DELETED"
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(glance_id)


def test_push_to_a_glance_endpoint_directly(e2e_app, e2e_client, openstack_target,
                                            glance_noauth):
    provider = {"glance-host": glance_noauth["glance_host"],
                "glance-port": glance_noauth["glance_port"]}
    pushed = build(e2e_client, "provider_images", {
        "target": "openstack-kvm", "provider": provider, "target_image_id": openstack_target["id"],
        "credentials": {"openstack_credentials": {"strategy": "noauth"}},
        "parameters": {"endpoints": [glance_noauth["glance_url"]]}})
    assert pushed["status"] == "COMPLETE", pushed["status_detail"]
    glance = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                               auth={"endpoint": glance_noauth["glance_url"]},
                               image_endpoint_override=glance_noauth["glance_url"])
    image = glance.image.get_image(pushed["identifier_on_provider"])
    assert image.status == "active"
    md5, _ = digests(e2e_app.services.store.body_path(openstack_target["id"]))
    assert image.checksum == md5
    href = f"/imagefactory/provider_images/{pushed['id']}"
    assert e2e_client.simulate_delete(href, json={"provider_image": {
        "provider": provider,
        "credentials": {"openstack_credentials": {"strategy": "noauth"}}}}).status_code == 204
    assert wait_for_status(e2e_client, href, timeout=120)["status"] == "DELETED"
    with pytest.raises(openstack.exceptions.NotFoundException):
        glance.image.get_image(pushed["identifier_on_provider"])
