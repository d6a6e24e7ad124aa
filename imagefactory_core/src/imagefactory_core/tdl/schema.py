"""RELAX NG validation of a template, with error messages that name the element at fault.

The structure is checked by ``schemas/tdl.rng``. libxml2 reports a failure inside an interleaved
child only as "extra element in interleave", so the validator drills down: it validates the blamed
child alone against its own pattern from the same schema until it reaches the real cause, and
says it as "TDL invalid: element <intall> not allowed in <os> (line 6)".
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator
from functools import cache
from importlib import resources

from lxml import etree

from ..errors import TemplateError
from .elements import display_name, error_at, string_value

_RNG = "{http://relaxng.org/ns/structure/1.0}"
_EXPECTED = "{urn:imagefactory:tdl-schema}expected"
_ROOT = ("template",)
# A validator keeps its error log on itself, so one validation at a time reads its own errors.
_VALIDATION_LOCK = threading.Lock()


def validate(root: etree._Element) -> None:
    """Raise `TemplateError` for the most specific violation of the schema in `root`, if any."""
    with _VALIDATION_LOCK:
        problem = _problem(root, _ROOT)
    if problem is not None:
        raise problem


@cache
def _grammar() -> etree._Element:
    schema = resources.files("imagefactory_core").joinpath("schemas/tdl.rng").read_bytes()
    return etree.fromstring(schema)


@cache
def _defines() -> dict[str, etree._Element]:
    return {define.get("name"): define for define in _grammar().iterchildren(f"{_RNG}define")}


def _content(pattern: etree._Element) -> Iterator[etree._Element]:
    """The schema nodes describing `pattern`'s content, through refs, not entering elements or
    attributes."""
    for node in pattern.iterchildren(etree.Element):
        yield node
        if node.tag == f"{_RNG}ref":
            yield from _content(_defines()[node.get("name")])
        elif node.tag not in (f"{_RNG}element", f"{_RNG}attribute"):
            yield from _content(node)


@cache
def _patterns() -> dict[tuple[str, ...], etree._Element]:
    """Every element pattern of the schema, keyed by its path of element names from the root."""
    patterns: dict[tuple[str, ...], etree._Element] = {}

    def collect(pattern: etree._Element, path: tuple[str, ...]) -> None:
        for node in _content(pattern):
            if node.tag == f"{_RNG}element":
                node_path = (*path, node.get("name"))
                patterns.setdefault(node_path, node)
                collect(node, node_path)

    collect(_grammar().find(f"{_RNG}start"), ())
    return patterns


@cache
def _validator(path: tuple[str, ...]) -> etree.RelaxNG:
    """A validator for the element at `path` alone: the schema with that pattern as its start."""
    grammar = copy.deepcopy(_grammar())
    grammar.find(f"{_RNG}start")[:] = [copy.deepcopy(_patterns()[path])]
    return etree.RelaxNG(grammar)


@cache
def _shell_validator(path: tuple[str, ...]) -> etree.RelaxNG:
    """A validator for the element at `path` with empty children: its own level only."""
    grammar = copy.deepcopy(_grammar())
    original = _grammar().getroottree()

    def twin(pattern: etree._Element) -> etree._Element:
        return grammar.xpath(original.getpath(pattern))[0]

    for child_path, pattern in _patterns().items():
        if child_path[:-1] == path:
            twin(pattern)[:] = [etree.Element(f"{_RNG}empty")]
    grammar.find(f"{_RNG}start")[:] = [copy.deepcopy(twin(_patterns()[path]))]
    return etree.RelaxNG(grammar)


@cache
def _has_interleave(path: tuple[str, ...]) -> bool:
    return any(node.tag == f"{_RNG}interleave" for node in _content(_patterns()[path]))


def _problem(element: etree._Element, path: tuple[str, ...]) -> TemplateError | None:
    """The most specific schema violation in `element`, checked against its pattern at `path`.

    libxml2 checks an interleave in time quadratic in the number of elements below it, and
    interleaves hold long lists (the root: packages, files, commands; <install>: extras). So an
    element with an interleave is checked as a shell of empty children, then each child alone:
    the same verdict, in linear time.
    """
    if not _has_interleave(path):
        return _subtree_problem(element, path)
    shell = _shell(element)
    validator = _shell_validator(path)
    if not validator.validate(shell):
        node, entry = _culprit(shell, validator)
        if node is shell:
            return _own_problem(shell, entry, path)
        return _misplaced(node, (*path, node.tag))
    children = element.iterchildren(etree.Element)
    return next(filter(None, (_problem(child, (*path, child.tag)) for child in children)), None)


def _shell(element: etree._Element) -> etree._Element:
    """A copy of `element` whose child elements are empty; names, prefixes, lines and text
    stay."""
    shell = etree.Element(element.tag, dict(element.attrib), nsmap=element.nsmap)
    shell.text, shell.sourceline = element.text, element.sourceline
    for child in element:
        if isinstance(child.tag, str):  # the template's own prefixes name elements in errors
            hollow = etree.SubElement(shell, child.tag, nsmap=child.nsmap)
            hollow.tail, hollow.sourceline = child.tail, child.sourceline
        else:
            shell.append(copy.copy(child))  # comments and processing instructions
    return shell


def _subtree_problem(element: etree._Element, path: tuple[str, ...]) -> TemplateError | None:
    """`_problem` for an element validated whole, drilling down to the element at fault."""
    document = copy.deepcopy(element)  # alone in its own document; source lines stay
    document.tail = None
    validator = _validator(path)
    if validator.validate(document):
        return None
    node, entry = _culprit(document, validator)
    if node is document:
        return _own_problem(node, entry, path)
    node_path = (*path, *(ancestor.tag for ancestor in _ancestors(node, document)), node.tag)
    if node_path in _patterns() and (inner := _problem(node, node_path)):
        return inner
    return _misplaced(node, node_path)


def _culprit(
    document: etree._Element, validator: etree.RelaxNG
) -> tuple[etree._Element, etree._LogEntry]:
    """The deepest element the validator's errors name, with its error; libxml2 names the
    outermost failure first and the cause further down."""
    # libxml2 writes a namespaced element's path with the template's own prefix ("/os/xi:x")
    prefixes = {prefix: uri for node in document.iter(etree.Element)
                for prefix, uri in node.nsmap.items() if prefix}
    entries = [(node, entry) for entry in validator.error_log
               for node in _nodes(document, entry, prefixes)]
    if not entries:
        return document, validator.error_log[0]
    return max(entries, key=lambda pair: _depth(pair[0]))


def _nodes(document: etree._Element, entry: etree._LogEntry,
           prefixes: dict[str, str]) -> list[etree._Element]:
    """The elements an error log entry is about; `prefixes` resolves those in its path."""
    if not entry.path:
        return []
    try:
        found = document.getroottree().xpath(entry.path, namespaces=prefixes)
    except etree.XPathError:
        return []
    nodes = [node for node in found if isinstance(node, etree._Element)]
    if entry.type_name == "RELAXNG_ERR_ATTRVALID":
        # libxml2 locates this error at the element's first child; the element is the one named.
        owner = _word_after("Element", entry.message)
        nodes = [
            next((n for n in (node, *node.iterancestors()) if n.tag == owner), node)
            for node in nodes
        ]
    return nodes


def _depth(node: etree._Element) -> int:
    return sum(1 for _ in node.iterancestors())


def _ancestors(node: etree._Element, top: etree._Element) -> list[etree._Element]:
    """`node`'s ancestors below `top`, outermost first."""
    ancestors = list(node.iterancestors())
    return list(reversed(ancestors[: ancestors.index(top)]))


