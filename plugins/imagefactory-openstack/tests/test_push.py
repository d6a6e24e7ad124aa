"""Pushes into a real Glance: through Keystone v3, straight to an endpoint, with and without a
token; what arrives is checked with the admin's own openstacksdk connection."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagefactory_openstack as plugin
import openstack
import openstack.connection
import openstack.exceptions
import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError, ImageView, Template
from imagefactory_core.testing import RecordingBuildContext
from imagefactory_openstack.push import _verify
from openstack.image.v2.image import Image

# openstacksdk warns about its own internals (InfluxDB support, renamed methods) on every call.
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")]

NewContext = Callable[..., RecordingBuildContext]
Connection = openstack.connection.Connection


Push = Callable[..., Any]


@pytest.fixture
def push(parameters: Callable[..., dict[str, Any]]) -> Push:
    """Push as the core would: `config` is the plugin's configuration besides the operator's
    endpoints, `request` the request's parameters."""
    def run(ctx: RecordingBuildContext, target: ImageView, provider: Any,
            credentials: dict[str, Any], template: Template | None = None,
            config: dict[str, Any] | None = None, **request: Any) -> Any:
        return plugin.imagefactory_push_image(
            ctx=ctx, template=template, target_image=target, target="openstack-kvm",
            provider=provider, credentials=credentials, parameters=parameters(config, **request))
    return run


def glance_record(conn: Connection, image_id: str) -> dict[str, Any]:
    """The image exactly as Glance's API returns it (openstacksdk moves some keys around)."""
    return dict(conn.image.get(f"images/{image_id}").json())


def glance_images(conn: Connection, ctx: RecordingBuildContext) -> list[Any]:
    """Every image this push may have created, in any state."""
    return [image for image in conn.image.images()
            if image.properties.get("imagefactory_provider_image_id") == ctx.image_id
            or ctx.image_id in (image.name or "")]


def test_push_through_keystone_with_seed_xml_credentials(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, template: Template, openstack_cloud: dict[str, Any],
        xml_credentials: dict[str, Any], admin: Connection,
        digest: Callable[[Path, str], str]) -> None:
    ctx = new_context()
    target = target_image(qcow2_disk)
    result = push(ctx, target, {"auth_url": openstack_cloud["auth_url"]}, xml_credentials,
                  template, openstack_image_properties={"hw_qemu_guest_agent": "yes"})

    image = admin.image.get_image(result.identifier_on_provider)
    assert image.status == "active"
    assert image.name == f"jeos-{ctx.image_id}"
    assert (image.disk_format, image.container_format) == ("qcow2", "bare")
    assert image.size == qcow2_disk.stat().st_size
    assert image.checksum == digest(qcow2_disk, "md5")
    assert (image.hash_algo, image.hash_value) == ("sha512", digest(qcow2_disk, "sha512"))
    assert image.min_disk == 1
    stored = glance_record(admin, image.id)
    assert {key: stored.get(key) for key in (
        "os_distro", "os_version", "architecture", "hw_disk_bus", "hw_vif_model",
        "hw_firmware_type", "hw_qemu_guest_agent", "imagefactory_provider_image_id",
        "imagefactory_target_image_id", "imagefactory_base_image_id")} == {
        "os_distro": "debian", "os_version": "12", "architecture": "x86_64",
        "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_firmware_type": "bios",
        "hw_qemu_guest_agent": "yes", "imagefactory_provider_image_id": ctx.image_id,
        "imagefactory_target_image_id": target.id,
        "imagefactory_base_image_id": target.base_image_id}
    assert result.provider_account_identifier == admin.current_project_id == image.owner
    assert result.properties["checksum"] == image.checksum
    assert b"".join(admin.image.download_image(image, stream=True).iter_content(2**20)) == \
        qcow2_disk.read_bytes()
    # A record without the plugin's properties: the format is detected from the file again.
    assert any(line.startswith("$ qemu-img info") for line in ctx.lines)
    password = xml_credentials["openstack_credentials"]["password"]
    assert not any(password in line for line in ctx.lines)


def test_a_recorded_format_is_used_and_the_digest_computed_while_sending(
        push: Push, new_context: NewContext, target_image: Callable[..., ImageView],
        qcow2_target: tuple[Path, dict[str, Any]], openstack_cloud: dict[str, Any],
        xml_credentials: dict[str, Any], admin: Connection,
        digest: Callable[[Path, str], str]) -> None:
    body, properties = qcow2_target
    ctx = new_context()
    result = push(ctx, target_image(body, properties), {"auth_url": openstack_cloud["auth_url"]},
                  xml_credentials)
    assert admin.image.get_image(result.identifier_on_provider).hash_value == \
        digest(body, "sha512")
    assert f"Glance's sha512 of image {result.identifier_on_provider} matches the target " \
        "image" in ctx.lines
    # Format and size were recorded when the target image was made: no second look, and the
    # digest came from the bytes sent, not from a second read of the file.
    assert not any("qemu-img" in line or "computing the" in line for line in ctx.lines)


def test_a_digest_glance_did_not_store_fails_the_check(new_context: NewContext,
                                                        qcow2_disk: Path) -> None:
    ctx = new_context()
    stored = Image(id="0ddba11", size=qcow2_disk.stat().st_size, hash_algo="sha512",
                   hash_value="0" * 128)
    with pytest.raises(BuildError, match=r"Glance's sha512 of image 0ddba11 is 0{128}, but "
                                         r"the target image's is [0-9a-f]{128}"):
        _verify(ctx, stored, {"sha512": "f" * 128}, qcow2_disk)
    short = Image(id="5h0r7", size=1, hash_algo="sha512", hash_value="0" * 128)
    with pytest.raises(BuildError, match="Glance stored 1 bytes for image 5h0r7"):
        _verify(ctx, short, {"sha512": "0" * 128}, qcow2_disk)


