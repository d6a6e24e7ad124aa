"""The curl and HTTPie examples of the Markdown pages in docs/, with the answers shown for them.

A page's fenced ``sh`` blocks that start with ``curl`` or ``http`` are examples: one command
each. The first ``json`` or ``text`` block after one or more examples, before the next example
or heading, is the answer those examples get. ``sh`` blocks that write a file with a here
document (``cat > web.tdl <<'TDL'``) make the files later examples read; they run first.

`matches_shape` compares an answer with the one shown: JSON by its keys and structure, text by
its status line and header names (``curl -I``) or by the form of its lines' first word (a build
log's times).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

DOCS = Path(__file__).resolve().parents[2] / "docs"
BASE_URL = "http://localhost:8075"
CLIENTS = {"curl": "curl", "http": "HTTPie"}
_FILE_WRITER = re.compile(r"cat > (\S+) <<'?(\w+)'?\n")


@dataclass(frozen=True)
class Answer:
    language: str
    text: str


@dataclass
class Example:
    page: str
    line: int
    command: str
    answer: Answer | None = field(default=None, compare=False)

    @property
    def client(self) -> str:
        """``curl`` or ``HTTPie``."""
        return CLIENTS[self.command.split(None, 1)[0]]

    @property
    def output_file(self) -> str | None:
        """The file a download example writes (``-o`` / ``--output``), if any."""
        words = shlex.split(self.command.replace("\\\n", " "))
        for flag in ("-o", "--output"):
            if flag in words:
                return words[words.index(flag) + 1]
        return None

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.client})"


@dataclass
class Page:
    name: str
    setup: list[str]
    examples: list[Example]


def read_page(path: Path) -> Page:
    name = str(path.relative_to(DOCS))
    setup: list[str] = []
    examples: list[Example] = []
    waiting: list[Example] = []
    for token in MarkdownIt("commonmark").parse(path.read_text()):
        if token.type == "heading_open":
            waiting = []
        if token.type != "fence":
            continue
        language = token.info.strip()
        first_word = token.content.split(None, 1)[0] if token.content.strip() else ""
        if language == "sh" and first_word in CLIENTS:
            example = Example(name, token.map[0] + 2 if token.map else 0, token.content.strip())
            examples.append(example)
            waiting.append(example)
        elif language == "sh" and _FILE_WRITER.match(token.content):
            setup.append(token.content)
        elif language in ("json", "text") and waiting:
            for example in waiting:
                example.answer = Answer(language, token.content)
            waiting = []
    return Page(name, setup, examples)


def read_docs() -> list[Page]:
    """Every page of docs/, in a stable order: the quick start first, as a reader would."""
    paths = sorted(DOCS.rglob("*.md"), key=lambda p: (p.name != "quickstart.md", str(p)))
    return [read_page(path) for path in paths if "_build" not in path.parts]


# -- comparing answers --------------------------------------------------------------------------
def _json_shape(shown: Any, got: Any, where: str) -> list[str]:
    """What `got` lacks of `shown`'s structure: the same containers, every key shown; the
    first item of a list is compared when both have one. Scalars may differ (ids, times)."""
    if isinstance(shown, dict):
        if not isinstance(got, dict):
            return [f"{where}: an object was shown, got {type(got).__name__}"]
        problems = [f"{where}: no key {key!r}" for key in shown if key not in got]
        for key in shown.keys() & got.keys():
            problems += _json_shape(shown[key], got[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(got, list):
            return [f"{where}: a list was shown, got {type(got).__name__}"]
        if shown and got:
            return _json_shape(shown[0], got[0], f"{where}[0]")
    return []


def _first_word_form(line: str) -> str:
    """A line's first word with its digits generalised: ``21:53:48`` → ``\\d\\d:\\d\\d:\\d\\d``."""
    return re.sub(r"\d", r"\\d", re.escape(line.split(" ", 1)[0]))


def _text_shape(shown: str, got: str) -> list[str]:
    shown_lines = [line for line in shown.splitlines() if line.strip()]
    got_lines = [line.rstrip("\r") for line in got.splitlines() if line.strip()]
    if not got_lines:
        return ["the answer is empty"]
    if shown_lines[0].startswith("HTTP/"):
        status = shown_lines[0].split()[1]
        problems = [] if got_lines[0].split()[1:2] == [status] else [
            f"status line {got_lines[0]!r}, shown {shown_lines[0]!r}"]
        got_headers = {line.split(":", 1)[0].lower() for line in got_lines[1:] if ":" in line}
        return problems + [f"no header {line.split(':', 1)[0]}" for line in shown_lines[1:]
                           if line.split(":", 1)[0].lower() not in got_headers]
    form = re.compile(_first_word_form(shown_lines[0]))
    return [f"line {line!r} does not start like {shown_lines[0]!r}" for line in got_lines
            if not form.fullmatch(line.split(" ", 1)[0])]


def matches_shape(answer: Answer, output: str) -> list[str]:
    """What is wrong with `output` given the `answer` shown ([] when nothing)."""
    if answer.language == "json":
        try:
            got = json.loads(output)
        except json.JSONDecodeError as exc:
            return [f"not JSON ({exc}): {output[:200]!r}"]
        return _json_shape(json.loads(answer.text), got, "answer")
    return _text_shape(answer.text, output)
