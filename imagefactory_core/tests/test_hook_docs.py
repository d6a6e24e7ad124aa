"""The hook reference (docs/hooks.md) is generated from hookspecs.py and must not drift."""

import inspect
import subprocess
import sys
from pathlib import Path

from imagefactory_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def test_every_hook_has_a_docstring_with_versionadded():
    hooks = [f for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if n.startswith("imagefactory_")]
    assert len(hooks) >= 8
    for hook in hooks:
        assert hook.__doc__ and "versionadded" in hook.__doc__, hook.__name__


def test_committed_hook_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_hook_docs.py"),
                             "--check"], check=False)
    assert result.returncode == 0, "docs/hooks.md is stale: run scripts/gen_hook_docs.py"
