"""The hostile-input suite's fixtures: one real `imagefactory serve` on the default limits
(test-only plugins, so builds take no time), shared by the suite, and its memory as the kernel
counts it.

Every test ends by checking the server: it still answers, its worker is the same process (it
did not crash and was not restarted), the worker's peak resident memory (VmHWM) during the
test stayed within `MEMORY_GROWTH_MIB` of what it held when the test began, and what it holds
now within the same bound of what it held once started. The bound is below 100 MiB on
purpose: a server that read a 100 MB body into memory would break the first check, one that
kept what requests made would break the second. (The peak is reset before each test: measured
over the whole suite it added one request's transient peak to the suite's slow growth, and a
run failed where neither was near the bound.)
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.rest.conftest import fake_tdl
from tests.server.conftest import SETTLED, ServerProcess, api_worker, wait_until

MEMORY_GROWTH_MIB = 80
"""How far the worker's peak RSS may rise during a test above its RSS when the test began, and
its RSS above its RSS after start-up."""
SETTLE_SECONDS = 120.0


class Worker:
    """The gunicorn worker that runs the app (the server's child beside its build worker)."""

    def __init__(self, server: ServerProcess):
        assert server.proc is not None
        self.server = server
        self.pid = api_worker(server)
        self.started_kib = self.status_kib("VmRSS")
        self.test_began_kib = self.started_kib

    def status_kib(self, field: str) -> int:
        """A memory figure (VmRSS, VmHWM …) of the worker from /proc/<pid>/status, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def begin_test(self) -> None:
        """Reset the worker's peak RSS to its RSS now (clear_refs 5, Linux 4.0)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.test_began_kib = self.status_kib("VmRSS")

    def check(self) -> None:
        """The server answers, from the same worker, whose memory stayed bounded."""
        answer = self.server.request("GET", "", timeout=30)
        assert answer.status_code == 200, answer.text
        assert api_worker(self.server) == self.pid, \
            "the worker was replaced: it crashed or hung\n" + self.server.log()[-4000:]
        peak_mib = (self.status_kib("VmHWM") - self.test_began_kib) / 1024
        assert peak_mib <= MEMORY_GROWTH_MIB, (
            f"the worker's peak RSS rose {peak_mib:.0f} MiB during the test above its RSS when "
            f"the test began ({self.test_began_kib // 1024} MiB); the bound is "
            f"{MEMORY_GROWTH_MIB} MiB")
        kept_mib = (self.status_kib("VmRSS") - self.started_kib) / 1024
        assert kept_mib <= MEMORY_GROWTH_MIB, (
            f"the worker's RSS is {kept_mib:.0f} MiB above its start "
            f"({self.started_kib // 1024} MiB); the bound is {MEMORY_GROWTH_MIB} MiB")


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = ServerProcess(tmp_path_factory.mktemp("hostile"))
    try:
        started.start()
        # one ordinary build first, so the baseline holds what every build loads
        image = started.post("/base_images", {"base_image": {"template": fake_tdl("warm")}})
        assert started.wait_for(f"/base_images/{image['id']}")["status"] == "COMPLETE"
        yield started
        started.signal(15, timeout=60)  # SIGTERM: running builds are cancelled, then exit
    finally:
        started.cleanup()


@pytest.fixture(scope="package")
def worker(server: ServerProcess) -> Worker:
    return Worker(server)


@pytest.fixture(autouse=True)
def server_survives(worker: Worker) -> Iterator[None]:
    worker.begin_test()
    yield
    worker.check()


def assert_error(answer: requests.Response, status: int, *words: str) -> str:
    """`answer` is `status` with a JSON body a person can act on, naming `words`."""
    assert answer.status_code == status, (answer.status_code, answer.text[:2000])
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    body = answer.json()
    assert body["title"].strip() and body["description"].strip(), body
    for word in words:
        assert word.lower() in body["description"].lower(), (word, body["description"])
    return str(body["description"])


def post(server: ServerProcess, collection: str, body: bytes | str,
         content_type: str) -> requests.Response:
    return server.request("POST", f"/{collection}", data=body,
                          headers={"Content-Type": content_type})


def post_json(server: ServerProcess, collection: str, fields: dict[str, Any]) -> requests.Response:
    singular = collection.removesuffix("s")
    return post(server, collection, json.dumps({singular: fields}), "application/json")


def settled(server: ServerProcess, answer: requests.Response) -> dict[str, Any]:
    """The image a 202 created, once its build has ended."""
    assert answer.status_code == 202, answer.text[:2000]
    image = next(iter(answer.json().values()))
    collection = answer.headers["Location"].rsplit("/", 2)[-2]
    return server.wait_for(f"/{collection}/{image['id']}", SETTLED, timeout=SETTLE_SECONDS)


def raw_exchange(server: ServerProcess, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a hand-made request (which `requests` would refuse to make) and return the answer
    up to the end of its headers and body as far as the server sent it before closing or
    pausing. Sending stops, without error, once the server stops reading."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head)
        for chunk in body_chunks:
            try:
                connection.sendall(chunk)
            except OSError:  # the server answered and closed: it will not read the rest
                break
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def wait_for_log(server: ServerProcess, text: str) -> str:
    """The server log, once it contains `text` (log lines are written after the answer)."""
    return str(wait_until(lambda: text in server.log() and server.log(), 30,
                          f"{text!r} in the server log"))
