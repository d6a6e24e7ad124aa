"""The shared safe XML parser (imagefactory_core.tdl.safexml): bytes are decoded as XML says,
and a DOCTYPE is refused whatever encoding hides it."""

from __future__ import annotations

import codecs

import pytest
from imagefactory_core.errors import TemplateError
from imagefactory_core.tdl import parse_template
from imagefactory_core.tdl.safexml import parse_xml, xml_text

TDL = """<template>
  <name>t</name>
  <os><name>Fedora</name><version>39</version><arch>x86_64</arch>
      <install type='url'><url>http://example.org/fedora/39/</url></install></os>
  <description>café</description>
</template>
"""
BOMB = (
    '<!DOCTYPE template [\n <!ENTITY lol "lol">\n'
    ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
)
# (case, byte order mark, codec, name in the XML declaration)
ENCODINGS = [
    ("UTF-8", b"", "utf-8", "UTF-8"),
    ("UTF-8 with BOM", codecs.BOM_UTF8, "utf-8", "UTF-8"),
    ("UTF-16LE with BOM", codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    ("UTF-16BE with BOM", codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
    ("UTF-16LE without BOM", b"", "utf-16-le", "UTF-16"),
    ("UTF-16BE without BOM", b"", "utf-16-be", "UTF-16"),
    ("UTF-32LE with BOM", codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    ("UTF-32BE with BOM", codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    ("UTF-32LE without BOM", b"", "utf-32-le", "UTF-32"),
    ("UTF-32BE without BOM", b"", "utf-32-be", "UTF-32"),
    ("ISO-8859-1", b"", "iso-8859-1", "ISO-8859-1"),
]
PARAMETERS = [pytest.param(*encoding[1:], id=encoding[0]) for encoding in ENCODINGS]


def declared(text: str, name: str) -> str:
    return f'<?xml version="1.0" encoding="{name}"?>\n{text}'


def error(text: str | bytes) -> str:
    with pytest.raises(TemplateError) as caught:
        parse_template(text)
    return str(caught.value)


@pytest.mark.parametrize(("bom", "codec", "name"), PARAMETERS)
def test_bytes_are_read_in_the_encoding_xml_gives_them(bom: bytes, codec: str, name: str) -> None:
    text = declared(TDL, name)

    template = parse_template(bom + text.encode(codec))

    assert template.description == "café"
    assert template.xml == ("\ufeff" if bom else "") + text  # a byte order mark stays, as U+FEFF


@pytest.mark.parametrize(("bom", "codec", "name"), PARAMETERS)
def test_a_doctype_is_refused_in_any_encoding(bom: bytes, codec: str, name: str) -> None:
    text = declared(BOMB + TDL.replace("café", "&lol1;"), name)

    assert error(bom + text.encode(codec)) == (
        "TDL must not contain a DOCTYPE or entity declarations (line 2)"
    )


def test_a_doctype_in_utf7_escapes_is_refused() -> None:
    hidden = (BOMB + TDL.replace("café", "&lol1;")).replace("<", "+ADw-")
    text = '<?xml version="1.0" encoding="UTF-7"?>\n' + hidden

    assert "<!" not in text
    assert "must not contain a DOCTYPE" in error(text.encode("ascii"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b'<?xml version="1.0" encoding="x-none"?><a/>',
            "body declares an unknown encoding 'x-none'",
            id="unknown",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="rot13"?><a/>',
            "body declares an unknown encoding 'rot13'",
            id="not a text encoding",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-16"?><ab/>',
            "body declares encoding 'UTF-16' but is not written in it",
            id="declared, not used",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE + "<a/>".encode("utf-16-be")[:-1],
            "body is not UTF-16BE text: 'utf-16-be' codec can't decode byte 0x00 in position 8: "
            "truncated data",
            id="truncated",
        ),
        pytest.param(b"\x00\x00", "body must be XML text, not a file path or URL", id="not XML"),
        pytest.param(b"\n ", "body is empty: expected XML text", id="empty"),
        pytest.param("<a/>" * 20, "body is larger than the limit of 64 bytes", id="too large"),
    ],
)
def test_text_checks_name_what_is_read(data: str | bytes, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        xml_text(data, what="body", kind="XML text", max_bytes=64)

    assert str(caught.value) == message


def test_parse_errors_name_the_label_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_xml("<a>\n<b></a>", "body")

    assert str(caught.value) == (
        "body is not well-formed XML: Opening and ending tag mismatch: b line 2 and a (line 2)"
    )
    assert caught.value.line == 2
