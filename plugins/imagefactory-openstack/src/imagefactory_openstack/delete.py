"""Delete a pushed image from Glance.

An image that is already gone counts as deleted (someone removed it by hand, or an earlier
attempt got through): the goal of the request is met, and the log says so. Anything Glance
refuses, such as a protected image or a foreign project's, is a `BuildError` with Glance's
reason, and the provider image ends DELETEFAILED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openstack.exceptions
from imagefactory_core.plugin import BuildContext, ImageView

from . import account as accounts


def delete(ctx: BuildContext, provider_image: ImageView, provider: str | dict[str, Any],
           credentials: dict[str, Any], parameters: Mapping[str, Any]) -> None:
    """Delete the Glance image `provider_image` names, as the account the request gives."""
    image_id = provider_image.identifier_on_provider
    if not image_id:
        ctx.log("the push never created a Glance image: nothing to delete")
        return
    account = accounts.account_from_request(
        provider, credentials, accounts.OperatorRules.of(parameters, ctx.outbound))
    ctx.add_secret((account.auth or {}).get("password", ""))
    ctx.progress(0, f"Deleting Glance image {image_id} from {account.describe()}")
    conn = accounts.connect(account, accounts.clouds_file(parameters), ctx.outbound)
    try:
        accounts.authenticate(conn, account)
        with accounts.openstack_errors(f"deleting Glance image {image_id}"):
            try:
                conn.image.delete_image(image_id, ignore_missing=False)
            except openstack.exceptions.NotFoundException:
                ctx.log(f"Glance image {image_id} does not exist any more: treated as deleted")
            else:
                ctx.log(f"deleted Glance image {image_id}")
    finally:
        accounts.close(conn)
    ctx.progress(100, f"Glance image {image_id} is gone")
