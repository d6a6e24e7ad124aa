"""The build context: the only channel between a plugin and the core.

A plugin's work hook receives a `BuildContext`. Through it the plugin learns where to work and
where to write the image body, reports progress, writes the image's build log, runs commands
(logged, bounded in time, killed on cancellation) and honours cancellation.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BuildCancelled, CommandFailed
from .outbound import OutboundPolicy
from .processes import JOB_VARIABLE, record_group
from .redaction import REDACTED
from .sandbox.runner import (
    Network,
    Sandbox,
    SandboxSettings,
    make_sandbox,
    shift_tree,
)

ProgressSink = Callable[[int, str | None], None]
LogSink = Callable[[str], None]

CHECK_SECONDS = 0.1
"""How often a running command's cancellation and time limit are checked."""


@dataclass
class BuildContext:
    """Everything a plugin may use while it builds, pushes or deletes one image.

    The core gives each hook call its own context, bound to the plugin it calls (`plugin`);
    the plugin's settings arrive as the hook's resolved ``parameters``.

    Attributes:
        image_id: the id of the image being worked on.
        workdir: a private scratch directory, removed when the work ends (success or not).
        body_path: where the image body must be written (a disk for base/target images).
        cache_root: the root of caches shared between builds; use `cache_dir(name)`.
        plugin: the id of the plugin this context is bound to.
        sandbox_settings: the operator's limits and network policy for `sandbox`.
        outbound: the operator's outbound policy (``outbound_allow``), which every connection
            the plugin makes for a request to an address the request chose (a cloud endpoint
            it names) must obey: use ``outbound.session()`` or ``outbound.pool_class()``.
    """

    image_id: str
    workdir: Path
    body_path: Path
    cache_root: Path
    plugin: str = ""
    progress_sink: ProgressSink = lambda percent, activity: None
    log_sink: LogSink = lambda line: None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    secrets: list[str] = field(default_factory=list)
    sandbox_settings: SandboxSettings = field(default_factory=SandboxSettings)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    _range: tuple[float, float] = (0.0, 100.0)

    # -- progress and log -------------------------------------------------------------------
    def progress(self, percent: float, activity: str | None = None) -> None:
        """Report `percent` (0-100 of this context's share of the work) and what is happening.

        The core keeps `percent_complete` monotone, so reporting a lower value is harmless.
        """
        low, high = self._range
        clamped = min(max(percent, 0.0), 100.0)
        activity = self.redact(activity) if activity else activity  # shown by the API
        self.progress_sink(int(low + (high - low) * clamped / 100.0), activity)
        if activity:
            self.log(f"== {activity}")

    def scaled(self, start: float, end: float) -> BuildContext:
        """A context whose 0-100 progress maps onto `start`-`end` of this one's."""
        low, high = self._range
        span = high - low
        child = copy.copy(self)
        child._range = (low + span * start / 100.0, low + span * end / 100.0)
        return child

    def bound(self, plugin: str, secrets: Sequence[str] = ()) -> BuildContext:
        """A context for one call of `plugin`'s hooks that also masks `secrets` (its secret
        parameter values). It shares this context's masks: whatever either learns to mask, the
        error shown at the end of the job is masked with."""
        child = copy.copy(self)
        child.plugin = plugin
        for value in secrets:
            child.add_secret(value)
        return child

    def add_secret(self, value: str) -> None:
        """Mask `value` in every log line and logged command line from now on."""
        if value and value not in self.secrets:
            self.secrets.append(value)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def log(self, line: str) -> None:
        """Append a line to the image's build log (served by ``GET …/<id>/log``)."""
        self.log_sink(self.redact(line.rstrip("\n")))

    def cache_dir(self, name: str) -> Path:
        """A cache directory shared by all builds (create it on first use).

        Builds run concurrently: write into a cache atomically (build elsewhere, then rename)
        or under a lock.
        """
        path = self.cache_root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- cancellation -----------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise `BuildCancelled` if the image was deleted or the service is stopping."""
        if self.cancel_event.is_set():
            raise BuildCancelled(f"build of {self.image_id} was cancelled")

    # -- sandboxes --------------------------------------------------------------------------
    def sandbox(self, root: Path | None, *, network: Network = "none",
                inputs: Sequence[tuple[Path, str]] = (),
                outputs: Sequence[tuple[Path, str]] = (),
                env: Mapping[str, str] | None = None, hostname: str = "imagefactory",
                host_tools: bool = False, egress_allow: Sequence[str] = (),
                egress_via: str | None = None, enter: Sequence[str] = ()) -> Sandbox:
        """A sandbox to run whatever an image tree or a template controls (see
        docs/security.md): root inside, an unprivileged subordinate uid on the host, its own
        namespaces, no host path visible, seccomp, the operator's limits.

        `root` is the image tree (``/`` inside, writable; owned by the sandbox's ids: trees
        made by the sandbox are; `adopt_tree` shifts one host root made), or None for an empty
        root with the host's programs read-only when `host_tools` (to run host tools such as
        ``mkfs.ext4 -d`` over a tree bound in `inputs`). `inputs` are (host path, path inside)
        pairs shown read-only; `outputs` writable ones. `network` ``"egress"`` asks for the
        egress proxy (``http_proxy`` inside): granted unless the operator set
        ``sandbox_network = none``; it reaches public addresses on ports 80 and 443, the
        operator's allow-list, and `egress_allow`: URLs (their host and port), CIDRs or host
        names the operator chose (never a template's). `egress_via` sends allowed connections
        through an HTTP proxy the operator chose (``http://host:port``), such as an apt cache.
        `env` replaces the whole environment inside. `enter` prefixes the launcher's command
        line (for instance ``nsenter`` into a mount namespace that holds the tree's mounts).
        """
        return make_sandbox(self, self.sandbox_settings, root, network=network, inputs=inputs,
                            outputs=outputs, env=env, hostname=hostname, host_tools=host_tools,
                            egress_allow=egress_allow, egress_via=egress_via, enter=enter)

    def adopt_tree(self, tree: Path, enter: Sequence[str] = ()) -> None:
        """Shift a tree that host root made (files owned by image ids on the host, a mounted
        image for one) into the sandbox's ids, so it can be a sandbox root. Image ownership,
        set-uid bits and file capabilities are kept; symbolic links are never followed.
        `enter` runs it in another mount namespace (where the tree is mounted)."""
        shift_tree(self, tree, "in", enter)

    def release_tree(self, tree: Path, enter: Sequence[str] = ()) -> None:
        """The reverse of `adopt_tree`: files are owned by their image ids again."""
        shift_tree(self, tree, "out", enter)

    # -- commands ---------------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        capture: bool = False,
        shown: Sequence[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command, logging its combined output line by line (and `shown` as the
        command line, when given, instead of `argv`).

        The command runs in its own process group; on cancellation or `timeout` (seconds) the
        whole group is terminated, then killed. Processes it leaves running (a background
        child, a daemon in a session of its own) are killed when the job ends. With `capture`
        the standard output is returned (and not logged) while standard error is logged. A
        non-zero exit raises `CommandFailed` carrying the tail of the output, unless `check` is
        false.
        """
        args = [os.fspath(a) for a in argv]
        logged = list(shown) if shown is not None else args
        self.log("$ " + " ".join(logged))
        # the job's tag: what the command leaves running is ended with the job (processes.py)
        full_env = {**os.environ, **(env or {}), JOB_VARIABLE: str(self.workdir)}
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            start_new_session=True,
        )
        record_group(self.workdir, proc.pid)
        tail: collections.deque[str] = collections.deque(maxlen=40)
        captured: list[str] = []

        def pump(stream: Any, keep: list[str] | None) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                if keep is not None:
                    keep.append(line)
                else:
                    tail.append(self.redact(line.rstrip("\n")))
                    self.log(line)
            stream.close()

        readers = [threading.Thread(target=pump, args=(proc.stdout, captured if capture else None),
                                    daemon=True)]
        if capture:
            readers.append(threading.Thread(target=pump, args=(proc.stderr, None), daemon=True))
        for reader in readers:
            reader.start()
        if input is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(input)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        deadline = None if timeout is None else time.monotonic() + timeout
        reason = None
        with _exit_watch(proc) as exited:
            while not exited(CHECK_SECONDS):
                if self.cancel_event.is_set():
                    reason = "cancelled"
                elif deadline is not None and time.monotonic() > deadline:
                    reason = f"timed out after {timeout:.0f} s"
                if reason:
                    _terminate_group(proc)
                    break
        if reason is None:
            proc.wait()  # it has exited: this only reaps it
        for reader in readers:
            reader.join(timeout=5)
        if reason == "cancelled":
            raise BuildCancelled(f"build of {self.image_id} was cancelled")
        if reason:
            raise CommandFailed([self.redact(a) for a in logged], proc.returncode or -9,
                                f"{reason}\n" + "\n".join(tail))
        if check and proc.returncode != 0:
            raise CommandFailed([self.redact(a) for a in logged], proc.returncode,
                                "\n".join(tail))
        return subprocess.CompletedProcess(args, proc.returncode, "".join(captured), None)


@contextlib.contextmanager
def _exit_watch(proc: subprocess.Popen[bytes]) -> Iterator[Callable[[float], bool]]:
    """A function that waits up to its argument (seconds) for `proc` to exit and says whether
    it has, woken by the exit itself (a pidfd). ``Popen.wait(timeout)`` polls with sleeps of up
    to 50 ms instead: a build runs dozens of commands, and each one's end was noticed 25 ms
    late on average."""
    pidfd = os.pidfd_open(proc.pid)
    watch = select.poll()  # not select(): a busy service's descriptors may pass 1024
    watch.register(pidfd, select.POLLIN)
    try:
        yield lambda seconds: bool(watch.poll(seconds * 1000))
    finally:
        os.close(pidfd)


def _terminate_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone after five seconds."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
