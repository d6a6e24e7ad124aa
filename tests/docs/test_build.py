"""The documentation site builds with warnings as errors (a page in no toctree, a broken link,
a docstring or a reference the build cannot render all fail it), and its REST reference renders
every operation of the OpenAPI document the service serves."""

from __future__ import annotations

import html
import re
import subprocess
import time
from pathlib import Path

import pytest
from imagefactory_core.api.openapi import document
from imagefactory_core.plugins import load_plugins

REPO = Path(__file__).resolve().parents[2]
SPHINX_BUILD = REPO / ".venv" / "bin" / "sphinx-build"
METHODS = ("get", "head", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-html")
    started = time.monotonic()
    result = subprocess.run([str(SPHINX_BUILD), "-W", "--keep-going", "-q", "-b", "html",
                             str(REPO / "docs"), str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    print(f"sphinx-build took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr[-6000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_the_site_builds_without_warnings(site: Path) -> None:
    assert (site / "index.html").is_file()
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    sources = {p.relative_to(REPO / "docs").with_suffix(".html").as_posix()
               for p in (REPO / "docs").rglob("*") if p.suffix in (".md", ".rst")
               and "_build" not in p.parts}
    assert sources <= pages


def test_the_rest_reference_renders_every_operation(site: Path) -> None:
    text = _text(site / "rest-reference.html")
    spec = document(load_plugins())
    missing = [f"{method.upper()} {path}" for path, item in spec["paths"].items()
               for method in item if method in METHODS
               if f"{method.upper()} {path}¶" not in text]
    assert not missing


def test_the_rest_reference_lists_the_plugins_parameters(site: Path) -> None:
    text = _text(site / "rest-reference.html")
    declared = document(load_plugins())["components"]["schemas"]["ImageRequest"][
        "properties"]["parameters"]["properties"]
    assert declared and all(name in text for name in declared)