def _misplaced(node: etree._Element, path: tuple[str, ...]) -> TemplateError:
    """The error for `node` when the fault is its place, not its content."""
    parent = node.getparent()
    repeated = path in _patterns() and sum(1 for other in parent if other.tag == node.tag) > 1
    placement = "may appear only once in" if repeated else "not allowed in"
    shown = display_name(node.tag, node)
    return error_at("TDL", f"element <{shown}> {placement} <{parent.tag}>", node)


def _own_problem(
    node: etree._Element, entry: etree._LogEntry, path: tuple[str, ...]
) -> TemplateError:
    """Say what libxml2 found wrong with `node` itself: its name, value, attributes or content."""
    pattern = _patterns()[path]
    missing = [name for name in _required(pattern, "element") if node.find(name) is None]
    # Only the root can be misnamed: every other node's path was made from its own tag.
    if node.tag != path[-1]:
        message = f"root element must be <{path[-1]}>, not <{display_name(node.tag, node)}>"
    elif entry.type_name in ("RELAXNG_ERR_VALUE", "RELAXNG_ERR_DATATYPE"):
        value = string_value(node).strip()
        message = f"invalid value {value!r} in <{node.tag}>{_expected(pattern)}"
    elif attribute_problem := _attribute_problem(node, pattern, entry):
        message = attribute_problem
    elif _has_stray_text(node, pattern):
        message = f"text not allowed in <{node.tag}>"
    elif missing:
        message = f"element <{node.tag}> is missing <{missing[0]}>"
    else:
        message = f"element <{node.tag}> is not valid: {entry.message.strip()}"
    return error_at("TDL", message, node)


