"""Fixtures of the debian plugin's tests: one real bookworm image per session.

The package and JEOS caches live in the repository's ``shared_cache_dir``, so a session on a
machine that ran one before downloads nothing and reuses the JEOS tree.
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from debian_plugin_testing import URL_CONTENT, Build, build, session_tdl


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``/url.txt``, for ``type='url'`` files."""
    root = tmp_path_factory.mktemp("served")
    (root / "url.txt").write_bytes(URL_CONTENT)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def image(shared_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory,
          file_server: str) -> Build:
    """THE real image of this session: bookworm with repositories, precommands, packages,
    files of all three types and commands. Tests must not modify its disk."""
    # The file server is on the host's loopback: the operator allows the sandbox to reach it.
    return build(tmp_path_factory.mktemp("image"), shared_cache_dir, session_tdl(file_server),
                 egress_allow=(file_server,))


