"""What every way of deleting an image checks and records the same, in the API process or in
the build engine: children still being built refuse it; a provider image never pushed needs
no cloud, and one deleted without credentials is forgotten, saying where it stays."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import Conflict, InvalidRequest
from ..model import ImageKind, ImageRecord, Status
from ..store import ImageStore

log = logging.getLogger(__name__)


def busy_children(store: ImageStore, record: ImageRecord) -> None:
    """Refuse (409) to delete a base or target image while images are being built from it:
    a base's target images, a target's provider images and the target images made from it."""
    link = "base_image_id" if record.kind is ImageKind.BASE else "target_image_id"
    kinds = ([ImageKind.TARGET] if record.kind is ImageKind.BASE
             else [ImageKind.PROVIDER, ImageKind.TARGET])
    for child_kind in kinds:
        busy = [c.id for c in store.list(child_kind, **{link: record.id})
                if c.status.active or c.status is Status.DELETING]
        if busy:
            raise Conflict(f"{child_kind.collection} {', '.join(busy)} are still being "
                           f"built from {record.id}; delete them first")


def record_forgotten(store: ImageStore, record: ImageRecord,
                     set_status: Callable[..., Any]) -> None:
    """Record a provider image DELETED without touching its cloud, saying where it stays: in
    the service log, the image's log, then its status (`set_status(**values)`, which tells
    the callbacks)."""
    where = f"{record.target} as {record.identifier_on_provider}"
    log.info("provider image %s forgotten by a DELETE without credentials; it stays on %s",
             record.id, where)
    store.append_log(record.id, f"Forgotten without credentials: the image stays on {where}",
                     closing=True)
    store.append_log(record.id, f"== {Status.DELETED.value}", closing=True)
    set_status(status=Status.DELETED,
               activity=f"Forgotten: still on {where} (a DELETE without credentials leaves "
                        "the cloud image in place)")


def settled_without_cloud(store: ImageStore, record: ImageRecord, credentials: Any,
                          forget: bool, set_status: Callable[..., Any]) -> bool:
    """Settle a provider image's DELETE that calls no cloud, and say whether it did: an image
    never pushed is DELETED; without credentials, one on its cloud is forgotten (`forget`: the
    DELETE named no cloud) or refused (`InvalidRequest`). False: the cloud delete must run."""
    if not record.identifier_on_provider:
        set_status(status=Status.DELETED, activity="Deleted (it was never on the provider)")
        return True
    if credentials:
        return False
    if forget:
        record_forgotten(store, record, set_status)
        return True
    raise InvalidRequest(
        f"provider image {record.id} is on {record.target} as "
        f"{record.identifier_on_provider}: give 'credentials' (and 'provider', 'target') to "
        "delete it there, or none of them to forget the image and leave it on the cloud")
