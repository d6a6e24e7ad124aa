"""The image create is never re-sent blindly: a relay in front of the real Glance resets the
connection of the first ``POST /v2/images``, after Glance got it or before."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagefactory_openstack as plugin
import openstack.connection
import pytest
from imagefactory_core.plugin import ImageView
from imagefactory_core.testing import RecordingBuildContext

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")]

CREATE = ("POST", "/v2/images")


def glance_images(conn: openstack.connection.Connection, image_id: str) -> list[Any]:
    """Every Glance image one provider image may have created, in any state."""
    return [image for image in conn.image.images()
            if image.properties.get("imagefactory_provider_image_id") == image_id]


@pytest.mark.parametrize("glance_got_it", [True, False], ids=["after-glance", "before-glance"])
def test_a_reset_create_leaves_exactly_one_image(
        glance_got_it: bool, resetting_relay: Callable[..., Any],
        new_context: Callable[..., RecordingBuildContext],
        target_image: Callable[[Path], ImageView], qcow2_disk: Path,
        openstack_cloud: dict[str, Any], xml_credentials: dict[str, Any],
        parameters: Callable[..., dict[str, Any]], operator_endpoints: list[str],
        admin: openstack.connection.Connection) -> None:
    relay = resetting_relay((openstack_cloud["glance_host"], openstack_cloud["glance_port"]),
                            *CREATE, forward=glance_got_it)
    ctx = new_context()
    result = plugin.imagefactory_push_image(
        ctx=ctx, template=None, target_image=target_image(qcow2_disk), target="openstack-kvm",
        provider={"glance-host": "127.0.0.1", "glance-port": relay.server_address[1]},
        credentials=xml_credentials,
        parameters=parameters({"endpoints": [*operator_endpoints, relay.url]}))

    made = glance_images(admin, ctx.image_id)
    assert [image.id for image in made] == [result.identifier_on_provider]
    assert made[0].status == "active"
    creates = relay.seen.count(CREATE)
    assert any(line.startswith("creating the Glance image got no answer") for line in ctx.lines)
    if glance_got_it:  # found by its name and marker, not created again
        assert creates == 1
        assert f"Glance had created image {made[0].id} before the connection broke: using " \
            "it" in ctx.lines
    else:  # nothing there: created once more
        assert creates == 2
        assert not any(line.startswith("Glance had created image") for line in ctx.lines)
