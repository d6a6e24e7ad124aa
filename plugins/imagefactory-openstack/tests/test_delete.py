"""Deleting pushed images from a real Glance."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagefactory_openstack as plugin
import openstack.connection
import openstack.exceptions
import pytest
from imagefactory_core.plugin import BuildError, ImageView
from imagefactory_core.testing import RecordingBuildContext

# openstacksdk warns about its own internals (InfluxDB support, renamed methods) on every call.
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")]

NewContext = Callable[..., RecordingBuildContext]
Connection = openstack.connection.Connection


@pytest.fixture
def pushed(new_context: NewContext, target_image: Callable[[Path], ImageView],
           qcow2_disk: Path, openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
           parameters: Callable[..., dict[str, Any]]) -> str:
    """The Glance id of a freshly pushed image."""
    result = plugin.imagefactory_push_image(
        ctx=new_context(), template=None, target_image=target_image(qcow2_disk),
        target="openstack-kvm", provider={"auth_url": openstack_cloud["auth_url"]},
        credentials=xml_credentials, parameters=parameters())
    return result.identifier_on_provider


Delete = Callable[..., None]


@pytest.fixture
def delete(parameters: Callable[..., dict[str, Any]]) -> Delete:
    def run(ctx: RecordingBuildContext, record: ImageView, openstack_cloud: dict[str, Any],
            credentials: dict[str, Any]) -> None:
        plugin.imagefactory_delete_from_provider(
            ctx=ctx, provider_image=record, target="openstack-kvm",
            provider={"auth_url": openstack_cloud["auth_url"]}, credentials=credentials,
            parameters=parameters())
    return run


def test_delete_removes_the_image(
        delete: Delete, pushed: str, new_context: NewContext,
        provider_image: Callable[[str], ImageView],
        openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    assert admin.image.get_image(pushed).status == "active"
    ctx = new_context()
    delete(ctx, provider_image(pushed), openstack_cloud, xml_credentials)
    assert f"deleted Glance image {pushed}" in ctx.lines
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.image.get_image(pushed)


def test_an_image_already_gone_counts_as_deleted(
        delete: Delete, pushed: str, new_context: NewContext,
        provider_image: Callable[[str], ImageView],
        openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    admin.image.delete_image(pushed, ignore_missing=False)
    ctx = new_context()
    delete(ctx, provider_image(pushed), openstack_cloud, xml_credentials)
    assert f"Glance image {pushed} does not exist any more: treated as deleted" in ctx.lines
    assert ctx.reports[-1][0] == 100


def test_a_refused_delete_raises_with_glances_reason(
        delete: Delete, pushed: str, new_context: NewContext,
        provider_image: Callable[[str], ImageView],
        openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        admin: Connection) -> None:
    admin.image.update_image(pushed, is_protected=True)
    try:
        with pytest.raises(BuildError, match=rf"deleting Glance image {pushed} failed: .*"
                                             r"protected"):
            delete(new_context(), provider_image(pushed), openstack_cloud, xml_credentials)
        assert admin.image.get_image(pushed).status == "active"
    finally:
        admin.image.update_image(pushed, is_protected=False)
        admin.image.delete_image(pushed)


def test_a_push_that_never_created_an_image_has_nothing_to_delete(
        delete: Delete, new_context: NewContext, provider_image: Callable[[str | None], ImageView],
        openstack_cloud: dict[str, Any]) -> None:
    ctx = new_context()
    delete(ctx, provider_image(None), openstack_cloud, {})
    assert "the push never created a Glance image: nothing to delete" in ctx.lines