def test_progress_is_monotone_and_reaches_100(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        raw_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any]) -> None:
    ctx = new_context()
    push(ctx, target_image(raw_disk), {"auth_url": openstack_cloud["auth_url"]},
         xml_credentials)
    percents = [percent for percent, _ in ctx.reports]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    # 256 MiB in 4 MiB chunks: the upload reports many steps, not just start and end.
    assert len(set(percents)) > 30


def test_push_to_a_direct_glance_endpoint_without_auth(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, template: Template, glance_noauth: dict[str, Any],
        digest: Callable[[Path, str], str]) -> None:
    ctx = new_context()
    provider = {"glance-host": glance_noauth["glance_host"],
                "glance-port": glance_noauth["glance_port"]}
    result = push(ctx, target_image(qcow2_disk), provider, {}, template)

    assert result.provider_account_identifier is None
    glance = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                               auth={"endpoint": glance_noauth["glance_url"]},
                               image_endpoint_override=glance_noauth["glance_url"])
    image = glance.image.get_image(result.identifier_on_provider)
    assert (image.status, image.disk_format) == ("active", "qcow2")
    assert image.checksum == digest(qcow2_disk, "md5")
    assert glance_record(glance, image.id)["os_distro"] == "debian"


def test_push_to_a_direct_glance_endpoint_with_a_keystone_token(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    ctx = new_context()
    provider = {"glance-host": openstack_cloud["glance_host"],
                "glance-port": openstack_cloud["glance_port"]}
    result = push(ctx, target_image(qcow2_disk), provider, xml_credentials)
    assert admin.image.get_image(result.identifier_on_provider).status == "active"
    assert any(openstack_cloud["glance_url"] in line for line in ctx.lines)


def test_push_to_a_clouds_yaml_cloud(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, openstack_cloud: dict[str, Any], admin: Connection,
        tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  local:\n    region_name: RegionOne\n    auth:\n"
        f"      auth_url: {openstack_cloud['auth_url']}\n"
        f"      username: {openstack_cloud['username']}\n"
        f"      project_name: {openstack_cloud['project_name']}\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n")
    ctx = new_context()
    # The password is not in clouds.yaml: the request's credentials complete the cloud.
    result = push(ctx, target_image(qcow2_disk), "local",
                  {"password": openstack_cloud["password"]},
                  config={"clouds_file": str(clouds), "clouds": ["local"]})
    assert admin.image.get_image(result.identifier_on_provider).status == "active"


def test_wrong_password_fails_clearly_and_leaves_nothing(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    ctx = new_context()
    xml_credentials["openstack_credentials"]["password"] = "not-the-password"
    with pytest.raises(BuildError) as failure:
        push(ctx, target_image(qcow2_disk), {"auth_url": openstack_cloud["auth_url"]},
             xml_credentials)
    message = str(failure.value)
    assert message.startswith(f"authenticating to Keystone {openstack_cloud['auth_url']} "
                              "as user 'admin' in project 'admin' failed")
    assert "HTTP 401" in message
    assert "not-the-password" not in message
    assert not any("not-the-password" in line for line in ctx.lines)
    assert glance_images(admin, ctx) == []


def test_cancellation_mid_upload_deletes_the_partial_image(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        raw_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    ctx = new_context()
    record = ctx.progress_sink

    def cancel_at_half(percent: int, activity: str | None) -> None:
        record(percent, activity)
        if percent >= 50:
            ctx.cancel_event.set()

    ctx.progress_sink = cancel_at_half
    with pytest.raises(BuildCancelled):
        push(ctx, target_image(raw_disk), {"auth_url": openstack_cloud["auth_url"]},
             xml_credentials)
    created = [line for line in ctx.lines if line.startswith("created Glance image")]
    assert len(created) == 1
    image_id = created[0].split()[3]
    assert f"deleted the incomplete Glance image {image_id}" in ctx.lines
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.image.get_image(image_id)
    assert glance_images(admin, ctx) == []
    # Cancelled between chunks, well before the end.
    assert max(percent for percent, _ in ctx.reports) < 75


def test_a_listed_keystone_whose_name_resolves_to_loopback_is_refused_when_connecting(
        push: Push, new_context: NewContext, target_image: Callable[[Path], ImageView],
        qcow2_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any]
        ) -> None:
    """The operator listed the endpoint by name but allows no loopback address: the name is
    resolved and refused when the connection is made, and nothing reaches Keystone."""
    by_name = openstack_cloud["auth_url"].replace("127.0.0.1", "localhost")
    ctx = new_context(outbound_allow=())
    credentials = {key: value for key, value in xml_credentials["openstack_credentials"].items()
                   if key != "auth_url"}
    with pytest.raises(BuildError) as refused:
        push(ctx, target_image(qcow2_disk), {"auth_url": by_name}, credentials,
             config={"endpoints": [by_name]})
    message = str(refused.value)
    assert message.startswith(f"authenticating to Keystone {by_name} as user 'admin'")
    assert "failed: refused by the outbound policy: localhost resolves to " in message
    assert "127.0.0.1 (a loopback address)" in message
