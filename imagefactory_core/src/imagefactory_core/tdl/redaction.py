"""Masking a template's secrets for anything shown to people.

``<rootpw>`` and ``<key>`` are found in the text itself, not in a parsed tree, so the masked text
keeps everything else byte for byte, and text that does not parse is masked just as well.
"""

from __future__ import annotations

import re

from ..redaction import REDACTED

_SECRET_ELEMENT = re.compile(
    r"(?P<open><(?P<tag>rootpw|key)(?:\s[^<>]*)?(?<!/)>)"
    r"(?:<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|.)*?"
    r"(?P<close></(?P=tag)\s*>|\Z)",
    re.DOTALL,
)


def redact_template(xml: str) -> str:
    """`xml` with the content of every ``<rootpw>`` and ``<key>`` replaced by `REDACTED`.

    Everything else is kept byte for byte. Look-alikes inside comments or CDATA are masked too,
    since they are secrets just as well; an unclosed element is masked to the end of the text.
    """
    return _SECRET_ELEMENT.sub(r"\g<open>" + REDACTED + r"\g<close>", xml)
