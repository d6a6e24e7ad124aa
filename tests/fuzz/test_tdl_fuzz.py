"""Fuzzing the TDL parser: whatever text a client sends as a template, `parse_template` returns a
`Template` or raises `TemplateError` with a message, and nothing else.

Three kinds of input, from the outside in: arbitrary bytes and markup soup in any encoding
(the safe XML layer), trees of TDL's own element names and attributes (the schema layer), and
valid templates with a few random edits (TDL's rules, which only see schema-valid trees).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imagefactory_core.errors import TemplateError
from imagefactory_core.tdl import Template, parse_template
from lxml import etree

from .conftest import HANG_SECONDS, XML_CHARS, bounded, encoded, markup_text

pytestmark = pytest.mark.timeout(HANG_SECONDS)

# Every element and attribute name the schema knows, and one it does not.
TAGS = ["template", "name", "os", "version", "arch", "install", "url", "iso", "md5sum",
        "sha1sum", "sha256sum", "extras", "directory", "file", "packages", "package",
        "repository", "arguments", "description", "files", "commands", "precommands",
        "command", "repositories", "signed", "persisted", "sslverify", "disk", "size", "rootpw",
        "key", "kernelparam", "icicle", "extra_command", "intall"]
ATTRIBUTES = ["name", "type", "position", "version", "source", "destination", "colour"]
# Values that sit on the edges of what the schema or the rules accept.
VALUES = ["", " ", "url", "iso", "raw", "base64", " base64 ", "0", "1", "2", " 1 ", "-1", "01",
          "99999999999999999999", "1.0", "1.1", "1e9", "NaN", "Infinity", "\u0663", "x86_64",
          "true", "No", "10G", "10 GiB", "512MiB", "20GB", "0G", "iB", "B", "9" * 40 + "Y",
          "/etc/motd", "/a/../b", "relative", "//", "aGVsbG8=", "aGVsbG8", "/w==", "\xff\xfe",
          "http://127.0.0.1:9/x", "file:///etc/passwd"]

URL_TEMPLATE = """<template version="1.0">
  <name>fuzz</name>
  <os><name>Fedora</name><version>39</version><arch>x86_64</arch>
    <install type="url"><url>http://127.0.0.1:9/f39/</url></install>
    <rootpw>s3cret</rootpw><key>K</key><kernelparam>quiet</kernelparam>
    <icicle><extra_command>rpm -qa</extra_command></icicle></os>
  <description>every part</description>
  <packages><package name="vim"><repository>r</repository><file>/tmp/v.rpm</file>
    <arguments>-y</arguments></package><package name="git"/></packages>
  <files><file name="/etc/motd">hello</file><file name="/etc/b" type="base64">aGVsbG8=</file>
    <file name="/opt/u" type="url">http://127.0.0.1:9/u</file></files>
  <commands><command name="a" position="2">echo a</command>
    <command name="b" position="1" type="base64">ZWNobyBi</command></commands>
  <precommands><command name="p" type="url">http://127.0.0.1:9/p.sh</command></precommands>
  <repositories><repository name="r"><url>http://127.0.0.1:9/r</url><signed>yes</signed>
    <persisted>false</persisted><sslverify>TRUE</sslverify></repository></repositories>
  <disk><size>10GiB</size></disk>
</template>"""
ISO_TEMPLATE = """<template>
  <name>iso</name>
  <os><name>RHEL-6</name><version>1</version><arch>i386</arch>
    <install type="iso"><iso>http://127.0.0.1:9/r.iso</iso>
      <sha256sum>http://127.0.0.1:9/SUMS</sha256sum>
      <extras><file source="/srv/ks" destination="/ks"/><directory source="/d" destination="/d"/>
      </extras></install></os>
  <commands><command name="c">true</command></commands>
