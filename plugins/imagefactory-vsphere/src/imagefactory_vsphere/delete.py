"""Delete a pushed template from its vCenter.

The template is found by its instance UUID (``SearchIndex.FindByUuid``). One that is already
gone counts as deleted (someone removed it by hand, or an earlier attempt got through): the
goal of the request is met, and the log says so. Anything the vCenter refuses (permissions, a
locked VM) is a `BuildError` with its reason, and the provider image ends DELETEFAILED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagefactory_core.plugin import BuildContext, ImageView

from .push import account_of, destroy
from .session import api_errors, logged_in


def delete(ctx: BuildContext, provider_image: ImageView, provider: str | dict[str, Any],
           credentials: dict[str, Any], parameters: Mapping[str, Any]) -> None:
    uuid = provider_image.identifier_on_provider
    if not uuid:
        ctx.log("the push never created a template: nothing to delete")
        return
    account = account_of(ctx, provider, credentials, parameters)
    ctx.progress(0, f"Deleting the template with instance UUID {uuid} from "
                    f"{account.describe()}")
    with (logged_in(account, ctx.outbound) as session,
          api_errors(f"deleting the template {uuid}", account)):
        vm = session.content.searchIndex.FindByUuid(None, uuid, True, True)
        if vm is None:
            ctx.log(f"no VM has the instance UUID {uuid} any more: treated as deleted")
        else:
            name = vm.name
            destroy(ctx, session, vm)
            ctx.log(f"destroyed the template {name} ({vm._moId})")
    ctx.progress(100, f"The template {uuid} is gone")
