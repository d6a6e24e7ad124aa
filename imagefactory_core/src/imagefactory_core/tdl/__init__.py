"""TDL templates: safe parsing, RELAX NG validation and Oz's semantic rules.

`parse_template` is the one way from template text to the frozen dataclasses plugins receive,
in four steps, one module each: `safexml` checks the text and parses it as hostile input (no
DOCTYPE, no entities, no network), `schema` validates it against ``schemas/tdl.rng`` and names
the element at fault, `rules` applies the rules a schema cannot express and builds the `model`.
`redact_template` hides ``<rootpw>`` and ``<key>`` for anything shown to people; the ICICLE
helpers give every OS plugin one way to write and read the package manifest.
"""

from __future__ import annotations

from ..redaction import REDACTED
from .icicle import build_icicle, parse_icicle
from .model import Command, File, InstallExtra, OSSpec, Package, Repository, Template
from .redaction import redact_template
from .rules import build_template
from .safexml import parse_xml, xml_text
from .schema import validate

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


def parse_template(
    text: str | bytes, *, require_rootpw: bool = False, max_bytes: int = MAX_TEMPLATE_BYTES
) -> Template:
    """Parse and validate TDL `text` into a `Template`.

    `text` is a str, or bytes in the encoding their byte order mark or XML declaration names
    (UTF-8 when neither does). Raises `TemplateError` with a message naming the element and line
    when the text is not XML, too large, not well-formed, not valid against the schema or breaks
    one of TDL's rules. `require_rootpw` makes ``<rootpw>`` mandatory (the service's
    ``tdl_require_root_pw``).
    """
    xml = xml_text(text, what="template", kind="TDL XML text", max_bytes=max_bytes)
    root = parse_xml(xml, "TDL")
    validate(root)
    return build_template(xml, root, require_rootpw)
