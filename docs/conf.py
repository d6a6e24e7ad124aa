"""Sphinx configuration: the Markdown pages in docs/ (MyST), the furo theme, and the REST
reference rendered from the service's own OpenAPI document (`_ext/imagefactory_openapi.py`).

Build with `nox -s docs`, or `.venv/bin/sphinx-build -W --keep-going -b html docs <outdir>`.
Warnings are errors there: a page outside every toctree, a broken link or a directive the
reference cannot render fails the build (tests/docs/test_build.py).
"""

import sys
from pathlib import Path

from imagefactory_core import __version__

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "imagefactory"
author = "The imagefactory developers"
copyright = "the imagefactory developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "imagefactory_openapi",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "requirements.txt"]

# ::: fences for the curl/HTTPie tabs; heading anchors for links such as operators.md#configuration
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# The plugin API reference: the public module only, in source order; its docstrings are
# Google style ("Attributes:"), read by napoleon.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "furo"
html_title = f"imagefactory {release}"
