"""The project's one parser for XML from outside: TDL templates and REST request bodies.

Such text comes from anyone who may call the API, so it is treated as hostile: it must be XML
text (the server never opens a path or URL a caller names), no larger than a limit, and free of
any DOCTYPE, the only place entities can be declared (billion laughs, XXE). The parser runs with
entity resolution, DTD loading and network access off in any case.

Bytes are decoded here, as an XML processor would (a byte order mark, else the encoding the XML
declaration names, else UTF-8), and the parser is then made to read exactly the decoded text as
UTF-8. So the text searched for a DOCTYPE is the text parsed: no encoding (UTF-16, UTF-32, a
BOM, a declaration naming another one) can hide a DOCTYPE from the check.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

from ..errors import TemplateError

# Byte order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one. The codecs
# named keep the mark as U+FEFF in the text, as a str caller would pass it.
_MARKED = (
    (codecs.BOM_UTF32_LE, "UTF-32LE"),
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)
# Without a mark, the first "<" or "<?" tells the wide encodings apart (XML 1.0, appendix F).
_UNMARKED = (
    (b"\0\0\0<", "UTF-32BE"),
    (b"<\0\0\0", "UTF-32LE"),
    (b"\0<\0?", "UTF-16BE"),
    (b"<\0?\0", "UTF-16LE"),
)
_DECLARED = re.compile(rb"<\?xml\s[^<>]*?\bencoding\s*=\s*([\"'])([A-Za-z][A-Za-z0-9._-]*)\1")
# The prolog (XML declaration, comments, processing instructions, white space) is the only place
# a DOCTYPE may stand, so skipping it finds one before the parser ever sees it.
_PROLOG = re.compile(r"\ufeff?(?:\s|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


def xml_text(data: str | bytes, *, what: str, kind: str, max_bytes: int) -> str:
    """`data` as text, after the checks that need no parsing: type, size, encoding, shape.

    `what` names the input in messages ("template") and `kind` what it must be ("TDL XML text").
    """
    not_xml = f"{what} must be {kind}, not a file path or URL"
    if isinstance(data, bytes):
        too_large = len(data) > max_bytes
    elif isinstance(data, str):
        too_large = len(data) > max_bytes or len(_encode(data, what)) > max_bytes
    else:
        raise TemplateError(not_xml)
    if too_large:
        raise TemplateError(f"{what} is larger than the limit of {max_bytes} bytes")
    text = _decode(data, what) if isinstance(data, bytes) else data
    start = text.lstrip("\ufeff").lstrip()
    if not start:
        raise TemplateError(f"{what} is empty: expected {kind}")
    if not start.startswith("<"):
        raise TemplateError(not_xml)
    return text


def parse_xml(text: str, label: str) -> etree._Element:
    """Parse `text` with every external or expanding feature off; DOCTYPE is refused outright."""
    prolog_end = _PROLOG.match(text).end()
    if text.startswith("<!DOCTYPE", prolog_end):
        line = text.count("\n", 0, prolog_end) + 1
        raise TemplateError(
            f"{label} must not contain a DOCTYPE or entity declarations (line {line})", line=line
        )
    parser = etree.XMLParser(
        encoding="utf-8",  # the text is already decoded; an encoding declaration must not re-decode
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )
    try:
        return etree.fromstring(_encode(text, label), parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        message = error.msg.removesuffix(f", line {line}, column {column}")
        raise TemplateError(
            f"{label} is not well-formed XML: {message} (line {line})", line=line
        ) from error


def _decode(data: bytes, what: str) -> str:
    """The text of XML bytes, in the encoding `_encoding` finds for them."""
    encoding, declared = _encoding(data)
    try:
        text = data.decode(encoding)
    except LookupError:
        raise TemplateError(f"{what} declares an unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as error:
        raise TemplateError(f"{what} is not {encoding} text: {error}") from error
    if declared and not text.startswith("<?xml"):
        raise TemplateError(f"{what} declares encoding {encoding!r} but is not written in it")
    return text


def _encoding(data: bytes) -> tuple[str, bool]:
    """The encoding of XML bytes, and whether their XML declaration named it: the one their
    byte order mark or the shape of their first "<" gives, else the declared one, else UTF-8."""
    for start, encoding in (*_MARKED, *_UNMARKED):
        if data.startswith(start):
            return encoding, False
    declared = _DECLARED.match(data)
    return (declared.group(2).decode("ascii"), True) if declared else ("UTF-8", False)


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TemplateError(f"{what} is not valid Unicode text: {error}") from error
