"""What every fuzz test shares: the bounds that keep a run deterministic and short, and the
strategies for hostile text.

Every run draws the same examples (``derandomize``) and writes no example database, so CI is
deterministic and the working tree stays clean; a failure is reproduced by running the test
again. ``deadline`` is off because a loaded 2-core machine makes per-example timings noise; a
hang is caught by the per-test timeout (pytest-timeout) instead.
"""

from __future__ import annotations

import codecs

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

HANG_SECONDS = 300
"""pytest-timeout for one fuzz test: far above its normal run, so only a hang reaches it."""


def bounded(max_examples: int) -> settings:
    """Hypothesis settings for a CI run of `max_examples` examples."""
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# Characters lxml accepts in element text and attribute values (XML 1.0 "Char" less the C0
# controls), so generated trees always serialize; controls are tried by the raw-text strategies.
XML_CHARS = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff") \
    | st.sampled_from("\t\n\r")

# Pieces of markup that parsers treat specially: the raw-text strategies glue them together.
MARKUP = ["<", ">", "&", ";", "'", '"', "=", "/", "?", "!", "]]>", "<![CDATA[", "<!--", "-->",
          "<?xml version='1.0'?>", "<?xml version='1.0' encoding='UTF-16'?>",
          "<?xml version='1.0' encoding='latin-1'?>", "<?pi x?>", "<!DOCTYPE t>",
          '<!DOCTYPE t [<!ENTITY e "x">]>', '<!ENTITY x SYSTEM "file:///etc/passwd">', "&e;",
          "&amp;", "&#0;", "&#x10FFFF;", "&#xD800;", "&#65;", "\ufeff", "\x00", "\x1b", "\r\n",
          "<template>", "</template>", "<os>", "</os>", "<name>", "</name>",
          "xmlns='urn:x'", "xml:lang='en'"]

CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
          "utf-32-be", "latin-1", "cp1252", "utf-7", "shift_jis", "ascii"]
BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
        codecs.BOM_UTF32_BE]


def markup_text() -> st.SearchStrategy[str]:
    """Text made of markup fragments and arbitrary characters: mostly not well-formed XML."""
    piece = st.sampled_from(MARKUP) | st.text(max_size=12)
    return st.lists(piece, max_size=30).map("".join)


@st.composite
def encoded(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """`text` as bytes in some codec, behind some byte order mark (which may not match it)."""
    codec = draw(st.sampled_from(CODECS))
    return draw(st.sampled_from(BOMS)) + draw(text).encode(codec, errors="replace")
