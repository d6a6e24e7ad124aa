"""Each shipped plugin's documented parameters are its declarations: the tables in
docs/plugins/ are generated from them and must not drift."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_committed_parameter_tables_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_plugin_docs.py"),
                             "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, (f"{result.stderr}\nrun scripts/gen_plugin_docs.py and "
                                    "commit docs/plugins/")


def test_the_check_sees_a_stale_table(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_plugin_docs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for name in gen_plugin_docs.SHIPPED.values():
        page = (ROOT / "docs" / "plugins" / name).read_text()
        begin = gen_plugin_docs.BEGIN + "\n"
        (tmp_path / name).write_text(page.replace(begin, begin + "| stale row |\n"))
    monkeypatch.setattr(gen_plugin_docs, "DOCS", tmp_path)
    assert all(text != (tmp_path / path.name).read_text()
               for path, text in gen_plugin_docs.pages().items())
