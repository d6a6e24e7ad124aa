"""Pushes and deletes against the fake engine and the real imageio daemon: the template and its
disk are checked with the SDK's own connection, the bytes on the storage domain with the
target image; failures leave nothing behind."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagefactory_rhevm as plugin
import ovirtsdk4
import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError, ImageKind, ImageView
from imagefactory_core.testing import RecordingBuildContext
from ovirtsdk4 import types

from tests.services.ovirt_support.engine import Engine
from tests.services.ovirt_support.relay import cutting_relay

pytestmark = pytest.mark.slow  # a real imageio daemon

NewContext = Callable[..., RecordingBuildContext]
Push = Callable[..., Any]


def leftovers(engine: Engine, ctx: RecordingBuildContext) -> list[str]:
    """Whatever the push of `ctx` left on the engine besides its template: disks, VMs, image
    transfers still holding a ticket."""
    inventory = engine.inventory
    with inventory.lock:
        templates = {t.id for t in inventory.templates.values() if ctx.image_id in t.name}
        found = [f"disk {d.name}" for d in inventory.disks.values()
                 if ctx.image_id in d.name and d.template not in templates]
        found += [f"vm {v.name}" for v in inventory.vms.values() if ctx.image_id in v.name]
        found += [f"transfer {t.id}" for t in inventory.transfers.values()
                  if t.ticket and t.disk not in inventory.disks]
    return found


def template_disk_file(engine: Engine, template_id: str) -> Path:
    template = engine.inventory.template(template_id)
    assert len(template.disks) == 1
    return engine.inventory.disk(template.disks[0]).path


def delete(ctx: RecordingBuildContext, template_id: str | None, provider: Any,
           credentials: dict[str, Any], parameters: dict[str, Any]) -> None:
    plugin.imagefactory_delete_from_provider(
        ctx=ctx, provider_image=ImageView(id=ctx.image_id, kind=ImageKind.PROVIDER,
                                          body_path=Path("/nonexistent"), target="rhevm",
                                          identifier_on_provider=template_id),
        target="rhevm", provider=provider, credentials=credentials, parameters=parameters)


def test_push_makes_a_template_of_the_qcow2_and_delete_removes_it_with_its_disk(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine,
        admin: ovirtsdk4.Connection, parameters: Callable[..., dict[str, Any]],
        compare: Callable[[Path, Path], bool]) -> None:
    ctx = new_context()
    result = push(ctx, qcow2_target, provider, credentials)

    system = admin.system_service()
    template = system.templates_service().template_service(result.identifier_on_provider).get()
    assert template.status == types.TemplateStatus.OK
    assert template.name == f"jeos-{ctx.image_id}"
    assert f"target image {qcow2_target.id}" in template.description
    cluster = system.clusters_service().cluster_service(template.cluster.id).get()
    assert cluster.name == "Default"
    attachments = (system.templates_service().template_service(template.id)
                   .disk_attachments_service().list())
    assert [a.disk.id for a in attachments] == result.properties["disk_ids"]
    disk = system.disks_service().disk_service(attachments[0].disk.id).get()
    assert (disk.format, disk.status) == (types.DiskFormat.COW, types.DiskStatus.OK)
    assert disk.provisioned_size == qcow2_target.properties["virtual_size"]
    assert result.provider_account_identifier == "admin@internal"
    assert result.properties | {"disk_ids": []} == {
        "name": template.name, "cluster": "Default", "storage_domain": "data",
        "disk_format": "qcow2", "disk_ids": []}

    # What imageio wrote, copied into the template's disk, is the target image byte for byte.
    on_storage = template_disk_file(ovirt_engine, template.id)
    assert on_storage.read_bytes() == qcow2_target.body_path.read_bytes()
    assert compare(on_storage, qcow2_target.body_path)
    assert leftovers(ovirt_engine, ctx) == []
    percents = [percent for percent, _ in ctx.reports]
    assert percents == sorted(percents) and percents[-1] == 100
    size_mib = qcow2_target.body_path.stat().st_size / 2**20
    assert (max(percents), f"Uploaded {size_mib:.0f} of {size_mib:.0f} MiB") in ctx.reports or \
        any(activity == f"Uploaded {size_mib:.0f} of {size_mib:.0f} MiB"
            for _, activity in ctx.reports)
    assert not any(ovirt_engine.password in line for line in ctx.lines)

    gone = new_context()
    delete(gone, result.identifier_on_provider, provider, credentials, parameters())
    with pytest.raises(ovirtsdk4.NotFoundError):
        system.templates_service().template_service(template.id).get()
    with pytest.raises(ovirtsdk4.NotFoundError):
        system.disks_service().disk_service(disk.id).get()
    assert not on_storage.exists()
    assert f"disk {disk.id} is gone" in gone.lines
    # A second delete finds nothing, which is what it wanted.
    again = new_context()
    delete(again, result.identifier_on_provider, provider, credentials, parameters())
    assert f"template {template.id} does not exist any more: treated as deleted" in again.lines


def test_a_raw_disk_to_a_named_cluster_and_storage_domain(
        push: Push, new_context: NewContext, raw_target: ImageView, provider: dict[str, Any],
        credentials: dict[str, Any], ovirt_engine: Engine, admin: ovirtsdk4.Connection) -> None:
    ctx = new_context()
    result = push(ctx, raw_target, json.dumps({**provider, "cluster": "Default",
                                               "storage-domain": "bigdata"}),
                  credentials, rhevm_disk_interface="virtio", rhevm_os_type="debian_9",
                  rhevm_template_name=f"raw-{ctx.image_id}")
    assert result.properties["storage_domain"] == "bigdata"
    template = admin.system_service().templates_service().template_service(
        result.identifier_on_provider).get()
    assert (template.name, template.os.type) == (f"raw-{ctx.image_id}", "debian_9")
    disk_id = result.properties["disk_ids"][0]
    disk = ovirt_engine.inventory.disk(disk_id)
    assert (disk.format, disk.interface, disk.bootable) == ("raw", "virtio", True)
    assert ovirt_engine.inventory.storage_domains[disk.storage_domain].name == "bigdata"
    assert disk.path.read_bytes() == raw_target.body_path.read_bytes()


def test_any_cluster_follows_the_storage_domain(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any]) -> None:
    result = push(new_context(), qcow2_target, {**provider, "storage-domain": "remote-data",
                                                 "cluster": "_any_"}, credentials)
    assert (result.properties["cluster"], result.properties["storage_domain"]) == (
        "Remote", "remote-data")


def test_an_interrupted_transfer_resumes(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine) -> None:
    """The engine's transfer URL leads through a relay that cuts the upload once, mid-way."""
    size = qcow2_target.body_path.stat().st_size
    ctx = new_context()
    with cutting_relay(ovirt_engine.imageio.remote_url, cut_after=size // 2) as relay:
        ovirt_engine.inventory.transfer_base = relay.url
        try:
            result = push(ctx, qcow2_target, provider, credentials)
        finally:
            ovirt_engine.inventory.transfer_base = None
    assert relay.cuts == 1
    assert any("failed (ConnectionError" in line and "sending again" in line
               for line in ctx.lines)
    assert size < relay.forwarded < size + size // 2 + 2**20
    on_storage = template_disk_file(ovirt_engine, result.identifier_on_provider)
    assert on_storage.read_bytes() == qcow2_target.body_path.read_bytes()


@pytest.mark.parametrize(("fields", "message"), [
    ({"cluster": "Nowhere"},
     "cluster 'Nowhere' does not exist on the engine; its clusters are: Default, Remote"),
    ({"storage-domain": "nope"},
     "storage domain 'nope' does not exist on the engine; its data domains are: bigdata, data, "
     "loose, parked, remote-data"),
    ({"storage-domain": "export"}, "storage domain 'export' is an export domain: templates go "
                                   "to a data domain"),
    ({"cluster": "Default", "storage-domain": "remote-data"},
     "storage domain 'remote-data' is not attached to the data center of cluster 'Default'"),
    ({"storage-domain": "parked"},
     "storage domain 'parked' is not active in the data center of cluster 'Remote'"),
    ({"storage-domain": "loose"}, "no cluster is in the data center of storage domain 'loose'"),
])
def test_where_the_template_cannot_go_fails_clearly_and_creates_nothing(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine,
        fields: dict[str, str], message: str) -> None:
    disks_before = set(ovirt_engine.inventory.disks)
    with pytest.raises(BuildError, match=message):
        push(new_context(), qcow2_target, {**provider, **fields}, credentials)
    assert set(ovirt_engine.inventory.disks) == disks_before


def test_a_wrong_password_fails_at_login_and_creates_nothing(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], ovirt_engine: Engine) -> None:
    ctx = new_context()
    disks_before = set(ovirt_engine.inventory.disks)
    with pytest.raises(BuildError) as failure:
        push(ctx, qcow2_target, provider, {"rhevm_credentials": {
            "username": "admin@internal", "password": "not-the-password"}})
    message = str(failure.value)
    assert message == (f"logging in to oVirt engine {ovirt_engine.api_url} as 'admin@internal' "
                       "failed: the engine refused the credentials: Error during SSO "
                       "authentication access_denied : Cannot authenticate user "
                       "'admin@internal': The username or password is incorrect.")
    assert not any("not-the-password" in line for line in ctx.lines)
    assert set(ovirt_engine.inventory.disks) == disks_before
    assert ("POST", "/ovirt-engine/api/disks") not in ovirt_engine.server.requests[-3:]


