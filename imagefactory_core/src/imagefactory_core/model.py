"""The image model shared by the core and plugins.

Three kinds of image form a chain: a `BaseImage` (a bootable disk built from a TDL by an OS
plugin), a `TargetImage` (that disk adapted and converted for one cloud by a cloud plugin) and a
`ProviderImage` (a target image uploaded into a cloud account). Plugins receive read-only
`ImageRecord` snapshots; only the build engine changes records.
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
    """A target name a cloud plugin serves (`ec2`), plus accepted aliases (`openstack`)."""

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""


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
