"""What a parsed TDL template is: the frozen dataclasses OS plugins receive.

They hold values only; `imagefactory_core.tdl.parse_template` builds them from text that has
passed every check, so a plugin can trust their shape.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .redaction import redact_template


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
    exactly as given (use `File.data()` for raw/base64 bytes; url files are fetched by the
    plugin)."""

    name: str
    type: str
    content: str

    def data(self) -> bytes:
        """The file's bytes. A url file has none here: the plugin fetches `content` itself."""
        if self.type == "raw":
            return self.content.encode("utf-8")
        if self.type == "base64":
            return decode_base64(self.content)
        raise ValueError(f"file {self.name} has type {self.type}: fetch {self.content.strip()}")


@dataclass(frozen=True)
class Command:
    """A command (or precommand), already in execution order. `body` is decoded for base64."""

    name: str
    body: str
    type: str = "raw"
    position: int | None = None


@dataclass(frozen=True)
class InstallExtra:
    """An ``<extras>`` entry of an iso install: `kind` is "file" or "directory"; `source` is a
    path on the build host, copied to `destination` in the install ISO by the plugin."""

    kind: str
    source: str
    destination: str


@dataclass(frozen=True)
class OSSpec:
    name: str
    version: str
    arch: str
    install_type: str  # "url" or "iso"
    install_url: str | None = None  # the <url> or <iso> text
    checksum_type: str | None = None  # md5sum / sha1sum / sha256sum
    checksum_url: str | None = None
    rootpw: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    kernelparam: str | None = None
    icicle_extra_command: str | None = None
    install_extras: tuple[InstallExtra, ...] = ()


@dataclass(frozen=True)
class Template:
    xml: str = field(repr=False)
    name: str
    os: OSSpec
    description: str | None = None
    packages: tuple[Package, ...] = ()
    files: tuple[File, ...] = ()
    commands: tuple[Command, ...] = ()
    precommands: tuple[Command, ...] = ()
    repositories: tuple[Repository, ...] = ()
    disk_size: int | None = None  # bytes

    @property
    def redacted_xml(self) -> str:
        """The template text with secrets masked: the form to log, store in responses, show."""
        return redact_template(self.xml)


def decode_base64(text: str) -> bytes:
    """The bytes of base64 element text, which may be wrapped over lines and indented.

    Raises `binascii.Error` for any text that is not base64, non-ASCII text included (which
    `base64` refuses with a bare `ValueError`, found by fuzzing).
    """
    compact = "".join(text.split())
    if not compact.isascii():
        raise binascii.Error("only A-Z, a-z, 0-9, '+', '/' and '=' may appear in base64")
    return base64.b64decode(compact, validate=True)
