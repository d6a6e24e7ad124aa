"""A test-only OS plugin ("FakeOS"): writes a small disk instead of installing an OS.

It exercises the core's contract without real builds: progress, logs, commands run through
`ctx.run` (so cancellation kills real processes), failures and ICICLE. Knobs come from the
request parameters: ``fake_build_seconds`` (how long the build runs) and the template name
``fail-me`` (the build fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagefactory_core.context import BuildContext
from imagefactory_core.errors import BuildError
from imagefactory_core.model import BuildResult, OSTarget, TargetContent
from imagefactory_core.tdl import Template, build_icicle

from imagefactory_core import hookimpl

DISK_BYTES = 4 * 1024 * 1024


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return [OSTarget("FakeOS", r"\d+", ("x86_64",), "Test-only OS")]


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: dict[str, Any]) -> BuildResult:
    seconds = float(parameters.get("fake_build_seconds", 0))
    ctx.progress(10, "Pretending to install")
    if seconds:
        ctx.run(["sleep", str(seconds)])
    if template.name == "fail-me":
        raise BuildError("FakeOS was asked to fail: template name is fail-me")
    ctx.progress(60, "Writing disk")
    with open(ctx.body_path, "wb") as disk:
        disk.truncate(DISK_BYTES)
        disk.write(f"FAKEOS {template.name} {template.os.version}\n".encode())
        if template.os.rootpw:
            disk.write(b"rootpw-set\n")
    ctx.log(f"wrote {DISK_BYTES} bytes")
    packages = [(f"{p.name}-1.0-1.x86_64", None) for p in template.packages]
    return BuildResult(icicle=build_icicle(packages, template.description))


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path) -> BuildResult:
    with open(disk, "r+b") as handle:
        handle.seek(1024 * 1024)
        handle.write((" ".join(content.packages) + "\n").encode())
        handle.write(f"os-config: {ctx.config.get('marker')}\n".encode())
    packages = [(f"{p}-1.0-1.x86_64", None) for p in
                [*(p.name for p in template.packages), *content.packages]]
    return BuildResult(icicle=build_icicle(packages, template.description))


def sleepers(seconds: float) -> list[int]:
    """Pids of live ``sleep <seconds>`` processes: the commands of slow FakeOS builds (give each
    test its own duration to tell its builds apart)."""
    wanted = [b"sleep", str(float(seconds)).encode()]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == wanted:
            pids.append(int(entry.name))
    return pids
