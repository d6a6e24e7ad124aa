"""The audit runs against real `imagefactory serve` processes (tests/server/conftest.py)."""

from tests.server.conftest import servers  # noqa: F401  (the fixture, shared)
