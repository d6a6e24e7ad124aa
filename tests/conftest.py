"""Fixtures every test directory shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.gate import Gate
from tests.receivers import Receiver


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    """This test's gate (`tests.plugins.gate`); whatever it still holds is let go, and its
    commands killed, after the test."""
    made = Gate(tmp_path / "gate")
    yield made
    made.release_all()
    made.kill_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records the callbacks PUT to it."""
    started = Receiver()
    yield started
    started.close()
