"""TDL's own rules, and the `Template` built from a schema-valid element tree.

These are the rules a schema cannot express (TDL.md, "Rules a schema alone does not express"):
the version, what an install of each type holds, command positions, file names, base64 content
and disk sizes. They run after validation, so every element they read has its schema shape.
"""

from __future__ import annotations

import binascii
import re
from decimal import Decimal, InvalidOperation

from lxml import etree

from .elements import child_text, error_at, string_value, token
from .model import (
    Command,
    File,
    InstallExtra,
    OSSpec,
    Package,
    Repository,
    Template,
    decode_base64,
)

SUPPORTED_VERSION = Decimal("1.0")
_CHECKSUMS = ("md5sum", "sha1sum", "sha256sum")
_INSTALL_CHILDREN = {"url": {"url"}, "iso": {"iso", "extras", *_CHECKSUMS}}
_SIZE = re.compile(r"([0-9]*)\s*([kmgtpezy]?)(i?)(b?)", re.IGNORECASE)
_SIZE_PREFIXES = "kmgtpezy"


def build_template(xml: str, root: etree._Element, require_rootpw: bool) -> Template:
    """The `Template` of `xml`, parsed as the schema-valid `root`, once TDL's rules hold."""
    _check_version(root)
    os_spec = _os_spec(root.find("os"))
    if require_rootpw and not os_spec.rootpw:
        raise error_at(
            "TDL", "element <os> is missing <rootpw>, which this service requires", root.find("os")
        )
    return Template(
        xml=xml,
        name=child_text(root, "name"),
        os=os_spec,
        description=child_text(root, "description"),
        packages=tuple(_package(element) for element in root.iterfind("packages/package")),
        files=tuple(_file(element) for element in root.iterfind("files/file")),
        commands=_commands(root.find("commands")),
        precommands=_commands(root.find("precommands")),
        repositories=tuple(
            _repository(element) for element in root.iterfind("repositories/repository")
        ),
        disk_size=_disk_size(root.find("disk/size")),
    )


def _check_version(root: etree._Element) -> None:
    version = root.get("version")
    if version is None:
        return
    try:
        number = Decimal(version)
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise error_at("TDL", f"template version {version!r} is not a number", root) from None
    if number > SUPPORTED_VERSION:
        raise error_at(
            "TDL", f"template version {version} is not supported (the highest is 1.0)", root
        )


def _os_spec(os_element: etree._Element) -> OSSpec:
    install = os_element.find("install")
    install_type = token(install, "type")
    _check_install(install, install_type)
    checksum = next(install.iterchildren(*_CHECKSUMS), None)
    return OSSpec(
        name=child_text(os_element, "name"),
        version=child_text(os_element, "version"),
        arch=child_text(os_element, "arch"),
        install_type=install_type,
        install_url=child_text(install, install_type),
        checksum_type=None if checksum is None else checksum.tag,
        checksum_url=None if checksum is None else string_value(checksum).strip(),
        rootpw=child_text(os_element, "rootpw"),
        key=child_text(os_element, "key"),
        kernelparam=child_text(os_element, "kernelparam"),
        icicle_extra_command=child_text(os_element, "icicle/extra_command"),
        install_extras=tuple(
            InstallExtra(extra.tag, extra.get("source"), extra.get("destination"))
            for extra in install.iterfind("extras/*")
        ),
    )


def _check_install(install: etree._Element, install_type: str) -> None:
    """A url install names a <url>; an iso install an <iso>, at most one checksum, extras."""
    for child in install.iterchildren(etree.Element):
        if child.tag not in _INSTALL_CHILDREN[install_type]:
            message = f'element <{child.tag}> not allowed in <install type="{install_type}">'
            raise error_at("TDL", message, child)
    if install.find(install_type) is None:
        message = f'element <install type="{install_type}"> is missing <{install_type}>'
        raise error_at("TDL", message, install)
    checksums = list(install.iterchildren(*_CHECKSUMS))
    if len(checksums) > 1:
        found = ", ".join(f"<{checksum.tag}>" for checksum in checksums)
        message = f"element <install> may have at most one checksum, found {found}"
        raise error_at("TDL", message, checksums[1])


