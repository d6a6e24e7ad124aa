"""The plugin template (templates/imagefactory-plugin) renders, for both kinds, into plugins
that are ruff clean, build for PyPI, install beside imagefactory-core, pass their own tests
and complete builds in a real `imagefactory serve`. The check is scripts/check_template.py,
which `nox -s template` runs too."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_template_makes_working_plugins_of_both_kinds():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_template.py")],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