def test_the_engine_certificate_is_verified(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], tmp_path: Path) -> None:
    unpinned = {"api-url": provider["api-url"]}
    with pytest.raises(BuildError, match=r"logging in to .* failed: TLS verification of "
                                         r"https://127.0.0.1:\d+/ovirt-engine/sso/oauth/token "
                                         r"failed: .*CERTIFICATE_VERIFY_FAILED"):
        push(new_context(), qcow2_target, unpinned, credentials)
    not_a_ca = tmp_path / "not-a-ca.pem"
    not_a_ca.write_text("hello\n")
    for path in (not_a_ca, tmp_path / "missing.pem"):
        with pytest.raises(BuildError, match=f"CA file {path} is not a readable PEM file of CA "
                                             "certificates"):
            push(new_context(), qcow2_target, {**unpinned, "ca-file": str(path)}, credentials)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_off_where_the_operator_allows_it(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any]) -> None:
    ctx = new_context()
    result = push(ctx, qcow2_target, {"api-url": provider["api-url"], "insecure": True},
                  credentials, config={"allow_insecure": True})
    assert result.identifier_on_provider
    assert "TLS certificates of the engine and imageio are not verified (provider insecure, " \
           "which the operator allows)" in ctx.lines


def test_an_engine_on_an_address_the_operator_did_not_allow(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any]) -> None:
    """Listed by name, the engine resolves to loopback, which the policy refuses."""
    by_name = provider["api-url"].replace("127.0.0.1", "localhost")
    with pytest.raises(BuildError, match=r"logging in to oVirt engine https://localhost:\d+/"
                                         r".* failed: POST https://localhost:\d+/ovirt-engine/"
                                         r"sso/oauth/token: refused by the outbound policy: "
                                         r"localhost resolves to .*loopback"):
        push(new_context(outbound_allow=()), qcow2_target, {**provider, "api-url": by_name},
             credentials, config={"endpoints": [by_name]})