</template>"""


def parses_or_refuses(text: str | bytes) -> Template | None:
    """The contract under test: a `Template`, or a `TemplateError` a person can read."""
    try:
        template = parse_template(text)
    except TemplateError as error:
        assert str(error).strip(), "a TemplateError without a message"
        return None
    assert isinstance(template, Template)
    return template


def test_the_starting_templates_are_valid():
    """The edits below start from valid templates, so they reach TDL's rules."""
    assert parses_or_refuses(URL_TEMPLATE) is not None
    assert parses_or_refuses(ISO_TEMPLATE) is not None


# What fuzzing found escaping as another exception (a 500), kept as fixed examples.
FOUND = [
    pytest.param(URL_TEMPLATE.replace(">aGVsbG8=<", ">\xa1<"), "base64",
                 id="non-ASCII base64 file"),
    pytest.param(URL_TEMPLATE.replace(">ZWNobyBi<", ">\u00e9cho<"), "base64",
                 id="non-ASCII base64 command"),
]


@pytest.mark.parametrize(("text", "words"), FOUND)
def test_inputs_found_by_fuzzing_are_refused_clearly(text: str, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        parse_template(text)


@bounded(1000)
@given(st.binary(max_size=400) | encoded(markup_text()))
def test_arbitrary_bytes(data: bytes) -> None:
    parses_or_refuses(data)


@bounded(1000)
@given(markup_text() | st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    parses_or_refuses(text)


def text_value() -> st.SearchStrategy[str]:
    return st.sampled_from(VALUES) | st.text(XML_CHARS, max_size=20)


@st.composite
def element_tree(draw: st.DrawFn, depth: int = 0, tag: str | None = None) -> etree._Element:
    """An element (named `tag`, else any of TDL's names) with TDL's attributes and edge values,
    and children down to depth 3."""
    element = etree.Element(tag or draw(st.sampled_from(TAGS)))
    for attribute in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=2, unique=True)):
        element.set(attribute, draw(text_value()))
    element.text = draw(st.none() | text_value())
    if depth < 3:
        element.extend(draw(st.lists(element_tree(depth + 1), max_size=4)))
    return element


@bounded(300)
@given(element_tree(tag="template") | element_tree())
def test_trees_of_tdl_names(root: etree._Element) -> None:
    parses_or_refuses(etree.tostring(root, encoding="unicode"))


# -- valid templates with a few edits ----------------------------------------------------------
def _delete(data: st.DataObject, element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _duplicate(data: st.DataObject, element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.append(etree.fromstring(etree.tostring(element)))


def _set_attribute(data: st.DataObject, element: etree._Element) -> None:
    element.set(data.draw(st.sampled_from(ATTRIBUTES)), data.draw(text_value()))


def _drop_attribute(data: st.DataObject, element: etree._Element) -> None:
    if element.attrib:
        del element.attrib[data.draw(st.sampled_from(sorted(element.attrib)))]


def _set_text(data: st.DataObject, element: etree._Element) -> None:
    element.text = data.draw(text_value())


def _add_child(data: st.DataObject, element: etree._Element) -> None:
    element.insert(data.draw(st.integers(0, len(element))), data.draw(element_tree(depth=2)))


def _move(data: st.DataObject, element: etree._Element) -> None:
    """Put `element` under another element of the tree (not under itself)."""
    root = element.getroottree().getroot()
    if element is root:
        return
    hosts = [host for host in root.iter(etree.Element) if element not in host.iterancestors()
             and host is not element]
    data.draw(st.sampled_from(hosts)).append(element)


EDITS: list[Callable[[st.DataObject, etree._Element], None]] = [
    _delete, _duplicate, _set_attribute, _drop_attribute, _set_text, _add_child, _move]


@bounded(1500)
@given(st.sampled_from([URL_TEMPLATE, ISO_TEMPLATE]), st.data())
def test_valid_templates_with_random_edits(start: str, data: st.DataObject) -> None:
    root = etree.fromstring(start)
    for _ in range(data.draw(st.integers(1, 4))):
        element = data.draw(st.sampled_from(list(root.iter(etree.Element))))
        data.draw(st.sampled_from(EDITS))(data, element)
    parses_or_refuses(etree.tostring(root, encoding="unicode"))
