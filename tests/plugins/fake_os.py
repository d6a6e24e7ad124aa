"""A test-only OS plugin ("FakeOS"): writes a small disk instead of installing an OS.

It exercises the core's contract without real builds: progress, logs, commands run through
`ctx.run` (so cancellation kills real processes), failures and ICICLE. It is written against
`imagefactory_core.plugin` only, as a third-party plugin would be. Knobs are its declared
parameters: ``fake_gate`` (a directory: the build is held there until the test lets it go, see
`tests.plugins.gate`), ``fake_build_seconds`` (how long the build runs), ``marker`` (written
into the disk, to show which value reached the plugin), ``fake_token`` (a secret) and
``fake_mirror`` (operator-only). Template names ask for failures: ``fail-me`` fails the build;
``unstorable-result`` returns a property no store can record; ``broken-log`` makes the image's
log unwritable at the end of the build (``broken-log-then-fail`` then fails too).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    OSTarget,
    Parameter,
    TargetContent,
    Template,
    build_icicle,
    hookimpl,
)

from .gate import hold

IMAGEFACTORY_PLUGIN_API = "1.0"
DISK_BYTES = 4 * 1024 * 1024


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return [OSTarget("FakeOS", r"\d+", ("x86_64",), "Test-only OS")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [
        Parameter("fake_gate", "string", help="a directory where the build waits for the test"),
        Parameter("fake_build_seconds", "number", 0, "how long the fake build sleeps",
                  minimum=0, maximum=600),
        Parameter("marker", "string", help="written into the disk"),
        Parameter("fake_token", "string", help="a secret the build uses", secret=True),
        Parameter("fake_mirror", "url", help="where the fake OS would come from",
                  operator_only=True),
    ]


def _stamp(parameters: Mapping[str, Any]) -> bytes:
    """What the disk records of the parameters the plugin got."""
    return (f"marker: {parameters['marker']}\nmirror: {parameters['fake_mirror']}\n"
            f"token-length: {len(parameters['fake_token'] or '')}\n").encode()


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: Mapping[str, Any]) -> BuildResult:
    seconds = parameters["fake_build_seconds"]
    if parameters["fake_token"]:
        ctx.log(f"logging in with token {parameters['fake_token']}")
    ctx.progress(10, "Pretending to install")
    hold(ctx, parameters["fake_gate"], "build")
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
        disk.write(_stamp(parameters))
    ctx.log(f"wrote {DISK_BYTES} bytes")
    packages = [(f"{p.name}-1.0-1.x86_64", None) for p in template.packages]
    if template.name.startswith("broken-log"):  # the store can no longer write this log
        log = ctx.body_path.with_suffix(".log")
        log.unlink(missing_ok=True)
        log.mkdir()
        if template.name == "broken-log-then-fail":
            raise BuildError("FakeOS failed after its log broke")
    # a plugin bug: a property the store cannot record
    properties = {"made": object()} if template.name == "unstorable-result" else {}
    return BuildResult(icicle=build_icicle(packages, template.description),
                       properties=properties)


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path,
                                      parameters: Mapping[str, Any]) -> BuildResult:
    with open(disk, "r+b") as handle:
        handle.seek(1024 * 1024)
        handle.write((" ".join(content.packages) + "\n").encode())
        handle.write(b"target content with " + _stamp(parameters))
    packages = [(f"{p}-1.0-1.x86_64", None) for p in
                [*(p.name for p in template.packages), *content.packages]]
    return BuildResult(icicle=build_icicle(packages, template.description))
