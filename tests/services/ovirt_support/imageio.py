"""The real ovirt-imageio daemon (PyPI ``ovirt-imageio``) on 127.0.0.1, and its control API.

The daemon runs as a subprocess with its own configuration directory: no privilege dropping,
no systemd, plain HTTP on the remote port (TLS is the engine's business in these tests), no
local unix socket, the control service on a TCP port, logging to standard error (kept in a
file). Tickets are added with ``PUT /tickets/<id>`` on the control port, as the engine's host
agent does; each gives access to one local file (``file://``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CONFIG = """\
[daemon]
run_dir = {run_dir}
drop_privileges = false
systemd_enable = false

[tls]
enable = false

[remote]
host = 127.0.0.1
port = {remote_port}

[local]
enable = false

[control]
transport = tcp
port = {control_port}

[handlers]
keys = stderr

[logger_root]
level = INFO
handlers = stderr
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_command() -> list[str]:
    """The ovirt-imageio daemon of the Python environment running the tests."""
    return [str(Path(sys.executable).parent / "ovirt-imageio")]


@dataclass
class Imageio:
    """A running daemon: `remote_url` serves ``/images/<ticket>``, `control_url` tickets."""

    remote_url: str
    control_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, state: Path, timeout: float = 30.0) -> Imageio:
        conf = state / "conf"
        (conf / "conf.d").mkdir(parents=True, exist_ok=True)
        (state / "run").mkdir(exist_ok=True)
        remote_port, control_port = free_port(), free_port()
        (conf / "conf.d" / "50-tests.conf").write_text(_CONFIG.format(
            run_dir=state / "run", remote_port=remote_port, control_port=control_port))
        log = state / "imageio.log"
        with log.open("ab") as out:
            process = subprocess.Popen([*daemon_command(), "--conf-dir", str(conf)],
                                       stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        daemon = cls(f"http://127.0.0.1:{remote_port}", f"http://127.0.0.1:{control_port}",
                     process, log)
        daemon._wait_until_ready(timeout)
        return daemon

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ovirt-imageio exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')[-4000:]}")
            try:
                self._control("GET", "/tickets/readiness-probe")
            except urllib.error.HTTPError as answer:
                if answer.code == 404:
                    return
                raise
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("ovirt-imageio did not answer within "
                                       f"{timeout:.0f} s") from None
                time.sleep(0.05)

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control_url + path, data=data, method=method)
        with _NO_PROXY.open(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def add_ticket(self, ticket_id: str, path: Path, size: int, *,
                   ops: tuple[str, ...] = ("write",), timeout: int = 3600,
                   inactivity_timeout: int = 120, transfer_id: str | None = None) -> str:
        """Give access to `size` bytes of the file `path`; return the transfer URL."""
        self._control("PUT", f"/tickets/{ticket_id}", {
            "uuid": ticket_id, "size": size, "url": path.resolve().as_uri(), "ops": list(ops),
            "timeout": timeout, "inactivity_timeout": inactivity_timeout, "sparse": True,
            "transfer_id": transfer_id or ticket_id})
        return f"{self.remote_url}/images/{ticket_id}"

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._control("GET", f"/tickets/{ticket_id}")
        except urllib.error.HTTPError as answer:
            if answer.code == 404:
                return None
            raise
        return info

    def remove_ticket(self, ticket_id: str, timeout: float = 30.0) -> None:
        """Remove a ticket; imageio answers 409 while a connection still uses it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._control("DELETE", f"/tickets/{ticket_id}")
                return
            except urllib.error.HTTPError as answer:
                if answer.code != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                return
