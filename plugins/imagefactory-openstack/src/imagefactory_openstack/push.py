"""Push a target image into Glance v2 and prove that what arrived is the target image.

Steps: authenticate (bad credentials fail before anything exists), create the image record
(exactly once, see `create`), stream the file into it, wait until Glance calls it active,
compare the digest Glance computed with the target image's (recorded when it was made, else
computed while sending). Whatever fails or is cancelled after the record exists deletes the
record again, so a failed push leaves nothing behind in the account.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keystoneauth1.exceptions
import openstack.connection
import openstack.exceptions
from imagefactory_core.plugin import BuildContext, BuildError, ImageView, PushResult, Template
from openstack.image.v2.image import Image

from . import account as accounts
from .body import UploadBody
from .convert import glance_disk_format, inspect
from .create import create_image
from .digest import BODY_DIGEST, file_digest
from .metadata import image_name, image_properties

_FAILED_STATES = ("killed", "deleted", "pending_delete", "deactivated")
_GIB = 1024**3
_DISCARD_ATTEMPTS = 6


def push(ctx: BuildContext, template: Template | None, target_image: ImageView,
         provider: str | dict[str, Any], credentials: dict[str, Any],
         parameters: Mapping[str, Any]) -> PushResult:
    """Upload `target_image`'s body to the Glance `provider` and `credentials` name."""
    account = accounts.account_from_request(
        provider, credentials, accounts.OperatorRules.of(parameters, ctx.outbound))
    ctx.add_secret((account.auth or {}).get("password", ""))
    path = target_image.body_path
    body = _describe_body(ctx, target_image)
    ctx.progress(0, f"Connecting to {account.describe()}")
    conn = accounts.connect(account, accounts.clouds_file(parameters), ctx.outbound)
    try:
        project_id = accounts.authenticate(conn, account)
        ctx.check_cancelled()
        image = create_image(ctx, conn, account.describe(), {
            "name": image_name(template, ctx.image_id, parameters),
            "disk_format": body.disk_format,
            "container_format": "bare",
            "min_disk": math.ceil(body.virtual_size / _GIB),
            **image_properties(template, target_image, ctx.image_id, parameters),
        })
        ctx.log(f"created Glance image {image.id} ({image.name}, {body.disk_format})")
        try:
            sent = _upload(ctx.scaled(2, 96), conn, image, path, (BODY_DIGEST,))
            image = _wait_until_active(ctx.scaled(96, 99), conn, image,
                                       parameters["active_timeout"])
            _verify(ctx, image, sent, path)
        except BaseException:
            _discard(ctx, conn, image)
            raise
    finally:
        accounts.close(conn)
    ctx.progress(100, f"Glance image {image.id} is active and its checksums match")
    return PushResult(
        identifier_on_provider=str(image.id),
        provider_account_identifier=project_id or image.owner,
        properties={"name": image.name, "disk_format": body.disk_format, "size": image.size,
                    "checksum": image.checksum, "os_hash_algo": image.hash_algo,
                    "os_hash_value": image.hash_value},
    )


@dataclass(frozen=True)
class _Body:
    """What a push must tell Glance about the body it sends."""

    disk_format: str
    virtual_size: int


def _describe_body(ctx: BuildContext, target_image: ImageView) -> _Body:
    """A target image this plugin made records its format (detected from the file) and virtual
    size; any other body is inspected with qemu-img. Either way the body is hashed while it is
    sent, and Glance's hash of what it stored is checked against that: hashing while sending
    costs nothing measurable (bench/push_openstack), where hashing when the target image is
    made cost five times its conversion (bench/target_convert)."""
    recorded = target_image.properties
    if "disk_format" in recorded and "virtual_size" in recorded:
        return _Body(str(recorded["disk_format"]), int(recorded["virtual_size"]))
    info = inspect(ctx, target_image.body_path)
    return _Body(glance_disk_format(info), int(info["virtual-size"]))


def _upload(ctx: BuildContext, conn: openstack.connection.Connection, image: Image,
            path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """Stream `path` into `image`; return the `algorithms`' digests of what was sent."""
    reported = -1

    def on_chunk(sent: int, total: int) -> None:
        nonlocal reported
        ctx.check_cancelled()
        percent = 100 * sent // total if total else 100
        if percent != reported:
            reported = percent
            ctx.progress(percent)

    body = UploadBody(path, on_chunk, algorithms)
    ctx.progress(0, f"Uploading {body.size / 2**20:.1f} MiB to Glance image {image.id}")
    with accounts.openstack_errors(f"uploading to Glance image {image.id}"):
        response = image.upload(conn.image, data=body, size=body.size)
        openstack.exceptions.raise_from_response(response)
    return body.digests


def _wait_until_active(ctx: BuildContext, conn: openstack.connection.Connection, image: Image,
                       timeout: float) -> Image:
    """Poll until Glance has stored the data (at once for plain uploads, later for imports)."""
    waited = 0.0
    previous = None
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
        ctx.progress(100 * waited / timeout,
                     None if image.status == previous else f"Glance image is {image.status}")
        previous = image.status
        ctx.cancel_event.wait(1.0)
        ctx.check_cancelled()
        waited += 1.0


def _verify(ctx: BuildContext, image: Image, known: dict[str, str], path: Path) -> None:
    """Compare the size and the strongest digest Glance reports with the target image's.

    That is the secure hash (``os_hash_value``) when Glance has one, else the MD5 ``checksum``.
    `known` holds the digests computed while sending; one Glance uses that is not among them
    is computed from the file.
    """
    if image.size != path.stat().st_size:
        raise BuildError(f"Glance stored {image.size} bytes for image {image.id}, "
                         f"{path.stat().st_size} were sent")
    if image.hash_algo and image.hash_value:
        algorithm, reported = str(image.hash_algo), str(image.hash_value)
    elif image.checksum:
        algorithm, reported = "md5", str(image.checksum)
    else:
        raise BuildError(f"Glance reported no checksum for image {image.id}")
    expected = known.get(algorithm)
    if expected is None:
        ctx.log(f"computing the {algorithm} Glance reports, which was not known yet")
        expected = file_digest(path, algorithm, ctx.check_cancelled)
    if expected != reported:
        raise BuildError(f"Glance's {algorithm} of image {image.id} is {reported}, but the "
                         f"target image's is {expected}")
    ctx.log(f"Glance's {algorithm} of image {image.id} matches the target image")


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
