"""Reading parsed TDL elements, and errors that point at one.

Schema checks, TDL's rules and ICICLE read element text the same way and word their errors the
same way ("TDL invalid: … (line 6)"), so both live here once.
"""

from __future__ import annotations

from lxml import etree

from ..errors import TemplateError


def string_value(element: etree._Element) -> str:
    """The element's text as XPath sees it: text and CDATA of all descendants, no comments."""
    return str(element.xpath("string()"))


def token(element: etree._Element, attribute: str, default: str = "") -> str:
    """An enumerated attribute's value; the schema compares such values with spaces trimmed."""
    return element.get(attribute, default).strip()


def child_text(parent: etree._Element, path: str) -> str | None:
    """The stripped text of the optional child at `path`, or None when there is none."""
    child = parent.find(path)
    return None if child is None else string_value(child).strip()


def display_name(name: str, element: etree._Element) -> str:
    """An element's or attribute's `name` on `element` as the template wrote it ("xi:include"),
    not in lxml's {namespace}name form, when the namespace has a prefix there."""
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    prefix = next((key for key, value in element.nsmap.items() if key and value == uri), None)
    return f"{prefix}:{local}" if prefix else name


def error_at(label: str, message: str, element: etree._Element) -> TemplateError:
    """The error for `message` about `element`, naming its line when the parser knows it."""
    line = element.sourceline
    where = f" (line {line})" if line else ""
    return TemplateError(f"{label} invalid: {message}{where}", line=line, element=element.tag)
