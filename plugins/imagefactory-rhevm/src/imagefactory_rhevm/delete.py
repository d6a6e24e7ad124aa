"""Delete a pushed template, and its disk, from the engine.

The engine removes a template's disks with it; the plugin then checks that each disk the
template had is gone, and removes one that is not. A template that is already gone counts as
deleted (someone removed it by hand, or an earlier attempt got through), and the log says so.
What the engine refuses (a template VMs are still based on …) is a `BuildError` with the
engine's reason, and the provider image ends DELETEFAILED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ovirtsdk4
from imagefactory_core.plugin import BuildContext, ImageView

from .engine import connected, engine_errors, gone, wait_until
from .provider import account_from_request


def delete(ctx: BuildContext, provider_image: ImageView, provider: str | dict[str, Any],
           credentials: dict[str, Any], parameters: Mapping[str, Any]) -> None:
    """Remove the template `provider_image` names, as the account the request gives."""
    template_id = provider_image.identifier_on_provider
    if not template_id:
        ctx.log("the push never created a template: nothing to delete")
        return
    account = account_from_request(provider, credentials, parameters, ctx.outbound)
    ctx.add_secret(account.password)
    ctx.progress(0, f"Deleting template {template_id} from {account.describe()}")
    with connected(ctx, account, ctx.outbound) as system:
        service = system.templates_service().template_service(template_id)
        with engine_errors(f"reading template {template_id}"):
            try:
                attachments = service.disk_attachments_service().list()
            except ovirtsdk4.NotFoundError:
                attachments = None
        if attachments is None:
            ctx.log(f"template {template_id} does not exist any more: treated as deleted")
            ctx.progress(100, f"Template {template_id} is gone")
            return
        disk_ids = [str(a.disk.id if a.disk else a.id) for a in attachments]
        with engine_errors(f"removing template {template_id}"):
            service.remove()
        wait_until(ctx.scaled(0, 80), f"template {template_id} to be removed",
                   lambda: gone(service.get), account.timeout)
        ctx.log(f"removed template {template_id}")
        disks = system.disks_service()
        for disk_id in disk_ids:
            disk = disks.disk_service(disk_id)
            if not gone(disk.get):
                ctx.log(f"the engine kept disk {disk_id} of the template: removing it")
                with engine_errors(f"removing disk {disk_id}"):
                    disk.remove()
                wait_until(ctx.scaled(80, 99), f"disk {disk_id} to be removed",
                           lambda disk=disk: gone(disk.get), account.timeout)
            ctx.log(f"disk {disk_id} is gone")
    ctx.progress(100, f"Template {template_id} and its disk are gone")
