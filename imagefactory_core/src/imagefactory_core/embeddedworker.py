"""The build worker `serve` starts beside its API in the embedded default (`build_workers:
embedded`): still one command, but a build that crashes its process cannot take the API down,
and an API that crashes leaves the running builds to finish (the worker follows its parent:
`builds.worker`).

The worker is `imagefactory worker --from-serve`, given the configuration `serve` read on its
standard input (never on its command line or in a file: it may hold secrets) and the state
directory's lock `serve` holds (an inherited descriptor, `statelock.StateLock.inherited`).
If it exits unasked, it is started again, after a pause that grows while it keeps failing to
stay up; its jobs are then claimed again (`Worker.run`). The lock stays with `serve`
meanwhile: no other service or local command takes the directory in that pause.

A process gunicorn forks while `Popen` runs would inherit the pipe `Popen` waits on for the
`exec`, and `Popen` would then wait until that process exits. So the first worker starts in
the arbiter's own thread before it forks anything (`start`), and a restart waits for a fork
in progress, and delays the next, through `_lock` (`before_fork`).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

from .cli.worker import config_json
from .config import Config
from .statelock import StateLock

log = logging.getLogger(__name__)

STOP_SECONDS = 60.0  # the worker cancels its running builds when asked to stop: time for that
STEADY_SECONDS = 60.0  # a worker up this long is not failing to start: restart it at once
MAX_PAUSE_SECONDS = 30.0
COMMAND = [sys.executable, "-c", "import sys; from imagefactory_core.cli import main; "
                                 "sys.exit(main())", "worker", "--from-serve"]


class EmbeddedWorker:
    def __init__(self, config: Config, state_lock: StateLock | None = None):
        self.config = config
        self.state_lock = state_lock
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker, then watch it from a thread. Call before gunicorn forks."""
        first = self._spawn()
        if first is not None:
            self._thread = threading.Thread(target=self._keep_running, args=(first,),
                                            name="build-worker", daemon=True)
            self._thread.start()

    def before_fork(self) -> None:
        """gunicorn's `pre_fork`: no worker is being started while the arbiter forks."""
        with self._lock:
            pass

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            command, fds = COMMAND, ()
            if self.state_lock is not None:
                fds = (self.state_lock.fileno(),)
                command = [*COMMAND, f"--state-lock-fd={fds[0]}"]
            process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=fds)
            self._process = process
        assert process.stdin is not None
        process.stdin.write(config_json(self.config).encode())
        process.stdin.close()
        log.info("build worker started (pid %d)", process.pid)
        return process

    def _keep_running(self, process: subprocess.Popen[bytes]) -> None:
        pause = 1.0
        while True:
            started = time.monotonic()
            # gunicorn's arbiter reaps every child it sees exit; then wait() says 0
            code = process.wait()
            if self._stopping.is_set():
                return
            pause = 1.0 if time.monotonic() - started > STEADY_SECONDS else min(
                pause * 2, MAX_PAUSE_SECONDS)
            log.error("the build worker (pid %d) exited (status %s); starting another in "
                      "%.0f s", process.pid, code, pause)
            if self._stopping.wait(pause):
                return
            respawned = self._spawn()
            if respawned is None:
                return
            process = respawned

    def stop(self) -> None:
        """Ask the worker to stop (its running builds are cancelled) and wait for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("the build worker did not stop within %.0f s: killing it", STOP_SECONDS)
            process.kill()
            process.wait()
