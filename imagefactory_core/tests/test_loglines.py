"""Log records whose arguments a client controls stay one line (imagefactory_core.loglines)."""

from __future__ import annotations

import io
import logging

import pytest
from imagefactory_core.loglines import OneLineArgs, one_line


@pytest.mark.parametrize(("text", "shown"), [
    ("/a\nb", "/a\\nb"),
    ("/a\r\nb", "/a\\r\\nb"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("a\u2028b\x85c", "a\\u2028b\\x85c"),
    ("café /ok", "café /ok"),
])
def test_control_characters_are_escaped(text: str, shown: str) -> None:
    assert one_line(text) == shown


def logged(message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(OneLineArgs())
    logger = logging.getLogger("test_loglines")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_arguments_are_escaped_and_the_format_keeps_its_lines() -> None:
    out = logged("refused %s\nnext line %d", "/x\nINFO forged", 7)
    assert out == "refused /x\\nINFO forged\nnext line 7\n"


def test_exceptions_as_arguments_are_escaped() -> None:
    assert logged("failed: %s", ValueError("a\nb")) == "failed: a\\nb\n"


def test_mapping_arguments_are_escaped_in_place() -> None:
    """gunicorn's access log passes a dict subclass; it keeps its class."""

    class Atoms(dict):
        pass

    atoms = Atoms({"r": "GET /a\nb HTTP/1.1", "s": 200})
    assert logged("%(r)s %(s)s", atoms) == "GET /a\\nb HTTP/1.1 200\n"
