"""TDL templates: safe parsing, RELAX NG validation and Oz's semantic rules.

INTERFACE STUB — implementation in progress. The dataclasses and function signatures below are
the contract other modules code against.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    signed: bool = False
    persisted: bool = True
    sslverify: bool = False


@dataclass(frozen=True)
class Package:
    name: str
    repository: str | None = None
    file: str | None = None
    arguments: str | None = None


@dataclass(frozen=True)
class File:
    """A file to put in the image. `type` is raw, base64 or url; `content` is the element text
    exactly as given (use `File.data()` for raw/base64 bytes; url files are fetched by the plugin)."""

    name: str
    type: str
    content: str


@dataclass(frozen=True)
class Command:
    """A command (or precommand), already in execution order. `body` is decoded for base64."""

    name: str
    body: str
    type: str = "raw"
    position: int | None = None


@dataclass(frozen=True)
class OSSpec:
    name: str
    version: str
    arch: str
    install_type: str  # "url" or "iso"
    install_url: str | None = None  # the <url> or <iso> text
    checksum_type: str | None = None  # md5sum / sha1sum / sha256sum
    checksum_url: str | None = None
    rootpw: str | None = None
    key: str | None = None
    kernelparam: str | None = None
    icicle_extra_command: str | None = None


@dataclass(frozen=True)
class Template:
    xml: str
    name: str
    os: OSSpec
    description: str | None = None
    packages: tuple[Package, ...] = ()
    files: tuple[File, ...] = ()
    commands: tuple[Command, ...] = ()
    precommands: tuple[Command, ...] = ()
    repositories: tuple[Repository, ...] = ()
    disk_size: int | None = None  # bytes
    extra: dict[str, str] = field(default_factory=dict)