def test_an_upload_the_engine_rejects_fails_and_the_disk_is_gone(
        push: Push, new_context: NewContext, raw_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine) -> None:
    """A body recorded as qcow2 that is not: the engine's check at finalize refuses it."""
    mislabelled = ImageView(id="mislabelled", kind=ImageKind.TARGET,
                            body_path=raw_target.body_path,
                            properties={**raw_target.properties, "disk_format": "qcow2"})
    ctx = new_context()
    with pytest.raises(BuildError, match=r"the engine rejected the upload: image transfer \S+ "
                                         "went finished_failure"):
        push(ctx, mislabelled, provider, credentials)
    assert leftovers(ovirt_engine, ctx) == []


def test_a_name_in_use_fails_and_the_temporary_vm_and_disk_are_removed(
        push: Push, new_context: NewContext, qcow2_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine) -> None:
    first = new_context()
    push(first, qcow2_target, provider, credentials, rhevm_template_name=f"t-{first.image_id}")
    second = new_context()
    with pytest.raises(BuildError, match="creating template t-.* failed: Cannot add Template. "
                                         r"The Template name is already in use.* \(HTTP 409\)"):
        push(second, qcow2_target, provider, credentials,
             rhevm_template_name=f"t-{first.image_id}")
    vm_id = next(line.split()[2] for line in second.lines if line.startswith("created VM "))
    assert f"removed the temporary VM {vm_id}" in second.lines
    assert leftovers(ovirt_engine, second) == []


def test_cancellation_mid_upload_removes_the_disk(
        push: Push, new_context: NewContext, raw_target: ImageView,
        provider: dict[str, Any], credentials: dict[str, Any], ovirt_engine: Engine) -> None:
    ctx = new_context()
    record = ctx.progress_sink

    def cancel_mid_upload(percent: int, activity: str | None) -> None:
        record(percent, activity)
        if percent >= 10:
            ctx.cancel_event.set()

    ctx.progress_sink = cancel_mid_upload
    with pytest.raises(BuildCancelled):
        push(ctx, raw_target, provider, credentials)
    assert any(line.startswith("cancelled image transfer ") for line in ctx.lines)
    assert leftovers(ovirt_engine, ctx) == []
    assert max(percent for percent, _ in ctx.reports) < 60
