"""``python -m imagefactory_core.sandbox.launch SPEC FILTER -- ARGV…``: run ARGV in a sandbox.

Callers get this command line from `imagefactory_core.sandbox.wrap` and run it like any other
command (``BuildContext.run``: logged, timed out, cancelled by killing its process group).
SPEC is the `SandboxSpec` as JSON, FILTER the seccomp filter's BPF program in hexadecimal
(`imagefactory_core.sandbox.syscall_filter.compiled_filter`).

A Python launcher rather than a pipeline of ``unshare``/``nsenter``/bubblewrap: mount points in
the tree must be resolved with ``openat2`` and mounted through descriptors (no tool offers
that confinement for every mount), the seccomp filter must be loaded after the mounts and
right before ``execve``, and the egress proxy needs a descriptor made before the namespaces.
It is the caller's own interpreter (``sys.executable -I``), so nothing new is installed and no
program from the tree ever runs outside the sandbox.

Four processes, each waiting for the next:

- **launcher** (host root, leader of the caller's process group): makes the cgroups, maps the
  keeper's user namespace onto the subordinate ids with ``newuidmap``/``newgidmap``, serves the
  egress proxy, watches the wall clock and the tree's size, removes the cgroups, and exits with
  the command's status (124 wall clock, 125 set-up or tree size, 127 command not found).
- **keeper** (fork): clones the host sources while still host root, joins the cgroups, unshares
  user, mount, PID, IPC, UTS, network and cgroup namespaces, becomes root of its namespace
  once mapped, and forks init. It receives SIGKILL when the launcher dies (PR_SET_PDEATHSIG).
- **init** (pid 1 of the new PID namespace, SIGKILL when the keeper dies): builds the file
  system and pivots into it (`mounts`), sets the host name and loopback up, drops capabilities,
  sets ``no_new_privs``, loads the seccomp filter, passes proxy connections out, forks the
  command and reaps. When it dies the kernel kills every process in the namespace, so killing
  the caller's process group (or the launcher alone) ends the whole sandbox.
- **command** (fork of init): its own session (no controlling terminal), rlimits, working
  directory, the spec's environment, ``execvpe``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from . import limits, mounts, relay
from . import syscalls as sc
from .capabilities import drop_capabilities, last_capability
from .disk import tree_usage
from .errors import SandboxSetupError, SandboxUnavailable
from .host import check_host
from .ids import IdRange, subordinate_ids
from .proxy import EgressProxy
from .spec import SandboxSpec

SETUP_FAILED = 125
WALL_CLOCK = 124
NOT_FOUND = 127
NOT_EXECUTABLE = 126
NAMESPACES = (sc.CLONE_NEWUSER | sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWIPC
              | sc.CLONE_NEWUTS | sc.CLONE_NEWNET | sc.CLONE_NEWCGROUP)


class _Stopped(Exception):
    """The launcher was asked to stop (SIGTERM, SIGINT, SIGHUP)."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _read_byte(fd: int) -> bytes:
    try:
        return os.read(fd, 1)
    except OSError:
        return b""


# -- the command --------------------------------------------------------------------------------
def _command(spec: SandboxSpec, applied: limits.AppliedLimits, argv: Sequence[str]) -> NoReturn:
    try:
        os.setsid()
        applied.apply_rlimits()
        os.chdir(spec.cwd)
        env = dict(spec.env)
        if spec.network == "egress":
            env.update(relay.PROXY_ENV)
        os.execvpe(argv[0], list(argv), env)
    except FileNotFoundError:
        _say(f"sandbox: {argv[0]}: command not found")
        os._exit(NOT_FOUND)
    except OSError as error:
        _say(f"sandbox: cannot run {argv[0]}: {error}")
        os._exit(NOT_EXECUTABLE)


