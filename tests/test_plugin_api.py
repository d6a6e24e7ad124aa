"""The plugin API is one module: shipped plugins (and the test plugins written like third-party
ones) import `imagefactory_core.plugin` only, and their tests `imagefactory_core.testing` too.
Everything else in imagefactory-core is internal and free to change."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_CODE = sorted([*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("tests/plugins/*.py")])
PLUGIN_TESTS = sorted(ROOT.glob("plugins/*/tests/**/*.py"))


def core_imports(path: Path) -> list[str]:
    """Every imagefactory_core module `path` imports (``from imagefactory_core import x``
    counts as the package itself)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] == "imagefactory_core"]


def test_there_is_plugin_code_to_check():
    assert len(PLUGIN_CODE) > 30 and len(PLUGIN_TESTS) > 10


@pytest.mark.parametrize("path", PLUGIN_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_code_imports_only_the_public_module(path: Path):
    assert set(core_imports(path)) <= {"imagefactory_core.plugin"}, path


@pytest.mark.parametrize("path", PLUGIN_TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_tests_import_only_the_public_and_testing_modules(path: Path):
    assert set(core_imports(path)) <= {"imagefactory_core.plugin", "imagefactory_core.testing"}


def test_the_rule_catches_an_internal_import(tmp_path: Path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from imagefactory_core import hookimpl\n"
                      "import imagefactory_core.store.images\n"
                      "from imagefactory_core.plugin import Parameter\n")
    assert core_imports(sneaky) == ["imagefactory_core", "imagefactory_core.store.images",
                                    "imagefactory_core.plugin"]
