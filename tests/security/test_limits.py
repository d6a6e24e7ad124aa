"""A template that tries to exhaust the host hits the operator's sandbox limits: its build ends
(COMPLETE or FAILED with the reason) and the service stays up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
from imagefactory_core.sandbox import subordinate_ids

from tests.parallel_runs import processes_of_uids

from .conftest import build, build_log, command, make_app, tdl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory,
            shared_cache_dir: Path) -> Iterator[falcon.testing.TestClient]:
    app = make_app(tmp_path_factory.mktemp("limited"), shared_cache_dir,
                   sandbox_processes=64, sandbox_memory_mib=256)
    yield falcon.testing.TestClient(app)
    app.services.engine.shutdown(timeout=60)


def sandboxed_processes() -> list[int]:
    """Pids of host processes running as a sandbox's subordinate ids (but the builds a test on
    another xdist worker runs)."""
    ids = subordinate_ids()
    return processes_of_uids(ids.uid, ids.count)


def test_a_fork_bomb_stops_at_the_process_limit(limited):
    bomb = "timeout -s KILL 8 sh -c 'b() { b | b & }; b' 2>/dev/null; echo the bomb is over"
    result = limited.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": tdl("fork-bomb", command("bomb", bomb))}})
    href = f"/imagefactory/base_images/{result.json['base_image']['id']}"
    peak = 0
    while limited.simulate_get(href).json["base_image"]["status"] not in ("COMPLETE",
                                                                          "FAILED"):
        peak = max(peak, len(sandboxed_processes()))
        assert limited.simulate_get("/imagefactory").status_code == 200  # the service answers
        time.sleep(0.2)
    image = limited.simulate_get(href).json["base_image"]
    assert image["status"] == "COMPLETE", (image["status_detail"], build_log(limited, image))
    assert "the bomb is over" in build_log(limited, image)
    assert 0 < peak <= 64 + 4  # the cgroup's 64, and the sandbox's own helpers
    assert sandboxed_processes() == []


def test_a_memory_hog_is_killed_and_its_build_fails_with_the_reason(limited):
    hog = "head -c 1G /dev/zero | tail -c 1G > /dev/null"
    image = build(limited, tdl("memory-hog", command("hog", hog)))
    assert image["status"] == "FAILED"
    assert "command 'hog' failed" in image["status_detail"]["error"]
    assert "memory 256 MiB" in build_log(limited, image)
    again = build(limited, tdl("after-the-hog"))
    assert again["status"] == "COMPLETE", again["status_detail"]
