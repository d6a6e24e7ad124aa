"""The image model shared by the core and plugins.

Three kinds of image form a chain: a `BaseImage` (a bootable disk built from a TDL by an OS
plugin), a `TargetImage` (that disk adapted and converted for one cloud by a cloud plugin) and a
`ProviderImage` (a target image uploaded into a cloud account). The store hands out read-only
`ImageRecord` snapshots; plugins receive the smaller `ImageView`; only the build engine changes
records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(enum.StrEnum):
    """Lifecycle states, exactly as they appear on the wire."""

    NEW = "NEW"
    PENDING = "PENDING"
    BUILDING = "BUILDING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    DELETEFAILED = "DELETEFAILED"

    @property
    def active(self) -> bool:
        """True while work is queued or running for the image."""
        return self in (Status.NEW, Status.PENDING, Status.BUILDING)


class ImageKind(enum.StrEnum):
    """The `_type` of an image; also the value stored in the database."""

    BASE = "BaseImage"
    TARGET = "TargetImage"
    PROVIDER = "ProviderImage"

    @property
    def collection(self) -> str:
        return {"BaseImage": "base_images", "TargetImage": "target_images",
                "ProviderImage": "provider_images"}[self.value]

    @property
    def singular(self) -> str:
        return self.collection[:-1]


@dataclass(frozen=True)
class StatusDetail:
    activity: str
    error: str | None = None


@dataclass(frozen=True)
class ImageRef:
    """Which image, and nothing more: what a listing shows of one."""

    id: str
    kind: ImageKind


@dataclass(frozen=True)
class ImageRecord:
    """A read-only snapshot of one image as stored.

    `template` is the TDL text with secrets redacted; the build engine hands plugins the parsed,
    unredacted `Template` separately. `body_path` is where the image's disk lives once COMPLETE.
    """

    id: str
    kind: ImageKind
    status: Status
    percent_complete: int
    status_detail: StatusDetail
    template: str | None
    parameters: dict[str, Any]
    icicle: str | None
    body_path: Path
    base_image_id: str | None = None
    target_image_id: str | None = None
    target: str | None = None
    provider: str | None = None
    identifier_on_provider: str | None = None
    provider_account_identifier: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def view(self) -> ImageView:
        """What a plugin may see of this image."""
        return ImageView(
            id=self.id, kind=self.kind, body_path=self.body_path, icicle=self.icicle,
            properties=dict(self.properties), template=self.template,
            base_image_id=self.base_image_id, target_image_id=self.target_image_id,
            target=self.target, provider=self.provider,
            identifier_on_provider=self.identifier_on_provider,
            provider_account_identifier=self.provider_account_identifier)


@dataclass(frozen=True)
class ImageView:
    """An image as a plugin sees it: a base image a target is built from, the target image a
    push uploads, the provider image a delete removes.

    `body_path` is the image's disk (read it, never change it); `properties` what the plugins
    that made it recorded (``disk_format`` …); `template` the TDL with secrets masked; for a
    provider image, `identifier_on_provider` is what the push returned.
    """

    id: str
    kind: ImageKind
    body_path: Path
    icicle: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    base_image_id: str | None = None
    target_image_id: str | None = None
    target: str | None = None
    provider: str | None = None
    identifier_on_provider: str | None = None
    provider_account_identifier: str | None = None


@dataclass(frozen=True)
class OSTarget:
    """One family of operating systems an OS plugin can build.

    `versions` is a regular expression matched (case-insensitively, whole string) against the
    TDL's `<os><version>`; `arches` lists the `<os><arch>` values supported on this host.
    """

    name: str
    versions: str
    arches: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class CloudTarget:
    """A target name a cloud plugin serves (`ec2`), plus accepted aliases (`openstack`).

    `from_targets` names the targets whose target images this target is made from (an OVA of
    a ``vsphere`` target image): such a target is requested with ``target_image_id`` and never
    from a base image. Empty (the usual case): it is made from base images.
    """

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    from_targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetContent:
    """What a cloud plugin asks the OS plugin to add to the disk for its target.

    Applied after the base image's own TDL customisation, in this order: packages, files,
    commands. `files` maps absolute paths in the image to their content.
    """

    packages: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    commands: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.packages or self.files or self.commands)


@dataclass(frozen=True)
class BuildResult:
    """What an OS or cloud plugin returns after writing the image body.

    `icicle` is the ICICLE XML manifest (base images); `properties` are stored on the image and
    shown in its `parameters`-free `properties` field (for example the disk format).
    """

    icicle: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushResult:
    """What a cloud plugin returns after pushing an image into a provider account."""

    identifier_on_provider: str
    provider_account_identifier: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the engine records it: the final status and what the work made.

    `icicle`, `properties` and the provider identifiers are None when the job did not change
    them (a failure keeps what the image had).
    """

    status: Status
    activity: str
    error: str | None = None
    icicle: str | None = None
    properties: dict[str, Any] | None = None
    identifier_on_provider: str | None = None
    provider_account_identifier: str | None = None
