"""Real `imagefactory serve` processes on 127.0.0.1, with the test-only plugins of tests/plugins.

`ServerProcess` writes a config file, starts the daemon in its own process group, waits until it
answers, and can stop it with any signal and start it again on the same state directory and
port. Every process a test started is killed when the test ends, including the build commands
a SIGKILLed server leaves behind (they run in sessions of their own): the ones its jobs recorded
in its own work directories, so nothing another test run started is ever looked at.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import requests
from imagefactory_core.processes import kill_recorded_groups
from requests_oauthlib import OAuth1

REPO = Path(__file__).resolve().parents[2]
IMAGEFACTORY = REPO / ".venv" / "bin" / "imagefactory"
CLIENTS = {"client1": "our-secret"}
SETTLED = ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sign(**kwargs: Any) -> OAuth1:
    return OAuth1("client1", CLIENTS["client1"], **kwargs)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def serve_child(server: ServerProcess, *, builds: bool) -> int:
    """The pid of a child of `serve`: its build worker (it runs `worker --from-serve`) with
    `builds`, else the gunicorn worker that serves the API."""
    assert server.proc is not None
    pid = server.proc.pid
    return int(wait_until(lambda: next((child for child in children(pid)
                                        if ("--from-serve" in command_line(child)) == builds),
                                       None),
                          30, "serve's build worker" if builds else "serve's API worker"))


def build_worker(server: ServerProcess) -> int:
    return serve_child(server, builds=True)


def api_worker(server: ServerProcess) -> int:
    return serve_child(server, builds=False)


def start_together(processes: Sequence[Any]) -> None:
    """Start `processes` (each with a ``start()``) at the same moment, one thread each, and
    fail with what went wrong if any did not start."""
    failures: list[BaseException] = []

    def start(process: Any) -> None:
        try:
            process.start()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def kill_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group `proc` leads (started with ``start_new_session``) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


class ServerProcess:
    def __init__(self, root: Path, **settings: Any):
        self.root = root
        self.state_dir = root / "state"
        self.port = free_port()
        self.settings: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "cache_path": str(root / "cache"),
            "address": "127.0.0.1",
            "port": self.port,
            "no_ssl": True,
            "clients": CLIENTS,
            "plugin_modules": ["tests.plugins.fake_os", "tests.plugins.fake_cloud"],
            # installed plugins stay out: the service under test is the core alone
            "disabled_plugins": sorted({ep.name for ep in
                                        entry_points(group="imagefactory.plugins")}),
            "server_threads": 4,
            **settings,
        }
        self.config_file = root / "imagefactory.conf"
        self.log_file = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.session.auth = sign()
        # per request: a session's verify loses to REQUESTS_CA_BUNDLE from the environment
        self.verify: str | bool = True if self.settings["no_ssl"] else str(self.cert)

    @property
    def cert(self) -> Path:
        return self.state_dir / "tls" / "cert.pem"

    @property
    def url(self) -> str:
        scheme = "http" if self.settings["no_ssl"] else "https"
        return f"{scheme}://127.0.0.1:{self.port}/imagefactory"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> ServerProcess:
        self.config_file.write_text(json.dumps(self.settings))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("IMAGEFACTORY_CONFIG", None)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(IMAGEFACTORY), "serve", "--config", str(self.config_file)],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n"
                                     + self.log()[-4000:])
            if self.settings["no_ssl"] or self.cert.exists():
                try:
                    answer = self.request("GET", "", timeout=2)
                    if answer.status_code == 200:
                        return self
                except requests.RequestException:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer within {START_TIMEOUT} s:\n"
                                     + self.log()[-4000:])
            time.sleep(0.1)

    def signal(self, sig: int, timeout: float) -> float:
        """Send `sig` to the server (the gunicorn master); seconds until it exited."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit within {timeout} s after "
                                 f"{signal.Signals(sig).name}:\n{self.log()[-4000:]}") from None
        return time.monotonic() - started

    def kill_group(self) -> None:
        """SIGKILL the server's whole process group (master and worker), as a crash would."""
        assert self.proc is not None
        kill_process_group(self.proc)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kill_process_group(self.proc)
        self.session.close()

    # -- the API, through the signing session ------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("verify", self.verify)
        return self.session.request(method, self.url + path, **kwargs)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("POST", path, json=body)
        assert answer.status_code == 202, answer.text
        return dict(next(iter(answer.json().values())))

    def get(self, path: str) -> dict[str, Any]:
        answer = self.request("GET", path)
        assert answer.status_code == 200, answer.text
        return dict(next(iter(answer.json().values())))

    def wait_for(self, path: str, statuses: tuple[str, ...] = SETTLED,
                 timeout: float = 30.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def reached() -> bool:
            last.update(self.get(path))
            return last["status"] in statuses

        try:
            wait_until(reached, timeout, f"{path} to be {'/'.join(statuses)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {last.get('status')} "
                                 f"{last.get('status_detail')}") from None
        return last


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One default server for a test module (its tests share its images)."""
    process = ServerProcess(tmp_path_factory.mktemp("server"))
    try:
        yield process.start()
    finally:
        process.cleanup()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets a test opens; closed at its end."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Make `ServerProcess`es (not started); all are killed at the end of the test, with the
    build commands their jobs recorded."""
    made: list[ServerProcess] = []

    def make(**settings: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server{len(made)}", **settings)
        server.root.mkdir()
        made.append(server)
        return server

    yield make
    for server in made:
        server.cleanup()
        for workdir in (server.state_dir / "work").glob("*"):
            kill_recorded_groups(workdir)
