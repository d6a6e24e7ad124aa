"""Push a target image into Glance v2 and prove that what arrived is what was sent.

Steps: authenticate (bad credentials fail before anything exists), create the image record,
stream the file into it, wait until Glance calls it active, compare Glance's checksums with the
digests of the bytes sent. Whatever fails or is cancelled after the record exists deletes the
record again, so a failed push leaves nothing behind in the account.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import keystoneauth1.exceptions
import openstack.connection
import openstack.exceptions
from imagefactory_core.context import BuildContext
from imagefactory_core.errors import BuildError
from imagefactory_core.model import ImageRecord, PushResult
from imagefactory_core.tdl import Template
from openstack.image.v2.image import Image

from . import account as accounts
from .body import UploadBody
from .convert import glance_disk_format, inspect
from .metadata import image_name, image_properties

DEFAULT_ACTIVE_TIMEOUT = 1800.0
_FAILED_STATES = ("killed", "deleted", "pending_delete", "deactivated")
_GIB = 1024**3
_DISCARD_ATTEMPTS = 6


def push(ctx: BuildContext, template: Template | None, target_image: ImageRecord,
         provider: str | dict[str, Any], credentials: dict[str, Any],
         parameters: dict[str, Any]) -> PushResult:
    """Upload `target_image`'s body to the Glance `provider` and `credentials` name."""
    account = accounts.account_from_request(provider, credentials)
    ctx.add_secret((account.auth or {}).get("password", ""))
    path = target_image.body_path
    info = inspect(ctx, path)
    disk_format = glance_disk_format(info)
    ctx.progress(0, f"Connecting to {account.describe()}")
    conn = accounts.connect(account, accounts.clouds_file(ctx.config))
    try:
        project_id = accounts.authenticate(conn, account)
        ctx.check_cancelled()
        with accounts.openstack_errors(f"creating the image in {account.describe()}"):
            image = Image.new(
                name=image_name(template, ctx.image_id, parameters),
                disk_format=disk_format,
                container_format="bare",
                min_disk=math.ceil(int(info["virtual-size"]) / _GIB),
                **image_properties(template, target_image, ctx.image_id, parameters),
            ).create(conn.image)
        ctx.log(f"created Glance image {image.id} ({image.name}, {disk_format})")
        try:
            digests = _upload(ctx.scaled(2, 96), conn, image, path)
            image = _wait_until_active(ctx.scaled(96, 99), conn, image,
                                       float(ctx.config.get("active_timeout",
                                                            DEFAULT_ACTIVE_TIMEOUT)))
            _verify(image, digests, path)
        except BaseException:
            _discard(ctx, conn, image)
            raise
    finally:
        conn.close()
    ctx.progress(100, f"Glance image {image.id} is active and its checksums match")
    return PushResult(
        identifier_on_provider=str(image.id),
        provider_account_identifier=project_id or image.owner,
        properties={"name": image.name, "disk_format": disk_format, "size": image.size,
                    "checksum": image.checksum, "os_hash_algo": image.hash_algo,
                    "os_hash_value": image.hash_value},
    )


def _upload(ctx: BuildContext, conn: openstack.connection.Connection, image: Image,
            path: Path) -> dict[str, str]:
    """Stream `path` into `image`; return the digests of what was sent."""
    reported = -1

    def on_chunk(sent: int, total: int) -> None:
        nonlocal reported
        ctx.check_cancelled()
        percent = 100 * sent // total if total else 100
        if percent != reported:
            reported = percent
            ctx.progress(percent)

    body = UploadBody(path, on_chunk)
    ctx.progress(0, f"Uploading {body.size / 2**20:.1f} MiB to Glance image {image.id}")
    with accounts.openstack_errors(f"uploading to Glance image {image.id}"):
        response = image.upload(conn.image, data=body, size=body.size)
        openstack.exceptions.raise_from_response(response)
    return body.digests


def _wait_until_active(ctx: BuildContext, conn: openstack.connection.Connection, image: Image,
                       timeout: float) -> Image:
    """Poll until Glance has stored the data (at once for plain uploads, later for imports)."""
    waited = 0.0
    while True:
        with accounts.openstack_errors(f"reading Glance image {image.id}"):
            image = conn.image.get_image(image.id)
        if image.status == "active":
            return image
        if image.status in _FAILED_STATES:
            raise BuildError(f"Glance image {image.id} went {image.status} after the upload")
        if waited >= timeout:
            raise BuildError(f"Glance image {image.id} is still {image.status} after "
                             f"{timeout:.0f} s")
        ctx.progress(min(99.0, 100 * waited / timeout), f"Glance image is {image.status}")
        ctx.cancel_event.wait(1.0)
        ctx.check_cancelled()
        waited += 1.0


def _verify(image: Image, digests: dict[str, str], path: Path) -> None:
    """Compare the size, MD5 checksum and secure hash Glance reports with what was sent.

    Glance may be configured for a secure hash other than the SHA-512 computed while sending;
    the file is then read once more for it.
    """
    if image.size != path.stat().st_size:
        raise BuildError(f"Glance stored {image.size} bytes for image {image.id}, "
                         f"{path.stat().st_size} were sent")
    reported = {}
    if image.checksum:
        reported["md5"] = image.checksum
    if image.hash_algo and image.hash_value:
        reported[image.hash_algo] = image.hash_value
    if not reported:
        raise BuildError(f"Glance reported no checksum for image {image.id}")
    for algorithm, value in reported.items():
        if algorithm not in digests:
            with path.open("rb") as stream:
                digests[algorithm] = hashlib.file_digest(stream, algorithm).hexdigest()
        if digests[algorithm] != value:
            raise BuildError(f"Glance's {algorithm} of image {image.id} is {value}, but the "
                             f"data sent has {digests[algorithm]}")


def _discard(ctx: BuildContext, conn: openstack.connection.Connection, image: Image) -> None:
    """Delete the half-made `image`, even after cancellation.

    Glance may still be failing the aborted upload when the delete arrives and answer 409 or
    5xx for a moment, so those are retried for a few seconds. A failure to delete is logged, not
    raised, so the original error is the one the user sees.
    """
    delay = 0.5
    for attempt in range(1, _DISCARD_ATTEMPTS + 1):
        try:
            conn.image.delete_image(image.id, ignore_missing=True)
        except (openstack.exceptions.SDKException,
                keystoneauth1.exceptions.ClientException) as exc:
            if attempt == _DISCARD_ATTEMPTS or not _transient(exc):
                ctx.log(f"could not delete the incomplete Glance image {image.id}: {exc}")
                return
            time.sleep(delay)
            delay = min(2 * delay, 4.0)
        else:
            ctx.log(f"deleted the incomplete Glance image {image.id}")
            return


def _transient(exc: Exception) -> bool:
    """Whether a failed call may work when repeated: no answer, a conflict or a server error."""
    if isinstance(exc, keystoneauth1.exceptions.ConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    return status is not None and (status == 409 or status >= 500)
