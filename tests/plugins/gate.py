"""Gates: a test holds a fake plugin's step (build, push, delete) until it lets it go, so tests
wait for events instead of guessing durations, and know their own processes.

Plugin side: `hold` runs, through ``ctx.run`` (so cancellation and restarts act on a real
process), a shell command that records its pid in ``<gate>/<image id>.<step>.pid`` and waits
until ``<gate>/<image id>.<step>.go`` or ``<gate>/all.go`` exists. Around it the plugin appends
``start``/``end`` lines with a monotonic timestamp to ``<gate>/records``.

Test side: `Gate` waits for those files and makes the ``go`` ones. Every process a gate held
wrote its pid into the gate's own directory (a temporary directory of one test) and has that
path on its command line, so a test checks or kills exactly its own processes, never another
run's on the same machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext

from tests.procfs import running

# $1 pid file, $2 this hold's go file, $3 the gate's go-for-all file
WAIT = ('echo $$ > "$1.new" && mv "$1.new" "$1"; '
        'while [ ! -e "$2" ] && [ ! -e "$3" ]; do sleep 0.05; done')
RECORDS = "records"


def hold(ctx: BuildContext, gate: str | None, step: str) -> None:
    """Hold `step` of the image `ctx` works on at `gate` (a directory), if one is given."""
    if not gate:
        return
    directory = Path(gate)
    name = f"{ctx.image_id}.{step}"
    _record(directory, "start", name)
    ctx.run(["sh", "-c", WAIT, "fake-gate", str(directory / f"{name}.pid"),
             str(directory / f"{name}.go"), str(directory / "all.go")])
    _record(directory, "end", name)


def _record(directory: Path, event: str, name: str) -> None:
    with (directory / RECORDS).open("a") as records:
        records.write(f"{event} {name} {time.monotonic_ns()}\n")


@dataclass(frozen=True)
class Record:
    event: str  # "start" or "end"
    image_id: str
    step: str
    ns: int  # time.monotonic_ns() in the server's process: comparable on one machine


class Gate:
    """The test's end of a gate directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __str__(self) -> str:
        return str(self.directory)

    def parameter(self) -> dict[str, Any]:
        """The request parameter that makes FakeOS and fakecloud hold at this gate."""
        return {"fake_gate": str(self.directory)}

    def pid(self, image_id: str, step: str = "build") -> int | None:
        """The pid of the command holding `image_id`'s `step`, once it runs."""
        try:
            return int((self.directory / f"{image_id}.{step}.pid").read_text())
        except (OSError, ValueError):
            return None

    def wait_held(self, image_id: str, step: str = "build", timeout: float = 60.0) -> int:
        """Wait until `image_id`'s `step` is held (its command runs); return its pid."""
        deadline = time.monotonic() + timeout
        while (pid := self.pid(image_id, step)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{image_id} {step} was not held within {timeout} s; "
                                     f"records: {self.records()}")
            time.sleep(0.02)
        return pid

    def release(self, image_id: str, step: str = "build") -> None:
        (self.directory / f"{image_id}.{step}.go").touch()

    def release_all(self) -> None:
        (self.directory / "all.go").touch()

    def records(self) -> list[Record]:
        try:
            lines = (self.directory / RECORDS).read_text().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            event, name, ns = line.split()
            image_id, step = name.rsplit(".", 1)
            found.append(Record(event, image_id, step, int(ns)))
        return found

    def running(self) -> list[str]:
        """`image id.step` of the holds started and not ended, in the order they started."""
        started: list[str] = []
        for record in self.records():
            name = f"{record.image_id}.{record.step}"
            if record.event == "start":
                started.append(name)
            else:
                started.remove(name)
        return started

    def alive(self, pid: int) -> bool:
        """Whether `pid` is still a live command of this gate (not a recycled pid)."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.directory).encode() in argv and running(pid)

    def alive_pids(self) -> list[int]:
        pids = []
        for pid_file in self.directory.glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pid_file.read_text()))
        return [pid for pid in pids if self.alive(pid)]

    def kill_all(self) -> None:
        """Kill what this gate's holds left running (a SIGKILLed server orphans them)."""
        for pid in self.alive_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