def _package(element: etree._Element) -> Package:
    return Package(
        name=element.get("name"),
        repository=child_text(element, "repository"),
        file=child_text(element, "file"),
        arguments=child_text(element, "arguments"),
    )


def _file(element: etree._Element) -> File:
    name = element.get("name")
    if not name.startswith("/") or ".." in name.split("/"):
        raise error_at("TDL", f'file name "{name}" must be an absolute path without ".."', element)
    file = File(name=name, type=token(element, "type", "raw"), content=string_value(element))
    if file.type == "base64":
        _base64_content(file.content, element)
    elif file.type == "url" and not file.content.strip():
        raise error_at("TDL", f'<file name="{name}" type="url"> names no URL', element)
    return file


def _commands(parent: etree._Element | None) -> tuple[Command, ...]:
    """The commands of `parent` in execution order: by position when given, else as written."""
    if parent is None:
        return ()
    elements = parent.findall("command")
    unpositioned = [element for element in elements if element.get("position") is None]
    if unpositioned and len(unpositioned) < len(elements):
        message = f"either every <command> in <{parent.tag}> has a position or none does"
        raise error_at("TDL", message, unpositioned[0])
    commands = [_command(element) for element in elements]
    if unpositioned:
        return tuple(commands)
    seen: set[int] = set()
    for element, command in zip(elements, commands, strict=True):
        if not 1 <= command.position <= len(commands) or command.position in seen:
            message = (
                f'<command name="{command.name}"> has position {command.position}; positions in '
                f"<{parent.tag}> must run 1..{len(commands)} with no gaps or duplicates"
            )
            raise error_at("TDL", message, element)
        seen.add(command.position)
    return tuple(sorted(commands, key=lambda command: command.position))


def _command(element: etree._Element) -> Command:
    name = element.get("name")
    kind = token(element, "type", "raw")
    body = string_value(element)
    if kind == "base64":
        try:
            body = _base64_content(body, element).decode("utf-8")
        except UnicodeDecodeError:
            raise error_at("TDL", f'<command name="{name}"> is not UTF-8 text', element) from None
    elif kind == "url":
        body = body.strip()
    if not body.strip():
        raise error_at("TDL", f'<command name="{name}"> has an empty body', element)
    position = element.get("position")
    return Command(name, body, kind, None if position is None else int(position))


def _repository(element: etree._Element) -> Repository:
    return Repository(
        name=element.get("name"),
        url=child_text(element, "url"),
        signed=_flag(element, "signed", default=False),
        persisted=_flag(element, "persisted", default=True),
        sslverify=_flag(element, "sslverify", default=False),
    )


def _flag(parent: etree._Element, tag: str, *, default: bool) -> bool:
    value = child_text(parent, tag)
    return default if value is None else value.lower() in ("true", "yes")


def _disk_size(element: etree._Element | None) -> int | None:
    """Bytes for a TDL disk size: no unit means GiB; G/Gi/GiB are binary, GB is decimal."""
    if element is None:
        return None
    text = string_value(element).strip()
    number, prefix, binary, byte = _SIZE.fullmatch(text).groups()
    if not number or (binary and not prefix):
        raise error_at("TDL", f"invalid disk size {text!r}", element)
    if not prefix:
        size = int(number) * (1 if byte else 2**30)
    else:
        exponent = _SIZE_PREFIXES.index(prefix.lower()) + 1
        decimal = byte and not binary
        size = int(number) * (1000**exponent if decimal else 1024**exponent)
    if size == 0:
        raise error_at("TDL", "disk size must be greater than zero", element)
    return size


def _base64_content(text: str, element: etree._Element) -> bytes:
    try:
        return decode_base64(text)
    except binascii.Error as error:
        message = f'<{element.tag} name="{element.get("name")}"> is not valid base64: {error}'
        raise error_at("TDL", message, element) from None
