"""Fifty build requests at once against a real server with ``max_concurrent_local_sessions=2``:
never more than two builds run, all end COMPLETE, and they start in the order the service
queued them.

What ran when is read from FakeOS's own records (a start and an end line per build, with a
monotonic timestamp, written by the plugin in the server process), not from the API. Every
build is held at a gate until the test lets it go, one at a time, so exactly one build slot
frees at each step: had the engine run a third build, its start would be recorded while two
others were still held. The order the service queued the requests is the order of their
PENDING callbacks at one receiver (the service notifies one receiver in the order the statuses
changed, and a request is queued in the same step that makes it PENDING).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.plugins.gate import Gate, Record
from tests.receivers import Receiver
from tests.rest.conftest import fake_tdl

from .conftest import ServerProcess, wait_until

pytestmark = pytest.mark.slow

REQUESTS = 50
SLOTS = 2


def most_at_once(records: list[Record]) -> int:
    running = peak = 0
    for record in sorted(records, key=lambda r: (r.ns, r.event == "start")):
        running += 1 if record.event == "start" else -1
        peak = max(peak, running)
    return peak


def test_fifty_requests_at_once_run_two_at_a_time_in_order(servers, gate, receiver):
    server: ServerProcess = servers(max_concurrent_local_sessions=SLOTS, server_threads=8,
                                    outbound_allow=["127.0.0.1"]).start()
    parameters = {**gate.parameter(), "callbacks": [receiver.url("/order")]}

    def post(name: str) -> str:
        return str(server.post("/base_images", {"base_image": {
            "template": fake_tdl(name), "parameters": parameters}})["id"])

    # one slot taken first: from then on, each release frees exactly one slot, so which
    # build starts next is the queue's decision alone
    blocker = post("blocker")
    gate.wait_held(blocker)
    start = threading.Barrier(REQUESTS)

    def post_at_once(n: int) -> str:
        start.wait()
        return post(f"build-{n}")

    with ThreadPoolExecutor(REQUESTS) as clients:
        ids = list(clients.map(post_at_once, range(REQUESTS)))
    assert len(set(ids)) == REQUESTS

    released: list[str] = []
    for _ in range(REQUESTS + 1):
        next_one = first_held(gate, released, min(SLOTS, REQUESTS + 1 - len(released)))
        gate.release(next_one)
        released.append(next_one)

    for image_id in [blocker, *ids]:
        done = server.wait_for(f"/base_images/{image_id}")
        assert done["status"] == "COMPLETE", done["status_detail"]

    records = gate.records()
    assert len(records) == 2 * (REQUESTS + 1)
    assert most_at_once(records) == SLOTS
    started = [r.image_id for r in records if r.event == "start"]
    receiver.wait_for("PENDING", "/order")
    wait_until(lambda: len(pending_order(receiver)) == REQUESTS + 1, 60,
               "every PENDING callback")
    assert started == pending_order(receiver)


def first_held(gate: Gate, released: list[str], expected: int) -> str:
    """Once `expected` builds not yet `released` are held, the one that started first."""

    def held() -> list[str] | None:
        running = [name.rsplit(".", 1)[0] for name in gate.running()]
        assert len(running) <= SLOTS, running
        waiting = [i for i in running if i not in released]
        return waiting if len(waiting) == expected else None

    return str(wait_until(held, 60, "the next build to be held")[0])


def pending_order(receiver: Receiver) -> list[str]:
    """The ids of the images in the order their PENDING callbacks arrived."""
    with receiver.lock:
        documents = [r["document"]["base_image"] for r in receiver.requests]
    return [d["id"] for d in documents if d["status"] == "PENDING"]


def test_most_at_once_counts_overlaps() -> None:
    def record(event: str, image_id: str, ns: int) -> Record:
        return Record(event, image_id, "build", ns)

    assert most_at_once([record("start", "a", 1), record("end", "a", 2),
                         record("start", "b", 2), record("end", "b", 3)]) == 1
    assert most_at_once([record("start", "a", 1), record("start", "b", 2),
                         record("start", "c", 3), record("end", "a", 4),
                         record("end", "b", 5), record("end", "c", 6)]) == 3