def _attribute_problem(
    node: etree._Element, pattern: etree._Element, entry: etree._LogEntry
) -> str | None:
    declared = {a.get("name"): a for a in _content(pattern) if a.tag == f"{_RNG}attribute"}
    for name in _required(pattern, "attribute"):
        if node.get(name) is None:
            return f"element <{node.tag}> is missing attribute {name}"
    for name, value in node.attrib.items():
        if name not in declared:
            return f"attribute {display_name(name, node)} not allowed on <{node.tag}>"
        values = _values(declared[name])
        if values and " ".join(value.split()) not in values:
            expected = _expected(declared[name])
            return f'invalid attribute {name}="{value}" on <{node.tag}>{expected}'
    if entry.type_name == "RELAXNG_ERR_INVALIDATTR":
        name = _word_after("attribute", entry.message)
        return f'invalid attribute {name}="{node.get(name, "")}" on <{node.tag}>'
    return None


def _has_stray_text(node: etree._Element, pattern: etree._Element) -> bool:
    takes_text = (f"{_RNG}text", f"{_RNG}data", f"{_RNG}value")
    if any(part.tag in takes_text for part in _content(pattern)):
        return False
    return any(text and text.strip() for text in (node.text, *(child.tail for child in node)))


def _word_after(word: str, message: str) -> str:
    """The name libxml2 puts after `word` in `message` ("Invalid attribute mode for ...")."""
    found = re.search(rf"\b{word} ([^\s,]+)", message)
    return found.group(1) if found else "?"


def _values(pattern: etree._Element) -> list[str]:
    return [node.text for node in _content(pattern) if node.tag == f"{_RNG}value"]


def _expected(pattern: etree._Element) -> str:
    hints = [node.get(_EXPECTED) for node in _content(pattern) if node.get(_EXPECTED)]
    if hints:
        return f"; expected {hints[0]}"
    values = _values(pattern)
    return f"; expected one of {', '.join(values)}" if values else ""


def _required(pattern: etree._Element, kind: str) -> list[str]:
    """Names of the `kind` ("element" or "attribute") patterns that `pattern` cannot do without."""
    names: list[str] = []
    for node in pattern.iterchildren(etree.Element):
        if node.tag == f"{_RNG}{kind}":
            names.append(node.get("name"))
        elif node.tag == f"{_RNG}ref":
            names += _required(_defines()[node.get("name")], kind)
        elif node.tag in (f"{_RNG}group", f"{_RNG}interleave", f"{_RNG}oneOrMore"):
            names += _required(node, kind)
    return names
