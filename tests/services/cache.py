"""Caches shared by every test session on this machine (package downloads, JEOS trees).

Real builds download Debian packages once; later sessions reuse them. Override the location
with IMAGEFACTORY_TEST_CACHE.
"""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_cache_dir() -> Path:
    path = Path(os.environ.get("IMAGEFACTORY_TEST_CACHE", "/var/tmp/imagefactory-test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