# -- pid 1 ------------------------------------------------------------------------------------
def _init(spec: SandboxSpec, sources: mounts.HostSources, applied: limits.AppliedLimits,
          seccomp_program: bytes, last_cap: int, channel: socket.socket | None,
          argv: Sequence[str]) -> NoReturn:
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)  # the command may not read pid 1's memory or fds
        mounts.enter_root(spec, sources)
        socket.sethostname(spec.hostname)
        relay.bring_up_loopback()
        listener = relay.listen() if channel is not None else None
        drop_capabilities(last_cap)
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        sc.load_seccomp_program(seccomp_program)
    except (OSError, SandboxSetupError) as error:
        _say(f"sandbox: cannot set up: {error}")
        os._exit(SETUP_FAILED)
    command = os.fork()
    if command == 0:
        _command(spec, applied, argv)
    if listener is not None and channel is not None:
        relay.start(listener, channel)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        if pid == command:
            os._exit(_exit_code(status))  # what is left in the namespace dies with pid 1


# -- the keeper -------------------------------------------------------------------------------
def _keeper(spec: SandboxSpec, applied: limits.AppliedLimits, seccomp_program: bytes, go: int,
            ready: int, channel: socket.socket | None, launcher: int,
            argv: Sequence[str]) -> NoReturn:
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != launcher:
            os._exit(SETUP_FAILED)
        sources = mounts.clone_host_sources(spec)
        last_cap = last_capability()
        if _read_byte(go) != b"g":  # the launcher put this process in the cgroups
            os._exit(SETUP_FAILED)
        sc.unshare(NAMESPACES)
        os.write(ready, b"u")
        if _read_byte(go) != b"m":  # the launcher wrote the id maps
            os._exit(SETUP_FAILED)
        os.setgroups([0])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the change of ids
        if os.getppid() != launcher:
            os._exit(SETUP_FAILED)
    except (OSError, SandboxSetupError) as error:
        _say(f"sandbox: cannot set up: {error}")
        os._exit(SETUP_FAILED)
    init = os.fork()
    if init == 0:
        _init(spec, sources, applied, seccomp_program, last_cap, channel, argv)
    os.write(ready, f"{init}\n".encode())
    _, status = os.waitpid(init, 0)
    os._exit(_exit_code(status))


