"""Creating the Glance image record once, even when the connection breaks.

``POST /v2/images`` is not idempotent: a request whose connection broke (reset, timed out)
after Glance received it may have created the image all the same, and sending it again would
make a second one. So the create is never re-sent blindly (no transport retries for it):
after a create without an answer, the image is looked up by the name and the
``imagefactory_provider_image_id`` property the request gave it; one found is the one this push
made. Only when none exists is the create sent once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keystoneauth1.exceptions
import openstack.connection
import openstack.exceptions
from imagefactory_core.plugin import BuildContext, BuildError, OutboundRefused
from openstack.image.v2.image import Image

from . import account as accounts

MARKER = "imagefactory_provider_image_id"
"""The property that tells the images of one provider image apart (its value: the id)."""
_ATTEMPTS = 2


def create_image(ctx: BuildContext, conn: openstack.connection.Connection, where: str,
                 fields: Mapping[str, Any]) -> Image:
    """Create the Glance image `fields` describe (name, formats, properties with `MARKER`) in
    the account `where` describes, exactly once."""
    attempts = 0
    while True:
        attempts += 1
        with accounts.openstack_errors(f"creating the image in {where}"):
            try:
                response = conn.image.post("/images", json=dict(fields), connect_retries=0)
            except keystoneauth1.exceptions.ConnectionError as exc:
                if OutboundRefused.behind(exc) is not None:
                    raise
                ctx.log(f"creating the Glance image got no answer ({exc}); looking for an "
                        "image it may have made before sending it again")
                made = _made_before(conn, fields)
                if made is not None:
                    ctx.log(f"Glance had created image {made.id} before the connection broke:"
                            " using it")
                    return made
                if attempts == _ATTEMPTS:
                    raise BuildError(f"creating the image in {where} failed {attempts} times "
                                     "without an answer, and Glance has no image of this push "
                                     f"named {fields['name']!r}: {exc}") from exc
                continue
            openstack.exceptions.raise_from_response(response)
            return conn.image.get_image(response.json()["id"])


def _made_before(conn: openstack.connection.Connection,
                 fields: Mapping[str, Any]) -> Image | None:
    """The image an unanswered create made, if any: the name and the marker property match."""
    for image in conn.image.images(name=fields["name"]):
        if image.properties.get(MARKER) == fields[MARKER]:
            return image
    return None
