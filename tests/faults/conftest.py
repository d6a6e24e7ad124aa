"""The fault rig: one real `imagefactory serve` process, restarted on the same state directory
after each crash, and the checks every fault must pass afterwards (`Rig.check`).

The state directory is a small loop-mounted filesystem, laid out as by default: the database,
the work directories and the image storage share it, so a build that fills the disk also
leaves no room for the database's writes until the service frees it."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import ServerProcess, wait_until

from . import processes
from .loopfs import loop_devices_for, loop_mounted, mounts_under

FINAL = ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED")
STATE_MIB = 64
# a receiver that never answers holds a delivery this long per attempt
CALLBACK_TIMEOUT = 10.0
SETTLE_TIMEOUT = 60.0
TEMPORARY = re.compile(r"tmp.*|.*\.(tmp|part|partial)|\.#.*|.*~", re.IGNORECASE)

FAULT_TDL = """<template>
  <name>{name}</name>
  <os>
    <name>FaultOS</name>
    <version>1</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://127.0.0.1:9/faultos/</url></install>
  </os>
  <description>FaultOS 1</description>
</template>"""
CREDENTIALS = {"fault_credentials": {"username": "tester", "password": "any"}}


class Rig:
    """The server under test and what the tests made with it."""

    def __init__(self, root: Path, server_root: Path, token: str):
        self.root = root
        self.token = token
        self.server = ServerProcess(
            server_root,
            plugin_modules=["tests.faults.fault_os", "tests.faults.fault_cloud"],
            outbound_allow=["127.0.0.1"],
            callback_timeout=CALLBACK_TIMEOUT,
            callback_retries=1,
        )
        self.images: list[str] = []  # the path of every image the tests made
        self.state = self.server.state_dir  # the mounted filesystem
        self.storage = self.state / "storage"
        self.tmp = root / "tmp"  # the server's TMPDIR

    # -- making images ----------------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any]) -> str:
        image = self.server.post(path, body)
        made = f"/{path.rsplit('/', 1)[1]}/{image['id']}"  # the collection posted to
        self.images.append(made)
        return made

    def base(self, name: str, **parameters: Any) -> str:
        return self.post("/base_images", {"base_image": {
            "template": FAULT_TDL.format(name=name), "parameters": parameters}})

    def target(self, name: str) -> str:
        """A COMPLETE target image (and its base) to push."""
        path = self.post("/target_images", {"target_image": {
            "template": FAULT_TDL.format(name=name), "target": "faultcloud"}})
        self.images.append(f"/base_images/{self.server.get(path)['base_image_id']}")
        assert self.server.wait_for(path, FINAL)["status"] == "COMPLETE"
        return path

    def push(self, target: str, **parameters: Any) -> str:
        return self.post(f"{target}/provider_images", {"provider_image": {
            "provider": "fault-region", "credentials": CREDENTIALS,
            "parameters": parameters}})

    def command(self, image: str, what: str) -> processes.Process:
        """The command a fault plugin started for `image` (`what`: hang, push, delete …),
        once it runs."""
        pid_file = (Path(self.server.settings["cache_path"]) / "fault-pids"
                    / f"{image.rsplit('/', 1)[1]}-{what}")

        def started() -> processes.Process | None:
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                return None
            return processes.read(pid)

        return wait_until(started, 30, f"the {what} command of {image} to start")

    def log(self, image: str) -> str:
        answer = self.server.request("GET", f"{image}/log")
        assert answer.status_code == 200, answer.text
        return answer.text

    # -- the checks after every fault --------------------------------------------------------
    def check(self) -> dict[str, dict[str, Any]]:
        """The service answers, every image is final, the database is intact, and nothing
        leaked: no work or stray files, mounts, loop devices or processes. Returns each
        image as GET shows it."""
        answer = self.server.request("GET", "")
        assert answer.status_code == 200 and answer.json()["name"] == "imagefactory", answer.text
        for collection in ("base_images", "target_images", "provider_images"):
            assert self.server.request("GET", f"/{collection}").status_code == 200
        images = {path: self.server.wait_for(path, FINAL, SETTLE_TIMEOUT) for path in self.images}
        self._check_database()
        self._check_files(images)
        assert mounts_under(self.root) == [self.state], mounts_under(self.root)
        # the kernel detaches a loop device some time after its last unmount (autoclear)
        wait_until(lambda: len(loop_devices_for(self.root)) == 1, 10,
                   f"loop devices but the state directory's to go: {loop_devices_for(self.root)}")
        assert not self.strays(), self.strays()
        return images

    def _check_database(self) -> None:
        database = self.server.state_dir / "imagefactory.db"
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    def _check_files(self, images: dict[str, dict[str, Any]]) -> None:
        for scratch in (self.server.state_dir / "work", self.tmp):
            assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.iterdir())
        temporary = [path for path in self.server.state_dir.rglob("*")
                     if TEMPORARY.fullmatch(path.name)]
        assert not temporary, temporary
        by_id = {path.rsplit("/", 1)[1]: image for path, image in images.items()}
        for entry in self.storage.iterdir():
            image_id, _, kind = entry.name.partition(".")
            assert image_id in by_id and kind in ("body", "log"), f"stray file {entry}"
            if kind == "body":
                assert by_id[image_id]["status"] == "COMPLETE", \
                    f"{entry} kept for a {by_id[image_id]['status']} image"

    def strays(self) -> list[processes.Process]:
        """This run's processes other than the server (its master and worker)."""
        proc = self.server.proc
        master = proc.pid if proc is not None and proc.poll() is None else None
        return [p for p in processes.tagged(self.token) if master not in (p.pid, p.ppid)]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("faults")
    token = uuid.uuid4().hex
    (root / "tmp").mkdir()
    server_root = root / "server"
    with pytest.MonkeyPatch.context() as patch, \
            loop_mounted(root / "state.img", server_root / "state", STATE_MIB):
        patch.setenv(processes.TOKEN_VARIABLE, token)  # inherited by the server and its builds
        patch.setenv("TMPDIR", str(root / "tmp"))  # so temporary files it leaks are seen
        made = Rig(root, server_root, token)
        try:
            made.server.start()
            yield made
        finally:  # before the unmount: nothing of the run may hold the filesystem
            made.server.cleanup()
            processes.kill_tagged(token)
    assert mounts_under(root) == []
    wait_until(lambda: not loop_devices_for(root), 10, "the loop device to be detached")