# -- the launcher -----------------------------------------------------------------------------
def _map_ids(pid: int, ids: IdRange) -> None:
    for tool, base in (("newuidmap", ids.uid), ("newgidmap", ids.gid)):
        result = subprocess.run([tool, str(pid), "0", str(base), str(ids.count)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SandboxUnavailable(f"{tool} {pid} 0 {base} {ids.count} failed: "
                                     f"{result.stderr.strip()} (is the range root's in "
                                     "/etc/subuid and /etc/subgid?)")


def _check_paths(spec: SandboxSpec, ids: IdRange) -> None:
    """Refuse what the sandbox cannot use; hand the outputs to the sandbox's root."""
    if spec.root is not None:
        info = os.stat(spec.root, follow_symlinks=False)
        if not os.path.isdir(spec.root) or os.path.islink(spec.root):
            raise SandboxSetupError(f"the image tree {spec.root} is not a directory")
        if info.st_uid != ids.uid:
            raise SandboxSetupError(
                f"the image tree {spec.root} is owned by host uid {info.st_uid}, not by the "
                f"sandbox's root (host uid {ids.uid}): make trees in a sandbox or with "
                "mmdebstrap --mode=unshare, or adopt one with sandbox.shift_into_range")
    for bind in (*spec.inputs, *spec.outputs):
        if os.path.islink(bind.host) or not os.path.exists(bind.host):
            raise SandboxSetupError(f"bind source {bind.host} is missing or a symbolic link")
    for bind in spec.outputs:
        info = os.stat(bind.host, follow_symlinks=False)
        if not ids.contains_uid(info.st_uid):
            os.chown(bind.host, ids.uid, ids.gid, follow_symlinks=False)


def _kill(*pids: int | None) -> None:
    for pid in pids:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _watch(spec: SandboxSpec, keeper: int, init: int) -> int:
    """Wait for the keeper; end the sandbox if it outlives the wall clock or outgrows the
    tree limit. Returns the exit status."""
    started = time.monotonic()
    wall = spec.limits.wall_seconds
    tree_limit = spec.limits.tree_mib
    next_check = started + spec.limits.tree_check_seconds
    pidfd = os.pidfd_open(keeper)
    try:
        while True:
            now = time.monotonic()
            deadlines = [started + wall] if wall else []
            if tree_limit is not None and spec.root is not None:
                deadlines.append(next_check)
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            if select.select([pidfd], [], [], timeout)[0]:
                return _exit_code(os.waitpid(keeper, 0)[1])
            now = time.monotonic()
            if wall and now >= started + wall:
                _kill(init, keeper)
                os.waitpid(keeper, 0)
                _say(f"sandbox: killed after the wall-clock limit of {wall:g} s")
                return WALL_CLOCK
            if tree_limit is not None and spec.root is not None and now >= next_check:
                used = tree_usage(spec.root)
                if used > tree_limit * 1024 * 1024:
                    _kill(init, keeper)
                    os.waitpid(keeper, 0)
                    _say(f"sandbox: killed: the image tree uses {used // 2**20} MiB, over its "
                         f"limit of {tree_limit} MiB")
                    return SETUP_FAILED
                next_check = time.monotonic() + spec.limits.tree_check_seconds
    finally:
        os.close(pidfd)


def _run(spec: SandboxSpec, ids: IdRange, applied: limits.AppliedLimits, seccomp_program: bytes,
         argv: Sequence[str]) -> int:
    go_read, go_write = os.pipe()
    ready_read, ready_write = os.pipe()
    channel, inner_channel = (socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                              if spec.network == "egress" else (None, None))
    launcher = os.getpid()
    keeper = os.fork()
    if keeper == 0:
        try:
            os.close(go_write)
            os.close(ready_read)
            if channel is not None:
                channel.close()
            _keeper(spec, applied, seccomp_program, go_read, ready_write, inner_channel,
                    launcher, argv)
        finally:
            os._exit(SETUP_FAILED)
    os.close(go_read)
    os.close(ready_write)
    if inner_channel is not None:
        inner_channel.close()
    init = None
    try:
        applied.join(keeper)
        os.write(go_write, b"g")
        if _read_byte(ready_read) != b"u":
            return _exit_code(os.waitpid(keeper, 0)[1])
        _map_ids(keeper, ids)
        os.write(go_write, b"m")
        line = os.read(ready_read, 32)
        if not line:
            return _exit_code(os.waitpid(keeper, 0)[1])
        init = int(line)
        if channel is not None:
            EgressProxy(channel, spec.egress, _say).start()
        return _watch(spec, keeper, init)
    except BaseException:
        _kill(init, keeper)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(keeper, 0)
        raise
    finally:
        os.close(go_write)
        os.close(ready_read)


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def main(args: Sequence[str]) -> int:
    try:
        if len(args) < 4 or args[2] != "--":
            raise ValueError("wrong arguments")
        spec = SandboxSpec.from_json(args[0])
        seccomp_program = bytes.fromhex(args[1])
    except ValueError:
        _say("usage: python -m imagefactory_core.sandbox.launch SPEC_JSON FILTER_HEX -- "
             "COMMAND [ARG…]")
        return 2
    argv = list(args[3:])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        ids = spec.ids or subordinate_ids()
        check_host()
        _check_paths(spec, ids)
        if spec.root is not None and spec.limits.tree_mib is not None:
            used = tree_usage(spec.root)
            if used > spec.limits.tree_mib * 1024 * 1024:
                raise SandboxSetupError(f"the image tree uses {used // 2**20} MiB, over its limit"
                                        f" of {spec.limits.tree_mib} MiB")
        applied = limits.apply(spec.limits)
    except (SandboxUnavailable, SandboxSetupError, OSError) as error:
        _say(f"sandbox: {error}")
        return SETUP_FAILED
    _say(applied.describe())
    try:
        return _run(spec, ids, applied, seccomp_program, argv)
    except _Stopped as stopped:
        return 128 + stopped.args[0]
    except (SandboxUnavailable, OSError) as error:
        _say(f"sandbox: {error}")
        return SETUP_FAILED
    finally:
        applied.remove()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
