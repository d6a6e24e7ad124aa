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


def error_at(label: str, message: str, element: etree._Element) -> TemplateError:
    """The error for `message` about `element`, naming its line when the parser knows it."""
    line = element.sourceline
    where = f" (line {line})" if line else ""
    return TemplateError(f"{label} invalid: {message}{where}", line=line, element=element.tag)
