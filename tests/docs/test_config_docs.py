"""The configuration table of docs/operators.md is generated from `imagefactory_core.config`
and must not drift: every key, its type, default, limits and environment variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_config_docs.py"


def _generator():  # the script is not a package module
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gen_config_docs
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return gen_config_docs


def test_committed_table_is_current() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, f"{result.stderr}\nrun scripts/gen_config_docs.py and commit"


def test_every_key_has_a_row() -> None:
    generator = _generator()
    table = generator.table()
    for field in generator.config_keys():
        assert f"| `{field.name}` |" in table
        assert f"`IMAGEFACTORY_{field.name.upper()}`" in table


def test_the_check_sees_a_stale_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    page = generator.PAGE.read_text()
    stale = tmp_path / "operators.md"
    stale.write_text(page.replace("| `port` | integer | `8075` |", "| `port` | integer | `80` |"))
    monkeypatch.setattr(generator, "PAGE", stale)
    assert generator.render(stale.read_text()) != stale.read_text()


def test_a_key_without_a_meaning_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    monkeypatch.delitem(generator.MEANING, "port")
    with pytest.raises(SystemExit, match="port"):
        generator.table()
