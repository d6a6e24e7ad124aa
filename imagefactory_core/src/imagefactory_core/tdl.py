"""TDL templates: safe parsing, RELAX NG validation and Oz's semantic rules.

Templates arrive from anyone who may call the API, so the text is treated as hostile: it must be
XML text (the server never opens a path or URL a caller names), no larger than a limit, and free of
any DOCTYPE, the only place entities can be declared (billion laughs, XXE). The parser runs with
entity resolution, DTD loading and network access off in any case.

The structure is checked by ``schemas/tdl.rng``. libxml2 reports a failure inside an interleaved
child only as "extra element in interleave", so the validator drills down: it validates the blamed
child alone against its own pattern from the same schema until it reaches the real cause, and
says it as "TDL invalid: element <intall> not allowed in <os> (line 6)". The rules a schema cannot
express (TDL.md, "Rules a schema alone does not express") follow validation; the result is the
frozen dataclasses below, which plugins receive.

`redact_template` hides ``<rootpw>`` and ``<key>`` for anything shown to people. The ICICLE helpers
give every OS plugin one way to write and read the package manifest.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

from lxml import etree

from .errors import TemplateError

__all__ = [
    "MAX_TEMPLATE_BYTES",
    "REDACTED",
    "Command",
    "File",
    "InstallExtra",
    "OSSpec",
    "Package",
    "Repository",
    "Template",
    "build_icicle",
    "parse_icicle",
    "parse_template",
    "redact_template",
]

MAX_TEMPLATE_BYTES = 1_048_576
REDACTED = "*****"
NOT_XML_TEXT = "template must be TDL XML text, not a file path or URL"
SUPPORTED_VERSION = Decimal("1.0")


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
            return _decode_base64(self.content)
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


# -- public functions ---------------------------------------------------------------------------
def parse_template(
    text: str | bytes, *, require_rootpw: bool = False, max_bytes: int = MAX_TEMPLATE_BYTES
) -> Template:
    """Parse and validate TDL `text` (str, or UTF-8 bytes) into a `Template`.

    Raises `TemplateError` with a message naming the element and line when the text is not XML,
    too large, not well-formed, not valid against the schema or breaks one of TDL's rules.
    `require_rootpw` makes ``<rootpw>`` mandatory (the service's ``tdl_require_root_pw``).
    """
    xml = _template_text(text, max_bytes)
    root = _parse_xml(xml, "TDL")
    _validate(root)
    return _template(xml, root, require_rootpw)


def redact_template(xml: str) -> str:
    """`xml` with the content of every ``<rootpw>`` and ``<key>`` replaced by `REDACTED`.

    Everything else is kept byte for byte. Look-alikes inside comments or CDATA are masked too,
    since they are secrets just as well; an unclosed element is masked to the end of the text.
    """
    return _SECRET_ELEMENT.sub(r"\g<open>" + REDACTED + r"\g<close>", xml)


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
    root = _parse_xml(xml, "ICICLE")
    if root.tag != "icicle":
        raise _error("ICICLE", f"root element must be <icicle>, not <{root.tag}>", root)
    pairs: list[tuple[str, str | None]] = []
    for package in root.iterfind("packages/package"):
        name = package.get("name")
        if not name:
            raise _error("ICICLE", "element <package> is missing attribute name", package)
        extra = package.find("extra")
        pairs.append((name, None if extra is None else _string(extra)))
    return pairs


# -- safe XML -----------------------------------------------------------------------------------
# The prolog (XML declaration, comments, processing instructions, white space) is the only place
# a DOCTYPE may stand, so skipping it finds one before the parser ever sees it.
_PROLOG = re.compile(r"\ufeff?(?:\s|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


def _template_text(text: str | bytes, max_bytes: int) -> str:
    """The template as text, after the checks that need no parsing: type, size, encoding, shape."""
    if isinstance(text, bytes):
        too_large = len(text) > max_bytes
    elif isinstance(text, str):
        too_large = len(text) > max_bytes or len(_encode(text)) > max_bytes
    else:
        raise TemplateError(NOT_XML_TEXT)
    if too_large:
        raise TemplateError(f"template is larger than the limit of {max_bytes} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TemplateError(f"template is not UTF-8 text: {error}") from error
    start = text.lstrip("\ufeff").lstrip()
    if not start:
        raise TemplateError("template is empty: expected TDL XML text")
    if not start.startswith("<"):
        raise TemplateError(NOT_XML_TEXT)
    return text


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TemplateError(f"template is not valid Unicode text: {error}") from error


def _parse_xml(text: str, label: str) -> etree._Element:
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
        return etree.fromstring(_encode(text), parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        message = error.msg.removesuffix(f", line {line}, column {column}")
        raise TemplateError(
            f"{label} is not well-formed XML: {message} (line {line})", line=line
        ) from error


# -- schema validation --------------------------------------------------------------------------
_RNG = "{http://relaxng.org/ns/structure/1.0}"
_EXPECTED = "{urn:imagefactory:tdl-schema}expected"
_ROOT = ("template",)
# A validator keeps its error log on itself, so one validation at a time reads its own errors.
_VALIDATION_LOCK = threading.Lock()


@cache
def _grammar() -> etree._Element:
    schema = resources.files(__package__).joinpath("schemas/tdl.rng").read_bytes()
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


def _validate(root: etree._Element) -> None:
    with _VALIDATION_LOCK:
        problem = _problem(root, _ROOT)
    if problem is not None:
        raise problem


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
    """A copy of `element` whose child elements are empty; names, lines and text stay."""
    shell = etree.Element(element.tag, dict(element.attrib))
    shell.text, shell.sourceline = element.text, element.sourceline
    for child in element:
        if isinstance(child.tag, str):
            hollow = etree.SubElement(shell, child.tag)
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
    entries = [(node, entry) for entry in validator.error_log for node in _nodes(document, entry)]
    if not entries:
        return document, validator.error_log[0]
    return max(entries, key=lambda pair: _depth(pair[0]))


def _nodes(document: etree._Element, entry: etree._LogEntry) -> list[etree._Element]:
    """The elements an error log entry is about."""
    if not entry.path:
        return []
    try:
        found = document.getroottree().xpath(entry.path)
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
    return _error("TDL", f"element <{node.tag}> {placement} <{parent.tag}>", node)


def _own_problem(
    node: etree._Element, entry: etree._LogEntry, path: tuple[str, ...]
) -> TemplateError:
    """Say what libxml2 found wrong with `node` itself: its name, value, attributes or content."""
    pattern = _patterns()[path]
    missing = [name for name in _required(pattern, "element") if node.find(name) is None]
    # Only the root can be misnamed: every other node's path was made from its own tag.
    if node.tag != path[-1]:
        message = f"root element must be <{path[-1]}>, not <{node.tag}>"
    elif entry.type_name in ("RELAXNG_ERR_VALUE", "RELAXNG_ERR_DATATYPE"):
        message = f"invalid value {_string(node).strip()!r} in <{node.tag}>{_expected(pattern)}"
    elif attribute_problem := _attribute_problem(node, pattern, entry):
        message = attribute_problem
    elif _has_stray_text(node, pattern):
        message = f"text not allowed in <{node.tag}>"
    elif missing:
        message = f"element <{node.tag}> is missing <{missing[0]}>"
    else:
        message = f"element <{node.tag}> is not valid: {entry.message.strip()}"
    return _error("TDL", message, node)


def _attribute_problem(
    node: etree._Element, pattern: etree._Element, entry: etree._LogEntry
) -> str | None:
    declared = {a.get("name"): a for a in _content(pattern) if a.tag == f"{_RNG}attribute"}
    for name in _required(pattern, "attribute"):
        if node.get(name) is None:
            return f"element <{node.tag}> is missing attribute {name}"
    for name, value in node.attrib.items():
        if name not in declared:
            return f"attribute {name} not allowed on <{node.tag}>"
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


# -- TDL's own rules ----------------------------------------------------------------------------
_CHECKSUMS = ("md5sum", "sha1sum", "sha256sum")
_INSTALL_CHILDREN = {"url": {"url"}, "iso": {"iso", "extras", *_CHECKSUMS}}
_SIZE = re.compile(r"([0-9]*)\s*([kmgtpezy]?)(i?)(b?)", re.IGNORECASE)
_SIZE_PREFIXES = "kmgtpezy"


def _template(xml: str, root: etree._Element, require_rootpw: bool) -> Template:
    _check_version(root)
    os_spec = _os_spec(root.find("os"))
    if require_rootpw and not os_spec.rootpw:
        raise _error(
            "TDL", "element <os> is missing <rootpw>, which this service requires", root.find("os")
        )
    return Template(
        xml=xml,
        name=_text(root, "name"),
        os=os_spec,
        description=_text(root, "description"),
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
        raise _error("TDL", f"template version {version!r} is not a number", root) from None
    if number > SUPPORTED_VERSION:
        raise _error(
            "TDL", f"template version {version} is not supported (the highest is 1.0)", root
        )


def _os_spec(os_element: etree._Element) -> OSSpec:
    install = os_element.find("install")
    install_type = _token(install, "type")
    _check_install(install, install_type)
    checksum = next(install.iterchildren(*_CHECKSUMS), None)
    return OSSpec(
        name=_text(os_element, "name"),
        version=_text(os_element, "version"),
        arch=_text(os_element, "arch"),
        install_type=install_type,
        install_url=_text(install, install_type),
        checksum_type=None if checksum is None else checksum.tag,
        checksum_url=None if checksum is None else _string(checksum).strip(),
        rootpw=_text(os_element, "rootpw"),
        key=_text(os_element, "key"),
        kernelparam=_text(os_element, "kernelparam"),
        icicle_extra_command=_text(os_element, "icicle/extra_command"),
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
            raise _error("TDL", message, child)
    if install.find(install_type) is None:
        message = f'element <install type="{install_type}"> is missing <{install_type}>'
        raise _error("TDL", message, install)
    checksums = list(install.iterchildren(*_CHECKSUMS))
    if len(checksums) > 1:
        found = ", ".join(f"<{checksum.tag}>" for checksum in checksums)
        message = f"element <install> may have at most one checksum, found {found}"
        raise _error("TDL", message, checksums[1])


def _package(element: etree._Element) -> Package:
    return Package(
        name=element.get("name"),
        repository=_text(element, "repository"),
        file=_text(element, "file"),
        arguments=_text(element, "arguments"),
    )


def _file(element: etree._Element) -> File:
    name = element.get("name")
    if not name.startswith("/") or ".." in name.split("/"):
        raise _error("TDL", f'file name "{name}" must be an absolute path without ".."', element)
    file = File(name=name, type=_token(element, "type", "raw"), content=_string(element))
    if file.type == "base64":
        _base64_content(file.content, element)
    elif file.type == "url" and not file.content.strip():
        raise _error("TDL", f'<file name="{name}" type="url"> names no URL', element)
    return file


def _commands(parent: etree._Element | None) -> tuple[Command, ...]:
    """The commands of `parent` in execution order: by position when given, else as written."""
    if parent is None:
        return ()
    elements = parent.findall("command")
    unpositioned = [element for element in elements if element.get("position") is None]
    if unpositioned and len(unpositioned) < len(elements):
        message = f"either every <command> in <{parent.tag}> has a position or none does"
        raise _error("TDL", message, unpositioned[0])
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
            raise _error("TDL", message, element)
        seen.add(command.position)
    return tuple(sorted(commands, key=lambda command: command.position))


def _command(element: etree._Element) -> Command:
    name = element.get("name")
    kind = _token(element, "type", "raw")
    body = _string(element)
    if kind == "base64":
        try:
            body = _base64_content(body, element).decode("utf-8")
        except UnicodeDecodeError:
            raise _error("TDL", f'<command name="{name}"> is not UTF-8 text', element) from None
    elif kind == "url":
        body = body.strip()
    if not body.strip():
        raise _error("TDL", f'<command name="{name}"> has an empty body', element)
    position = element.get("position")
    return Command(name, body, kind, None if position is None else int(position))


def _repository(element: etree._Element) -> Repository:
    return Repository(
        name=element.get("name"),
        url=_text(element, "url"),
        signed=_flag(element, "signed", default=False),
        persisted=_flag(element, "persisted", default=True),
        sslverify=_flag(element, "sslverify", default=False),
    )


def _flag(parent: etree._Element, tag: str, *, default: bool) -> bool:
    value = _text(parent, tag)
    return default if value is None else value.lower() in ("true", "yes")


def _disk_size(element: etree._Element | None) -> int | None:
    """Bytes for a TDL disk size: no unit means GiB; G/Gi/GiB are binary, GB is decimal."""
    if element is None:
        return None
    text = _string(element).strip()
    number, prefix, binary, byte = _SIZE.fullmatch(text).groups()
    if not number or (binary and not prefix):
        raise _error("TDL", f"invalid disk size {text!r}", element)
    if not prefix:
        size = int(number) * (1 if byte else 2**30)
    else:
        exponent = _SIZE_PREFIXES.index(prefix.lower()) + 1
        decimal = byte and not binary
        size = int(number) * (1000**exponent if decimal else 1024**exponent)
    if size == 0:
        raise _error("TDL", "disk size must be greater than zero", element)
    return size


# -- helpers ------------------------------------------------------------------------------------
_SECRET_ELEMENT = re.compile(
    r"(?P<open><(?P<tag>rootpw|key)(?:\s[^<>]*)?(?<!/)>)"
    r"(?:<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|.)*?"
    r"(?P<close></(?P=tag)\s*>|\Z)",
    re.DOTALL,
)


def _string(element: etree._Element) -> str:
    """The element's text as XPath sees it: text and CDATA of all descendants, no comments."""
    return str(element.xpath("string()"))


def _token(element: etree._Element, attribute: str, default: str = "") -> str:
    """An enumerated attribute's value; the schema compares such values with spaces trimmed."""
    return element.get(attribute, default).strip()


def _text(parent: etree._Element, path: str) -> str | None:
    """The stripped text of the optional child at `path`, or None when there is none."""
    child = parent.find(path)
    return None if child is None else _string(child).strip()


def _decode_base64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


def _base64_content(text: str, element: etree._Element) -> bytes:
    try:
        return _decode_base64(text)
    except binascii.Error as error:
        message = f'<{element.tag} name="{element.get("name")}"> is not valid base64: {error}'
        raise _error("TDL", message, element) from None


def _error(label: str, message: str, element: etree._Element) -> TemplateError:
    line = element.sourceline
    where = f" (line {line})" if line else ""
    return TemplateError(f"{label} invalid: {message}{where}", line=line, element=element.tag)
