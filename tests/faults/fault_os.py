"""A test-only OS plugin ("FaultOS") that misbehaves on request, for the fault-injection suite.

Its declared parameter ``fault`` picks the misbehaviour:

* ``""`` (default): a well-behaved build writing a small disk.
* ``raise``: writes part of the disk, then raises a plain ``RuntimeError`` (a plugin bug, not a
  `BuildError`).
* ``fill``: writes to the disk until the storage filesystem is full (``ENOSPC``), then logs
  until its log cannot grow either; ``fill-work``: the same, filling a file of its work
  directory (as a tree being installed).
* ``mount``: loop-mounts a scratch filesystem in its work directory, mounts a tmpfs inside
  it, then raises with both still mounted.
* ``hang-once``: on the image's first attempt, runs a command that never ends (the service is
  killed meanwhile); a re-queued attempt builds normally.
* ``hang``: runs a command that never ends and ignores SIGTERM (only SIGKILL ends it).
* ``hang-deaf``: waits in Python and never looks at the cancellation flag (a plugin breaking
  its contract: only the end of the service's process ends it).
* ``leak``: runs a command that leaves a background child in its process group, and one that
  leaves a child in a session of its own, then completes.

Every command goes through `ctx.run` and writes its pid to ``<cache>/fault-pids/<image>-<what>``
so a test can wait for it to start and check it is gone, without looking at other processes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    OSTarget,
    Parameter,
    TargetContent,
    Template,
    build_icicle,
    hookimpl,
)

IMAGEFACTORY_PLUGIN_API = "1.0"
FAULTS = ("", "raise", "fill", "fill-work", "mount", "hang-once", "hang", "hang-deaf", "leak")
CHUNK = b"\xa5" * (1024 * 1024)
# `sh -c SCRIPT PIDFILE ARGS…`: the script sees the pid file as $0
RECORD_AND_EXEC = 'echo "$$" > "$0"; exec "$@"'
IGNORE_TERM_AND_EXEC = 'trap "" TERM; echo "$$" > "$0"; exec "$@"'
# daemon-like: the children let go of the command's output, so the command ends at once
LEAK_IN_GROUP = 'sleep 600 >/dev/null 2>&1 & echo "$!" > "$0"'
LEAK_IN_SESSION = 'setsid sleep 600 >/dev/null 2>&1 & echo "$!" > "$0"'


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return [OSTarget("FaultOS", r"\d+", ("x86_64",), "Test-only OS that misbehaves")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [Parameter("fault", "string", "", "the misbehaviour to inject", choices=FAULTS)]


def pid_file(ctx: BuildContext, what: str) -> Path:
    return ctx.cache_dir("fault-pids") / f"{ctx.image_id}-{what}"


def first_attempt(ctx: BuildContext, what: str) -> bool:
    """Whether this is the first time `what` runs for the image (a re-queued build, or a
    second delete, is not)."""
    marker = ctx.cache_dir("fault-attempts") / f"{ctx.image_id}-{what}"
    first = not marker.exists()
    marker.touch()
    return first


def _write_disk(ctx: BuildContext, template: Template) -> BuildResult:
    with open(ctx.body_path, "wb") as disk:
        disk.write(f"FAULTOS {template.name}\n".encode())
        disk.write(CHUNK[: 256 * 1024])
    return BuildResult(icicle=build_icicle([], template.description))


def _fill(ctx: BuildContext, sink: Path) -> None:
    """Fill the filesystem to the last byte and keep it full (the sink stays open) while the
    log is written until it cannot grow either; then raise the first ENOSPC."""
    with open(sink, "wb", buffering=0) as handle:
        full: OSError | None = None
        for piece in (CHUNK, CHUNK[:4096], CHUNK[:1]):  # smaller pieces use up what is left
            try:
                while True:
                    handle.write(piece)
            except OSError as refused:
                full = full or refused
        for _ in range(64):  # the log's last block may have room left: use it up too
            try:
                ctx.log("filling " + "x" * 1024)
            except OSError:
                break
        assert full is not None
        raise full


def _mount_and_raise(ctx: BuildContext) -> None:
    scratch, mountpoint = ctx.workdir / "scratch.img", ctx.workdir / "mnt"
    with open(scratch, "wb") as handle:
        handle.truncate(8 * 1024 * 1024)
    ctx.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", scratch])
    mountpoint.mkdir()
    ctx.run(["mount", "-o", "loop", scratch, mountpoint])
    (mountpoint / "tmp").mkdir()
    ctx.run(["mount", "-t", "tmpfs", "fault-scratch", mountpoint / "tmp"])
    raise RuntimeError("FaultOS raised with filesystems mounted")


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: Mapping[str, Any]) -> BuildResult:
    fault = parameters["fault"]
    ctx.progress(10, f"Injecting fault {fault or 'none'}")
    if fault == "raise":
        with open(ctx.body_path, "wb") as disk:
            disk.write(CHUNK)
        raise RuntimeError("FaultOS injected a plugin bug")
    if fault in ("fill", "fill-work"):
        _fill(ctx, ctx.body_path if fault == "fill" else ctx.workdir / "tree")
    if fault == "mount":
        _mount_and_raise(ctx)
    if fault == "hang-once" and first_attempt(ctx, "build"):
        ctx.run(["sh", "-c", RECORD_AND_EXEC, pid_file(ctx, "hang"), "sleep", "600"])
    if fault == "hang":
        ctx.run(["sh", "-c", IGNORE_TERM_AND_EXEC, pid_file(ctx, "hang"), "sleep", "600"])
    if fault == "hang-deaf":
        # the service's own pid: only the sign that the hook runs
        pid_file(ctx, "hang-deaf").write_text(str(os.getpid()))
        threading.Event().wait()
    if fault == "leak":
        ctx.run(["sh", "-c", LEAK_IN_GROUP, pid_file(ctx, "leak-group")])
        ctx.run(["sh", "-c", LEAK_IN_SESSION, pid_file(ctx, "leak-session")])
    return _write_disk(ctx, template)


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path,
                                      parameters: Mapping[str, Any]) -> BuildResult:
    return BuildResult()
