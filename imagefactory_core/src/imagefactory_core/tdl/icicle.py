"""ICICLE, the package manifest of a built image: one way for every OS plugin to write and read
it, so the core and every plugin agree on its shape."""

from __future__ import annotations

from lxml import etree

from .elements import error_at, string_value
from .safexml import parse_xml


def build_icicle(packages: list[tuple[str, str | None]], description: str | None) -> str:
    """The ICICLE XML for `packages`, pairs of (name-version-arch, extra_command line or None)."""
    root = etree.Element("icicle")
    if description is not None:
        etree.SubElement(root, "description").text = description
    listing = etree.SubElement(root, "packages")
    for name, extra in packages:
        package = etree.SubElement(listing, "package", name=name)
        if extra is not None:
            etree.SubElement(package, "extra").text = extra
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def parse_icicle(xml: str) -> list[tuple[str, str | None]]:
    """The (name, extra) pairs of an ICICLE document, in document order."""
    root = parse_xml(xml, "ICICLE")
    if root.tag != "icicle":
        raise error_at("ICICLE", f"root element must be <icicle>, not <{root.tag}>", root)
    pairs: list[tuple[str, str | None]] = []
    for package in root.iterfind("packages/package"):
        name = package.get("name")
        if not name:
            raise error_at("ICICLE", "element <package> is missing attribute name", package)
        extra = package.find("extra")
        pairs.append((name, None if extra is None else string_value(extra)))
    return pairs
