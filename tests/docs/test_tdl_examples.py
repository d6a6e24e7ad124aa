"""Every TDL template shown in docs/ is one the service takes, and a template shown with an
error (an ``xml`` block followed by a ``text`` block) is refused with exactly that error."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagefactory_core.plugin import TemplateError, parse_template
from markdown_it import MarkdownIt

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _templates() -> list[tuple[str, str, str | None]]:
    """(where, template, the error shown after it or None) for every <template> block."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        fences = [t for t in MarkdownIt("commonmark").parse(page.read_text()) if t.type == "fence"]
        for index, fence in enumerate(fences):
            if fence.info.strip() == "xml" and fence.content.lstrip().startswith("<template"):
                after = fences[index + 1] if index + 1 < len(fences) else None
                error = after.content.strip() if after and after.info.strip() == "text" else None
                line = fence.map[0] + 1 if fence.map else 0
                found.append((f"{page.relative_to(DOCS)}:{line}", fence.content, error))
    return found


TEMPLATES = _templates()


def test_templates_were_found() -> None:
    assert sum(where.startswith("tdl.md") for where, _, _ in TEMPLATES) >= 5


@pytest.mark.parametrize(("where", "template", "error"), TEMPLATES,
                         ids=[where for where, _, _ in TEMPLATES])
def test_template_is_what_the_page_says(where: str, template: str, error: str | None) -> None:
    if error is None:
        parse_template(template)
    else:
        with pytest.raises(TemplateError) as refused:
            parse_template(template)
        assert str(refused.value) == error
